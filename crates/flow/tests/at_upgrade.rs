//! `AtUpgrade` step by step, without a line: the MCU's AT commands in, URCs and I/O requests
//! out. Plans and firmware info arrive only when asked for (`Io::NeedPlans`,
//! `Io::NeedFirmwareInfo`), and no piece is read from the store before the image verified.

use core::time::Duration;
use sota_engine::{
    Component, ComponentType, Config as EngineConfig, Digester, DownloadMode, FirmwareInfo, Plan,
    Session,
};
use sota_flow::io::Driver;
use sota_flow::{AtSnapshot, AtUpgrade, Io, Notice, Step};
use sota_link::at_sota::Config;
use sota_link::Endpoint;

const T0: Duration = Duration::ZERO;

fn plan(file: &[u8]) -> Plan {
    Plan {
        identity: "STM32".into(),
        component_type: ComponentType::Mcu,
        source_version: String::new(),
        target_version: "2_0_0".into(),
        min_battery: 30,
        min_signal_dbm: -113,
        space_needed: file.len() as u64,
        package_size: file.len() as u64,
        download_retries: None,
    }
}

fn info(file: &[u8], sha256: Option<&str>) -> FirmwareInfo {
    let d = Digester::digest(file);
    FirmwareInfo {
        identity: "STM32".into(),
        version: "2_0_0".into(),
        md5: d.md5,
        crc32: d.crc32,
        sha256: sha256.map_or(d.sha256, str::to_string),
        url: "file:///fw.bin".into(),
        size: file.len() as u64,
        mode: DownloadMode::ConsoleDownloads,
    }
}

fn upgrade() -> AtUpgrade {
    let config = EngineConfig {
        piece_size: 8,
        ..EngineConfig::default()
    };
    AtUpgrade::new(Config::default(), Session::new(config, Vec::new()))
}

