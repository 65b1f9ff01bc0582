//! What goes into a session (events) and what comes out (commands for the adapter, UI events).

use super::outcome::PlanResult;
use crate::digest::Digests;
use crate::plan::{Component, ComponentType, FirmwareInfo, Plan};
use crate::status::Report;
use crate::strategy::{Readings, Refusal};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Something that happened outside the engine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// The device's current components (replaces what was known).
    Components(Vec<Component>),
    /// The center issued plans (1 to [`MAX_PLANS`](crate::plan::MAX_PLANS)), processed in order.
    Plans(Vec<Plan>),
    /// The device side declines the offered plan without readings (an MCU's own refusal); the
    /// plan ends refused at once and the next queued plan is offered.
    Declined {
        /// Who declined, e.g. "the MCU".
        by: String,
    },
    /// Readings for the offered plan, with an optional technician override of a failed check.
    Readings {
        /// What was measured.
        readings: Readings,
        /// Why the technician goes ahead anyway; must not be blank when it is used.
        override_reason: Option<String>,
    },
    /// The center's firmware info for the accepted plan.
    FirmwareInfo(FirmwareInfo),
    /// Downloaded bytes starting at `offset` of the image.
    Downloaded {
        /// Where these bytes start in the image.
        offset: u64,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// The fetch broke off (network error, HTTP error, …).
    DownloadFailed {
        /// What went wrong, for the log.
        reason: String,
    },
    /// Stored image bytes, fed back after a [`Command::Refeed`].
    Stored {
        /// Where these bytes start in the image.
        offset: u64,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// The adapter no longer has the stored image (storage cleared, quota…).
    StoreLost,
    /// The MCU took the offered piece.
    McuTookPiece {
        /// Start of the piece.
        offset: u64,
        /// Length of the piece.
        len: u32,
    },
    /// The MCU says it finished writing the firmware (it will report its version next).
    McuUpdateDone,
    /// The MCU reported a component version.
    McuVersion(Component),
}

impl Event {
    /// A short name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Components(_) => "components",
            Event::Plans(_) => "plans",
            Event::Readings { .. } => "readings",
            Event::Declined { .. } => "declined",
            Event::FirmwareInfo(_) => "firmware info",
            Event::Downloaded { .. } => "downloaded bytes",
            Event::DownloadFailed { .. } => "download failure",
            Event::Stored { .. } => "stored bytes",
            Event::StoreLost => "store lost",
            Event::McuTookPiece { .. } => "MCU took a piece",
            Event::McuUpdateDone => "MCU update done",
            Event::McuVersion(_) => "MCU version",
        }
    }
}

/// Something the adapter must do. Commands come out in the order they must be carried out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Send a status report to the center.
    Report(Report),
    /// Fetch bytes `start..end` of the image (HTTP `Range: bytes=start-(end-1)`), then feed
    /// them back as [`Event::Downloaded`] in order.
    Fetch {
        /// Component identity (keys the adapter's store).
        component: String,
        /// Download URL.
        url: String,
        /// First byte.
        start: u64,
        /// One past the last byte.
        end: u64,
    },
    /// Store these image bytes at `offset` (always the end of what is stored: append).
    StoreChunk {
        /// Component identity.
        component: String,
        /// Where the bytes go.
        offset: u64,
        /// The bytes, already fed through the verifier.
        bytes: Vec<u8>,
    },
    /// Read stored bytes `0..len` back and feed them as [`Event::Stored`], in order; sent after
    /// a restore, because digest state is not serialized. Send [`Event::StoreLost`] if they
    /// are gone.
    Refeed {
        /// Component identity.
        component: String,
        /// How many bytes to feed back.
        len: u64,
    },
    /// Offer stored bytes `offset..offset+len` to the component. Only ever sent after MD5,
    /// CRC32 and SHA-256 of the whole image matched.
    OfferPiece {
        /// Component identity.
        component: String,
        /// Module or MCU firmware.
        component_type: ComponentType,
        /// Start of the piece.
        offset: u64,
        /// Length of the piece.
        len: u32,
        /// Image size.
        total: u64,
    },
    /// Hand URL and digests to the MCU, which downloads by itself.
    HandToMcu(FirmwareInfo),
    /// The stored image of this component is no longer needed.
    DiscardImage {
        /// Component identity.
        component: String,
    },
    /// Wake the session at this time (or never); same as [`poll_timeout`](super::Session::poll_timeout).
    SetDeadline {
        /// When, if at all.
        at: Option<Timestamp>,
    },
}

