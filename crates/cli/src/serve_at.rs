//! `sota serve-at`: the CLI plays the Quectel module and upgrades an AT SOTA MCU from a local
//! file. The engine's session runs the upgrade (download = reading the file, verification,
//! pieces, timeouts, result); `sota_link::at_sota::Upgrade` speaks AT. This file only carries
//! out the session's I/O: read a byte range of the file, keep the verified image, hand pieces.

use crate::drive::drive;
use crate::open_port;
use crate::progress::Bar;
use sota_engine::{
    Command, ComponentType, Config, Digester, DownloadMode, Event, ExpectedDigests, FirmwareInfo,
    Outcome, Plan, Session, UiEvent,
};
use sota_link::at_sota::{self, Notice, Upgrade};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// Expected MD5 of the file [default: the file's own, printed].
    #[arg(long)]
    md5: Option<String>,
    /// Expected CRC32 (8 hex digits) of the file [default: the file's own, printed].
    #[arg(long)]
    crc32: Option<String>,
    /// Expected SHA-256 of the file [default: the file's own, printed].
    #[arg(long)]
    sha256: Option<String>,
}

/// Streams the file through the digester, so a large file never sits in memory twice.
fn file_digests(path: &Path) -> Result<sota_engine::Digests, String> {
    let mut file = File::open(path)
        .map_err(|e| format!("cannot read the firmware file {}: {e}", path.display()))?;
    let mut digester = Digester::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| format!("cannot read the firmware file {}: {e}", path.display()))?;
        if n == 0 {
            return Ok(digester.finish());
        }
        digester.update(&buf[..n]);
    }
}

/// Bytes `start..end` of the file: the "download" the session asked for.
fn read_range(path: &Path, start: u64, end: u64) -> std::io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(end.saturating_sub(start))
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The plan and firmware info from the flags; the expected digests default to the file's.
fn plan_and_info(args: &Args) -> Result<(Plan, FirmwareInfo), String> {
    let own = file_digests(&args.firmware)?;
    if own.size == 0 {
        return Err(format!(
            "the firmware file {} is empty",
            args.firmware.display()
        ));
    }
    let given = ExpectedDigests::parse(
        args.md5.as_deref().unwrap_or(""),
        args.crc32.as_deref().unwrap_or(""),
        args.sha256.as_deref().unwrap_or(""),
    )
    .map_err(|e| format!("bad expected digest: {e}"))?;
    let pick = |given: Option<String>, own: &str, name: &str| {
        given.unwrap_or_else(|| {
            eprintln!(
                "expected {name}: {own} (the file's own; pass --{} to check against the center's)",
                name.to_lowercase().replace('-', "")
            );
            own.to_string()
        })
    };
    let md5 = pick(given.md5, &own.md5, "MD5");
    let crc32 = pick(given.crc32, &own.crc32, "CRC32");
    let sha256 = pick(given.sha256, &own.sha256, "SHA-256");
    let plan = Plan {
        identity: args.component.clone(),
        component_type: ComponentType::Mcu,
        source_version: args.source_version.clone(),
        target_version: args.version.clone(),
        min_battery: args.min_battery,
        min_signal_dbm: args.min_signal,
        space_needed: args.use_space.unwrap_or(own.size),
        package_size: own.size,
    };
    let info = FirmwareInfo {
        identity: args.component.clone(),
        version: args.version.clone(),
        md5,
        crc32,
        sha256,
        url: format!("file://{}", args.firmware.display()),
        size: own.size,
        mode: DownloadMode::ConsoleDownloads,
    };
    Ok((plan, info))
}

