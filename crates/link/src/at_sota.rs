//! QuecThing AT SOTA, module side: the console answers an MCU's AT commands and sends the
//! `+QIOTEVT: 7,<code>` URCs exactly as a Quectel module running QuecThing does.
//!
//! The module does not know where plans and firmware come from: it reports what the MCU asks
//! for as [`Event`]s, and the caller answers with [`Module::offer_plan`],
//! [`Module::start_download`] and [`Module::piece_ready`]. `sota_flow::AtUpgrade` is that caller
//! with the engine's upgrade session deciding; [`FileServer`] is a bare harness for tests and
//! benchmarks.

mod command;
mod file_server;

pub use command::{parse, Command, UpdateAction};
pub use file_server::{FileServer, Offer};

use crate::endpoint::{Endpoint, Phase, Progress};
use core::time::Duration;
use std::collections::VecDeque;

/// URC codes of `+QIOTEVT: 7,<code>`.
pub mod urc {
    /// A plan is available.
    pub const PLAN: u32 = 10700;
    /// Download started (firmware info).
    pub const DOWNLOAD_STARTED: u32 = 10701;
    /// Downloading.
    pub const DOWNLOADING: u32 = 10702;
    /// A piece is ready to be read.
    pub const PIECE_READY: u32 = 10703;
    /// The MCU is updating.
    pub const UPDATING: u32 = 10704;
    /// The update succeeded.
    pub const UPDATE_OK: u32 = 10705;
    /// The update failed.
    pub const UPDATE_FAILED: u32 = 10706;
    /// Multi-plan: the result just sent was one of several; the next plan follows.
    pub const MULTI_PLAN: u32 = 10707;
}

/// An upgrade plan as URC 10700 announces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Component number (e.g. `STM32`).
    pub component: String,
    /// Source version (empty for a full package).
    pub source_version: String,
    /// Target version.
    pub target_version: String,
    /// Minimum battery level in percent.
    pub min_battery: u32,
    /// Minimum signal strength in dBm (e.g. -113).
    pub min_signal: i32,
    /// Space the upgrade needs, in bytes.
    pub use_space: u64,
}

/// Firmware information as URC 10701 announces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirmwareInfo {
    /// Size in bytes.
    pub size: u64,
    /// MD5, lowercase hex.
    pub md5: String,
    /// CRC32 (IEEE).
    pub crc32: u32,
    /// SHA-256, lowercase hex (sent only if the MCU asked with `AT+QIOTOTAREQ=1`).
    pub sha256: String,
}

/// The MCU's side of a module's state, kept to resume an upgrade in a new module instance
/// ([`Module::resume_point`], [`Module::resumed`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResumePoint {
    /// Whether the MCU left echo on (`ATE0`/`ATE1`).
    pub echo: bool,
    /// Whether the MCU asked for SHA-256 in 10701 (`AT+QIOTOTAREQ=1`).
    pub sha256: bool,
    /// The (component, version) pairs the MCU reported.
    pub versions: Vec<(String, String)>,
}

/// Timeouts and limits, as in the module SDK.
#[derive(Clone, Debug)]
pub struct Config {
    /// The most bytes one `AT+QIOTOTARD` returns.
    pub max_read: u64,
    /// How long the MCU may stay silent while a piece is ready; `None` when the caller (the
    /// engine's session) owns this wait.
    pub read_timeout: Option<Duration>,
    /// How long the MCU may take to report its new version after `AT+QIOTUPDATE=3`; `None`
    /// when the caller owns this wait.
    pub update_timeout: Option<Duration>,
    /// Interval of URC 10702 while a piece is being fetched.
    pub downloading_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_read: 1024,
            read_timeout: Some(Duration::from_secs(60)),
            update_timeout: Some(Duration::from_secs(20 * 60)),
            downloading_interval: Duration::from_secs(5),
        }
    }
}

