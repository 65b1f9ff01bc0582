use super::super::*;
use super::*;

const T0: Duration = Duration::ZERO;

fn sent(f: &mut Flasher) -> Vec<u8> {
    let mut out = Vec::new();
    f.poll_transmit(&mut out);
    out
}

fn events(f: &mut Flasher) -> Vec<Event> {
    std::iter::from_fn(|| f.poll_event()).collect()
}

/// Answers Get (bootloader 2.2 with `erase`) and Get ID (`pid`).
fn identify(f: &mut Flasher, erase: u8, pid: u16) {
    assert_eq!(sent(f), vec![SYNC]);
    f.handle_input(T0, &[ACK]);
    assert_eq!(sent(f), command(cmd::GET).to_vec());
    f.handle_input(T0, &[ACK, 3, 0x22, 0x00, 0x02, erase, ACK]);
    assert_eq!(sent(f), command(cmd::GET_ID).to_vec());
    let [hi, lo] = pid.to_be_bytes();
    f.handle_input(T0, &[ACK, 1, hi, lo, ACK]);
}

#[test]
fn frames_follow_the_note() {
    assert_eq!(command(cmd::WRITE), [0x31, 0xCE]);
    assert_eq!(address(0x0800_0000), [0x08, 0, 0, 0, 0x08]);
    assert_eq!(read_length(256), [0xFF, 0x00]);
    assert_eq!(
        write_data(&[1, 2, 3, 4]),
        vec![3, 1, 2, 3, 4, 0x07] // 0x07 = 3 ^ 1 ^ 2 ^ 3 ^ 4
    );
    assert_eq!(extended_erase_pages(&[0x0102]), vec![0, 0, 1, 2, 3]);
    assert_eq!(erase_pages(&[5, 6]), vec![1, 5, 6, 1 ^ 5 ^ 6]);
}

#[test]
fn flashes_with_erase_write_skip_and_verify() {
    // block 0 data, block 1 all 0xFF (skipped), block 2 short tail padded to 4
    let mut image = vec![0xA5u8; 256];
    image.extend(vec![0xFF; 256]);
    image.extend([1, 2, 3, 4, 5]);
    let mut f = Flasher::new(&image, Options::default(), Config::default(), T0).unwrap();
    identify(&mut f, cmd::ERASE, 0x410);
    // pages 0 (blocks 0..4 of a 1 KiB page): one erase command for page 0
    assert_eq!(sent(&mut f), command(cmd::ERASE).to_vec());
    f.handle_input(T0, &[ACK]);
    assert_eq!(sent(&mut f), erase_pages(&[0]));
    f.handle_input(T0, &[ACK]);
    // write block 0
    assert_eq!(sent(&mut f), command(cmd::WRITE).to_vec());
    f.handle_input(T0, &[ACK]);
    assert_eq!(sent(&mut f), address(0x0800_0000).to_vec());
    f.handle_input(T0, &[ACK]);
    assert_eq!(sent(&mut f), write_data(&image[..256]));
    f.handle_input(T0, &[ACK]);
    // block 1 is skipped; block 2 is padded with 0xFF to 8 bytes
    sent(&mut f);
    f.handle_input(T0, &[ACK]);
    assert_eq!(sent(&mut f), address(0x0800_0200).to_vec());
    f.handle_input(T0, &[ACK]);
    assert_eq!(sent(&mut f), write_data(&[1, 2, 3, 4, 5, 0xFF, 0xFF, 0xFF]));
    f.handle_input(T0, &[ACK]);
    // verify all three blocks
    let padded: Vec<u8> = image.iter().copied().chain([0xFF; 3]).collect();
    for (i, chunk) in padded.chunks(256).enumerate() {
        assert_eq!(sent(&mut f), command(cmd::READ).to_vec());
        f.handle_input(T0, &[ACK]);
        assert_eq!(sent(&mut f), address(0x0800_0000 + 256 * i as u32).to_vec());
        f.handle_input(T0, &[ACK]);
        assert_eq!(sent(&mut f), read_length(chunk.len()).to_vec());
        f.handle_input(T0, &[ACK]);
        f.handle_input(T0, chunk);
    }
    assert!(f.is_done());
    let ev = events(&mut f);
    assert_eq!(
        ev.last(),
        Some(&Event::Finished {
            written: 264,
            skipped: 256
        })
    );
    assert!(matches!(
        ev[0],
        Event::Identified {
            bootloader: 0x22,
            pid: 0x410,
            ..
        }
    ));
}