/// Runs `sota serve-at`.
pub fn run(args: Args) -> Result<(), String> {
    let (plan, info) = plan_and_info(&args)?;
    let mut port = open_port(&args.port, args.baud, false)?;
    let config = Config {
        piece_size: args.piece_size,
        ..Config::default()
    };
    let session = Session::new(config, Vec::new());
    let mut upgrade = Upgrade::new(at_sota::Config::default(), session, vec![plan], vec![info]);
    eprintln!(
        "serving {} as {} {} on {}",
        args.firmware.display(),
        args.component,
        args.version,
        args.port
    );
    let mut bar = Bar::new();
    // The verified image: pieces are read from here, never from the file again.
    let mut store: Vec<u8> = Vec::new();
    let mut failure = None;
    drive(&mut port, &mut upgrade, |up, now| {
        // Notices first, so the log reads in order: what the MCU did, then what followed.
        let mut notices: Vec<Notice> = std::iter::from_fn(|| up.poll_notice()).collect();
        if let Err(e) = carry_out(up, &args.firmware, &mut store, now) {
            failure = Some(e);
            return false;
        }
        notices.extend(std::iter::from_fn(|| up.poll_notice()));
        for notice in notices {
            // The one plan was refused: nothing follows, so do not sit out the session's wait.
            if let Notice::Link(at_sota::Event::Refused { component }) = &notice {
                failure = Some(format!(
                    "the MCU refused the plan for {component}: its battery, signal or free space does not meet the plan's minimums"
                ));
                return false;
            }
            show(notice, &mut bar);
        }
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

/// Carries out the session's I/O commands.
fn carry_out(
    up: &mut Upgrade,
    firmware: &Path,
    store: &mut Vec<u8>,
    now: Duration,
) -> Result<(), String> {
    while let Some(command) = up.poll_command() {
        match command {
            Command::Fetch { start, end, .. } => {
                // Fed in 64 KiB chunks: the session streams them through its digests.
                let mut offset = start;
                while offset < end {
                    let chunk_end = end.min(offset + 64 * 1024);
                    let event = match read_range(firmware, offset, chunk_end) {
                        Ok(bytes) if bytes.len() as u64 == chunk_end - offset => {
                            Event::Downloaded { offset, bytes }
                        }
                        Ok(_) => Event::DownloadFailed {
                            reason: format!("{} is shorter than before", firmware.display()),
                        },
                        Err(e) => Event::DownloadFailed {
                            reason: format!("cannot read {}: {e}", firmware.display()),
                        },
                    };
                    let failed = matches!(event, Event::DownloadFailed { .. });
                    up.handle(event, now)
                        .map_err(|e| format!("internal: the session refused a read: {e}"))?;
                    if failed {
                        break;
                    }
                    offset = chunk_end;
                }
            }
            Command::StoreChunk { offset, bytes, .. } => {
                store.truncate(offset as usize);
                store.extend_from_slice(&bytes);
            }
            Command::Refeed { len, .. } => {
                let bytes = store.get(..len as usize).map(<[u8]>::to_vec);
                let event = match bytes {
                    Some(bytes) => Event::Stored { offset: 0, bytes },
                    None => Event::StoreLost,
                };
                up.handle(event, now)
                    .map_err(|e| format!("internal: the session refused stored bytes: {e}"))?;
            }
            Command::OfferPiece { offset, len, .. } => {
                let end = offset as usize + len as usize;
                match store.get(offset as usize..end) {
                    Some(piece) => up.piece(offset, piece.to_vec(), now),
                    None => up
                        .handle(Event::StoreLost, now)
                        .map_err(|e| format!("internal: {e}"))?,
                }
            }
            Command::DiscardImage { .. } => store.clear(),
            Command::Report(report) => eprintln!(
                "status {} ({}): {}",
                report.status, report.component, report.message
            ),
            Command::HandToMcu(_) => {
                return Err("the MCU-downloads mode is not available over AT SOTA".into())
            }
            Command::SetDeadline { .. } => {}
        }
    }
    Ok(())
}

fn show(notice: Notice, bar: &mut Bar) {
    use at_sota::Event as Link;
    match notice {
        Notice::Link(Link::Progress(p)) => bar.update(p),
        Notice::Link(Link::VersionReported { component, version }) => {
            eprintln!("MCU reports {component} {version}")
        }
        Notice::Link(Link::PlanRequested { .. }) => eprintln!("MCU asks for a plan"),
        Notice::Link(Link::Confirmed) => eprintln!("MCU confirmed the plan"),
        Notice::Link(Link::Updating) => eprintln!("MCU is updating"),
        Notice::Engine(UiEvent::Verified { component, .. }) => {
            eprintln!("{component}: MD5, CRC32 and SHA-256 match")
        }
        Notice::Engine(UiEvent::Refused { component, reasons }) => {
            for r in reasons {
                eprintln!("{component}: refused: {r}");
            }
        }
        _ => {}
    }
}
