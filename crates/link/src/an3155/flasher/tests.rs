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

/// ACKs the erase command and returns the page-list frame that follows it.
fn erase_list(f: &mut Flasher, code: u8) -> Vec<u8> {
    assert_eq!(sent(f), command(code).to_vec());
    f.handle_input(T0, &[ACK]);
    sent(f)
}

#[test]
fn mass_erase_sends_the_whole_flash_code_of_the_offered_erase_command() {
    let mass = Options {
        mass_erase: true,
        ..Options::default()
    };
    for (erase, whole_flash) in [
        (cmd::ERASE, vec![0xFF, 0x00]),
        (cmd::EXTENDED_ERASE, vec![0xFF, 0xFF, 0x00]),
    ] {
        // 3000 bytes over three 1 KiB pages: still one erase of everything.
        let mut f = Flasher::new(&[0x11; 3000], mass.clone(), Config::default(), T0).unwrap();
        identify(&mut f, erase, 0x410);
        assert_eq!(
            erase_list(&mut f, erase),
            whole_flash,
            "erase 0x{erase:02X}"
        );
        // A mass erase of a large part takes long: it gets its own wait.
        assert_eq!(f.poll_timeout(), Some(Config::default().mass_erase_timeout));
        f.handle_input(T0, &[ACK]);
        assert_eq!(sent(&mut f), command(cmd::WRITE).to_vec());
        let ev = events(&mut f);
        assert!(
            ev.ends_with(&[
                Event::Progress(Progress {
                    phase: Phase::Erasing,
                    done: 0,
                    total: 1
                }),
                Event::Progress(Progress {
                    phase: Phase::Erasing,
                    done: 1,
                    total: 1
                }),
                Event::Progress(Progress {
                    phase: Phase::Writing,
                    done: 0,
                    total: 3000
                }),
            ]),
            "{ev:?}"
        );
    }
}

