//! `cargo xtask bench channel`: the device channel under a fleet, measured in one run.
//!
//! 1. A release `sota-center` on loopback (embedded broker) and the load tool
//!    (`crates/center/examples/channel_bench.rs`): `--devices` simulated
//!    devices (rumqttc clients speaking `sota-protocol`), started `--rate` a
//!    second, each connect with the product secret, register, reconnect with
//!    their device secret, report versions, request plans, report a status,
//!    accept, report another status, and stay connected until all are done.
//!    Prints request→plan p50/p99 and, from the same run, the p99 of a plain
//!    echo round trip through the same broker (one echo per request, sent at
//!    the same moment), and their ratio (goal ≤ 2).
//! 2. With the center stopped, the same database grown to `--push-devices`
//!    registered devices, all marked connected, and one push cycle
//!    (`channel::push::cycle`) timed over them (goal ≤ 6 s).
//!
//! Options: `--devices N` (10000), `--rate N` devices started a second (150),
//! `--timeout S` for the fleet (900), `--push-devices N` (1000000).
//! Both processes run with their open-files limit raised to the hard limit.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::run::{self, cmd};
use crate::Result;

const RATIO_GOAL: f64 = 2.0;
const PUSH_GOAL_S: f64 = 6.0;
/// How long the center may take to print its banner.
const START_DEADLINE: Duration = Duration::from_secs(60);

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `program args…` run through `sh` with the open-files soft limit raised to the hard limit.
fn with_open_files(program: &std::path::Path) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("ulimit -n \"$(ulimit -Hn)\" && exec \"$0\" \"$@\"")
        .arg(program);
    c
}

fn value(lines: &[String], key: &str) -> Result<f64> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
        .ok_or_else(|| format!("the load tool printed no `{key}` line"))
}

/// The HTTP URL and the MQTT address from the center's banner; a center that
/// does not print both within `within` fails the benchmark. Output is drained after.
fn banner(stdout: std::process::ChildStdout, within: Duration) -> Result<(String, String)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + within;
    let (mut url, mut mqtt) = (None, None);
    loop {
        if let (Some(u), Some(m)) = (&url, &mqtt) {
            return Ok((String::clone(u), String::clone(m)));
        }
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                if let Some(u) = line.strip_prefix("sota-center listening on ") {
                    url = Some(u.trim().to_string());
                }
                if let Some(m) = line.strip_prefix("sota-center MQTT on mqtt://") {
                    mqtt = Some(m.trim().to_string());
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!(
                    "the center did not print its HTTP and MQTT addresses within {within:?}"
                ))
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err("the center exited before listening; see its error output above".into())
            }
        }
    }
}

