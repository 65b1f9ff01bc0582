//! The AT SOTA module driven by the engine's session (`sota_flow::AtUpgrade`) against the
//! simulated MCU, through the line: the engine downloads, verifies and offers pieces; the
//! module speaks AT; `sota_flow::io::serve` carries out the I/O over a map of files and a
//! `MemoryStore`.

use core::time::Duration;
use sota_engine::{
    ComponentType, Config as EngineConfig, Digester, DownloadMode, Failure, FirmwareInfo, Outcome,
    Plan, Refusal, Session,
};
use sota_flow::io::{serve, ImageStore, Source};
use sota_flow::{AtSnapshot, AtUpgrade, Io, MemoryStore};
use sota_link::at_sota::Config;
use sota_link::Endpoint;
use sota_sim::at_mcu::{AtMcu, McuComponent, McuConfig, McuOutcome};
use sota_sim::line::{Disconnect, Faults, Line, LineConfig, Report};
use sota_sim::test_image as image;
use std::collections::HashMap;

/// Bit flips and dropped bytes at 1e-4, and one disconnect.
fn field_faults(seed: u64, disconnect_after: u64) -> Faults {
    Faults {
        bit_flip_rate: 1e-4,
        drop_rate: 1e-4,
        disconnect: Some(Disconnect {
            after_bytes: disconnect_after,
            duration: Duration::from_millis(1500),
        }),
        seed,
    }
}

/// Firmware files by URL: what a download reads, and the ranges it asked for.
struct Files(HashMap<String, Vec<u8>>, Vec<(u64, u64)>);

impl Source for Files {
    fn read(&mut self, url: &str, start: u64, end: u64) -> Result<Vec<u8>, String> {
        self.1.push((start, end));
        let file = self.0.get(url).ok_or_else(|| format!("no file at {url}"))?;
        let end = end.min(file.len() as u64);
        Ok(file[start as usize..end as usize].to_vec())
    }
}

/// A `MemoryStore` that counts the bytes read back: every piece the module hands the MCU
/// is read from the store first (nothing here restores a session, so nothing is refed).
#[derive(Default)]
struct Counted {
    store: MemoryStore,
    read: u64,
}

impl ImageStore for Counted {
    fn append(&mut self, component: &str, offset: u64, bytes: &[u8]) -> Result<(), String> {
        self.store.append(component, offset, bytes)
    }
    fn read(&mut self, component: &str, offset: u64, len: u64) -> Result<Vec<u8>, String> {
        self.read += len;
        self.store.read(component, offset, len)
    }
    fn discard(&mut self, component: &str) {
        self.store.discard(component)
    }
}

/// The adapter a CLI or browser would be: plans and infos answer the driver's requests.
struct Served {
    up: AtUpgrade,
    plans: Vec<Plan>,
    infos: Vec<FirmwareInfo>,
    files: Files,
    store: Counted,
    /// Times the driver asked for plans.
    plans_asked: u32,
}

impl Served {
    fn serve(&mut self, now: Duration) {
        let (plans, infos, asked) = (&self.plans, &self.infos, &mut self.plans_asked);
        serve(
            &mut self.up,
            &mut self.files,
            &mut self.store,
            now,
            |up, io| match io {
                Io::NeedPlans { components } => {
                    *asked += 1;
                    assert!(
                        !components.is_empty(),
                        "the MCU reported its components first"
                    );
                    up.provide_plans(plans.clone(), now).expect("plans taken");
                }
                Io::NeedFirmwareInfo { plan } => {
                    let info = infos
                        .iter()
                        .find(|i| i.identity == plan.identity)
                        .expect("an info for every plan");
                    up.provide_info(info.clone(), now).expect("info taken");
                }
                Io::Report(_) => {}
                other => panic!("serve passed on {other:?}"),
            },
        );
    }
}

impl Endpoint for Served {
    fn handle_input(&mut self, now: Duration, bytes: &[u8]) {
        self.up.handle_input(now, bytes);
        self.serve(now);
    }
    fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        self.up.poll_transmit(out);
    }
    fn poll_timeout(&self) -> Option<Duration> {
        self.up.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Duration) {
        self.up.handle_timeout(now);
        self.serve(now);
    }
    fn is_done(&self) -> bool {
        self.up.is_done()
    }
}

struct Part<'a> {
    component: &'a str,
    source: &'a str,
    target: &'a str,
    firmware: &'a [u8],
    /// Replaces the file's SHA-256 in the firmware info.
    sha256: Option<String>,
}

fn part<'a>(component: &'a str, target: &'a str, firmware: &'a [u8]) -> Part<'a> {
    Part {
        component,
        source: "",
        target,
        firmware,
        sha256: None,
    }
}

