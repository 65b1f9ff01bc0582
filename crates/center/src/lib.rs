//! `sota-center` — the Developer Center of the SOTA upgrade console.
//!
//! The center keeps products, devices, version packages (firmware files with
//! their digests), verification jobs and upgrade plans, and serves them over a
//! JSON HTTP API under `/api/v1` described by an OpenAPI document. Metadata
//! lives in SQLite (one file in the data directory) through sqlx migrations;
//! firmware files live in an `object_store` (a local directory by default).
//! Firmware is downloaded through per-device, expiring links with `Range` and
//! `ETag` support so interrupted downloads resume.
//!
//! Devices reach it over MQTT ([`channel`]): an embedded broker (or an
//! external one) carries registration, plan requests, firmware info and
//! status reports, recorded per upgrade ([`upgrade`]) for monitoring. It
//! holds no upgrade session logic: that is the sans-IO `sota-engine`.

#![deny(missing_docs)]

pub mod api;
pub mod channel;
pub mod config;
pub mod db;
pub mod device;
pub mod download;
pub mod error;
pub mod events;
pub mod instance;
pub mod migrate_database;
pub mod monitoring;
pub mod package;
pub mod plan;
pub mod product;
pub mod scratch_pg;
pub mod seed;
pub mod server;
pub mod store;
pub mod token;
pub mod upgrade;
pub mod verification;

pub use config::ServeConfig;
pub use error::ApiError;

/// Current UTC time as RFC 3339 text, the format every timestamp column uses.
pub fn now_text() -> String {
    jiff::Timestamp::now().to_string()
}

/// `n` random bytes as lowercase hex, from the OS random source.
pub fn random_hex(n: usize) -> Result<String, ApiError> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf)
        .map_err(|e| ApiError::internal(format!("the OS random source failed: {e}")))?;
    Ok(sota_engine::digest::hex(&buf))
}
