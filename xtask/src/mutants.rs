//! `cargo xtask mutants [engine|link|flow …]`: mutation testing of the sans-IO crates with
//! cargo-mutants (installed here, pinned), each crate against its fast test packages. Prints
//! caught / missed / unviable / timeouts and the score per crate, and keeps the survivors in
//! `target/mutants/<crate>/mutants.out/missed.txt`. Too slow for CI: a command for people
//! and for review.

use crate::run::{self, cmd, output};
use crate::Result;

/// cargo-mutants, pinned so scores compare across runs.
pub const CARGO_MUTANTS_VERSION: &str = "27.0.0";

/// (name, package mutated, test packages): the tests that run in seconds, not the peer tests.
const CRATES: &[(&str, &str, &[&str])] = &[
    ("engine", "sota-engine", &["sota-engine"]),
    ("link", "sota-link", &["sota-link", "sota-sim", "sota-flow"]),
    ("flow", "sota-flow", &["sota-flow"]),
];

fn install() -> Result {
    let have = output(cmd("cargo").args(["mutants", "--version"])).unwrap_or_default();
    if have.split_whitespace().any(|w| w == CARGO_MUTANTS_VERSION) {
        return Ok(());
    }
    run::status(cmd("cargo").args([
        "install",
        "--locked",
        "cargo-mutants",
        "--version",
        CARGO_MUTANTS_VERSION,
    ]))
}

fn count(dir: &str, file: &str) -> usize {
    std::fs::read_to_string(format!("{dir}/mutants.out/{file}"))
        .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
        .unwrap_or(0)
}

/// Runs the crates named in `args` (all three when none); arguments after `--` go to
/// cargo-mutants as they are (e.g. `-- --file crates/flow/src/state.rs`).
pub fn run(all: &[String]) -> Result {
    let split = all.iter().position(|a| a == "--").unwrap_or(all.len());
    let (args, extra) = (&all[..split], all.get(split + 1..).unwrap_or(&[]));
    let chosen: Vec<_> = CRATES
        .iter()
        .filter(|(name, ..)| args.is_empty() || args.iter().any(|a| a == name))
        .collect();
    if chosen.is_empty() {
        return Err(format!(
            "unknown crate in {args:?}; choose from engine, link, flow"
        ));
    }
    install()?;
    let mut rows = Vec::new();
    for (name, package, tests) in chosen {
        let dir = format!("target/mutants/{name}");
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {dir}: {e}"))?;
        let mut c = cmd("cargo");
        c.args(["mutants", "--no-shuffle", "-p", package, "--output", &dir]);
        for t in *tests {
            c.args(["--test-package", t]);
        }
        c.args(extra);
        // cargo-mutants exits non-zero when mutants survive: that is a result, not a failure.
        let _ = run::status(&mut c);
        let (caught, missed, unviable, timeouts) = (
            count(&dir, "caught.txt"),
            count(&dir, "missed.txt"),
            count(&dir, "unviable.txt"),
            count(&dir, "timeout.txt"),
        );
        if caught + missed + timeouts == 0 {
            return Err(format!(
                "cargo-mutants produced no results for {package} in {dir}"
            ));
        }
        rows.push((name, caught, missed, unviable, timeouts, dir));
    }
    println!("\nmutation testing (cargo-mutants {CARGO_MUTANTS_VERSION}):");
    println!("  crate     caught  missed  unviable  timeouts  score");
    for (name, caught, missed, unviable, timeouts, dir) in &rows {
        // Timeouts count as caught: the mutant made the tests hang, and they noticed.
        let score = 100.0 * (caught + timeouts) as f64 / (caught + missed + timeouts) as f64;
        println!(
            "  {name:<8} {caught:>6}  {missed:>6}  {unviable:>8}  {timeouts:>8}  {score:5.1} %   survivors: {dir}/mutants.out/missed.txt"
        );
    }
    Ok(())
}
