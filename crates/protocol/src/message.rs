//! The messages: [`Up`] (device → center) and [`Down`] (center → device),
//! JSON objects tagged by `type`, field names after QuecThing's data points.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sota_engine::Status;

/// Longest free-text `message` accepted from a device, in characters.
pub const MAX_MESSAGE_CHARS: usize = 1000;
/// Most components in one version report (the center's per-device limit).
pub const MAX_COMPONENTS: usize = 64;

/// Device → center, on `sota/<product>/<device>/up`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Up {
    /// Dynamic registration (QuecThing's): a device not yet registered asks
    /// for its device secret, proving it is of the product by the product
    /// secret; answered by [`Down::Registered`]. Checked by the center itself,
    /// so it works behind any broker.
    Register {
        /// The product's secret.
        product_secret: String,
    },
    /// The current version of each component (QuecThing's `Qth_configSetMcuVer`).
    Versions {
        /// One entry per component, 1 to 64.
        components: Vec<ComponentVersion>,
    },
    /// Ask for the plans that apply now (QuecThing's `Qth_otaRequest`).
    Request,
    /// Accept a plan's component: the center answers with [`Down::Firmware`].
    Accept {
        /// The plan.
        plan_id: i64,
        /// The component.
        comp_no: String,
        /// Why, when the device accepts despite a failed strategy check (the technician's
        /// override reason), for the upgrade log; empty (and left out) otherwise.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        message: String,
    },
    /// Refuse a plan's component, saying why.
    Refuse {
        /// The plan.
        plan_id: i64,
        /// The component.
        comp_no: String,
        /// The reason, for the upgrade log.
        #[serde(default)]
        message: String,
    },
    /// An OTA status of one plan's component.
    Status(StatusReport),
}

/// One component's version, as a device reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentVersion {
    /// Component identity, e.g. `STM32`.
    pub comp_no: String,
    /// Its version, e.g. `1_0_0`.
    pub version: String,
}

/// An OTA status report: QuecThing's codes 0–12 with progress and a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    /// The plan.
    pub plan_id: i64,
    /// The component.
    pub comp_no: String,
    /// The status, as its numeric code (0, 1, 2, 3, 4, 5, 6, 8, 9, 11, 12).
    #[serde(with = "status_code")]
    pub status: Status,
    /// Download progress 0–100, with status 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u8>,
    /// The component's version now, with status 11 (the center decides success by it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// What happened, for the upgrade log.
    #[serde(default)]
    pub message: String,
}

/// Center → device, on `sota/<product>/<device>/down`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Down {
    /// The answer to [`Up::Register`]: the secret to log in with from now on.
    Registered {
        /// The device secret; shown once, the center keeps only its hash.
        device_secret: String,
    },
    /// The plans that apply (answer to [`Up::Request`], or a push); may be empty.
    Plans {
        /// At most 20 ([`sota_engine::MAX_PLANS`]).
        plans: Vec<PlanOffer>,
    },
    /// Firmware of an accepted component.
    Firmware(Firmware),
    /// A message the center could not take.
    Error {
        /// What kind of problem.
        code: ErrorCode,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// What a `planId` names. Upgrade plans have positive ids; a verification job
/// (one package tried on one device before a mass upgrade) travels as the
/// negative of its id, so every message that names a plan can name a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    /// An upgrade plan.
    Plan(i64),
    /// A verification job.
    Verification(i64),
}

impl Job {
    /// The job a wire `planId` names; `None` for 0 (and `i64::MIN`, which has no positive twin).
    pub fn from_plan_id(id: i64) -> Option<Job> {
        match id {
            0 | i64::MIN => None,
            id if id > 0 => Some(Job::Plan(id)),
            id => Some(Job::Verification(-id)),
        }
    }

    /// The wire `planId` of this job.
    pub fn plan_id(self) -> i64 {
        match self {
            Job::Plan(id) => id,
            Job::Verification(id) => -id,
        }
    }
}

/// Module (0) or MCU (1) firmware: QuecThing's `compType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum CompType {
    /// 0: the communication module's firmware (FOTA).
    Module,
    /// 1: an MCU's firmware (SOTA).
    Mcu,
}

impl From<CompType> for u8 {
    fn from(t: CompType) -> u8 {
        match t {
            CompType::Module => 0,
            CompType::Mcu => 1,
        }
    }
}

impl TryFrom<u8> for CompType {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        match v {
            0 => Ok(CompType::Module),
            1 => Ok(CompType::Mcu),
            _ => Err(format!("compType {v} is neither 0 (module) nor 1 (MCU)")),
        }
    }
}

/// A full image, or a delta from `srcVer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageType {
    /// Any source version; `srcVer` is empty.
    Full,
    /// Only from `srcVer`.
    Delta,
}

/// Silent (the device goes ahead) or manual (the user confirms, shown `texts`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpgradeMode {
    /// No confirmation.
    Silent,
    /// The user confirms.
    Manual,
}

/// Who downloads the image: the module (or the console playing it), or the MCU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DownloadMode {
    /// The module downloads and hands pieces to the MCU (QuecThing's default).
    Module,
    /// The MCU downloads by itself.
    Mcu,
}

