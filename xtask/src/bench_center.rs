//! `cargo xtask bench center`: the center's two speed goals, measured in one run.
//!
//! 1. One 64 MiB package downloaded by 100 concurrent clients from the center
//!    and, alternately in the same run, from Debian's nginx serving the same
//!    file on loopback; prints median throughputs and their ratio (goal ≥ 0.9).
//! 2. Deciding which plans apply to each of 1,000,000 devices, one plan with a
//!    100,000-key whitelist and a 100,000-key blacklist (goal < 6 s).
//! 3. The same package downloaded through a second center whose firmware store
//!    is an S3-compatible server (moto's `moto_server` from the project's
//!    `.venv`), alternately with the local-store center and with moto itself
//!    (no center between), by a few clients; prints the median throughputs and
//!    the ratio S3/local. moto is a Python test server, so the S3 figure is a
//!    floor set by it, not by the center: the moto-direct figure shows that.
//! 4. One push cycle's decision over `--push-devices` registered devices, all
//!    connected, loaded from each backend: SQLite in a fresh data directory, and
//!    PostgreSQL on a throwaway cluster (`sota-center scratch-postgres`), each
//!    seeded with the demo data and grown to that many devices (not timed), then
//!    `channel::push::cycle` timed by the channel load tool's `push` mode
//!    (goal ≤ 6 s from each).
//!
//! Options: `--mib N` (64), `--clients N` (100), `--seconds N` per run (8),
//! `--runs N` (3), `--devices N` (1000000), `--list N` (100000),
//! `--s3-clients N` (4, for part 3), `--push-devices N` (1000000, part 4).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::run::{self, cmd};
use crate::{setup, Result};

const DOWNLOAD_GOAL: f64 = 0.9;
const DECIDE_GOAL_S: f64 = 6.0;
const PUSH_GOAL_S: f64 = 6.0;
/// How long the center may take to print its `listening on` line.
const START_DEADLINE: Duration = Duration::from_secs(60);

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// nginx must be stopped by signal to its master (SIGKILL would orphan the workers).
struct Nginx {
    child: Child,
    stop: Command,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self
            .stop
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

fn value(lines: &[String], key: &str) -> Result<f64> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        .ok_or_else(|| format!("the benchmark printed no `{key}` line"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn nginx_binary() -> Option<&'static str> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

/// The URL from the center's `sota-center listening on URL` line. A center
/// stuck in start-up (a locked database, a hung store) fails the benchmark
/// after `within` instead of hanging it. The rest of its output is drained.
fn listening_url(stdout: ChildStdout, within: Duration) -> Result<String> {
    line_after(stdout, "sota-center listening on ", "listening", within)
}

/// A throwaway PostgreSQL cluster (`sota-center scratch-postgres`), stopped by SIGTERM on drop
/// so it removes itself.
struct ScratchPostgres {
    child: Child,
    url: String,
}

impl ScratchPostgres {
    fn start(center_bin: &Path) -> Result<Self> {
        let mut child = Command::new(center_bin)
            .arg("scratch-postgres")
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", center_bin.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        // From here on, the drop stops it.
        let mut cluster = Self {
            child,
            url: String::new(),
        };
        cluster.url = line_after(
            stdout,
            "postgres-url ",
            "printing its database URL",
            START_DEADLINE,
        )?;
        Ok(cluster)
    }
}

impl Drop for ScratchPostgres {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// The rest of the first line of `stdout` that starts with `prefix`, within `within`; `what`
/// names that moment in the error of a process that exits first.
fn line_after(stdout: ChildStdout, prefix: &str, what: &str, within: Duration) -> Result<String> {
    let prefix = prefix.to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // Keep reading after the banner so the center never blocks on a full pipe.
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + within;
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                if let Some(url) = line.strip_prefix(prefix.as_str()) {
                    return Ok(url.trim().to_string());
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!(
                    "the center did not print its `{}` line within {within:?}; \
                     run it by hand on the benchmark's data directory to see where it stops",
                    prefix.trim()
                ))
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(format!(
                    "the center exited before {what}; see its error output above"
                ))
            }
        }
    }
}

/// Runs both measurements; see the module doc for `args`.
pub fn run(args: &[String]) -> Result {
    let get = |name: &str, default: &str| run::flag(args, name).unwrap_or(default).to_string();
    let (mib, clients, seconds, runs) = (
        get("--mib", "64"),
        get("--clients", "100"),
        get("--seconds", "8"),
        get("--runs", "3"),
    );
    let (devices, list) = (get("--devices", "1000000"), get("--list", "100000"));
    let s3_clients = get("--s3-clients", "4");
    let push_devices = get("--push-devices", "1000000");
    let push_only = args.iter().any(|a| a == "--push-only");
    let mib_n: usize = mib
        .parse()
        .map_err(|_| format!("--mib {mib} is not a number"))?;
    let runs_n: usize = runs
        .parse()
        .map_err(|_| format!("--runs {runs} is not a number"))?;
    if nginx_binary().is_none() {
        setup::apt(&["nginx"])?;
    }
    let nginx = nginx_binary().ok_or("nginx is not installed (apt-get install -y nginx)")?;
    setup::python()?;
    run::status(cmd("cargo").args([
        "build",
        "--release",
        "-q",
        "-p",
        "sota-center",
        "--features",
        "s3",
        "--bin",
        "sota-center",
        "--example",
        "center_bench",
        "--example",
        "channel_bench",
    ]))?;
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| run::root().join("target"));
    let center_bin = target.join("release/sota-center");
    let bench_bin = target.join("release/examples/center_bench");
    let channel_bin = target.join("release/examples/channel_bench");
    if push_only {
        let work = target.join("bench-center-push");
        let (lite, pg) = push_cycles(&center_bin, &channel_bin, &work, &push_devices)?;
        print_push(&push_devices, lite, pg);
        return Ok(());
    }

