//! The upgrade flow: what sits between the sans-IO engine and link crates and an adapter
//! (the browser console, the CLI, a test).
//!
//! - [`at::AtUpgrade`]: the QuecThing AT module run by the engine's [`Session`]: plans and
//!   firmware info arrive when the MCU asks for them ([`Io::NeedPlans`],
//!   [`Io::NeedFirmwareInfo`]), whoever supplies them (a local file, a center).
//! - [`flash::Flash`]: YMODEM-1K or the STM32 ROM bootloader, behind one event type.
//! - [`io`]: the one handler of the engine's commands. It turns them into small I/O requests
//!   ([`Io`]: read a range of the source, append to the store, read a piece back) that an
//!   adapter carries out, synchronously ([`io::serve`]) or asynchronously (the browser), and
//!   takes their results back.
//! - [`state::FlowState`]: the one typed state a UI renders (step, bytes done and total, rate).
//! - [`center::CenterLink`]: the device's side of the channel to the center: requests and
//!   reports become `sota-protocol` messages, the center's answers become plans and info.
//! - [`local`]: a plan and firmware info for a local file, with the technician's expected
//!   digests.
//!
//! How to drive a flow: feed serial bytes with `handle_input`, the passing of time with
//! `handle_timeout`, I/O results with the `*_done`/`*_failed` methods and the user's choices
//! with the mutators; then drain every poll: `poll_transmit` (bytes for the MCU), `poll_io`
//! (work for the adapter), `poll_notice` (what to show), `poll_timeout` (when to wake). Like
//! the engine and the protocols, this crate owns no port, clock, thread or `async`.
#![deny(missing_docs)]

pub mod at;
pub mod center;
pub mod flash;
pub mod io;
pub mod local;
pub mod state;

pub use at::{AtSnapshot, AtUpgrade, Notice};
pub use center::{CenterLink, CenterNotice, CenterSnapshot};
pub use flash::{Flash, FlashNotice};
pub use io::{ImageStore, Io, MemoryStore, Source};
pub use local::LocalFirmware;
pub use sota_engine::Session;
pub use state::{FlowState, Step, Tracker};

use core::time::Duration;
use sota_engine::Timestamp;

/// The one conversion between the link's time (a `Duration` since the adapter's origin) and
/// the engine's [`Timestamp`]: both count from the same origin.
pub fn stamp(now: Duration) -> Timestamp {
    Timestamp::from_millis(u64::try_from(now.as_millis()).unwrap_or(u64::MAX))
}
