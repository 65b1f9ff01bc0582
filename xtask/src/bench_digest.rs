//! `cargo xtask bench digest`: the combined MD5+CRC32+SHA-256 pass over the same 64 MiB,
//! natively and as WASM in headless Chromium, in one run; prints medians and their ratio.

use crate::run::{self, cmd};
use crate::{setup, Result};

/// Goal from the issue: the browser reaches at least this share of native speed.
const GOAL: f64 = 0.6;

fn median_mbps(lines: &[String]) -> Result<f64> {
    let mut v: Vec<f64> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("mbps ")?.trim().parse().ok())
        .collect();
    if v.is_empty() {
        return Err("the benchmark printed no `mbps` lines".into());
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Ok(v[v.len() / 2])
}

/// Runs both halves; `args` may hold `--mib N` and `--runs N`.
pub fn run(args: &[String]) -> Result {
    let get = |name: &str, default: &str| run::flag(args, name).unwrap_or(default).to_string();
    let (mib, runs) = (get("--mib", "64"), get("--runs", "7"));
    setup::console()?;
    setup::apt(setup::BROWSER_PACKAGES)?;
    setup::npm()?;

    let mut native = Vec::new();
    run::tee(
        cmd("cargo")
            .args([
                "run",
                "--release",
                "-q",
                "-p",
                "sota-engine",
                "--example",
                "digest_speed",
                "--",
            ])
            .args([&mib, &runs]),
        |l| native.push(l.to_string()),
    )?;
    run::status(cmd("trunk").args(["build", "--release"]))?;
    let mut wasm = Vec::new();
    run::tee(
        cmd("node").args(["tests/e2e/bench-digest.mjs", "dist", &mib, &runs]),
        |l| wasm.push(l.to_string()),
    )?;

    let (n, w) = (median_mbps(&native)?, median_mbps(&wasm)?);
    let ratio = w / n;
    println!("\ndigest bench, {mib} MiB x {runs} runs, medians:");
    println!("  native        {n:>8.1} MB/s");
    println!("  wasm (chrome) {w:>8.1} MB/s");
    println!(
        "  ratio wasm/native {ratio:.2} (goal >= {GOAL}) {}",
        if ratio >= GOAL { "MET" } else { "NOT MET" }
    );
    Ok(())
}
