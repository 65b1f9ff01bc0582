//! Verification jobs over the channel: a job offers its package to its one
//! device (whatever the plans say) as a plan whose `planId` is the negative
//! job id, and its log and outcome come from the device's own reports. It
//! succeeds when the device reports the package's target version.

use sota_engine::Status;
use sota_protocol::{
    status_name, Delivery, DeviceId, Down, ErrorCode, Job, PlanOffer, StatusReport, UpgradeMode,
};
use sqlx::Row;

use super::offers;
use crate::api::AppState;
use crate::error::ApiError;
use crate::plan::Strategy;
use crate::upgrade::{self, Current, Outcome as UpgradeOutcome, Source, Step};
use crate::verification::{self, Outcome, OutcomeReport};

/// A pending job of one device.
struct Pending {
    id: i64,
    package_id: i64,
    identity: String,
    now: Current,
}

fn pending_row(row: &sqlx::any::AnyRow) -> Result<Pending, ApiError> {
    let code: i64 = row.try_get("status")?;
    let percent: Option<i64> = row.try_get("percent")?;
    Ok(Pending {
        id: row.try_get("id")?,
        package_id: row.try_get("package_id")?,
        identity: row.try_get("component_identity")?,
        now: Current {
            status: u8::try_from(code)
                .ok()
                .and_then(Status::from_code)
                .unwrap_or(Status::None),
            percent: percent.and_then(|p| u8::try_from(p).ok()),
            outcome: UpgradeOutcome::Pending,
        },
    })
}

const COLUMNS: &str = "id, package_id, component_identity, status, percent";

/// The device's pending jobs as plan offers (oldest first).
pub async fn offers(state: &AppState, device_id: i64) -> Result<Vec<PlanOffer>, ApiError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM verifications WHERE device_id = $1 AND outcome = 'pending' ORDER BY id"
    ))
    .bind(device_id)
    .fetch_all(&state.pool)
    .await?;
    let mut out = Vec::new();
    for row in &rows {
        let job = pending_row(row)?;
        let pkg = crate::package::get(&state.pool, job.package_id).await?;
        let plan = offers::engine_plan(&Strategy::default(), &job.identity, &pkg, 0)?;
        let delivery = Delivery {
            mode: UpgradeMode::Silent,
            texts: Default::default(),
        };
        out.push(PlanOffer::new(
            Job::Verification(job.id).plan_id(),
            &plan,
            delivery,
        ));
    }
    Ok(out)
}

/// The job if it belongs to this device and component: `Ok(None)` when not.
async fn job(
    state: &AppState,
    id: i64,
    device_id: i64,
    identity: &str,
) -> Result<Option<(Pending, Outcome)>, ApiError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS}, outcome FROM verifications WHERE id = $1 AND device_id = $2 AND component_identity = $3"))
        .bind(id)
        .bind(device_id)
        .bind(identity)
        .fetch_optional(&state.pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let outcome: String = row.try_get("outcome")?;
    let outcome = match outcome.as_str() {
        "succeeded" => Outcome::Succeeded,
        "failed" => Outcome::Failed,
        _ => Outcome::Pending,
    };
    Ok(Some((pending_row(&row)?, outcome)))
}

fn unknown(from: &DeviceId, id: i64, identity: &str) -> Option<Down> {
    let message = format!("verification job {id} is not for {from} and component {identity:?}; use the planId and compNo of a plans message");
    tracing::warn!(device = %from, "channel message refused: {message}");
    Some(Down::error(ErrorCode::UnknownPlan, message))
}

async fn end(state: &AppState, id: i64, succeeded: bool, message: String) -> Result<(), ApiError> {
    let outcome = if succeeded {
        Outcome::Succeeded
    } else {
        Outcome::Failed
    };
    match verification::finish(&state.pool, id, &OutcomeReport { outcome, message }).await {
        Ok(job) => {
            crate::events::verification_changed(state, &job);
            Ok(())
        }
        // Finished meanwhile by another report: the first outcome stands.
        Err(e) if e.status == axum::http::StatusCode::CONFLICT => Ok(()),
        Err(e) => Err(e),
    }
}