/// One plan's component as offered to a device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanOffer {
    /// The plan.
    pub plan_id: i64,
    /// Component identity.
    pub comp_no: String,
    /// Module or MCU.
    pub comp_type: CompType,
    /// Full or delta.
    pub package_type: PackageType,
    /// Version a delta applies to; empty for a full package.
    pub src_ver: String,
    /// Version after the upgrade.
    pub tgt_ver: String,
    /// Minimum battery, percent.
    pub min_battery: u8,
    /// Minimum signal, dBm.
    pub min_signal: i32,
    /// Free space the upgrade needs, bytes.
    pub use_space: u64,
    /// Image size, bytes.
    pub size: u64,
    /// Download retries after a failure.
    pub download_retries: u8,
    /// Silent or manual.
    pub mode: UpgradeMode,
    /// Manual mode's texts, by language code (every language the plan has).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub texts: BTreeMap<String, String>,
}

/// The firmware of an accepted component.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Firmware {
    /// The plan.
    pub plan_id: i64,
    /// Component identity.
    pub comp_no: String,
    /// Version of the image.
    pub version: String,
    /// MD5, 32 hex digits.
    pub md5: String,
    /// CRC32 (IEEE), 8 hex digits.
    pub crc: String,
    /// SHA-256, 64 hex digits.
    pub sha256: String,
    /// Download link, signed for this device; expires.
    pub url: String,
    /// Image size, bytes.
    pub size: u64,
    /// Who downloads.
    pub download_mode: DownloadMode,
}

/// Why the center did not take a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Larger than the limit.
    TooLarge,
    /// Not JSON.
    BadJson,
    /// No `type`.
    MissingType,
    /// A `type` this side does not know.
    UnknownType,
    /// A known type with missing or invalid fields.
    InvalidMessage,
    /// The payload names another device than the topic.
    WrongDevice,
    /// The plan or component named is not offered to this device.
    UnknownPlan,
    /// Registration refused (wrong product secret, or already registered).
    RegistrationRefused,
    /// The device is not registered: send `register` first.
    UnknownDevice,
    /// Over the device's message rate: wait, then send again what still needs an answer.
    RateLimited,
    /// The center's queue for this device is full: send the message again shortly.
    Busy,
    /// The center failed; retry later.
    Internal,
    /// A code from a newer center.
    #[serde(other)]
    Other,
}

impl Up {
    /// Accept `comp_no` of plan `plan_id`, with no remark.
    pub fn accept(plan_id: i64, comp_no: impl Into<String>) -> Up {
        Up::Accept {
            plan_id,
            comp_no: comp_no.into(),
            message: String::new(),
        }
    }

    /// The message as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("messages have string keys only and always serialize")
    }

    /// One line for a log (no secret in it).
    pub fn summary(&self) -> String {
        match self {
            Up::Register { .. } => "register".into(),
            Up::Versions { components } => {
                let list: Vec<String> = components
                    .iter()
                    .map(|c| format!("{} {}", c.comp_no, c.version))
                    .collect();
                format!("versions {}", list.join(", "))
            }
            Up::Request => "request plans".into(),
            Up::Accept {
                plan_id,
                comp_no,
                message,
            } if message.is_empty() => format!("accept plan {plan_id} for {comp_no}"),
            Up::Accept {
                plan_id,
                comp_no,
                message,
            } => format!("accept plan {plan_id} for {comp_no}: {message}"),
            Up::Refuse {
                plan_id,
                comp_no,
                message,
            } => format!("refuse plan {plan_id} for {comp_no}: {message}"),
            Up::Status(s) => format!("status {} ({}) {}", s.status.code(), s.comp_no, s.message),
        }
    }

    /// The `type` tag of this message.
    pub fn kind(&self) -> &'static str {
        match self {
            Up::Register { .. } => "register",
            Up::Versions { .. } => "versions",
            Up::Request => "request",
            Up::Accept { .. } => "accept",
            Up::Refuse { .. } => "refuse",
            Up::Status(_) => "status",
        }
    }
}

impl Down {
    /// The message as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("messages have string keys only and always serialize")
    }

    /// One line for a log (no secret in it).
    pub fn summary(&self) -> String {
        match self {
            Down::Plans { plans } => format!("plans ({})", plans.len()),
            Down::Firmware(f) => {
                format!(
                    "firmware info for {} {} ({} bytes)",
                    f.comp_no, f.version, f.size
                )
            }
            Down::Registered { .. } => "registered".into(),
            Down::Error { code, message } => format!("error {code:?}: {message}"),
        }
    }

    /// An error answer.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Down::Error {
            code,
            message: message.into(),
        }
    }
}

/// Serde for [`Status`] as QuecThing's numeric code.
mod status_code {
    use serde::{Deserialize, Deserializer, Serializer};
    use sota_engine::Status;

    pub fn serialize<S: Serializer>(s: &Status, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_u8(s.code())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Status, D::Error> {
        let code = u8::deserialize(de)?;
        Status::from_code(code).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "status {code} is not an OTA status; use 0, 1, 2, 3, 4, 5, 6, 8, 9, 11 or 12"
            ))
        })
    }
}

/// A status's name in logs and the monitoring API (`download_ok`, `update_error`, …).
pub fn status_name(status: Status) -> &'static str {
    match status {
        Status::None => "none",
        Status::Plan => "plan",
        Status::Accepted => "accepted",
        Status::Refused => "refused",
        Status::DownloadStart => "download_start",
        Status::Downloading => "downloading",
        Status::DownloadError => "download_error",
        Status::DownloadOk => "download_ok",
        Status::Updating => "updating",
        Status::UpdateOk => "update_ok",
        Status::UpdateError => "update_error",
    }
}
