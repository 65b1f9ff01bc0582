//! YMODEM sender (sota-link) against the simulated receiver, through the line model.

mod common;

use common::*;
use core::time::Duration;
use sota_link::ymodem::{Config, Event, Sender};
use sota_link::Endpoint;
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

/// A streaming sender fed a window at a time, as the console feeds it from a file.
struct Streamed<'a> {
    sender: Sender,
    file: &'a [u8],
    /// Windows handed over, and the largest.
    windows: usize,
    largest: usize,
}

impl Streamed<'_> {
    fn feed(&mut self, now: Duration) {
        if let Some((offset, len)) = self.sender.wants() {
            let bytes = self.file[offset as usize..(offset + len) as usize].to_vec();
            self.windows += 1;
            self.largest = self.largest.max(bytes.len());
            self.sender.provide(offset, bytes, now);
        }
    }
}

impl Endpoint for Streamed<'_> {
    fn handle_input(&mut self, now: Duration, bytes: &[u8]) {
        self.sender.handle_input(now, bytes);
        self.feed(now);
    }
    fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        self.sender.poll_transmit(out);
    }
    fn poll_timeout(&self) -> Option<Duration> {
        self.sender.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Duration) {
        self.sender.handle_timeout(now);
        self.feed(now);
    }
    fn is_done(&self) -> bool {
        self.sender.is_done()
    }
}

#[test]
fn a_streaming_sender_holds_one_window_and_delivers_byte_exact() {
    use sota_link::ymodem::WINDOW;
    for len in [0usize, 1, 1024, 65_536, 65_537, 200_000] {
        let file = image(len, 7 + len as u64);
        let config = Config {
            response_timeout: Duration::from_secs(1),
            ..Config::default()
        };
        let sender = Sender::streaming("fw.bin", len as u64, config, Duration::ZERO).unwrap();
        assert_eq!(
            sender.wants(),
            None,
            "nothing is asked before the receiver starts"
        );
        let mut streamed = Streamed {
            sender,
            file: &file,
            windows: 0,
            largest: 0,
        };
        let mut receiver = Receiver::new(ReceiverConfig::default(), Duration::ZERO);
        let mut line = Line::new(LineConfig::n81(921_600), Faults::default());
        let report = line.run(&mut streamed, &mut receiver, Duration::from_secs(600));
        assert!(report.finished, "{len} B: {report:?}");
        assert_eq!(
            last_event(&mut streamed.sender),
            Some(Event::Finished),
            "{len} B"
        );
        assert!(receiver.files()[0].data == file, "{len} B differ");
        assert_eq!(streamed.windows, len.div_ceil(WINDOW as usize), "{len} B");
        assert!(streamed.largest as u64 <= WINDOW);
    }
}

#[test]
fn a_streaming_sender_waits_for_its_bytes_and_ignores_others() {
    let mut s = Sender::streaming("a", 3000, Config::default(), Duration::ZERO).unwrap();
    let t = Duration::from_millis(10);
    s.handle_input(t, b"C");
    s.handle_input(t, &[sota_link::ymodem::ACK]);
    s.handle_input(t, b"C");
    assert_eq!(s.wants(), Some((0, 3000)));
    assert_eq!(
        s.poll_timeout(),
        None,
        "no deadline while the bytes are fetched"
    );
    s.provide(1, vec![0; 2999], t);
    s.provide(0, vec![0; 10], t);
    assert_eq!(
        s.wants(),
        Some((0, 3000)),
        "wrong offset or length is ignored"
    );
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    out.clear();
    s.provide(0, image(3000, 1), t);
    s.poll_transmit(&mut out);
    assert_eq!(out.len(), 1029, "block 1 goes out once its bytes are there");
    assert_eq!(&out[3..1027], &image(3000, 1)[..1024]);
}