fn sent(u: &mut AtUpgrade) -> String {
    let mut bytes = Vec::new();
    u.poll_transmit(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

fn say(u: &mut AtUpgrade, line: &str) -> String {
    u.handle_input(T0, line.as_bytes());
    u.handle_input(T0, b"\r");
    sent(u)
}

fn ios(u: &mut AtUpgrade) -> Vec<Io> {
    std::iter::from_fn(|| u.poll_io()).collect()
}

/// Up to the MCU's confirmation, when the session asks for the firmware info.
fn asked_for_info(u: &mut AtUpgrade, file: &[u8]) {
    say(u, "ATE0");
    say(u, r#"AT+QIOTMCUVER="STM32","1_0_0""#);
    assert!(
        ios(u).is_empty(),
        "nothing is asked before the MCU wants a plan"
    );
    assert_eq!(say(u, "AT+QIOTOTAREQ=1"), "\r\nOK\r\n");
    let asked = ios(u);
    assert_eq!(
        asked,
        vec![Io::NeedPlans {
            components: vec![Component {
                identity: "STM32".into(),
                version: "1_0_0".into(),
            }]
        }]
    );
    u.provide_plans(vec![plan(file)], T0).unwrap();
    let offer = sent(u);
    assert!(
        offer.ends_with("+QIOTEVT: 7,10700,\"STM32\",\"\",\"2_0_0\",30,-113,10\r\n"),
        "{offer}"
    );
    assert_eq!(say(u, "AT+QIOTUPDATE=1"), "\r\nOK\r\n");
    let wanted = ios(u);
    assert!(
        wanted
            .iter()
            .any(|io| matches!(io, Io::NeedFirmwareInfo { plan: p } if *p == plan(file))),
        "{wanted:?}"
    );
    assert!(
        !wanted.iter().any(|io| matches!(io, Io::Fetch { .. })),
        "no download before the info"
    );
}

/// Up to the MCU's confirmation and the firmware info; returns the URCs sent after the info
/// and the range the session fetches.
fn confirmed(u: &mut AtUpgrade, file: &[u8], sha256: Option<&str>) -> (String, u64, u64) {
    asked_for_info(u, file);
    u.provide_info(info(file, sha256), T0).unwrap();
    let urcs = sent(u);
    let fetch = ios(u).into_iter().find_map(|io| match io {
        Io::Fetch { start, end, .. } => Some((start, end)),
        _ => None,
    });
    let (start, end) = fetch.expect("the session fetches once the info arrived");
    (urcs, start, end)
}

#[test]
fn a_mismatching_image_gets_10706_and_no_piece() {
    let file = b"0123456789".to_vec();
    let mut u = upgrade();
    let (urcs, start, end) = confirmed(&mut u, &file, Some(&"ab".repeat(32)));
    assert!(urcs.contains("+QIOTEVT: 7,10701,\"STM32\",10,"), "{urcs}");
    assert_eq!((start, end), (0, 10));
    u.fetched(0, file, T0);
    assert!(!ios(&mut u).iter().any(|io| matches!(io, Io::Read { .. })));
    assert_eq!(sent(&mut u), "\r\n+QIOTEVT: 7,10706\r\n");
    assert!(u.is_done());
    assert_eq!(
        say(&mut u, "AT+QIOTOTARD=0,10"),
        "\r\nERROR\r\n",
        "nothing to read"
    );
}

#[test]
fn verified_pieces_go_out_and_the_version_report_ends_it() {
    let file = b"0123456789".to_vec();
    let mut u = upgrade();
    confirmed(&mut u, &file, None);
    u.fetched(0, file.clone(), T0);
    let after = ios(&mut u);
    let stored: Vec<(u64, Vec<u8>)> = after
        .iter()
        .filter_map(|io| match io {
            Io::Store { offset, bytes, .. } => Some((*offset, bytes.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        stored,
        vec![(0, file.clone())],
        "the verified stream is stored"
    );
    let reads: Vec<(u64, u64)> = after
        .iter()
        .filter_map(|io| match io {
            Io::Read { offset, len, .. } => Some((*offset, *len)),
            _ => None,
        })
        .collect();
    assert_eq!(reads, vec![(0, 8)]);
    u.read_done(0, file[..8].to_vec(), T0);
    assert_eq!(sent(&mut u), "\r\n+QIOTEVT: 7,10703,\"STM32\",10,0,8\r\n");
    assert!(say(&mut u, "AT+QIOTOTARD=0,8").contains("01234567"));
    let writing = u.state();
    assert_eq!(
        (writing.step, writing.done, writing.total),
        (Step::Writing, 8, 10),
        "the MCU's reads are the progress"
    );
    assert_eq!(say(&mut u, "AT+QIOTUPDATE=2"), "\r\nOK\r\n");
    assert!(ios(&mut u).iter().any(|io| matches!(
        io,
        Io::Read {
            offset: 8,
            len: 2,
            ..
        }
    )));
    u.read_done(8, file[8..].to_vec(), T0);
    assert_eq!(
        sent(&mut u),
        "\r\n+QIOTEVT: 7,10702\r\n\r\n+QIOTEVT: 7,10703,\"STM32\",10,8,2\r\n"
    );
    assert!(say(&mut u, "AT+QIOTOTARD=8,8").contains("+QIOTOTARD: 8,2\r\n89\r\nOK"));
    assert_eq!(
        say(&mut u, "AT+QIOTUPDATE=3"),
        "\r\nOK\r\n\r\n+QIOTEVT: 7,10704\r\n"
    );
    assert_eq!(u.state().step, Step::Updating);
    assert!(!u.is_done());
    assert_eq!(
        say(&mut u, r#"AT+QIOTMCUVER="STM32","2_0_0""#),
        "\r\nOK\r\n\r\n+QIOTEVT: 7,10705\r\n"
    );
    assert!(u.is_done());
    assert_eq!(
        u.session().results()[0].outcome,
        sota_engine::Outcome::Succeeded
    );
}

#[test]
fn a_plan_pushed_before_the_mcu_asks_is_announced_at_once_and_not_asked_for_again() {
    let file = b"0123456789".to_vec();
    let mut u = upgrade();
    say(&mut u, "ATE0");
    say(&mut u, r#"AT+QIOTMCUVER="STM32","1_0_0""#);
    // The platform pushes: the module announces the plan unasked (URC 10700).
    u.provide_plans(vec![plan(&file)], T0).unwrap();
    assert_eq!(
        sent(&mut u),
        "\r\n+QIOTEVT: 7,10700,\"STM32\",\"\",\"2_0_0\",30,-113,10\r\n"
    );
    // An MCU that asks afterwards gets the same plan again, not a request for plans.
    let again = say(&mut u, "AT+QIOTOTAREQ=1");
    assert!(again.contains("10700"), "{again}");
    let before = ios(&mut u);
    assert!(
        before.iter().all(|io| matches!(io, Io::Report(_))),
        "{before:?}"
    );
    say(&mut u, "AT+QIOTUPDATE=1");
    let after = ios(&mut u);
    assert!(
        matches!(after.last(), Some(Io::NeedFirmwareInfo { plan: p }) if p.target_version == "2_0_0"),
        "{after:?}"
    );
}

#[test]
fn a_failed_fetch_is_asked_again_from_the_same_byte_and_a_lost_store_ends_the_plan() {
    let file = b"0123456789".to_vec();
    let mut u = upgrade();
    confirmed(&mut u, &file, None);
    assert!(!u.is_finished());
    Driver::fetch_failed(&mut u, "network down".into(), T0);
    let again = ios(&mut u);
    assert!(
        again.iter().any(|io| matches!(
            io,
            Io::Fetch {
                start: 0,
                end: 10,
                ..
            }
        )),
        "{again:?}"
    );
    Driver::store_lost(&mut u, T0);
    assert_eq!(sent(&mut u), "\r\n+QIOTEVT: 7,10706\r\n");
    assert!(u.is_finished() && u.is_done());
    assert_eq!(u.state().step, sota_flow::Step::Failed);
}

#[test]
fn the_trait_answers_reach_the_session_like_the_methods() {
    let file = b"0123456789".to_vec();
    let mut u = upgrade();
    say(&mut u, "ATE0");
    say(&mut u, r#"AT+QIOTMCUVER="STM32","1_0_0""#);
    let notices: Vec<_> = std::iter::from_fn(|| u.poll_notice()).collect();
    assert!(
        notices.iter().any(|n| matches!(n, sota_flow::Notice::Link(
            sota_link::at_sota::Event::VersionReported { component, version }
        ) if component == "STM32" && version == "1_0_0")),
        "{notices:?}"
    );
    Driver::provide_plans(&mut u, vec![plan(&file)], T0);
    assert!(sent(&mut u).contains("10700"));
    say(&mut u, "AT+QIOTUPDATE=1");
    ios(&mut u);
    Driver::provide_info(&mut u, info(&file, None), T0);
    assert!(sent(&mut u).contains("10701"));
    assert_eq!(u.state().step, sota_flow::Step::Verifying);
}

#[test]
fn cancel_tells_the_mcu_the_update_failed() {
    let file = b"0123456789".to_vec();
    let mut u = upgrade();
    confirmed(&mut u, &file, None);
    u.cancel("cancelled by the technician");
    assert_eq!(sent(&mut u), "\r\n+QIOTEVT: 7,10706\r\n");
    assert_eq!(u.state().step, sota_flow::Step::Failed);
}

#[test]
fn nothing_is_done_before_the_mcu_asked_for_a_plan() {
    let mut u = upgrade();
    assert!(!u.is_done());
    say(&mut u, "ATE0");
    say(&mut u, r#"AT+QIOTMCUVER="STM32","1_0_0""#);
    assert!(!u.is_finished() && !u.is_done());
}

#[test]
fn the_verifying_step_counts_the_bytes_the_session_checked() {
    let file = b"0123456789".to_vec();
    let mut u = upgrade();
    confirmed(&mut u, &file, None);
    let start = u.state();
    assert_eq!(
        (start.step, start.done, start.total),
        (Step::Verifying, 0, 10)
    );
    u.fetched(0, file[..5].to_vec(), T0);
    let half = u.state();
    assert_eq!((half.step, half.done, half.total), (Step::Verifying, 5, 10));
}

#[test]
fn while_the_session_downloads_10702_goes_out_every_5_s_from_its_deadline_on() {
    let file = b"0123456789".to_vec();
    let mut u = upgrade();
    confirmed(&mut u, &file, None);
    let five = Duration::from_secs(5);
    assert_eq!(u.poll_timeout(), Some(five));
    u.handle_timeout(five - Duration::from_millis(1));
    assert_eq!(sent(&mut u), "");
    u.handle_timeout(five);
    assert_eq!(sent(&mut u), "\r\n+QIOTEVT: 7,10702\r\n");
    assert_eq!(u.poll_timeout(), Some(2 * five));
}

#[test]
fn a_plan_the_mcu_asks_for_and_confirms_again_resumes_where_the_session_is() {
    let file = b"0123456789".to_vec();
    let mut u = upgrade();
    confirmed(&mut u, &file, None);
    // While downloading: the same plan, then the same firmware again.
    let again = say(&mut u, "AT+QIOTOTAREQ=1");
    assert!(
        again.ends_with("+QIOTEVT: 7,10700,\"STM32\",\"\",\"2_0_0\",30,-113,10\r\n"),
        "{again}"
    );
    let confirmed_again = say(&mut u, "AT+QIOTUPDATE=1");
    assert!(
        confirmed_again.contains("+QIOTEVT: 7,10701,\"STM32\",10,"),
        "{confirmed_again}"
    );
    // While transferring: the piece on offer is read and offered again.
    u.fetched(0, file.clone(), T0);
    ios(&mut u);
    u.read_done(0, file[..8].to_vec(), T0);
    assert_eq!(sent(&mut u), "\r\n+QIOTEVT: 7,10703,\"STM32\",10,0,8\r\n");
    say(&mut u, "AT+QIOTOTAREQ=1");
    let confirmed_again = say(&mut u, "AT+QIOTUPDATE=1");
    assert!(
        confirmed_again.contains("+QIOTEVT: 7,10701,\"STM32\",10,"),
        "{confirmed_again}"
    );
    let reads: Vec<(u64, u64)> = ios(&mut u)
        .iter()
        .filter_map(|io| match io {
            Io::Read { offset, len, .. } => Some((*offset, *len)),
            _ => None,
        })
        .collect();
    assert_eq!(reads, [(0, 8)]);
    u.read_done(0, file[..8].to_vec(), T0);
    assert_eq!(sent(&mut u), "\r\n+QIOTEVT: 7,10703,\"STM32\",10,0,8\r\n");
    assert!(say(&mut u, "AT+QIOTOTARD=0,8").contains("01234567"));
}

#[test]
fn a_refusal_of_a_plan_the_session_no_longer_offers_does_not_reach_it() {
    let file = b"0123456789".to_vec();
    let mut u = upgrade();
    confirmed(&mut u, &file, None);
    std::iter::from_fn(|| u.poll_notice()).for_each(drop);
    say(&mut u, "AT+QIOTOTAREQ=1");
    assert_eq!(say(&mut u, "AT+QIOTUPDATE=0"), "\r\nOK\r\n");
    let notices: Vec<Notice> = std::iter::from_fn(|| u.poll_notice()).collect();
    assert!(
        notices
            .iter()
            .any(|n| matches!(n, Notice::Link(sota_link::at_sota::Event::Refused { .. }))),
        "{notices:?}"
    );
    assert!(
        !notices.iter().any(|n| matches!(n, Notice::Rejected(_))),
        "{notices:?}"
    );
    assert_eq!(
        u.session().state(),
        sota_engine::session::StateKind::Downloading
    );
}

#[test]
fn firmware_the_mcu_must_download_itself_ends_the_plan_with_10706() {
    let file = b"0123456789".to_vec();
    let mut u = upgrade();
    asked_for_info(&mut u, &file);
    let mcu_downloads = FirmwareInfo {
        mode: DownloadMode::McuDownloads,
        ..info(&file, None)
    };
    u.provide_info(mcu_downloads, T0).unwrap();
    assert_eq!(sent(&mut u), "\r\n+QIOTEVT: 7,10706\r\n");
    assert!(
        !ios(&mut u).iter().any(|io| matches!(io, Io::Fetch { .. })),
        "nothing is downloaded"
    );
}

/// A transfer whose first piece (8 of 10 bytes) the MCU confirmed and whose second it began
/// to read, saved as a page would keep it, and taken up by a new instance with `stored`
/// bytes in the store.
fn restored_after_first_piece(file: &[u8], stored: u64) -> AtUpgrade {
    restored_with(Config::default(), file, stored)
}

fn restored_with(config: Config, file: &[u8], stored: u64) -> AtUpgrade {
    let mut u = upgrade();
    confirmed(&mut u, file, None);
    u.fetched(0, file.to_vec(), T0);
    ios(&mut u);
    u.read_done(0, file[..8].to_vec(), T0);
    sent(&mut u);
    say(&mut u, "AT+QIOTOTARD=0,8");
    assert_eq!(say(&mut u, "AT+QIOTUPDATE=2"), "\r\nOK\r\n");
    assert_eq!(u.session().transfer_offset(), Some(8));
    let kept = |u: &AtUpgrade| u.snapshot().unwrap().session().transfer_offset();
    // The OK may not reach the MCU, which would then repeat `=2` for the first piece: the
    // snapshot stays there until the MCU reads in the second.
    assert_eq!(kept(&u), Some(0));
    assert_eq!(reads(&ios(&mut u)), [(8, 2)]);
    u.read_done(8, file[8..].to_vec(), T0);
    sent(&mut u);
    assert_eq!(kept(&u), Some(0));
    assert_eq!(
        say(&mut u, "AT+QIOTOTARD=8,1"),
        "\r\n+QIOTOTARD: 8,1\r\n8\r\nOK\r\n"
    );
    assert_eq!(kept(&u), Some(8));
    let json = serde_json::to_string(&u.snapshot().expect("transferring")).unwrap();
    let snapshot: AtSnapshot = serde_json::from_str(&json).unwrap();
    AtUpgrade::restore(config, snapshot, stored, T0)
}

fn reads(ios: &[Io]) -> Vec<(u64, u64)> {
    ios.iter()
        .filter_map(|io| match io {
            Io::Read { offset, len, .. } => Some((*offset, *len)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_restored_transfer_holds_the_mcus_reads_until_its_piece_is_ready() {
    let file = b"0123456789".to_vec();
    let mut r = restored_after_first_piece(&file, 10);
    assert_eq!(r.state().step, Step::Writing);
    assert_eq!(sent(&mut r), "", "no URC is repeated");
    // The stored image is checked again before any piece.
    assert_eq!(reads(&ios(&mut r)), [(0, 10)]);
    // Meanwhile the MCU tries its read of the second piece again and again: no ERROR, no
    // answer, and its last try is not finished yet.
    assert_eq!(say(&mut r, "AT+QIOTOTARD=8,2"), "");
    r.handle_input(T0, b"AT+QIOTOTARD=8,2\rAT+QIOTOTARD=8,");
    assert_eq!(sent(&mut r), "");
    r.read_done(0, file.clone(), T0);
    assert_eq!(
        reads(&ios(&mut r)),
        [(8, 2)],
        "the piece at the confirmed offset"
    );
    r.read_done(8, file[8..].to_vec(), T0);
    assert_eq!(
        sent(&mut r),
        "\r\n+QIOTEVT: 7,10702\r\n\r\n+QIOTEVT: 7,10703,\"STM32\",10,8,2\r\n",
        "the piece is announced; the unfinished try waits for its end"
    );
    r.handle_input(T0, b"2\r");
    assert_eq!(
        sent(&mut r),
        "\r\n+QIOTOTARD: 8,2\r\n89\r\nOK\r\n",
        "answered once"
    );
    assert_eq!(
        say(&mut r, "AT+QIOTUPDATE=3"),
        "\r\nOK\r\n\r\n+QIOTEVT: 7,10704\r\n"
    );
    assert_eq!(
        say(&mut r, r#"AT+QIOTMCUVER="STM32","2_0_0""#),
        "\r\nOK\r\n\r\n+QIOTEVT: 7,10705\r\n"
    );
    assert!(r.is_done());
}

#[test]
fn while_held_only_the_newest_input_is_kept() {
    let file = b"0123456789".to_vec();
    let mut r = restored_after_first_piece(&file, 10);
    ios(&mut r);
    // Far more than a few retries: line noise, then one read.
    let noise = "AT+QIOTOTARD=0,1\r".repeat(400);
    r.handle_input(T0, noise.as_bytes());
    r.handle_input(T0, b"AT+QIOTOTARD=9,1\r");
    r.read_done(0, file.clone(), T0);
    r.read_done(8, file[8..].to_vec(), T0);
    let out = sent(&mut r);
    assert!(out.ends_with("\r\n+QIOTOTARD: 9,1\r\n9\r\nOK\r\n"), "{out}");
    assert_eq!(out.matches("OK").count(), 1, "one answer: {out}");
}

#[test]
fn a_restored_transfer_whose_store_changed_fails_and_answers_the_held_read() {
    let file = b"0123456789".to_vec();
    let mut r = restored_after_first_piece(&file, 10);
    ios(&mut r);
    say(&mut r, "AT+QIOTOTARD=8,2");
    let mut changed = file.clone();
    changed[3] ^= 0xff;
    r.read_done(0, changed, T0);
    let out = sent(&mut r);
    assert!(out.contains("+QIOTEVT: 7,10706"), "{out}");
    assert!(
        out.ends_with("\r\nERROR\r\n"),
        "the held read is answered: {out}"
    );
    assert!(
        reads(&ios(&mut r)).is_empty(),
        "no piece after the check failed"
    );
}

#[test]
fn a_restored_download_goes_on_without_holding_the_mcu() {
    let file = b"0123456789".to_vec();
    let mut u = upgrade();
    confirmed(&mut u, &file, None);
    u.fetched(0, file[..4].to_vec(), T0);
    ios(&mut u);
    let json = serde_json::to_string(&u.snapshot().expect("downloading")).unwrap();
    let mut r = AtUpgrade::restore(
        Config::default(),
        serde_json::from_str(&json).unwrap(),
        4,
        T0,
    );
    assert_eq!(r.state().step, Step::Verifying);
    assert_eq!(
        reads(&ios(&mut r)),
        [(0, 4)],
        "the kept prefix is hashed again"
    );
    // The MCU is not held: housekeeping is answered at once.
    assert_eq!(say(&mut r, "AT"), "\r\nOK\r\n");
}

#[test]
fn a_restored_module_leaves_the_waits_to_the_session() {
    // A module's own read and update timeouts of 1 s would end the plan long before the
    // session's piece and update waits; restored, as when new, the session owns them.
    let config = Config {
        read_timeout: Some(Duration::from_secs(1)),
        update_timeout: Some(Duration::from_secs(1)),
        ..Config::default()
    };
    let file = b"0123456789".to_vec();
    let mut r = restored_with(config, &file, 10);
    ios(&mut r);
    r.read_done(0, file.clone(), T0);
    r.read_done(8, file[8..].to_vec(), T0);
    sent(&mut r);
    let later = Duration::from_secs(5);
    r.handle_timeout(later);
    assert!(
        !sent(&mut r).contains("10706"),
        "the MCU may take its time to read"
    );
    r.handle_input(later, b"AT+QIOTOTARD=8,2\r");
    r.handle_input(later, b"AT+QIOTUPDATE=3\r");
    assert!(sent(&mut r).contains("10704"));
    r.handle_timeout(later * 3);
    assert!(!sent(&mut r).contains("10706"), "and to update");
}
