//! The OTA status codes reported to the center, mirroring QuecThing's device protocol.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An OTA status as the center knows it. The numeric codes are QuecThing's (7 and 10 unused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    /// 0: no upgrade (the center's idle value; the engine never reports it).
    None,
    /// 1: a plan was received.
    Plan,
    /// 2: the plan was accepted.
    Accepted,
    /// 3: the plan was refused.
    Refused,
    /// 4: download started.
    DownloadStart,
    /// 5: downloading (reported at each 10 % step).
    Downloading,
    /// 6: download failed (network, timeouts or a digest mismatch).
    DownloadError,
    /// 8: downloaded and verified.
    DownloadOk,
    /// 9: the firmware is going into the component.
    Updating,
    /// 11: the component reports the target version.
    UpdateOk,
    /// 12: the update failed after download.
    UpdateError,
}

impl Status {
    /// The numeric code sent to the center.
    pub const fn code(self) -> u8 {
        match self {
            Status::None => 0,
            Status::Plan => 1,
            Status::Accepted => 2,
            Status::Refused => 3,
            Status::DownloadStart => 4,
            Status::Downloading => 5,
            Status::DownloadError => 6,
            Status::DownloadOk => 8,
            Status::Updating => 9,
            Status::UpdateOk => 11,
            Status::UpdateError => 12,
        }
    }

    /// The status with this numeric code, if any.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// Every status, in code order.
    pub const ALL: [Status; 11] = [
        Status::None,
        Status::Plan,
        Status::Accepted,
        Status::Refused,
        Status::DownloadStart,
        Status::Downloading,
        Status::DownloadError,
        Status::DownloadOk,
        Status::Updating,
        Status::UpdateOk,
        Status::UpdateError,
    ];
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

/// One status report for the center: code, component and a human-readable message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The status.
    pub status: Status,
    /// Component identity.
    pub component: String,
    /// What happened, for the upgrade log.
    pub message: String,
    /// How far the download is, with [`Status::Downloading`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u8>,
    /// The version the component now reports, with [`Status::UpdateOk`]: the center decides
    /// success by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_quecthings() {
        let codes: Vec<u8> = Status::ALL.iter().map(|s| s.code()).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 5, 6, 8, 9, 11, 12]);
        for s in Status::ALL {
            assert_eq!(Status::from_code(s.code()), Some(s));
        }
        assert_eq!(Status::from_code(7), None);
        assert_eq!(Status::from_code(10), None);
    }
}
