//! `CenterLink`, the device's side of the channel: the messages a flow sends the center and
//! what it does with the answers — over the whole AT upgrade against the simulated MCU, and
//! message by message for reconnects, pushes and stray answers.

use core::time::Duration;
use sota_engine::{
    ComponentType, Config as EngineConfig, Digester, DownloadMode, FirmwareInfo, Plan, Report,
    Session, Status,
};
use sota_flow::io::{serve, Driver, Source};
use sota_flow::{AtUpgrade, CenterLink, CenterNotice, Io, MemoryStore};
use sota_link::at_sota::Config;
use sota_link::Endpoint;
use sota_protocol::message::MAX_MESSAGE_CHARS;
use sota_protocol::{Delivery, Down, ErrorCode, Firmware, PlanOffer, Up, UpgradeMode};
use sota_sim::at_mcu::{AtMcu, McuComponent, McuConfig};
use sota_sim::line::{Faults, Line, LineConfig};
use sota_sim::test_image as image;
use std::collections::BTreeMap;

const PLAN_ID: i64 = 42;
const URL: &str = "http://center/firmware/t";

fn plan(source: &str, size: u64) -> Plan {
    Plan {
        identity: "STM32".into(),
        component_type: ComponentType::Mcu,
        source_version: source.into(),
        target_version: "2_0_0".into(),
        min_battery: 30,
        min_signal_dbm: -113,
        space_needed: size,
        package_size: size,
        download_retries: Some(2),
    }
}

fn offer(source: &str, size: u64) -> PlanOffer {
    let delivery = Delivery {
        mode: UpgradeMode::Silent,
        texts: BTreeMap::new(),
    };
    PlanOffer::new(PLAN_ID, &plan(source, size), delivery)
}

fn firmware(bytes: &[u8]) -> Firmware {
    let d = Digester::digest(bytes);
    let info = FirmwareInfo {
        identity: "STM32".into(),
        version: "2_0_0".into(),
        md5: d.md5,
        crc32: d.crc32,
        sha256: d.sha256,
        url: URL.into(),
        size: bytes.len() as u64,
        mode: DownloadMode::ConsoleDownloads,
    };
    Firmware::new(PLAN_ID, &info)
}

struct Image(Vec<u8>);

impl Source for Image {
    fn read(&mut self, url: &str, start: u64, end: u64) -> Result<Vec<u8>, String> {
        assert_eq!(url, URL, "the download uses the firmware message's URL");
        Ok(self.0[start as usize..(end as usize).min(self.0.len())].to_vec())
    }
}

/// A device: the AT flow, its link to the center, and a center that answers a request with
/// `offers` and an accept with the firmware message.
struct Device {
    up: AtUpgrade,
    link: CenterLink,
    offers: Vec<PlanOffer>,
    firmware: Firmware,
    image: Image,
    store: MemoryStore,
    sent: Vec<Up>,
}

impl Device {
    fn new(offers: Vec<PlanOffer>, bytes: Vec<u8>) -> Self {
        let config = EngineConfig {
            piece_size: 4096,
            ..EngineConfig::default()
        };
        Device {
            up: AtUpgrade::new(Config::default(), Session::new(config, Vec::new())),
            link: CenterLink::new(),
            offers,
            firmware: firmware(&bytes),
            image: Image(bytes),
            store: MemoryStore::default(),
            sent: Vec::new(),
        }
    }

    fn exchange(&mut self, now: Duration) {
        loop {
            let link = &mut self.link;
            serve(
                &mut self.up,
                &mut self.image,
                &mut self.store,
                now,
                |_, io| {
                    assert!(
                        link.take(io).is_none(),
                        "the link takes what serve passes on"
                    );
                },
            );
            let mut answers = Vec::new();
            while let Some(up) = self.link.poll_up() {
                match &up {
                    Up::Request => answers.push(Down::Plans {
                        plans: self.offers.clone(),
                    }),
                    Up::Accept { .. } => answers.push(Down::Firmware(self.firmware.clone())),
                    _ => {}
                }
                self.sent.push(up);
            }
            if answers.is_empty() {
                return;
            }
            for down in answers {
                self.link.handle_down(down, &mut self.up, now);
            }
        }
    }

    fn statuses(&self) -> Vec<(u8, Option<u8>, Option<String>)> {
        self.sent
            .iter()
            .filter_map(|u| match u {
                Up::Status(s) => Some((s.status.code(), s.percent, s.version.clone())),
                _ => None,
            })
            .collect()
    }
}

