//! One test per transition of the upgrade session, including every timeout and refusal.

mod support;

use sota_engine::session::{DigestKind, StateKind};
use sota_engine::*;
use support::{good_readings, image, info_for, plan};

const T: u64 = support::T0;

fn stm() -> Vec<Component> {
    vec![Component {
        identity: "STM32".into(),
        version: "1_0_0".into(),
    }]
}

struct S {
    s: Session,
    now: u64,
}

impl S {
    fn new() -> Self {
        let config = Config {
            piece_size: 100,
            ..Config::default()
        };
        S {
            s: Session::new(config, stm()),
            now: T,
        }
    }
    fn ev(&mut self, e: Event) -> Result<(), Rejected> {
        self.s.handle(e, Timestamp(self.now))
    }
    fn ok(&mut self, e: Event) {
        self.ev(e).expect("event taken")
    }
    fn cmds(&mut self) -> Vec<Command> {
        std::iter::from_fn(|| self.s.poll_command()).collect()
    }
    fn events(&mut self) -> Vec<UiEvent> {
        std::iter::from_fn(|| self.s.poll_event()).collect()
    }
    fn codes(&mut self) -> Vec<u8> {
        self.cmds()
            .into_iter()
            .filter_map(|c| match c {
                Command::Report(r) => Some(r.status.code()),
                _ => None,
            })
            .collect()
    }
    fn at(&mut self, ms: u64) {
        self.now = ms;
        self.s.handle_timeout(Timestamp(ms));
    }
    fn outcome(&self) -> &Outcome {
        &self.s.results().last().expect("a result").outcome
    }
    /// Offered → accepted, awaiting info.
    fn accepted(size: u64) -> Self {
        let mut s = S::new();
        s.ok(Event::Plans(vec![plan("STM32", size)]));
        s.ok(Event::Readings {
            readings: good_readings(),
            override_reason: None,
        });
        s.cmds();
        s.events();
        s
    }
    /// Downloading `img`, nothing received yet.
    fn downloading(img: &[u8]) -> Self {
        let mut s = S::accepted(img.len() as u64);
        s.ok(Event::FirmwareInfo(info_for("STM32", img)));
        s.cmds();
        s.events();
        s
    }
    /// Verified; the first piece is offered.
    fn transferring(img: &[u8]) -> Self {
        let mut s = S::downloading(img);
        s.ok(Event::Downloaded {
            offset: 0,
            bytes: img.to_vec(),
        });
        s.cmds();
        s.events();
        s
    }
    /// All pieces taken; the MCU is updating.
    fn updating(img: &[u8]) -> Self {
        let mut s = S::transferring(img);
        let mut off = 0;
        while off < img.len() {
            let len = (img.len() - off).min(100);
            s.ok(Event::McuTookPiece {
                offset: off as u64,
                len: len as u32,
            });
            off += len;
        }
        s.cmds();
        s.events();
        assert_eq!(s.s.state(), StateKind::Updating);
        s
    }
}

fn offers(cmds: &[Command]) -> Vec<(u64, u32)> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::OfferPiece { offset, len, .. } => Some((*offset, *len)),
            _ => None,
        })
        .collect()
}

#[test]
fn plans_are_reported_and_the_first_is_offered() {
    let mut s = S::new();
    let other = Plan {
        identity: "ESP32".into(),
        ..plan("ESP32", 10)
    };
    s.ok(Event::Plans(vec![plan("STM32", 10), other]));
    assert_eq!(s.codes(), [1, 1]);
    assert_eq!(s.s.state(), StateKind::Offered);
    assert_eq!(s.s.current_plan().unwrap().identity, "STM32");
    assert_eq!(s.s.queued_plans().count(), 1);
    assert_eq!(s.s.poll_timeout(), Some(Timestamp(T + 600_000)));
}

#[test]
fn plan_lists_that_cannot_be_taken() {
    let mut s = S::new();
    assert_eq!(s.ev(Event::Plans(vec![])), Err(Rejected::NoPlans));
    let many: Vec<Plan> = (0..21).map(|i| plan(&format!("C{i}"), 10)).collect();
    assert_eq!(
        s.ev(Event::Plans(many.clone())),
        Err(Rejected::TooManyPlans { count: 21, max: 20 })
    );
    assert_eq!(
        s.ev(Event::Plans(vec![plan("A", 1), plan("A", 2)])),
        Err(Rejected::DuplicateComponent("A".into()))
    );
    assert!(s.s.is_finished());
    s.ok(Event::Plans(many[..20].to_vec()));
    assert_eq!(s.ev(Event::Plans(vec![plan("X", 1)])), Err(Rejected::Busy));
}

#[test]
fn good_readings_accept_and_wait_30_s_for_firmware_info() {
    let mut s = S::new();
    s.ok(Event::Plans(vec![plan("STM32", 10)]));
    s.cmds();
    s.now += 5;
    s.ok(Event::Readings {
        readings: good_readings(),
        override_reason: None,
    });
    assert_eq!(s.codes(), [2]);
    assert_eq!(s.s.state(), StateKind::AwaitingInfo);
    assert_eq!(s.s.poll_timeout(), Some(Timestamp(T + 5 + 30_000)));
}