#[test]
fn a_read_back_mismatch_erases_and_rewrites_the_page() {
    let image = vec![0x11u8; 4];
    let mut f = Flasher::new(&image, Options::default(), Config::default(), T0).unwrap();
    identify(&mut f, cmd::EXTENDED_ERASE, 0x410);
    let exchange = |f: &mut Flasher, reply: &[u8]| {
        let out = sent(f);
        f.handle_input(T0, reply);
        out
    };
    assert_eq!(
        exchange(&mut f, &[ACK]),
        command(cmd::EXTENDED_ERASE).to_vec()
    );
    assert_eq!(exchange(&mut f, &[ACK]), extended_erase_pages(&[0]));
    for _ in 0..3 {
        exchange(&mut f, &[ACK]); // write
    }
    exchange(&mut f, &[ACK]);
    exchange(&mut f, &[ACK]);
    exchange(&mut f, &[ACK, 0x11, 0x10, 0x11, 0x11]); // a bad read-back ...
                                                      // ... is read again before anything is erased
    assert_eq!(exchange(&mut f, &[ACK]), command(cmd::READ).to_vec());
    exchange(&mut f, &[ACK]);
    exchange(&mut f, &[ACK, 0x11, 0x10, 0x11, 0x11]); // the same again: the flash is wrong
    assert!(!f.is_done());
    assert_eq!(
        exchange(&mut f, &[ACK]),
        command(cmd::EXTENDED_ERASE).to_vec()
    );
}

#[test]
fn nack_to_sync_means_already_synced_and_silence_is_retried() {
    let mut f = Flasher::new(&[0; 4], Options::default(), Config::default(), T0).unwrap();
    assert_eq!(sent(&mut f), vec![SYNC]);
    f.handle_timeout(Duration::from_secs(1));
    assert_eq!(sent(&mut f), vec![SYNC]);
    f.handle_input(Duration::from_secs(1), &[NACK]);
    assert_eq!(sent(&mut f), command(cmd::GET).to_vec());
}

#[test]
fn no_answer_to_sync_names_boot0() {
    let mut f = Flasher::new(&[0; 4], Options::default(), Config::default(), T0).unwrap();
    for t in 1..=5 {
        f.handle_timeout(Duration::from_secs(t));
    }
    let ev = events(&mut f);
    let Some(Event::Failed(e)) = ev.last() else {
        panic!("{ev:?}")
    };
    assert!(e.to_string().contains("BOOT0"), "{e}");
}