fn served(parts: &[Part], piece_size: u32) -> Served {
    let mut plans = Vec::new();
    let mut infos = Vec::new();
    let mut files = HashMap::new();
    for p in parts {
        let d = Digester::digest(p.firmware);
        let url = format!("file:///{}.bin", p.component);
        plans.push(Plan {
            identity: p.component.into(),
            component_type: ComponentType::Mcu,
            source_version: p.source.into(),
            target_version: p.target.into(),
            min_battery: 30,
            min_signal_dbm: -113,
            space_needed: p.firmware.len() as u64,
            package_size: p.firmware.len() as u64,
            download_retries: None,
        });
        infos.push(FirmwareInfo {
            identity: p.component.into(),
            version: p.target.into(),
            md5: d.md5,
            crc32: d.crc32,
            sha256: p.sha256.clone().unwrap_or(d.sha256),
            url: url.clone(),
            size: p.firmware.len() as u64,
            mode: DownloadMode::ConsoleDownloads,
        });
        files.insert(url, p.firmware.to_vec());
    }
    let config = EngineConfig {
        piece_size,
        ..EngineConfig::default()
    };
    Served {
        up: AtUpgrade::new(Config::default(), Session::new(config, Vec::new())),
        plans,
        infos,
        files: Files(files, Vec::new()),
        store: Counted::default(),
        plans_asked: 0,
    }
}

