//! The sans-IO core of the SOTA console.
//!
//! This crate holds the logic that the browser console, the native CLI and the center share:
//! the firmware digests and the device-side upgrade [`Session`] (plans, strategy check,
//! download with verification, transfer to the MCU, result). It owns no socket, port, clock
//! or thread and never blocks: callers feed it bytes, events and the current time, and carry
//! out the commands it returns. It builds for `wasm32-unknown-unknown` and native alike.
#![deny(missing_docs)]

pub mod digest;
pub mod plan;
pub mod session;
pub mod status;
pub mod strategy;
pub mod time;

pub use digest::{Digester, Digests, ExpectedDigests, HexError, Verdict};
pub use plan::{Component, ComponentType, DownloadMode, FirmwareInfo, Plan, MAX_PLANS};
pub use session::{
    Command, Config, Event, Failure, Outcome, PlanResult, Rejected, Session, Stage, StateKind,
    Timeouts, UiEvent,
};
pub use status::{Report, Status};
pub use strategy::{Readings, Refusal};
pub use time::Timestamp;