fn refused_with(readings: Readings, source: &str, want: Refusal) {
    let mut s = S::new();
    s.ok(Event::Plans(vec![Plan {
        source_version: source.into(),
        ..plan("STM32", 10)
    }]));
    s.cmds();
    s.ok(Event::Readings {
        readings,
        override_reason: None,
    });
    let reports = reports(&s.cmds());
    assert_eq!(reports, [(3, format!("refused: {want}"))]);
    assert!(s.events().contains(&UiEvent::Refused {
        component: "STM32".into(),
        reasons: vec![want.clone()]
    }));
    assert_eq!(s.outcome(), &Outcome::Failed(Failure::Refused(vec![want])));
    assert!(s.s.is_finished());
}

/// The status reports among `cmds`: code and message.
fn reports(cmds: &[Command]) -> Vec<(u8, String)> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Report(r) => Some((r.status.code(), r.message.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_refusal_report_names_every_reason() {
    let mut s = S::new();
    s.ok(Event::Plans(vec![plan("STM32", 10)]));
    s.cmds();
    s.ok(Event::Readings {
        readings: Readings {
            battery: 29,
            signal_dbm: -114,
            ..good_readings()
        },
        override_reason: None,
    });
    assert_eq!(
        reports(&s.cmds()),
        [(
            3,
            "refused: battery 29 % is below the plan's minimum of 30 % — charge the device; \
             signal -114 dBm is weaker than the plan's minimum of -113 dBm — move to better \
             coverage"
                .to_string()
        )]
    );
}

#[test]
fn a_declined_plan_ends_refused_at_once_and_the_next_plan_is_offered() {
    let mut s = S::new();
    s.ok(Event::Plans(vec![plan("STM32", 10), plan("BLE", 10)]));
    s.cmds();
    s.ok(Event::Declined {
        by: "the MCU".into(),
    });
    let want = Refusal::Declined {
        by: "the MCU".into(),
    };
    assert_eq!(s.codes(), [3]);
    assert!(s.events().contains(&UiEvent::Refused {
        component: "STM32".into(),
        reasons: vec![want.clone()]
    }));
    assert_eq!(
        s.s.results()[0].outcome,
        Outcome::Failed(Failure::Refused(vec![want]))
    );
    assert_eq!(s.s.current_plan().map(|p| p.identity.as_str()), Some("BLE"));
    // Declining is only for an offered plan.
    s.ok(Event::Readings {
        readings: good_readings(),
        override_reason: None,
    });
    assert!(s
        .ev(Event::Declined {
            by: "the MCU".into()
        })
        .is_err());
}

#[test]
fn refused_for_low_battery() {
    let r = Readings {
        battery: 29,
        ..good_readings()
    };
    refused_with(r, "", Refusal::BatteryLow { have: 29, need: 30 });
}

#[test]
fn refused_for_weak_signal() {
    let r = Readings {
        signal_dbm: -114,
        ..good_readings()
    };
    refused_with(
        r,
        "",
        Refusal::SignalWeak {
            have: -114,
            need: -113,
        },
    );
}

#[test]
fn refused_for_short_flash() {
    let r = Readings {
        free_flash: 9,
        ..good_readings()
    };
    refused_with(r, "", Refusal::FlashShort { have: 9, need: 10 });
}

#[test]
fn refused_for_a_delta_from_another_version() {
    let want = Refusal::SourceMismatch {
        have: Some("1_0_0".into()),
        need: "0_9_0".into(),
    };
    refused_with(good_readings(), "0_9_0", want);
}

#[test]
fn refused_when_no_readings_arrive_within_10_min() {
    let mut s = S::new();
    s.ok(Event::Plans(vec![plan("STM32", 10)]));
    s.cmds();
    s.at(T + 599_999);
    assert_eq!(s.s.state(), StateKind::Offered);
    s.at(T + 600_000);
    assert_eq!(s.codes(), [3]);
    let want = vec![Refusal::NoReadings { waited_ms: 600_000 }];
    assert_eq!(s.outcome(), &Outcome::Failed(Failure::Refused(want)));
}

#[test]
fn an_override_needs_a_reason_and_is_logged() {
    let mut s = S::new();
    s.ok(Event::Plans(vec![plan("STM32", 10)]));
    s.cmds();
    let low = Readings {
        battery: 5,
        ..good_readings()
    };
    let blank = Event::Readings {
        readings: low,
        override_reason: Some(" \t".into()),
    };
    assert_eq!(s.ev(blank), Err(Rejected::OverrideWithoutReason));
    assert_eq!(s.s.state(), StateKind::Offered);
    s.ok(Event::Readings {
        readings: low,
        override_reason: Some(" on mains power ".into()),
    });
    let cmds = s.cmds();
    let Some(Command::Report(r)) = cmds.first() else {
        panic!("{cmds:?}")
    };
    assert_eq!(r.status, Status::Accepted);
    assert!(
        r.message.contains("on mains power") && r.message.contains("battery 5 %"),
        "{}",
        r.message
    );
    assert!(s.events().contains(&UiEvent::OverrideLogged {
        component: "STM32".into(),
        reasons: vec![Refusal::BatteryLow { have: 5, need: 30 }],
        reason: "on mains power".into(),
    }));
    assert_eq!(s.s.state(), StateKind::AwaitingInfo);
}

#[test]
fn no_firmware_info_within_30_s_fails() {
    let mut s = S::accepted(10);
    s.at(T + 29_999);
    assert_eq!(s.s.state(), StateKind::AwaitingInfo);
    s.at(T + 30_000);
    assert_eq!(s.codes(), [6]);
    assert_eq!(
        s.outcome(),
        &Outcome::Failed(Failure::NoFirmwareInfo { waited_ms: 30_000 })
    );
}

#[test]
fn an_event_after_its_deadline_comes_too_late() {
    let img = image(10, 1);
    let mut s = S::accepted(10);
    s.now = T + 30_000;
    assert!(matches!(
        s.ev(Event::FirmwareInfo(info_for("STM32", &img))),
        Err(Rejected::Unexpected { .. })
    ));
    assert_eq!(
        s.outcome(),
        &Outcome::Failed(Failure::NoFirmwareInfo { waited_ms: 30_000 })
    );
}

#[test]
fn firmware_info_for_another_component_is_rejected() {
    let mut s = S::accepted(10);
    let e = s.ev(Event::FirmwareInfo(info_for("ESP32", &image(10, 1))));
    assert_eq!(
        e,
        Err(Rejected::WrongComponent {
            expected: "STM32".into(),
            got: "ESP32".into()
        })
    );
    assert_eq!(s.s.state(), StateKind::AwaitingInfo);
}

#[test]
fn unusable_firmware_info_fails_the_plan() {
    let img = image(10, 1);
    let cases: Vec<(FirmwareInfo, &str)> = vec![
        (
            FirmwareInfo {
                version: "3_0_0".into(),
                ..info_for("STM32", &img)
            },
            "not the plan's target",
        ),
        (
            FirmwareInfo {
                size: 0,
                ..info_for("STM32", &[])
            },
            "size is 0",
        ),
        (
            FirmwareInfo {
                url: " ".into(),
                ..info_for("STM32", &img)
            },
            "no download URL",
        ),
        (
            FirmwareInfo {
                md5: "xyz".into(),
                ..info_for("STM32", &img)
            },
            "not a hex digit",
        ),
        (
            FirmwareInfo {
                sha256: String::new(),
                ..info_for("STM32", &img)
            },
            "all required",
        ),
    ];
    for (info, want) in cases {
        let mut s = S::accepted(10);
        s.ok(Event::FirmwareInfo(info));
        assert_eq!(s.codes(), [6]);
        let Outcome::Failed(Failure::BadFirmwareInfo { problem }) = s.outcome() else {
            panic!("{:?}", s.outcome())
        };
        assert!(problem.contains(want), "{problem}");
    }
}

#[test]
fn digests_are_normalized_before_comparing() {
    let img = image(250, 3);
    let mut s = S::accepted(250);
    let i = info_for("STM32", &img);
    let shouty = FirmwareInfo {
        md5: i.md5.to_uppercase(),
        crc32: format!("0x{}", i.crc32.to_uppercase()),
        ..i
    };
    s.ok(Event::FirmwareInfo(shouty));
    s.ok(Event::Downloaded {
        offset: 0,
        bytes: img,
    });
    assert_eq!(s.s.state(), StateKind::Transferring);
}

#[test]
fn a_download_streams_through_the_verifier_with_progress_at_each_10_percent() {
    let img = image(1000, 7);
    let mut s = S::accepted(1000);
    s.ok(Event::FirmwareInfo(info_for("STM32", &img)));
    let cmds = s.cmds();
    assert!(matches!(&cmds[0], Command::Report(r) if r.status == Status::DownloadStart));
    assert!(cmds.iter().any(|c| matches!(
        c,
        Command::Fetch {
            start: 0,
            end: 1000,
            ..
        }
    )));
    let mut percents = vec![];
    for (i, chunk) in img.chunks(150).enumerate() {
        s.ok(Event::Downloaded {
            offset: (i * 150) as u64,
            bytes: chunk.to_vec(),
        });
        for c in s.cmds() {
            if let Command::StoreChunk { offset, bytes, .. } = &c {
                assert_eq!((*offset, bytes.as_slice()), ((i * 150) as u64, chunk));
            }
            if let Command::OfferPiece { .. } = c {
                assert_eq!(i, 6, "a piece is offered only after the last chunk");
            }
        }
        percents.extend(s.events().into_iter().filter_map(|e| match e {
            UiEvent::Progress { percent, .. } => Some(percent),
            _ => None,
        }));
        if i == 0 {
            assert_eq!(percents, [10], "150 of 1000 bytes is 15 %");
        }
    }
    assert_eq!(percents, [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
    assert_eq!(s.s.state(), StateKind::Transferring);
}

#[test]
fn status_reports_of_a_whole_successful_upgrade() {
    let img = image(250, 9);
    let mut s = S::new();
    s.ok(Event::Plans(vec![plan("STM32", 250)]));
    s.ok(Event::Readings {
        readings: good_readings(),
        override_reason: None,
    });
    s.ok(Event::FirmwareInfo(info_for("STM32", &img)));
    s.ok(Event::Downloaded {
        offset: 0,
        bytes: img[..120].to_vec(),
    });
    s.ok(Event::Downloaded {
        offset: 120,
        bytes: img[120..].to_vec(),
    });
    for (o, l) in [(0, 100), (100, 100), (200, 50)] {
        s.ok(Event::McuTookPiece { offset: o, len: l });
    }
    s.ok(Event::McuUpdateDone);
    s.ok(Event::McuVersion(Component {
        identity: "STM32".into(),
        version: "2_0_0".into(),
    }));
    let mut codes = s.codes();
    codes.dedup();
    assert_eq!(codes, [1, 2, 4, 5, 8, 9, 11]);
    assert_eq!(s.outcome(), &Outcome::Succeeded);
    assert_eq!(s.s.components()[0].version, "2_0_0");
}

#[test]
fn bytes_out_of_order_or_past_the_end_are_rejected() {
    let img = image(100, 1);
    let mut s = S::downloading(&img);
    assert_eq!(
        s.ev(Event::Downloaded {
            offset: 5,
            bytes: vec![1]
        }),
        Err(Rejected::OutOfOrder {
            expected: 0,
            got: 5
        })
    );
    assert_eq!(
        s.ev(Event::Downloaded {
            offset: 0,
            bytes: vec![0; 101]
        }),
        Err(Rejected::PastEnd {
            end: 101,
            limit: 100
        })
    );
    assert_eq!(s.s.download_offset(), Some(0));
    assert!(s.cmds().is_empty());
}

#[test]
fn download_failures_resume_from_the_last_byte_and_the_sixth_gives_up() {
    let img = image(100, 1);
    let mut s = S::downloading(&img);
    s.ok(Event::Downloaded {
        offset: 0,
        bytes: img[..40].to_vec(),
    });
    s.cmds();
    for n in 1..=5u8 {
        s.ok(Event::DownloadFailed {
            reason: "connection reset".into(),
        });
        assert!(s.cmds().iter().any(|c| matches!(
            c,
            Command::Fetch {
                start: 40,
                end: 100,
                ..
            }
        )));
        assert!(s.events().iter().any(|e| matches!(e, UiEvent::DownloadRetry { failures, resume_at: 40, .. } if *failures == n)));
    }
    s.ok(Event::DownloadFailed {
        reason: "connection reset".into(),
    });
    assert_eq!(s.codes(), [6]);
    assert_eq!(
        s.outcome(),
        &Outcome::Failed(Failure::DownloadGaveUp {
            failures: 6,
            last: "connection reset".into()
        })
    );
}

#[test]
fn a_stalled_download_counts_as_a_failure_after_60_s() {
    let img = image(100, 1);
    let mut s = S::downloading(&img);
    s.now = T + 10_000;
    s.ok(Event::Downloaded {
        offset: 0,
        bytes: img[..10].to_vec(),
    });
    s.cmds();
    s.at(T + 69_999);
    assert!(s.cmds().is_empty());
    s.at(T + 70_000);
    assert!(s
        .cmds()
        .iter()
        .any(|c| matches!(c, Command::Fetch { start: 10, .. })));
    assert_eq!(s.s.poll_timeout(), Some(Timestamp(T + 130_000)));
    for k in 2..=6 {
        s.at(T + 10_000 + k * 60_000);
    }
    assert!(matches!(
        s.outcome(),
        Outcome::Failed(Failure::DownloadGaveUp { failures: 6, .. })
    ));
}

fn mismatch(corrupt: impl Fn(&mut FirmwareInfo), kind: DigestKind) {
    let img = image(300, 5);
    let mut s = S::accepted(300);
    let mut info = info_for("STM32", &img);
    corrupt(&mut info);
    s.ok(Event::FirmwareInfo(info));
    s.ok(Event::Downloaded {
        offset: 0,
        bytes: img,
    });
    let cmds = s.cmds();
    assert!(offers(&cmds).is_empty(), "no piece after a mismatch");
    let Outcome::Failed(Failure::DigestMismatch(m)) = s.outcome() else {
        panic!("{:?}", s.outcome())
    };
    assert_eq!(m.iter().map(|m| m.kind).collect::<Vec<_>>(), [kind]);
    // The report tells the technician which digest differed, and both values.
    let name = match kind {
        DigestKind::Md5 => "MD5",
        DigestKind::Crc32 => "CRC32",
        DigestKind::Sha256 => "SHA-256",
    };
    let (expected, got) = (&m[0].expected, &m[0].got);
    assert_eq!(
        reports(&cmds).last().map(|r| r.1.as_str()),
        Some(
            format!(
                "downloaded image does not match: {name} expected {expected} got {got}; \
                 nothing was sent to the MCU"
            )
            .as_str()
        )
    );
    let reports: Vec<u8> = cmds
        .iter()
        .filter_map(|c| {
            if let Command::Report(r) = c {
                Some(r.status.code())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(reports.last(), Some(&6));
    assert!(!reports.contains(&8));
}

#[test]
fn a_wrong_md5_fails_and_nothing_goes_to_the_mcu() {
    mismatch(|i| i.md5 = "0".repeat(32), DigestKind::Md5);
}

#[test]
fn a_wrong_crc32_fails_and_nothing_goes_to_the_mcu() {
    mismatch(|i| i.crc32 = "00000000".into(), DigestKind::Crc32);
}

#[test]
fn a_wrong_sha256_fails_and_nothing_goes_to_the_mcu() {
    mismatch(|i| i.sha256 = "0".repeat(64), DigestKind::Sha256);
}

#[test]
fn pieces_go_out_in_order_and_a_wrong_take_is_rejected() {
    let img = image(250, 2);
    let mut s = S::downloading(&img);
    s.ok(Event::Downloaded {
        offset: 0,
        bytes: img,
    });
    assert_eq!(offers(&s.cmds()), [(0, 100)]);
    let wrong = s.ev(Event::McuTookPiece { offset: 0, len: 50 });
    assert_eq!(
        wrong,
        Err(Rejected::WrongPiece {
            offset: 0,
            len: 100,
            got_offset: 0,
            got_len: 50
        })
    );
    s.ok(Event::McuTookPiece {
        offset: 0,
        len: 100,
    });
    assert_eq!(offers(&s.cmds()), [(100, 100)]);
    assert_eq!(s.s.transfer_offset(), Some(100));
    s.ok(Event::McuTookPiece {
        offset: 100,
        len: 100,
    });
    assert_eq!(offers(&s.cmds()), [(200, 50)]);
    s.ok(Event::McuTookPiece {
        offset: 200,
        len: 50,
    });
    assert_eq!(s.s.state(), StateKind::Updating);
}

#[test]
fn the_mcu_must_take_a_piece_within_60_s() {
    let img = image(250, 2);
    let mut s = S::transferring(&img);
    s.now = T + 1_000;
    s.ok(Event::McuTookPiece {
        offset: 0,
        len: 100,
    });
    s.at(T + 60_999);
    assert_eq!(s.s.state(), StateKind::Transferring);
    s.at(T + 61_000);
    let cmds = s.cmds();
    assert!(cmds
        .iter()
        .any(|c| matches!(c, Command::Report(r) if r.status == Status::UpdateError)));
    assert!(cmds.contains(&Command::DiscardImage {
        component: "STM32".into()
    }));
    assert_eq!(
        s.outcome(),
        &Outcome::Failed(Failure::McuDidNotTake {
            offset: 100,
            waited_ms: 60_000
        })
    );
}

#[test]
fn the_mcu_must_finish_updating_within_20_min() {
    let mut s = S::updating(&image(150, 4));
    s.at(T + 1_199_999);
    assert_eq!(s.s.state(), StateKind::Updating);
    s.at(T + 1_200_000);
    assert_eq!(s.codes(), [12,]);
    assert_eq!(
        s.outcome(),
        &Outcome::Failed(Failure::UpdateTimeout {
            waited_ms: 1_200_000
        })
    );
}

#[test]
fn after_the_update_the_version_report_must_come_within_2_min() {
    let mut s = S::updating(&image(150, 4));
    s.now = T + 5_000;
    s.ok(Event::McuUpdateDone);
    assert_eq!(s.s.state(), StateKind::AwaitingVersion);
    s.at(T + 124_999);
    assert_eq!(s.s.state(), StateKind::AwaitingVersion);
    s.at(T + 125_000);
    assert_eq!(
        s.outcome(),
        &Outcome::Failed(Failure::NoVersionReport { waited_ms: 120_000 })
    );
}

#[test]
fn a_version_other_than_the_target_fails() {
    let mut s = S::updating(&image(150, 4));
    s.ok(Event::McuUpdateDone);
    s.cmds();
    s.ok(Event::McuVersion(Component {
        identity: "STM32".into(),
        version: "1_0_0".into(),
    }));
    assert_eq!(s.codes(), [12]);
    let want = Failure::WrongVersion {
        reported: "1_0_0".into(),
        target: "2_0_0".into(),
    };
    assert_eq!(s.outcome(), &Outcome::Failed(want));
}

#[test]
fn another_components_version_only_updates_the_list() {
    let mut s = S::updating(&image(150, 4));
    s.ok(Event::McuVersion(Component {
        identity: "ESP32".into(),
        version: "9".into(),
    }));
    assert_eq!(s.s.state(), StateKind::Updating);
    assert_eq!(s.s.components().len(), 2);
}

#[test]
fn events_that_do_not_fit_the_state_are_rejected() {
    let mut s = S::new();
    let e = s.ev(Event::McuTookPiece { offset: 0, len: 1 });
    assert_eq!(
        e,
        Err(Rejected::Unexpected {
            event: "MCU took a piece",
            state: StateKind::Idle
        })
    );
    assert!(s.ev(Event::McuUpdateDone).is_err());
    assert!(s.ev(Event::StoreLost).is_err());
    assert!(s
        .ev(Event::Downloaded {
            offset: 0,
            bytes: vec![1]
        })
        .is_err());
    let mut s = S::accepted(10);
    assert!(s
        .ev(Event::Readings {
            readings: good_readings(),
            override_reason: None
        })
        .is_err());
}

#[test]
fn when_the_mcu_downloads_the_console_hands_over_and_relays() {
    let img = image(150, 4);
    let mut s = S::accepted(150);
    let info = FirmwareInfo {
        mode: DownloadMode::McuDownloads,
        ..info_for("STM32", &img)
    };
    s.ok(Event::FirmwareInfo(info.clone()));
    let cmds = s.cmds();
    assert!(cmds.contains(&Command::HandToMcu(info)));
    assert!(!cmds
        .iter()
        .any(|c| matches!(c, Command::Fetch { .. } | Command::OfferPiece { .. })));
    assert_eq!(s.s.state(), StateKind::Updating);
    s.ok(Event::McuVersion(Component {
        identity: "STM32".into(),
        version: "2_0_0".into(),
    }));
    let cmds = s.cmds();
    assert!(
        !cmds
            .iter()
            .any(|c| matches!(c, Command::DiscardImage { .. })),
        "nothing was stored"
    );
    assert_eq!(s.outcome(), &Outcome::Succeeded);
}

#[test]
fn several_components_one_after_another_each_with_its_own_result() {
    let mut s = S::new();
    s.ok(Event::Plans(vec![plan("STM32", 10), plan("ESP32", 20)]));
    s.ok(Event::Readings {
        readings: Readings {
            battery: 1,
            ..good_readings()
        },
        override_reason: None,
    });
    assert_eq!(s.s.current_plan().unwrap().identity, "ESP32");
    s.ok(Event::Readings {
        readings: good_readings(),
        override_reason: None,
    });
    let img = image(20, 1);
    s.ok(Event::FirmwareInfo(FirmwareInfo {
        mode: DownloadMode::McuDownloads,
        ..info_for("ESP32", &img)
    }));
    s.ok(Event::McuVersion(Component {
        identity: "ESP32".into(),
        version: "2_0_0".into(),
    }));
    let r = s.s.results();
    assert_eq!(
        (r[0].identity.as_str(), r[1].identity.as_str()),
        ("STM32", "ESP32")
    );
    assert!(matches!(r[0].outcome, Outcome::Failed(Failure::Refused(_))));
    assert_eq!(r[1].outcome, Outcome::Succeeded);
    assert!(s.s.is_finished());
    assert_eq!(s.s.poll_timeout(), None);
}

fn restore(s: &mut S) {
    let json = serde_json::to_string(&s.s).unwrap();
    s.s = serde_json::from_str(&json).unwrap();
    s.s.resume(Timestamp(s.now));
}

#[test]
fn a_restored_download_refeeds_the_stored_prefix_then_resumes_at_its_offset() {
    let img = image(500, 8);
    let mut s = S::downloading(&img);
    s.ok(Event::Downloaded {
        offset: 0,
        bytes: img[..230].to_vec(),
    });
    s.cmds();
    s.events();
    restore(&mut s);
    assert_eq!(s.s.download_offset(), Some(230));
    let cmds = s.cmds();
    assert!(
        cmds.contains(&Command::Refeed {
            component: "STM32".into(),
            len: 230
        }),
        "{cmds:?}"
    );
    assert!(
        !cmds.iter().any(|c| matches!(c, Command::Fetch { .. })),
        "no fetch before the refeed"
    );
    assert_eq!(
        s.ev(Event::Downloaded {
            offset: 230,
            bytes: vec![0]
        }),
        Err(Rejected::NotRefed)
    );
    assert_eq!(
        s.ev(Event::Stored {
            offset: 0,
            bytes: img[..231].to_vec()
        }),
        Err(Rejected::PastEnd {
            end: 231,
            limit: 230
        })
    );
    s.ok(Event::Stored {
        offset: 0,
        bytes: img[..100].to_vec(),
    });
    s.ok(Event::Stored {
        offset: 100,
        bytes: img[100..230].to_vec(),
    });
    assert!(s.cmds().iter().any(|c| matches!(
        c,
        Command::Fetch {
            start: 230,
            end: 500,
            ..
        }
    )));
    s.ok(Event::Downloaded {
        offset: 230,
        bytes: img[230..].to_vec(),
    });
    assert_eq!(offers(&s.cmds()), [(0, 100)]);
    // Progress went on from where it was, without repeating a step.
    let p: Vec<u8> = s
        .events()
        .into_iter()
        .filter_map(|e| {
            if let UiEvent::Progress { percent, .. } = e {
                Some(percent)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(p, [50, 60, 70, 80, 90, 100]);
}

#[test]
fn a_restored_download_continues_from_what_the_store_kept() {
    let img = image(500, 8);
    let mut s = S::downloading(&img);
    s.ok(Event::Downloaded {
        offset: 0,
        bytes: img[..230].to_vec(),
    });
    s.cmds();
    let json = serde_json::to_string(&s.s).unwrap();
    s.s = serde_json::from_str(&json).unwrap();
    // A longer length than the session counted is not taken: those bytes were never hashed.
    s.s.keep_stored(400);
    assert_eq!(s.s.download_offset(), Some(230));
    s.s.keep_stored(100);
    assert_eq!(s.s.download_offset(), Some(100));
    s.s.resume(Timestamp(s.now));
    let cmds = s.cmds();
    assert!(
        cmds.contains(&Command::Refeed {
            component: "STM32".into(),
            len: 100
        }),
        "{cmds:?}"
    );
    s.ok(Event::Stored {
        offset: 0,
        bytes: img[..100].to_vec(),
    });
    assert!(s.cmds().iter().any(|c| matches!(
        c,
        Command::Fetch {
            start: 100,
            end: 500,
            ..
        }
    )));
    s.ok(Event::Downloaded {
        offset: 100,
        bytes: img[100..].to_vec(),
    });
    assert_eq!(s.s.state(), StateKind::Transferring);
    assert_eq!(offers(&s.cmds()), [(0, 100)]);
}

#[test]
fn keeping_a_stored_length_outside_a_download_changes_nothing() {
    let img = image(500, 8);
    let mut s = S::downloading(&img);
    // All that was counted is kept: the live download goes on as it was.
    s.ok(Event::Downloaded {
        offset: 0,
        bytes: img[..100].to_vec(),
    });
    s.s.keep_stored(100);
    s.ok(Event::Downloaded {
        offset: 100,
        bytes: img[100..].to_vec(),
    });
    assert_eq!(s.s.state(), StateKind::Transferring);
    s.s.keep_stored(0);
    assert_eq!(s.s.state(), StateKind::Transferring);
    assert_eq!(s.s.transfer_offset(), Some(0));
    s.cmds();
    s.ok(Event::McuTookPiece {
        offset: 0,
        len: 100,
    });
    assert_eq!(offers(&s.cmds()), [(100, 100)]);
}

#[test]
fn a_restored_download_with_a_corrupted_store_fails_verification() {
    let img = image(500, 8);
    let mut s = S::downloading(&img);
    s.ok(Event::Downloaded {
        offset: 0,
        bytes: img[..230].to_vec(),
    });
    restore(&mut s);
    s.cmds();
    let mut bad = img[..230].to_vec();
    bad[3] ^= 1;
    s.ok(Event::Stored {
        offset: 0,
        bytes: bad,
    });
    s.ok(Event::Downloaded {
        offset: 230,
        bytes: img[230..].to_vec(),
    });
    assert!(offers(&s.cmds()).is_empty());
    assert!(matches!(s.outcome(), Outcome::Failed(Failure::DigestMismatch(m)) if m.len() == 3));
}

#[test]
fn a_lost_store_fails_the_plan() {
    let img = image(500, 8);
    let mut s = S::downloading(&img);
    s.ok(Event::Downloaded {
        offset: 0,
        bytes: img[..230].to_vec(),
    });
    restore(&mut s);
    s.ok(Event::StoreLost);
    assert_eq!(s.outcome(), &Outcome::Failed(Failure::ImageLost));
}

#[test]
fn a_restored_transfer_offers_the_piece_at_the_transfer_offset() {
    let img = image(250, 2);
    let mut s = S::transferring(&img);
    s.ok(Event::McuTookPiece {
        offset: 0,
        len: 100,
    });
    s.cmds();
    restore(&mut s);
    assert_eq!(s.s.transfer_offset(), Some(100));
    // The stored image is checked again before anything more goes to the MCU.
    let cmds = s.cmds();
    assert!(offers(&cmds).is_empty());
    assert!(cmds
        .iter()
        .any(|c| matches!(c, Command::Refeed { len: 250, .. })));
    assert!(s
        .ev(Event::McuTookPiece {
            offset: 100,
            len: 100
        })
        .is_err());
    s.ok(Event::Stored {
        offset: 0,
        bytes: img[..200].to_vec(),
    });
    assert!(offers(&s.cmds()).is_empty());
    s.ok(Event::Stored {
        offset: 200,
        bytes: img[200..].to_vec(),
    });
    assert_eq!(offers(&s.cmds()), [(100, 100)]);
    s.ok(Event::McuTookPiece {
        offset: 100,
        len: 100,
    });
    assert_eq!(offers(&s.cmds()), [(200, 50)]);
}

#[test]
fn a_restored_transfer_whose_stored_image_changed_fails_without_another_piece() {
    let img = image(250, 2);
    let mut s = S::transferring(&img);
    s.ok(Event::McuTookPiece {
        offset: 0,
        len: 100,
    });
    s.cmds();
    restore(&mut s);
    s.cmds();
    let mut altered = img.clone();
    altered[180] ^= 0x01;
    s.ok(Event::Stored {
        offset: 0,
        bytes: altered,
    });
    let cmds = s.cmds();
    assert!(offers(&cmds).is_empty());
    let codes: Vec<u8> = cmds
        .iter()
        .filter_map(|c| match c {
            Command::Report(r) => Some(r.status.code()),
            _ => None,
        })
        .collect();
    assert_eq!(codes, [12]);
    assert!(matches!(s.outcome(), Outcome::Failed(Failure::StoredImageChanged(m)) if m.len() == 3));
}

#[test]
fn a_restore_keeps_absolute_deadlines() {
    let mut s = S::accepted(10);
    s.now = T + 40_000;
    restore(&mut s);
    assert_eq!(
        s.outcome(),
        &Outcome::Failed(Failure::NoFirmwareInfo { waited_ms: 30_000 })
    );
}

#[test]
fn a_session_is_finished_only_when_no_plan_is_in_progress_or_waiting() {
    let mut s = S::new();
    assert!(s.s.is_finished(), "nothing to do yet");
    s.ok(Event::Plans(vec![plan("STM32", 10), plan("ESP32", 10)]));
    assert!(!s.s.is_finished(), "one plan offered, one waiting");
    s.ok(Event::Declined {
        by: "the MCU".into(),
    });
    assert_eq!(s.s.current_plan().unwrap().identity, "ESP32");
    assert_eq!(s.s.queued_plans().count(), 0);
    assert!(!s.s.is_finished(), "the last plan is still offered");
    s.ok(Event::Declined {
        by: "the MCU".into(),
    });
    assert!(s.s.is_finished());
}

#[test]
fn stored_bytes_are_taken_only_while_downloading_or_transferring() {
    let img = image(150, 4);
    let stored = || Event::Stored {
        offset: 0,
        bytes: img[..10].to_vec(),
    };
    let mut offered = S::new();
    offered.ok(Event::Plans(vec![plan("STM32", 150)]));
    offered.cmds();
    let mut awaiting_version = S::updating(&img);
    awaiting_version.ok(Event::McuUpdateDone);
    awaiting_version.cmds();
    for (mut s, state, while_) in [
        (S::new(), StateKind::Idle, "idle"),
        (offered, StateKind::Offered, "waiting for readings"),
        (
            S::accepted(150),
            StateKind::AwaitingInfo,
            "waiting for firmware info",
        ),
        (
            S::updating(&img),
            StateKind::Updating,
            "the MCU is updating",
        ),
        (
            awaiting_version,
            StateKind::AwaitingVersion,
            "waiting for the MCU's version",
        ),
    ] {
        assert_eq!(s.s.state(), state);
        let rejected = s.ev(stored()).unwrap_err();
        assert_eq!(
            rejected,
            Rejected::Unexpected {
                event: "stored bytes",
                state
            }
        );
        assert_eq!(
            rejected.to_string(),
            format!("stored bytes is not expected while {while_}")
        );
        assert_eq!(s.s.state(), state, "a rejected event changes nothing");
        assert!(s.cmds().is_empty());
    }
}

#[test]
fn every_wait_that_expired_is_handled_in_one_call() {
    // With zero-length waits each timeout's next deadline is already due: one call must
    // settle them all and leave no expired deadline behind.
    let instant = |timeouts: Timeouts, download_retries: u8| S {
        s: Session::new(
            Config {
                piece_size: 100,
                download_retries,
                timeouts,
            },
            stm(),
        ),
        now: T,
    };
    // Twenty plans, none of them answered.
    let mut s = instant(
        Timeouts {
            decision_ms: 0,
            ..Timeouts::default()
        },
        5,
    );
    let plans: Vec<Plan> = (0..MAX_PLANS).map(|i| plan(&format!("C{i}"), 10)).collect();
    s.ok(Event::Plans(plans));
    s.at(T);
    assert_eq!(s.s.results().len(), MAX_PLANS);
    assert!(s.s.is_finished());
    assert_eq!(s.s.poll_timeout(), None);
    // A download that never delivers a byte, with a hundred retries.
    let mut s = instant(
        Timeouts {
            download_stall_ms: 0,
            ..Timeouts::default()
        },
        100,
    );
    let img = image(10, 1);
    s.ok(Event::Plans(vec![plan("STM32", 10)]));
    s.ok(Event::Readings {
        readings: good_readings(),
        override_reason: None,
    });
    s.ok(Event::FirmwareInfo(info_for("STM32", &img)));
    assert_eq!(s.s.state(), StateKind::Downloading);
    s.at(T);
    assert_eq!(
        s.outcome(),
        &Outcome::Failed(Failure::DownloadGaveUp {
            failures: 101,
            last: "no data for 0 ms".into()
        })
    );
    assert_eq!(s.s.poll_timeout(), None);
}
