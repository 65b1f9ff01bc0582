//! The AT SOTA module (sota-link, serving a file) against the simulated MCU, through the line.

mod common;

use common::*;
use core::time::Duration;
use sota_engine::Digester;
use sota_link::at_sota::{Config, Event, FileServer, FirmwareInfo, Module, Offer, Plan};
use sota_link::Endpoint;
use sota_sim::at_mcu::{AtMcu, McuComponent, McuConfig, McuOutcome};
use sota_sim::line::{Faults, Line, LineConfig, Report};

fn server(firmware: &[u8], piece_size: u64) -> FileServer {
    let d = Digester::digest(firmware);
    let info = FirmwareInfo {
        size: firmware.len() as u64,
        md5: d.md5.clone(),
        crc32: d.crc32_value(),
        sha256: d.sha256.clone(),
    };
    let plan = Plan {
        component: "STM32".into(),
        source_version: String::new(),
        target_version: "2_0_0".into(),
        min_battery: 30,
        min_signal: -113,
        use_space: firmware.len() as u64,
    };
    FileServer::new(
        Module::new(Config::default()),
        plan,
        info,
        firmware.to_vec(),
        piece_size,
    )
}

fn upgrade(
    firmware: &[u8],
    piece_size: u64,
    mcu: McuConfig,
    faults: Faults,
) -> (FileServer, AtMcu, Report) {
    let mut module = server(firmware, piece_size);
    let mut mcu = AtMcu::new(mcu, Duration::ZERO);
    let mut line = Line::new(LineConfig::n81(115_200), faults);
    let report = line.run(&mut module, &mut mcu, Duration::from_secs(900));
    (module, mcu, report)
}

fn module_events(m: &mut FileServer) -> Vec<Event> {
    std::iter::from_fn(|| m.poll_event()).collect()
}

#[test]
fn one_piece_and_many_pieces_arrive_byte_exact() {
    for (len, piece) in [
        (1, 1 << 20),
        (1024, 1 << 20),
        (10_000, 1 << 20),
        (10_000, 4096),
        (10_001, 1000),
    ] {
        let firmware = image(len, len as u64);
        let (mut module, mcu, report) =
            upgrade(&firmware, piece, McuConfig::default(), Faults::default());
        assert!(report.finished, "{len}/{piece}: {report:?}");
        assert_eq!(
            mcu.outcome(),
            Some(&McuOutcome::Updated {
                version: "2_0_0".into()
            }),
            "{len}/{piece}"
        );
        assert!(mcu.flash() == firmware, "{len}/{piece}: flash differs");
        let events = module_events(&mut module);
        assert_eq!(
            events.last(),
            Some(&Event::Succeeded {
                version: "2_0_0".into()
            })
        );
        let pieces = events
            .iter()
            .filter(|e| matches!(e, Event::PieceRequested { .. }))
            .count() as u64;
        assert_eq!(pieces, (len as u64).div_ceil(piece) - 1, "{len}/{piece}");
    }
}

#[test]
fn the_mcu_refuses_a_plan_its_battery_cannot_carry() {
    let firmware = image(100, 1);
    let mcu = McuConfig {
        battery: 10,
        ..McuConfig::default()
    };
    let mut module = server(&firmware, 1 << 20);
    let mut sim = AtMcu::new(mcu, Duration::ZERO);
    let mut line = Line::new(LineConfig::n81(115_200), Faults::default());
    // The module never finishes on a refusal: run until the MCU is done.
    line.run(&mut sim, &mut module, Duration::from_secs(60));
    assert!(
        matches!(sim.outcome(), Some(McuOutcome::Refused { reason }) if reason.contains("battery"))
    );
    assert!(module_events(&mut module).contains(&Event::Refused {
        component: "STM32".into()
    }));
}

#[test]
fn a_disconnect_resumes_reading_at_the_last_confirmed_offset() {
    let firmware = image(24_000, 4);
    let (_, _, clean) = upgrade(&firmware, 8192, McuConfig::default(), Faults::default());
    // Cut the line while the MCU sends its 12th read request (≈ 30 bytes each).
    let (_, mcu, cut) = upgrade(&firmware, 8192, McuConfig::default(), disconnect_only(400));
    assert!(cut.dropped > 0);
    assert_eq!(
        mcu.outcome(),
        Some(&McuOutcome::Updated {
            version: "2_0_0".into()
        })
    );
    assert!(mcu.flash() == firmware);
    // Only the read in flight is repeated, not the file.
    assert!(
        cut.sent[1] < clean.sent[1] + 3 * 1100,
        "clean {} B, with a disconnect {} B",
        clean.sent[1],
        cut.sent[1]
    );
}

#[test]
fn faults_never_install_a_wrong_image() {
    // AT+QIOTOTARD carries no checksum: at 1e-4 bit errors most reads of a large file are
    // damaged, and only the MCU's MD5/CRC32/SHA-256 check stands between them and flash.
    let mut updated = 0;
    for seed in 1..=8 {
        let firmware = image(600, seed);
        let (mut module, mcu, report) = upgrade(
            &firmware,
            1 << 20,
            McuConfig::default(),
            field_faults(seed, 150),
        );
        assert!(report.finished, "seed {seed}: {report:?}");
        match mcu.outcome() {
            Some(McuOutcome::Updated { .. }) => {
                assert!(
                    mcu.flash() == firmware,
                    "seed {seed}: a wrong image was installed"
                );
                updated += 1;
            }
            Some(McuOutcome::Failed { reason }) => {
                // A version report damaged on the line makes the module judge 10706 after a
                // good install (as a real module would); never may a wrong image be in flash.
                assert!(
                    mcu.flash().is_empty() || mcu.flash() == firmware,
                    "seed {seed}: failed with a wrong image in flash"
                );
                eprintln!("seed {seed}: {reason}");
            }
            other => panic!("seed {seed}: {other:?}"),
        }
        assert!(matches!(
            module_events(&mut module).last(),
            Some(Event::Succeeded { .. } | Event::Failed(_))
        ));
    }
    assert!(updated >= 5, "only {updated}/8 upgrades survived");
}