async fn set_status(state: &AppState, id: i64, step: &Step) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE verifications SET status = $1, percent = $2 WHERE id = $3 AND outcome = 'pending'",
    )
    .bind(i64::from(step.status.code()))
    .bind(step.percent.map(i64::from))
    .bind(id)
    .execute(&state.pool)
    .await?;
    let line = match step.percent {
        // Devices often say the percent themselves ("downloaded 40 %").
        Some(p) if !step.message.contains(&format!("{p} %")) => {
            format!("device: {} ({p} %)", step.message)
        }
        _ => format!("device: {}", step.message),
    };
    let job = verification::append_log(&state.pool, id, &line).await?;
    crate::events::verification_changed(state, &job);
    Ok(())
}

/// `accept` of a job: its firmware, or an error.
pub async fn accept(
    state: &AppState,
    from: &DeviceId,
    device_id: i64,
    id: i64,
    identity: &str,
) -> Result<Option<Down>, ApiError> {
    let Some((job, outcome)) = job(state, id, device_id, identity).await? else {
        return Ok(unknown(from, id, identity));
    };
    if outcome != Outcome::Pending {
        return Ok(Some(Down::error(
            ErrorCode::UnknownPlan,
            format!("verification job {id} has ended ({outcome:?})"),
        )));
    }
    let pkg = crate::package::get(&state.pool, job.package_id).await?;
    let (firmware, expires) = offers::firmware_of(
        state,
        &pkg,
        0,
        Job::Verification(id).plan_id(),
        &from.device,
        identity,
    )?;
    let step = Step {
        status: Status::Accepted,
        percent: None,
        source: Source::Device,
        message: format!("accepted; firmware link expires {expires}"),
    };
    if upgrade::moves(job.now, &step) {
        set_status(state, id, &step).await?;
    }
    Ok(Some(Down::Firmware(firmware)))
}

/// `refuse` of a job: it fails with the device's reason.
pub async fn refuse(
    state: &AppState,
    from: &DeviceId,
    device_id: i64,
    id: i64,
    identity: &str,
    message: &str,
) -> Result<Option<Down>, ApiError> {
    let Some((_, outcome)) = job(state, id, device_id, identity).await? else {
        return Ok(unknown(from, id, identity));
    };
    if outcome == Outcome::Pending {
        end(state, id, false, format!("the device refused: {message}")).await?;
    }
    Ok(None)
}

/// A status of a job; 11 ends it by the reported version.
pub async fn status(
    state: &AppState,
    from: &DeviceId,
    device_id: i64,
    id: i64,
    r: &StatusReport,
    current_version: Option<String>,
) -> Result<Option<Down>, ApiError> {
    let Some((job, outcome)) = job(state, id, device_id, &r.comp_no).await? else {
        return Ok(unknown(from, id, &r.comp_no));
    };
    let name = status_name(r.status);
    let said = if r.message.is_empty() {
        name.to_string()
    } else {
        format!("{name}: {}", r.message)
    };
    let step = Step {
        status: r.status,
        percent: r.percent,
        source: Source::Device,
        message: said.clone(),
    };
    if outcome != Outcome::Pending || !upgrade::moves(job.now, &step) {
        return Ok(None);
    }
    set_status(state, id, &step).await?;
    match r.status {
        Status::UpdateOk => {
            let target = crate::package::get(&state.pool, job.package_id)
                .await?
                .meta
                .target_version;
            let version = r.version.clone().or(current_version);
            if version.as_deref() == Some(target.as_str()) {
                end(
                    state,
                    id,
                    true,
                    format!("the device reports version {target}, the package's target"),
                )
                .await?;
            } else {
                let v = version.unwrap_or_else(|| "unknown".into());
                end(state, id, false, format!("the device reported update ok but its version is {v}, not the package's target {target}")).await?;
            }
        }
        Status::DownloadError | Status::UpdateError | Status::Refused => {
            end(state, id, false, said).await?
        }
        _ => {}
    }
    Ok(None)
}

/// A version report: ends the device's `updating` jobs of that component that reached their target.
pub async fn versions(
    state: &AppState,
    device_id: i64,
    identity: &str,
    version: &str,
) -> Result<(), ApiError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM verifications WHERE device_id = $1 AND component_identity = $2 AND outcome = 'pending' AND status = $3"
    ))
    .bind(device_id)
    .bind(identity)
    .bind(i64::from(Status::Updating.code()))
    .fetch_all(&state.pool)
    .await?;
    for row in &rows {
        let job = pending_row(row)?;
        let target = crate::package::get(&state.pool, job.package_id)
            .await?
            .meta
            .target_version;
        if target == version {
            end(
                state,
                job.id,
                true,
                format!("the device reports version {version}, the package's target"),
            )
            .await?;
        }
    }
    Ok(())
}