/// Where a plan is, for the UI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StateKind {
    /// No plan in progress.
    Idle,
    /// A plan waits for readings (the strategy check).
    Offered,
    /// Accepted; waiting for the firmware info.
    AwaitingInfo,
    /// Downloading and verifying.
    Downloading,
    /// Handing verified pieces to the MCU.
    Transferring,
    /// The MCU is writing the firmware (or downloading it itself).
    Updating,
    /// The MCU finished; waiting for its version report.
    AwaitingVersion,
}

impl fmt::Display for StateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StateKind::Idle => "idle",
            StateKind::Offered => "waiting for readings",
            StateKind::AwaitingInfo => "waiting for firmware info",
            StateKind::Downloading => "downloading",
            StateKind::Transferring => "transferring to the MCU",
            StateKind::Updating => "the MCU is updating",
            StateKind::AwaitingVersion => "waiting for the MCU's version",
        })
    }
}

/// Which long-running step a progress event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Stage {
    /// Downloading from the center.
    Download,
    /// Handing pieces to the MCU.
    Transfer,
}

/// Something to show the technician.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UiEvent {
    /// The current plan moved to a new state.
    State {
        /// Component identity.
        component: String,
        /// The new state.
        state: StateKind,
    },
    /// Progress, emitted once at each 10 % step (10, 20, … 100).
    Progress {
        /// Component identity.
        component: String,
        /// Download or transfer.
        stage: Stage,
        /// A multiple of 10.
        percent: u8,
    },
    /// The strategy check failed; the plan is refused.
    Refused {
        /// Component identity.
        component: String,
        /// Every reason.
        reasons: Vec<Refusal>,
    },
    /// The technician overrode a failed strategy check.
    OverrideLogged {
        /// Component identity.
        component: String,
        /// The reasons that were overridden.
        reasons: Vec<Refusal>,
        /// The technician's reason.
        reason: String,
    },
    /// A download failure; the download resumes at `resume_at`.
    DownloadRetry {
        /// Component identity.
        component: String,
        /// Failures so far.
        failures: u8,
        /// Failures allowed before giving up.
        allowed: u8,
        /// Byte the download resumes from.
        resume_at: u64,
        /// What went wrong.
        reason: String,
    },
    /// All three digests matched.
    Verified {
        /// Component identity.
        component: String,
        /// The computed digests.
        digests: Digests,
    },
    /// A plan ended.
    Finished(PlanResult),
}

/// Why an event was not taken. The session is unchanged; nothing was lost.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// The event does not fit the current state.
    #[error("{event} is not expected while {state}")]
    Unexpected {
        /// The event's name.
        event: &'static str,
        /// The current state.
        state: StateKind,
    },
    /// An empty plan list.
    #[error("the plan list is empty")]
    NoPlans,
    /// More plans than QuecThing allows at once.
    #[error("{count} plans at once; at most {max} are allowed")]
    TooManyPlans {
        /// Plans received.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Two plans for one component.
    #[error("two plans for component {0:?} in one list")]
    DuplicateComponent(String),
    /// A plan list arrived while plans are still in progress.
    #[error("plans are still in progress; wait until they finish")]
    Busy,
    /// An override without a reason.
    #[error("an override of the strategy check needs a reason")]
    OverrideWithoutReason,
    /// An event about a component other than the current plan's.
    #[error("this is about component {got:?} but the current plan is for {expected:?}")]
    WrongComponent {
        /// The current plan's component.
        expected: String,
        /// The event's component.
        got: String,
    },
    /// Bytes that do not continue where the last ones ended.
    #[error("bytes at offset {got}, expected offset {expected}")]
    OutOfOrder {
        /// Where the next bytes must start.
        expected: u64,
        /// Where these start.
        got: u64,
    },
    /// Bytes past the end of the image (or of the stored prefix).
    #[error("bytes up to {end} run past the end at {limit}")]
    PastEnd {
        /// Where the bytes end.
        end: u64,
        /// The limit.
        limit: u64,
    },
    /// The MCU took something other than the offered piece.
    #[error(
        "the MCU took {got_len} bytes at {got_offset}, but {len} bytes at {offset} were offered"
    )]
    WrongPiece {
        /// Offered start.
        offset: u64,
        /// Offered length.
        len: u32,
        /// Taken start.
        got_offset: u64,
        /// Taken length.
        got_len: u32,
    },
    /// Downloaded bytes before the stored prefix was fed back after a restore.
    #[error(
        "the stored image must be fed back first (Command::Refeed); call resume() after restoring"
    )]
    NotRefed,
}
