//! What the center offers a device over the channel, converted once from the
//! center's plans and packages into the engine's `Plan` / `FirmwareInfo` and
//! from those into the protocol's messages.
//!
//! Rules: only active plans, oldest first; per component identity only the
//! oldest plan that applies (two active plans covering the same component
//! never both reach a device); never an upgrade the device already ended
//! (succeeded, failed or refused); at most 20 offers at once (the engine's
//! multi-plan limit) — the rest follow at the next request. A plan component
//! delivers the package file its `file_position` names; the others stay
//! downloadable by link.

use std::collections::BTreeMap;
use std::sync::Arc;

use sota_engine::{
    ComponentType as EngineComponentType, DownloadMode, FirmwareInfo, Plan as EnginePlan,
};
use sota_protocol::{Delivery, Firmware, PlanOffer, UpgradeMode as WireMode};

use super::active::ActivePlan;
use super::view::RequestView;
use crate::api::AppState;
use crate::error::ApiError;
use crate::package::{ComponentType, Package, PackageType};
use crate::plan::{self, PlanState, Strategy, UpgradeMode};

/// The center's component type as the engine names it.
pub fn engine_component_type(t: ComponentType) -> EngineComponentType {
    match t {
        ComponentType::Fota => EngineComponentType::Module,
        ComponentType::Sota => EngineComponentType::Mcu,
    }
}

fn file_at(pkg: &Package, position: u32) -> Result<&crate::package::PackageFile, ApiError> {
    pkg.files
        .iter()
        .find(|f| f.position == position)
        .ok_or_else(|| {
            ApiError::internal(format!(
                "package {} has no file at position {position}",
                pkg.id
            ))
        })
}

/// The engine's plan for one plan component (the package's file at
/// `position`): a full package has no source version.
pub fn engine_plan(
    strategy: &Strategy,
    identity: &str,
    pkg: &Package,
    position: u32,
) -> Result<EnginePlan, ApiError> {
    let file = file_at(pkg, position)?;
    Ok(EnginePlan {
        identity: identity.to_string(),
        component_type: engine_component_type(pkg.meta.component_type),
        source_version: match pkg.meta.package_type {
            PackageType::Full => String::new(),
            PackageType::Delta => pkg.meta.source_version.clone().unwrap_or_default(),
        },
        target_version: pkg.meta.target_version.clone(),
        min_battery: strategy.min_battery_percent,
        min_signal_dbm: i32::from(strategy.min_signal_dbm),
        space_needed: strategy.space_needed_bytes,
        package_size: file.size,
        download_retries: Some(strategy.download_retries),
    })
}

/// How a plan is delivered (mode, and texts in manual mode).
pub fn delivery(p: &plan::Plan) -> Delivery {
    let manual = p.upgrade_mode == UpgradeMode::Manual;
    Delivery {
        mode: if manual {
            WireMode::Manual
        } else {
            WireMode::Silent
        },
        texts: if manual {
            p.texts.clone()
        } else {
            BTreeMap::new()
        },
    }
}

/// The offers for a device now (see [`super::active::decide`]); the caller
/// records them ([`crate::upgrade::offered_all`]) once they are sent.
pub async fn for_device(
    state: &AppState,
    product_id: i64,
    device_key: &str,
    view: &RequestView,
) -> Result<Vec<PlanOffer>, ApiError> {
    let (plans, picks) = decided(state, product_id, device_key, view).await?;
    Ok(picks
        .iter()
        .map(|&(p, c)| plans[p].offers[c].clone())
        .collect())
}

/// The product's active plans and what [`super::active::decide`] picks from
/// them for this device.
pub async fn decided(
    state: &AppState,
    product_id: i64,
    device_key: &str,
    view: &RequestView,
) -> Result<(Vec<Arc<ActivePlan>>, Vec<(usize, usize)>), ApiError> {
    let mut plans = Vec::with_capacity(view.active_plans.len());
    for &id in &view.active_plans {
        plans.push(state.active_plans.get(&state.pool, id).await?);
    }
    let mut picks = Vec::new();
    super::active::decide(
        &plans,
        product_id,
        device_key,
        |identity| view.components.get(identity).map(String::as_str),
        |plan_id, identity| view.ended.contains(&(plan_id, identity.to_string())),
        &mut picks,
    );
    Ok((plans, picks))
}

/// The firmware message for an accepted plan component, with a link signed
/// for this device; `None` when the plan is not active or lacks the component.
pub async fn firmware(
    state: &AppState,
    plan_id: i64,
    device_key: &str,
    identity: &str,
) -> Result<Option<(Firmware, String)>, ApiError> {
    // Only the state is read: an active plan is frozen, its content kept resolved.
    let now: Option<String> = sqlx::query_scalar("SELECT state FROM plans WHERE id = $1")
        .bind(plan_id)
        .fetch_optional(&state.pool)
        .await?;
    if now.as_deref() != Some(PlanState::Active.as_str()) {
        return Ok(None);
    }
    let p = state.active_plans.get(&state.pool, plan_id).await?;
    let Some(i) = p
        .plan
        .components
        .iter()
        .position(|c| c.identity == identity)
    else {
        return Ok(None);
    };
    let position = p.plan.components[i].file_position;
    firmware_of(
        state,
        &p.packages[i],
        position,
        plan_id,
        device_key,
        identity,
    )
    .map(Some)
}

/// The firmware message for a package's file at `position`, with a link signed for
/// this device, as `planId` `plan_id`; and the link's expiry.
pub fn firmware_of(
    state: &AppState,
    pkg: &Package,
    position: u32,
    plan_id: i64,
    device_key: &str,
    identity: &str,
) -> Result<(Firmware, String), ApiError> {
    let file = file_at(pkg, position)?;
    let (url, expires) = crate::api::devices::link_for(state, pkg.id, file.position, device_key)?;
    let info = FirmwareInfo {
        identity: identity.to_string(),
        version: pkg.meta.target_version.clone(),
        md5: file.md5.clone(),
        crc32: file.crc32.clone(),
        sha256: file.sha256.clone(),
        url,
        size: file.size,
        mode: DownloadMode::ConsoleDownloads,
    };
    Ok((Firmware::new(plan_id, &info), expires))
}

/// The target version of a plan's component, if the plan has it.
pub async fn target_version(
    state: &AppState,
    plan_id: i64,
    identity: &str,
) -> Result<Option<String>, ApiError> {
    let Ok(p) = plan::get(&state.pool, plan_id).await else {
        return Ok(None);
    };
    let Some(c) = p.components.iter().find(|c| c.identity == identity) else {
        return Ok(None);
    };
    Ok(Some(
        crate::package::get(&state.pool, c.package_id)
            .await?
            .meta
            .target_version,
    ))
}