    // Fresh work directory with the package file.
    let work = target.join("bench-center");
    let _ = std::fs::remove_dir_all(&work);
    let www = work.join("www");
    std::fs::create_dir_all(&www).map_err(|e| format!("{}: {e}", www.display()))?;
    let file = www.join("bench.bin");
    {
        let mut f =
            std::io::BufWriter::new(std::fs::File::create(&file).map_err(|e| e.to_string())?);
        let mut block = vec![0u8; 1 << 20];
        for m in 0..mib_n {
            for (i, b) in block.iter_mut().enumerate() {
                *b = ((i * 31 + m * 7) >> 3) as u8;
            }
            f.write_all(&block).map_err(|e| e.to_string())?;
        }
    }

    // The center.
    let (center, center_url) = center_with_package(
        &center_bin,
        &bench_bin,
        &work.join("center"),
        &file,
        &[],
        &[],
    )?;

    // nginx on the same file.
    let port = free_port()?;
    let conf = work.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "worker_processes auto;\npid {pid};\nerror_log {err} warn;\nevents {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  client_body_temp_path {tmp};\n  proxy_temp_path {tmp};\n  fastcgi_temp_path {tmp};\n  uwsgi_temp_path {tmp};\n  scgi_temp_path {tmp};\n\
             server {{ listen 127.0.0.1:{port}; root {root}; }}\n}}\n",
            pid = work.join("nginx.pid").display(),
            err = work.join("nginx.err").display(),
            tmp = work.display(),
            root = www.display(),
        ),
    )
    .map_err(|e| e.to_string())?;
    let nginx_child = Command::new(nginx)
        .args(["-p"])
        .arg(&work)
        .arg("-c")
        .arg(&conf)
        .args(["-g", "daemon off;"])
        .spawn()
        .map_err(|e| format!("cannot start nginx: {e}"))?;
    let mut stop = Command::new(nginx);
    stop.arg("-p")
        .arg(&work)
        .arg("-c")
        .arg(&conf)
        .args(["-s", "stop"]);
    let nginx_child = Nginx {
        child: nginx_child,
        stop,
    };
    std::thread::sleep(std::time::Duration::from_millis(500));
    let nginx_url = format!("http://127.0.0.1:{port}/bench.bin");

    let (mut c, mut n) = (Vec::new(), Vec::new());
    for _ in 0..runs_n.max(1) {
        for (url, out) in [(&center_url, &mut c), (&nginx_url, &mut n)] {
            let mut lines = Vec::new();
            run::tee(
                Command::new(&bench_bin).args(["download", url, &clients, &seconds]),
                |l| lines.push(l.to_string()),
            )?;
            out.push(value(&lines, "mbps ")?);
        }
    }
    drop(nginx_child);

    // The same package through a center on an S3-compatible store.
    let moto = Moto::start(&work)?;
    run::status(Command::new(&bench_bin).args(["bucket", &moto.endpoint, "bench"]))?;
    let aws = moto.aws_env();
    let aws: Vec<(&str, &str)> = aws.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s3_center, s3_url) = center_with_package(
        &center_bin,
        &bench_bin,
        &work.join("center-s3"),
        &file,
        &["--store", "s3://bench/firmware"],
        &aws,
    )?;
    let mut lines = Vec::new();
    run::tee(
        Command::new(&bench_bin).args(["object-url", &moto.endpoint, "bench"]),
        |l| lines.push(l.to_string()),
    )?;
    let moto_url = lines
        .iter()
        .find_map(|l| l.strip_prefix("url "))
        .ok_or("object-url printed no url")?
        .to_string();
    let (mut local, mut s3, mut direct) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs_n.max(1) {
        for (url, out) in [
            (&center_url, &mut local),
            (&s3_url, &mut s3),
            (&moto_url, &mut direct),
        ] {
            let mut lines = Vec::new();
            run::tee(
                Command::new(&bench_bin).args(["download", url, &s3_clients, &seconds]),
                |l| lines.push(l.to_string()),
            )?;
            out.push(value(&lines, "mbps ")?);
        }
    }
    drop(s3_center);
    drop(moto);
    drop(center);

    let mut decide = Vec::new();
    run::tee(
        Command::new(&bench_bin).args(["applicability", &devices, &list]),
        |l| decide.push(l.to_string()),
    )?;
    let secs = value(&decide, "seconds ")?;
    let (push_lite, push_pg) = push_cycles(&center_bin, &channel_bin, &work, &push_devices)?;

    let (cm, nm) = (median(c), median(n));
    let ratio = cm / nm;
    println!(
        "\ncenter bench, {mib} MiB package, {clients} clients, {runs} x {seconds} s runs, medians:"
    );
    println!("  sota-center  {cm:>9.1} MB/s");
    println!("  nginx        {nm:>9.1} MB/s");
    println!(
        "  ratio center/nginx {ratio:.2} (goal >= {DOWNLOAD_GOAL}) {}",
        if ratio >= DOWNLOAD_GOAL {
            "MET"
        } else {
            "NOT MET"
        }
    );
    println!(
        "  plan decision for {devices} devices (lists of {list}): {secs:.2} s (goal < {DECIDE_GOAL_S} s) {}",
        if secs < DECIDE_GOAL_S { "MET" } else { "NOT MET" }
    );
    let (lm, sm, dm) = (median(local), median(s3), median(direct));
    println!("  firmware store, {s3_clients} clients, medians:");
    println!("    center on the local store      {lm:>9.1} MB/s");
    println!("    center on S3 (moto)            {sm:>9.1} MB/s");
    println!("    moto directly, no center       {dm:>9.1} MB/s");
    println!(
        "    ratio S3/local {:.2}; center on S3 / moto direct {:.2}",
        sm / lm,
        sm / dm
    );
    print_push(&push_devices, push_lite, push_pg);
    Ok(())
}

