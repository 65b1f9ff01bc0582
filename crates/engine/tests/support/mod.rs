//! A simulated world around a [`Session`]: center, network, adapter store, MCU and technician.
//!
//! The world reacts only to the session's commands and to a script of steps, so a script
//! replays identically on a session that was serialized and restored in between. It checks
//! the session's invariants on every call (see `World::pump`).
#![allow(dead_code)] // each test binary uses a different part of it

use sota_engine::session::Stage;
use sota_engine::*;
use std::collections::HashMap;

pub const T0: u64 = 1_000;

pub fn image(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

pub fn plan(identity: &str, size: u64) -> Plan {
    Plan {
        identity: identity.into(),
        component_type: ComponentType::Mcu,
        source_version: String::new(),
        target_version: "2_0_0".into(),
        min_battery: 30,
        min_signal_dbm: -113,
        space_needed: size,
        package_size: size,
        download_retries: None,
    }
}

pub fn info_for(identity: &str, img: &[u8]) -> FirmwareInfo {
    let d = Digester::digest(img);
    FirmwareInfo {
        identity: identity.into(),
        version: "2_0_0".into(),
        md5: d.md5,
        crc32: d.crc32,
        sha256: d.sha256,
        url: format!("https://center.invalid/{identity}.bin"),
        size: img.len() as u64,
        mode: DownloadMode::ConsoleDownloads,
    }
}

pub fn good_readings() -> Readings {
    Readings {
        battery: 80,
        signal_dbm: -80,
        free_flash: 1 << 20,
    }
}

/// Which part of a firmware delivery is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corrupt {
    None,
    /// The announced MD5 is wrong.
    Md5,
    /// The announced CRC32 is wrong.
    Crc,
    /// The announced SHA-256 is wrong.
    Sha,
    /// The network flips a byte at this index (modulo size) on every delivery.
    Byte(usize),
}

#[derive(Clone, Debug)]
pub struct PlanSpec {
    pub image_len: usize,
    pub seed: u8,
    pub corrupt: Corrupt,
    pub mcu_downloads: bool,
    /// A delta plan; `source_matches` says whether the device runs its source version.
    pub delta: Option<bool>,
}

#[derive(Clone, Debug)]
pub enum Step {
    /// 0 good; 1 bad, no override; 2 bad, blank override; 3 bad, override with reason.
    Readings(u8),
    Info {
        wrong_component: bool,
    },
    Deliver(u16),
    FailDownload,
    Take,
    TakeWrong,
    UpdateDone,
    Version {
        good: bool,
    },
    Wait(u64),
    StoreLost,
}

#[derive(Clone, Debug)]
pub struct Spec {
    pub plans: Vec<PlanSpec>,
    pub piece_size: u32,
    pub steps: Vec<Step>,
}

/// What the world saw, for the properties.
#[derive(Debug, Default)]
pub struct Trace {
    pub results: Vec<PlanResult>,
    /// Progress percents per component and stage, in order.
    pub progress: HashMap<(String, Stage), Vec<u8>>,
    /// Pieces offered per component.
    pub offers: HashMap<String, usize>,
    pub reports: Vec<(String, u8)>,
}

pub struct World {
    pub spec: Spec,
    pub now: u64,
    pub session: Session,
    pub images: HashMap<String, Vec<u8>>,
    /// Fetch in progress: (next byte, end).
    fetch: Option<(u64, u64)>,
    offered: Option<(u64, u32)>,
    store: HashMap<String, Vec<u8>>,
    /// Whether the stored image matches the announced digests; recomputed when it changes.
    store_ok: HashMap<String, bool>,
    announced: HashMap<String, FirmwareInfo>,
    /// Bytes stored per component over the whole run (survives discards), for progress.
    downloaded: HashMap<String, u64>,
    taken: HashMap<String, u64>,
    flash: HashMap<String, Vec<u8>>,
    pub trace: Trace,
}

fn id(i: usize) -> String {
    format!("C{i}")
}

