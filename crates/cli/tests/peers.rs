//! `sota` against peers we did not write: lrzsz (`rb`, `sb -k`) and `stm32flash`, over
//! pseudo-terminals made by socat or by `sota simulate`. Every peer is started and stopped
//! here, in a temporary directory, under a deadline.

use sota_sim::test_image;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;

use support::*;

fn one_third_erased(len: usize, seed: u64) -> Vec<u8> {
    let mut data = test_image(len, seed);
    for (i, chunk) in data.chunks_mut(256).enumerate() {
        if i % 3 == 2 {
            chunk.fill(0xFF);
        }
    }
    data
}

#[test]
fn a_peer_that_prints_nothing_fails_the_read_at_its_deadline() {
    let (reader, writer) = std::io::pipe().expect("pipe");
    let started = Instant::now();
    let result = first_line(reader, Duration::from_millis(200));
    let waited = started.elapsed();
    drop(writer); // ends the reader thread
    let error = result.expect_err("no line was written");
    assert!(error.contains("no line within 200ms"), "{error}");
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    let (reader, mut writer) = std::io::pipe().expect("pipe");
    writer.write_all(b"/dev/pts/7\nmore").unwrap();
    assert_eq!(
        first_line(reader, Duration::from_secs(5)),
        Ok("/dev/pts/7\n".to_string())
    );
}

/// Starts `sota simulate` and returns it with the pty path it printed.
#[test]
fn ymodem_sender_to_lrzsz_rb_is_byte_exact() {
    let _serial = one_at_a_time();
    require("rb", "lrzsz");
    require("socat", "socat");
    for (i, len) in [1usize, 1023, 1024, 1025, 300 * 1024]
        .into_iter()
        .enumerate()
    {
        let dir = TempDir::new("rb");
        let rx = dir.path("rx");
        std::fs::create_dir(&rx).unwrap();
        let image = test_image(len, i as u64 + 1);
        let file = dir.path("fw.bin");
        std::fs::write(&file, &image).unwrap();
        let tty = dir.path("tty");
        // rb corrupts binary data when it owns a tty: it talks to socat through pipes.
        let rb = Peer::spawn(
            "socat + rb",
            Command::new("socat")
                .arg(format!("PTY,raw,echo=0,link={}", tty.display()))
                .arg(format!("SYSTEM:cd {} && exec rb", rx.display()))
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        );
        wait_for_path(&tty, Duration::from_secs(5));
        let sota = Peer::spawn(
            "sota flash --protocol ymodem",
            Command::new(SOTA)
                .args(["flash", "--protocol", "ymodem", "--port"])
                .arg(&tty)
                .arg(&file)
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        );
        assert_success(
            &sota.wait(Duration::from_secs(120)),
            &format!("sota flash ({len} B)"),
        );
        rb.wait(Duration::from_secs(10));
        let got = std::fs::read(rx.join("fw.bin"))
            .unwrap_or_else(|e| panic!("rb wrote no file for {len} B: {e}"));
        assert_same(&got, &image, &format!("{len} B through rb"));
    }
}

#[test]
fn lrzsz_sb_to_the_simulated_ymodem_receiver_is_byte_exact() {
    let _serial = one_at_a_time();
    require("sb", "lrzsz");
    require("socat", "socat");
    for (i, len) in [1usize, 1024, 1025, 100 * 1024].into_iter().enumerate() {
        let dir = TempDir::new("sb");
        let image = test_image(len, 100 + i as u64);
        let file = dir.path("image.bin");
        std::fs::write(&file, &image).unwrap();
        let out = dir.path("received.bin");
        let (sim, tty) = simulate(&["--protocol", "ymodem", "--output", out.to_str().unwrap()]);
        let sb = Peer::spawn(
            "socat + sb -k",
            Command::new("socat")
                .arg(format!("{tty},raw,echo=0"))
                .arg(format!("SYSTEM:exec sb -k {}", file.display()))
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        );
        assert_success(
            &sb.wait(Duration::from_secs(60)),
            &format!("sb -k ({len} B)"),
        );
        assert_success(
            &sim.wait(Duration::from_secs(10)),
            "sota simulate --protocol ymodem",
        );
        assert_same(
            &std::fs::read(&out).unwrap(),
            &image,
            &format!("{len} B from sb"),
        );
    }
}

