//! `sota serve-at`: the CLI plays the Quectel module and upgrades an AT SOTA MCU from a file.

use crate::drive::drive;
use crate::progress::Bar;
use crate::{open_port, read_firmware};
use sota_engine::Digester;
use sota_link::at_sota::{self, Event, FileServer, FirmwareInfo, Module, Plan};
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
    /// Component number of the plan.
    #[arg(long, default_value = "STM32")]
    component: String,
    /// Source version of the plan (empty: a full package).
    #[arg(long, default_value = "")]
    source_version: String,
    /// Minimum battery level (%) in the plan.
    #[arg(long, default_value_t = 0)]
    min_battery: u32,
    /// Minimum signal (dBm) in the plan.
    #[arg(long, default_value_t = -113, allow_hyphen_values = true)]
    min_signal: i32,
    /// Piece size: the module's free space (the whole file if larger).
    #[arg(long, default_value_t = 1 << 20)]
    piece_size: u64,
}

/// Runs `sota serve-at`.
pub fn run(args: Args) -> Result<(), String> {
    let firmware = read_firmware(&args.firmware)?;
    let digests = Digester::digest(&firmware);
    let info = FirmwareInfo {
        size: firmware.len() as u64,
        md5: digests.md5.clone(),
        crc32: digests.crc32_value(),
        sha256: digests.sha256.clone(),
    };
    let plan = Plan {
        component: args.component.clone(),
        source_version: args.source_version.clone(),
        target_version: args.version.clone(),
        min_battery: args.min_battery,
        min_signal: args.min_signal,
        use_space: firmware.len() as u64,
    };
    let mut port = open_port(&args.port, args.baud, false)?;
    let mut server = FileServer::new(
        Module::new(at_sota::Config::default()),
        plan,
        info,
        firmware,
        args.piece_size,
    );
    let mut bar = Bar::new();
    let mut outcome = None;
    eprintln!(
        "serving {} as {} {} on {}",
        args.firmware.display(),
        args.component,
        args.version,
        args.port
    );
    drive(&mut port, &mut server, |s, _| {
        while let Some(event) = s.poll_event() {
            match event {
                Event::Progress(p) => bar.update(p),
                Event::VersionReported { component, version } => {
                    eprintln!("MCU reports {component} {version}")
                }
                Event::PlanRequested { .. } => eprintln!("MCU asks for a plan"),
                Event::Refused => {
                    outcome = Some(Err(
                        "the MCU refused the plan (battery, signal or space)".to_string()
                    ));
                    return false;
                }
                Event::Confirmed => eprintln!("MCU confirmed the plan"),
                Event::PieceRequested { offset } => eprintln!("MCU asks for the piece at {offset}"),
                Event::Updating => eprintln!("MCU is updating"),
                Event::Succeeded { version } => outcome = Some(Ok(version)),
                Event::Failed(e) => outcome = Some(Err(e.to_string())),
            }
        }
        true
    })
    .map_err(|e| format!("serial I/O on {} failed: {e}", args.port))?;
    bar.finish();
    match outcome {
        Some(Ok(version)) => {
            eprintln!("upgrade succeeded: the MCU runs {version}");
            Ok(())
        }
        Some(Err(e)) => Err(e),
        None => Err("the session stopped without a result".into()),
    }
}
