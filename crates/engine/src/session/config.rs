//! Session settings: piece size, download retries and the waits.

use serde::{Deserialize, Serialize};

/// How long each wait may last, in milliseconds. The defaults are the QuecThing module's,
/// plus three of our own (marked) for waits the module leaves open, so no session can hang.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// Ours: an offered plan waits this long for readings, then is refused (10 min).
    pub decision_ms: u64,
    /// Firmware info after accepting (30 s).
    pub firmware_info_ms: u64,
    /// Ours: a download that delivers no byte this long counts as a failure (60 s).
    pub download_stall_ms: u64,
    /// The MCU must take a ready piece within this (60 s).
    pub piece_take_ms: u64,
    /// The MCU must finish updating within this (20 min).
    pub updating_ms: u64,
    /// Ours: after the MCU finished, its version report must come within this (2 min).
    pub version_report_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            decision_ms: 10 * 60_000,
            firmware_info_ms: 30_000,
            download_stall_ms: 60_000,
            piece_take_ms: 60_000,
            updating_ms: 20 * 60_000,
            version_report_ms: 2 * 60_000,
        }
    }
}

/// Session settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Largest piece offered to the MCU, bytes (QuecThing examples use 1024).
    pub piece_size: u32,
    /// Download failures that are resumed; one more ends the plan (QuecThing: 5).
    pub download_retries: u8,
    /// The waits.
    pub timeouts: Timeouts,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            piece_size: 1024,
            download_retries: 5,
            timeouts: Timeouts::default(),
        }
    }
}