#[test]
fn repeated_nack_fails_the_command_with_its_address() {
    let mut f = Flasher::new(&[0; 4], Options::default(), Config::default(), T0).unwrap();
    identify(&mut f, cmd::ERASE, 0x410);
    assert_eq!(sent(&mut f), command(cmd::ERASE).to_vec());
    f.handle_input(T0, &[NACK]);
    for i in 1..5u64 {
        let now = Duration::from_millis(100 * i);
        f.handle_timeout(now); // settled: realign with a lone 0x7F
        assert_eq!(sent(&mut f), vec![SYNC]);
        f.handle_input(now, &[NACK]); // aligned: the command again
        assert_eq!(sent(&mut f), command(cmd::ERASE).to_vec());
        f.handle_input(now, &[NACK]);
    }
    let ev = events(&mut f);
    match ev.last() {
        Some(Event::Failed(Error::CommandFailed {
            what,
            tries: 5,
            last,
        })) => {
            assert!(what.starts_with("erasing pages 0"), "{what}");
            assert_eq!(last, "NACK");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_chip_and_misfit_images_are_refused() {
    let mut f = Flasher::new(&[0; 4], Options::default(), Config::default(), T0).unwrap();
    identify(&mut f, cmd::ERASE, 0x999);
    assert_eq!(
        events(&mut f).last(),
        Some(&Event::Failed(Error::UnknownChip(0x999)))
    );
    let mut f = Flasher::new(
        &vec![0; 129 * 1024],
        Options::default(),
        Config::default(),
        T0,
    )
    .unwrap();
    identify(&mut f, cmd::ERASE, 0x410);
    assert!(matches!(
        events(&mut f).last(),
        Some(Event::Failed(Error::DoesNotFit { .. }))
    ));
    assert!(matches!(
        Flasher::new(
            &[0; 4],
            Options {
                address: 0x0800_0002,
                ..Options::default()
            },
            Config::default(),
            T0
        ),
        Err(Error::Unaligned(_))
    ));
}

#[test]
fn a_noisy_read_back_that_reads_right_the_second_time_is_accepted() {
    let image = vec![0x11u8; 4];
    let mut f = Flasher::new(&image, Options::default(), Config::default(), T0).unwrap();
    identify(&mut f, cmd::ERASE, 0x410);
    for _ in 0..5 {
        sent(&mut f);
        f.handle_input(T0, &[ACK]); // erase (2) and write (3)
    }
    for reply in [[ACK, 0x11, 0x91, 0x11, 0x11], [ACK, 0x11, 0x11, 0x11, 0x11]] {
        sent(&mut f);
        f.handle_input(T0, &[ACK]);
        sent(&mut f);
        f.handle_input(T0, &[ACK]);
        sent(&mut f);
        f.handle_input(T0, &reply);
    }
    assert_eq!(
        events(&mut f).last(),
        Some(&Event::Finished {
            written: 4,
            skipped: 0
        })
    );
}

#[test]
fn a_zero_page_size_is_refused_before_anything_is_sent() {
    let options = Options {
        page_size: Some(0),
        ..Options::default()
    };
    let error = Flasher::new(&[0; 4], options, Config::default(), T0)
        .err()
        .expect("page size 0 must be refused");
    assert_eq!(error, Error::ZeroPageSize);
    assert!(error.to_string().contains("--page-size"), "{error}");
}

/// An unknown chip with 1-byte pages: the image at `offset` into flash covers pages
/// `offset..offset + len`.
fn flasher_with_byte_pages(offset: u32, len: usize) -> Flasher {
    let options = Options {
        address: 0x0800_0000 + offset,
        page_size: Some(1),
        ..Options::default()
    };
    let mut f = Flasher::new(&vec![0x5A; len], options, Config::default(), T0).unwrap();
    identify(&mut f, cmd::EXTENDED_ERASE, 0x999);
    f
}

#[test]
fn extended_erase_pages_stop_below_the_special_codes() {
    // Pages 0xFFE0..=0xFFEF are ordinary pages.
    let mut f = flasher_with_byte_pages(0xFFE0, 16);
    assert_eq!(sent(&mut f), command(cmd::EXTENDED_ERASE).to_vec());
    f.handle_input(T0, &[ACK]);
    let pages: Vec<u16> = (0xFFE0..=0xFFEF).collect();
    assert_eq!(sent(&mut f), extended_erase_pages(&pages));
    // 0xFFF0 and up are bank/mass erase codes, and 0x10000 would wrap to page 0: refused.
    for (offset, first_bad) in [(0xFFE0, 0xFFF0), (0xFFFC, 0xFFFC), (0x1_0000, 0x1_0000)] {
        let mut f = flasher_with_byte_pages(offset, 32);
        let ev = events(&mut f);
        match ev.last() {
            Some(Event::Failed(e @ Error::PageOutOfRange { page, max, .. })) => {
                assert_eq!((*page, *max), (first_bad, 0xFFEF));
                assert!(e.to_string().contains("Extended Erase (0x44)"), "{e}");
            }
            other => panic!("offset 0x{offset:X}: {other:?}"),
        }
        assert!(f.is_done());
        assert_eq!(sent(&mut f), Vec::<u8>::new(), "no erase may be sent");
    }
}

#[test]
fn erase_pages_above_255_are_refused() {
    let options = Options {
        address: 0x0800_0000 + 0xFC,
        page_size: Some(1),
        ..Options::default()
    };
    let mut f = Flasher::new(&[0x5A; 8], options, Config::default(), T0).unwrap();
    identify(&mut f, cmd::ERASE, 0x999);
    assert_eq!(
        events(&mut f).last(),
        Some(&Event::Failed(Error::PageOutOfRange {
            page: 256,
            command: "Erase (0x43)",
            max: 255
        }))
    );
}
