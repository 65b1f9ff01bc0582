//! The link benchmark behind `cargo xtask bench link` (run it in release mode).
//!
//! 1. Each protocol against a zero-delay simulated MCU through the paced line model at 115200
//!    and 921600 baud: payload bytes per second divided by the line's byte rate.
//! 2. The same wall-clock paced relay at 115200 baud between real processes: lrzsz `sb` → `rb`
//!    against `sota flash --protocol ymodem` → `rb`, and `stm32flash -w -v` against
//!    `sota flash --protocol an3155` on `sota simulate --protocol an3155`; ratios of their times.
//!
//! Usage: link_bench <path to the sota binary> [--no-peers]

use nix::pty::openpty;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
use sota_engine::Digester;
use sota_link::{an3155, at_sota, ymodem, Endpoint};
use sota_sim::at_mcu::{AtMcu, McuConfig};
use sota_sim::bootloader::{Bootloader, BootloaderConfig};
use sota_sim::line::{Faults, Line, LineConfig};
use sota_sim::test_image;
use sota_sim::ymodem_receiver::{Receiver, ReceiverConfig};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

fn one_third_erased(len: usize) -> Vec<u8> {
    let mut data = test_image(len, 3);
    for (i, chunk) in data.chunks_mut(256).enumerate() {
        if i % 3 == 2 {
            chunk.fill(0xFF);
        }
    }
    data
}

fn simulate(a: &mut dyn Endpoint, b: &mut dyn Endpoint, line: LineConfig) -> Duration {
    let report = Line::new(line, Faults::default()).run(a, b, Duration::from_secs(3600));
    assert!(
        report.finished,
        "the simulated transfer did not finish: {report:?}"
    );
    report.elapsed
}

fn simulated(baud: u32) {
    let z = Duration::ZERO;
    let file = test_image(256 * 1024, 1);
    let n81 = LineConfig::n81(baud);
    let mut sender =
        ymodem::Sender::new("fw.bin", file.clone(), ymodem::Config::default(), z).expect("sender");
    let mut receiver = Receiver::new(ReceiverConfig::default(), z);
    let t = simulate(&mut sender, &mut receiver, n81.clone());
    let ratio = file.len() as f64 / t.as_secs_f64() / n81.bytes_per_second();
    println!(
        "  {baud:>6} ymodem   {:>7} B in {:>7.3} s: {ratio:.3} of line rate (goal >= 0.95)",
        file.len(),
        t.as_secs_f64()
    );

    let d = Digester::digest(&file);
    let info = at_sota::FirmwareInfo {
        size: file.len() as u64,
        md5: d.md5.clone(),
        crc32: d.crc32_value(),
        sha256: d.sha256.clone(),
    };
    let plan = at_sota::Plan {
        component: "STM32".into(),
        source_version: String::new(),
        target_version: "2_0_0".into(),
        min_battery: 0,
        min_signal: -113,
        use_space: 0,
    };
    let module = at_sota::Module::new(at_sota::Config::default());
    let mut server = at_sota::FileServer::new(module, plan, info, file.clone(), 1 << 20);
    let mut mcu = AtMcu::new(McuConfig::default(), z);
    let t = simulate(&mut server, &mut mcu, n81.clone());
    let ratio = file.len() as f64 / t.as_secs_f64() / n81.bytes_per_second();
    println!("  {baud:>6} at-sota  {:>7} B in {:>7.3} s: {ratio:.3} of line rate (goal >= 0.97; includes plan and version handshakes)", file.len(), t.as_secs_f64());

    let image = one_third_erased(96 * 1024);
    let e81 = LineConfig::e81(baud);
    for verify_erased in [true, false] {
        let options = an3155::Options {
            verify_erased,
            ..an3155::Options::default()
        };
        let mut flasher =
            an3155::Flasher::new(&image, options, an3155::Config::default(), z).expect("flasher");
        let mut boot = Bootloader::new(BootloaderConfig::default());
        let t = simulate(&mut flasher, &mut boot, e81.clone());
        let ratio = image.len() as f64 / t.as_secs_f64() / e81.bytes_per_second();
        let how = if verify_erased {
            "verify all"
        } else {
            "trust erase"
        };
        println!(
            "  {baud:>6} an3155   {:>7} B in {:>7.3} s: {ratio:.3} of line rate (image bytes, 1/3 0xFF, write+read-back, {how})",
            image.len(),
            t.as_secs_f64()
        );
    }
}

