//! `/products/{key}/devices`: list, look up, register, and the plans offered to a device.

use super::extract::{Json, Path, Query};
use super::Shared;
use crate::device::{self, Device, DeviceReport, Paging};
use crate::download::Grant;
use crate::error::{ApiError, ErrorBody};
use crate::package::PackageType;
use crate::plan::{self, period, PlanState};
use crate::product;
pub use sota_api::device::{Offer, OfferedComponent, OfferedFile};

/// A product's devices, by key.
#[utoipa::path(get, path = "/api/v1/products/{product_key}/devices", tag = "devices",
    params(("product_key" = String, Path, description = "Product key"), Paging),
    responses((status = 200, description = "Devices", body = Vec<Device>), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn list(
    state: Shared,
    Path(key): Path<String>,
    Query(paging): Query<Paging>,
) -> Result<axum::Json<Vec<Device>>, ApiError> {
    let (pid, _) = product::get(&state.pool, &key).await?;
    Ok(axum::Json(
        device::list(&state.pool, pid, &key, &paging).await?,
    ))
}

/// One device and its components.
#[utoipa::path(get, path = "/api/v1/products/{product_key}/devices/{device_key}", tag = "devices",
    params(("product_key" = String, Path, description = "Product key"), ("device_key" = String, Path, description = "Device key")),
    responses((status = 200, description = "The device", body = Device), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn get(
    state: Shared,
    Path((pk, dk)): Path<(String, String)>,
) -> Result<axum::Json<Device>, ApiError> {
    let (pid, _) = product::get(&state.pool, &pk).await?;
    Ok(axum::Json(device::get(&state.pool, pid, &pk, &dk).await?.1))
}

/// Register a device (created on first call) and record its component versions.
#[utoipa::path(put, path = "/api/v1/products/{product_key}/devices/{device_key}", tag = "devices",
    params(("product_key" = String, Path, description = "Product key"), ("device_key" = String, Path, description = "Device key")),
    request_body = DeviceReport,
    responses((status = 200, description = "The device after the report", body = Device), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn register(
    state: Shared,
    Path((pk, dk)): Path<(String, String)>,
    Json(report): Json<DeviceReport>,
) -> Result<axum::Json<Device>, ApiError> {
    let (pid, _) = product::get(&state.pool, &pk).await?;
    device::register(&state.pool, pid, &dk, &report).await?;
    Ok(axum::Json(device::get(&state.pool, pid, &pk, &dk).await?.1))
}

/// Signed link for one file for one device.
pub fn link_for(
    state: &super::AppState,
    package_id: i64,
    position: u32,
    device_key: &str,
) -> Result<(String, String), ApiError> {
    let now = jiff::Timestamp::now();
    let expires = now
        .as_second()
        .saturating_add(state.download_ttl.min(365 * 86400) as i64);
    let token = state.signer.sign(&Grant {
        package_id,
        position,
        device_key: device_key.to_string(),
        expires,
    });
    let at = jiff::Timestamp::from_second(expires)
        .map_err(|e| ApiError::internal(format!("link expiry out of range: {e}")))?;
    Ok((
        format!("{}/api/v1/firmware/{token}", state.public_url),
        at.to_string(),
    ))
}

/// The active plans that apply to a device now, with download links.
#[utoipa::path(get, path = "/api/v1/products/{product_key}/devices/{device_key}/offers", tag = "devices",
    params(("product_key" = String, Path, description = "Product key"), ("device_key" = String, Path, description = "Device key")),
    responses((status = 200, description = "Applicable plans", body = Vec<Offer>), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn offers(
    state: Shared,
    Path((pk, dk)): Path<(String, String)>,
) -> Result<axum::Json<Vec<Offer>>, ApiError> {
    let (pid, _) = product::get(&state.pool, &pk).await?;
    let (_, dev) = device::get(&state.pool, pid, &pk, &dk).await?;
    let mut out = Vec::new();
    for id in plan::active_ids(&state.pool, pid).await? {
        let p = plan::get(&state.pool, id).await?;
        if p.state != PlanState::Active {
            continue;
        }
        let (rules, packages) = plan::rules(&state.pool, &p, pid).await?;
        let hits = rules.applicable_components(pid, &dk, |identity| {
            dev.components.get(identity).map(String::as_str)
        });
        if hits.is_empty() {
            continue;
        }
        let tz = period::time_zone(&p.time_zone)?;
        let in_push_period = match &p.push_period {
            Some(pp) => pp.contains::<ApiError>(&tz, jiff::Timestamp::now())?,
            None => true,
        };
        let mut components = Vec::new();
        for i in hits {
            let (c, pkg) = (&p.components[i], &packages[i]);
            let mut files = Vec::new();
            for f in &pkg.files {
                let (url, url_expires_at) = link_for(&state, pkg.id, f.position, &dk)?;
                files.push(OfferedFile {
                    file: f.clone(),
                    url,
                    url_expires_at,
                });
            }
            components.push(OfferedComponent {
                identity: c.identity.clone(),
                component_type: c.component_type,
                package_type: pkg.meta.package_type,
                source_version: match pkg.meta.package_type {
                    PackageType::Full => String::new(),
                    PackageType::Delta => pkg.meta.source_version.clone().unwrap_or_default(),
                },
                target_version: pkg.meta.target_version.clone(),
                package_id: pkg.id,
                files,
            });
        }
        out.push(Offer {
            plan_id: p.id,
            plan_name: p.name.clone(),
            upgrade_mode: p.upgrade_mode,
            in_push_period,
            strategy: p.strategy.clone(),
            texts: p.texts.clone(),
            components,
        });
    }
    Ok(axum::Json(out))
}
