//! How a plan ended, and why it failed.

use crate::status::Status;
use crate::strategy::Refusal;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The end of one plan: succeeded or failed. A refused plan is a failure with
/// [`Failure::Refused`], so every plan ends in exactly one of two ways.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The component reported the target version.
    Succeeded,
    /// The plan did not reach the target version.
    Failed(Failure),
}

/// One plan's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanResult {
    /// Component identity.
    pub identity: String,
    /// The version the plan aimed at.
    pub target_version: String,
    /// How it ended.
    pub outcome: Outcome,
}

/// Which digest did not match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DigestKind {
    /// MD5.
    Md5,
    /// CRC32.
    Crc32,
    /// SHA-256.
    Sha256,
}

impl fmt::Display for DigestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DigestKind::Md5 => "MD5",
            DigestKind::Crc32 => "CRC32",
            DigestKind::Sha256 => "SHA-256",
        })
    }
}

/// A digest the center announced and the one computed over the downloaded bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    /// Which digest.
    pub kind: DigestKind,
    /// From the firmware info.
    pub expected: String,
    /// Computed.
    pub got: String,
}

/// Why a plan failed, in words a technician can act on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Failure {
    /// The strategy check failed and nobody overrode it.
    #[error("refused: {}", join(.0))]
    Refused(Vec<Refusal>),
    /// No firmware info after the plan was accepted.
    #[error("the center sent no firmware info within {waited_ms} ms of accepting the plan")]
    NoFirmwareInfo {
        /// How long the session waited.
        waited_ms: u64,
    },
    /// The firmware info was unusable.
    #[error("unusable firmware info: {problem}")]
    BadFirmwareInfo {
        /// What is wrong with it.
        problem: String,
    },
    /// Too many download failures.
    #[error("download failed {failures} times (last: {last}) — check the network and the URL")]
    DownloadGaveUp {
        /// Failures counted.
        failures: u8,
        /// The last failure.
        last: String,
    },
    /// The downloaded image does not match the announced digests; nothing went to the MCU.
    #[error("downloaded image does not match: {}; nothing was sent to the MCU", mismatches(.0))]
    DigestMismatch(Vec<Mismatch>),
    /// After a restore, the stored image no longer matched the verified digests; no further
    /// piece went to the MCU.
    #[error("the stored firmware image changed while the session was saved: {}; no further piece was sent to the MCU — run the upgrade again", mismatches(.0))]
    StoredImageChanged(Vec<Mismatch>),
    /// The adapter lost the stored image.
    #[error("the stored firmware image was lost; run the upgrade again")]
    ImageLost,
    /// The MCU did not take an offered piece in time.
    #[error(
        "the MCU did not take the piece at byte {offset} within {waited_ms} ms — is it connected?"
    )]
    McuDidNotTake {
        /// Start of the piece.
        offset: u64,
        /// How long the session waited.
        waited_ms: u64,
    },
    /// The MCU did not finish updating in time.
    #[error("the MCU did not finish updating within {waited_ms} ms")]
    UpdateTimeout {
        /// How long the session waited.
        waited_ms: u64,
    },
    /// The MCU finished but reported no version.
    #[error("the MCU reported no version within {waited_ms} ms of finishing the update")]
    NoVersionReport {
        /// How long the session waited.
        waited_ms: u64,
    },
    /// The MCU reported a version other than the target.
    #[error("the MCU reports version {reported:?}, the plan's target is {target:?}")]
    WrongVersion {
        /// What the MCU reported.
        reported: String,
        /// The plan's target version.
        target: String,
    },
}

impl Failure {
    /// The status reported to the center for this failure.
    pub fn status(&self) -> Status {
        match self {
            Failure::Refused(_) => Status::Refused,
            Failure::NoFirmwareInfo { .. }
            | Failure::BadFirmwareInfo { .. }
            | Failure::DownloadGaveUp { .. }
            | Failure::DigestMismatch(_)
            | Failure::ImageLost => Status::DownloadError,
            Failure::McuDidNotTake { .. }
            | Failure::StoredImageChanged(_)
            | Failure::UpdateTimeout { .. }
            | Failure::NoVersionReport { .. }
            | Failure::WrongVersion { .. } => Status::UpdateError,
        }
    }
}

fn join(reasons: &[Refusal]) -> String {
    reasons
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn mismatches(list: &[Mismatch]) -> String {
    list.iter()
        .map(|m| format!("{} expected {} got {}", m.kind, m.expected, m.got))
        .collect::<Vec<_>>()
        .join("; ")
}
