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
