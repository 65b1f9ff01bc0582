//! What a technician sees when something is wrong: the CLI's error messages.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SOTA: &str = env!("CARGO_BIN_EXE_sota");

fn run_bounded(command: &mut Command, limit: Duration) -> std::process::Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sota");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sota did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn a_missing_port_names_the_port_and_what_to_check() {
    let dir = std::env::temp_dir().join(format!("sota-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("fw.bin");
    std::fs::write(&file, [1, 2, 3]).unwrap();
    let out = run_bounded(
        Command::new(SOTA)
            .args([
                "flash",
                "--protocol",
                "ymodem",
                "--port",
                "/dev/nonexistent-sota-port",
            ])
            .arg(&file),
        Duration::from_secs(10),
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/dev/nonexistent-sota-port") && err.contains("plugged in"),
        "{err}"
    );
}

#[test]
fn a_missing_firmware_file_is_named() {
    let out = run_bounded(
        Command::new(SOTA).args([
            "flash",
            "--protocol",
            "an3155",
            "--port",
            "/dev/null",
            "/nonexistent/fw.bin",
        ]),
        Duration::from_secs(10),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read the firmware file /nonexistent/fw.bin"),
        "{err}"
    );
}

#[test]
fn a_board_that_never_answers_gets_the_boot0_hint() {
    // A pty whose other end swallows everything: a board not in its bootloader.
    let dir = std::env::temp_dir().join(format!("sota-silent-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tty = dir.join("tty");
    let file = dir.join("fw.bin");
    std::fs::write(&file, [0u8; 16]).unwrap();
    let mut socat = match Command::new("socat")
        .arg(format!("PTY,raw,echo=0,link={}", tty.display()))
        .arg("SYSTEM:cat >/dev/null")
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!("`socat` is not installed ({e}): run `apt-get install socat`"),
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !tty.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = run_bounded(
        Command::new(SOTA)
            .args([
                "flash",
                "--protocol",
                "an3155",
                "--parity",
                "none",
                "--port",
            ])
            .arg(&tty)
            .arg(&file),
        Duration::from_secs(30),
    );
    let _ = socat.kill();
    let _ = socat.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("did not answer the sync byte 0x7F") && err.contains("BOOT0"),
        "{err}"
    );
}

#[test]
fn a_malformed_expected_digest_is_explained_before_the_port_is_opened() {
    let dir = std::env::temp_dir().join(format!("sota-digest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("fw.bin");
    std::fs::write(&file, [1, 2, 3]).unwrap();
    let out = run_bounded(
        Command::new(SOTA)
            .args([
                "serve-at",
                "--port",
                "/dev/nonexistent-sota-port",
                "--version",
                "2_0_0",
                "--sha256",
                "xyz",
                "--firmware",
            ])
            .arg(&file),
        Duration::from_secs(10),
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad expected digest") && err.contains("SHA-256"),
        "{err}"
    );
}

#[test]
fn a_zero_page_size_is_refused_by_the_flag() {
    let out = run_bounded(
        Command::new(SOTA).args([
            "flash",
            "--protocol",
            "an3155",
            "--port",
            "/dev/nonexistent-sota-port",
            "--page-size",
            "0",
            "/nonexistent/fw.bin",
        ]),
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--page-size") && err.contains("not in 1.."),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_file_that_differs_from_the_expected_digest_is_not_flashed() {
    let dir = std::env::temp_dir().join(format!("sota-flash-digest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("fw.bin");
    std::fs::write(&file, [1, 2, 3]).unwrap();
    let wrong = "ab".repeat(32);
    let out = run_bounded(
        Command::new(SOTA)
            .args([
                "flash",
                "--protocol",
                "ymodem",
                "--port",
                "/dev/nonexistent-sota-port",
                "--sha256",
                &wrong,
            ])
            .arg(&file),
        Duration::from_secs(10),
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("expected {wrong}")) && err.contains("nothing was sent to the MCU"),
        "{err}"
    );
    assert!(
        !err.contains("nonexistent-sota-port"),
        "the check comes before the port is opened: {err}"
    );
}