fn stm32flash(args: &[&str], tty: &str) -> std::process::Output {
    Peer::spawn(
        "stm32flash",
        Command::new("stm32flash")
            .args(["-m", "8n1", "-b", "115200"])
            .args(args)
            .arg(tty)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .wait(Duration::from_secs(90))
}

#[test]
fn stm32flash_and_our_flasher_agree_on_the_simulated_bootloader() {
    let _serial = one_at_a_time();
    require("stm32flash", "stm32flash");
    for (i, len) in [1usize, 1023, 20 * 1024 + 3].into_iter().enumerate() {
        let dir = TempDir::new("stm32");
        let image = one_third_erased(len, 200 + i as u64);
        let file = dir.path("image.bin");
        std::fs::write(&file, &image).unwrap();
        let back = dir.path("back.bin");

        // 1. stm32flash writes, verifies and reads back: the simulator follows AN3155.
        let (sim, tty) = simulate(&["--protocol", "an3155"]);
        let write = stm32flash(&["-w", file.to_str().unwrap(), "-v"], &tty);
        assert_success(&write, &format!("stm32flash -w -v ({len} B)"));
        assert_success(
            &stm32flash(&["-r", back.to_str().unwrap()], &tty),
            "stm32flash -r",
        );
        let flash = std::fs::read(&back).unwrap();
        assert_eq!(
            flash.len(),
            128 * 1024,
            "stm32flash reads the whole 128 KiB"
        );
        assert_same(
            &flash[..len],
            &image,
            &format!("stm32flash's write of {len} B"),
        );
        drop(sim);

        // 2. Our flasher writes the same image to a fresh simulator; stm32flash reads it back.
        let (sim, tty) = simulate(&["--protocol", "an3155"]);
        let ours = Peer::spawn(
            "sota flash --protocol an3155",
            Command::new(SOTA)
                .args([
                    "flash",
                    "--protocol",
                    "an3155",
                    "--parity",
                    "none",
                    "--port",
                    &tty,
                ])
                .arg(&file)
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        )
        .wait(Duration::from_secs(60));
        assert_success(&ours, &format!("sota flash --protocol an3155 ({len} B)"));
        let _ = std::fs::remove_file(&back);
        assert_success(
            &stm32flash(&["-r", back.to_str().unwrap()], &tty),
            "stm32flash -r after sota",
        );
        let flash = std::fs::read(&back).unwrap();
        assert_same(&flash[..len], &image, &format!("our write of {len} B"));
        assert!(
            flash[len.div_ceil(1024) * 1024..]
                .iter()
                .all(|&b| b == 0xFF),
            "flash past the image must stay erased"
        );
        drop(sim);
    }
}

#[test]
fn serve_at_upgrades_the_simulated_at_mcu_over_a_pty() {
    let _serial = one_at_a_time();
    let dir = TempDir::new("at");
    let image = test_image(40_000, 7);
    let file = dir.path("fw.bin");
    std::fs::write(&file, &image).unwrap();
    let out = dir.path("installed.bin");
    let (sim, tty) = simulate(&[
        "--protocol",
        "at",
        "--firmware-version",
        "1_0_0",
        "--output",
        out.to_str().unwrap(),
    ]);
    let serve = Peer::spawn(
        "sota serve-at",
        Command::new(SOTA)
            .args([
                "serve-at",
                "--port",
                &tty,
                "--version",
                "2_0_0",
                "--piece-size",
                "16384",
                "--firmware",
            ])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let served = serve.wait(Duration::from_secs(60));
    assert_success(&served, "sota serve-at");
    assert!(String::from_utf8_lossy(&served.stderr).contains("runs 2_0_0"));
    assert_success(
        &sim.wait(Duration::from_secs(10)),
        "sota simulate --protocol at",
    );
    assert_same(
        &std::fs::read(&out).unwrap(),
        &image,
        "the image the MCU installed",
    );
}

#[test]
fn serve_at_with_a_wrong_sha256_fails_and_sends_the_mcu_no_firmware() {
    let _serial = one_at_a_time();
    let dir = TempDir::new("at-sha");
    let file = dir.path("fw.bin");
    std::fs::write(&file, test_image(20_000, 9)).unwrap();
    let (mut sim, tty) = simulate(&["--protocol", "at", "--firmware-version", "1_0_0"]);
    let wrong = "ab".repeat(32);
    let serve = Peer::spawn(
        "sota serve-at",
        Command::new(SOTA)
            .args([
                "serve-at",
                "--port",
                &tty,
                "--version",
                "2_0_0",
                "--sha256",
                &wrong,
                "--firmware",
            ])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let served = serve.wait(Duration::from_secs(60));
    let err = String::from_utf8_lossy(&served.stderr);
    assert!(!served.status.success(), "serve-at succeeded: {err}");
    assert!(
        err.contains("SHA-256 expected")
            && err.contains(&wrong)
            && err.contains("nothing was sent to the MCU"),
        "{err}"
    );
    // The MCU heard 10706 and says how much firmware it got before starting over.
    std::thread::sleep(Duration::from_millis(1000));
    let _ = sim.child.kill();
    let sim_err = sim.child.wait_with_output_ref();
    assert!(
        sim_err.contains("reported the update as failed (10706) (0 firmware bytes received)"),
        "{sim_err}"
    );
}

#[test]
fn serve_at_stops_when_the_mcu_refuses_the_plan() {
    let _serial = one_at_a_time();
    let dir = TempDir::new("at-refuse");
    let file = dir.path("fw.bin");
    std::fs::write(&file, test_image(2_000, 10)).unwrap();
    // The simulated MCU's battery is at 80 %.
    let (_sim, tty) = simulate(&["--protocol", "at"]);
    let serve = Peer::spawn(
        "sota serve-at",
        Command::new(SOTA)
            .args([
                "serve-at",
                "--port",
                &tty,
                "--version",
                "2_0_0",
                "--min-battery",
                "90",
                "--firmware",
            ])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let served = serve.wait(Duration::from_secs(30));
    let err = String::from_utf8_lossy(&served.stderr);
    assert!(!served.status.success(), "{err}");
    assert!(err.contains("the MCU refused the plan for STM32"), "{err}");
}
