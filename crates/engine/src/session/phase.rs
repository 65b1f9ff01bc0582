//! The per-plan state: where the current plan is, with what it needs to resume.

use super::io::StateKind;
use crate::digest::Digester;
use crate::plan::{FirmwareInfo, Plan};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// The plan in progress and its phase.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Current {
    pub plan: Plan,
    pub phase: Phase,
}

/// Every phase waits for something, so every phase has a deadline: no plan can hang.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Phase {
    Offered {
        deadline: Timestamp,
    },
    AwaitingInfo {
        deadline: Timestamp,
    },
    Downloading(Box<Download>),
    Transferring(Transfer),
    /// `stored` says whether the adapter holds an image to discard at the end.
    Updating {
        deadline: Timestamp,
        stored: bool,
    },
    AwaitingVersion {
        deadline: Timestamp,
        stored: bool,
    },
}

impl Phase {
    pub fn kind(&self) -> StateKind {
        match self {
            Phase::Offered { .. } => StateKind::Offered,
            Phase::AwaitingInfo { .. } => StateKind::AwaitingInfo,
            Phase::Downloading(_) => StateKind::Downloading,
            Phase::Transferring(_) => StateKind::Transferring,
            Phase::Updating { .. } => StateKind::Updating,
            Phase::AwaitingVersion { .. } => StateKind::AwaitingVersion,
        }
    }

    pub fn deadline(&self) -> Timestamp {
        match self {
            Phase::Offered { deadline }
            | Phase::AwaitingInfo { deadline }
            | Phase::Updating { deadline, .. }
            | Phase::AwaitingVersion { deadline, .. } => *deadline,
            Phase::Downloading(d) => d.deadline,
            Phase::Transferring(t) => t.deadline,
        }
    }

    /// True when the adapter stores an image for this plan.
    pub fn has_stored_image(&self) -> bool {
        match self {
            Phase::Offered { .. } | Phase::AwaitingInfo { .. } => false,
            Phase::Downloading(_) | Phase::Transferring(_) => true,
            Phase::Updating { stored, .. } | Phase::AwaitingVersion { stored, .. } => *stored,
        }
    }
}

/// A download in progress. `received` bytes are stored by the adapter and fed to the hasher.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Download {
    /// Firmware info with normalized (lowercase hex) digests.
    pub info: FirmwareInfo,
    pub received: u64,
    pub failures: u8,
    pub progress: Steps,
    pub deadline: Timestamp,
    /// MD5/SHA-256 states cannot be serialized; after a restore the stored prefix is re-fed.
    #[serde(skip)]
    pub hasher: Hasher,
}

/// The digest state of a download.
#[derive(Clone, Debug, Default)]
pub(crate) enum Hasher {
    /// Restored from serialized state: the stored prefix must be fed again.
    #[default]
    Lost,
    /// The stored prefix is being fed again; holds the bytes seen so far.
    Refeeding(Digester),
    /// Has seen exactly `received` bytes; new downloaded bytes can go in.
    Live(Digester),
}

/// Handing a verified image to the MCU, piece by piece.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Transfer {
    pub info: FirmwareInfo,
    /// Bytes the MCU has taken; the offered piece starts here.
    pub offset: u64,
    pub progress: Steps,
    pub deadline: Timestamp,
    /// Whether the stored image was checked against the digests in this run of the session.
    #[serde(skip)]
    pub recheck: Recheck,
}

/// After a restore the adapter's stored image is digested again before any further piece is
/// offered: the store may have been altered or truncated while the session was saved.
#[derive(Clone, Debug, Default)]
pub(crate) enum Recheck {
    /// Restored from serialized state: the stored image must be fed again.
    #[default]
    Needed,
    /// Being fed; holds the bytes seen so far.
    Running(Box<Digester>),
    /// The stored image is the verified one.
    Done,
}

/// Which 10 % steps were emitted, so each is emitted exactly once even across restores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Steps {
    last: u8,
}

impl Steps {
    /// The steps newly reached when `done` of `total` are complete, in order.
    pub fn advance(&mut self, done: u64, total: u64) -> impl Iterator<Item = u8> {
        let pct = if total == 0 {
            100
        } else {
            (u128::from(done.min(total)) * 100 / u128::from(total)) as u8
        };
        let reached = pct / 10 * 10;
        let from = self.last;
        self.last = self.last.max(reached);
        (from / 10 + 1..=reached / 10).map(|s| s * 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_emitted_once_each_in_order() {
        let mut s = Steps::default();
        assert_eq!(s.advance(9, 100).collect::<Vec<_>>(), Vec::<u8>::new());
        assert_eq!(s.advance(10, 100).collect::<Vec<_>>(), vec![10]);
        assert_eq!(s.advance(35, 100).collect::<Vec<_>>(), vec![20, 30]);
        assert_eq!(s.advance(39, 100).collect::<Vec<_>>(), Vec::<u8>::new());
        assert_eq!(
            s.advance(100, 100).collect::<Vec<_>>(),
            vec![40, 50, 60, 70, 80, 90, 100]
        );
        assert_eq!(s.advance(100, 100).count(), 0);
    }

    #[test]
    fn huge_sizes_do_not_overflow() {
        let mut s = Steps::default();
        assert_eq!(s.advance(u64::MAX / 2, u64::MAX).last(), Some(40));
    }
}