impl Endpoint for Device {
    fn handle_input(&mut self, now: Duration, bytes: &[u8]) {
        self.up.handle_input(now, bytes);
        self.exchange(now);
    }
    fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        self.up.poll_transmit(out);
    }
    fn poll_timeout(&self) -> Option<Duration> {
        self.up.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Duration) {
        self.up.handle_timeout(now);
        self.exchange(now);
    }
    fn is_done(&self) -> bool {
        self.up.is_done()
    }
}

fn run_for(device: &mut Device, version: &str, limit: Duration) -> (AtMcu, bool) {
    let config = McuConfig {
        components: vec![McuComponent::new("STM32", version)],
        ..McuConfig::default()
    };
    let mut mcu = AtMcu::new(config, Duration::ZERO);
    let mut line = Line::new(LineConfig::n81(115_200), Faults::default());
    let report = line.run(device, &mut mcu, limit);
    (mcu, report.finished)
}

fn run(device: &mut Device, version: &str) -> AtMcu {
    let (mcu, finished) = run_for(device, version, Duration::from_secs(600));
    assert!(finished, "the upgrade did not finish");
    mcu
}

#[test]
fn a_whole_upgrade_speaks_the_protocol_and_reports_every_status() {
    let bytes = image(20_000, 5);
    let mut device = Device::new(vec![offer("", 20_000)], bytes.clone());
    let mcu = run(&mut device, "1_0_0");
    assert_eq!(mcu.flash_of("STM32"), Some(&bytes[..]));

    let kinds: Vec<&str> = device.sent.iter().map(Up::kind).collect();
    assert_eq!(&kinds[..3], ["versions", "request", "status"], "{kinds:?}");
    assert!(matches!(&device.sent[0], Up::Versions { components }
        if components.len() == 1 && components[0].comp_no == "STM32" && components[0].version == "1_0_0"));
    let accepts: Vec<&Up> = device
        .sent
        .iter()
        .filter(|u| u.kind() == "accept")
        .collect();
    assert_eq!(accepts, [&Up::accept(PLAN_ID, "STM32")]);
    let statuses = device.statuses();
    let codes: Vec<u8> = statuses.iter().map(|s| s.0).collect();
    let downloading: Vec<u8> = statuses
        .iter()
        .filter(|s| s.0 == 5)
        .map(|s| s.1.expect("a downloading report carries its percent"))
        .collect();
    assert_eq!(downloading, (1..=10).map(|i| i * 10).collect::<Vec<u8>>());
    assert!(
        statuses.iter().all(|s| (s.0 == 5) == s.1.is_some()),
        "percent only with status 5: {statuses:?}"
    );
    assert!(
        !codes.contains(&2),
        "`accept` carries the acceptance: {codes:?}"
    );
    let first = |c: u8| codes.iter().position(|&x| x == c).unwrap_or(usize::MAX);
    assert!(
        first(1) < first(4) && first(4) < first(8) && first(8) < first(9) && first(9) < first(11),
        "{codes:?}"
    );
    assert_eq!(
        statuses.last(),
        Some(&(11, None, Some("2_0_0".to_string()))),
        "update ok carries the version the MCU reports"
    );
    assert!(device.sent.iter().all(|u| match u {
        Up::Status(s) => s.plan_id == PLAN_ID,
        _ => true,
    }));
}

#[test]
fn a_plan_the_session_refuses_is_refused_to_the_center_with_the_reason() {
    // A delta from 0_9_0, while the MCU runs 1_0_0.
    let mut device = Device::new(vec![offer("0_9_0", 5_000)], image(5_000, 6));
    let mcu = run(&mut device, "1_0_0");
    assert!(mcu.flash_of("STM32").is_some_and(<[u8]>::is_empty));
    let refusals: Vec<&Up> = device
        .sent
        .iter()
        .filter(|u| u.kind() == "refuse")
        .collect();
    assert!(
        matches!(&refusals[..], [Up::Refuse { plan_id: PLAN_ID, comp_no, message }]
            if comp_no == "STM32" && message.contains("0_9_0")),
        "{refusals:?}"
    );
    assert!(!device.sent.iter().any(|u| u.kind() == "accept"));
}

