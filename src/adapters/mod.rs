//! The browser adapters: each carries out requests and reports what happened, and decides
//! nothing. What happens next is decided in `sota-flow` (and the engine and link below it).
//!
//! - [`port`]: a byte link to the MCU, over Web Serial ([`serial`]) or to a simulated MCU
//!   running in this page ([`simulated`]), behind one type.
//! - [`file`]: a picked or dropped file, read in chunks.
//! - [`http`]: downloads, one `Range` request per chunk.
//! - [`clock`]: the page's monotonic time and sleeping.
//! - [`page`]: wake lock, the unload guard, remembered settings, saving a text file.
//! - [`mqtt`]: the device's MQTT connection to the center over a WebSocket, carrying out
//!   what `sota_protocol::client` decides.
//! - [`storage`]: IndexedDB for what outlives the page (a downloaded image, small records).

pub mod clock;
pub mod file;
pub mod http;
pub mod mqtt;
pub mod page;
pub mod port;
pub mod serial;
pub mod simulated;
pub mod storage;
