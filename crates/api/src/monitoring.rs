//! Monitoring: what the upgrades of a plan or a device look like now, and
//! their log.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// How an upgrade ended, or `pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Still going.
    Pending,
    /// The device reported the plan's target version.
    Succeeded,
    /// Download or update failed, or the device ended on another version.
    Failed,
    /// The device refused the plan.
    Refused,
}

impl Outcome {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pending => "pending",
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Refused => "refused",
        }
    }

    /// The outcome a stored name stands for; anything unknown is `pending`.
    pub fn parse(s: &str) -> Self {
        match s {
            "succeeded" => Outcome::Succeeded,
            "failed" => Outcome::Failed,
            "refused" => Outcome::Refused,
            _ => Outcome::Pending,
        }
    }
}

/// One upgrade: a plan's component on a device.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UpgradeView {
    /// Plan id.
    pub plan_id: i64,
    /// Device key.
    pub device_key: String,
    /// Component identity.
    pub identity: String,
    /// Last OTA status code (0 offered, 1 plan, 2 accepted, …, 11 update ok, 12 update error).
    pub status: u8,
    /// The status's name, e.g. `downloading`.
    pub status_name: String,
    /// Last download progress, percent.
    pub percent: Option<u8>,
    /// `pending`, `succeeded`, `failed` or `refused`.
    pub outcome: Outcome,
    /// Last log message.
    pub message: String,
    /// When it was first offered (RFC 3339).
    pub started_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
    /// When it ended (RFC 3339), if it did.
    pub finished_at: Option<String>,
}

/// A device of a plan with each of its components' upgrades.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PlanDevice {
    /// Device key.
    pub device_key: String,
    /// One entry per component offered.
    pub components: Vec<UpgradeView>,
}

/// How many upgrades of a plan stand where.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PlanCounts {
    /// Devices the plan was offered to.
    pub devices: u64,
    /// Upgrades (device × component) by last status name.
    pub by_status: BTreeMap<String, u64>,
    /// Upgrades by outcome.
    pub by_outcome: BTreeMap<String, u64>,
}

/// One line of the upgrade log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LogEntry {
    /// Position in the log.
    pub id: i64,
    /// When (RFC 3339).
    pub at: String,
    /// Plan id.
    pub plan_id: i64,
    /// Device key.
    pub device_key: String,
    /// Component identity.
    pub identity: String,
    /// `device` (its report) or `center` (an offer, or success or failure decided by version).
    pub source: String,
    /// OTA status code.
    pub status: u8,
    /// The status's name.
    pub status_name: String,
    /// Download progress, percent.
    pub percent: Option<u8>,
    /// What happened.
    pub message: String,
}

/// A device's upgrade history.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeviceHistory {
    /// Every upgrade offered to the device, newest plan first.
    pub upgrades: Vec<UpgradeView>,
    /// Their log, oldest first.
    pub log: Vec<LogEntry>,
}

/// Paging of logs and device lists.
#[derive(Debug, Clone, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Window {
    /// Entries to skip.
    pub offset: Option<u32>,
    /// At most this many entries (default 1000, max 10000).
    pub limit: Option<u32>,
}

impl Window {
    /// `(limit, offset)` as the center applies them: the limit defaults to
    /// 1000 and is held to 1–10000, the offset defaults to 0.
    pub fn bounds(&self) -> (i64, i64) {
        (
            i64::from(self.limit.unwrap_or(1000).clamp(1, 10_000)),
            i64::from(self.offset.unwrap_or(0)),
        )
    }
}