fn run(served: &mut Served, mcu: McuConfig, faults: Faults) -> (AtMcu, Report) {
    let mut mcu = AtMcu::new(mcu, Duration::ZERO);
    let mut line = Line::new(LineConfig::n81(115_200), faults);
    let report = line.run(served, &mut mcu, Duration::from_secs(3600));
    (mcu, report)
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

fn outcomes(s: &Served) -> Vec<(String, Outcome)> {
    s.up.session()
        .results()
        .iter()
        .map(|r| (r.identity.clone(), r.outcome.clone()))
        .collect()
}

#[test]
fn the_session_upgrades_two_components_in_pieces() {
    let stm32 = image(10_001, 61);
    let ble = image(3_000, 62);
    let mut s = served(
        &[part("STM32", "2_0_0", &stm32), part("BLE", "1_0_0", &ble)],
        4096,
    );
    let (mcu, report) = run(&mut s, two_components(), Faults::default());
    assert!(report.finished, "{report:?}");
    assert_eq!(
        outcomes(&s),
        vec![
            ("STM32".to_string(), Outcome::Succeeded),
            ("BLE".to_string(), Outcome::Succeeded)
        ]
    );
    assert!(mcu.flash_of("STM32") == Some(&stm32[..]));
    assert!(mcu.flash_of("BLE") == Some(&ble[..]));
    assert_eq!(mcu.version_of("BLE"), Some("1_0_0"));
    assert_eq!(s.store.read, (stm32.len() + ble.len()) as u64);
    assert_eq!(s.plans_asked, 1, "plans are asked for once");
    assert!(
        s.store.store.image("STM32").is_none() && s.store.store.image("BLE").is_none(),
        "images are discarded after each plan"
    );
}

#[test]
fn a_wrong_sha256_fails_the_plan_and_no_byte_reaches_the_mcu() {
    let stm32 = image(5_000, 71);
    let mut wrong = part("STM32", "2_0_0", &stm32);
    wrong.sha256 = Some("00".repeat(32));
    let mut s = served(&[wrong], 4096);
    let (mcu, report) = run(&mut s, McuConfig::default(), Faults::default());
    assert!(report.finished, "{report:?}");
    let results = outcomes(&s);
    assert!(
        matches!(&results[..], [(_, Outcome::Failed(Failure::DigestMismatch(m)))] if m.len() == 1),
        "{results:?}"
    );
    assert_eq!(s.store.read, 0, "a piece was read for the MCU");
    assert_eq!(mcu.firmware_bytes_received(), 0);
    assert!(mcu.flash().is_empty());
    assert!(matches!(
        mcu.outcome(),
        Some(McuOutcome::Failed { reason }) if reason.contains("10706")
    ));
}

#[test]
fn a_delta_plan_for_another_source_version_is_refused_by_the_session() {
    let stm32 = image(2_000, 81);
    let mut delta = part("STM32", "2_0_0", &stm32);
    delta.source = "0_5_0";
    let mut s = served(&[delta], 4096);
    let (mcu, report) = run(&mut s, McuConfig::default(), Faults::default());
    assert!(report.finished, "{report:?}");
    let results = outcomes(&s);
    assert!(
        matches!(&results[..], [(_, Outcome::Failed(Failure::Refused(r)))]
            if r == &[Refusal::SourceMismatch { have: Some("1_0_0".into()), need: "0_5_0".into() }]),
        "{results:?}"
    );
    assert_eq!(mcu.firmware_bytes_received(), 0);
}

#[test]
fn a_plan_the_mcu_refuses_ends_and_the_next_plan_runs() {
    let stm32 = image(2_000, 91);
    let ble = image(2_000, 92);
    let mut mcu_config = two_components();
    mcu_config.components[1].free_space = 100;
    let mut s = served(
        &[part("BLE", "1_0_0", &ble), part("STM32", "2_0_0", &stm32)],
        4096,
    );
    let (mcu, report) = run(&mut s, mcu_config, Faults::default());
    assert!(report.finished, "{report:?}");
    let results = outcomes(&s);
    assert!(
        matches!(&results[0], (c, Outcome::Failed(Failure::Refused(r)))
            if c == "BLE" && matches!(r[..], [sota_engine::Refusal::Declined { .. }])),
        "{results:?}"
    );
    assert_eq!(results[1], ("STM32".to_string(), Outcome::Succeeded));
    assert!(matches!(&mcu.results()[0].1, McuOutcome::Refused { .. }));
    assert!(mcu.flash_of("STM32") == Some(&stm32[..]));
    assert!(mcu.flash_of("BLE") == Some(&[][..]));
}

#[test]
fn through_faults_the_session_never_reports_a_wrong_image_as_success() {
    let mut succeeded = 0;
    for seed in 1..=4 {
        let stm32 = image(700, 100 + seed);
        let ble = image(400, 200 + seed);
        let mut s = served(
            &[part("STM32", "2_0_0", &stm32), part("BLE", "1_0_0", &ble)],
            512,
        );
        let (mcu, report) = run(&mut s, two_components(), field_faults(seed, 300));
        assert!(report.finished, "seed {seed}: {report:?}");
        eprintln!("seed {seed}: {:?}", outcomes(&s));
        for (name, outcome) in outcomes(&s) {
            let want = if name == "STM32" { &stm32 } else { &ble };
            let flash = mcu.flash_of(&name).unwrap();
            assert!(
                flash.is_empty() || flash == &want[..],
                "seed {seed}: a wrong {name} image was installed"
            );
            if outcome == Outcome::Succeeded {
                assert!(
                    flash == &want[..],
                    "seed {seed}: {name} succeeded without the image"
                );
                succeeded += 1;
            }
        }
    }
    assert!(
        succeeded >= 5,
        "only {succeeded}/8 plans survived the faults"
    );
}

/// A console page that reloads once mid-upgrade: when `when` first holds, the upgrade is saved
/// as JSON and the instance dropped; for `gap` the MCU's bytes go nowhere; then a new
/// instance is restored from the JSON and the store, which keeps only `kept` bytes when set
/// (a batch not yet written when the page went).
struct Reloading {
    served: Served,
    when: fn(&AtUpgrade) -> bool,
    gap: Duration,
    kept: Option<u64>,
    /// The saved upgrade, and when the new page takes it up.
    saved: Option<(String, Duration)>,
    /// (download offset, transfer offset) when saved.
    saved_at: Option<(Option<u64>, Option<u64>)>,
    /// What the restored instance sent the MCU.
    after: Vec<u8>,
}

impl Reloading {
    fn new(served: Served, when: fn(&AtUpgrade) -> bool) -> Self {
        Reloading {
            served,
            when,
            gap: Duration::from_secs(3),
            kept: None,
            saved: None,
            saved_at: None,
            after: Vec::new(),
        }
    }

    fn check(&mut self, now: Duration) {
        if self.saved_at.is_some() || !(self.when)(&self.served.up) {
            return;
        }
        let session = self.served.up.session();
        self.saved_at = Some((session.download_offset(), session.transfer_offset()));
        let snapshot = self
            .served
            .up
            .snapshot()
            .expect("a downloading or transferring upgrade has a snapshot");
        let json = serde_json::to_string(&snapshot).expect("the snapshot serializes");
        self.saved = Some((json, now + self.gap));
    }

    fn reload(&mut self, now: Duration) {
        let Some((json, _)) = self.saved.take() else {
            return;
        };
        let snapshot: AtSnapshot = serde_json::from_str(&json).expect("the snapshot reads back");
        let component = snapshot.session().current_plan().unwrap().identity.clone();
        let image = self
            .served
            .store
            .store
            .image(&component)
            .unwrap_or_default()
            .to_vec();
        if let Some(kept) = self.kept {
            self.served.store.store.discard(&component);
            self.served
                .store
                .store
                .append(&component, 0, &image[..kept as usize])
                .unwrap();
        }
        let stored = self.kept.unwrap_or(image.len() as u64);
        // Its I/O is carried out only after the MCU's next bytes: browser storage answers
        // later than the MCU asks.
        self.served.up = AtUpgrade::restore(Config::default(), snapshot, stored, now);
    }
}

impl Endpoint for Reloading {
    fn handle_input(&mut self, now: Duration, bytes: &[u8]) {
        if self.saved.is_some() {
            return; // The page is away: the bytes are lost.
        }
        self.served.handle_input(now, bytes);
        self.check(now);
    }
    fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        if self.saved.is_none() {
            let from = out.len();
            self.served.poll_transmit(out);
            if self.saved_at.is_some() {
                self.after.extend_from_slice(&out[from..]);
            }
        }
    }
    fn poll_timeout(&self) -> Option<Duration> {
        match &self.saved {
            Some((_, at)) => Some(*at),
            None => self.served.poll_timeout(),
        }
    }
    fn handle_timeout(&mut self, now: Duration) {
        match &self.saved {
            Some((_, at)) if now >= *at => self.reload(now),
            Some(_) => {}
            None => {
                self.served.handle_timeout(now);
                self.check(now);
            }
        }
    }
    fn is_done(&self) -> bool {
        self.saved.is_none() && self.served.is_done()
    }
}

