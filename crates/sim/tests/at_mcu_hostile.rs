//! The simulated AT MCU against a hostile or broken module: numbers out of range, pieces
//! outside the file, replies outside the piece. It must neither panic nor allocate more than
//! the component's free space, and it must not read anything it was not offered properly.

use core::time::Duration;
use sota_link::Endpoint;
use sota_sim::at_mcu::{AtMcu, McuConfig, McuOutcome};

const T0: Duration = Duration::ZERO;

fn sent(mcu: &mut AtMcu) -> String {
    let mut out = Vec::new();
    mcu.poll_transmit(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn feed(mcu: &mut AtMcu, text: &str) -> String {
    mcu.handle_input(T0, text.as_bytes());
    sent(mcu)
}

/// An MCU that reported its version, confirmed a plan for `STM32` and waits for the file.
fn confirmed_mcu() -> AtMcu {
    let mut mcu = AtMcu::new(McuConfig::default(), T0);
    assert_eq!(sent(&mut mcu), "ATE0\r");
    assert!(feed(&mut mcu, "\r\nOK\r\n").starts_with("AT+QIOTMCUVER="));
    assert_eq!(feed(&mut mcu, "\r\nOK\r\n"), "AT+QIOTOTAREQ=1\r");
    assert_eq!(feed(&mut mcu, "\r\nOK\r\n"), "");
    let plan = "\r\n+QIOTEVT: 7,10700,\"STM32\",\"\",\"2_0_0\",0,-113,100\r\n";
    assert_eq!(feed(&mut mcu, plan), "AT+QIOTUPDATE=1\r");
    assert_eq!(feed(&mut mcu, "\r\nOK\r\n"), "");
    mcu
}

#[test]
fn pieces_outside_the_file_are_ignored() {
    let mut mcu = confirmed_mcu();
    let info = "\r\n+QIOTEVT: 7,10701,\"STM32\",100,\"00\",0\r\n";
    assert_eq!(feed(&mut mcu, info), "");
    for (start, len) in [
        ("-1", "10"),                  // wrapped to u64::MAX before
        ("18446744073709551615", "1"), // start + len overflows
        ("18446744073709551616", "1"), // not a u64
        ("90", "20"),                  // runs past the 100-byte file
        ("0", "18446744073709551615"),
    ] {
        let piece = format!("\r\n+QIOTEVT: 7,10703,\"STM32\",100,{start},{len}\r\n");
        assert_eq!(
            feed(&mut mcu, &piece),
            "",
            "piece {start},{len} must be ignored"
        );
    }
    // A proper piece is still read.
    let piece = "\r\n+QIOTEVT: 7,10703,\"STM32\",100,60,40\r\n";
    assert_eq!(feed(&mut mcu, piece), "AT+QIOTOTARD=60,40\r");
    // A reply that runs past the piece is a damaged reply: asked again, nothing stored.
    let mut reply = b"\r\n+QIOTOTARD: 60,100\r\n".to_vec();
    reply.extend([0xAB; 100]);
    reply.extend(b"\r\nOK\r\n");
    mcu.handle_input(T0, &reply);
    assert_eq!(sent(&mut mcu), "AT+QIOTOTARD=60,40\r");
    assert_eq!(mcu.firmware_bytes_received(), 0);
    assert_eq!(mcu.outcome(), None);
}

#[test]
fn a_file_larger_than_the_free_space_fails_the_plan_without_allocating() {
    let mut mcu = confirmed_mcu();
    // Negative or overflowing numbers are not a file at all.
    for info in [
        "\r\n+QIOTEVT: 7,10701,\"STM32\",-5,\"00\",0\r\n",
        "\r\n+QIOTEVT: 7,10701,\"STM32\",100,\"00\",4294967296\r\n",
    ] {
        assert_eq!(feed(&mut mcu, info), "");
        let piece = "\r\n+QIOTEVT: 7,10703,\"STM32\",100,0,100\r\n";
        assert_eq!(feed(&mut mcu, piece), "", "no file was announced: {info:?}");
    }
    let huge = "\r\n+QIOTEVT: 7,10701,\"STM32\",18446744073709551615,\"00\",0\r\n";
    assert_eq!(feed(&mut mcu, huge), "");
    match mcu.outcome() {
        Some(McuOutcome::Failed { reason }) => {
            assert!(reason.contains("free space"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // Nothing of it is read: the piece that would make the MCU allocate the file is ignored.
    let piece =
        "\r\n+QIOTEVT: 7,10703,\"STM32\",18446744073709551615,18446744073709550000,1024\r\n";
    assert_eq!(feed(&mut mcu, piece), "");
}

#[test]
fn plan_numbers_that_do_not_fit_are_not_a_plan() {
    let mut mcu = AtMcu::new(McuConfig::default(), T0);
    sent(&mut mcu);
    feed(&mut mcu, "\r\nOK\r\n");
    feed(&mut mcu, "\r\nOK\r\n");
    feed(&mut mcu, "\r\nOK\r\n");
    // A minimum battery of 2^32 % wrapped to 0 % before and was accepted.
    let plan = "\r\n+QIOTEVT: 7,10700,\"STM32\",\"\",\"2_0_0\",4294967296,-113,100\r\n";
    assert_eq!(feed(&mut mcu, plan), "");
    let plan = "\r\n+QIOTEVT: 7,10700,\"STM32\",\"\",\"2_0_0\",0,-113,-1\r\n";
    assert_eq!(feed(&mut mcu, plan), "");
}