/// Copies `from` to `to` as a serial line would: no byte arrives before the line could carry it.
fn pace(
    mut from: impl Read + Send + 'static,
    mut to: impl Write + Send + 'static,
    byte_time: Duration,
    stop: Arc<AtomicBool>,
) {
    thread::spawn(move || {
        let mut buf = [0u8; 64];
        let mut line_free = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            line_free = line_free.max(Instant::now()) + byte_time * n as u32;
            let now = Instant::now();
            if line_free > now {
                thread::sleep(line_free - now);
            }
            if to.write_all(&buf[..n]).and_then(|()| to.flush()).is_err() {
                return;
            }
        }
    });
}

/// A pty whose slave a peer opens; returns the master (read, write halves) and the slave path.
fn pty() -> (File, File, PathBuf, std::os::fd::OwnedFd) {
    let p = openpty(None, None).expect("openpty");
    let mut t = tcgetattr(&p.slave).expect("tcgetattr");
    cfmakeraw(&mut t);
    tcsetattr(&p.slave, SetArg::TCSANOW, &t).expect("tcsetattr");
    let path =
        std::fs::read_link(format!("/proc/self/fd/{}", p.slave.as_raw_fd())).expect("pty path");
    let master = File::from(p.master);
    (master.try_clone().expect("clone"), master, path, p.slave)
}

fn spawn_piped(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn peer")
}

