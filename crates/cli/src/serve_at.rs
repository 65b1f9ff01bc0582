//! `sota serve-at`: the CLI plays the Quectel module and upgrades an AT SOTA MCU from a local
//! file. The engine's session runs the upgrade (download = reading the file, verification,
//! pieces, timeouts, result); `sota_flow::AtUpgrade` speaks AT and turns the session's I/O
//! into requests that `sota_flow::io::serve` carries out over the file and an image kept in
//! memory. This file answers the requests for plans and firmware info and shows what happens.

use crate::drive::drive;
use crate::firmware::{file_digests, local, Expected, FileSource};
use crate::open_port;
use crate::progress::Bar;
use sota_engine::{Config, Outcome, Session, UiEvent};
use sota_flow::io::serve;
use sota_flow::{AtUpgrade, Io, LocalFirmware, MemoryStore, Notice};
use sota_link::at_sota;
use std::path::PathBuf;

/// Arguments of `sota serve-at`.
#[derive(clap::Args)]
pub struct Args {
    /// Serial device the MCU is on.
    #[arg(long)]
    port: String,
    /// Baud rate.
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    /// Firmware file to offer.
    #[arg(long)]
    firmware: PathBuf,
    /// Target version the plan announces (the MCU must report it after updating).
    #[arg(long)]
    version: String,
    /// Component identity of the plan.
    #[arg(long, default_value = "STM32")]
    component: String,
    /// Source version of the plan (empty: a full package; else the MCU must run it).
    #[arg(long, default_value = "")]
    source_version: String,
    /// Minimum battery level (%) in the plan (0: a bench board on USB power).
    #[arg(long, default_value_t = 0)]
    min_battery: u8,
    /// Minimum signal (dBm) in the plan.
    #[arg(long, default_value_t = -113, allow_hyphen_values = true)]
    min_signal: i32,
    /// Flash space (bytes) the plan says the upgrade needs [default: the file's size].
    #[arg(long)]
    use_space: Option<u64>,
    /// Piece size: the module's free space (the whole file if larger).
    #[arg(long, default_value_t = 64 * 1024)]
    piece_size: u32,
    #[command(flatten)]
    expected: Expected,
}

/// The file with the flags' expected digests (the file's own where none was given, printed).
fn firmware(args: &Args) -> Result<LocalFirmware, String> {
    let own = file_digests(&args.firmware)?;
    if own.size == 0 {
        return Err(format!(
            "the firmware file {} is empty",
            args.firmware.display()
        ));
    }
    let expected = args.expected.parse()?;
    let given = [
        ("MD5", &expected.md5, &own.md5),
        ("CRC32", &expected.crc32, &own.crc32),
        ("SHA-256", &expected.sha256, &own.sha256),
    ];
    for (name, given, own) in given {
        if given.is_none() {
            eprintln!(
                "expected {name}: {own} (the file's own; pass --{} to check against the center's)",
                name.to_lowercase().replace('-', "")
            );
        }
    }
    Ok(local(
        &args.firmware,
        &args.component,
        &args.version,
        &args.source_version,
        own,
        expected,
    ))
}

/// Runs `sota serve-at`.
pub fn run(args: Args) -> Result<(), String> {
    let firmware = firmware(&args)?;
    // The plan's minimums come from the flags; the session compares them with what the MCU
    // vouches for.
    let plan = sota_engine::Plan {
        min_battery: args.min_battery,
        min_signal_dbm: args.min_signal,
        space_needed: args.use_space.unwrap_or(firmware.own.size),
        ..firmware.plan()
    };
    let info = firmware.info();
    let mut port = open_port(&args.port, args.baud, false)?;
    let config = Config {
        piece_size: args.piece_size,
        ..Config::default()
    };
    let session = Session::new(config, Vec::new());
    let mut upgrade = AtUpgrade::new(at_sota::Config::default(), session);
    eprintln!(
        "serving {} as {} {} on {}",
        args.firmware.display(),
        args.component,
        args.version,
        args.port
    );
    let mut bar = Bar::new();
    let mut source = FileSource::new(&firmware, &args.firmware);
    // The verified image: pieces are read from here, never from the file again.
    let mut store = MemoryStore::default();
    let mut failure = None;
    drive(&mut port, &mut upgrade, |up, now| {
        // The log reads in order: what the MCU did, then what the session made of it.
        if let Err(e) = show_notices(up, &bar) {
            failure = Some(e);
            return false;
        }
        serve(up, &mut source, &mut store, now, |up, io| {
            let taken = match io {
                Io::NeedPlans { .. } => up.provide_plans(vec![plan.clone()], now),
                Io::NeedFirmwareInfo { .. } => up.provide_info(info.clone(), now),
                Io::Report(r) => {
                    bar.println(format!(
                        "status {} ({}): {}",
                        r.status, r.component, r.message
                    ));
                    Ok(())
                }
                _ => Ok(()),
            };
            if let Err(e) = taken {
                failure = Some(format!("internal: the session refused the local plan: {e}"));
            }
        });
        if let Err(e) = show_notices(up, &bar) {
            failure = failure.take().or(Some(e));
        }
        if failure.is_some() {
            return false;
        }
        bar.show(up.state());
        true
    })
    .map_err(|e| format!("serial I/O on {} failed: {e}", args.port))?;
    bar.finish();
    if let Some(e) = failure {
        return Err(e);
    }
    let results = upgrade.session().results();
    if results.is_empty() {
        return Err("the session stopped without a result".into());
    }
    for r in results {
        match &r.outcome {
            Outcome::Succeeded => eprintln!(
                "upgrade succeeded: the MCU's {} runs {}",
                r.identity, r.target_version
            ),
            Outcome::Failed(f) => {
                return Err(format!(
                    "upgrade of {} to {} failed: {f}",
                    r.identity, r.target_version
                ))
            }
        }
    }
    Ok(())
}

/// Prints what the upgrade reported; an error when the MCU refused the plan.
fn show_notices(up: &mut AtUpgrade, bar: &Bar) -> Result<(), String> {
    while let Some(notice) = up.poll_notice() {
        // The one plan was refused: nothing follows, so do not sit out the session's wait.
        if let Notice::Link(at_sota::Event::Refused { component }) = &notice {
            return Err(format!(
                "the MCU refused the plan for {component}: its battery, signal or free space does not meet the plan's minimums"
            ));
        }
        show(notice, bar);
    }
    Ok(())
}

fn show(notice: Notice, bar: &Bar) {
    use at_sota::Event as Link;
    match notice {
        Notice::Link(Link::VersionReported { component, version }) => {
            bar.println(format!("MCU reports {component} {version}"))
        }
        Notice::Link(Link::PlanRequested { .. }) => bar.println("MCU asks for a plan"),
        Notice::Link(Link::Confirmed) => bar.println("MCU confirmed the plan"),
        Notice::Link(Link::Updating) => bar.println("MCU is updating"),
        Notice::Engine(UiEvent::Verified { component, .. }) => {
            bar.println(format!("{component}: MD5, CRC32 and SHA-256 match"))
        }
        Notice::Engine(UiEvent::Refused { component, reasons }) => {
            for r in reasons {
                bar.println(format!("{component}: refused: {r}"));
            }
        }
        _ => {}
    }
}
