//! AN3155 flasher (sota-link) against the simulated ROM bootloader, through the line model.

mod common;

use common::*;
use core::time::Duration;
use sota_link::an3155::{Config, Event, Flasher, Options};
use sota_sim::bootloader::{Bootloader, BootloaderConfig};
use sota_sim::line::{Faults, Line, LineConfig, Report};

fn flash(
    image: &[u8],
    boot: BootloaderConfig,
    options: Options,
    faults: Faults,
) -> (Vec<Event>, Bootloader, Report) {
    let mut flasher = Flasher::new(image, options, Config::default(), Duration::ZERO).unwrap();
    let mut bootloader = Bootloader::new(boot);
    let mut line = Line::new(LineConfig::e81(115_200), faults);
    let report = line.run(&mut flasher, &mut bootloader, Duration::from_secs(600));
    let events = std::iter::from_fn(|| flasher.poll_event()).collect();
    (events, bootloader, report)
}

/// An image that is one-third 0xFF, in whole blocks, as the benchmark uses.
fn third_erased(len: usize, seed: u64) -> Vec<u8> {
    let mut data = image(len, seed);
    for (i, chunk) in data.chunks_mut(256).enumerate() {
        if i % 3 == 1 {
            chunk.fill(0xFF);
        }
    }
    data
}

fn flashed(boot: &Bootloader, len: usize) -> Vec<u8> {
    boot.flash().contents()[..len].to_vec()
}

#[test]
fn clean_line_writes_verifies_and_goes() {
    for (len, extended) in [(1, false), (1023, true), (5000, false), (30_001, true)] {
        let data = third_erased(len, len as u64);
        let boot = BootloaderConfig {
            extended_erase: extended,
            ..BootloaderConfig::default()
        };
        let (events, bootloader, report) = flash(
            &data,
            boot,
            Options {
                go: true,
                ..Options::default()
            },
            Faults::default(),
        );
        assert!(report.finished, "{len}: {report:?}");
        assert!(
            matches!(events.last(), Some(Event::Finished { .. })),
            "{len}: {:?}",
            events.last()
        );
        assert!(flashed(&bootloader, len) == data, "{len}: flash differs");
        assert_eq!(bootloader.jumped_to(), Some(0x0800_0000));
        // the rest of the page after the image stays erased
        assert!(bootloader.flash().contents()[len.div_ceil(1024) * 1024..]
            .iter()
            .all(|&b| b == 0xFF));
    }
}

#[test]
fn erased_blocks_are_skipped() {
    let data = third_erased(30 * 256, 5);
    let (events, _, _) = flash(
        &data,
        BootloaderConfig::default(),
        Options::default(),
        Faults::default(),
    );
    assert_eq!(
        events.last(),
        Some(&Event::Finished {
            written: 20 * 256,
            skipped: 10 * 256
        })
    );
}

#[test]
fn an_image_that_does_not_fit_is_refused_before_erasing() {
    let data = image(200 * 1024, 1);
    let (events, bootloader, _) = flash(
        &data,
        BootloaderConfig::default(),
        Options::default(),
        Faults::default(),
    );
    let Some(Event::Failed(e)) = events.last() else {
        panic!("{events:?}")
    };
    assert!(e.to_string().contains("does not fit"), "{e}");
    assert_eq!(bootloader.generation(), 0, "nothing may be erased");
}

#[test]
fn faults_never_yield_a_wrong_flash_reported_as_success() {
    let mut ok = 0;
    for seed in 1..=10 {
        let data = third_erased(16 * 1024, seed);
        let (events, bootloader, report) = flash(
            &data,
            BootloaderConfig::default(),
            Options::default(),
            field_faults(seed, 8_000),
        );
        assert!(report.finished, "seed {seed}: {report:?}");
        match events.last() {
            Some(Event::Finished { .. }) => {
                assert!(
                    flashed(&bootloader, data.len()) == data,
                    "seed {seed}: success reported for a wrong flash"
                );
                ok += 1;
            }
            Some(Event::Failed(e)) => eprintln!("seed {seed}: {e}"),
            other => panic!("seed {seed}: {other:?}"),
        }
    }
    assert!(ok >= 8, "only {ok}/10 flashes survived the faults");
}

