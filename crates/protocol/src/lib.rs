//! `sota-protocol` — the device channel's contract, the one place that names it.
//!
//! Topics ([`topic`]), the JSON messages with their `type` tag ([`message`]),
//! the bounded decoder every receiver uses ([`decode`]), and the conversions
//! between the wire messages and the engine's `Plan`, `FirmwareInfo` and
//! `Report` ([`convert`]). Field names follow QuecThing's OTA data points
//! (`compNo`, `srcVer`, `tgtVer`, `minBattery`, …); serde renames at this edge
//! and nothing else converts.
//!
//! [`client`] is a device's MQTT connection as a sans-IO state machine (bytes,
//! events and time in; bytes, events and deadlines out) that the browser and
//! native tools drive over their own transports. Nothing here does I/O or
//! reads a clock; it builds for `wasm32-unknown-unknown` so the browser
//! console speaks it too.

#![deny(missing_docs)]

pub mod client;
pub mod convert;
pub mod decode;
pub mod message;
pub mod topic;

pub use convert::Delivery;
pub use decode::{decode_down, decode_up, DecodeError, MAX_DOWN_BYTES, MAX_UP_BYTES};
pub use message::{
    status_name, CompType, ComponentVersion, Down, ErrorCode, Firmware, Job, PackageType,
    PlanOffer, StatusReport, Up, UpgradeMode,
};
pub use topic::{DeviceId, Direction};
