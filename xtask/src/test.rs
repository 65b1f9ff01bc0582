//! `cargo xtask test`: every check and suite, each stage timed, one total at the end.

use crate::run::{self, cmd};
use crate::{setup, Result};
use std::time::Instant;

/// Library packages that must build for wasm32 besides the console (everything it links).
const WASM_PACKAGES: &[&str] = &[
    "sota-engine",
    "sota-link",
    "sota-flow",
    "sota-sim",
    "sota-protocol",
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
}

/// Runs everything; with `--quick`, skips the release build and the end-to-end check.
pub fn run(args: &[String]) -> Result {
    let quick = args.iter().any(|a| a == "--quick");
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
            cmd("cargo").args(["test", "--workspace", "--exclude", "sota-console"]),
            |l| t.see(l),
        )
    });
    stage("browser tests", &mut |t| browser_tests(t));
    stage("center API (schemathesis)", &mut |_| {
        run::status(cmd("bash").args(["crates/center/tests/schemathesis.sh", SCHEMATHESIS_SECONDS]))
    });
    if !quick {
        stage("end-to-end", &mut |t| end_to_end(t));
        stage("fuzz", &mut |_| fuzz());
    }

    println!("\nstage times:");
    for s in &stages {
        println!(
            "  {:<28} {:>7.1} s  {}",
            s.name,
            s.secs,
            if s.ok { "ok" } else { "FAILED" }
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
            .env("WASM_BINDGEN_TEST_TIMEOUT", "120"),
        |l| t.see(l),
    );
    std::fs::remove_dir_all(&dir).ok();
    r
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
    )
}

/// The bound on schemathesis' run against the center's OpenAPI document.
const SCHEMATHESIS_SECONDS: &str = "60";

/// Seconds each fuzz target runs in the test command; `crates/link/fuzz/run-all.sh N` runs longer.
const FUZZ_SECONDS: &str = "20";

fn fuzz() -> Result {
    run::status(cmd("sh").args(["crates/link/fuzz/run-all.sh", FUZZ_SECONDS]))
}