/// Runs both measurements; see the module doc for `args`.
pub fn run(args: &[String]) -> Result {
    let get = |name: &str, default: &str| run::flag(args, name).unwrap_or(default).to_string();
    let (devices, rate, timeout, push_devices) = (
        get("--devices", "10000"),
        get("--rate", "150"),
        get("--timeout", "900"),
        get("--push-devices", "1000000"),
    );
    for (name, v) in [
        ("--devices", &devices),
        ("--rate", &rate),
        ("--timeout", &timeout),
        ("--push-devices", &push_devices),
    ] {
        v.parse::<u64>()
            .map_err(|_| format!("{name} {v} is not a number"))?;
    }
    run::status(cmd("cargo").args([
        "build",
        "--release",
        "-q",
        "-p",
        "sota-center",
        "--bin",
        "sota-center",
        "--example",
        "channel_bench",
    ]))?;
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| run::root().join("target"));
    let center_bin = target.join("release/sota-center");
    let bench_bin = target.join("release/examples/channel_bench");
    let work = target.join("bench-channel");
    let _ = std::fs::remove_dir_all(&work);
    let data = work.join("center");
    std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;

    let token = run::output(
        Command::new(&center_bin)
            .args(["token", "create", "--name", "bench", "--data-dir"])
            .arg(&data),
    )
    .ok_or("`sota-center token create` failed")?
    .trim()
    .to_string();
    let mut center = with_open_files(&center_bin);
    center
        .args([
            "serve",
            "--no-demo",
            "--listen",
            "127.0.0.1:0",
            "--mqtt-listen",
            "127.0.0.1:0",
            "--mqtt-ws-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped());
    let mut child = center
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", center_bin.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let center = Killed(child);
    let (url, mqtt) = banner(stdout, START_DEADLINE)?;
    eprintln!(
        "channel bench: {devices} devices, {rate} started a second, against a release sota-center \
         (embedded broker mqtt://{mqtt}); echo by the center's login (client id sota-center-echo)"
    );
    let mut fleet = Vec::new();
    run::tee(
        with_open_files(&bench_bin)
            .args(["fleet", &format!("{url}/api/v1"), &token, &mqtt])
            .arg(&data)
            .args([&devices, &rate, &timeout]),
        |l| fleet.push(l.to_string()),
    )?;
    drop(center);

    let mut push = Vec::new();
    run::tee(
        Command::new(&bench_bin)
            .arg("push")
            .arg(&data)
            .arg(&push_devices),
        |l| push.push(l.to_string()),
    )?;

    let ms = |key: &str| value(&fleet, key);
    let (request50, request99, echo50, echo99) = (
        ms("request_p50_ms")?,
        ms("request_p99_ms")?,
        ms("echo_p50_ms")?,
        ms("echo_p99_ms")?,
    );
    let ratio = request99 / echo99;
    let push_s = value(&push, "push_seconds")?;
    let met = |ok: bool| if ok { "MET" } else { "NOT MET" };
    println!("\nchannel bench, {devices} devices started {rate}/s (loopback, embedded broker):");
    println!(
        "  all connected and registered in {:.1} s; {} connected at once; {} statuses recorded; {} logins tried again after \"server unavailable\"",
        value(&fleet, "run_seconds")?,
        value(&fleet, "connected_at_once")?,
        value(&fleet, "statuses_recorded")?,
        value(&fleet, "connect_retries")?
    );
    println!(
        "  connect (device secret) p50 {:.2} ms  p99 {:.2} ms;  register p50 {:.2} ms  p99 {:.2} ms",
        ms("connect_p50_ms")?,
        ms("connect_p99_ms")?,
        ms("register_p50_ms")?,
        ms("register_p99_ms")?
    );
    println!("  request→plan   p50 {request50:.2} ms  p99 {request99:.2} ms");
    println!(
        "  accept→firmware p50 {:.2} ms  p99 {:.2} ms",
        ms("accept_p50_ms")?,
        ms("accept_p99_ms")?
    );
    println!("  echo (broker)  p50 {echo50:.2} ms  p99 {echo99:.2} ms");
    println!(
        "  ratio request p99 / echo p99 {ratio:.2} (goal <= {RATIO_GOAL}) {}",
        met(ratio <= RATIO_GOAL)
    );
    println!(
        "  push cycle over {} registered devices, all connected: {push_s:.2} s, {} pushed, {} rows written (goal <= {PUSH_GOAL_S} s) {}",
        value(&push, "push_registered")?,
        value(&push, "push_devices")?,
        value(&push, "push_recorded")?,
        met(push_s <= PUSH_GOAL_S)
    );
    println!(
        "  the same cycle again: {:.2} s, {} pushed",
        value(&push, "push_again_seconds")?,
        value(&push, "push_again_devices")?
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_read_by_their_whole_key() {
        let lines = vec![
            "request_p99_ms 12.5".to_string(),
            "request_p9 1".to_string(),
        ];
        assert_eq!(value(&lines, "request_p99_ms").unwrap(), 12.5);
        assert!(value(&lines, "request_p").is_err());
    }

    #[test]
    fn the_banner_gives_both_addresses() {
        let mut child = Command::new("sh")
            .args([
                "-c",
                "echo 'sota-center listening on http://127.0.0.1:9'; echo '  data: x'; \
                 echo 'sota-center MQTT on mqtt://127.0.0.1:10'; exec sleep 5",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let _child = Killed(child);
        assert_eq!(
            banner(out, Duration::from_secs(30)).unwrap(),
            ("http://127.0.0.1:9".to_string(), "127.0.0.1:10".to_string())
        );
    }
}
