//! The SOTA upgrade console: a browser app (Leptos, client-side rendering) that plays the role
//! of the Quectel module for an MCU plugged in over USB.
//!
//! This crate is the browser side only: [`adapters`] carry out I/O (Web Serial, a simulated
//! MCU, files, the page), [`run`] connects them to the sans-IO flow of `sota-flow`, and
//! [`pages`] render the [`model`]. All upgrade logic lives in `sota-flow`, `sota-engine` and
//! `sota-link`; nothing here decides what happens next. The same app carries the engineer's
//! pages of the center under `/center` ([`pages::engineer`]), through one API client ([`api`])
//! typed with `sota-api`'s bodies and checked by its rules ([`forms`]).
#![deny(missing_docs)]

pub mod adapters;
pub mod api;
mod app;
pub mod bench;
pub mod center;
pub mod file_check;
pub mod forms;
pub mod i18n;
pub mod model;
pub mod pages;
pub mod readings;
pub mod resume;
pub mod run;

pub use app::App;
