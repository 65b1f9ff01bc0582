//! `/plans`: create, edit (drafts only), delete (drafts only) and life cycle.

use axum::http::StatusCode;

use super::extract::{Json, Path, Query};
use super::Shared;
use crate::error::{ApiError, ErrorBody};
use crate::plan::{self, Plan, PlanFilter, PlanInput, Transition};

/// Create a draft plan.
#[utoipa::path(post, path = "/api/v1/plans", tag = "plans", request_body = PlanInput,
    responses((status = 201, description = "Created as draft", body = Plan), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn create(
    state: Shared,
    Json(input): Json<PlanInput>,
) -> Result<(StatusCode, axum::Json<Plan>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(plan::create(&state.pool, &input, false).await?),
    ))
}

/// Plans, newest first: all or one product's, a page of them, optionally searched by name.
#[utoipa::path(get, path = "/api/v1/plans", tag = "plans", params(PlanFilter),
    responses((status = 200, description = "Plans", body = Vec<Plan>), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn list(
    state: Shared,
    Query(filter): Query<PlanFilter>,
) -> Result<axum::Json<Vec<Plan>>, ApiError> {
    Ok(axum::Json(plan::list(&state.pool, &filter).await?))
}

/// One plan.
#[utoipa::path(get, path = "/api/v1/plans/{id}", tag = "plans", params(("id" = i64, Path, description = "Plan id")),
    responses((status = 200, description = "The plan", body = Plan), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn get(state: Shared, Path(id): Path<i64>) -> Result<axum::Json<Plan>, ApiError> {
    Ok(axum::Json(plan::get(&state.pool, id).await?))
}

/// Replace a draft's content (refused once activated).
#[utoipa::path(put, path = "/api/v1/plans/{id}", tag = "plans", params(("id" = i64, Path, description = "Plan id")), request_body = PlanInput,
    responses((status = 200, description = "Updated", body = Plan), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn update(
    state: Shared,
    Path(id): Path<i64>,
    Json(input): Json<PlanInput>,
) -> Result<axum::Json<Plan>, ApiError> {
    Ok(axum::Json(plan::update(&state.pool, id, &input).await?))
}

/// Delete a draft (refused once activated).
#[utoipa::path(delete, path = "/api/v1/plans/{id}", tag = "plans", params(("id" = i64, Path, description = "Plan id")),
    responses((status = 204, description = "Deleted"), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn delete(state: Shared, Path(id): Path<i64>) -> Result<StatusCode, ApiError> {
    plan::delete(&state.pool, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn move_plan(state: Shared, id: i64, t: Transition) -> Result<axum::Json<Plan>, ApiError> {
    Ok(axum::Json(plan::transition(&state.pool, id, t).await?))
}

/// draft → active; the plan is frozen from now on.
#[utoipa::path(post, path = "/api/v1/plans/{id}/activate", tag = "plans", params(("id" = i64, Path, description = "Plan id")),
    responses((status = 200, description = "Activated", body = Plan), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn activate(state: Shared, Path(id): Path<i64>) -> Result<axum::Json<Plan>, ApiError> {
    move_plan(state, id, Transition::Activate).await
}

/// active → paused.
#[utoipa::path(post, path = "/api/v1/plans/{id}/pause", tag = "plans", params(("id" = i64, Path, description = "Plan id")),
    responses((status = 200, description = "Paused", body = Plan), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn pause(state: Shared, Path(id): Path<i64>) -> Result<axum::Json<Plan>, ApiError> {
    move_plan(state, id, Transition::Pause).await
}

/// paused → active.
#[utoipa::path(post, path = "/api/v1/plans/{id}/resume", tag = "plans", params(("id" = i64, Path, description = "Plan id")),
    responses((status = 200, description = "Resumed", body = Plan), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn resume(state: Shared, Path(id): Path<i64>) -> Result<axum::Json<Plan>, ApiError> {
    move_plan(state, id, Transition::Resume).await
}

/// active or paused → finished (final).
#[utoipa::path(post, path = "/api/v1/plans/{id}/finish", tag = "plans", params(("id" = i64, Path, description = "Plan id")),
    responses((status = 200, description = "Finished", body = Plan), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn finish(state: Shared, Path(id): Path<i64>) -> Result<axum::Json<Plan>, ApiError> {
    move_plan(state, id, Transition::Finish).await
}
