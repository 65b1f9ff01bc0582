//! The project's commands, run as `cargo xtask <command>`.
//!
//! - `setup`: install what a fresh machine lacks (idempotent).
//! - `serve`: set up, then start the whole system and print the console's URL.
//! - `test`: set up, then run every check and test suite, with the time each stage took.
//! - `mutants [engine|link|flow …]`: mutation testing with cargo-mutants (not in CI).
//! - `bench <digest|link|center|channel|console>`: benchmarks that print ratios against a reference in the same run.

mod bench_center;
mod bench_channel;
mod bench_console;
mod bench_digest;
mod bench_link;
mod mutants;
mod run;
mod serve;
mod setup;
mod test;

use std::process::ExitCode;

/// Errors are plain messages: every command prints one and exits non-zero.
pub type Result<T = ()> = std::result::Result<T, String>;

const USAGE: &str =
    "usage: cargo xtask <setup | serve | test | bench <digest | link | center | channel | console>>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run::to_workspace_root() {
        eprintln!("xtask: {e}");
        return ExitCode::FAILURE;
    }
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup::all(),
        Some("serve") => serve::run(&args[1..]),
        Some("test") => test::run(&args[1..]),
        Some("mutants") => mutants::run(&args[1..]),
        Some("bench") => match args.get(1).map(String::as_str) {
            Some("digest") => bench_digest::run(&args[2..]),
            Some("link") => bench_link::run(&args[2..]),
            Some("center") => bench_center::run(&args[2..]),
            Some("channel") => bench_channel::run(&args[2..]),
            Some("console") => bench_console::run(&args[2..]),
            other => Err(format!("unknown benchmark {other:?}\n{USAGE}")),
        },
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
