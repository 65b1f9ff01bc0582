//! The plan life cycle: draft → active → (paused ↔ active) → finished. The
//! states and their transitions are the API's (`sota-api`).

use crate::error::ApiError;
pub use sota_api::plan::{PlanState, Transition};

/// Parse a stored state name.
pub fn parse(s: &str) -> Result<PlanState, ApiError> {
    PlanState::from_name(s)
        .ok_or_else(|| ApiError::internal(format!("unknown plan state {s:?} in the database")))
}