#[test]
fn no_plan_from_the_center_ends_the_flow_without_an_upgrade() {
    let mut device = Device::new(Vec::new(), image(10, 1));
    // The MCU keeps waiting for a plan; the module is done.
    let (mcu, _) = run_for(&mut device, "1_0_0", Duration::from_secs(10));
    let notes: Vec<_> = std::iter::from_fn(|| device.up.poll_notice()).collect();
    assert!(device.up.is_done(), "{:?} {notes:?}", device.sent);
    assert_eq!(mcu.firmware_bytes_received(), 0);
    assert!(device.statuses().is_empty());
    assert!(device.up.session().results().is_empty());
}

/// A driver that only records what it was given.
#[derive(Default)]
struct Recorder {
    plans: Vec<Vec<Plan>>,
    infos: Vec<FirmwareInfo>,
}

impl Driver for Recorder {
    fn poll_io(&mut self) -> Option<Io> {
        None
    }
    fn fetched(&mut self, _: u64, _: Vec<u8>, _: Duration) {}
    fn fetch_failed(&mut self, _: String, _: Duration) {}
    fn read_done(&mut self, _: u64, _: Vec<u8>, _: Duration) {}
    fn store_lost(&mut self, _: Duration) {}
    fn provide_plans(&mut self, plans: Vec<Plan>, _: Duration) {
        self.plans.push(plans);
    }
    fn provide_info(&mut self, info: FirmwareInfo, _: Duration) {
        self.infos.push(info);
    }
}

fn drain(link: &mut CenterLink) -> Vec<Up> {
    std::iter::from_fn(|| link.poll_up()).collect()
}

fn notices(link: &mut CenterLink) -> Vec<CenterNotice> {
    std::iter::from_fn(|| link.poll_notice()).collect()
}

#[test]
fn a_reconnect_repeats_only_what_is_unanswered() {
    let mut link = CenterLink::new();
    let mut flow = Recorder::default();
    let now = Duration::ZERO;
    link.reconnected();
    assert!(drain(&mut link).is_empty(), "nothing asked yet");
    let components = vec![sota_engine::Component {
        identity: "STM32".into(),
        version: "1_0_0".into(),
    }];
    assert!(link.take(Io::NeedPlans { components }).is_none());
    let asked = drain(&mut link);
    assert_eq!(
        asked.iter().map(Up::kind).collect::<Vec<_>>(),
        ["versions", "request"]
    );
    link.reconnected();
    assert_eq!(drain(&mut link), asked, "the unanswered request again");

    link.handle_down(
        Down::Plans {
            plans: vec![offer("", 9)],
        },
        &mut flow,
        now,
    );
    assert_eq!(flow.plans, [vec![offer("", 9).to_plan()]]);
    assert_eq!(
        flow.plans[0][0].download_retries,
        Some(2),
        "the plan's retries reach the session"
    );
    link.reconnected();
    assert!(drain(&mut link).is_empty(), "answered: nothing to repeat");

    assert!(link
        .take(Io::NeedFirmwareInfo { plan: plan("", 9) })
        .is_none());
    let accept = drain(&mut link);
    assert_eq!(accept, [Up::accept(PLAN_ID, "STM32")]);
    link.reconnected();
    assert_eq!(drain(&mut link), accept, "the unanswered accept again");

    // Firmware for another plan is not taken; the awaited one is, once.
    let mut stray = firmware(b"123456789");
    stray.plan_id = 7;
    link.handle_down(Down::Firmware(stray), &mut flow, now);
    assert!(flow.infos.is_empty());
    assert!(
        matches!(&notices(&mut link)[..], [CenterNotice::Plans(_), CenterNotice::Ignored(w)] if w.contains("plan 7"))
    );
    link.handle_down(Down::Firmware(firmware(b"123456789")), &mut flow, now);
    link.handle_down(Down::Firmware(firmware(b"123456789")), &mut flow, now);
    assert_eq!(
        flow.infos.len(),
        1,
        "a repeated firmware message is ignored"
    );
    link.reconnected();
    assert!(drain(&mut link).is_empty());
}

#[test]
fn pushed_plans_are_taken_before_a_request_and_not_during_an_upgrade() {
    let mut link = CenterLink::new();
    let mut flow = Recorder::default();
    let now = Duration::ZERO;
    link.handle_down(
        Down::Plans {
            plans: vec![offer("", 9)],
        },
        &mut flow,
        now,
    );
    assert_eq!(
        flow.plans.len(),
        1,
        "a push before the MCU asked is handed over"
    );
    link.handle_down(
        Down::Plans {
            plans: vec![offer("", 9)],
        },
        &mut flow,
        now,
    );
    assert_eq!(flow.plans.len(), 1, "a push during an upgrade waits");
    assert!(
        matches!(notices(&mut link).last(), Some(CenterNotice::Ignored(w)) if w.contains("pushed"))
    );
}

