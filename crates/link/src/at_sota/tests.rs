use super::*;

const T0: Duration = Duration::ZERO;

fn said(m: &mut Module, line: &str) -> String {
    m.handle_input(T0, line.as_bytes());
    m.handle_input(T0, b"\r");
    out(m)
}

fn out(m: &mut Module) -> String {
    let mut bytes = Vec::new();
    m.poll_transmit(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

fn events(m: &mut Module) -> Vec<Event> {
    std::iter::from_fn(|| m.poll_event()).collect()
}

fn plan() -> Plan {
    Plan {
        component: "STM32".into(),
        source_version: String::new(),
        target_version: "2_0_0".into(),
        min_battery: 30,
        min_signal: -113,
        use_space: 27954,
    }
}

fn info(size: u64) -> FirmwareInfo {
    FirmwareInfo {
        size,
        md5: "00112233445566778899aabbccddeeff".into(),
        crc32: 1234567,
        sha256: "ab".repeat(32),
    }
}

#[test]
fn housekeeping_gets_ok_or_error_and_echo_follows_ate() {
    let mut m = Module::new(Config::default());
    assert_eq!(said(&mut m, "AT"), "AT\r\r\nOK\r\n");
    assert_eq!(said(&mut m, "ATE0"), "ATE0\r\r\nOK\r\n");
    assert_eq!(said(&mut m, "AT"), "\r\nOK\r\n");
    assert_eq!(said(&mut m, "AT+CSQ"), "\r\nERROR\r\n");
    assert_eq!(said(&mut m, "AT+QIOTUPDATE=7"), "\r\nERROR\r\n");
    assert_eq!(
        said(&mut m, "AT+QIOTUPDATE=2"),
        "\r\nERROR\r\n",
        "no piece held"
    );
    assert_eq!(said(&mut m, &"X".repeat(1000)), "\r\nERROR\r\n");
    assert_eq!(
        said(&mut m, "AT+QIOTOTARD=?"),
        "\r\n+QIOTOTARD: 1024\r\n\r\nOK\r\n"
    );
}

#[test]
fn a_two_piece_upgrade_ends_in_10705() {
    let mut m = Module::new(Config::default());
    said(&mut m, "ATE0");
    assert_eq!(
        said(&mut m, r#"AT+QIOTMCUVER="STM32","1_0_0""#),
        "\r\nOK\r\n"
    );
    assert_eq!(said(&mut m, "AT+QIOTOTAREQ=1"), "\r\nOK\r\n");
    assert_eq!(
        events(&mut m),
        vec![
            Event::VersionReported {
                component: "STM32".into(),
                version: "1_0_0".into()
            },
            Event::PlanRequested { sha256: true }
        ]
    );
    m.offer_plan(plan());
    assert_eq!(
        out(&mut m),
        "\r\n+QIOTEVT: 7,10700,\"STM32\",\"\",\"2_0_0\",30,-113,27954\r\n"
    );
    assert_eq!(said(&mut m, "AT+QIOTUPDATE=1"), "\r\nOK\r\n");
    assert_eq!(events(&mut m), vec![Event::Confirmed]);
    let file: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    m.start_download(info(3000), T0);
    let sha = "ab".repeat(32);
    assert_eq!(
        out(&mut m),
        format!("\r\n+QIOTEVT: 7,10701,\"STM32\",3000,\"00112233445566778899aabbccddeeff\",1234567,\"{sha}\"\r\n")
    );
    // 10702 repeats while the piece is fetched
    m.handle_timeout(Duration::from_secs(5));
    assert_eq!(out(&mut m), "\r\n+QIOTEVT: 7,10702\r\n");
    m.piece_ready(0, file[..2048].to_vec(), T0);
    assert_eq!(
        out(&mut m),
        "\r\n+QIOTEVT: 7,10703,\"STM32\",3000,0,2048\r\n"
    );
    // a read is header, raw bytes, OK; the module caps it at 1024
    let reply = {
        m.handle_input(T0, b"AT+QIOTOTARD=0,4096\r");
        let mut b = Vec::new();
        m.poll_transmit(&mut b);
        b
    };
    let header = b"\r\n+QIOTOTARD: 0,1024\r\n";
    assert_eq!(&reply[..header.len()], header);
    assert_eq!(&reply[header.len()..header.len() + 1024], &file[..1024]);
    assert_eq!(&reply[header.len() + 1024..], b"\r\nOK\r\n");
    assert_eq!(
        said(&mut m, "AT+QIOTOTARD=2048,10"),
        "\r\nERROR\r\n",
        "outside the piece"
    );
    assert_eq!(
        said(&mut m, "AT+QIOTUPDATE=3"),
        "\r\nERROR\r\n",
        "not the last piece"
    );
    assert_eq!(
        said(&mut m, "AT+QIOTUPDATE=2"),
        "\r\nERROR\r\n",
        "the held piece was not read to its end"
    );
    m.handle_input(T0, b"AT+QIOTOTARD=1024,1024\r");
    out(&mut m);
    assert_eq!(said(&mut m, "AT+QIOTUPDATE=2"), "\r\nOK\r\n");
    assert!(events(&mut m).contains(&Event::PieceRequested { offset: 2048 }));
    m.piece_ready(2048, file[2048..].to_vec(), T0);
    assert_eq!(
        out(&mut m),
        "\r\n+QIOTEVT: 7,10702\r\n\r\n+QIOTEVT: 7,10703,\"STM32\",3000,2048,952\r\n"
    );
    assert_eq!(
        said(&mut m, "AT+QIOTUPDATE=3"),
        "\r\nERROR\r\n",
        "the last piece was not read"
    );
    m.handle_input(T0, b"AT+QIOTOTARD=2048,1024\r");
    let reply = out(&mut m);
    assert!(reply.starts_with("\r\n+QIOTOTARD: 2048,952\r\n"));
    assert_eq!(
        said(&mut m, "AT+QIOTUPDATE=3"),
        "\r\nOK\r\n\r\n+QIOTEVT: 7,10704\r\n"
    );
    assert!(!m.is_done());
    assert_eq!(
        said(&mut m, r#"AT+QIOTMCUVER="STM32","2_0_0""#),
        "\r\nOK\r\n\r\n+QIOTEVT: 7,10705\r\n"
    );
    assert!(m.is_done());
    assert_eq!(
        events(&mut m).last(),
        Some(&Event::Succeeded {
            version: "2_0_0".into()
        })
    );
}

fn to_piece_ready(m: &mut Module, size: usize) {
    said(m, "ATE0");
    said(m, "AT+QIOTOTAREQ");
    m.offer_plan(plan());
    said(m, "AT+QIOTUPDATE=1");
    m.start_download(info(size as u64), T0);
    m.piece_ready(0, vec![7; size], T0);
    out(m);
}

#[test]
fn wrong_version_after_update_is_10706() {
    let mut m = Module::new(Config::default());
    to_piece_ready(&mut m, 10);
    said(&mut m, "AT+QIOTOTARD=0,10");
    said(&mut m, "AT+QIOTUPDATE=3");
    assert_eq!(
        said(&mut m, r#"AT+QIOTMCUVER="STM32","1_0_0""#),
        "\r\nOK\r\n\r\n+QIOTEVT: 7,10706\r\n"
    );
    assert!(matches!(
        events(&mut m).last(),
        Some(Event::Failed(Error::WrongVersion { .. }))
    ));
}

#[test]
fn an_mcu_that_stops_reading_times_out_with_10706() {
    let mut m = Module::new(Config::default());
    to_piece_ready(&mut m, 10);
    m.handle_timeout(Duration::from_secs(59));
    assert!(!m.is_done());
    m.handle_timeout(Duration::from_secs(60));
    assert_eq!(out(&mut m), "\r\n+QIOTEVT: 7,10706\r\n");
    assert!(m.is_done());
}

#[test]
fn refusing_a_plan_is_reported() {
    let mut m = Module::new(Config::default());
    said(&mut m, "ATE0");
    m.offer_plan(plan());
    out(&mut m);
    assert_eq!(said(&mut m, "AT+QIOTUPDATE=0"), "\r\nOK\r\n");
    assert_eq!(
        events(&mut m),
        vec![Event::Refused {
            component: "STM32".into()
        }]
    );
    assert_eq!(said(&mut m, "AT+QIOTUPDATE=1"), "\r\nERROR\r\n");
}

#[test]
fn the_next_plan_after_a_result_is_announced_with_10707_first() {
    let mut m = Module::new(Config::default());
    to_piece_ready(&mut m, 10);
    said(&mut m, "AT+QIOTOTARD=0,10");
    said(&mut m, "AT+QIOTUPDATE=3");
    said(&mut m, r#"AT+QIOTMCUVER="STM32","2_0_0""#);
    assert!(m.plan_ended());
    events(&mut m);
    let ble = Plan {
        component: "BLE".into(),
        target_version: "3_1_0".into(),
        ..plan()
    };
    m.offer_plan(ble.clone());
    assert_eq!(
        out(&mut m),
        "\r\n+QIOTEVT: 7,10707\r\n\r\n+QIOTEVT: 7,10700,\"BLE\",\"\",\"3_1_0\",30,-113,27954\r\n"
    );
    // The MCU lost the plan and asks again: the same plan, without another 10707.
    said(&mut m, "AT+QIOTOTAREQ=1");
    m.offer_plan(ble);
    assert_eq!(
        out(&mut m),
        "\r\n+QIOTEVT: 7,10700,\"BLE\",\"\",\"3_1_0\",30,-113,27954\r\n"
    );
    // The second plan is refused: its result is the refusal, and a third plan gets 10707.
    assert_eq!(said(&mut m, "AT+QIOTUPDATE=0"), "\r\nOK\r\n");
    assert!(m.plan_ended());
    m.offer_plan(plan());
    assert!(out(&mut m).starts_with("\r\n+QIOTEVT: 7,10707\r\n\r\n+QIOTEVT: 7,10700,\"STM32\""));
}

#[test]
fn next_piece_needs_the_held_piece_read_to_its_end() {
    let mut m = Module::new(Config::default());
    said(&mut m, "ATE0");
    said(&mut m, "AT+QIOTOTAREQ");
    m.offer_plan(plan());
    said(&mut m, "AT+QIOTUPDATE=1");
    m.start_download(info(20), T0);
    m.piece_ready(0, vec![7; 10], T0);
    said(&mut m, "AT+QIOTOTARD=0,5");
    assert_eq!(said(&mut m, "AT+QIOTUPDATE=2"), "\r\nERROR\r\n");
    said(&mut m, "AT+QIOTOTARD=5,5");
    events(&mut m);
    assert_eq!(said(&mut m, "AT+QIOTUPDATE=2"), "\r\nOK\r\n");
    assert_eq!(
        events(&mut m),
        vec![
            Event::PieceTaken { offset: 0, len: 10 },
            Event::PieceRequested { offset: 10 }
        ]
    );
}

#[test]
fn stop_sends_10706_once() {
    let mut m = Module::new(Config::default());
    to_piece_ready(&mut m, 10);
    events(&mut m);
    m.stop("digests do not match".into());
    assert_eq!(out(&mut m), "\r\n+QIOTEVT: 7,10706\r\n");
    assert_eq!(
        events(&mut m),
        vec![Event::Failed(Error::Stopped("digests do not match".into()))]
    );
    m.stop("again".into());
    assert_eq!(out(&mut m), "");
}

/// A module holding the first 2048 bytes of a 3000-byte file as its piece.
fn holding_first_piece() -> Module {
    let mut m = Module::new(Config::default());
    said(&mut m, "ATE0");
    said(&mut m, "AT+QIOTOTAREQ=1");
    m.offer_plan(plan());
    said(&mut m, "AT+QIOTUPDATE=1");
    m.start_download(info(3000), T0);
    m.piece_ready(0, vec![7; 2048], T0);
    out(&mut m);
    events(&mut m);
    m
}

#[test]
fn reading_only_the_end_of_a_piece_does_not_take_it() {
    let mut m = holding_first_piece();
    said(&mut m, "AT+QIOTOTARD=1024,1024");
    assert_eq!(
        said(&mut m, "AT+QIOTUPDATE=2"),
        "\r\nERROR\r\n",
        "bytes 0..1024 were never read"
    );
    said(&mut m, "AT+QIOTOTARD=0,1024");
    assert_eq!(
        said(&mut m, "AT+QIOTUPDATE=2"),
        "\r\nERROR\r\n",
        "the read past the gap does not count"
    );
    // Reading again what was read already is fine (a lost reply), and closes the gap.
    said(&mut m, "AT+QIOTOTARD=0,512");
    said(&mut m, "AT+QIOTOTARD=512,1536");
    said(&mut m, "AT+QIOTOTARD=1024,1024");
    assert_eq!(said(&mut m, "AT+QIOTUPDATE=2"), "\r\nOK\r\n");
    assert!(events(&mut m).contains(&Event::PieceTaken {
        offset: 0,
        len: 2048
    }));
}

#[test]
fn a_plan_asked_for_again_keeps_what_the_mcu_has_read() {
    let mut m = holding_first_piece();
    said(&mut m, "AT+QIOTOTARD=0,1024");
    // A URC was lost: the MCU asks again, confirms again and resumes at 1024.
    said(&mut m, "AT+QIOTOTAREQ=1");
    m.offer_plan(plan());
    said(&mut m, "AT+QIOTUPDATE=1");
    m.start_download(info(3000), T0);
    m.piece_ready(0, vec![7; 2048], T0);
    said(&mut m, "AT+QIOTOTARD=1024,1024");
    assert_eq!(said(&mut m, "AT+QIOTUPDATE=2"), "\r\nOK\r\n");
    // Another file under the same plan starts over.
    let mut m = holding_first_piece();
    said(&mut m, "AT+QIOTOTARD=0,1024");
    said(&mut m, "AT+QIOTOTAREQ=1");
    m.offer_plan(plan());
    said(&mut m, "AT+QIOTUPDATE=1");
    m.start_download(
        FirmwareInfo {
            md5: "ff".repeat(16),
            ..info(3000)
        },
        T0,
    );
    m.piece_ready(0, vec![7; 2048], T0);
    said(&mut m, "AT+QIOTOTARD=1024,1024");
    assert_eq!(said(&mut m, "AT+QIOTUPDATE=2"), "\r\nERROR\r\n");
}

#[test]
fn each_housekeeping_command_gets_its_reply() {
    let mut m = Module::new(Config::default());
    // ATI names the module, as a Quectel module does.
    assert_eq!(
        said(&mut m, "ATI"),
        "ATI\r\r\nQuectel\r\nSOTA console\r\nRevision: sota-link\r\n\r\nOK\r\n"
    );
    // ATE1 (and a bare ATE) turn the echo back on after ATE0.
    for on in ["ATE1", "ATE"] {
        said(&mut m, "ATE0");
        assert_eq!(said(&mut m, "AT"), "\r\nOK\r\n", "echo off");
        assert_eq!(said(&mut m, on), "\r\nOK\r\n", "{on} itself is not echoed");
        assert_eq!(said(&mut m, "AT"), "AT\r\r\nOK\r\n", "echo on after {on}");
    }
    said(&mut m, "ATE0");
    // The test form of AT+QIOTOTAREQ lists its modes and asks for no plan.
    assert_eq!(
        said(&mut m, "AT+QIOTOTAREQ=?"),
        "\r\n+QIOTOTAREQ: (0,1)\r\n\r\nOK\r\n"
    );
    assert_eq!(events(&mut m), vec![]);
}

#[test]
fn the_mcu_versions_are_listed_as_reported() {
    let mut m = Module::new(Config::default());
    said(&mut m, "ATE0");
    assert_eq!(said(&mut m, "AT+QIOTMCUVER?"), "\r\nOK\r\n", "none yet");
    said(&mut m, r#"AT+QIOTMCUVER="STM32","1_0_0""#);
    said(&mut m, r#"AT+QIOTMCUVER="BLE","3_0_0""#);
    // A component reported again keeps its place with the new version.
    said(&mut m, r#"AT+QIOTMCUVER="STM32","1_1_0""#);
    assert_eq!(
        said(&mut m, "AT+QIOTMCUVER?"),
        "\r\n+QIOTMCUVER: \"STM32\",\"1_1_0\"\r\n+QIOTMCUVER: \"BLE\",\"3_0_0\"\r\n\r\nOK\r\n"
    );
    assert_eq!(m.version_of("STM32"), Some("1_1_0"));
    assert_eq!(m.version_of("ESP32"), None);
}

#[test]
fn a_line_longer_than_the_limit_is_refused_and_the_next_line_works() {
    let mut m = Module::new(Config::default());
    said(&mut m, "ATE0");
    // A real command padded (with spaces the parser trims) to exactly MAX_LINE bytes is
    // taken; one byte more and the whole line is refused, whatever it says.
    let padded = |len: usize| {
        let command = r#"AT+QIOTMCUVER="STM32","1_0_0""#;
        format!("{command}{}", " ".repeat(len - command.len()))
    };
    assert_eq!(said(&mut m, &padded(MAX_LINE)), "\r\nOK\r\n");
    events(&mut m);
    let too_long = padded(MAX_LINE + 1).replace("1_0_0", "9_9_9");
    assert_eq!(said(&mut m, &too_long), "\r\nERROR\r\n");
    assert_eq!(
        events(&mut m),
        vec![],
        "nothing of the long line was executed"
    );
    assert_eq!(m.version_of("STM32"), Some("1_0_0"));
    // The module recovers: the next line is a line of its own.
    assert_eq!(said(&mut m, "AT"), "\r\nOK\r\n");
    assert_eq!(
        said(&mut m, r#"AT+QIOTMCUVER="STM32","2_0_0""#),
        "\r\nOK\r\n"
    );
    assert_eq!(m.version_of("STM32"), Some("2_0_0"));
}

#[test]
fn an_mcu_that_never_reports_its_version_after_updating_times_out_with_10706() {
    let mut m = Module::new(Config::default());
    to_piece_ready(&mut m, 10);
    said(&mut m, "AT+QIOTOTARD=0,10");
    said(&mut m, "AT+QIOTUPDATE=3");
    events(&mut m);
    let limit = Duration::from_secs(20 * 60);
    // The read timeout no longer applies once the MCU updates: only the update timeout.
    assert_eq!(m.poll_timeout(), Some(limit));
    m.handle_timeout(limit - Duration::from_millis(1));
    assert!(!m.is_done());
    assert_eq!(out(&mut m), "");
    m.handle_timeout(limit);
    assert_eq!(out(&mut m), "\r\n+QIOTEVT: 7,10706\r\n");
    assert!(m.is_done());
    assert_eq!(m.poll_timeout(), None);
    assert_eq!(
        events(&mut m),
        vec![Event::Failed(Error::UpdateTimeout(limit))]
    );
}

#[test]
fn refusing_is_only_for_an_offered_plan() {
    let mut m = Module::new(Config::default());
    said(&mut m, "ATE0");
    assert_eq!(said(&mut m, "AT+QIOTUPDATE=0"), "\r\nERROR\r\n", "no plan");
    to_piece_ready(&mut m, 10);
    events(&mut m);
    assert_eq!(
        said(&mut m, "AT+QIOTUPDATE=0"),
        "\r\nERROR\r\n",
        "too late: the plan was confirmed"
    );
    assert_eq!(events(&mut m), vec![]);
    assert!(!m.plan_ended());
}

#[test]
fn lines_may_end_in_cr_lf_and_the_lf_is_no_part_of_the_next_line() {
    let mut m = Module::new(Config::default());
    said(&mut m, "ATE0");
    m.handle_input(T0, b"AT\r\n");
    assert_eq!(out(&mut m), "\r\nOK\r\n");
    // A blank line (CR LF alone) is no command.
    m.handle_input(T0, b"\r\n");
    assert_eq!(out(&mut m), "");
    // The LF before a line of the longest length does not push it over the limit.
    let command = r#"AT+QIOTMCUVER="STM32","1_0_0""#;
    let longest = format!("{command}{}", " ".repeat(MAX_LINE - command.len()));
    m.handle_input(T0, format!("{longest}\r\n").as_bytes());
    assert_eq!(out(&mut m), "\r\nOK\r\n");
    assert_eq!(m.version_of("STM32"), Some("1_0_0"));
}

#[test]
fn the_plan_offered_last_is_kept_until_the_next_one() {
    let mut m = Module::new(Config::default());
    said(&mut m, "ATE0");
    assert_eq!(m.plan(), None);
    assert!(!m.plan_ended(), "no plan, so none ended");
    m.offer_plan(plan());
    assert_eq!(m.plan(), Some(&plan()));
    assert!(!m.plan_ended());
    said(&mut m, "AT+QIOTUPDATE=0");
    assert_eq!(
        m.plan(),
        Some(&plan()),
        "still the plan the result is about"
    );
    assert!(m.plan_ended());
}

#[test]
fn another_plan_or_a_plan_that_ended_starts_the_reading_over() {
    // What the MCU has read is kept only for the same plan offered again while it is in
    // progress (a lost URC); here it has read the first half of the held piece.
    let other_plan = Plan {
        target_version: "3_0_0".into(),
        ..plan()
    };
    for (why, next) in [("another plan", other_plan), ("the same plan", plan())] {
        let mut m = holding_first_piece();
        said(&mut m, "AT+QIOTOTARD=0,1024");
        if why == "the same plan" {
            // ... after it ended (here stopped by the caller).
            m.stop("cancelled".into());
            assert!(m.plan_ended());
        }
        m.offer_plan(next);
        said(&mut m, "AT+QIOTUPDATE=1");
        m.start_download(info(3000), T0);
        m.piece_ready(0, vec![7; 2048], T0);
        said(&mut m, "AT+QIOTOTARD=1024,1024");
        assert_eq!(
            said(&mut m, "AT+QIOTUPDATE=2"),
            "\r\nERROR\r\n",
            "{why}: bytes 0..1024 must be read again"
        );
    }
}

#[test]
fn the_last_piece_ends_with_update_not_with_a_request_for_more() {
    let mut m = Module::new(Config::default());
    to_piece_ready(&mut m, 10);
    said(&mut m, "AT+QIOTOTARD=0,10");
    events(&mut m);
    assert_eq!(
        said(&mut m, "AT+QIOTUPDATE=2"),
        "\r\nERROR\r\n",
        "there is no piece after the last"
    );
    assert_eq!(events(&mut m), vec![]);
    assert_eq!(
        said(&mut m, "AT+QIOTUPDATE=3"),
        "\r\nOK\r\n\r\n+QIOTEVT: 7,10704\r\n"
    );
}

#[test]
fn a_piece_that_was_taken_can_no_longer_be_read() {
    let mut m = holding_first_piece();
    said(&mut m, "AT+QIOTOTARD=0,1024");
    said(&mut m, "AT+QIOTOTARD=1024,1024");
    assert_eq!(said(&mut m, "AT+QIOTUPDATE=2"), "\r\nOK\r\n");
    // Until the next piece is ready, no read is served, not even of the old piece.
    assert_eq!(said(&mut m, "AT+QIOTOTARD=0,16"), "\r\nERROR\r\n");
    assert_eq!(said(&mut m, "AT+QIOTOTARD=2048,16"), "\r\nERROR\r\n");
}

#[test]
fn while_a_piece_is_fetched_10702_repeats_every_interval() {
    let mut m = Module::new(Config::default());
    said(&mut m, "ATE0");
    m.offer_plan(plan());
    said(&mut m, "AT+QIOTUPDATE=1");
    m.start_download(info(10), T0);
    out(&mut m);
    for k in 1..=3 {
        let due = Duration::from_secs(5 * k);
        assert_eq!(m.poll_timeout(), Some(due));
        m.handle_timeout(due - Duration::from_millis(1));
        assert_eq!(out(&mut m), "", "early at {k}");
        m.handle_timeout(due);
        assert_eq!(out(&mut m), "\r\n+QIOTEVT: 7,10702\r\n", "at {due:?}");
    }
    // Once the piece is ready, the MCU's read timeout takes over.
    m.piece_ready(0, vec![7; 10], Duration::from_secs(16));
    assert_eq!(m.poll_timeout(), Some(Duration::from_secs(76)));
}

#[test]
fn a_resumed_module_serves_the_next_piece_without_repeating_urcs() {
    let mut old = holding_first_piece();
    said(&mut old, "AT+QIOTOTARD=0,1024");
    said(&mut old, "AT+QIOTOTARD=1024,1024");
    said(&mut old, "AT+QIOTUPDATE=2");
    said(&mut old, r#"AT+QIOTMCUVER="BLE","3_0_0""#);
    let point = old.resume_point();
    assert_eq!(
        point,
        ResumePoint {
            echo: false,
            sha256: true,
            versions: vec![("BLE".into(), "3_0_0".into())],
        }
    );
    // The old instance is gone; a new one takes up the plan at the confirmed 2048 bytes.
    let mut m = Module::resumed(Config::default(), point, plan(), info(3000), Some(2048), T0);
    assert_eq!(out(&mut m), "", "no URC is repeated");
    assert_eq!(m.plan(), Some(&plan()));
    assert!(!m.plan_ended());
    // No piece yet: the MCU's reads wait (no ERROR), and only its last try is answered.
    assert_eq!(said(&mut m, "AT+QIOTOTARD=2548,452"), "");
    assert_eq!(said(&mut m, "AT+QIOTOTARD=2548,452"), "");
    // While the piece is fetched, 10702 keeps the MCU waiting.
    let interval = Config::default().downloading_interval;
    m.handle_timeout(interval);
    assert_eq!(out(&mut m), "\r\n+QIOTEVT: 7,10702\r\n");
    m.piece_ready(2048, vec![9; 952], interval);
    // Echo stays off. The MCU read the piece's start from the instance before: its first read
    // says where it stands (no 10703 sends it back to the start), and reading on from there
    // to the end takes the piece.
    let sent = out(&mut m);
    assert!(sent.starts_with("\r\n+QIOTOTARD: 2548,452\r\n"), "{sent}");
    assert_eq!(sent.matches("OK").count(), 1, "{sent}");
    events(&mut m);
    assert!(said(&mut m, "AT+QIOTUPDATE=3").starts_with("\r\nOK\r\n"));
    assert!(events(&mut m).contains(&Event::PieceTaken {
        offset: 2048,
        len: 952
    }));
    assert_eq!(m.version_of("BLE"), Some("3_0_0"));
}

#[test]
fn after_a_resume_only_the_first_read_is_taken_on_trust() {
    let mut m = Module::resumed(
        Config::default(),
        ResumePoint::default(),
        plan(),
        info(3000),
        Some(0),
        T0,
    );
    m.piece_ready(0, vec![9; 3000], T0);
    out(&mut m);
    said(&mut m, "AT+QIOTOTARD=1000,1000");
    // A skip after it is a skip: 2000..2500 was never read.
    said(&mut m, "AT+QIOTOTARD=2500,500");
    assert_eq!(said(&mut m, "AT+QIOTUPDATE=3"), "\r\nERROR\r\n");
    said(&mut m, "AT+QIOTOTARD=2000,1000");
    assert!(said(&mut m, "AT+QIOTUPDATE=3").starts_with("\r\nOK\r\n"));
}

/// A module resumed at the piece 1024..2048 of a 3000-byte file, the piece ready.
fn resumed_at_second_piece(held: &str) -> (Module, String) {
    let mut m = Module::resumed(
        Config::default(),
        ResumePoint::default(),
        plan(),
        info(3000),
        Some(1024),
        T0,
    );
    assert_eq!(said(&mut m, held), "", "held until the piece is ready");
    m.piece_ready(1024, vec![9; 1024], T0);
    let sent = out(&mut m);
    (m, sent)
}

#[test]
fn after_a_resume_a_repeated_next_piece_takes_the_piece_resumed_at() {
    // The MCU read the piece with the instance before; its `=2` got no OK.
    let (mut m, sent) = resumed_at_second_piece("AT+QIOTUPDATE=2");
    assert_eq!(sent, "\r\nOK\r\n", "no 10703 for a piece the MCU has");
    assert_eq!(
        events(&mut m),
        [
            Event::PieceTaken {
                offset: 1024,
                len: 1024
            },
            Event::PieceRequested { offset: 2048 }
        ]
    );
    m.piece_ready(2048, vec![9; 952], T0);
    assert!(out(&mut m).contains("+QIOTEVT: 7,10703,\"STM32\",3000,2048,952"));
    // Still unsure until a read: the MCU may have had the last piece too, and says so.
    assert!(said(&mut m, "AT+QIOTUPDATE=3").starts_with("\r\nOK\r\n"));
}

#[test]
fn after_a_resume_a_read_past_the_piece_takes_it_and_waits_for_the_next() {
    let (mut m, sent) = resumed_at_second_piece("AT+QIOTOTARD=2048,100");
    assert_eq!(sent, "", "answered once the next piece is ready");
    assert!(events(&mut m).contains(&Event::PieceTaken {
        offset: 1024,
        len: 1024
    }));
    // Its retries wait too, and only the last is answered.
    assert_eq!(said(&mut m, "AT+QIOTOTARD=2048,100"), "");
    m.piece_ready(2048, vec![9; 952], T0);
    let sent = out(&mut m);
    assert!(sent.starts_with("\r\n+QIOTOTARD: 2048,100\r\n"), "{sent}");
    assert_eq!(sent.matches("OK").count(), 1, "{sent}");
    // From there on reads count as usual: a skip is a skip.
    said(&mut m, "AT+QIOTOTARD=2500,500");
    assert_eq!(said(&mut m, "AT+QIOTUPDATE=3"), "\r\nERROR\r\n");
}

#[test]
fn after_a_resume_a_read_before_the_piece_is_an_error() {
    let (mut m, sent) = resumed_at_second_piece("AT+QIOTOTARD=0,100");
    assert!(sent.ends_with("\r\nERROR\r\n"), "{sent}");
    assert!(!events(&mut m)
        .iter()
        .any(|e| matches!(e, Event::PieceTaken { .. })));
}
