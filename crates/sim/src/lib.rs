//! Software MCUs and a serial link model, for tests, benchmarks and the console's demo mode.
//!
//! Each MCU is a sans-IO [`sota_link::Endpoint`] like the protocols it talks to, so a test joins
//! a protocol and an MCU with the [`line::Line`] model (bytes paced at a baud rate, latency,
//! bit flips, dropped bytes, a disconnect) and runs minutes of link time in milliseconds; the
//! CLI puts the same MCUs behind a pseudo-terminal for real peers. This crate is *not* a
//! cycle-accurate emulator: it follows the protocols' documents, not any one chip's timing.
//!
//! - [`ymodem_receiver`]: a YMODEM receiver (an IAP bootloader).
//! - [`bootloader`]: the STM32 ROM bootloader (AN3155) with a [`flash`] memory model.
//! - [`at_mcu`]: an MCU that upgrades itself through a QuecThing module with AT commands.
#![deny(missing_docs)]

pub mod at_mcu;
pub mod bootloader;
pub mod flash;
pub mod line;
mod rng;
pub mod ymodem_receiver;
