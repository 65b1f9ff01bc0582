//! An MCU that upgrades itself through a QuecThing module, as real MCU firmware does: reports
//! the version of each of its components, asks for a plan, checks the strategy (battery,
//! signal, the component's space), reads every piece with `AT+QIOTOTARD`, checks MD5, CRC32 and
//! SHA-256, "updates" (the component's flash becomes the image) and reports the new version.
//!
//! Several components (e.g. `STM32` and a `BLE` chip) are upgraded one plan after another:
//! after a result (10705/10706 or its own refusal) the MCU stays ready for the next 10700, and
//! a `10707` (another plan follows) makes it wait for that plan and ask again if it is lost.
//!
//! Reads resume at the last byte received: after a lost reply or a disconnect the MCU asks
//! again for the same offset, never from the start.
//!
//! Whatever the module sends, the MCU never panics or allocates more than the component's free
//! space: numbers that do not parse, a file larger than the free space, a piece outside the
//! file and a read reply outside the piece are ignored or fail the plan.

use core::time::Duration;
use sota_engine::Digester;
use sota_link::endpoint::{Phase, Progress};
use sota_link::Endpoint;

/// One upgradable component of the MCU (its own firmware, or a chip behind it).
#[derive(Clone, Debug)]
pub struct McuComponent {
    /// Component number, e.g. `STM32`.
    pub name: String,
    /// Running firmware version.
    pub version: String,
    /// Space for a new image, in bytes.
    pub free_space: u64,
}

impl McuComponent {
    /// A component with 1 MiB of free space.
    pub fn new(name: &str, version: &str) -> Self {
        McuComponent {
            name: name.into(),
            version: version.into(),
            free_space: 1 << 20,
        }
    }
}

/// The MCU's components, conditions and patience.
#[derive(Clone, Debug)]
pub struct McuConfig {
    /// The components, reported in this order at start-up.
    pub components: Vec<McuComponent>,
    /// Battery level in percent.
    pub battery: u32,
    /// Signal strength in dBm.
    pub signal: i32,
    /// Bytes asked for per `AT+QIOTOTARD`.
    pub read_len: u64,
    /// How long to wait for a reply before asking again.
    pub response_timeout: Duration,
    /// How long to wait for a plan or a piece.
    pub urc_timeout: Duration,
    /// Tries per command.
    pub max_tries: u32,
}

impl Default for McuConfig {
    fn default() -> Self {
        McuConfig {
            components: vec![McuComponent::new("STM32", "1_0_0")],
            battery: 80,
            signal: -70,
            read_len: 1024,
            response_timeout: Duration::from_secs(2),
            urc_timeout: Duration::from_secs(30),
            max_tries: 5,
        }
    }
}