/// Part 4: one push cycle over `devices` devices from SQLite, then from PostgreSQL; the
/// seconds of each (the first pass, which records the offers).
fn push_cycles(
    center_bin: &Path,
    channel_bin: &Path,
    work: &Path,
    devices: &str,
) -> Result<(f64, f64)> {
    let mut seconds = Vec::new();
    for backend in ["sqlite", "postgres"] {
        let data = work.join(format!("push-{backend}"));
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
        let cluster = match backend {
            "postgres" => Some(ScratchPostgres::start(center_bin)?),
            _ => None,
        };
        eprintln!("push cycle over {devices} devices from {backend}");
        let mut c = Command::new(channel_bin);
        c.arg("push").arg(&data).arg(devices);
        if let Some(cluster) = &cluster {
            c.arg(&cluster.url);
        }
        let mut lines = Vec::new();
        run::tee(&mut c, |l| lines.push(l.to_string()))?;
        seconds.push(value(&lines, "push_seconds ")?);
        drop(cluster);
        let _ = std::fs::remove_dir_all(&data);
    }
    Ok((seconds[0], seconds[1]))
}

fn print_push(devices: &str, sqlite: f64, postgres: f64) {
    let met = |s: f64| if s <= PUSH_GOAL_S { "MET" } else { "NOT MET" };
    println!("  push cycle over {devices} registered devices, all connected (goal <= {PUSH_GOAL_S} s each):");
    println!("    from SQLite      {sqlite:>6.2} s  {}", met(sqlite));
    println!("    from PostgreSQL  {postgres:>6.2} s  {}", met(postgres));
}

