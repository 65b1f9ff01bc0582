//! `cargo xtask test`: every check and suite, each stage timed, one total at the end.

use crate::run::{self, cmd};
use crate::{setup, Result};
use std::time::Instant;

/// The features the native clippy and test stages build the workspace with: the center's S3
/// store, so its code is linted and its tests against moto's S3 server run
/// (`crates/center/tests/s3.rs`; `instances.rs`, two centers on one PostgreSQL, one S3 bucket
/// and one mosquitto, which starts its own PostgreSQL and so runs in the native tests only).
/// The workspace's test build then holds the center once, with S3; the feature costs only its
/// few extra dependencies (h2, hyper-rustls, tokio-rustls, quick-xml and larger builds of
/// object_store and reqwest, about 30 s of CPU cold). The later `cargo build -p sota-center` of
/// the browser and e2e stages was a build of its own before the feature (one package resolves
/// features apart from the workspace) and stays without it.
const NATIVE_FEATURES: &str = "sota-center/s3";

/// Library packages that must build for wasm32 besides the console (everything it links).
const WASM_PACKAGES: &[&str] = &[
    "sota-engine",
    "sota-link",
    "sota-flow",
    "sota-sim",
    "sota-protocol",
    "sota-api",
];

/// Test counts summed over every suite.
#[derive(Default)]
struct Tally {
    passed: u64,
    failed: u64,
}

impl Tally {
    /// Reads libtest's `test result: ok. 3 passed; 0 failed; …` and our own `… N passed, M failed`.
    fn see(&mut self, line: &str) {
        let l = line.trim();
        if !(l.starts_with("test result:") || l.starts_with("e2e:")) {
            return;
        }
        let num_before = |word: &str| -> u64 {
            let words: Vec<&str> = l
                .split(|c: char| c.is_whitespace() || c == ';' || c == ',')
                .collect();
            words
                .windows(2)
                .find(|w| w[1] == word)
                .and_then(|w| w[0].parse().ok())
                .unwrap_or(0)
        };
        self.passed += num_before("passed");
        self.failed += num_before("failed");
    }
}

struct Stage {
    name: &'static str,
    secs: f64,
    ok: bool,
    /// Free disk after the stage, so a run that fills the disk shows where.
    free: String,
}

/// Free space on the disk that holds the workspace, as `df` prints it (`-` if unknown).
fn free_disk() -> String {
    run::output(cmd("df").args(["--output=avail", "-h", "."]))
        .and_then(|o| o.lines().nth(1).map(|l| l.trim().to_string()))
        .unwrap_or_else(|| "-".into())
}