#[test]
fn reports_become_status_and_refuse_messages_within_the_centers_limits() {
    let mut link = CenterLink::new();
    let mut flow = Recorder::default();
    let report = |status, message: String| Report {
        status,
        component: "STM32".into(),
        message,
        percent: None,
        version: None,
    };
    // Before any offer there is no plan to report on.
    assert!(link
        .take(Io::Report(report(Status::Plan, "x".into())))
        .is_none());
    assert!(drain(&mut link).is_empty());
    link.handle_down(
        Down::Plans {
            plans: vec![offer("", 9)],
        },
        &mut flow,
        Duration::ZERO,
    );
    let long = "é".repeat(MAX_MESSAGE_CHARS + 5);
    link.take(Io::Report(report(Status::DownloadError, long)));
    link.take(Io::Report(report(Status::Accepted, "accepted".into())));
    link.take(Io::Report(report(
        Status::Refused,
        "battery 10 % < 30 %".into(),
    )));
    let sent = drain(&mut link);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(
        matches!(&sent[0], Up::Status(s) if s.status == Status::DownloadError && s.message.chars().count() == MAX_MESSAGE_CHARS)
    );
    assert_eq!(
        sent[1],
        Up::Refuse {
            plan_id: PLAN_ID,
            comp_no: "STM32".into(),
            message: "battery 10 % < 30 %".into()
        }
    );
    // Other requests are the adapter's.
    let fetch = Io::Discard {
        component: "STM32".into(),
    };
    assert_eq!(link.take(fetch.clone()), Some(fetch));
}

#[test]
fn registration_and_errors_reach_the_adapter() {
    let mut link = CenterLink::new();
    let mut flow = Recorder::default();
    link.register("product-secret");
    assert_eq!(
        drain(&mut link),
        [Up::Register {
            product_secret: "product-secret".into()
        }]
    );
    link.handle_down(
        Down::Registered {
            device_secret: "s".into(),
        },
        &mut flow,
        Duration::ZERO,
    );
    link.handle_down(
        Down::error(ErrorCode::UnknownDevice, "who?"),
        &mut flow,
        Duration::ZERO,
    );
    assert_eq!(
        notices(&mut link),
        [
            CenterNotice::Registered {
                device_secret: "s".into()
            },
            CenterNotice::Error {
                code: ErrorCode::UnknownDevice,
                message: "who?".into()
            }
        ]
    );
}

#[test]
fn manual_plans_wait_for_the_technician_and_a_refusal_is_reported_with_the_reason() {
    let manual = |id: i64| {
        let mut o = offer("", 9);
        o.plan_id = id;
        o.mode = UpgradeMode::Manual;
        o.texts.insert("en".into(), "New scent profiles".into());
        o
    };
    let now = Duration::ZERO;
    // Accepted: handed over only then.
    let mut link = CenterLink::asking_for_manual_plans();
    let mut flow = Recorder::default();
    link.handle_down(
        Down::Plans {
            plans: vec![manual(PLAN_ID)],
        },
        &mut flow,
        now,
    );
    assert!(flow.plans.is_empty(), "a manual plan waits");
    assert_eq!(link.held().len(), 1);
    assert_eq!(link.held()[0].texts["en"], "New scent profiles");
    link.approve(&mut flow, now);
    assert_eq!(flow.plans.len(), 1);
    assert!(link.held().is_empty());
    link.approve(&mut flow, now);
    assert_eq!(flow.plans.len(), 1, "approving twice hands over once");

    // Refused: the center hears why, the flow gets no plan.
    let mut link = CenterLink::asking_for_manual_plans();
    let mut flow = Recorder::default();
    link.handle_down(
        Down::Plans {
            plans: vec![manual(PLAN_ID)],
        },
        &mut flow,
        now,
    );
    link.refuse_held("the machine is in use", &mut flow, now);
    assert_eq!(flow.plans, [Vec::<Plan>::new()]);
    assert_eq!(
        drain(&mut link),
        [Up::Refuse {
            plan_id: PLAN_ID,
            comp_no: "STM32".into(),
            message: "refused by the technician: the machine is in use".into()
        }]
    );

    // Silent plans go ahead even when asking, and without asking manual ones do too.
    let mut link = CenterLink::asking_for_manual_plans();
    let mut flow = Recorder::default();
    link.handle_down(
        Down::Plans {
            plans: vec![offer("", 9)],
        },
        &mut flow,
        now,
    );
    assert_eq!(flow.plans.len(), 1);
    let mut link = CenterLink::new();
    let mut flow = Recorder::default();
    link.handle_down(
        Down::Plans {
            plans: vec![manual(PLAN_ID)],
        },
        &mut flow,
        now,
    );
    assert_eq!(flow.plans.len(), 1);
}