#[test]
fn mass_erase_needs_no_page_size_for_an_unknown_chip() {
    let mass = Options {
        mass_erase: true,
        ..Options::default()
    };
    // Its flash is taken to reach to the end of the address space.
    let mut f = Flasher::new(&[0x11; 3000], mass, Config::default(), T0).unwrap();
    identify(&mut f, cmd::EXTENDED_ERASE, 0x999);
    match events(&mut f).first() {
        Some(Event::Identified {
            pid: 0x999, chip, ..
        }) => {
            assert_eq!(chip.name, "STM32 (mass erase)")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        erase_list(&mut f, cmd::EXTENDED_ERASE),
        vec![0xFF, 0xFF, 0x00]
    );
}

#[test]
fn page_erase_covers_exactly_the_pages_the_image_touches() {
    // 1 KiB pages (0x410). An image that ends on a page boundary erases no page after it;
    // one byte more (padded to a word) needs the next page too.
    for (address, len, pages) in [
        (0x0800_0000, 4, vec![0]),
        (0x0800_0000, 1024, vec![0]),
        (0x0800_0000, 1025, vec![0, 1]),
        (0x0800_0000, 2048, vec![0, 1]),
        (0x0800_0000, 2049, vec![0, 1, 2]),
        (0x0800_0400, 1024, vec![1]),
        (0x0800_03FC, 8, vec![0, 1]),
    ] {
        let options = Options {
            address,
            ..Options::default()
        };
        let mut f = Flasher::new(&vec![0x5A; len], options, Config::default(), T0).unwrap();
        identify(&mut f, cmd::ERASE, 0x410);
        assert_eq!(
            erase_list(&mut f, cmd::ERASE),
            erase_pages(&pages),
            "{len} B at 0x{address:08X}"
        );
        f.handle_input(T0, &[ACK]);
        let ev = events(&mut f);
        assert!(
            ev.contains(&Event::Progress(Progress {
                phase: Phase::Erasing,
                done: pages.len() as u64,
                total: pages.len() as u64
            })),
            "{len} B at 0x{address:08X}: {ev:?}"
        );
    }
}

#[test]
fn an_image_may_end_exactly_at_the_end_of_flash_but_not_past_it() {
    // 0x410: 128 KiB of flash from 0x0800_0000, so the last page starts at 0x0801_FC00.
    let last_page = Options {
        address: 0x0801_FC00,
        ..Options::default()
    };
    let mut f = Flasher::new(&[0x5A; 1024], last_page.clone(), Config::default(), T0).unwrap();
    identify(&mut f, cmd::ERASE, 0x410);
    assert_eq!(erase_list(&mut f, cmd::ERASE), erase_pages(&[127]));
    let mut f = Flasher::new(&[0x5A; 1025], last_page, Config::default(), T0).unwrap();
    identify(&mut f, cmd::ERASE, 0x410);
    assert_eq!(
        events(&mut f).last(),
        Some(&Event::Failed(Error::DoesNotFit {
            start: 0x0801_FC00,
            end: 0x0802_0004,
            chip: "STM32F10xxx medium-density".into(),
            flash_start: 0x0800_0000,
            flash_end: 0x0802_0000
        }))
    );
    assert!(sent(&mut f).is_empty(), "nothing may be erased");
}

#[test]
fn a_silent_bootloader_is_realigned_with_three_lone_syncs_then_asked_again() {
    let mut f = Flasher::new(&[0x11; 4], Options::default(), Config::default(), T0).unwrap();
    identify(&mut f, cmd::ERASE, 0x410);
    assert_eq!(sent(&mut f), command(cmd::ERASE).to_vec());
    // No answer: a lone 0x7F goes out at once (the bootloader is as idle as it will get),
    // then two more, one a second; then the command itself is tried again.
    for t in 1..=3 {
        f.handle_timeout(Duration::from_secs(t));
        assert_eq!(sent(&mut f), vec![SYNC], "second {t}");
        assert_eq!(f.poll_timeout(), Some(Duration::from_secs(t + 1)));
    }
    f.handle_timeout(Duration::from_secs(4));
    assert_eq!(sent(&mut f), command(cmd::ERASE).to_vec());
    assert!(!f.is_done());
}

#[test]
fn a_realigning_sync_is_answered_by_ack_or_nack_and_nothing_else() {
    let mut f = Flasher::new(&[0x11; 4], Options::default(), Config::default(), T0).unwrap();
    identify(&mut f, cmd::ERASE, 0x410);
    assert_eq!(sent(&mut f), command(cmd::ERASE).to_vec());
    f.handle_timeout(Duration::from_secs(1));
    assert_eq!(sent(&mut f), vec![SYNC]);
    // Line noise is not an answer.
    f.handle_input(Duration::from_secs(1), &[0x00, 0x55]);
    assert!(sent(&mut f).is_empty());
    // An ACK (the bootloader had reset and took 0x7F for its sync) realigns, as a NACK does.
    f.handle_input(Duration::from_secs(1), &[ACK]);
    assert_eq!(sent(&mut f), command(cmd::ERASE).to_vec());
}

/// Answers one Read Memory with `data`, checking the frames the flasher sends.
fn read_back(f: &mut Flasher, data: &[u8]) {
    assert_eq!(sent(f), command(cmd::READ).to_vec());
    f.handle_input(T0, &[ACK]);
    assert_eq!(sent(f).len(), 5, "an address frame");
    f.handle_input(T0, &[ACK]);
    assert_eq!(sent(f), read_length(data.len()).to_vec());
    f.handle_input(T0, &[ACK]);
    f.handle_input(T0, data);
}

#[test]
fn a_read_back_that_differs_differently_each_time_is_a_mismatch_after_six_reads() {
    let mut f = Flasher::new(&[0x11; 4], Options::default(), Config::default(), T0).unwrap();
    identify(&mut f, cmd::ERASE, 0x410);
    for _ in 0..5 {
        sent(&mut f);
        f.handle_input(T0, &[ACK]); // erase (2) and write (3)
    }
    // Noise that never repeats itself: no two reads agree, so none confirms the other.
    for read in 1..=6u8 {
        read_back(&mut f, &[0x11, 0x11, 0x11, 0x11 ^ read]);
        assert!(!f.is_done(), "read {read}");
    }
    // Six reads are the limit: the block is taken as wrong, and its page erased again.
    assert_eq!(sent(&mut f), command(cmd::ERASE).to_vec());
}

#[test]
fn a_page_size_given_for_a_known_chip_replaces_the_table_s() {
    // 0x410 has 1 KiB pages; told 2 KiB, 2048 bytes are one page.
    let options = Options {
        page_size: Some(2048),
        ..Options::default()
    };
    let mut f = Flasher::new(&[0x5A; 2048], options, Config::default(), T0).unwrap();
    identify(&mut f, cmd::ERASE, 0x410);
    match events(&mut f).first() {
        Some(Event::Identified { chip, .. }) => {
            assert_eq!(
                (chip.name, chip.page_size),
                ("STM32F10xxx medium-density", 2048)
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(erase_list(&mut f, cmd::ERASE), erase_pages(&[0]));
}

#[test]
fn the_progress_of_each_phase_counts_its_own_bytes() {
    // 600 bytes: blocks of 256, 256 and 88 bytes, the second all 0xFF (not written).
    let mut image = vec![0x5A; 600];
    image[256..512].fill(0xFF);
    let mut f = Flasher::new(&image, Options::default(), Config::default(), T0).unwrap();
    identify(&mut f, cmd::ERASE, 0x410);
    for _ in 0..2 + 3 * 2 {
        sent(&mut f);
        f.handle_input(T0, &[ACK]); // erase (2 frames), two writes (3 frames each)
    }
    for chunk in image.chunks(256) {
        read_back(&mut f, chunk);
    }
    let progress: Vec<(Phase, u64, u64)> = events(&mut f)
        .into_iter()
        .filter_map(|e| match e {
            Event::Progress(p) => Some((p.phase, p.done, p.total)),
            _ => None,
        })
        .collect();
    use Phase::*;
    assert_eq!(
        progress,
        [
            (Erasing, 0, 1),
            (Erasing, 1, 1),
            (Writing, 0, 344),
            (Writing, 256, 344),
            (Writing, 344, 344),
            (Verifying, 0, 600),
            (Verifying, 256, 600),
            (Verifying, 512, 600),
            (Verifying, 600, 600),
        ]
    );
    assert!(f.is_done());
}

/// Flashes `len` bytes at `at` on 1 KiB pages (0x410) with every read of block `bad`
/// wrong (the same way), then checks that the repair erases `repaired_pages` and rewrites
/// and reads back the blocks at `rewritten` (offsets from `at`), and only those.
fn repair(at: u32, len: usize, bad: usize, pages: &[u8], repaired_pages: &[u8], rewritten: &[u32]) {
    let image = vec![0x5A; len];
    let options = Options {
        address: at,
        ..Options::default()
    };
    let mut f = Flasher::new(&image, options, Config::default(), T0).unwrap();
    identify(&mut f, cmd::ERASE, 0x410);
    assert_eq!(erase_list(&mut f, cmd::ERASE), erase_pages(pages));
    f.handle_input(T0, &[ACK]);
    let blocks = len.div_ceil(256);
    for _ in 0..blocks * 3 {
        sent(&mut f);
        f.handle_input(T0, &[ACK]); // a write is three frames
    }
    for (block, chunk) in image.chunks(256).enumerate() {
        if block == bad {
            let wrong = [&[0x00][..], &chunk[1..]].concat();
            read_back(&mut f, &wrong);
            read_back(&mut f, &wrong); // the same again: the flash is wrong
        } else {
            read_back(&mut f, chunk);
        }
    }
    assert_eq!(erase_list(&mut f, cmd::ERASE), erase_pages(repaired_pages));
    f.handle_input(T0, &[ACK]);
    let mut addresses = Vec::new();
    for _ in rewritten {
        assert_eq!(sent(&mut f), command(cmd::WRITE).to_vec());
        f.handle_input(T0, &[ACK]);
        addresses.push(sent(&mut f));
        f.handle_input(T0, &[ACK]);
        sent(&mut f);
        f.handle_input(T0, &[ACK]);
    }
    let want: Vec<Vec<u8>> = rewritten.iter().map(|o| address(at + o).to_vec()).collect();
    assert_eq!(addresses, want);
    for _ in rewritten {
        read_back(&mut f, &[0x5A; 256]);
    }
    assert_eq!(
        events(&mut f).last(),
        Some(&Event::Finished {
            written: (len + 256 * rewritten.len()) as u64,
            skipped: 0
        })
    );
}

#[test]
fn a_repair_rewrites_the_blocks_of_the_erased_page_and_no_others() {
    // Block 4 is the first of page 1; block 3 ends exactly where page 1 starts and is left
    // alone.
    repair(
        0x0800_0000,
        2048,
        4,
        &[0, 1],
        &[1],
        &[0x400, 0x500, 0x600, 0x700],
    );
    // A block that straddles pages 0 and 1 is rewritten when page 1 alone is erased, since
    // its tail was wiped.
    repair(0x0800_0380, 512, 1, &[0, 1], &[1], &[0, 0x100]);
}

#[test]
fn flash_that_stays_wrong_is_repaired_three_times_then_reported() {
    let mut f = Flasher::new(&[0x11; 4], Options::default(), Config::default(), T0).unwrap();
    identify(&mut f, cmd::ERASE, 0x410);
    // The first write and three erase-and-rewrite rounds; each reads back wrong, twice.
    for round in 0..4 {
        assert_eq!(
            erase_list(&mut f, cmd::ERASE),
            erase_pages(&[0]),
            "round {round}"
        );
        f.handle_input(T0, &[ACK]);
        for _ in 0..3 {
            sent(&mut f);
            f.handle_input(T0, &[ACK]);
        }
        assert!(!f.is_done(), "gave up before round {round} was read back");
        read_back(&mut f, &[0x11, 0x11, 0x11, 0x00]);
        read_back(&mut f, &[0x11, 0x11, 0x11, 0x00]);
    }
    assert!(f.is_done());
    assert!(sent(&mut f).is_empty(), "no fifth round");
    assert_eq!(
        events(&mut f).last(),
        Some(&Event::Failed(Error::VerifyFailed(0x0800_0000)))
    );
}

#[test]
fn a_wake_up_before_the_deadline_changes_nothing() {
    let mut f = Flasher::new(&[0x11; 4], Options::default(), Config::default(), T0).unwrap();
    assert_eq!(sent(&mut f), vec![SYNC]);
    f.handle_timeout(Duration::from_millis(999));
    assert!(sent(&mut f).is_empty(), "the sync was resent early");
    f.handle_input(Duration::from_millis(999), &[ACK]);
    assert_eq!(sent(&mut f), command(cmd::GET).to_vec());
    assert_eq!(f.poll_timeout(), Some(Duration::from_millis(1999)));
    f.handle_timeout(Duration::from_millis(1998));
    assert!(sent(&mut f).is_empty(), "Get was given up early");
    assert!(events(&mut f).is_empty());
}
