//! Debian's mosquitto for the external-broker tests (`mosquitto.rs`, `instances.rs`), started
//! on the configuration `sota-center broker mosquitto-config` wrote, and devices provisioned
//! into it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::mqtt::Dev;

/// How long mosquitto may take to listen, or to take a provisioned login after a reload.
const SOON: Duration = Duration::from_secs(10);

/// A running mosquitto, killed on drop.
pub struct Mosquitto(Child);

impl Mosquitto {
    /// `mosquitto -c conf`, once it listens on `port`.
    pub fn start(conf: &str, port: u16) -> Mosquitto {
        let child = Command::new("mosquitto")
            .args(["-c", conf])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start mosquitto ({e}); install the mosquitto and mosquitto-clients packages (cargo xtask setup does)"));
        let m = Mosquitto(child);
        let deadline = Instant::now() + SOON;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {port} within {SOON:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        m
    }

    /// Make it read its password and ACL files again.
    pub fn reload(&self) {
        let ok = Command::new("kill")
            .args(["-HUP", &self.0.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "cannot signal mosquitto");
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Connect a provisioned device, retrying while mosquitto rereads its files.
pub async fn connect_provisioned(addr: &str, device: &str, secret: &str) -> Dev {
    let deadline = Instant::now() + SOON;
    loop {
        match Dev::connect(addr, device, secret).await {
            Ok(d) => return d,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("{device} cannot connect to mosquitto: {e}"),
        }
    }
}

/// A loopback port free now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