impl World {
    pub fn new(spec: Spec) -> Self {
        let config = Config {
            piece_size: spec.piece_size,
            ..Config::default()
        };
        let components = (0..spec.plans.len())
            .map(|i| Component {
                identity: id(i),
                version: "1_0_0".into(),
            })
            .collect();
        let images = spec
            .plans
            .iter()
            .enumerate()
            .map(|(i, p)| (id(i), image(p.image_len, p.seed)))
            .collect();
        let mut w = World {
            session: Session::new(config, components),
            spec,
            now: T0,
            images,
            fetch: None,
            offered: None,
            store: HashMap::new(),
            store_ok: HashMap::new(),
            announced: HashMap::new(),
            downloaded: HashMap::new(),
            taken: HashMap::new(),
            flash: HashMap::new(),
            trace: Trace::default(),
        };
        let plans = w
            .spec
            .plans
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut pl = plan(&id(i), p.image_len as u64);
                if let Some(matches) = p.delta {
                    pl.source_version = if matches { "1_0_0" } else { "0_9_0" }.into();
                }
                pl
            })
            .collect();
        w.handle(Event::Plans(plans)).expect("plans are valid");
        w
    }

    fn current(&self) -> Option<(usize, String)> {
        let p = self.session.current_plan()?;
        Some((p.identity[1..].parse().unwrap(), p.identity.clone()))
    }

    pub fn handle(&mut self, e: Event) -> Result<(), Rejected> {
        let r = self.session.handle(e, Timestamp(self.now));
        self.pump();
        r
    }

    /// Serializes the session, drops it, restores it and resumes it.
    pub fn restore(&mut self) {
        let json = serde_json::to_string(&self.session).expect("session serializes");
        self.session = serde_json::from_str(&json).expect("session deserializes");
        self.session.resume(Timestamp(self.now));
        self.pump();
    }

    /// Carries out the session's commands and checks its invariants.
    pub fn pump(&mut self) {
        let mut last_deadline = None;
        loop {
            while let Some(ev) = self.session.poll_event() {
                self.on_ui(ev);
            }
            let Some(cmd) = self.session.poll_command() else {
                break;
            };
            match cmd {
                Command::Report(r) => self.trace.reports.push((r.component, r.status.code())),
                Command::Fetch {
                    component,
                    start,
                    end,
                    ..
                } => {
                    assert_eq!(
                        start,
                        self.store.get(&component).map_or(0, |s| s.len() as u64),
                        "fetch resumes at the stored end"
                    );
                    self.fetch = Some((start, end));
                }
                Command::StoreChunk {
                    component,
                    offset,
                    bytes,
                } => {
                    let s = self.store.entry(component.clone()).or_default();
                    assert_eq!(offset, s.len() as u64, "chunks are appended in order");
                    s.extend_from_slice(&bytes);
                    *self.downloaded.entry(component.clone()).or_default() += bytes.len() as u64;
                    self.store_ok.remove(&component);
                }
                Command::Refeed { component, len } => {
                    let stored = self.store.get(&component).cloned().unwrap_or_default();
                    assert!(
                        len as usize <= stored.len(),
                        "refeed of {len} bytes, {} stored",
                        stored.len()
                    );
                    for (i, chunk) in stored[..len as usize].chunks(97).enumerate() {
                        let offset = (i * 97) as u64;
                        let r = self.session.handle(
                            Event::Stored {
                                offset,
                                bytes: chunk.to_vec(),
                            },
                            Timestamp(self.now),
                        );
                        assert_eq!(r, Ok(()), "refeed chunk at {offset}");
                    }
                }
                Command::OfferPiece {
                    component,
                    offset,
                    len,
                    total,
                    ..
                } => {
                    // The property that matters most: nothing reaches the MCU unverified.
                    assert!(
                        self.verified(&component),
                        "piece offered for {component} before all three digests matched"
                    );
                    assert!(
                        len > 0 && offset + u64::from(len) <= total,
                        "piece {offset}+{len} of {total}"
                    );
                    assert_eq!(
                        offset,
                        self.taken.get(&component).copied().unwrap_or(0),
                        "pieces in order"
                    );
                    *self.trace.offers.entry(component).or_default() += 1;
                    self.offered = Some((offset, len));
                }
                Command::HandToMcu(_) => {}
                Command::DiscardImage { component } => {
                    self.store.remove(&component);
                    self.store_ok.remove(&component);
                    self.fetch = None;
                    self.offered = None;
                }
                Command::SetDeadline { at } => last_deadline = Some(at),
            }
        }
        if let Some(at) = last_deadline {
            assert_eq!(
                at,
                self.session.poll_timeout(),
                "the last SetDeadline is the session's deadline"
            );
        }
        if self.session.state() != sota_engine::session::StateKind::Downloading {
            self.fetch = None;
        }
        if self.session.state() != sota_engine::session::StateKind::Transferring {
            self.offered = None;
        }
        self.check_progress();
    }

    fn verified(&mut self, component: &str) -> bool {
        if let Some(ok) = self.store_ok.get(component) {
            return *ok;
        }
        let stored = self.store.get(component).cloned().unwrap_or_default();
        let ok = match self.announced.get(component) {
            Some(info) => {
                let d = Digester::digest(&stored);
                d.size == info.size
                    && d.md5 == info.md5
                    && d.crc32 == info.crc32
                    && d.sha256 == info.sha256
            }
            None => false,
        };
        self.store_ok.insert(component.to_string(), ok);
        ok
    }

    fn on_ui(&mut self, ev: UiEvent) {
        match ev {
            UiEvent::Progress {
                component,
                stage,
                percent,
            } => self
                .trace
                .progress
                .entry((component, stage))
                .or_default()
                .push(percent),
            UiEvent::Finished(r) => self.trace.results.push(r),
            _ => {}
        }
    }

    /// Progress emitted so far is exactly every 10 % step reached by the bytes moved so far.
    fn check_progress(&self) {
        for (i, p) in self.spec.plans.iter().enumerate() {
            let c = id(i);
            let size = p.image_len as u64;
            for (stage, done) in [
                (Stage::Download, &self.downloaded),
                (Stage::Transfer, &self.taken),
            ] {
                let done = done.get(&c).copied().unwrap_or(0);
                let want: Vec<u8> = (1..=(done * 100 / size / 10) as u8)
                    .map(|s| s * 10)
                    .collect();
                let got = self
                    .trace
                    .progress
                    .get(&(c.clone(), stage))
                    .cloned()
                    .unwrap_or_default();
                assert_eq!(
                    got, want,
                    "{c} {stage:?} progress after {done} of {size} bytes"
                );
            }
        }
    }

    pub fn step(&mut self, step: &Step) {
        let Some((i, c)) = self.current() else { return };
        let ps = self.spec.plans[i].clone();
        let state = self.session.state();
        use sota_engine::session::StateKind as S;
        match *step {
            Step::Readings(kind) if state == S::Offered => {
                let readings = if kind == 0 {
                    good_readings()
                } else {
                    Readings {
                        battery: 10,
                        ..good_readings()
                    }
                };
                let override_reason = match kind {
                    2 => Some("  ".to_string()),
                    3 => Some("customer asked, on mains power".to_string()),
                    _ => None,
                };
                let blank = kind == 2;
                let r = self.handle(Event::Readings {
                    readings,
                    override_reason,
                });
                // A blank override is rejected whenever the check fails (always, for kind 2).
                assert_eq!(r.is_err(), blank, "{r:?}");
            }
            Step::Info { wrong_component } if state == S::AwaitingInfo => {
                let img = &self.images[&c];
                let mut info = info_for(&c, img);
                match ps.corrupt {
                    Corrupt::Md5 => info.md5 = flip_hex(&info.md5),
                    Corrupt::Crc => info.crc32 = flip_hex(&info.crc32),
                    Corrupt::Sha => info.sha256 = flip_hex(&info.sha256),
                    _ => {}
                }
                if ps.mcu_downloads {
                    info.mode = DownloadMode::McuDownloads;
                }
                if wrong_component {
                    info.identity = "OTHER".into();
                    assert!(self.handle(Event::FirmwareInfo(info)).is_err());
                } else {
                    self.announced.insert(c.clone(), info.clone());
                    self.handle(Event::FirmwareInfo(info))
                        .expect("info accepted");
                }
            }
            Step::Deliver(n) => {
                let Some((pos, end)) = self.fetch else { return };
                let len = (u64::from(n)).min(end - pos);
                let mut bytes = self.images[&c][pos as usize..(pos + len) as usize].to_vec();
                if let Corrupt::Byte(at) = ps.corrupt {
                    let at = (at % ps.image_len) as u64;
                    if (pos..pos + len).contains(&at) {
                        bytes[(at - pos) as usize] ^= 0x40;
                    }
                }
                if self
                    .handle(Event::Downloaded { offset: pos, bytes })
                    .is_ok()
                {
                    let stored = self.store.get(&c).map_or(0, |s| s.len() as u64);
                    if let Some((p, _)) = self.fetch.as_mut() {
                        *p = stored;
                    }
                }
            }
            Step::FailDownload if self.fetch.is_some() => {
                self.fetch = None;
                self.handle(Event::DownloadFailed {
                    reason: "connection reset".into(),
                })
                .expect("failure taken");
            }
            Step::Take => {
                let Some((offset, len)) = self.offered else {
                    return;
                };
                let piece =
                    self.store[&c][offset as usize..(offset + u64::from(len)) as usize].to_vec();
                self.offered = None;
                // The MCU writes before it acknowledges.
                let flash = self.flash.entry(c.clone()).or_default();
                flash.truncate(offset as usize);
                flash.extend_from_slice(&piece);
                *self.taken.entry(c.clone()).or_default() += u64::from(len);
                let r = self.handle(Event::McuTookPiece { offset, len });
                assert_eq!(r, Ok(()));
            }
            Step::TakeWrong => {
                let Some((offset, len)) = self.offered else {
                    return;
                };
                assert!(self
                    .handle(Event::McuTookPiece {
                        offset: offset + 1,
                        len
                    })
                    .is_err());
            }
            Step::UpdateDone if state == S::Updating => {
                self.handle(Event::McuUpdateDone).expect("update done")
            }
            Step::Version { good } if matches!(state, S::Updating | S::AwaitingVersion) => {
                let flashed_right =
                    ps.mcu_downloads || self.flash.get(&c) == Some(&self.images[&c]);
                let version = if good && flashed_right {
                    "2_0_0"
                } else {
                    "1_0_0"
                };
                self.handle(Event::McuVersion(Component {
                    identity: c,
                    version: version.into(),
                }))
                .expect("version taken");
            }
            Step::StoreLost if matches!(state, S::Downloading | S::Transferring) => {
                self.handle(Event::StoreLost).expect("store lost taken")
            }
            Step::Wait(ms) => self.wait(ms),
            _ => {}
        }
    }

    pub fn wait(&mut self, ms: u64) {
        self.now += ms;
        if self
            .session
            .poll_timeout()
            .is_some_and(|t| t.as_millis() <= self.now)
        {
            self.session.handle_timeout(Timestamp(self.now));
            self.pump();
        }
    }

    /// The world goes silent; time passes every deadline.
    pub fn drain(&mut self) {
        for _ in 0..10_000 {
            let Some(t) = self.session.poll_timeout() else {
                return;
            };
            self.now = self.now.max(t.as_millis());
            self.session.handle_timeout(Timestamp(self.now));
            self.pump();
        }
        panic!("session still has deadlines after 10 000 timeouts");
    }
}

fn flip_hex(s: &str) -> String {
    let mut c: Vec<char> = s.chars().collect();
    c[0] = if c[0] == '0' { '1' } else { '0' };
    c.into_iter().collect()
}

/// Runs a spec, restoring the session before each step index in `restores`, then drains.
pub fn run(spec: &Spec, restores: &[usize]) -> World {
    let mut w = World::new(spec.clone());
    for (i, step) in spec.steps.iter().enumerate() {
        if restores.contains(&i) {
            w.restore();
        }
        w.step(step);
    }
    w.drain();
    w
}
