//! `sota serve-at --center` against the real center (`sota-center serve` with its embedded
//! broker and demo data) and the simulated AT MCU on a pty: a new device registers with the
//! product secret, takes the demo plan, downloads, flashes, and the center's monitoring shows
//! "update ok"; a wrong secret is refused with a message that says what to check.
//!
//! The center binary is the workspace's own (`cargo test --workspace` builds it beside `sota`).

mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::*;

/// The seeded demo data (crates/center/src/seed.rs).
const PRODUCT: &str = "demo-product";
const TARGET: &str = "1_0_1";

fn center_binary() -> PathBuf {
    let path = Path::new(SOTA).with_file_name("sota-center");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo test --workspace` (or `cargo build -p sota-center`) first",
        path.display()
    );
    path
}

/// `sota-center serve` on random loopback ports with a fresh data directory.
struct Center {
    _peer: Peer,
    url: String,
    mqtt: String,
    token: String,
    _dir: TempDir,
}

impl Center {
    fn start() -> Center {
        let bin = center_binary();
        let dir = TempDir::new("center");
        let data = dir.path("data");
        let token = Command::new(&bin)
            .args(["token", "create", "--name", "cli-test", "--data-dir"])
            .arg(&data)
            .output()
            .expect("run sota-center token create");
        assert_success(&token, "sota-center token create");
        let token = String::from_utf8(token.stdout).unwrap().trim().to_string();
        let mut peer = Peer::spawn(
            "sota-center serve",
            Command::new(&bin)
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
                .arg(&data)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit()),
        );
        let stdout = peer.child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // Keep draining after the test stopped listening: the server never blocks.
                let _ = tx.send(line);
            }
        });
        let (mut url, mut mqtt) = (None, None);
        while url.is_none() || mqtt.is_none() {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("sota-center printed its addresses within 60 s");
            if let Some(rest) = line.strip_prefix("sota-center listening on ") {
                url = Some(rest.trim().to_string());
            }
            if let Some(rest) = line.strip_prefix("sota-center MQTT on ") {
                mqtt = Some(rest.trim().to_string());
            }
        }
        Center {
            _peer: peer,
            url: url.unwrap(),
            mqtt: mqtt.unwrap(),
            token,
            _dir: dir,
        }
    }

    fn get(&self, path: &str) -> Value {
        let mut response = ureq::get(format!("{}/api/v1{path}", self.url))
            .header("Authorization", format!("Bearer {}", self.token))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        response
            .body_mut()
            .read_json()
            .unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}"))
    }

    fn demo_plan(&self) -> i64 {
        let plans = self.get("/plans");
        let list = plans
            .as_array()
            .or_else(|| plans["items"].as_array())
            .expect("a list of plans");
        list.iter()
            .find(|p| p["productKey"] == PRODUCT || p["product_key"] == PRODUCT)
            .and_then(|p| p["id"].as_i64())
            .expect("the seeded demo plan")
    }

    /// The upgrade of `device`'s STM32 in the plan, once it has an outcome other than pending.
    fn outcome(&self, plan: i64, device: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let devices = self.get(&format!("/plans/{plan}/devices"));
            let found = devices.as_array().and_then(|list| {
                list.iter()
                    .find(|d| d["deviceKey"] == device || d["device_key"] == device)
                    .and_then(|d| d["components"].as_array()?.first().cloned())
            });
            if let Some(c) = found.filter(|c| c["outcome"] != "pending") {
                return c;
            }
            assert!(
                Instant::now() < deadline,
                "{device} reached no outcome in plan {plan} within {within:?}: {devices}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn serve_at(center: &Center, tty: &str, device: &str, secret: (&str, &str)) -> Peer {
    Peer::spawn(
        "sota serve-at --center",
        Command::new(SOTA)
            .args([
                "serve-at",
                "--port",
                tty,
                "--piece-size",
                "16384",
                "--center",
            ])
            .arg(&center.url)
            .args([
                "--mqtt",
                &center.mqtt,
                "--product",
                PRODUCT,
                "--device",
                device,
            ])
            .args([secret.0, secret.1])
            .env_remove("SOTA_PRODUCT_SECRET")
            .env_remove("SOTA_DEVICE_SECRET")
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    )
}

#[test]
fn serve_at_runs_a_whole_upgrade_from_the_center_and_monitoring_shows_update_ok() {
    let _serial = one_at_a_time();
    let center = Center::start();
    let product = center.get(&format!("/products/{PRODUCT}"));
    let secret = product["productSecret"]
        .as_str()
        .or_else(|| product["product_secret"].as_str())
        .expect("the product's secret")
        .to_string();
    let plan = center.demo_plan();
    let dir = TempDir::new("center-at");
    let installed = dir.path("installed.bin");

    // A device the center has never seen registers itself with the product secret.
    let (sim, tty) = simulate(&[
        "--protocol",
        "at",
        "--firmware-version",
        "1_0_0",
        "--output",
        installed.to_str().unwrap(),
    ]);
    let served = serve_at(&center, &tty, "field-7", ("--product-secret", &secret))
        .wait(Duration::from_secs(120));
    assert_success(&served, "sota serve-at --center");
    let log = String::from_utf8_lossy(&served.stderr).into_owned();
    println!("{log}");
    assert!(log.contains("registered demo-product/field-7"), "{log}");
    assert!(log.contains("→ center: accept plan"), "{log}");
    assert!(log.contains(&format!("runs {TARGET}")), "{log}");
    assert_success(
        &sim.wait(Duration::from_secs(10)),
        "sota simulate --protocol at",
    );

    // The center decided success by the version the MCU reported.
    let upgrade = center.outcome(plan, "field-7", Duration::from_secs(30));
    assert_eq!(upgrade["outcome"], "succeeded", "{upgrade}");
    assert_eq!(upgrade["status"], 11, "{upgrade}");

    // Later logins use the device secret the center issued; the device is at the target now.
    let device_secret = log
        .split("keep it for --device-secret): ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the issued device secret in the log")
        .to_string();
    let (again, tty) = simulate(&["--protocol", "at", "--firmware-version", TARGET]);
    let second = serve_at(
        &center,
        &tty,
        "field-7",
        ("--device-secret", &device_secret),
    )
    .wait(Duration::from_secs(60));
    drop(again);
    assert_success(&second, "sota serve-at --center with the device secret");
    let second = String::from_utf8_lossy(&second.stderr);
    assert!(
        second.contains("the center has no plan for demo-product/field-7 now"),
        "{second}"
    );

    let image = std::fs::read(&installed).expect("the simulated MCU saved its new image");
    let package = center.get("/packages");
    let size = package
        .as_array()
        .or_else(|| package["items"].as_array())
        .and_then(|l| l.first())
        .and_then(|p| p["files"][0]["size"].as_u64())
        .expect("the demo package's file size");
    assert_eq!(image.len() as u64, size, "the MCU got the whole package");
    let log = center.get(&format!("/plans/{plan}/log"));
    let statuses: Vec<u64> = log
        .as_array()
        .expect("a log")
        .iter()
        .filter(|e| e["deviceKey"] == "field-7" || e["device_key"] == "field-7")
        .filter_map(|e| e["status"].as_u64())
        .collect();
    for code in [2, 4, 5, 8, 9, 11] {
        assert!(
            statuses.contains(&code),
            "status {code} missing from {statuses:?}"
        );
    }
}

#[test]
fn serve_at_with_a_wrong_secret_is_refused_and_says_what_to_check() {
    let _serial = one_at_a_time();
    let center = Center::start();
    let (mut sim, tty) = simulate(&["--protocol", "at"]);
    let started = Instant::now();
    let served = serve_at(
        &center,
        &tty,
        "field-8",
        ("--product-secret", "not-the-secret"),
    )
    .wait(Duration::from_secs(60));
    let _ = sim.child.kill();
    assert!(!served.status.success(), "a wrong secret must fail");
    let err = String::from_utf8_lossy(&served.stderr);
    assert!(
        err.contains("refused the login of demo-product/field-8"),
        "{err}"
    );
    assert!(err.contains("bad user name or password"), "{err}");
    assert!(err.contains("--product-secret was given"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the refusal took {:?}",
        started.elapsed()
    );
}
