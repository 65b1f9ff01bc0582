//! Live changes as server-sent events: a plan's upgrades for its monitoring
//! page, a verification job for its details page ([`crate::events`]).
//!
//! Signed in like every operator endpoint, with `Authorization: Bearer`: the
//! console reads these streams with `fetch` (the browser's `EventSource`
//! cannot send that header, and a token in the URL would end up in access
//! logs and the browser's history). A plan's stream lasts until the client
//! leaves; a job's ends once the job has an outcome. Both end when the
//! center shuts down.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;

use super::extract::Path;
use super::{AppState, Shared};
use crate::error::{ApiError, ErrorBody};
use crate::events::{Next, Topic, Watch};
use crate::verification::{self, Outcome, Verification};
use sota_api::events::PlanEvent;

/// A comment this often keeps idle connections (and proxies) open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

fn event(json: &str) -> Result<Event, Infallible> {
    Ok(Event::default().data(json))
}

fn plan_event(e: &PlanEvent) -> Result<Event, Infallible> {
    // A fixed enum of plain fields: serializing it cannot fail.
    event(&serde_json::to_string(e).unwrap_or_default())
}

/// Live changes of a plan's upgrades.
#[utoipa::path(get, path = "/api/v1/plans/{id}/events", tag = "monitoring",
    params(("id" = i64, Path, description = "Plan id")),
    responses(
        (status = 200, description = "Server-sent events until the client leaves; each event's data is one PlanEvent as JSON: `open` first, then `upgrade` for every upgrade offered or moved, `lagged` when changes were dropped for this slow client (load the lists again)", content_type = "text/event-stream", body = PlanEvent),
        (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn plan(
    state: Shared,
    Path(id): Path<i64>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    crate::monitoring::check_plan(&state.pool, id).await?;
    let watch = state.events.watch(Topic::Plan(id));
    let open = futures::stream::once(async { plan_event(&PlanEvent::Open) });
    let changes = futures::stream::unfold(watch, |mut watch| async move {
        let event = match watch.next().await {
            Next::Change { json, .. } => event(&json),
            Next::Lagged(missed) => plan_event(&PlanEvent::Lagged { missed }),
            Next::Closed => return None,
        };
        Some((event, watch))
    });
    Ok(Sse::new(futures::StreamExt::chain(open, changes))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// Live changes of a verification job: the job as it is now, then again at
/// every change, until it has an outcome.
#[utoipa::path(get, path = "/api/v1/verifications/{id}/events", tag = "verifications",
    params(("id" = i64, Path, description = "Verification id")),
    responses(
        (status = 200, description = "Server-sent events; each event's data is the Verification as JSON: as it is now, then at every change; the stream ends after the one with an outcome", content_type = "text/event-stream", body = Verification),
        (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn verification(
    state: Shared,
    Path(id): Path<i64>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // Watch first, then read: a change in between is sent, not lost.
    let watch = state.events.watch(Topic::Verification(id));
    let now = verification::get(&state.pool, id).await?;
    let state: Arc<AppState> = state.0.clone();
    // The watch and the job as read but not sent yet; `None` once the job ended.
    let start: Option<(Watch, Option<Verification>)> = Some((watch, Some(now)));
    let stream = futures::stream::unfold(start, move |job| {
        let state = state.clone();
        async move {
            let (mut watch, mut read) = job?;
            loop {
                if let Some(job) = read.take() {
                    let json = serde_json::to_string(&job).unwrap_or_default();
                    let next = (job.outcome == Outcome::Pending).then_some((watch, None));
                    return Some((event(&json), next));
                }
                match watch.next().await {
                    Next::Change { json, last } => {
                        let next = (!last).then_some((watch, None));
                        return Some((event(&json), next));
                    }
                    // Changes were dropped: the job as it is now says all of them.
                    Next::Lagged(_) => match verification::get(&state.pool, id).await {
                        Ok(job) => read = Some(job),
                        Err(e) => {
                            tracing::warn!("verification {id}'s stream ends: {}", e.message);
                            return None;
                        }
                    },
                    Next::Closed => return None,
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}
