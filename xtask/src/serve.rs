//! `cargo xtask serve`: the whole system on this machine, with embedded defaults: the center
//! (SQLite and a local firmware store under .data/center) and the console served by Trunk.

use crate::run::{self, cmd};
use crate::{setup, Result};
use std::process::{Child, Command};

/// Stops the center when serving ends, however it ends.
struct Center(Child);

impl Drop for Center {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sets up, starts the center on 127.0.0.1:8081, and serves the console on 127.0.0.1:8080
/// until interrupted.
pub fn run(args: &[String]) -> Result {
    let port = run::flag(args, "--port").unwrap_or("8080");
    let center_addr = run::flag(args, "--center").unwrap_or("127.0.0.1:8081");
    setup::console()?;
    run::status(cmd("cargo").args(["build", "--quiet", "-p", "sota-center"]))?;
    // Download links name the console's origin: the page fetches them through Trunk's proxy
    // (a link to the center's own port would be another origin, which the browser refuses),
    // and any other client reaches the center through the same proxy.
    let public_url = format!("http://127.0.0.1:{port}");
    let child = Command::new("target/debug/sota-center")
        .args([
            "serve",
            "--listen",
            center_addr,
            "--public-url",
            &public_url,
            "--data-dir",
            ".data/center",
        ])
        .spawn()
        .map_err(|e| format!("could not start the center: {e}"))?;
    let _center = Center(child);
    println!(
        "\nThe center's API is at http://{center_addr}/api/v1 (OpenAPI: /api/v1/openapi.json)"
    );
    println!("Operator token: cargo run -p sota-center -- token create --name me");
    println!("The console will be at http://127.0.0.1:{port}/ (Ctrl-C stops both)\n");
    run::status(cmd("trunk").args(["serve", "--address", "127.0.0.1", "--port", port]))
}
