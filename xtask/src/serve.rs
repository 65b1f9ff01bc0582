//! `cargo xtask serve`: the whole system on this machine, with embedded defaults.

use crate::run::{self, cmd};
use crate::{setup, Result};

/// Sets up, builds and serves the console on 127.0.0.1:8080 until interrupted.
pub fn run(args: &[String]) -> Result {
    let port = flag(args, "--port").unwrap_or("8080");
    setup::console()?;
    println!("\nThe console will be at http://127.0.0.1:{port}/ (Ctrl-C stops it)\n");
    run::status(cmd("trunk").args(["serve", "--address", "127.0.0.1", "--port", port]))
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}
