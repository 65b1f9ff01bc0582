//! Monitoring: per plan its devices, counts and upgrade log (JSON and CSV);
//! per device its upgrade history.

use axum::http::header;
use axum::response::IntoResponse;

use super::extract::{Path, Query};
use super::Shared;
use crate::error::{ApiError, ErrorBody};
use crate::monitoring::{self, DeviceHistory, LogEntry, PlanCounts, PlanDevice, Window};
use crate::{device, product};

/// The devices a plan was offered to, with each component's status, progress and times.
#[utoipa::path(get, path = "/api/v1/plans/{id}/devices", tag = "monitoring",
    params(("id" = i64, Path, description = "Plan id"), Window),
    responses((status = 200, description = "Devices by key", body = Vec<PlanDevice>), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn plan_devices(
    state: Shared,
    Path(id): Path<i64>,
    Query(window): Query<Window>,
) -> Result<axum::Json<Vec<PlanDevice>>, ApiError> {
    Ok(axum::Json(
        monitoring::plan_devices(&state.pool, id, &window).await?,
    ))
}

/// How many of a plan's upgrades stand at each status and outcome.
#[utoipa::path(get, path = "/api/v1/plans/{id}/counts", tag = "monitoring",
    params(("id" = i64, Path, description = "Plan id")),
    responses((status = 200, description = "Counts", body = PlanCounts), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn plan_counts(
    state: Shared,
    Path(id): Path<i64>,
) -> Result<axum::Json<PlanCounts>, ApiError> {
    Ok(axum::Json(monitoring::plan_counts(&state.pool, id).await?))
}

/// A plan's upgrade log: every transition with time, source and message, oldest first.
#[utoipa::path(get, path = "/api/v1/plans/{id}/log", tag = "monitoring",
    params(("id" = i64, Path, description = "Plan id"), Window),
    responses((status = 200, description = "Log", body = Vec<LogEntry>), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn plan_log(
    state: Shared,
    Path(id): Path<i64>,
    Query(window): Query<Window>,
) -> Result<axum::Json<Vec<LogEntry>>, ApiError> {
    Ok(axum::Json(
        monitoring::plan_log(&state.pool, id, &window).await?,
    ))
}

/// The same log as CSV (RFC 4180, with a header line).
#[utoipa::path(get, path = "/api/v1/plans/{id}/log.csv", tag = "monitoring",
    params(("id" = i64, Path, description = "Plan id"), Window),
    responses((status = 200, description = "Log as CSV", content_type = "text/csv", body = String), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn plan_log_csv(
    state: Shared,
    Path(id): Path<i64>,
    Query(window): Query<Window>,
) -> Result<impl IntoResponse, ApiError> {
    let entries = monitoring::plan_log(&state.pool, id, &window).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
        monitoring::log_csv(&entries),
    ))
}

/// A device's upgrades and their log.
#[utoipa::path(get, path = "/api/v1/products/{product_key}/devices/{device_key}/upgrades", tag = "monitoring",
    params(("product_key" = String, Path, description = "Product key"), ("device_key" = String, Path, description = "Device key"), Window),
    responses((status = 200, description = "History", body = DeviceHistory), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn device_history(
    state: Shared,
    Path((pk, dk)): Path<(String, String)>,
    Query(window): Query<Window>,
) -> Result<axum::Json<DeviceHistory>, ApiError> {
    let (pid, _) = product::get(&state.pool, &pk).await?;
    let (device_id, _) = device::get(&state.pool, pid, &pk, &dk).await?;
    Ok(axum::Json(
        monitoring::device_history(&state.pool, device_id, &window).await?,
    ))
}
