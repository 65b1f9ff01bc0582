//! `sota flash`: YMODEM or AN3155 to a serial port, through `sota_flow::Flash`, which checks
//! the file against the expected digests before a byte goes out.

use crate::drive::drive;
use crate::firmware::{local, Expected};
use crate::progress::Bar;
use crate::{open_port, parse_number, read_firmware, FlashProtocol, Parity};
use sota_engine::Digester;
use sota_flow::{Flash, FlashNotice};
use sota_link::{an3155, ymodem};
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `sota flash`.
#[derive(clap::Args)]
pub struct Args {
    /// Serial device, e.g. /dev/ttyUSB0.
    #[arg(long)]
    port: String,
    /// How the board takes the image.
    #[arg(long, value_enum)]
    protocol: FlashProtocol,
    /// Baud rate (the STM32 ROM bootloader auto-bauds up to 115200).
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    /// Parity: auto is 8E1 for an3155 and 8N1 for ymodem.
    #[arg(long, value_enum, default_value_t = Parity::Auto)]
    parity: Parity,
    /// an3155: flash address of the image.
    #[arg(long, default_value = "0x08000000", value_parser = parse_number)]
    address: u32,
    /// an3155: start the image after a verified write.
    #[arg(long)]
    go: bool,
    /// an3155: erase page size in bytes (at least 1) for chips missing from the built-in table.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    page_size: Option<u32>,
    /// an3155: erase the whole flash instead of the pages the image covers (F2/F4 sectors,
    /// unknown products).
    #[arg(long)]
    mass_erase: bool,
    /// an3155: do not read back blocks that are all 0xFF (trust the erase).
    #[arg(long)]
    trust_erase: bool,
    /// ymodem: file name sent in block 0 (default: the file's name).
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    expected: Expected,
    /// Firmware image.
    file: PathBuf,
}

/// Runs `sota flash`.
pub fn run(args: Args) -> Result<(), String> {
    let image = read_firmware(&args.file)?;
    let size = image.len();
    let expected = args.expected.parse()?;
    let checked: Vec<&str> = [
        ("MD5", &expected.md5),
        ("CRC32", &expected.crc32),
        ("SHA-256", &expected.sha256),
    ]
    .into_iter()
    .filter_map(|(name, given)| given.as_ref().map(|_| name))
    .collect();
    let firmware = local(
        &args.file,
        "MCU",
        "",
        "",
        Digester::digest(&image),
        expected,
    );
    // Built before the port opens: a file that differs from the expected digests stops here.
    let mut flash = match args.protocol {
        FlashProtocol::Ymodem => {
            let name = args.name.clone().unwrap_or_else(|| {
                args.file
                    .file_name()
                    .map_or("firmware.bin".into(), |n| n.to_string_lossy().into_owned())
            });
            Flash::ymodem(
                &firmware,
                &name,
                image,
                ymodem::Config::default(),
                Duration::ZERO,
            )?
        }
        FlashProtocol::An3155 => {
            let options = an3155::Options {
                address: args.address,
                go: args.go,
                page_size: args.page_size,
                verify_erased: !args.trust_erase,
                mass_erase: args.mass_erase,
            };
            Flash::an3155(
                &firmware,
                &image,
                options,
                an3155::Config::default(),
                Duration::ZERO,
            )?
        }
    };
    if !checked.is_empty() {
        eprintln!(
            "{}: the file matches the expected {}",
            args.file.display(),
            checked.join(", ")
        );
    }
    let even = match args.parity {
        Parity::Auto => args.protocol == FlashProtocol::An3155,
        Parity::Even => true,
        Parity::None => false,
    };
    let mut port = open_port(&args.port, args.baud, even)?;
    let mut bar = Bar::new();
    let mut outcome = None;
    drive(&mut port, &mut flash, |f, _| {
        while let Some(notice) = f.poll_notice() {
            match notice {
                FlashNotice::Identified {
                    bootloader,
                    pid,
                    chip,
                } => bar.println(format!(
                    "bootloader {}.{}, product 0x{pid:03X} ({}), {} KiB flash in {} B pages",
                    bootloader >> 4,
                    bootloader & 0xF,
                    chip.name,
                    chip.flash_size / 1024,
                    chip.page_size
                )),
                FlashNotice::Finished { summary } => {
                    bar.println(summary);
                    outcome = Some(Ok(()));
                }
                FlashNotice::Failed(e) => outcome = Some(Err(e)),
            }
        }
        bar.show(f.state());
        true
    })
    .map_err(|e| format!("serial I/O on {} failed: {e}", args.port))?;
    bar.finish();
    let result = outcome.unwrap_or_else(|| Err("flashing stopped without a result".into()));
    if result.is_ok() {
        eprintln!("{}: {size} B flashed", args.file.display());
    }
    result
}
