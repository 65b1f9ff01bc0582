//! `sota`: flash a board over serial with YMODEM or the STM32 ROM bootloader, play the Quectel
//! module for an MCU that speaks QuecThing AT SOTA, or run a simulated MCU on a pseudo-terminal
//! (or on stdin and stdout).
//! Every line of protocol and upgrade logic lives in `sota-link`, `sota-flow` and `sota-sim`;
//! this binary only moves bytes between them and a port, and draws progress.

mod center;
mod drive;
mod firmware;
mod flash;
mod port;
mod progress;
mod serve_at;
mod simulate;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "sota",
    version,
    about = "Flash and upgrade MCUs over a serial line"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Serial parity; the STM32 ROM bootloader wants even (8E1), but ptys only take none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Parity {
    /// 8E1 for an3155, 8N1 otherwise.
    Auto,
    /// 8N1.
    None,
    /// 8E1.
    Even,
}

/// The flashing protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FlashProtocol {
    /// YMODEM-1K to an IAP bootloader.
    Ymodem,
    /// STM32 ROM bootloader (AN3155).
    An3155,
}

/// The MCU to simulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SimProtocol {
    /// An MCU upgrading itself through a QuecThing module with AT commands.
    At,
    /// A YMODEM receiver (an IAP bootloader).
    Ymodem,
    /// The STM32 ROM bootloader (AN3155) with 128 KiB of flash.
    An3155,
}

#[derive(Subcommand)]
enum Command {
    /// Write a firmware file to a board.
    Flash(flash::Args),
    /// Act as the Quectel module and upgrade the MCU on PORT, with a local firmware file or as
    /// a device of the center (--center).
    ServeAt(serve_at::Args),
    /// Run a simulated MCU on a new pseudo-terminal and print the terminal's path (or on
    /// stdin and stdout with --stdio).
    Simulate(simulate::Args),
}

/// Parses `0x…` hex or decimal.
pub fn parse_number(text: &str) -> Result<u32, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|e| format!("{text:?} is not a number: {e}"))
}

/// Reads a firmware file with a message that names it.
pub fn read_firmware(path: &PathBuf) -> Result<Vec<u8>, String> {
    std::fs::read(path)
        .map_err(|e| format!("cannot read the firmware file {}: {e}", path.display()))
}

/// Opens a serial port with a message that says what to check.
pub fn open_port(
    path: &str,
    baud: u32,
    even: bool,
) -> Result<Box<dyn serialport::SerialPort>, String> {
    let parity = if even {
        serialport::Parity::Even
    } else {
        serialport::Parity::None
    };
    serialport::new(path, baud)
        .parity(parity)
        .data_bits(serialport::DataBits::Eight)
        .stop_bits(serialport::StopBits::One)
        .flow_control(serialport::FlowControl::None)
        .open()
        .map_err(|e| {
            let hint = if even { " (a pseudo-terminal cannot do even parity: pass --parity none)" } else { "" };
            format!("cannot open {path} at {baud} baud: {e}{hint} — is the board plugged in and the port free?")
        })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Flash(args) => flash::run(args),
        Command::ServeAt(args) => serve_at::run(args),
        Command::Simulate(args) => simulate::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