/// Runs everything; with `--quick`, skips the release build and the end-to-end check.
pub fn run(args: &[String]) -> Result {
    let quick = args.iter().any(|a| a == "--quick");
    // One run from a clean checkout gains nothing from incremental state, and it doubled the
    // target folder (CI's disk once filled up mid-run).
    std::env::set_var("CARGO_INCREMENTAL", "0");
    let started = Instant::now();
    let mut stages: Vec<Stage> = Vec::new();
    let mut tally = Tally::default();

    let mut stage = |name: &'static str, f: &mut dyn FnMut(&mut Tally) -> Result| {
        eprintln!("\n==== {name}");
        let t = Instant::now();
        let r = f(&mut tally);
        let secs = t.elapsed().as_secs_f64();
        if let Err(e) = &r {
            eprintln!("xtask: stage `{name}` failed: {e}");
        }
        eprintln!(
            "==== {name}: {} in {secs:.1} s",
            if r.is_ok() { "ok" } else { "FAILED" }
        );
        stages.push(Stage {
            name,
            secs,
            ok: r.is_ok(),
            free: free_disk(),
        });
        r.is_ok()
    };

    if !stage("setup", &mut |_| setup::all()) {
        return Err("setup failed; nothing was tested".into());
    }
    stage("fmt", &mut |_| {
        run::status(cmd("cargo").args(["fmt", "--all", "--", "--check"]))
    });
    stage("clippy native", &mut |_| {
        // The console is a browser crate: clippy checks it for wasm32 in the next stage.
        run::status(cmd("cargo").args([
            "clippy",
            "--workspace",
            "--exclude",
            "sota-console",
            "--features",
            NATIVE_FEATURES,
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))
    });
    stage("clippy wasm32", &mut |_| {
        let mut c = cmd("cargo");
        c.args(["clippy", "--target", "wasm32-unknown-unknown", "--lib"]);
        for p in WASM_PACKAGES {
            c.args(["-p", p]);
        }
        run::status(c.args(["--", "-D", "warnings"]))?;
        run::status(cmd("cargo").args([
            "clippy",
            "--target",
            "wasm32-unknown-unknown",
            "-p",
            "sota-console",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))
    });
    stage("native tests", &mut |t| {
        run::tee(
            cmd("cargo").args([
                "test",
                "--workspace",
                "--exclude",
                "sota-console",
                "--features",
                NATIVE_FEATURES,
            ]),
            |l| t.see(l),
        )
    });
    stage("center on PostgreSQL", &mut |t| {
        // The center's API suite and its channel, events and broker tests again, every center
        // on its own database of a throwaway PostgreSQL cluster (`SOTA_TEST_DATABASE`, read by
        // `crates/center/tests/common`). The same command line as the native tests, so nothing
        // is built again. (`crash.rs` watches SQLite's own files; `s3.rs` tests the store;
        // `instances.rs` is on PostgreSQL already, in the native tests.)
        // `sweep.rs`: centers sharing the database never sweep each other's uploads.
        run::tee(
            cmd("cargo")
                .args([
                    "test",
                    "--workspace",
                    "--exclude",
                    "sota-console",
                    "--features",
                    NATIVE_FEATURES,
                    "--test",
                    "api",
                    "--test",
                    "push_cycles",
                    "--test",
                    "channel",
                    "--test",
                    "events",
                    "--test",
                    "device_client",
                    "--test",
                    "flood",
                    "--test",
                    "mosquitto",
                    "--test",
                    "sweep",
                ])
                .env("SOTA_TEST_DATABASE", "postgres"),
            |l| t.see(l),
        )
    });
    stage("browser tests", &mut |t| browser_tests(t));
    stage("center API (schemathesis)", &mut |_| {
        run::status(cmd("bash").args(["crates/center/tests/schemathesis.sh", SCHEMATHESIS_SECONDS]))
    });
    stage("center API on PostgreSQL (schemathesis)", &mut |_| {
        run::status(
            cmd("bash")
                .args([
                    "crates/center/tests/schemathesis.sh",
                    SCHEMATHESIS_PG_SECONDS,
                ])
                .env("SCHEMATHESIS_DATABASE", "postgres"),
        )
    });
    if !quick {
        stage("end-to-end", &mut |t| end_to_end(t));
        stage("fuzz", &mut |_| fuzz());
    }

    println!("\nstage times:");
    for s in &stages {
        println!(
            "  {:<28} {:>7.1} s  {:<6}  {} free",
            s.name,
            s.secs,
            if s.ok { "ok" } else { "FAILED" },
            s.free
        );
    }
    println!(
        "  {:<28} {:>7.1} s",
        "total",
        started.elapsed().as_secs_f64()
    );
    let failed_stages: Vec<&str> = stages.iter().filter(|s| !s.ok).map(|s| s.name).collect();
    // The closing line CI reads: every suite's tests, summed.
    println!("total: {} passed, {} failed", tally.passed, tally.failed);
    if failed_stages.is_empty() {
        Ok(())
    } else {
        Err(format!("failed stages: {}", failed_stages.join(", ")))
    }
}

/// Headless Chromium flags, for wasm-bindgen-test-runner's WebDriver session.
pub const CHROME_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

/// The wasm-bindgen tests in headless Chromium. The MQTT adapter's test needs a real broker:
/// a `sota-center serve` (demo data, random loopback ports, a temporary data directory) runs
/// for the stage, and its MQTT-over-WebSocket address and the demo product's secret reach the
/// tests at compile time (`SOTA_TEST_MQTT_WS`, `SOTA_TEST_PRODUCT_SECRET`; a wasm test cannot
/// read the environment when it runs).
fn browser_tests(t: &mut Tally) -> Result {
    let dir = std::env::temp_dir().join(format!("sota-webdriver-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut args: Vec<String> = CHROME_ARGS.iter().map(|s| s.to_string()).collect();
    args.push(format!("--user-data-dir={}", dir.join("profile").display()));
    let caps = format!(
        "{{\"goog:chromeOptions\":{{\"binary\":\"/usr/bin/chromium\",\"args\":[{}]}}}}",
        args.iter()
            .map(|a| format!("\"{a}\""))
            .collect::<Vec<_>>()
            .join(",")
    );
    let caps_path = dir.join("webdriver.json");
    std::fs::write(&caps_path, caps)
        .map_err(|e| format!("cannot write {}: {e}", caps_path.display()))?;
    let r = TestCenter::start(&dir.join("center")).and_then(|center| {
        eprintln!(
            "browser tests: sota-center at {} (MQTT over WebSocket {})",
            center.http, center.ws
        );
        let r = run::tee(
            cmd("cargo")
                .args([
                    "test",
                    "--target",
                    "wasm32-unknown-unknown",
                    "-p",
                    "sota-console",
                ])
                .env("CHROMEDRIVER", "/usr/bin/chromedriver")
                .env("WASM_BINDGEN_TEST_WEBDRIVER_JSON", &caps_path)
                .env("WASM_BINDGEN_TEST_TIMEOUT", "120")
                .env("SOTA_TEST_MQTT_WS", &center.ws)
                .env("SOTA_TEST_PRODUCT_SECRET", &center.product_secret),
            |l| t.see(l),
        );
        drop(center);
        r
    });
    std::fs::remove_dir_all(&dir).ok();
    r
}

/// A `sota-center serve` for the browser tests, killed on drop.
struct TestCenter {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    http: String,
    /// `ws://127.0.0.1:PORT/mqtt`: the embedded broker's WebSocket listener.
    ws: String,
    /// The demo product's secret (devices register with it).
    product_secret: String,
}

impl Drop for TestCenter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The center binary the native tests built.
const CENTER_BIN: &str = "target/debug/sota-center";
/// How long the center may take to print its addresses.
const CENTER_START: std::time::Duration = std::time::Duration::from_secs(60);

impl TestCenter {
    fn start(data_dir: &std::path::Path) -> Result<TestCenter> {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        // Up to date after the native tests: this only checks.
        run::status(cmd("cargo").args([
            "build",
            "--quiet",
            "-p",
            "sota-center",
            "--bin",
            "sota-center",
        ]))?;
        std::fs::create_dir_all(data_dir)
            .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
        let token = run::output(
            Command::new(CENTER_BIN)
                .args(["token", "create", "--name", "browser-tests", "--data-dir"])
                .arg(data_dir),
        )
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or("`sota-center token create` failed")?;
        let mut child = Command::new(CENTER_BIN)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--mqtt-listen",
                "127.0.0.1:0",
                "--mqtt-ws-listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("could not start {CENTER_BIN}: {e}"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or("the center's stdout is not piped")?;
        let mut center = TestCenter {
            child,
            http: String::new(),
            ws: String::new(),
            product_secret: String::new(),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Keep reading after the banner so the center never blocks on a full pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = std::time::Instant::now() + CENTER_START;
        while center.http.is_empty() || center.ws.is_empty() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = rx.recv_timeout(left).map_err(|_| {
                format!(
                    "{CENTER_BIN} did not print its HTTP and MQTT-over-WebSocket addresses \
                     within {CENTER_START:?}; see its output above"
                )
            })?;
            if let Some(url) = line.strip_prefix("sota-center listening on ") {
                center.http = url.trim().to_string();
            } else if let Some(url) = line.strip_prefix("sota-center MQTT over WebSocket on ") {
                center.ws = url.trim().to_string();
            }
        }
        let body = http_get(&center.http, "/api/v1/products/demo-product", &token)?;
        center.product_secret = json_string(&body, "product_secret")
            .ok_or_else(|| format!("no product_secret in the center's demo product: {body}"))?;
        Ok(center)
    }
}

/// `GET path` on `base` (`http://host:port`) with the operator token; the body of a 200.
fn http_get(base: &str, path: &str, token: &str) -> Result<String> {
    use std::io::{Read, Write};
    let host = base
        .strip_prefix("http://")
        .ok_or_else(|| format!("not an http:// address: {base}"))?;
    let mut s = std::net::TcpStream::connect(host).map_err(|e| format!("{base}: {e}"))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    // HTTP/1.0: the answer ends with the connection, never chunked.
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .map_err(|e| format!("{base}{path}: {e}"))?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)
        .map_err(|e| format!("{base}{path}: {e}"))?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    if head.split_whitespace().nth(1) != Some("200") {
        return Err(format!(
            "GET {base}{path}: {}",
            head.lines().next().unwrap_or("")
        ));
    }
    Ok(body.to_string())
}

/// The string value of `"key":"…"` in a flat JSON object (the xtask has no JSON parser; the
/// secret is hex).
fn json_string(json: &str, key: &str) -> Option<String> {
    let at = json.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = json[at..].trim_start().strip_prefix(':')?.trim_start();
    let value = rest.strip_prefix('"')?;
    Some(value[..value.find('"')?].to_string())
}

fn end_to_end(t: &mut Tally) -> Result {
    run::status(cmd("trunk").args(["build", "--release"]))?;
    std::fs::create_dir_all("target/e2e").map_err(|e| format!("cannot create target/e2e: {e}"))?;
    run::tee(
        cmd("node").args(["tests/e2e/check-file.mjs", "dist", "target/e2e"]),
        |l| t.see(l),
    )?;
    // The fake Web Serial port is backed by the native simulators.
    run::status(cmd("cargo").args(["build", "--quiet", "-p", "sota-cli", "--bin", "sota"]))?;
    run::tee(
        cmd("node").args([
            "tests/e2e/flash.mjs",
            "dist",
            "target/e2e",
            "target/debug/sota",
        ]),
        |l| t.see(l),
    )?;
    // The console as a device of the real center, which serves it on its own origin.
    run::status(cmd("cargo").args([
        "build",
        "--quiet",
        "-p",
        "sota-center",
        "--bin",
        "sota-center",
    ]))?;
    run::tee(
        cmd("node").args([
            "tests/e2e/center.mjs",
            "dist",
            "target/e2e",
            "target/debug/sota",
            "target/debug/sota-center",
        ]),
        |l| t.see(l),
    )?;
    // Its faults: a download cut mid-way, the broker away mid-transfer, a tampered file.
    run::tee(
        cmd("node").args([
            "tests/e2e/center-faults.mjs",
            "dist",
            "target/e2e",
            "target/debug/sota",
            "target/debug/sota-center",
        ]),
        |l| t.see(l),
    )?;
    // The engineer's pages (`/center`): sign-in, products and devices, version packages.
    run::tee(
        cmd("node").args([
            "tests/e2e/center-pages.mjs",
            "dist",
            "target/e2e",
            "target/debug/sota",
            "target/debug/sota-center",
        ]),
        |l| t.see(l),
    )?;
    // An engineer's upgrade: a package verified on a device (`sota serve-at --center`), a plan
    // run by a fleet of the load tool's simulated devices, watched live on the monitoring page.
    run::status(cmd("cargo").args([
        "build",
        "--quiet",
        "-p",
        "sota-center",
        "--example",
        "channel_bench",
    ]))?;
    run::tee(
        cmd("node").args([
            "tests/e2e/center-engineer.mjs",
            "dist",
            "target/e2e",
            "target/debug/sota",
            "target/debug/sota-center",
            "target/debug/examples/channel_bench",
        ]),
        |l| t.see(l),
    )
}

/// The bound on schemathesis' run against the center's OpenAPI document.
const SCHEMATHESIS_SECONDS: &str = "60";
/// The same on PostgreSQL: shorter, the queries being the same; what it adds is the backend.
const SCHEMATHESIS_PG_SECONDS: &str = "20";

/// Seconds each fuzz target runs in the test command; `crates/link/fuzz/run-all.sh N` runs longer.
const FUZZ_SECONDS: &str = "20";

fn fuzz() -> Result {
    run::status(cmd("sh").args(["crates/link/fuzz/run-all.sh", FUZZ_SECONDS]))
}
