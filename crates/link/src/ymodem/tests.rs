use super::*;

const T0: Duration = Duration::ZERO;

fn sent(sender: &mut Sender) -> Vec<u8> {
    let mut out = Vec::new();
    sender.poll_transmit(&mut out);
    out
}

fn events(sender: &mut Sender) -> Vec<Event> {
    std::iter::from_fn(|| sender.poll_event()).collect()
}

#[test]
fn crc_is_xmodem() {
    assert_eq!(crc16(b"123456789"), 0x31C3);
}

#[test]
fn block_zero_carries_name_and_size() {
    let frame = encode_block(0, &header_data("fw.bin", 1025), 0);
    assert_eq!(frame.len(), 133);
    assert_eq!(&frame[..3], &[SOH, 0, 0xFF]);
    assert_eq!(&frame[3..15], b"fw.bin\x001025\x00");
    assert!(frame[15..131].iter().all(|&b| b == 0));
    assert_eq!(
        u16::from_be_bytes([frame[131], frame[132]]),
        crc16(&frame[3..131])
    );
}

#[test]
fn sends_a_whole_file_with_the_eot_handshake() {
    let file: Vec<u8> = (0..1025u32).map(|i| (i * 7) as u8).collect();
    let mut s = Sender::new("fw.bin", file.clone(), Config::default(), T0).unwrap();
    assert!(
        sent(&mut s).is_empty(),
        "nothing is sent before the receiver asks"
    );
    s.handle_input(T0, b"C");
    assert_eq!(sent(&mut s)[..3], [SOH, 0, 0xFF]);
    s.handle_input(T0, &[ACK, CRC_REQUEST]);
    let block1 = sent(&mut s);
    assert_eq!(block1.len(), 1029);
    assert_eq!(&block1[..3], &[STX, 1, 0xFE]);
    assert_eq!(&block1[3..1027], &file[..1024]);
    s.handle_input(T0, &[ACK]);
    let block2 = sent(&mut s);
    // one byte left: a short SOH block padded with 0x1A
    assert_eq!(block2.len(), 133);
    assert_eq!(&block2[..4], &[SOH, 2, 0xFD, file[1024]]);
    assert!(block2[4..131].iter().all(|&b| b == PAD));
    s.handle_input(T0, &[ACK]);
    assert_eq!(sent(&mut s), vec![EOT]);
    s.handle_input(T0, &[NAK]);
    assert_eq!(sent(&mut s), vec![EOT]);
    s.handle_input(T0, &[ACK, CRC_REQUEST]);
    let end = sent(&mut s);
    assert_eq!(&end[..3], &[SOH, 0, 0xFF]);
    assert!(end[3..131].iter().all(|&b| b == 0));
    assert!(!s.is_done());
    s.handle_input(T0, &[ACK]);
    assert!(s.is_done());
    let ev = events(&mut s);
    assert_eq!(ev.last(), Some(&Event::Finished));
    assert!(ev.contains(&Event::Progress(Progress {
        phase: Phase::Writing,
        done: 1025,
        total: 1025
    })));
}

#[test]
fn nak_and_timeout_resend_the_same_block() {
    let file = vec![0x55; 3000];
    let cfg = Config {
        response_timeout: Duration::from_secs(1),
        ..Config::default()
    };
    let mut s = Sender::new("a", file, cfg, T0).unwrap();
    s.handle_input(T0, b"C");
    sent(&mut s);
    s.handle_input(T0, &[ACK, CRC_REQUEST]);
    let first = sent(&mut s);
    s.handle_input(T0, &[NAK]);
    assert_eq!(sent(&mut s), first);
    assert_eq!(s.poll_timeout(), Some(Duration::from_secs(1)));
    s.handle_timeout(Duration::from_secs(1));
    assert_eq!(sent(&mut s), first);
    // noise is ignored
    s.handle_input(Duration::from_secs(1), &[0x00, 0x7F, b'x']);
    assert!(sent(&mut s).is_empty());
}

