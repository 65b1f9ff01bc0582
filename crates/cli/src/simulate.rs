//! `sota simulate`: a simulated MCU on a new pseudo-terminal, for peers that expect a board,
//! or on stdin and stdout (`--stdio`), for a peer that bridges its own port to it.

use crate::drive::drive;
use crate::port::{Port, Pty, Stdio};
use crate::SimProtocol;
use sota_sim::at_mcu::{AtMcu, McuComponent, McuConfig, McuOutcome};
use sota_sim::bootloader::{Bootloader, BootloaderConfig};
use sota_sim::ymodem_receiver::{Outcome, Receiver, ReceiverConfig};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Arguments of `sota simulate`.
#[derive(clap::Args)]
pub struct Args {
    /// Which MCU to simulate.
    #[arg(long, value_enum)]
    protocol: SimProtocol,
    /// at: the version the MCU runs before the upgrade.
    #[arg(long, default_value = "1_0_0")]
    firmware_version: String,
    /// at: the component number the MCU reports.
    #[arg(long, default_value = "STM32")]
    component: String,
    /// Where to write the received image (ymodem, at) or the flash contents (an3155; rewritten
    /// whenever flash changed and the line has been idle for 200 ms).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Also make this symlink to the terminal.
    #[arg(long)]
    link: Option<PathBuf>,
    /// Speak raw bytes on stdin and stdout instead of a pseudo-terminal (nothing else goes to
    /// stdout; the log goes to stderr); ends when stdin closes.
    #[arg(long, conflicts_with = "link")]
    stdio: bool,
    /// an3155: offer Extended Erase (0x44, bootloader v3.x) instead of Erase (0x43).
    #[arg(long)]
    extended_erase: bool,
    /// an3155: initial flash contents.
    #[arg(long)]
    image: Option<PathBuf>,
}

/// Lets the peer read our last reply before the pty closes (closing drops unread bytes; a
/// pipe keeps them for its reader).
fn linger(args: &Args) {
    if !args.stdio {
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn save(path: &Path, data: &[u8]) -> Result<(), String> {
    // Write then rename, so a reader never sees half a file.
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, data)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The simulator's end of the line, and how the log names it.
fn open_line(args: &Args) -> Result<(Box<dyn Port>, String), String> {
    if args.stdio {
        let stdio = Stdio::open().map_err(|e| format!("cannot use stdin and stdout: {e}"))?;
        return Ok((Box::new(stdio), "stdin/stdout".into()));
    }
    let pty = Pty::open().map_err(|e| format!("cannot open a pseudo-terminal: {e}"))?;
    if let Some(link) = &args.link {
        let _ = std::fs::remove_file(link);
        std::os::unix::fs::symlink(&pty.path, link).map_err(|e| {
            format!(
                "cannot link {} to {}: {e}",
                link.display(),
                pty.path.display()
            )
        })?;
    }
    // The path alone on the first line of stdout, for scripts; the rest goes to stderr.
    println!("{}", pty.path.display());
    let _ = std::io::stdout().flush();
    let place = pty.path.display().to_string();
    Ok((Box::new(pty), place))
}

/// Runs `sota simulate`.
pub fn run(args: Args) -> Result<(), String> {
    let (mut port, place) = open_line(&args)?;
    let port = port.as_mut();
    let io_error = |e: std::io::Error| format!("I/O on {place} failed: {e}");
    match args.protocol {
        SimProtocol::Ymodem => {
            eprintln!("YMODEM receiver waiting on {}", place);
            let config = ReceiverConfig::default();
            let mut receiver = Receiver::new(config.clone(), Duration::ZERO);
            drive(port, &mut receiver, |r, now| {
                // Nobody there yet: keep waiting rather than give up.
                if r.outcome() == Some(&Outcome::GaveUp)
                    && r.files().is_empty()
                    && r.received() == 0
                {
                    *r = Receiver::new(config.clone(), now);
                }
                true
            })
            .map_err(io_error)?;
            linger(&args);
            match (receiver.outcome(), receiver.files().first()) {
                (Some(Outcome::Finished), Some(file)) => {
                    eprintln!("received {} ({} B)", file.name, file.data.len());
                    let path = args
                        .output
                        .clone()
                        .unwrap_or_else(|| PathBuf::from(&file.name));
                    save(&path, &file.data)
                }
                (None, _) if port.is_closed() => Err(format!(
                    "stdin closed before the YMODEM transfer completed ({} B received)",
                    receiver.received()
                )),
                (outcome, _) => Err(format!("the YMODEM transfer did not complete: {outcome:?}")),
            }
        }
        SimProtocol::An3155 => {
            let config = BootloaderConfig {
                extended_erase: args.extended_erase,
                ..BootloaderConfig::default()
            };
            let mut bootloader = Bootloader::new(config);
            if let Some(image) = &args.image {
                bootloader.load(&crate::read_firmware(image)?);
            }
            eprintln!(
                "STM32 ROM bootloader (PID 0x410, 128 KiB flash) on {}",
                place
            );
            let mut saved = bootloader.generation();
            let mut changed_at = Duration::ZERO;
            let mut seen = saved;
            let mut failure = None;
            drive(port, &mut bootloader, |b, now| {
                if let Some(addr) = b.jumped_to() {
                    eprintln!(
                        "Go 0x{addr:08X}: the application would start now; back to the bootloader"
                    );
                    b.reset();
                }
                if b.generation() != seen {
                    seen = b.generation();
                    changed_at = now;
                }
                if let Some(path) = &args.output {
                    if seen != saved && now >= changed_at + Duration::from_millis(200) {
                        if let Err(e) = save(path, b.flash().contents()) {
                            failure = Some(e);
                            return false;
                        }
                        saved = seen;
                    }
                }
                true
            })
            .map_err(io_error)?;
            if let Some(e) = failure {
                return Err(e);
            }
            // Stdin closed: what changed since the last save is kept too.
            match &args.output {
                Some(path) if bootloader.generation() != saved => {
                    save(path, bootloader.flash().contents())
                }
                _ => Ok(()),
            }
        }
        SimProtocol::At => {
            let config = McuConfig {
                components: vec![McuComponent::new(&args.component, &args.firmware_version)],
                ..McuConfig::default()
            };
            eprintln!(
                "AT SOTA MCU ({} {}) on {}",
                args.component, args.firmware_version, place
            );
            let mut mcu = AtMcu::new(config.clone(), Duration::ZERO);
            drive(port, &mut mcu, |m, now| {
                if let Some(McuOutcome::Failed { reason } | McuOutcome::Refused { reason }) =
                    m.outcome()
                {
                    // The byte count lets a technician (and the tests) see whether any
                    // firmware reached the MCU before the attempt failed.
                    eprintln!(
                        "upgrade attempt ended: {reason} ({} firmware bytes received); starting over",
                        m.firmware_bytes_received()
                    );
                    *m = AtMcu::new(config.clone(), now);
                }
                true
            })
            .map_err(io_error)?;
            if !matches!(mcu.outcome(), Some(McuOutcome::Updated { .. })) {
                return Err(format!(
                    "stdin closed before the upgrade finished: the MCU still runs {} ({} firmware bytes received)",
                    mcu.version(),
                    mcu.firmware_bytes_received()
                ));
            }
            linger(&args);
            eprintln!(
                "updated to {} ({} firmware bytes received)",
                mcu.version(),
                mcu.firmware_bytes_received()
            );
            match &args.output {
                Some(path) => save(path, mcu.flash()),
                None => Ok(()),
            }
        }
    }
}