fn wait(child: &mut Child, what: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return st.success();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("{what} did not finish within {limit:?}");
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

fn ymodem_peers(sota: &Path, dir: &Path, baud: u32) -> Option<(f64, f64)> {
    let file = dir.join("fw.bin");
    std::fs::write(&file, test_image(96 * 1024, 5)).ok()?;
    let byte_time = Duration::from_nanos(1_000_000_000 * 10 / baud as u64);
    let mut times = Vec::new();
    for ours in [false, true] {
        let rx = dir.join(if ours { "rx-ours" } else { "rx-lrzsz" });
        let _ = std::fs::remove_dir_all(&rx);
        std::fs::create_dir_all(&rx).ok()?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut rb = spawn_piped(Command::new("rb").current_dir(&rx));
        let (rb_in, rb_out) = (
            rb.stdin.take().expect("piped"),
            rb.stdout.take().expect("piped"),
        );
        let start = Instant::now();
        // The pty's slave stays open until the transfer is done, so the master never sees a hang-up.
        let mut slave_guard = None;
        let mut sender = if ours {
            let (m_read, m_write, path, slave) = pty();
            slave_guard = Some(slave);
            pace(m_read, rb_in, byte_time, stop.clone());
            pace(rb_out, m_write, byte_time, stop.clone());
            Command::new(sota)
                .args(["flash", "--protocol", "ymodem", "--port"])
                .arg(&path)
                .arg(&file)
                .stderr(Stdio::null())
                .spawn()
                .expect("start sota")
        } else {
            let mut sb = spawn_piped(Command::new("sb").arg(&file));
            let (sb_in, sb_out) = (
                sb.stdin.take().expect("piped"),
                sb.stdout.take().expect("piped"),
            );
            pace(sb_out, rb_in, byte_time, stop.clone());
            pace(rb_out, sb_in, byte_time, stop.clone());
            sb
        };
        let ok = wait(&mut sender, "ymodem sender", Duration::from_secs(120))
            && wait(&mut rb, "rb", Duration::from_secs(20));
        times.push(start.elapsed().as_secs_f64());
        stop.store(true, Ordering::Relaxed);
        let _ = rb.kill();
        drop(slave_guard);
        if !ok || std::fs::read(rx.join("fw.bin")).ok()? != std::fs::read(&file).ok()? {
            eprintln!(
                "the {} YMODEM transfer failed",
                if ours { "sota" } else { "lrzsz" }
            );
            return None;
        }
    }
    Some((times[0], times[1]))
}

fn an3155_peers(sota: &Path, dir: &Path, baud: u32) -> Option<Vec<(String, f64)>> {
    let file = dir.join("image.bin");
    let image = one_third_erased(48 * 1024);
    std::fs::write(&file, &image).ok()?;
    let byte_time = Duration::from_nanos(1_000_000_000 * 11 / baud as u64);
    let mut results = Vec::new();
    let runs: [(&str, Vec<String>); 3] = [
        ("stm32flash -w -v", vec![]),
        ("sota flash (verify all)", vec![]),
        ("sota flash --trust-erase", vec!["--trust-erase".into()]),
    ];
    for (name, extra) in runs {
        let mut sim = Command::new(sota)
            .args(["simulate", "--protocol", "an3155"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut line = String::new();
        BufReader::new(sim.stdout.take()?)
            .read_line(&mut line)
            .ok()?;
        let sim_tty = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(line.trim())
            .ok()?;
        let mut t = tcgetattr(&sim_tty).ok()?;
        cfmakeraw(&mut t);
        tcsetattr(&sim_tty, SetArg::TCSANOW, &t).ok()?;
        let (m_read, m_write, path, slave) = pty();
        let stop = Arc::new(AtomicBool::new(false));
        pace(m_read, sim_tty.try_clone().ok()?, byte_time, stop.clone());
        pace(sim_tty, m_write, byte_time, stop.clone());
        let start = Instant::now();
        let mut child = if name.starts_with("stm32flash") {
            Command::new("stm32flash")
                .args(["-m", "8n1", "-b", &baud.to_string(), "-w"])
                .arg(&file)
                .arg("-v")
                .arg(&path)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok()?
        } else {
            Command::new(sota)
                .args([
                    "flash",
                    "--protocol",
                    "an3155",
                    "--parity",
                    "none",
                    "--port",
                ])
                .arg(&path)
                .args(&extra)
                .arg(&file)
                .stderr(Stdio::null())
                .spawn()
                .ok()?
        };
        let ok = wait(&mut child, name, Duration::from_secs(120));
        results.push((name.to_string(), start.elapsed().as_secs_f64()));
        stop.store(true, Ordering::Relaxed);
        let _ = sim.kill();
        let _ = sim.wait();
        drop(slave);
        if !ok {
            eprintln!("{name} failed");
            return None;
        }
    }
    Some(results)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!(
        "link bench: simulated MCUs through the paced line model (zero MCU delay, zero latency)"
    );
    for baud in [115_200, 921_600] {
        simulated(baud);
    }
    if args.iter().any(|a| a == "--no-peers") {
        return;
    }
    let Some(sota) = args.first().map(PathBuf::from) else {
        eprintln!("usage: link_bench <path to sota> [--no-peers]");
        std::process::exit(2);
    };
    let dir = std::env::temp_dir().join(format!("sota-link-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let baud = 115_200;
    println!("\nreal peers through a wall-clock paced relay at {baud} baud:");
    match ymodem_peers(&sota, &dir, baud) {
        Some((lrzsz, ours)) => println!(
            "  ymodem 96 KiB: lrzsz sb->rb {lrzsz:.2} s, sota->rb {ours:.2} s: {:.2}x lrzsz (goal >= 1.0)",
            lrzsz / ours
        ),
        None => println!("  ymodem: not measured (see the error above)"),
    }
    match an3155_peers(&sota, &dir, baud) {
        Some(r) => {
            let base = r[0].1;
            for (name, t) in &r {
                println!("  an3155 48 KiB (1/3 0xFF): {name:26} {t:6.2} s: {:.2}x stm32flash (goal >= 1.3)", base / t);
            }
        }
        None => println!("  an3155: not measured (see the error above)"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
