//! The SOTA upgrade console: a browser app (Leptos, client-side rendering) that plays the role
//! of the Quectel module for an MCU plugged in over USB.
//!
//! This crate is the browser adapter and the UI: it reads files, talks to the page and (later)
//! to Web Serial and the center. All upgrade logic lives in the sans-IO `sota-engine` crate; the
//! components here only render its results and pass the user's choices back.
#![deny(missing_docs)]

mod app;
pub mod bench;
pub mod blob;
pub mod file_check;

pub use app::App;