/// How the upgrade ended for the MCU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum McuOutcome {
    /// The module confirmed the new version (URC 10705).
    Updated {
        /// The version now running.
        version: String,
    },
    /// The MCU refused the plan.
    Refused {
        /// Which condition failed.
        reason: String,
    },
    /// The upgrade failed; the old firmware keeps running.
    Failed {
        /// Why.
        reason: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmd {
    Echo,
    /// Reporting the version of component `n` at start-up.
    Version(usize),
    Request,
    Refuse,
    Confirm,
    Read,
    Next,
    Update,
    Report,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    Command(Cmd),
    Plan,
    Piece,
    Result,
    Nothing,
}

#[derive(Clone, Debug)]
struct PlanInfo {
    /// Index into the components.
    component: usize,
    target: String,
    min_battery: u32,
    min_signal: i32,
    use_space: u64,
}

#[derive(Clone, Debug)]
struct FileInfo {
    size: u64,
    md5: String,
    crc32: u32,
    sha256: Option<String>,
}

/// The simulated MCU.
pub struct AtMcu {
    config: McuConfig,
    /// Installed image per component (empty until an update succeeded).
    flash: Vec<Vec<u8>>,
    download: Vec<u8>,
    /// Firmware bytes received with `AT+QIOTOTARD` since start-up.
    received: u64,
    /// The plan's result came: the next 10700 is a new plan, not the same one again.
    plan_done: bool,
    /// Why the MCU refuses the plan it is answering with `=0`.
    refusal: Option<String>,
    /// The component the plan in progress names.
    plan_component: String,
    results: Vec<(String, McuOutcome)>,
    out: Vec<u8>,
    line: Vec<u8>,
    raw_left: usize,
    raw_start: u64,
    raw: Vec<u8>,
    read_reply: Option<(u64, Vec<u8>)>,
    wait: Wait,
    line_sent: String,
    tries: u32,
    deadline: Option<Duration>,
    plan: Option<PlanInfo>,
    file: Option<FileInfo>,
    piece: Option<(u64, u64)>,
    offset: u64,
    verify_rounds: u32,
    /// Plan requests made without getting to read a piece.
    requests: u32,
    outcome: Option<McuOutcome>,
    progress: Option<Progress>,
}

impl AtMcu {
    /// An MCU running `config.version` that starts talking at `now`.
    pub fn new(config: McuConfig, now: Duration) -> Self {
        let mut mcu = AtMcu {
            flash: vec![Vec::new(); config.components.len()],
            config,
            download: Vec::new(),
            received: 0,
            plan_done: false,
            refusal: None,
            plan_component: String::new(),
            results: Vec::new(),
            out: Vec::new(),
            line: Vec::new(),
            raw_left: 0,
            raw_start: 0,
            raw: Vec::new(),
            read_reply: None,
            wait: Wait::Nothing,
            line_sent: String::new(),
            tries: 0,
            deadline: None,
            plan: None,
            file: None,
            piece: None,
            offset: 0,
            verify_rounds: 0,
            requests: 0,
            outcome: None,
            progress: None,
        };
        mcu.send(Cmd::Echo, "ATE0".into(), now);
        mcu
    }

    /// The installed image of the first component (empty until an update succeeded).
    pub fn flash(&self) -> &[u8] {
        self.flash.first().map_or(&[], Vec::as_slice)
    }

    /// The installed image of component `name`, if the MCU has it.
    pub fn flash_of(&self, name: &str) -> Option<&[u8]> {
        let i = self.index_of(name)?;
        Some(&self.flash[i])
    }

    /// The version the first component runs now.
    pub fn version(&self) -> &str {
        self.config
            .components
            .first()
            .map_or("", |c| c.version.as_str())
    }

    /// The version component `name` runs now, if the MCU has it.
    pub fn version_of(&self, name: &str) -> Option<&str> {
        let i = self.index_of(name)?;
        Some(&self.config.components[i].version)
    }

    /// How the last plan ended, once one has.
    pub fn outcome(&self) -> Option<&McuOutcome> {
        self.outcome.as_ref()
    }

    /// Every plan's result so far, in order: (component, outcome).
    pub fn results(&self) -> &[(String, McuOutcome)] {
        &self.results
    }

    /// Firmware bytes received with `AT+QIOTOTARD` since start-up (re-reads included).
    pub fn firmware_bytes_received(&self) -> u64 {
        self.received
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.config.components.iter().position(|c| c.name == name)
    }

    fn report_version(&mut self, i: usize, cmd: Cmd, now: Duration) {
        let c = &self.config.components[i];
        let line = format!("AT+QIOTMCUVER=\"{}\",\"{}\"", c.name, c.version);
        self.send(cmd, line, now);
    }

    /// The latest download progress, if reading began.
    pub fn progress(&self) -> Option<Progress> {
        self.progress
    }

    fn send(&mut self, cmd: Cmd, line: String, now: Duration) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.push(b'\r');
        self.line_sent = line;
        self.wait = Wait::Command(cmd);
        self.tries = 1;
        self.read_reply = None;
        self.deadline = Some(now + self.config.response_timeout);
    }

    fn retry(&mut self, now: Duration) {
        let Wait::Command(cmd) = self.wait else {
            return;
        };
        if self.tries >= self.config.max_tries {
            let reason = format!(
                "{} got no valid reply after {} tries",
                self.line_sent, self.tries
            );
            self.finish(McuOutcome::Failed { reason });
            return;
        }
        self.tries += 1;
        self.out.extend_from_slice(self.line_sent.as_bytes());
        self.out.push(b'\r');
        self.wait = Wait::Command(cmd);
        self.read_reply = None;
        self.deadline = Some(now + self.config.response_timeout);
    }

    fn await_urc(&mut self, wait: Wait, now: Duration) {
        self.wait = wait;
        self.deadline = Some(now + self.config.urc_timeout);
    }

    fn finish(&mut self, outcome: McuOutcome) {
        self.results
            .push((self.plan_component.clone(), outcome.clone()));
        self.outcome = Some(outcome);
        self.plan_done = true;
        self.wait = Wait::Nothing;
        self.deadline = None;
    }

    fn decide(&mut self, now: Duration) {
        let Some(plan) = self.plan.clone() else {
            return;
        };
        let c = &self.config;
        let free_space = c.components[plan.component].free_space;
        let reason = if c.battery < plan.min_battery {
            Some(format!(
                "battery {}% is below the plan's {}%",
                c.battery, plan.min_battery
            ))
        } else if c.signal < plan.min_signal {
            Some(format!(
                "signal {} dBm is below the plan's {} dBm",
                c.signal, plan.min_signal
            ))
        } else if free_space < plan.use_space {
            Some(format!(
                "free space {} B is less than the {} B the plan needs",
                free_space, plan.use_space
            ))
        } else {
            None
        };
        match reason {
            Some(reason) => self.refuse(reason, now),
            None => self.send(Cmd::Confirm, "AT+QIOTUPDATE=1".into(), now),
        }
    }

    fn refuse(&mut self, reason: String, now: Duration) {
        self.send(Cmd::Refuse, "AT+QIOTUPDATE=0".into(), now);
        self.refusal = Some(reason);
    }

    fn read_next(&mut self, now: Duration) {
        let Some((start, len)) = self.piece else {
            return;
        };
        // 10703 is taken only when `start + len` fits the file, so this does not saturate.
        let end = start.saturating_add(len);
        if self.offset < end {
            let n = self.config.read_len.min(end - self.offset);
            self.send(
                Cmd::Read,
                format!("AT+QIOTOTARD={},{}", self.offset, n),
                now,
            );
            return;
        }
        let size = self.file.as_ref().map_or(0, |f| f.size);
        if end < size {
            self.send(Cmd::Next, "AT+QIOTUPDATE=2".into(), now);
            return;
        }
        self.verify(now);
    }

    fn verify(&mut self, now: Duration) {
        let Some(file) = self.file.clone() else {
            return;
        };
        let digests = Digester::digest(&self.download);
        let ok = digests.md5 == file.md5.to_ascii_lowercase()
            && digests.crc32_value() == file.crc32
            && file
                .sha256
                .as_ref()
                .is_none_or(|s| digests.sha256 == s.to_ascii_lowercase());
        if ok {
            self.send(Cmd::Update, "AT+QIOTUPDATE=3".into(), now);
            return;
        }
        // The read path has no checksum of its own: a corrupted read shows up here. The whole
        // file is still held only if it came as one piece.
        let whole = self.piece == Some((0, file.size));
        if whole && self.verify_rounds < 2 {
            self.verify_rounds += 1;
            self.offset = 0;
            self.read_next(now);
        } else {
            self.finish(McuOutcome::Failed {
                reason:
                    "the downloaded image does not match its MD5/CRC32/SHA-256; old firmware kept"
                        .into(),
            });
        }
    }

    fn on_ok(&mut self, now: Duration) {
        let Wait::Command(cmd) = self.wait else {
            return;
        };
        match cmd {
            Cmd::Echo if self.config.components.is_empty() => {
                self.send(Cmd::Request, "AT+QIOTOTAREQ=1".into(), now)
            }
            Cmd::Echo => self.report_version(0, Cmd::Version(0), now),
            Cmd::Version(i) if i + 1 < self.config.components.len() => {
                self.report_version(i + 1, Cmd::Version(i + 1), now)
            }
            Cmd::Version(_) => self.send(Cmd::Request, "AT+QIOTOTAREQ=1".into(), now),
            Cmd::Request => {
                self.await_urc(Wait::Plan, now);
                if self.plan.is_some() && !self.plan_done {
                    self.decide(now);
                }
            }
            Cmd::Refuse => {
                let reason = self.refusal.take().unwrap_or_default();
                self.finish(McuOutcome::Refused { reason });
            }
            Cmd::Confirm | Cmd::Next => self.await_urc(Wait::Piece, now),
            Cmd::Read => match self.read_reply.take() {
                Some((start, data)) if start == self.offset && !data.is_empty() => {
                    // Only bytes inside the piece (and so inside the file, which fits the
                    // free space) are stored; anything else is a damaged reply.
                    let Some((at, end)) = self.piece_range(start, data.len()) else {
                        self.retry(now);
                        return;
                    };
                    if self.download.len() < end {
                        self.download.resize(end, 0xFF);
                    }
                    self.download[at..end].copy_from_slice(&data);
                    self.offset += data.len() as u64;
                    self.received += data.len() as u64;
                    let total = self.file.as_ref().map_or(0, |f| f.size);
                    self.progress = Some(Progress {
                        phase: Phase::Writing,
                        done: self.offset,
                        total,
                    });
                    self.read_next(now);
                }
                // OK without a (matching) data header: the reply was damaged.
                _ => self.retry(now),
            },
            Cmd::Update => self.install(now),
            Cmd::Report => self.await_urc(Wait::Result, now),
        }
    }

    /// `start..start + len` as indices into the download, if it lies inside the held piece.
    fn piece_range(&self, start: u64, len: usize) -> Option<(usize, usize)> {
        let (piece_start, piece_len) = self.piece?;
        let end = start.checked_add(u64::try_from(len).ok()?)?;
        if start < piece_start || end > piece_start.checked_add(piece_len)? {
            return None;
        }
        Some((usize::try_from(start).ok()?, usize::try_from(end).ok()?))
    }

    /// The free space of the component the plan in progress names.
    fn plan_free_space(&self) -> Option<u64> {
        let plan = self.plan.as_ref().filter(|_| !self.plan_done)?;
        Some(self.config.components[plan.component].free_space)
    }

    fn install(&mut self, now: Duration) {
        let Some(plan) = self.plan.clone() else {
            return;
        };
        self.flash[plan.component] = std::mem::take(&mut self.download);
        self.config.components[plan.component].version = plan.target;
        self.report_version(plan.component, Cmd::Report, now);
    }

    fn on_urc(&mut self, code: u32, args: Vec<String>, now: Duration) {
        // Each number in its own type: a negative size or a battery level past u32 is not a
        // number this MCU takes, rather than one that wraps.
        fn num<T: core::str::FromStr>(args: &[String], i: usize) -> Option<T> {
            args.get(i).and_then(|a| a.parse().ok())
        }
        match code {
            10700 => {
                let (Some(name), Some(target), Some(b), Some(s), Some(u)) = (
                    args.first(),
                    args.get(2),
                    num::<u32>(&args, 3),
                    num::<i32>(&args, 4),
                    num::<u64>(&args, 5),
                ) else {
                    return;
                };
                // Mid-upgrade, only the same plan again (after a re-request) is taken; an idle
                // MCU takes a plan the platform pushes (a module sends 10700 unasked then).
                let idle = self.wait == Wait::Nothing;
                if !(matches!(self.wait, Wait::Plan | Wait::Command(Cmd::Request)) || idle) {
                    return;
                }
                self.plan_component = name.clone();
                let Some(component) = self.index_of(name) else {
                    self.plan = None;
                    self.plan_done = false;
                    self.refuse(format!("the MCU has no component {name:?}"), now);
                    return;
                };
                let same = self
                    .plan
                    .as_ref()
                    .is_some_and(|p| p.component == component && p.target == *target);
                if self.plan_done || !same {
                    // A new plan: nothing of the last one carries over.
                    self.plan_done = false;
                    self.file = None;
                    self.piece = None;
                    self.download.clear();
                    self.offset = 0;
                    self.verify_rounds = 0;
                    self.requests = 0;
                    self.outcome = None;
                }
                self.plan = Some(PlanInfo {
                    component,
                    target: target.clone(),
                    min_battery: b,
                    min_signal: s,
                    use_space: u,
                });
                if self.wait != Wait::Command(Cmd::Request) {
                    self.decide(now);
                }
            }
            // Another plan follows the result just received: wait for it (asking again if
            // its 10700 is lost).
            10707 if self.wait == Wait::Nothing && self.plan_done => {
                self.await_urc(Wait::Plan, now)
            }
            10701 => {
                let Some(free_space) = self.plan_free_space() else {
                    return;
                };
                if let (Some(size), Some(md5), Some(crc)) =
                    (num::<u64>(&args, 1), args.get(2), num::<u32>(&args, 3))
                {
                    if size > free_space {
                        self.finish(McuOutcome::Failed {
                            reason: format!(
                                "the firmware ({size} B) is larger than the component's free space ({free_space} B)"
                            ),
                        });
                        return;
                    }
                    let file = FileInfo {
                        size,
                        md5: md5.clone(),
                        crc32: crc,
                        sha256: args.get(4).cloned(),
                    };
                    // Another file: what was downloaded so far is worthless.
                    if self
                        .file
                        .as_ref()
                        .is_none_or(|f| f.md5 != file.md5 || f.size != file.size)
                    {
                        self.download.clear();
                        self.offset = 0;
                    }
                    self.file = Some(file);
                }
            }
            // Still downloading: keep waiting for the piece.
            10702 if self.wait == Wait::Piece => {
                self.deadline = Some(now + self.config.urc_timeout)
            }
            10703 => {
                let (Some(start), Some(len)) = (num::<u64>(&args, 2), num::<u64>(&args, 3)) else {
                    return;
                };
                // A piece must lie inside the announced file; that bounds every read and the
                // memory the download takes.
                let size = self.file.as_ref().map(|f| f.size);
                if size.is_none_or(|size| start.checked_add(len).is_none_or(|end| end > size)) {
                    return;
                }
                let piece = (start, len);
                // A piece URC also tells that an `=1`/`=2` whose OK was lost went through.
                let waiting = matches!(
                    self.wait,
                    Wait::Piece | Wait::Command(Cmd::Confirm) | Wait::Command(Cmd::Next)
                );
                if waiting && (self.piece != Some(piece) || self.wait == Wait::Piece) {
                    // Resume inside the piece if we already hold its beginning (after a plan
                    // was requested again), otherwise start at the piece.
                    let (start, len) = piece;
                    if !(self.offset > start
                        && self.offset <= start.saturating_add(len)
                        && self.download.len() as u64 >= self.offset)
                    {
                        self.offset = start;
                    }
                    self.piece = Some(piece);
                    self.requests = 0;
                    self.read_next(now);
                }
            }
            10704 if self.wait == Wait::Command(Cmd::Update) => self.install(now),
            10705 | 10706 if self.plan_done || self.plan.is_none() => {}
            10705 => {
                let version = self.plan.as_ref().map_or(String::new(), |p| {
                    self.config.components[p.component].version.clone()
                });
                self.finish(McuOutcome::Updated { version });
            }
            10706 => self.finish(McuOutcome::Failed {
                reason: "the module reported the update as failed (10706)".into(),
            }),
            _ => {}
        }
    }

    fn on_line(&mut self, line: &str, now: Duration) {
        if line == "OK" {
            self.on_ok(now);
        } else if line == "ERROR" {
            if matches!(self.wait, Wait::Command(_)) {
                self.retry(now);
            }
        } else if let Some(rest) = line.strip_prefix("+QIOTEVT: 7,") {
            let mut fields = rest
                .split(',')
                .map(|f| f.trim().trim_matches('"').to_string());
            if let Some(Ok(code)) = fields.next().map(|c| c.parse::<u32>()) {
                self.on_urc(code, fields.collect(), now);
            }
        } else if let Some(rest) = line.strip_prefix("+QIOTOTARD: ") {
            if self.wait != Wait::Command(Cmd::Read) {
                return;
            }
            if let Some((s, l)) = rest.split_once(',') {
                if let (Ok(start), Ok(len)) = (s.parse::<u64>(), l.parse::<usize>()) {
                    if len as u64 <= self.config.read_len {
                        self.raw_start = start;
                        self.raw_left = len;
                        self.raw.clear();
                        if len == 0 {
                            self.read_reply = Some((start, Vec::new()));
                        }
                    }
                }
            }
        }
    }
}

