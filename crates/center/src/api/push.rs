//! `/push`: run one push cycle now, or as the scheduler would at a given moment.

use super::extract::Json;
use super::Shared;
use crate::channel::push::{self, PushReport};
use crate::error::{ApiError, ErrorBody};
pub use sota_api::push::PushRequest;

/// Push the due plans to the connected devices (what the scheduler does every 10 minutes).
#[utoipa::path(post, path = "/api/v1/push", tag = "monitoring", request_body = PushRequest,
    responses((status = 200, description = "What was pushed", body = PushReport), (status = 409, description = "A scheduled cycle another center claimed or that ran already (`cycle_claimed`), or one another center took over while this one ran it (`cycle_taken_over`)", body = ErrorBody), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn push(
    state: Shared,
    Json(body): Json<PushRequest>,
) -> Result<axum::Json<PushReport>, ApiError> {
    let at = match &body.at {
        None => jiff::Timestamp::now(),
        Some(text) => text.parse::<jiff::Timestamp>().map_err(|e| {
            ApiError::invalid(
                "invalid_time",
                format!(
                    "at {text:?} is not an RFC 3339 time such as \"2026-01-01T10:10:00Z\": {e}"
                ),
            )
        })?,
    };
    let at = push::on_the_minute(at);
    if !body.scheduled {
        return Ok(axum::Json(push::push(&state, at).await?));
    }
    // In a task of its own: a client that goes away must not stop a claimed cycle halfway.
    let state = state.0.clone();
    tokio::spawn(async move { push::scheduled(&state, at).await })
        .await
        .map_err(|e| ApiError::internal(format!("the push cycle stopped: {e}")))?
        .map(axum::Json)
}