fn offer(component: &str, target: &str, firmware: &[u8]) -> Offer {
    let d = Digester::digest(firmware);
    Offer {
        plan: Plan {
            component: component.into(),
            source_version: String::new(),
            target_version: target.into(),
            min_battery: 30,
            min_signal: -113,
            use_space: firmware.len() as u64,
        },
        info: FirmwareInfo {
            size: firmware.len() as u64,
            md5: d.md5.clone(),
            crc32: d.crc32_value(),
            sha256: d.sha256.clone(),
        },
        firmware: firmware.to_vec(),
    }
}

fn two_components() -> McuConfig {
    McuConfig {
        components: vec![
            McuComponent::new("STM32", "1_0_0"),
            McuComponent::new("BLE", "0_9_0"),
        ],
        ..McuConfig::default()
    }
}

#[test]
fn multi_plan_upgrades_two_components_one_after_another() {
    let stm32 = image(9_000, 21);
    let ble = image(5_000, 22);
    let mut module = FileServer::with_plans(
        Module::new(Config::default()),
        vec![offer("STM32", "2_0_0", &stm32), offer("BLE", "1_0_0", &ble)],
        4096,
    );
    assert!(!module.is_done(), "two plans to go");
    let mut mcu = AtMcu::new(two_components(), Duration::ZERO);
    let mut line = Line::new(LineConfig::n81(115_200), Faults::default());
    let report = line.run(&mut module, &mut mcu, Duration::from_secs(900));
    assert!(report.finished, "{report:?}");
    assert!(module.is_done() && module.module().plan_ended());
    let idle = FileServer::with_plans(Module::new(Config::default()), Vec::new(), 4096);
    assert!(idle.is_done(), "no plan: nothing to wait for");
    assert_eq!(
        mcu.results(),
        &[
            (
                "STM32".to_string(),
                McuOutcome::Updated {
                    version: "2_0_0".into()
                }
            ),
            (
                "BLE".to_string(),
                McuOutcome::Updated {
                    version: "1_0_0".into()
                }
            ),
        ]
    );
    assert!(mcu.flash_of("STM32") == Some(&stm32[..]));
    assert!(mcu.flash_of("BLE") == Some(&ble[..]));
    assert_eq!(module.module().version_of("BLE"), Some("1_0_0"));
    let events = module_events(&mut module);
    let ends: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::Succeeded { .. } | Event::Failed(_)))
        .collect();
    assert_eq!(ends.len(), 2, "{events:?}");
}

#[test]
fn multi_plan_goes_on_after_a_refused_and_an_unknown_component() {
    let stm32 = image(3_000, 31);
    let ble = image(2_000, 32);
    let mut mcu_config = two_components();
    // The BLE chip has no room for its image: the MCU refuses that plan only.
    mcu_config.components[1].free_space = 1_000;
    let mut module = FileServer::with_plans(
        Module::new(Config::default()),
        vec![
            offer("BLE", "1_0_0", &ble),
            offer("WIFI", "5_0_0", &ble),
            offer("STM32", "2_0_0", &stm32),
        ],
        1 << 20,
    );
    let mut mcu = AtMcu::new(mcu_config, Duration::ZERO);
    let mut line = Line::new(LineConfig::n81(115_200), Faults::default());
    let report = line.run(&mut module, &mut mcu, Duration::from_secs(900));
    assert!(report.finished, "{report:?}");
    let results = mcu.results();
    assert_eq!(results.len(), 3, "{results:?}");
    assert!(
        matches!(&results[0], (c, McuOutcome::Refused { reason }) if c == "BLE" && reason.contains("free space"))
    );
    assert!(
        matches!(&results[1], (c, McuOutcome::Refused { reason }) if c == "WIFI" && reason.contains("no component"))
    );
    assert_eq!(
        results[2],
        (
            "STM32".to_string(),
            McuOutcome::Updated {
                version: "2_0_0".into()
            }
        )
    );
    assert!(
        mcu.flash_of("BLE") == Some(&[][..]),
        "the refused BLE image was installed"
    );
    assert_eq!(mcu.version_of("BLE"), Some("0_9_0"));
    assert!(mcu.flash_of("STM32") == Some(&stm32[..]));
}

#[test]
fn multi_plan_through_faults_never_installs_a_wrong_image() {
    for seed in 1..=4 {
        let stm32 = image(700, 40 + seed);
        let ble = image(500, 50 + seed);
        let mut module = FileServer::with_plans(
            Module::new(Config::default()),
            vec![offer("STM32", "2_0_0", &stm32), offer("BLE", "1_0_0", &ble)],
            1 << 20,
        );
        let mut mcu = AtMcu::new(two_components(), Duration::ZERO);
        let mut line = Line::new(LineConfig::n81(115_200), field_faults(seed, 300));
        let report = line.run(&mut module, &mut mcu, Duration::from_secs(3600));
        assert!(report.finished, "seed {seed}: {report:?}");
        for (name, want) in [("STM32", &stm32), ("BLE", &ble)] {
            let flash = mcu.flash_of(name).unwrap();
            assert!(
                flash.is_empty() || flash == &want[..],
                "seed {seed}: a wrong {name} image was installed"
            );
        }
        for (name, outcome) in mcu.results() {
            if let McuOutcome::Updated { .. } = outcome {
                assert!(
                    !mcu.flash_of(name).unwrap().is_empty(),
                    "seed {seed}: {name}"
                );
            }
        }
    }
}
