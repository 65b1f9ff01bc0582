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
