//! YMODEM sender (sota-link) against the simulated receiver, through the line model.

mod common;

use common::*;
use core::time::Duration;
use sota_link::ymodem::{Config, Event, Sender};
use sota_sim::line::{Faults, Line, LineConfig};
use sota_sim::ymodem_receiver::{Outcome, Receiver, ReceiverConfig};

fn transfer(file: &[u8], faults: Faults) -> (Sender, Receiver, sota_sim::line::Report) {
    let config = Config {
        response_timeout: Duration::from_secs(1),
        ..Config::default()
    };
    let mut sender = Sender::new("fw.bin", file.to_vec(), config, Duration::ZERO).unwrap();
    let mut receiver = Receiver::new(ReceiverConfig::default(), Duration::ZERO);
    let mut line = Line::new(LineConfig::n81(115_200), faults);
    let report = line.run(&mut sender, &mut receiver, Duration::from_secs(600));
    (sender, receiver, report)
}

fn last_event(sender: &mut Sender) -> Option<Event> {
    std::iter::from_fn(|| sender.poll_event()).last()
}

#[test]
fn clean_line_delivers_every_size_byte_exact() {
    for len in [0, 1, 127, 128, 129, 1023, 1024, 1025, 40_000] {
        let file = image(len, len as u64);
        let (mut sender, receiver, report) = transfer(&file, Faults::default());
        assert!(report.finished, "{len} B: {report:?}");
        assert_eq!(last_event(&mut sender), Some(Event::Finished), "{len} B");
        assert_eq!(receiver.outcome(), Some(&Outcome::Finished));
        assert_eq!(receiver.files().len(), 1);
        assert_eq!(receiver.files()[0].name, "fw.bin");
        assert!(receiver.files()[0].data == file, "{len} B differ");
    }
}

#[test]
fn clean_line_runs_near_line_rate() {
    let file = image(64 * 1024, 1);
    let (_, _, report) = transfer(&file, Faults::default());
    let rate = file.len() as f64
        / report.elapsed.as_secs_f64()
        / LineConfig::n81(115_200).bytes_per_second();
    // 1029 bytes on the wire per 1024 payload bytes plus a one-byte ACK per block
    assert!(rate > 0.95 && rate < 1.0, "rate {rate}");
}

#[test]
fn faults_never_yield_a_wrong_file() {
    let mut delivered = 0;
    for seed in 1..=12 {
        let file = image(12_000, seed);
        let (mut sender, receiver, report) = transfer(&file, field_faults(seed, 6_000));
        assert!(
            report.finished,
            "seed {seed}: the sender must end, not hang: {report:?}"
        );
        match last_event(&mut sender) {
            Some(Event::Finished) => {
                assert_eq!(
                    receiver.files().len(),
                    1,
                    "seed {seed}: {:?} {:?}",
                    receiver.outcome(),
                    receiver
                        .files()
                        .iter()
                        .map(|f| (f.name.clone(), f.data.len()))
                        .collect::<Vec<_>>()
                );
                assert!(
                    receiver.files()[0].data == file,
                    "seed {seed}: success reported for a wrong file"
                );
                delivered += 1;
            }
            Some(Event::Failed(e)) => {
                eprintln!("seed {seed}: {e} {report:?}");
                assert!(!e.to_string().is_empty());
                assert!(
                    receiver.files().iter().all(|f| f.data == file),
                    "seed {seed}"
                );
            }
            other => panic!("seed {seed}: {other:?}"),
        }
    }
    assert!(
        delivered >= 9,
        "only {delivered}/12 transfers survived 1e-4 bit flips"
    );
}

#[test]
fn a_disconnect_shorter_than_the_retries_is_survived() {
    let file = image(30_000, 7);
    let (mut sender, receiver, report) = transfer(&file, disconnect_only(10_000));
    assert!(
        report.dropped > 0,
        "the disconnect dropped nothing: {report:?}"
    );
    assert_eq!(last_event(&mut sender), Some(Event::Finished));
    assert!(receiver.files()[0].data == file);
}

#[test]
fn a_receiver_that_gives_up_cancels_with_a_clear_error() {
    // Every byte lost after the header: the receiver gives up and sends CAN CAN, or the sender
    // runs out of tries; both must end in an error, never success.
    let file = image(5_000, 3);
    let faults = Faults {
        disconnect: Some(sota_sim::line::Disconnect {
            after_bytes: 200,
            duration: Duration::from_secs(1000),
        }),
        ..Faults::default()
    };
    let (mut sender, _, report) = transfer(&file, faults);
    assert!(report.finished);
    match last_event(&mut sender) {
        Some(Event::Failed(e)) => assert!(e.to_string().contains("not acknowledged"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_reply_timeout_shorter_than_a_block_still_delivers_the_file() {
    // A 1 KiB block takes 89 ms at 115200 baud: every block times out once and is resent,
    // and its late ACK races the resend. Each stray ACK must be dropped, not taken for the
    // next block's.
    let file = image(8_000, 11);
    let config = Config {
        response_timeout: Duration::from_millis(60),
        ..Config::default()
    };
    let mut sender = Sender::new("fw.bin", file.clone(), config, Duration::ZERO).unwrap();
    let mut receiver = Receiver::new(ReceiverConfig::default(), Duration::ZERO);
    let mut line = Line::new(LineConfig::n81(115_200), Faults::default());
    let report = line.run(&mut sender, &mut receiver, Duration::from_secs(120));
    assert!(report.finished, "{report:?}");
    assert_eq!(last_event(&mut sender), Some(Event::Finished));
    assert_eq!(receiver.outcome(), Some(&Outcome::Finished));
    assert!(
        receiver.files()[0].data == file,
        "the received file differs"
    );
}