/// Why an AT SOTA upgrade failed on the module side.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The MCU stopped reading.
    #[error("the MCU did not read the piece at offset {offset} within {timeout:?} — is its firmware stuck or the cable unplugged?")]
    ReadTimeout {
        /// Piece start.
        offset: u64,
        /// The limit.
        timeout: Duration,
    },
    /// The MCU never reported a version after updating.
    #[error("the MCU did not report its version within {0:?} after it started updating — it may not have rebooted into the new firmware")]
    UpdateTimeout(Duration),
    /// The MCU reported another version than the target.
    #[error("the MCU reported version {reported:?} after updating, not the target {target:?} — it probably rolled back")]
    WrongVersion {
        /// Reported version.
        reported: String,
        /// Target version.
        target: String,
    },
    /// The caller stopped the upgrade (e.g. the engine's session failed it).
    #[error("{0}")]
    Stopped(String),
}

/// What the module reports to its caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `AT+QIOTMCUVER` set a component's version.
    VersionReported {
        /// Component.
        component: String,
        /// Version.
        version: String,
    },
    /// The MCU asked for a plan; answer with [`Module::offer_plan`].
    PlanRequested {
        /// The MCU wants SHA-256 in the firmware info.
        sha256: bool,
    },
    /// The MCU refused the plan (`AT+QIOTUPDATE=0`).
    Refused {
        /// The refused plan's component.
        component: String,
    },
    /// The MCU confirmed the plan; answer with [`Module::start_download`] and
    /// [`Module::piece_ready`] for offset 0.
    Confirmed,
    /// The MCU read the held piece to its end and asks for the piece starting at `offset`
    /// (`AT+QIOTUPDATE=2`); answer with [`Module::piece_ready`].
    PieceRequested {
        /// File offset of the piece.
        offset: u64,
    },
    /// The MCU has read the whole held piece `offset..offset+len` and moved on (`=2` or `=3`).
    PieceTaken {
        /// Piece start.
        offset: u64,
        /// Piece length.
        len: u64,
    },
    /// Bytes of the file the MCU has read so far.
    Progress(Progress),
    /// The MCU started updating.
    Updating,
    /// The MCU reported the target version: URC 10705 was sent.
    Succeeded {
        /// The version reported.
        version: String,
    },
    /// The upgrade failed: URC 10706 was sent.
    Failed(Error),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Stage {
    Idle,
    PlanOffered,
    /// Confirmed; waiting for the caller's piece.
    Downloading,
    /// A piece is held and the MCU reads it.
    PieceReady,
    Updating,
    Finished,
}

/// The module side of QuecThing AT SOTA.
#[derive(Debug)]
pub struct Module {
    config: Config,
    echo: bool,
    line: Vec<u8>,
    /// The line overflowed: swallow the rest and answer ERROR.
    overflow: bool,
    out: Vec<u8>,
    events: VecDeque<Event>,
    versions: Vec<(String, String)>,
    plan: Option<Plan>,
    sha256: bool,
    info: Option<FirmwareInfo>,
    stage: Stage,
    piece_start: u64,
    piece: Vec<u8>,
    /// End of the prefix of the file the MCU has read without a gap. Reads past it (a skip)
    /// do not count, so `=2`/`=3` need every byte of the piece read, not only its last one.
    read_end: u64,
    /// Size and MD5 of the file `read_end` counts in.
    read_of: Option<(u64, String)>,
    /// Resumed from another instance mid-transfer: where the MCU stands is not known until it
    /// reads in the held piece. The piece resumed at is never past the MCU's (see
    /// [`Module::resumed`]), so until then its `=2`, an early `=3` or a read past the piece
    /// show that it has the piece.
    unsure: bool,
    /// The MCU's input while `unsure` and no piece is held yet: it is answered (its last
    /// command only) when the piece is ready, rather than with ERROR.
    held: Vec<u8>,
    first_piece: bool,
    /// A plan ended (10705, 10706 or refused) since the last plan was offered: the next
    /// offer is preceded by 10707.
    result_given: bool,
    deadline: Option<Duration>,
    downloading_at: Option<Duration>,
}

/// Longest command line accepted (the longest real command is well under 100 bytes).
const MAX_LINE: usize = 256;

/// The most of the MCU's input kept while it waits for a resumed piece: a few of its retried
/// commands.
const HOLD_LIMIT: usize = 4096;