#[test]
fn a_disconnect_resumes_at_the_block_it_cut() {
    let data = image(32 * 1024, 9);
    let (_, _, clean) = flash(
        &data,
        BootloaderConfig::default(),
        Options::default(),
        Faults::default(),
    );
    let (events, bootloader, cut) = flash(
        &data,
        BootloaderConfig::default(),
        Options::default(),
        disconnect_only(16_000),
    );
    assert!(cut.dropped > 0);
    assert!(
        matches!(events.last(), Some(Event::Finished { .. })),
        "{:?}",
        events.last()
    );
    assert!(flashed(&bootloader, data.len()) == data);
    // Resuming repeats at most a few commands, not the 16 KB already written.
    assert!(
        cut.sent[0] < clean.sent[0] + 2_000,
        "clean {} B, with a disconnect {} B",
        clean.sent[0],
        cut.sent[0]
    );
}

#[test]
fn a_silent_mcu_gets_the_boot0_hint() {
    let data = image(1024, 1);
    let faults = Faults {
        disconnect: Some(sota_sim::line::Disconnect {
            after_bytes: 0,
            duration: Duration::from_secs(1000),
        }),
        ..Faults::default()
    };
    let (events, _, _) = flash(
        &data,
        BootloaderConfig::default(),
        Options::default(),
        faults,
    );
    let Some(Event::Failed(e)) = events.last() else {
        panic!("{events:?}")
    };
    assert!(e.to_string().contains("BOOT0"), "{e}");
}

#[test]
fn trusting_the_erase_skips_reading_erased_blocks() {
    let data = third_erased(30 * 256, 6);
    let (events, boot, all) = flash(
        &data,
        BootloaderConfig::default(),
        Options::default(),
        Faults::default(),
    );
    assert!(matches!(events.last(), Some(Event::Finished { .. })));
    assert!(flashed(&boot, data.len()) == data);
    let trusting = Options {
        verify_erased: false,
        ..Options::default()
    };
    let (events, boot, fewer) = flash(
        &data,
        BootloaderConfig::default(),
        trusting,
        Faults::default(),
    );
    assert!(matches!(events.last(), Some(Event::Finished { .. })));
    assert!(flashed(&boot, data.len()) == data);
    // ten erased blocks of 256 B are not read back
    assert!(
        all.sent[1] - fewer.sent[1] >= 10 * 256,
        "{} vs {}",
        all.sent[1],
        fewer.sent[1]
    );
}

#[test]
fn mass_erase_wipes_the_old_firmware_with_either_erase_command() {
    for extended in [false, true] {
        let data = third_erased(3000, 8);
        let boot = BootloaderConfig {
            extended_erase: extended,
            ..BootloaderConfig::default()
        };
        let mut flasher = Flasher::new(
            &data,
            Options {
                mass_erase: true,
                ..Options::default()
            },
            Config::default(),
            Duration::ZERO,
        )
        .unwrap();
        let mut bootloader = Bootloader::new(boot);
        bootloader.load(&vec![0x00; 128 * 1024]); // old firmware everywhere
        let report = Line::new(LineConfig::e81(115_200), Faults::default()).run(
            &mut flasher,
            &mut bootloader,
            Duration::from_secs(600),
        );
        assert!(report.finished);
        let events: Vec<Event> = std::iter::from_fn(|| flasher.poll_event()).collect();
        assert!(
            matches!(events.last(), Some(Event::Finished { .. })),
            "{events:?}"
        );
        assert!(flashed(&bootloader, data.len()) == data);
        assert!(
            bootloader.flash().contents()[data.len()..]
                .iter()
                .all(|&b| b == 0xFF),
            "a mass erase leaves nothing of the old firmware"
        );
    }
}
