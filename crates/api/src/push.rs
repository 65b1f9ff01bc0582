//! `POST /api/v1/push`: run one push cycle now, or as the scheduler would at a given moment.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Body of `POST /api/v1/push`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    /// Run as at this moment (RFC 3339, cut to the minute) instead of now:
    /// plans are due only on their zone's 10-minute boundaries inside their push period.
    #[serde(default)]
    pub at: Option<String>,
}