fn reload_run(reloading: &mut Reloading) -> AtMcu {
    let mut mcu = AtMcu::new(McuConfig::default(), Duration::ZERO);
    let mut line = Line::new(LineConfig::n81(115_200), Faults::default());
    let report = line.run(reloading, &mut mcu, Duration::from_secs(3600));
    assert!(report.finished, "{report:?}");
    mcu
}

#[test]
fn a_page_reloaded_mid_transfer_continues_from_the_last_confirmed_piece() {
    let firmware = image(40_000, 21);
    // Saved while the MCU reads inside the piece at 16384 (it confirmed the pieces before).
    let mut r = Reloading::new(served(&[part("STM32", "2_0_0", &firmware)], 4096), |u| {
        u.state().step == sota_flow::Step::Writing && u.state().done >= 18_000
    });
    let mcu = reload_run(&mut r);
    assert_eq!(
        mcu.outcome(),
        Some(&McuOutcome::Updated {
            version: "2_0_0".into()
        })
    );
    assert_eq!(mcu.flash(), &firmware[..]);
    assert_eq!(
        outcomes(&r.served),
        [("STM32".to_string(), Outcome::Succeeded)]
    );
    let (_, Some(confirmed)) = r.saved_at.unwrap() else {
        panic!("saved while transferring");
    };
    assert_eq!(confirmed, 16_384);
    // The MCU's read waited for the piece instead of getting ERROR while the store was read,
    // and went on inside the piece where it was.
    let after = String::from_utf8_lossy(&r.after);
    assert!(!after.contains("ERROR"), "{after}");
    assert!(after.contains("+QIOTOTARD: 18432,"), "{after}");
    // Nothing was downloaded again, and the MCU read again at most the piece it was in.
    assert_eq!(
        r.served.files.1.iter().map(|(a, b)| b - a).sum::<u64>(),
        40_000
    );
    assert!(
        mcu.firmware_bytes_received() <= 40_000 + 4096,
        "{} bytes received",
        mcu.firmware_bytes_received()
    );
}

#[test]
fn a_page_reloaded_mid_download_fetches_on_from_what_the_store_kept() {
    let firmware = image(300_000, 22);
    let mut r = Reloading::new(served(&[part("STM32", "2_0_0", &firmware)], 4096), |u| {
        u.session().download_offset().is_some_and(|o| o >= 196_608)
    });
    r.kept = Some(131_072);
    let mcu = reload_run(&mut r);
    assert_eq!(
        mcu.outcome(),
        Some(&McuOutcome::Updated {
            version: "2_0_0".into()
        })
    );
    assert_eq!(mcu.flash(), &firmware[..]);
    // The new page asked for the image from what the store kept, not from its start.
    let ranges = &r.served.files.1;
    let restart = ranges
        .iter()
        .position(|(start, _)| *start == 131_072)
        .expect("a fetch from the kept length");
    assert!(
        ranges[restart..].iter().all(|(start, _)| *start >= 131_072),
        "{ranges:?}"
    );
    assert_eq!(mcu.firmware_bytes_received(), 300_000);
}

#[test]
fn a_snapshot_is_only_taken_while_a_plan_downloads_or_transfers() {
    let firmware = image(10_000, 23);
    let mut s = served(&[part("STM32", "2_0_0", &firmware)], 4096);
    assert!(s.up.snapshot().is_none(), "nothing asked yet");
    let (mcu, _) = run(&mut s, McuConfig::default(), Faults::default());
    assert!(matches!(mcu.outcome(), Some(McuOutcome::Updated { .. })));
    assert!(s.up.snapshot().is_none(), "the plan ended");
}
