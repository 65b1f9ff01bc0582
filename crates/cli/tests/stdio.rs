//! `sota simulate --stdio`: the simulated MCU on the process's own stdin and stdout, as the
//! browser tests' bridge to a fake Web Serial port uses it. Our protocol endpoints drive it
//! over the child's pipes, under a deadline, and what it received must be byte-exact.

use sota_engine::{Config as EngineConfig, Digester, ExpectedDigests, Outcome, Session};
use sota_flow::io::serve;
use sota_flow::{AtUpgrade, Io, LocalFirmware, MemoryStore, Source};
use sota_link::{an3155, at_sota, ymodem, Endpoint};
use sota_sim::test_image;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

const SOTA: &str = env!("CARGO_BIN_EXE_sota");

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sota-stdio-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `sota simulate --stdio`, killed (by its own pid) on drop.
struct Sim {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Chunks of the child's stdout, read on a thread; disconnects at its end.
    stdout: Receiver<Vec<u8>>,
}

impl Sim {
    fn spawn(args: &[&str]) -> Sim {
        let mut child = Command::new(SOTA)
            .args(["simulate", "--stdio"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sota simulate --stdio");
        let stdin = child.stdin.take();
        let mut out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = out.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    return;
                }
            }
        });
        Sim {
            child,
            stdin,
            stdout: rx,
        }
    }

    /// The simulator's stderr so far is only readable once it exited: kill it first.
    fn stderr_after_kill(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut text = String::new();
        if let Some(mut s) = self.child.stderr.take() {
            let _ = s.read_to_string(&mut text);
        }
        text
    }

    /// Runs `endpoint` against the simulator until it is done, failing at `limit`.
    fn exchange(&mut self, endpoint: &mut dyn Endpoint, limit: Duration) {
        let start = Instant::now();
        let mut out = Vec::new();
        loop {
            endpoint.poll_transmit(&mut out);
            if !out.is_empty() {
                let stdin = self.stdin.as_mut().expect("stdin open");
                if let Err(e) = stdin.write_all(&out).and_then(|()| stdin.flush()) {
                    panic!(
                        "writing to the simulator failed: {e}; its stderr: {}",
                        self.stderr_after_kill()
                    );
                }
                out.clear();
            }
            if endpoint.is_done() {
                return;
            }
            let now = start.elapsed();
            if now > limit {
                panic!(
                    "not done within {limit:?}; the simulator's stderr: {}",
                    self.stderr_after_kill()
                );
            }
            let wait = endpoint
                .poll_timeout()
                .map_or(Duration::from_millis(50), |t| t.saturating_sub(now))
                .min(Duration::from_millis(50));
            match self.stdout.recv_timeout(wait) {
                Ok(bytes) => endpoint.handle_input(start.elapsed(), &bytes),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "the simulator closed stdout; its stderr: {}",
                    self.stderr_after_kill()
                ),
            }
            let now = start.elapsed();
            if endpoint.poll_timeout().is_some_and(|t| t <= now) {
                endpoint.handle_timeout(now);
            }
        }
    }

    /// Closes stdin and waits for the exit; returns (success, stray stdout bytes, stderr).
    fn close(mut self, limit: Duration) -> (bool, Vec<u8>, String) {
        drop(self.stdin.take());
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                panic!(
                    "the simulator did not exit within {limit:?} of stdin closing; stderr: {}",
                    self.stderr_after_kill()
                );
            }
            thread::sleep(Duration::from_millis(20));
        };
        let stray: Vec<u8> = self.stdout.iter().flatten().collect();
        let mut stderr = String::new();
        if let Some(mut s) = self.child.stderr.take() {
            let _ = s.read_to_string(&mut stderr);
        }
        (status.success(), stray, stderr)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn assert_same(got: &[u8], want: &[u8], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!("{what}: first difference at byte {i}");
    }
}

#[test]
fn our_ymodem_sender_to_the_simulator_over_stdio_is_byte_exact() {
    for (i, len) in [1usize, 1024, 1025, 70 * 1024].into_iter().enumerate() {
        let dir = TempDir::new("ymodem");
        let image = test_image(len, 300 + i as u64);
        let out = dir.path("received.bin");
        let mut sim = Sim::spawn(&["--protocol", "ymodem", "--output", out.to_str().unwrap()]);
        let mut sender = ymodem::Sender::new(
            "fw.bin",
            image.clone(),
            ymodem::Config::default(),
            Duration::ZERO,
        )
        .unwrap();
        sim.exchange(&mut sender, Duration::from_secs(60));
        let events: Vec<ymodem::Event> = std::iter::from_fn(|| sender.poll_event()).collect();
        assert!(
            events.contains(&ymodem::Event::Finished),
            "{len} B: {events:?}"
        );
        let (ok, stray, stderr) = sim.close(Duration::from_secs(10));
        assert!(ok, "{len} B: the simulator failed: {stderr}");
        assert!(
            stray.is_empty(),
            "{len} B: stray bytes on stdout: {stray:?}"
        );
        assert!(
            stderr.contains(&format!("received fw.bin ({len} B)")),
            "{stderr}"
        );
        assert_same(
            &std::fs::read(&out).unwrap(),
            &image,
            &format!("{len} B over stdio"),
        );
    }
}

