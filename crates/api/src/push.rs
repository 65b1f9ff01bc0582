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
    /// Run it as the scheduler's cycle at that moment: claimed among the centers sharing the
    /// database, so it runs once (409 `cycle_claimed` from every other center, or when it ran
    /// already), and finished by another center should this one die during it (unless that is
    /// found more than 10 minutes after `at`). Otherwise the push runs now whatever ran before.
    #[serde(default)]
    pub scheduled: bool,
}