impl Endpoint for AtMcu {
    fn handle_input(&mut self, now: Duration, bytes: &[u8]) {
        for &b in bytes {
            if self.raw_left > 0 {
                self.raw.push(b);
                self.raw_left -= 1;
                if self.raw_left == 0 {
                    self.read_reply = Some((self.raw_start, std::mem::take(&mut self.raw)));
                }
                continue;
            }
            if b == b'\n' {
                let line = std::mem::take(&mut self.line);
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_matches(|c| c == '\r' || c == ' ');
                if !text.is_empty() {
                    let text = text.to_string();
                    self.on_line(&text, now);
                }
            } else if self.line.len() < 512 {
                self.line.push(b);
            }
        }
    }

    fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.out);
    }

    fn poll_timeout(&self) -> Option<Duration> {
        self.deadline
    }

    fn handle_timeout(&mut self, now: Duration) {
        if self.deadline.is_none_or(|d| d > now) {
            return;
        }
        self.deadline = None;
        // A reply cut short leaves the raw reader waiting: drop it.
        self.raw_left = 0;
        self.line.clear();
        match self.wait {
            Wait::Command(_) => self.retry(now),
            // A lost URC is never sent again: ask for the plan again, and resume.
            Wait::Plan | Wait::Piece if self.requests < self.config.max_tries => {
                self.requests += 1;
                self.send(Cmd::Request, "AT+QIOTOTAREQ=1".into(), now);
            }
            Wait::Plan => self.finish(McuOutcome::Failed {
                reason: "no plan arrived (URC 10700) in time".into(),
            }),
            Wait::Piece => self.finish(McuOutcome::Failed {
                reason: "no piece arrived (URC 10703) in time".into(),
            }),
            Wait::Result => self.finish(McuOutcome::Failed {
                reason: "no update result (10705/10706) arrived in time".into(),
            }),
            Wait::Nothing => {}
        }
    }

    fn is_done(&self) -> bool {
        self.plan_done && self.wait == Wait::Nothing
    }
}