/// The MCU's last command line in `held`, finished or not: an MCU that got no answer repeats
/// its command, so only the last try still waits for one — answering every try would answer
/// questions it no longer asks, and count against its retry limit.
fn last_command(held: &[u8]) -> &[u8] {
    let ends = |b: &u8| *b == b'\r' || *b == b'\n';
    let Some(last) = held.iter().rposition(|b| !ends(b)) else {
        return &[]; // Only line ends: nothing to answer.
    };
    let start = held[..last].iter().rposition(ends).map_or(0, |i| i + 1);
    &held[start..]
}

impl Module {
    /// A module with echo on, as a Quectel module starts.
    pub fn new(config: Config) -> Self {
        Module {
            config,
            echo: true,
            line: Vec::new(),
            overflow: false,
            out: Vec::new(),
            events: VecDeque::new(),
            versions: Vec::new(),
            plan: None,
            sha256: false,
            info: None,
            stage: Stage::Idle,
            piece_start: 0,
            piece: Vec::new(),
            read_end: 0,
            read_of: None,
            unsure: false,
            held: Vec::new(),
            first_piece: true,
            result_given: false,
            deadline: None,
            downloading_at: None,
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The version the MCU last reported for `component`.
    pub fn version_of(&self, component: &str) -> Option<&str> {
        self.versions
            .iter()
            .find(|(c, _)| c == component)
            .map(|(_, v)| v.as_str())
    }

    /// The plan offered last, if any.
    pub fn plan(&self) -> Option<&Plan> {
        self.plan.as_ref()
    }

    /// True once the current plan has ended (10705, 10706 or refused).
    pub fn plan_ended(&self) -> bool {
        self.stage == Stage::Finished
    }

    /// Announces a plan (URC 10700). A new plan replaces any upgrade in progress. After the
    /// result of a previous plan (multi-plan), `+QIOTEVT: 7,10707` goes first: the result the
    /// MCU just got was one of several, and this is the next plan. Offering the same plan again
    /// (the MCU asked again because a URC was lost) sends no 10707 and keeps what the MCU has
    /// read: it resumes where it stopped, not at the start of the piece.
    pub fn offer_plan(&mut self, plan: Plan) {
        let again = self.plan.as_ref() == Some(&plan)
            && !matches!(self.stage, Stage::Idle | Stage::Finished);
        if !again {
            self.read_end = 0;
            self.read_of = None;
        }
        if std::mem::take(&mut self.result_given) {
            self.urc(urc::MULTI_PLAN, "");
        }
        self.urc(
            urc::PLAN,
            &format!(
                "\"{}\",\"{}\",\"{}\",{},{},{}",
                plan.component,
                plan.source_version,
                plan.target_version,
                plan.min_battery,
                plan.min_signal,
                plan.use_space
            ),
        );
        self.plan = Some(plan);
        self.stage = Stage::PlanOffered;
        self.info = None;
        self.piece.clear();
        self.piece_start = 0;
        self.first_piece = true;
        self.deadline = None;
        // Held input asked about the plan before: the MCU asks again after this one.
        self.held.clear();
    }

    /// What [`Module::resumed`] needs besides the plan and the file: the MCU's settings as it
    /// made them (echo, SHA-256 in 10701) and the versions it reported.
    pub fn resume_point(&self) -> ResumePoint {
        ResumePoint {
            echo: self.echo,
            sha256: self.sha256,
            versions: self.versions.clone(),
        }
    }

    /// A module that takes up an upgrade another module instance started (the console's page
    /// reloaded mid-upgrade): `plan` is confirmed and the MCU has `info`'s file announced. No
    /// URC is repeated — the MCU has them — and the module waits for the next
    /// [`Module::piece_ready`], sending 10702 as while downloading.
    ///
    /// Mid-transfer, `read_to` is the start of the piece to resume at: the MCU has read the
    /// file up to there and is in that piece or past it, never behind — so a piece whose `=2`
    /// may have got no OK is resumed at, not the next one (the MCU repeats `=2` for it). Until
    /// the MCU reads in a piece, its `=2`, an early `=3` or a read past the piece takes the
    /// piece. Its input waits until the piece is ready; then only its last command is
    /// answered. `None`: no piece was handed out yet (mid-download).
    pub fn resumed(
        config: Config,
        point: ResumePoint,
        plan: Plan,
        info: FirmwareInfo,
        read_to: Option<u64>,
        now: Duration,
    ) -> Self {
        let mut module = Module::new(config);
        module.echo = point.echo;
        module.sha256 = point.sha256;
        module.versions = point.versions;
        module.plan = Some(plan);
        module.read_of = Some((info.size, info.md5.clone()));
        module.read_end = read_to.unwrap_or(0);
        module.unsure = read_to.is_some();
        module.info = Some(info);
        module.first_piece = false;
        module.downloading(now);
        module
    }

    /// Ends the current plan as failed for a reason of the caller's (URC 10706), unless it
    /// has ended already.
    pub fn stop(&mut self, reason: String) {
        if self.plan.is_some() && self.stage != Stage::Finished {
            self.fail(Error::Stopped(reason));
        }
    }

    /// True while the MCU's input waits for a resumed piece.
    fn holding(&self) -> bool {
        self.unsure && self.stage == Stage::Downloading
    }

    /// The held input is answered: a piece is ready, or the plan moved on.
    fn release(&mut self, now: Duration) {
        if self.holding() || self.held.is_empty() {
            return;
        }
        let held = std::mem::take(&mut self.held);
        let line = last_command(&held).to_vec();
        self.handle_input(now, &line);
    }

    /// While `unsure`: the MCU's `line` shows it is past the held piece (it reads beyond it,
    /// or starts updating before the last piece), so it read the piece to its end with the
    /// instance before. The piece is taken and `line` waits for the next one.
    fn passed_piece(&mut self, line: &[u8], now: Duration) -> bool {
        if !(self.unsure && self.stage == Stage::PieceReady) {
            return false;
        }
        let piece_end = self.piece_start + self.piece.len() as u64;
        let size = self.file_size();
        let past = match parse(line) {
            Command::Read { start, .. } => start >= piece_end && start < size,
            Command::Update(UpdateAction::StartUpdate) => piece_end < size,
            _ => false,
        };
        if !past {
            return false;
        }
        self.events.push_back(Event::PieceTaken {
            offset: self.piece_start,
            len: self.piece.len() as u64,
        });
        self.events
            .push_back(Event::PieceRequested { offset: piece_end });
        self.read_end = self.read_end.max(piece_end);
        self.downloading(now);
        self.held = line.to_vec();
        self.held.push(b'\r');
        true
    }

    /// Announces the firmware after the MCU confirmed (URC 10701); then keeps sending 10702
    /// every few seconds until [`Module::piece_ready`].
    pub fn start_download(&mut self, info: FirmwareInfo, now: Duration) {
        if self.stage != Stage::Downloading {
            return;
        }
        let component = self
            .plan
            .as_ref()
            .map(|p| p.component.clone())
            .unwrap_or_default();
        let mut args = format!(
            "\"{}\",{},\"{}\",{}",
            component, info.size, info.md5, info.crc32
        );
        if self.sha256 {
            args.push_str(&format!(",\"{}\"", info.sha256));
        }
        self.urc(urc::DOWNLOAD_STARTED, &args);
        // Another file: the MCU starts over, and so does what it has read.
        let file = (info.size, info.md5.clone());
        if self.read_of.as_ref() != Some(&file) {
            self.read_end = 0;
            self.read_of = Some(file);
        }
        self.info = Some(info);
        self.downloading(now);
    }

    fn downloading(&mut self, now: Duration) {
        self.stage = Stage::Downloading;
        self.downloading_at = Some(now + self.config.downloading_interval);
        self.deadline = self.downloading_at;
    }

    /// Hands over the piece at `start` (URC 10703). Bytes past the file size are ignored.
    ///
    /// Resumed, an MCU whose held command reads or asks for the next piece holds a piece
    /// already: it gets only the answer, since a 10703 for a piece it has passed would send it
    /// back to that piece's start.
    pub fn piece_ready(&mut self, start: u64, mut bytes: Vec<u8>, now: Duration) {
        if self.stage != Stage::Downloading {
            return;
        }
        let Some(info) = &self.info else { return };
        let size = info.size;
        bytes.truncate(size.saturating_sub(start) as usize);
        let component = self
            .plan
            .as_ref()
            .map(|p| p.component.clone())
            .unwrap_or_default();
        let in_a_piece = self.holding()
            && matches!(
                parse(last_command(&self.held)),
                Command::Read { .. }
                    | Command::Update(UpdateAction::NextPiece | UpdateAction::StartUpdate)
            );
        if !in_a_piece {
            if !self.first_piece {
                self.urc(urc::DOWNLOADING, "");
            }
            self.urc(
                urc::PIECE_READY,
                &format!("\"{}\",{},{},{}", component, size, start, bytes.len()),
            );
        }
        self.first_piece = false;
        self.piece_start = start;
        self.piece = bytes;
        self.stage = Stage::PieceReady;
        self.downloading_at = None;
        self.deadline = self.config.read_timeout.map(|t| now + t);
        self.release(now);
    }

    fn urc(&mut self, code: u32, args: &str) {
        self.out.extend_from_slice(b"\r\n+QIOTEVT: 7,");
        self.out.extend_from_slice(code.to_string().as_bytes());
        if !args.is_empty() {
            self.out.push(b',');
            self.out.extend_from_slice(args.as_bytes());
        }
        self.out.extend_from_slice(b"\r\n");
    }

    fn reply(&mut self, text: &str) {
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    fn fail(&mut self, error: Error) {
        self.urc(urc::UPDATE_FAILED, "");
        self.result_given = true;
        self.stage = Stage::Finished;
        self.deadline = None;
        self.events.push_back(Event::Failed(error));
        // Every command gets ERROR or a plain answer now: the time plays no part.
        self.release(Duration::ZERO);
    }

    fn file_size(&self) -> u64 {
        self.info.as_ref().map_or(0, |i| i.size)
    }

    fn execute(&mut self, line: &[u8], now: Duration) {
        if self.passed_piece(line, now) {
            return;
        }
        match parse(line) {
            Command::Attention => self.reply("OK"),
            Command::Echo(on) => {
                self.echo = on;
                self.reply("OK");
            }
            Command::Identify => {
                self.reply("Quectel\r\nSOTA console\r\nRevision: sota-link\r\n\r\nOK")
            }
            Command::SetMcuVersion { component, version } => {
                self.reply("OK");
                self.set_version(component, version);
            }
            Command::QueryMcuVersion => {
                let mut text = String::new();
                for (c, v) in &self.versions {
                    text.push_str(&format!("+QIOTMCUVER: \"{c}\",\"{v}\"\r\n"));
                }
                text.push_str(if text.is_empty() { "OK" } else { "\r\nOK" });
                self.reply(&text);
            }
            Command::RequestPlan { sha256 } => {
                self.sha256 = sha256;
                self.reply("OK");
                self.events.push_back(Event::PlanRequested { sha256 });
            }
            Command::TestRequestPlan => self.reply("+QIOTOTAREQ: (0,1)\r\n\r\nOK"),
            Command::TestRead => {
                let text = format!("+QIOTOTARD: {}\r\n\r\nOK", self.config.max_read);
                self.reply(&text);
            }
            Command::Update(action) => self.update(action, now),
            Command::Read { start, max_len } => self.read(start, max_len, now),
            Command::Unknown | Command::Malformed => self.reply("ERROR"),
        }
    }

    fn set_version(&mut self, component: String, version: String) {
        match self.versions.iter_mut().find(|(c, _)| *c == component) {
            Some(entry) => entry.1 = version.clone(),
            None => self.versions.push((component.clone(), version.clone())),
        }
        self.events.push_back(Event::VersionReported {
            component: component.clone(),
            version: version.clone(),
        });
        if self.stage != Stage::Updating {
            return;
        }
        let Some(plan) = &self.plan else { return };
        if plan.component != component {
            return;
        }
        if version == plan.target_version {
            self.urc(urc::UPDATE_OK, "");
            self.result_given = true;
            self.stage = Stage::Finished;
            self.deadline = None;
            self.events.push_back(Event::Succeeded { version });
        } else {
            let target = plan.target_version.clone();
            self.fail(Error::WrongVersion {
                reported: version,
                target,
            });
        }
    }

    fn update(&mut self, action: UpdateAction, now: Duration) {
        let piece_end = self.piece_start + self.piece.len() as u64;
        let ok = match (action, &self.stage) {
            (UpdateAction::Refuse, Stage::PlanOffered) => {
                self.stage = Stage::Finished;
                self.result_given = true;
                let component = self.plan.as_ref().map(|p| p.component.clone());
                self.events.push_back(Event::Refused {
                    component: component.unwrap_or_default(),
                });
                true
            }
            (UpdateAction::Confirm, Stage::PlanOffered) => {
                self.events.push_back(Event::Confirmed);
                self.downloading(now);
                true
            }
            // Unsure, `=2` is the MCU's word that it has a piece no earlier than the held one.
            (UpdateAction::NextPiece, Stage::PieceReady)
                if piece_end < self.file_size() && (self.read_end >= piece_end || self.unsure) =>
            {
                self.events.push_back(Event::PieceTaken {
                    offset: self.piece_start,
                    len: self.piece.len() as u64,
                });
                self.events
                    .push_back(Event::PieceRequested { offset: piece_end });
                self.downloading(now);
                true
            }
            (UpdateAction::StartUpdate, Stage::PieceReady)
                if piece_end == self.file_size() && (self.read_end >= piece_end || self.unsure) =>
            {
                self.events.push_back(Event::PieceTaken {
                    offset: self.piece_start,
                    len: self.piece.len() as u64,
                });
                self.stage = Stage::Updating;
                self.deadline = self.config.update_timeout.map(|t| now + t);
                true
            }
            _ => false,
        };
        self.reply(if ok { "OK" } else { "ERROR" });
        if ok && action == UpdateAction::StartUpdate {
            self.urc(urc::UPDATING, "");
            self.events.push_back(Event::Updating);
        }
    }

    fn read(&mut self, start: u64, max_len: u64, now: Duration) {
        let piece_end = self.piece_start + self.piece.len() as u64;
        if self.stage != Stage::PieceReady || start < self.piece_start || start >= piece_end {
            self.reply("ERROR");
            return;
        }
        let len = max_len.min(self.config.max_read).min(piece_end - start);
        let from = (start - self.piece_start) as usize;
        self.out
            .extend_from_slice(format!("\r\n+QIOTOTARD: {start},{len}\r\n").as_bytes());
        self.out
            .extend_from_slice(&self.piece[from..from + len as usize]);
        self.out.extend_from_slice(b"\r\nOK\r\n");
        if std::mem::take(&mut self.unsure) {
            self.read_end = self.read_end.max(start);
        }
        if start <= self.read_end {
            self.read_end = self.read_end.max(start + len);
        }
        self.deadline = self.config.read_timeout.map(|t| now + t);
        let total = self.file_size();
        self.events.push_back(Event::Progress(Progress {
            phase: Phase::Writing,
            done: self.read_end,
            total,
        }));
    }
}

impl Endpoint for Module {
    fn handle_input(&mut self, now: Duration, bytes: &[u8]) {
        for &byte in bytes {
            if self.holding() {
                self.held.push(byte);
                let over = self.held.len().saturating_sub(HOLD_LIMIT);
                self.held.drain(..over);
                continue;
            }
            if self.echo {
                self.out.push(byte);
            }
            match byte {
                b'\r' => {
                    let line = std::mem::take(&mut self.line);
                    if std::mem::take(&mut self.overflow) {
                        self.reply("ERROR");
                    } else if !line.is_empty() {
                        self.execute(&line, now);
                    }
                }
                b'\n' => {}
                _ if self.line.len() >= MAX_LINE => self.overflow = true,
                _ => self.line.push(byte),
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
        match self.deadline {
            Some(deadline) if now >= deadline => {}
            _ => return,
        }
        match self.stage {
            Stage::Downloading => {
                self.urc(urc::DOWNLOADING, "");
                self.downloading_at = Some(now + self.config.downloading_interval);
                self.deadline = self.downloading_at;
            }
            Stage::PieceReady => {
                let offset = self.piece_start;
                let timeout = self.config.read_timeout.unwrap_or_default();
                self.fail(Error::ReadTimeout { offset, timeout });
            }
            Stage::Updating => {
                let timeout = self.config.update_timeout.unwrap_or_default();
                self.fail(Error::UpdateTimeout(timeout));
            }
            _ => self.deadline = None,
        }
    }

    fn is_done(&self) -> bool {
        self.stage == Stage::Finished
    }
}

#[cfg(test)]
mod tests;
