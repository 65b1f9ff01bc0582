//! The MCU link protocols of the SOTA console, as sans-IO state machines.
//!
//! Each protocol is a value that takes the bytes that arrived from the MCU and the current time,
//! and hands back the bytes to send, the next deadline and progress events (the shape of
//! quinn-proto). It owns no port, no clock and no thread, so the very same code runs in the
//! browser behind Web Serial, natively behind `serialport`, and in tests through a simulated link
//! at full speed. This crate is *not* an I/O layer, a CLI or an MCU simulator (see `sota-sim`).
//!
//! - [`at_sota`]: the console plays a Quectel module for an MCU that speaks QuecThing AT SOTA.
//! - [`ymodem`]: a YMODEM-1K sender for IAP bootloaders (ST AN4657 and most custom ones).
//! - [`an3155`]: a flasher for the STM32 ROM bootloader over USART (ST AN3155).
#![deny(missing_docs)]

pub mod an3155;
pub mod at_sota;
pub mod endpoint;
pub mod ymodem;

pub use endpoint::{Endpoint, Progress};
