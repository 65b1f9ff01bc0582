//! Verification jobs: one package on one device component.

use axum::http::StatusCode;

use super::extract::{Json, Path};
use super::Shared;
use crate::error::{ApiError, ErrorBody};
use crate::verification::{self, LogReport, NewVerification, OutcomeReport, Verification};

/// Start verifying a package on one device component; offered at once over
/// the channel if the device is connected, else at its next request.
#[utoipa::path(post, path = "/api/v1/packages/{id}/verifications", tag = "verifications",
    params(("id" = i64, Path, description = "Package id")), request_body = NewVerification,
    responses((status = 201, description = "Job created (pending)", body = Verification), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn create(
    state: Shared,
    Path(id): Path<i64>,
    Json(body): Json<NewVerification>,
) -> Result<(StatusCode, axum::Json<Verification>), ApiError> {
    let job = verification::create(&state.pool, &state.reported, id, &body).await?;
    offer_now(&state, &job).await;
    Ok((StatusCode::CREATED, axum::Json(job)))
}

/// Offer a new job to its device at once if it is connected; otherwise its
/// next request gets it. A failure here leaves the job pending, so it is logged only.
async fn offer_now(state: &super::AppState, job: &Verification) {
    let Some(id) = sota_protocol::DeviceId::new(&job.product_key, &job.device_key) else {
        return;
    };
    if !state.presence.is_connected(&id) {
        return;
    }
    let found = crate::channel::messages::lookup(state, &id).await;
    let plans = match found {
        Ok(Some(d)) => crate::channel::verify::offers(state, d.device_id).await,
        Ok(None) => return,
        Err(e) => Err(e),
    };
    match plans {
        Ok(plans) => {
            let down = sota_protocol::Down::Plans { plans };
            crate::channel::client::send(state, &id, &down).await;
        }
        Err(e) => {
            tracing::error!(device = %id, "cannot offer verification job {}: {}", job.id, e.message)
        }
    }
}

/// A package's verification details.
#[utoipa::path(get, path = "/api/v1/packages/{id}/verifications", tag = "verifications",
    params(("id" = i64, Path, description = "Package id")),
    responses((status = 200, description = "Jobs, newest first", body = Vec<Verification>), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn list(
    state: Shared,
    Path(id): Path<i64>,
) -> Result<axum::Json<Vec<Verification>>, ApiError> {
    Ok(axum::Json(
        verification::list_for_package(&state.pool, id).await?,
    ))
}

/// One verification job.
#[utoipa::path(get, path = "/api/v1/verifications/{id}", tag = "verifications",
    params(("id" = i64, Path, description = "Verification id")),
    responses((status = 200, description = "The job", body = Verification), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn get(state: Shared, Path(id): Path<i64>) -> Result<axum::Json<Verification>, ApiError> {
    Ok(axum::Json(verification::get(&state.pool, id).await?))
}

/// Append a line to a pending job's log.
#[utoipa::path(post, path = "/api/v1/verifications/{id}/log", tag = "verifications",
    params(("id" = i64, Path, description = "Verification id")), request_body = LogReport,
    responses((status = 200, description = "The job", body = Verification), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn log(
    state: Shared,
    Path(id): Path<i64>,
    Json(body): Json<LogReport>,
) -> Result<axum::Json<Verification>, ApiError> {
    let job = verification::append_log(&state.pool, id, &body.message).await?;
    crate::events::verification_changed(&state, &job);
    Ok(axum::Json(job))
}

/// Record a pending job's outcome (once).
#[utoipa::path(post, path = "/api/v1/verifications/{id}/outcome", tag = "verifications",
    params(("id" = i64, Path, description = "Verification id")), request_body = OutcomeReport,
    responses((status = 200, description = "The job", body = Verification), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn outcome(
    state: Shared,
    Path(id): Path<i64>,
    Json(body): Json<OutcomeReport>,
) -> Result<axum::Json<Verification>, ApiError> {
    let job = verification::finish(&state.pool, id, &body).await?;
    crate::events::verification_changed(&state, &job);
    Ok(axum::Json(job))
}
