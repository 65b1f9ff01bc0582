//! Verification: try a package on one device and one component before a mass
//! upgrade. A job starts `pending`; its log and outcome are the package's
//! verification details.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::rules::{check_key, check_token};
use crate::Refusal;

/// How a verification ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Still running.
    Pending,
    /// The device upgraded and reported the target version.
    Succeeded,
    /// The upgrade failed.
    Failed,
}

/// Body of `POST /api/v1/packages/{id}/verifications`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVerification {
    /// Product of the device.
    pub product_key: String,
    /// The one device to verify on.
    pub device_key: String,
    /// The device component to upgrade, e.g. `STM32`.
    pub component_identity: String,
}

impl NewVerification {
    /// The rules that need no database: the keys and the component identity.
    /// The center checks besides that the device exists and reported the component,
    /// and that a delta package's source version is the device's.
    pub fn check(&self) -> Result<(), Refusal> {
        check_key("product_key", &self.product_key)?;
        check_key("device_key", &self.device_key)?;
        check_token("component_identity", &self.component_identity)
    }
}

/// One log line of a verification.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LogLine {
    /// When (RFC 3339).
    pub at: String,
    /// What happened.
    pub message: String,
}

/// A verification job and its log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Verification {
    /// Job id.
    pub id: i64,
    /// Package verified.
    pub package_id: i64,
    /// Product of the device.
    pub product_key: String,
    /// Device verified on.
    pub device_key: String,
    /// Component upgraded.
    pub component_identity: String,
    /// Pending, succeeded or failed.
    pub outcome: Outcome,
    /// The device's last OTA status code for the job (0 until it answers, 5 downloading, 9 updating, 11 update ok, …).
    pub status: u8,
    /// The status's name, e.g. `downloading`.
    pub status_name: String,
    /// Last download progress, percent.
    pub percent: Option<u8>,
    /// Start (RFC 3339).
    pub created_at: String,
    /// End (RFC 3339), once finished.
    pub finished_at: Option<String>,
    /// The log, oldest first.
    pub log: Vec<LogLine>,
}

/// Body of a log line report.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogReport {
    /// 1–2000 characters.
    pub message: String,
}

/// Body of an outcome report.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeReport {
    /// `succeeded` or `failed`.
    pub outcome: Outcome,
    /// Why; logged.
    pub message: String,
}

/// Check a log or outcome message: 1–2000 characters, not only spaces.
pub fn check_message(m: &str) -> Result<(), Refusal> {
    if m.trim().is_empty() || m.chars().count() > 2000 {
        return Err(Refusal::invalid(
            "invalid_message",
            "a log message must have 1 to 2000 characters",
        ));
    }
    Ok(())
}
