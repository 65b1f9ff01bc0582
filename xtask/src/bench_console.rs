//! `cargo xtask bench console`: the release build flashes a 1 MiB and a 100 MiB image through
//! a fake Web Serial port with a zero-delay AT MCU in headless Chromium; prints the payload
//! rate through the adapter and the peak WASM memory, and the transferred size of the page.

use crate::run::{self, cmd};
use crate::{setup, Result};

/// Goals from the issues.
const GOAL_MBPS: f64 = 10.0;
const GOAL_DOWNLOAD_MBPS: f64 = 50.0;
const GOAL_PEAK_MIB: f64 = 32.0;
const GOAL_PAGE_KIB: f64 = 400.0;

/// Gzipped size of a file, as a server with `gzip -9` would send it.
fn gzipped(path: &std::path::Path) -> Result<u64> {
    let out =
        run::output(cmd("sh").args(["-c", &format!("gzip -9 -c '{}' | wc -c", path.display())]))
            .ok_or_else(|| format!("cannot gzip {}", path.display()))?;
    out.trim()
        .parse()
        .map_err(|_| format!("gzip printed {out:?}"))
}

/// Runs the benchmark; `args` may hold `--sizes 1,100` (MiB).
pub fn run(args: &[String]) -> Result {
    let sizes = run::flag(args, "--sizes").unwrap_or("1,100").to_string();
    setup::console()?;
    setup::apt(setup::BROWSER_PACKAGES)?;
    setup::npm()?;
    run::status(cmd("trunk").args(["build", "--release"]))?;

    let mut page = 0u64;
    let mut parts = Vec::new();
    for entry in std::fs::read_dir("dist").map_err(|e| format!("cannot read dist: {e}"))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if matches!(ext, "wasm" | "js" | "css" | "html") {
            let size = gzipped(&path)?;
            page += size;
            parts.push(format!("{ext} {:.1} KiB", size as f64 / 1024.0));
        }
    }

    let mut lines = Vec::new();
    run::tee(
        cmd("node").args(["tests/e2e/bench-console.mjs", "dist", &sizes]),
        |l| lines.push(l.to_string()),
    )?;
    println!("\nconsole bench (release build, headless Chromium, zero-delay AT MCU behind a fake Web Serial port):");
    for l in &lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        let ["flash", mib, total_ms, transfer_ms, peak, ok] = f[..] else {
            continue;
        };
        let parse = |s: &str| s.parse::<f64>().unwrap_or(f64::NAN);
        let (mib, total, transfer, peak) =
            (parse(mib), parse(total_ms), parse(transfer_ms), parse(peak));
        let bytes = mib * 1048576.0;
        let rate = bytes / 1e6 / (transfer / 1e3);
        let peak_mib = peak / 1048576.0;
        println!(
            "  {mib:>5} MiB: transfer {rate:>6.1} MB/s ({transfer:.0} ms; {total:.0} ms with both digest passes), peak WASM memory {peak_mib:.1} MiB, result {ok} — rate {}, memory {}",
            if rate >= GOAL_MBPS { "MET" } else { "NOT MET" },
            if peak_mib <= GOAL_PEAK_MIB { "MET" } else { "NOT MET" },
        );
    }
    // The download from the center into browser storage (release center serving the console).
    let download = run::flag(args, "--download").unwrap_or("100").to_string();
    run::status(cmd("cargo").args([
        "build",
        "--release",
        "-p",
        "sota-center",
        "--bin",
        "sota-center",
    ]))?;
    let mut lines = Vec::new();
    run::tee(
        cmd("node").args([
            "tests/e2e/bench-download.mjs",
            "dist",
            "target/release/sota-center",
            &download,
        ]),
        |l| lines.push(l.to_string()),
    )?;
    for l in &lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        let ["download", mib, ms, peak, ok] = f[..] else {
            continue;
        };
        let parse = |s: &str| s.parse::<f64>().unwrap_or(f64::NAN);
        let (mib, ms, peak) = (parse(mib), parse(ms), parse(peak));
        let rate = mib * 1048576.0 / 1e6 / (ms / 1e3);
        let peak_mib = peak / 1048576.0;
        println!(
            "  download {mib:>5} MiB from the center into IndexedDB (64 KiB Range requests, digests): {rate:>6.1} MB/s ({ms:.0} ms), peak WASM memory {peak_mib:.1} MiB, SHA-256 ok {ok} — rate {} (goal >= {GOAL_DOWNLOAD_MBPS} MB/s), memory {}",
            if rate >= GOAL_DOWNLOAD_MBPS { "MET" } else { "NOT MET" },
            if peak_mib <= GOAL_PEAK_MIB { "MET" } else { "NOT MET" },
        );
    }
    let kib = page as f64 / 1024.0;
    println!(
        "  page (gzip -9): {kib:.1} KiB [{}] (goal <= {GOAL_PAGE_KIB} KiB) {}",
        parts.join(", "),
        if kib <= GOAL_PAGE_KIB {
            "MET"
        } else {
            "NOT MET"
        }
    );
    println!("  goals: >= {GOAL_MBPS} MB/s, peak <= {GOAL_PEAK_MIB} MiB for every size");
    Ok(())
}
