//! `sota serve-at`: the CLI plays the Quectel module and upgrades an AT SOTA MCU, from a local
//! file or as a device of the center (`--center`). The engine's session runs the upgrade
//! (download, verification, pieces, timeouts, result); `sota_flow::AtUpgrade` speaks AT and
//! turns the session's I/O into requests that `sota_flow::io::serve` carries out over the
//! file (or HTTP) and an image kept in memory. With a local file this file answers the
//! requests for plans and firmware info; with a center `sota_flow::CenterLink` turns them into
//! messages and the center's answers back.

use crate::center::{broker_address, CenterArgs, Channel, HttpSource, Net};
use crate::drive::drive;
use crate::firmware::{file_digests, local, Expected, FileSource};
use crate::open_port;
use crate::progress::Bar;
use sota_engine::{Config, Outcome, Session, UiEvent};
use sota_flow::io::serve;
use sota_flow::{AtUpgrade, CenterLink, CenterNotice, Io, LocalFirmware, MemoryStore, Notice};
use sota_link::at_sota;
use sota_protocol::{decode_down, DeviceId, ErrorCode, PackageType};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Arguments of `sota serve-at`.
#[derive(clap::Args)]
pub struct Args {
    /// Serial device the MCU is on.
    #[arg(long)]
    port: String,
    /// Baud rate.
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    /// Firmware file to offer (without --center).
    #[arg(long, required_unless_present = "center", conflicts_with = "center")]
    firmware: Option<PathBuf>,
    /// Target version the plan announces (the MCU must report it after updating).
    #[arg(long, required_unless_present = "center", conflicts_with = "center")]
    version: Option<String>,
    /// Component identity of the plan.
    #[arg(long, default_value = "STM32")]
    component: String,
    /// Source version of the plan (empty: a full package; else the MCU must run it).
    #[arg(long, default_value = "", conflicts_with = "center")]
    source_version: String,
    /// Minimum battery level (%) in the plan (0: a bench board on USB power).
    #[arg(long, default_value_t = 0, conflicts_with = "center")]
    min_battery: u8,
    /// Minimum signal (dBm) in the plan.
    #[arg(long, default_value_t = -113, allow_hyphen_values = true, conflicts_with = "center")]
    min_signal: i32,
    /// Flash space (bytes) the plan says the upgrade needs [default: the file's size].
    #[arg(long, conflicts_with = "center")]
    use_space: Option<u64>,
    /// Piece size: the module's free space (the whole file if larger).
    #[arg(long, default_value_t = 64 * 1024)]
    piece_size: u32,
    #[command(flatten)]
    expected: Expected,
    #[command(flatten)]
    center: CenterArgs,
}

/// The file with the flags' expected digests (the file's own where none was given, printed).
fn firmware(args: &Args, path: &std::path::Path, version: &str) -> Result<LocalFirmware, String> {
    let own = file_digests(path)?;
    if own.size == 0 {
        return Err(format!("the firmware file {} is empty", path.display()));
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
        path,
        &args.component,
        version,
        &args.source_version,
        own,
        expected,
    ))
}

/// Runs `sota serve-at`.
pub fn run(args: Args) -> Result<(), String> {
    if args.center.center.is_some() {
        return run_center(&args);
    }
    let (Some(path), Some(version)) = (&args.firmware, &args.version) else {
        return Err("give --firmware FILE and --version V, or --center URL".into());
    };
    let firmware = firmware(&args, path, version)?;
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
        "serving {} as {} {version} on {}",
        path.display(),
        args.component,
        args.port
    );
    let mut bar = Bar::new();
    let mut source = FileSource::new(&firmware, path);
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
    results(&upgrade)
}