#[test]
fn gives_up_after_max_tries_with_a_clear_error() {
    let cfg = Config {
        response_timeout: Duration::from_secs(1),
        max_tries: 3,
        ..Config::default()
    };
    let mut s = Sender::new("a", vec![1; 10], cfg, T0).unwrap();
    s.handle_input(T0, b"C");
    s.handle_input(T0, &[ACK, CRC_REQUEST]);
    for t in 1..=3 {
        s.handle_timeout(Duration::from_secs(t));
    }
    assert!(s.is_done());
    let ev = events(&mut s);
    match ev.last() {
        Some(Event::Failed(Error::NoAck { what, tries: 3 })) => assert_eq!(what, "data block 1"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn double_can_aborts_but_single_can_is_noise() {
    let mut s = Sender::new("a", vec![1; 2048], Config::default(), T0).unwrap();
    s.handle_input(T0, b"C");
    s.handle_input(T0, &[ACK, CRC_REQUEST, ACK]);
    s.handle_input(T0, &[CAN, 0x00]);
    assert!(!s.is_done());
    s.handle_input(T0, &[CAN, CAN]);
    assert!(s.is_done());
    assert_eq!(
        events(&mut s).last(),
        Some(&Event::Failed(Error::Cancelled {
            at: 1024,
            total: 2048
        }))
    );
}

#[test]
fn no_start_times_out() {
    let mut s = Sender::new("a", vec![1], Config::default(), T0).unwrap();
    s.handle_timeout(Duration::from_secs(59));
    assert!(!s.is_done());
    s.handle_timeout(Duration::from_secs(60));
    assert_eq!(
        events(&mut s),
        vec![Event::Failed(Error::NoStart(Duration::from_secs(60)))]
    );
}

#[test]
fn empty_file_sends_only_eot() {
    let mut s = Sender::new("empty", Vec::new(), Config::default(), T0).unwrap();
    s.handle_input(T0, b"C");
    sent(&mut s);
    s.handle_input(T0, &[ACK, CRC_REQUEST]);
    assert_eq!(sent(&mut s), vec![EOT]);
}

/// A sender with 1 s reply timeouts whose block 1 (of `len` bytes) is on the wire.
fn at_block_one(len: usize) -> (Sender, Vec<u8>) {
    let cfg = Config {
        response_timeout: Duration::from_secs(1),
        ..Config::default()
    };
    let file: Vec<u8> = (0..len as u32).map(|i| (i % 251) as u8).collect();
    let mut s = Sender::new("a", file, cfg, T0).unwrap();
    s.handle_input(T0, b"C");
    sent(&mut s);
    s.handle_input(T0, &[ACK, CRC_REQUEST]);
    let block1 = sent(&mut s);
    assert_eq!(&block1[..3], &[STX, 1, 0xFE]);
    (s, block1)
}

#[test]
fn a_late_ack_racing_a_timeout_resend_does_not_skip_a_block() {
    let (mut s, block1) = at_block_one(3000);
    // The receiver is slow: the sender times out and resends block 1 ...
    let t1 = Duration::from_secs(1);
    s.handle_timeout(t1);
    assert_eq!(sent(&mut s), block1);
    // ... then the ACK of the first copy arrives. The receiver will ACK the resent copy as
    // a repeat too, so block 2 must wait for that second ACK.
    s.handle_input(t1, &[ACK]);
    assert!(
        sent(&mut s).is_empty(),
        "block 2 went out before the stray ACK"
    );
    s.handle_input(t1, &[ACK]); // the repeat's ACK: dropped, and now block 2
    let block2 = sent(&mut s);
    assert_eq!(&block2[..3], &[STX, 2, 0xFD]);
    // The next ACK is block 2's, not a stale one: block 3 follows, then EOT.
    s.handle_input(t1, &[ACK]);
    assert_eq!(&sent(&mut s)[..3], &[STX, 3, 0xFC]);
    s.handle_input(t1, &[ACK]);
    assert_eq!(sent(&mut s), vec![EOT]);
}

#[test]
fn a_resent_block_whose_first_copy_was_lost_goes_on_after_a_short_wait() {
    let (mut s, block1) = at_block_one(3000);
    let t1 = Duration::from_secs(1);
    s.handle_timeout(t1);
    assert_eq!(sent(&mut s), block1);
    // Only one ACK will come (the first copy never arrived).
    s.handle_input(t1, &[ACK]);
    assert!(sent(&mut s).is_empty());
    let wait = Config::default().stray_reply_wait;
    assert_eq!(s.poll_timeout(), Some(t1 + wait));
    s.handle_timeout(t1 + wait);
    assert_eq!(&sent(&mut s)[..3], &[STX, 2, 0xFD]);
    // A NAKed copy is answered: no wait after the ACK of its resend.
    s.handle_input(t1 + wait, &[NAK]);
    sent(&mut s);
    s.handle_input(t1 + wait, &[ACK]);
    assert_eq!(&sent(&mut s)[..3], &[STX, 3, 0xFC]);
}

/// A sender with 1 s reply timeouts and `max_tries` tries per block.
fn with_tries(file: Vec<u8>, max_tries: u32) -> Sender {
    let cfg = Config {
        response_timeout: Duration::from_secs(1),
        max_tries,
        ..Config::default()
    };
    Sender::new("fw.bin", file, cfg, T0).unwrap()
}

/// NAKs `frame` (just sent) until the sender gives up, checking that every NAK before the
/// `max_tries`-th resends it and that the last one sends nothing; returns the error.
fn nak_until_it_gives_up(s: &mut Sender, frame: &[u8], max_tries: u32) -> Error {
    for copy in 2..=max_tries {
        s.handle_input(T0, &[NAK]);
        assert_eq!(sent(s), frame, "copy {copy} of {max_tries} goes out");
        assert!(!s.is_done(), "gave up after {copy} of {max_tries} tries");
    }
    s.handle_input(T0, &[NAK]);
    assert!(sent(s).is_empty(), "a copy past max_tries went out");
    assert!(s.is_done(), "never gave up after {max_tries} tries");
    match events(s).last() {
        Some(Event::Failed(e)) => e.clone(),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn each_block_gives_up_exactly_after_max_tries_naks_and_names_itself() {
    let file = vec![0x42; 10];
    let header = encode_block(0, &header_data("fw.bin", 10), 0);
    let block1 = encode_block(1, &file, PAD);
    let batch_end = encode_block(0, &[], 0);
    for max_tries in [1, 2, 4] {
        // Block 0: a NAKed header is resent.
        let mut s = with_tries(file.clone(), max_tries);
        s.handle_input(T0, b"C");
        assert_eq!(sent(&mut s), header);
        assert_eq!(
            nak_until_it_gives_up(&mut s, &header, max_tries),
            Error::NoAck {
                what: "block 0 (file name)".into(),
                tries: max_tries
            }
        );
        // A data block.
        let mut s = with_tries(file.clone(), max_tries);
        s.handle_input(T0, b"C");
        s.handle_input(T0, &[ACK, CRC_REQUEST]);
        assert_eq!(sent(&mut s)[header.len()..], block1);
        assert_eq!(
            nak_until_it_gives_up(&mut s, &block1, max_tries),
            Error::NoAck {
                what: "data block 1".into(),
                tries: max_tries
            }
        );
        // EOT: receivers NAK the first one, so a NAK resends it.
        let mut s = with_tries(file.clone(), max_tries);
        s.handle_input(T0, b"C");
        s.handle_input(T0, &[ACK, CRC_REQUEST, ACK]);
        assert!(sent(&mut s).ends_with(&[EOT]));
        assert_eq!(
            nak_until_it_gives_up(&mut s, &[EOT], max_tries),
            Error::NoAck {
                what: "the end of file (EOT)".into(),
                tries: max_tries
            }
        );
        // The empty block 0 that ends the batch.
        let mut s = with_tries(file.clone(), max_tries);
        s.handle_input(T0, b"C");
        s.handle_input(T0, &[ACK, CRC_REQUEST, ACK, ACK, CRC_REQUEST]);
        assert!(sent(&mut s).ends_with(&batch_end));
        assert_eq!(
            nak_until_it_gives_up(&mut s, &batch_end, max_tries),
            Error::NoAck {
                what: "the end of the batch".into(),
                tries: max_tries
            }
        );
    }
}

#[test]
fn a_timed_out_block_gives_up_exactly_after_max_tries() {
    let mut s = with_tries(vec![1; 10], 3);
    s.handle_input(T0, b"C");
    sent(&mut s);
    s.handle_input(T0, &[ACK, CRC_REQUEST]);
    let block1 = sent(&mut s);
    for t in 1..=2 {
        s.handle_timeout(Duration::from_secs(t));
        assert_eq!(sent(&mut s), block1, "timeout {t} resends block 1");
        assert!(!s.is_done());
        assert_eq!(s.poll_timeout(), Some(Duration::from_secs(t + 1)));
    }
    s.handle_timeout(Duration::from_secs(3));
    assert!(sent(&mut s).is_empty());
    assert!(s.is_done());
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(
        events(&mut s),
        vec![Event::Failed(Error::NoAck {
            what: "data block 1".into(),
            tries: 3
        })]
    );
}

#[test]
fn an_unanswered_end_of_batch_block_counts_as_finished_after_max_tries() {
    // EOT was acknowledged, so the receiver has the whole file; only its reply to the empty
    // block 0 is missing. The block is tried max_tries times, then the transfer is done.
    let mut s = with_tries(vec![1; 10], 3);
    s.handle_input(T0, b"C");
    s.handle_input(T0, &[ACK, CRC_REQUEST, ACK, ACK, CRC_REQUEST]);
    let batch_end = encode_block(0, &[], 0);
    assert!(sent(&mut s).ends_with(&batch_end));
    events(&mut s);
    for t in 1..=2 {
        s.handle_timeout(Duration::from_secs(t));
        assert_eq!(sent(&mut s), batch_end, "timeout {t} resends the block");
        assert!(!s.is_done(), "finished after {t} of 3 tries");
    }
    s.handle_timeout(Duration::from_secs(3));
    assert!(sent(&mut s).is_empty());
    assert!(s.is_done());
    assert_eq!(events(&mut s), vec![Event::Finished]);
}

#[test]
fn a_repeated_c_resends_block_one_and_the_end_of_batch_block() {
    let (mut s, block1) = at_block_one(3000);
    // Block 1 did not reach the receiver, which asks again with C: block 1 is resent ...
    s.handle_input(T0, b"C");
    assert_eq!(sent(&mut s), block1);
    // ... and acknowledged (and a reply for the extra copy is waited for).
    s.handle_input(T0, &[ACK]);
    assert!(sent(&mut s).is_empty());
    s.handle_input(T0, &[ACK]);
    let block2 = sent(&mut s);
    assert_eq!(&block2[..3], &[STX, 2, 0xFD]);
    // A C during a later block is noise: nothing is resent.
    s.handle_input(T0, b"C");
    assert!(sent(&mut s).is_empty());
    // At the end of the batch a C (or a NAK) asks for the empty block 0 again.
    let mut s = with_tries(vec![1; 10], 10);
    s.handle_input(T0, b"C");
    s.handle_input(T0, &[ACK, CRC_REQUEST, ACK, ACK, CRC_REQUEST]);
    let batch_end = encode_block(0, &[], 0);
    assert!(sent(&mut s).ends_with(&batch_end));
    s.handle_input(T0, b"C");
    assert_eq!(sent(&mut s), batch_end);
    s.handle_input(T0, &[NAK]);
    assert_eq!(sent(&mut s), batch_end);
    s.handle_input(T0, &[ACK]);
    assert!(s.is_done());
    assert_eq!(events(&mut s).last(), Some(&Event::Finished));
}

#[test]
fn a_lost_c_after_block_zero_or_eot_does_not_stall_the_transfer() {
    let mut s = with_tries(vec![1; 10], 10);
    s.handle_input(T0, b"C");
    let header = sent(&mut s);
    // Block 0 is acknowledged, but the C that asks for block 1 is lost: block 1 goes out
    // when the reply time is over, not block 0 again.
    s.handle_input(T0, &[ACK]);
    assert!(sent(&mut s).is_empty());
    assert_eq!(s.poll_timeout(), Some(Duration::from_secs(1)));
    s.handle_timeout(Duration::from_secs(1));
    let block1 = sent(&mut s);
    assert_ne!(block1, header);
    assert_eq!(&block1[..4], &[SOH, 1, 0xFE, 1]);
    s.handle_input(Duration::from_secs(1), &[ACK]);
    assert_eq!(sent(&mut s), vec![EOT]);
    // EOT is acknowledged but the C for the end of the batch is lost: the empty block 0
    // goes out at the timeout, not EOT again.
    s.handle_input(Duration::from_secs(1), &[ACK]);
    assert!(sent(&mut s).is_empty());
    s.handle_timeout(Duration::from_secs(2));
    assert_eq!(sent(&mut s), encode_block(0, &[], 0));
    s.handle_input(Duration::from_secs(2), &[ACK]);
    assert_eq!(events(&mut s).last(), Some(&Event::Finished));
}

#[test]
fn every_extra_copy_of_a_block_has_its_reply_dropped() {
    // Block 1 went out three times (two timeouts): after the first ACK, two more replies are
    // on their way, and only after both does block 2 go out.
    let (mut s, block1) = at_block_one(3000);
    for t in 1..=2 {
        s.handle_timeout(Duration::from_secs(t));
        assert_eq!(sent(&mut s), block1);
    }
    let t2 = Duration::from_secs(2);
    s.handle_input(t2, &[ACK]);
    assert!(sent(&mut s).is_empty());
    s.handle_input(t2, &[ACK]);
    assert!(
        sent(&mut s).is_empty(),
        "block 2 went out before the last stray reply"
    );
    s.handle_input(t2, &[NAK]); // a stray NAK counts as a reply too
    assert_eq!(&sent(&mut s)[..3], &[STX, 2, 0xFD]);
}

#[test]
fn a_cancel_reports_the_bytes_acknowledged_before_it() {
    let cancelled = |s: &mut Sender| {
        s.handle_input(T0, &[CAN, CAN]);
        assert!(s.is_done());
        match events(s).last() {
            Some(Event::Failed(Error::Cancelled { at, total })) => (*at, *total),
            other => panic!("{other:?}"),
        }
    };
    // Before any data block: nothing.
    let mut s = with_tries(vec![1; 3000], 10);
    s.handle_input(T0, b"C");
    assert_eq!(cancelled(&mut s), (0, 3000));
    // While the replies to extra copies of block 1 are awaited: block 1's bytes.
    let (mut s, _) = at_block_one(3000);
    s.handle_timeout(Duration::from_secs(1));
    s.handle_input(Duration::from_secs(1), &[ACK]);
    assert_eq!(cancelled(&mut s), (1024, 3000));
    // After EOT, before and after the end-of-batch block: the whole file.
    for replies in [&[ACK][..], &[ACK, ACK], &[ACK, ACK, CRC_REQUEST]] {
        let mut s = with_tries(vec![1; 10], 10);
        s.handle_input(T0, b"C");
        s.handle_input(T0, &[ACK, CRC_REQUEST]);
        s.handle_input(T0, replies);
        assert_eq!(cancelled(&mut s), (10, 10), "after {replies:?}");
    }
    // A streaming sender waiting for its second window: the first window's bytes.
    let size = WINDOW + 10;
    let mut s = Sender::streaming("a", size, Config::default(), T0).unwrap();
    s.handle_input(T0, b"C");
    s.handle_input(T0, &[ACK, CRC_REQUEST]);
    s.provide(0, vec![1; WINDOW as usize], T0);
    for _ in 0..WINDOW / 1024 {
        s.handle_input(T0, &[ACK]);
    }
    assert_eq!(s.wants(), Some((WINDOW, 10)));
    assert_eq!(cancelled(&mut s), (WINDOW, size));
}

#[test]
fn a_file_name_must_fit_block_zero_without_a_nul() {
    let name = |len: usize| "n".repeat(len);
    assert!(Sender::new(&name(100), vec![1], Config::default(), T0).is_ok());
    for bad in [name(101), name(102), name(500), "fw\0.bin".into()] {
        assert_eq!(
            Sender::new(&bad, vec![1], Config::default(), T0).err(),
            Some(Error::BadName(bad.clone()))
        );
    }
}

#[test]
fn a_streaming_sender_ignores_a_window_of_the_wrong_length() {
    let mut s = Sender::streaming("a", 3000, Config::default(), T0).unwrap();
    s.handle_input(T0, b"C");
    s.handle_input(T0, &[ACK, CRC_REQUEST]);
    sent(&mut s);
    for len in [2999, 3001] {
        s.provide(0, vec![1; len], T0);
        assert!(sent(&mut s).is_empty(), "{len} bytes were taken for 3000");
        assert_eq!(s.wants(), Some((0, 3000)));
    }
    s.provide(1, vec![1; 3000], T0);
    assert!(
        sent(&mut s).is_empty(),
        "bytes at another offset were taken"
    );
    s.provide(0, vec![1; 3000], T0);
    assert_eq!(sent(&mut s).len(), 1029);
}
