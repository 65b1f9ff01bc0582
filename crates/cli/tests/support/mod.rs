//! What the `sota` process tests share: temporary directories, child processes killed on
//! drop, a simulated MCU on a pty, and output checks.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

pub const SOTA: &str = env!("CARGO_BIN_EXE_sota");

/// One peer test at a time: stm32flash gives up after 0.5 s without a reply, which a
/// 2-core machine running four transfers at once (in debug builds) can exceed.
pub static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Fails with an install hint when a peer is missing.
pub fn require(binary: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(binary).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{binary}` is not installed: run `apt-get install {package}` (or `cargo xtask` setup)"
    );
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sota-peers-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed (by its own pid) on drop, so no peer outlives its test.
pub struct Peer {
    pub child: Child,
    pub what: String,
}

impl Peer {
    pub fn spawn(what: &str, command: &mut Command) -> Self {
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Peer {
            child,
            what: what.to_string(),
        }
    }

    /// Waits for the exit, killing the process and failing the test at the deadline.
    pub fn wait(mut self, timeout: Duration) -> std::process::Output {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = self.child.kill();
                    let out = self.child.wait_with_output_ref();
                    panic!(
                        "{} did not finish within {timeout:?}; stderr: {}",
                        self.what, out
                    );
                }
            }
        }
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        if let Some(mut s) = self.child.stdout.take() {
            let _ = std::io::Read::read_to_end(&mut s, &mut stdout);
        }
        if let Some(mut s) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_end(&mut s, &mut stderr);
        }
        let status = self.child.wait().expect("wait");
        std::process::Output {
            status,
            stdout,
            stderr,
        }
    }
}

pub trait StderrText {
    fn wait_with_output_ref(&mut self) -> String;
}

impl StderrText for Child {
    fn wait_with_output_ref(&mut self) -> String {
        let _ = self.wait();
        let mut text = String::new();
        if let Some(mut s) = self.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut s, &mut text);
        }
        text
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn wait_for_path(path: &Path, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} did not appear within {timeout:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How long `sota simulate` may take to print its pty path (a debug build on a busy 2-core box
/// starts in well under a second).
pub const PTY_PATH_TIMEOUT: Duration = Duration::from_secs(30);

/// The first line `from` gives within `timeout`. The read runs on its own thread, so a peer
/// that prints nothing fails the test instead of hanging it; the thread ends when the peer's
/// output closes (the caller kills the peer).
pub fn first_line<R: Read + Send + 'static>(from: R, timeout: Duration) -> Result<String, String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let result = BufReader::new(from).read_line(&mut line).map(|_| line);
        let _ = tx.send(result);
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(line)) if line.ends_with('\n') => Ok(line),
        Ok(Ok(line)) => Err(format!(
            "its output ended after {line:?}, without a full line"
        )),
        Ok(Err(e)) => Err(format!("reading its output failed: {e}")),
        Err(_) => Err(format!("it printed no line within {timeout:?}")),
    }
}

pub fn simulate(args: &[&str]) -> (Peer, String) {
    let mut peer = Peer::spawn(
        "sota simulate",
        Command::new(SOTA)
            .arg("simulate")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let stdout = peer.child.stdout.take().expect("stdout");
    let line = match first_line(stdout, PTY_PATH_TIMEOUT) {
        Ok(line) => line,
        Err(e) => {
            let _ = peer.child.kill();
            let stderr = peer.child.wait_with_output_ref();
            panic!("sota simulate {args:?}: {e}; its stderr: {stderr}");
        }
    };
    let path = line.trim().to_string();
    assert!(
        path.starts_with("/dev/"),
        "sota simulate printed {line:?} instead of a pty path"
    );
    (peer, path)
}

pub fn assert_success(output: &std::process::Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn assert_same(got: &[u8], want: &[u8], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!("{what}: first difference at byte {i}");
    }
}