/// The session's verdict, printed; an error for a failed plan.
fn results(upgrade: &AtUpgrade) -> Result<(), String> {
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

/// How long to wait for the first login to the center's broker.
const FIRST_LOGIN: Duration = Duration::from_secs(30);

/// `serve-at --center`: plans, firmware info and the firmware come from the center; every
/// status goes back to it.
fn run_center(args: &Args) -> Result<(), String> {
    let c = &args.center;
    let center = c.center.as_deref().unwrap_or_default();
    let (Some(product), Some(device)) = (c.product.as_deref(), c.device.as_deref()) else {
        return Err("--center needs --product KEY and --device KEY".into());
    };
    let id = DeviceId::new(product, device).ok_or_else(|| {
        format!("product {product:?} / device {device:?}: a key is 1 to 64 of A-Z a-z 0-9 _ - .")
    })?;
    let (password, register) = match (&c.device_secret, &c.product_secret) {
        (Some(secret), _) => (secret.clone(), false),
        (None, Some(secret)) => (secret.clone(), true),
        (None, None) => {
            return Err("--center needs the device secret (--device-secret or SOTA_DEVICE_SECRET) or, for a device not yet registered, the product secret (--product-secret or SOTA_PRODUCT_SECRET)".into())
        }
    };
    let (host, mqtt_port) = broker_address(center, c.mqtt.as_deref())?;
    eprintln!("connecting to the center's broker at {host}:{mqtt_port} as {id}");
    let mut channel = Channel::open(&host, mqtt_port, id.clone(), &password);
    first_login(&mut channel, &host, mqtt_port, &id, register)?;
    eprintln!("connected to the center as {id}");
    let mut link = CenterLink::new();
    if register {
        link.register(&password);
    }
    let mut port = open_port(&args.port, args.baud, false)?;
    let config = Config {
        piece_size: args.piece_size,
        ..Config::default()
    };
    let mut upgrade = AtUpgrade::new(at_sota::Config::default(), Session::new(config, Vec::new()));
    eprintln!("serving the MCU on {} for the center", args.port);
    let mut bar = Bar::new();
    let mut source = HttpSource::default();
    let mut store = MemoryStore::default();
    let mut failure = None;
    let mut no_plan = false;
    let mut online = true;
    drive(&mut port, &mut upgrade, |up, now| {
        while let Some(net) = channel.poll() {
            match net {
                Net::Connected => {
                    if !online {
                        bar.println("reconnected to the center; repeating what it has not answered");
                        online = true;
                        link.reconnected();
                    }
                }
                Net::Down(bytes) => match decode_down(&bytes) {
                    Ok(down) => {
                        bar.println(format!("center → {}", down.summary()));
                        link.handle_down(down, up, now);
                    }
                    Err(e) => bar.println(format!("center sent a message this tool cannot read: {e}")),
                },
                Net::Refused(why) => {
                    failure = Some(format!("the center's broker refused the login of {id}: {why}"));
                }
                Net::Lost(why) => {
                    if online {
                        bar.println(format!("lost the center ({why}); the upgrade goes on and reports are sent when it is back"));
                        online = false;
                    }
                }
            }
        }
        if let Err(e) = show_notices(up, &bar) {
            failure = Some(e);
        }
        serve(up, &mut source, &mut store, now, |_, io| {
            // Everything that is not download or store work is the center's.
            let _ = link.take(io);
        });
        while let Some(notice) = link.poll_notice() {
            match notice {
                CenterNotice::Plans(plans) if plans.is_empty() => no_plan = true,
                CenterNotice::Plans(plans) => {
                    for p in plans {
                        let text = p.texts.get("en").map(|t| format!(" — {t}")).unwrap_or_default();
                        let from = match p.package_type {
                            PackageType::Full => "full package".to_string(),
                            PackageType::Delta => format!("delta from {}", p.src_ver),
                        };
                        bar.println(format!(
                            "plan {}: {} to {} ({from}, {} bytes){text}",
                            p.plan_id, p.comp_no, p.tgt_ver, p.size
                        ));
                    }
                }
                CenterNotice::Registered { device_secret } => bar.println(format!(
                    "registered {id}; its device secret (shown once, keep it for --device-secret): {device_secret}"
                )),
                CenterNotice::Error { code, message } => {
                    if matches!(code, ErrorCode::UnknownDevice | ErrorCode::RegistrationRefused) {
                        failure = Some(format!("the center refused {id}: {message}"));
                    } else {
                        bar.println(format!("center refused a message: {message}"));
                    }
                }
                CenterNotice::Ignored(what) => bar.println(format!("ignored: {what}")),
            }
        }
        while let Some(message) = link.poll_up() {
            bar.println(format!("→ center: {}", message.summary()));
            if let Err(e) = channel.send(&message) {
                failure = Some(e);
            }
        }
        if let Err(e) = show_notices(up, &bar) {
            failure = failure.take().or(Some(e));
        }
        if failure.is_some() || no_plan {
            return false;
        }
        bar.show(up.state());
        true
    })
    .map_err(|e| format!("serial I/O on {} failed: {e}", args.port))?;
    bar.finish();
    if let Err(e) = channel.close(Duration::from_secs(10)) {
        eprintln!("warning: {e}");
    }
    if let Some(e) = failure {
        return Err(e);
    }
    if no_plan {
        eprintln!("the center has no plan for {id} now; nothing was upgraded");
        return Ok(());
    }
    results(&upgrade)
}

/// Waits for the first login, so a wrong secret or an unreachable broker is said at once.
fn first_login(
    channel: &mut Channel,
    host: &str,
    port: u16,
    id: &DeviceId,
    register: bool,
) -> Result<(), String> {
    let started = Instant::now();
    let mut last = String::from("no answer");
    while started.elapsed() < FIRST_LOGIN {
        match channel.poll() {
            Some(Net::Connected) => return Ok(()),
            Some(Net::Refused(why)) => {
                let used = if register {
                    "--product-secret was given; a device that has logged in with its device secret must use --device-secret"
                } else {
                    "--device-secret was given"
                };
                return Err(format!(
                    "the center's broker at {host}:{port} refused the login of {id}: {why} ({used})"
                ));
            }
            Some(Net::Lost(why)) => last = why,
            Some(Net::Down(_)) => {}
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    Err(format!(
        "cannot reach the center's broker at {host}:{port} within {} s ({last}): check --center / --mqtt and that the center runs",
        FIRST_LOGIN.as_secs()
    ))
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