#[test]
fn an_approval_with_a_remark_sends_it_with_the_accept() {
    let manual = || {
        let mut o = offer("", 9);
        o.mode = UpgradeMode::Manual;
        o
    };
    let now = Duration::ZERO;
    let mut link = CenterLink::asking_for_manual_plans();
    let mut flow = Recorder::default();
    link.handle_down(
        Down::Plans {
            plans: vec![manual()],
        },
        &mut flow,
        now,
    );
    link.approve_noting(
        "  strategy overridden by the technician: on mains power  ",
        &mut flow,
        now,
    );
    assert!(link
        .take(Io::NeedFirmwareInfo { plan: plan("", 9) })
        .is_none());
    assert_eq!(
        drain(&mut link),
        [Up::Accept {
            plan_id: PLAN_ID,
            comp_no: "STM32".into(),
            message: "strategy overridden by the technician: on mains power".into(),
        }]
    );
}

#[test]
fn a_restored_link_reports_on_the_plans_it_was_given_and_takes_no_push() {
    let mut link = CenterLink::asking_for_manual_plans();
    let mut flow = Recorder::default();
    let now = Duration::ZERO;
    link.handle_down(
        Down::Plans {
            plans: vec![offer("", 9)],
        },
        &mut flow,
        now,
    );
    assert_eq!(flow.plans.len(), 1);
    // The page reloads: the snapshot goes through storage as JSON.
    let json = serde_json::to_string(&link.snapshot()).unwrap();
    let mut link = CenterLink::restored(serde_json::from_str(&json).unwrap());
    assert_eq!(link.offer("STM32").map(|o| o.plan_id), Some(PLAN_ID));
    link.take(Io::Report(Report {
        status: Status::DownloadOk,
        component: "STM32".into(),
        message: "downloaded".into(),
        percent: None,
        version: None,
    }));
    assert!(
        matches!(&drain(&mut link)[..], [Up::Status(s)] if s.plan_id == PLAN_ID && s.status == Status::DownloadOk)
    );
    link.handle_down(
        Down::Plans {
            plans: vec![offer("", 9)],
        },
        &mut flow,
        now,
    );
    assert_eq!(
        flow.plans.len(),
        1,
        "a push during the restored upgrade waits"
    );
    // Nothing was asked and unanswered: a reconnect repeats nothing.
    link.reconnected();
    assert!(drain(&mut link).is_empty());
}

#[test]
fn a_restored_link_keeps_the_technicians_remark_for_the_plans_still_to_come() {
    let manual = |component: &str| {
        let mut o = offer("", 9);
        o.mode = UpgradeMode::Manual;
        o.comp_no = component.into();
        o
    };
    let now = Duration::ZERO;
    let mut link = CenterLink::asking_for_manual_plans();
    let mut flow = Recorder::default();
    link.handle_down(
        Down::Plans {
            plans: vec![manual("STM32"), manual("BLE")],
        },
        &mut flow,
        now,
    );
    link.approve_noting("on mains power", &mut flow, now);
    link.take(Io::NeedFirmwareInfo { plan: plan("", 9) });
    drain(&mut link);
    // Reloaded while STM32 downloads; BLE's plan comes after it.
    let json = serde_json::to_string(&link.snapshot()).unwrap();
    let mut link = CenterLink::restored(serde_json::from_str(&json).unwrap());
    let ble = Plan {
        identity: "BLE".into(),
        ..plan("", 9)
    };
    link.take(Io::NeedFirmwareInfo { plan: ble });
    assert_eq!(
        drain(&mut link),
        [Up::Accept {
            plan_id: PLAN_ID,
            comp_no: "BLE".into(),
            message: "on mains power".into(),
        }]
    );
}