#[test]
fn our_an3155_flasher_writes_the_simulated_bootloader_and_closing_stdin_saves_the_flash() {
    let dir = TempDir::new("an3155");
    let len = 20 * 1024 + 3;
    let image = test_image(len, 400);
    let out = dir.path("flash.bin");
    let mut sim = Sim::spawn(&["--protocol", "an3155", "--output", out.to_str().unwrap()]);
    let mut flasher = an3155::Flasher::new(
        &image,
        an3155::Options::default(),
        an3155::Config::default(),
        Duration::ZERO,
    )
    .unwrap();
    sim.exchange(&mut flasher, Duration::from_secs(60));
    let events: Vec<an3155::Event> = std::iter::from_fn(|| flasher.poll_event()).collect();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, an3155::Event::Finished { .. })),
        "{events:?}"
    );
    // Closed at once, before the 200 ms idle save: the exit saves what changed.
    let (ok, stray, stderr) = sim.close(Duration::from_secs(10));
    assert!(ok, "the simulator failed: {stderr}");
    assert!(stray.is_empty(), "stray bytes on stdout: {stray:?}");
    let flash = std::fs::read(&out).expect("the flash was saved");
    assert_eq!(flash.len(), 128 * 1024);
    assert_same(&flash[..len], &image, "the flashed image");
    assert!(
        flash[len..].iter().all(|&b| b == 0xFF),
        "past the image stays erased"
    );
}

/// The one firmware file, by its URL.
struct OneFile(String, Vec<u8>);

impl Source for OneFile {
    fn read(&mut self, url: &str, start: u64, end: u64) -> Result<Vec<u8>, String> {
        assert_eq!(url, self.0);
        let end = end.min(self.1.len() as u64);
        Ok(self.1[start as usize..end as usize].to_vec())
    }
}

/// `AtUpgrade` with its I/O served from memory, as `sota serve-at` and the console run it.
struct Served {
    up: AtUpgrade,
    firmware: LocalFirmware,
    file: OneFile,
    store: MemoryStore,
}

impl Served {
    fn serve(&mut self, now: Duration) {
        let firmware = &self.firmware;
        serve(
            &mut self.up,
            &mut self.file,
            &mut self.store,
            now,
            |up, io| {
                match io {
                    Io::NeedPlans { .. } => up.provide_plans(vec![firmware.plan()], now),
                    Io::NeedFirmwareInfo { .. } => up.provide_info(firmware.info(), now),
                    _ => Ok(()),
                }
                .expect("the session takes the local plan and info")
            },
        );
    }
}

impl Endpoint for Served {
    fn handle_input(&mut self, now: Duration, bytes: &[u8]) {
        self.up.handle_input(now, bytes);
        self.serve(now);
    }
    fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        self.up.poll_transmit(out);
    }
    fn poll_timeout(&self) -> Option<Duration> {
        self.up.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Duration) {
        self.up.handle_timeout(now);
        self.serve(now);
    }
    fn is_done(&self) -> bool {
        self.up.is_done()
    }
}

#[test]
fn our_at_module_upgrades_the_simulated_mcu_over_stdio() {
    let dir = TempDir::new("at");
    let image = test_image(30_000, 500);
    let out = dir.path("installed.bin");
    let mut sim = Sim::spawn(&[
        "--protocol",
        "at",
        "--firmware-version",
        "1_0_0",
        "--output",
        out.to_str().unwrap(),
    ]);
    let firmware = LocalFirmware {
        identity: "STM32".into(),
        target_version: "2_0_0".into(),
        source_version: String::new(),
        url: "fw.bin".into(),
        own: Digester::digest(&image),
        expected: ExpectedDigests::default(),
    };
    let config = EngineConfig {
        piece_size: 8192,
        ..EngineConfig::default()
    };
    let mut served = Served {
        up: AtUpgrade::new(at_sota::Config::default(), Session::new(config, Vec::new())),
        file: OneFile(firmware.url.clone(), image.clone()),
        firmware,
        store: MemoryStore::default(),
    };
    sim.exchange(&mut served, Duration::from_secs(120));
    let results = served.up.session().results();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].outcome, Outcome::Succeeded);
    let (ok, stray, stderr) = sim.close(Duration::from_secs(10));
    assert!(ok, "the simulator failed: {stderr}");
    assert!(stray.is_empty(), "stray bytes on stdout: {stray:?}");
    assert!(stderr.contains("updated to 2_0_0"), "{stderr}");
    assert_same(&std::fs::read(&out).unwrap(), &image, "the installed image");
}

#[test]
fn closing_stdin_early_ends_the_simulated_at_mcu_with_a_message() {
    let sim = Sim::spawn(&["--protocol", "at"]);
    let first = sim
        .stdout
        .recv_timeout(Duration::from_secs(30))
        .expect("the MCU speaks first");
    assert!(
        first.starts_with(b"ATE0\r"),
        "{:?}",
        String::from_utf8_lossy(&first)
    );
    let (ok, _, stderr) = sim.close(Duration::from_secs(10));
    assert!(!ok, "an unfinished upgrade is not a success: {stderr}");
    assert!(
        stderr.contains("stdin closed before the upgrade finished: the MCU still runs 1_0_0"),
        "{stderr}"
    );
}
