//! Installs what a fresh machine lacks. Every step checks first and skips what is present at
//! the right version, so running it twice costs seconds.

use crate::run::{self, cmd, output};
use crate::Result;
use std::path::Path;
use std::process::Command;

/// cargo-fuzz, for the bounded fuzz runs of the protocol parsers.
pub const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// Trunk 0.22 needs a newer rustc than this machine's 1.95; 0.21.14 is the last that builds.
pub const TRUNK_VERSION: &str = "0.21.14";

/// Debian packages the browser tests need; a small CJK font so screenshots of the Chinese UI
/// show characters, not boxes.
pub const BROWSER_PACKAGES: &[&str] = &["chromium", "chromium-driver", "fonts-wqy-microhei"];
/// Debian packages the protocol peer tests need (independent YMODEM and AN3155 programs).
pub const PEER_PACKAGES: &[&str] = &["lrzsz", "stm32flash", "socat"];
/// strace: the center's crash test watches the fsync order of an upload with it.
pub const TRACE_PACKAGES: &[&str] = &["strace"];
/// mosquitto and its clients: the center's external-broker tests run against them.
pub const BROKER_PACKAGES: &[&str] = &["mosquitto", "mosquitto-clients"];
/// PostgreSQL's server binaries (`/usr/lib/postgresql/*/bin`): the center's tests and benchmark
/// start a throwaway cluster of their own with them (no service is used or needed).
pub const DATABASE_PACKAGES: &[&str] = &["postgresql"];
/// moto's S3-compatible server, installed by [`python`].
pub const MOTO_SERVER: &str = ".venv/bin/moto_server";

/// Everything `serve` and `test` need.
pub fn all() -> Result {
    console()?;
    // One apt call, so a fresh machine runs `apt-get update` once.
    apt(&[
        BROWSER_PACKAGES,
        PEER_PACKAGES,
        TRACE_PACKAGES,
        BROKER_PACKAGES,
        DATABASE_PACKAGES,
    ]
    .concat())?;
    npm()?;
    python()?;
    cargo_fuzz()
}

fn cargo_fuzz() -> Result {
    if has_version("cargo-fuzz", CARGO_FUZZ_VERSION) {
        return Ok(());
    }
    run::status(cmd("cargo").args([
        "install",
        "--locked",
        "cargo-fuzz",
        "--version",
        CARGO_FUZZ_VERSION,
    ]))
}

/// What building and serving the console needs: the wasm32 target, Trunk, wasm-bindgen-cli,
/// and the crates fetched so Trunk can build offline.
pub fn console() -> Result {
    wasm_target()?;
    trunk()?;
    wasm_bindgen()?;
    run::status(cmd("cargo").args(["fetch", "--quiet"]))
}

fn wasm_target() -> Result {
    let installed =
        output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if installed
        .lines()
        .any(|l| l.trim() == "wasm32-unknown-unknown")
    {
        return Ok(());
    }
    run::status(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))
}

fn has_version(program: &str, version: &str) -> bool {
    output(cmd(program).arg("--version"))
        .is_some_and(|v| v.split_whitespace().any(|w| w == version))
}

fn trunk() -> Result {
    if has_version("trunk", TRUNK_VERSION) {
        return Ok(());
    }
    run::status(cmd("cargo").args(["install", "--locked", "trunk", "--version", TRUNK_VERSION]))
}

/// The wasm-bindgen version Cargo.lock holds; the CLI must match it exactly.
pub fn wasm_bindgen_version() -> Result<String> {
    let lock = std::fs::read_to_string("Cargo.lock")
        .map_err(|e| format!("cannot read Cargo.lock: {e}"))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"wasm-bindgen\"" {
            if let Some(v) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = \""))
            {
                return Ok(v.trim_end_matches('"').to_string());
            }
        }
    }
    Err("Cargo.lock has no wasm-bindgen package: run `cargo generate-lockfile`".into())
}

fn wasm_bindgen() -> Result {
    let v = wasm_bindgen_version()?;
    if has_version("wasm-bindgen", &v) && has_version("wasm-bindgen-test-runner", &v) {
        return Ok(());
    }
    // `--locked` first; wasm-bindgen-cli's own lock file has at times named crate versions the
    // registry no longer serves, and then only a fresh resolution installs.
    let locked = run::status(cmd("cargo").args([
        "install",
        "--locked",
        "wasm-bindgen-cli",
        "--version",
        &v,
    ]));
    if locked.is_err() {
        eprintln!("xtask: `cargo install --locked` failed; retrying with a fresh resolution");
        run::status(cmd("cargo").args([
            "install",
            "--force",
            "wasm-bindgen-cli",
            "--version",
            &v,
        ]))?;
    }
    Ok(())
}

fn dpkg_installed(pkg: &str) -> bool {
    output(Command::new("dpkg-query").args(["-W", "-f=${Status}", pkg]))
        .is_some_and(|s| s.contains("install ok installed"))
}

/// Installs the Debian packages that are missing (one `apt-get update` first).
pub fn apt(packages: &[&str]) -> Result {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    run::status(Command::new("apt-get").args(["update", "-q"]))?;
    run::status(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing),
    )
}

/// The npm packages in package-lock.json (playwright-core, which drives Debian's Chromium).
pub fn npm() -> Result {
    if !Path::new("node_modules/playwright-core/package.json").exists()
        || newer("package-lock.json", "node_modules/.package-lock.json")
    {
        if output(Command::new("npm").arg("--version")).is_none() {
            apt(&["nodejs", "npm"])?;
        }
        run::status(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]))?;
    }
    Ok(())
}

fn newer(a: &str, b: &str) -> bool {
    let m = |p: &str| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (m(a), m(b)) {
        (Some(a), Some(b)) => a > b,
        _ => true,
    }
}

/// The project's Python virtual environment (.venv) with the PyPI test tools pinned in
/// xtask/requirements-test.txt: schemathesis, for the center's API, and moto's S3 server
/// (`moto_server`), for the center's S3 store tests and benchmark.
pub fn python() -> Result {
    const REQUIREMENTS: &str = "xtask/requirements-test.txt";
    let stamp = ".venv/.requirements-installed";
    let tools = [".venv/bin/schemathesis", MOTO_SERVER];
    if tools.iter().all(|t| Path::new(t).exists()) && !newer(REQUIREMENTS, stamp) {
        return Ok(());
    }
    if !Path::new(".venv/bin/python").exists()
        && run::status(Command::new("python3").args(["-m", "venv", ".venv"])).is_err()
    {
        // Debian's own python3 keeps venv in a separate package.
        apt(&["python3-venv"])?;
        run::status(Command::new("python3").args(["-m", "venv", ".venv"]))?;
    }
    run::status(Command::new(".venv/bin/pip").args([
        "install",
        "-q",
        "--disable-pip-version-check",
        "-r",
        REQUIREMENTS,
    ]))?;
    std::fs::write(stamp, "").map_err(|e| format!("cannot write {stamp}: {e}"))
}
