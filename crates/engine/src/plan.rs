//! What the center asks for: components, upgrade plans and firmware info (QuecThing semantics).

use serde::{Deserialize, Serialize};

/// At most this many plans arrive at once (QuecThing's multi-plan limit).
pub const MAX_PLANS: usize = 20;

/// A component the device reports: an identity such as `"STM32"` and an opaque version string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Component {
    /// Component identity, e.g. `"STM32"`.
    pub identity: String,
    /// Version string, e.g. `"1_0_0"`; compared only for equality.
    pub version: String,
}

/// Which firmware a plan replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ComponentType {
    /// The communication module's own firmware (FOTA).
    Module,
    /// An external MCU's firmware (SOTA).
    Mcu,
}

/// One component's upgrade plan as the center issues it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Identity of the component to upgrade.
    pub identity: String,
    /// Module or MCU firmware.
    pub component_type: ComponentType,
    /// Version a delta package applies to; empty for a full package.
    pub source_version: String,
    /// Version the component reports after a successful upgrade.
    pub target_version: String,
    /// Minimum battery level, percent.
    pub min_battery: u8,
    /// Minimum signal strength, dBm (e.g. -113).
    pub min_signal_dbm: i32,
    /// Free flash the upgrade needs, bytes.
    pub space_needed: u64,
    /// Size of the package, bytes.
    pub package_size: u64,
    /// Download failures this plan resumes after (the center's per-plan setting); `None`
    /// leaves it to the session's [`crate::Config::download_retries`].
    #[serde(default)]
    pub download_retries: Option<u8>,
}

impl Plan {
    /// True for a full package (no source version to match).
    pub fn is_full(&self) -> bool {
        self.source_version.is_empty()
    }
}

/// Who downloads the firmware.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DownloadMode {
    /// The console downloads, verifies and hands pieces to the MCU (QuecThing's default).
    #[default]
    ConsoleDownloads,
    /// The MCU downloads by itself; the console hands over URL and digests and relays status.
    McuDownloads,
}

/// The firmware the center issues after a plan was accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwareInfo {
    /// Identity of the component this firmware is for.
    pub identity: String,
    /// Version of the firmware.
    pub version: String,
    /// MD5, 32 hex digits.
    pub md5: String,
    /// CRC32 (IEEE, as zlib), 8 hex digits — the center's data-point format.
    pub crc32: String,
    /// SHA-256, 64 hex digits.
    pub sha256: String,
    /// Where to download the image.
    pub url: String,
    /// Image size, bytes.
    pub size: u64,
    /// Who downloads.
    pub mode: DownloadMode,
}