/// Start a center on `data` (with extra flags and environment), upload `file` as a package
/// through it, and return the running center and a device's download link.
fn center_with_package(
    center_bin: &Path,
    bench_bin: &Path,
    data: &Path,
    file: &Path,
    flags: &[&str],
    env: &[(&str, &str)],
) -> Result<(Killed, String)> {
    let token = run::output(
        Command::new(center_bin)
            .args(["token", "create", "--name", "bench", "--data-dir"])
            .arg(data),
    )
    .ok_or("`sota-center token create` failed")?
    .trim()
    .to_string();
    let mut center = Command::new(center_bin)
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
        .arg(data)
        .args(flags)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", center_bin.display()))?;
    let stdout = center.stdout.take().ok_or("no stdout")?;
    let center = Killed(center);
    let url = listening_url(stdout, START_DEADLINE)?;
    let mut prep = Vec::new();
    run::tee(
        Command::new(bench_bin)
            .args(["prepare", &format!("{url}/api/v1"), &token])
            .arg(file),
        |l| prep.push(l.to_string()),
    )?;
    let link = prep
        .iter()
        .find_map(|l| l.strip_prefix("link "))
        .ok_or("prepare printed no link")?
        .to_string();
    Ok((center, link))
}

/// moto's S3 server from the project's `.venv` on a free loopback port, killed on drop.
struct Moto {
    _child: Killed,
    endpoint: String,
}

impl Moto {
    fn start(work: &Path) -> Result<Moto> {
        let port = free_port()?;
        let log = work.join("moto.log");
        let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(setup::MOTO_SERVER)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", setup::MOTO_SERVER))?;
        let mut child = Killed(child);
        let deadline = Instant::now() + START_DEADLINE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = child.0.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                return Err(format!(
                    "moto_server did not listen on port {port} ({exited:?}); see {}",
                    log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Moto {
            _child: child,
            endpoint: format!("http://127.0.0.1:{port}"),
        })
    }

    /// What a center needs to use this server as its S3 store (moto takes any keys).
    fn aws_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "bench".into()),
            ("AWS_SECRET_ACCESS_KEY", "bench".into()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> (Killed, ChildStdout) {
        let mut child = Command::new("sh")
            .args(["-c", script])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        (Killed(child), stdout)
    }

    #[test]
    fn listening_url_is_read_from_the_banner() {
        let (_child, out) = shell(
            "echo starting; echo 'sota-center listening on http://127.0.0.1:9 '; exec sleep 5",
        );
        assert_eq!(
            listening_url(out, Duration::from_secs(30)).unwrap(),
            "http://127.0.0.1:9"
        );
    }

    #[test]
    fn a_silent_center_fails_at_the_deadline_and_an_exited_one_at_once() {
        let (_child, out) = shell("echo starting; exec sleep 30");
        let err = listening_url(out, Duration::from_millis(300)).unwrap_err();
        assert!(err.contains("within 300ms"), "{err}");
        let (_child, out) = shell("echo 'error: cannot open the database'");
        let err = listening_url(out, Duration::from_secs(30)).unwrap_err();
        assert!(err.contains("exited before listening"), "{err}");
    }
}
