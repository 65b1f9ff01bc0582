//! `cargo xtask bench link`: the link protocols against zero-delay simulated MCUs through the
//! paced line model at 115200 and 921600 baud, then real peers (lrzsz, stm32flash) through a
//! wall-clock paced relay, in one run. The measuring lives in `crates/cli/examples/link_bench.rs`.

use crate::run::{self, cmd};
use crate::{setup, Result};

/// Runs the benchmark; `--no-peers` skips the real-peer half.
pub fn run(args: &[String]) -> Result {
    let peers = !args.iter().any(|a| a == "--no-peers");
    if peers {
        setup::apt(setup::PEER_PACKAGES)?;
    }
    run::status(cmd("cargo").args([
        "build",
        "--release",
        "-q",
        "-p",
        "sota-cli",
        "--bin",
        "sota",
        "--example",
        "link_bench",
    ]))?;
    let root = run::root();
    let mut bench = cmd(&root
        .join("target/release/examples/link_bench")
        .to_string_lossy());
    bench.arg(root.join("target/release/sota"));
    if !peers {
        bench.arg("--no-peers");
    }
    run::status(&mut bench)
}
