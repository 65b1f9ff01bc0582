//! The module side of AT SOTA driven by the engine's upgrade [`Session`]: the session decides
//! (plans, verification, pieces, timeouts, results), the [`Module`] speaks AT to the MCU.
//!
//! This is glue only: it turns the MCU's AT requests into session events and the session's
//! commands into URCs. What needs I/O (fetching the image, storing it, reading a stored piece,
//! reporting to a center) comes out of [`Upgrade::poll_command`] for the adapter to carry out.
//!
//! | MCU / module | session |
//! |---|---|
//! | `AT+QIOTMCUVER="c","v"` | `McuVersion` |
//! | first `AT+QIOTOTAREQ` | `Plans` (the plans a center would issue on request) |
//! | session offers a plan | 10700 (after 10707 when a plan ended before) |
//! | `AT+QIOTUPDATE=1` | `Readings` (see [`Upgrade::new`]) |
//! | session awaits info | `FirmwareInfo` from the adapter's list |
//! | session downloads | 10701, then 10702 every 5 s |
//! | `OfferPiece` (only after MD5, CRC32 and SHA-256 matched) | 10703 with the stored bytes |
//! | piece read to its end, `=2` / `=3` | `McuTookPiece` |
//! | session fails the plan | 10706 |

use super::{Config, Event as LinkEvent, FirmwareInfo as LinkInfo, Module, Plan as LinkPlan};
use crate::endpoint::Endpoint;
use core::time::Duration;
use sota_engine::{
    Command, Component, Event, FirmwareInfo, Outcome, Plan, Readings, Rejected, Session, StateKind,
    Timestamp, UiEvent,
};
use std::collections::VecDeque;

/// What the upgrade tells its caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// From the AT module (versions, reads, progress of the MCU's reads, …).
    Link(LinkEvent),
    /// From the engine's session (states, 10 % steps, verification, results, …).
    Engine(UiEvent),
}

/// An AT SOTA module whose upgrades are run by an engine [`Session`].
#[derive(Debug)]
pub struct Upgrade {
    module: Module,
    session: Session,
    /// Held until the MCU first asks for a plan, as a center issues plans on request.
    plans: Option<Vec<Plan>>,
    infos: Vec<FirmwareInfo>,
    /// The firmware info of the plan being downloaded or transferred, as URC 10701 shows it.
    link_info: Option<LinkInfo>,
    /// The piece the session offers now: (offset, len).
    offered: Option<(u64, u32)>,
    commands: VecDeque<Command>,
    notices: VecDeque<Notice>,
    now: Duration,
}

fn stamp(now: Duration) -> Timestamp {
    Timestamp::from_millis(now.as_millis().min(u128::from(u64::MAX)) as u64)
}

fn link_plan(plan: &Plan) -> LinkPlan {
    LinkPlan {
        component: plan.identity.clone(),
        source_version: plan.source_version.clone(),
        target_version: plan.target_version.clone(),
        min_battery: u32::from(plan.min_battery),
        min_signal: plan.min_signal_dbm,
        use_space: plan.space_needed,
    }
}

fn link_info(info: &FirmwareInfo) -> LinkInfo {
    LinkInfo {
        size: info.size,
        md5: info.md5.clone(),
        // The session accepted the info, so this is 8 hex digits.
        crc32: u32::from_str_radix(&info.crc32, 16).unwrap_or(0),
        sha256: info.sha256.clone(),
    }
}

impl Upgrade {
    /// A module that will run `plans` (1 to 20, one per component, in order) through `session`
    /// once the MCU asks for a plan. `infos` holds the firmware info of each plan's component,
    /// handed to the session when it awaits it.
    ///
    /// The session owns every wait, so the module's own read and update timeouts are off.
    /// AT SOTA carries the MCU's strategy verdict, not its numbers: the MCU checks battery,
    /// signal and space against the minimums in 10700 and confirms with `=1` only if all are
    /// met. The session then gets those minimums as the readings the MCU vouched for, so its
    /// own check (including the source version of a delta package against the version the MCU
    /// reported) decides. A refusal (`=0`) reaches the session as `Event::Declined`: that plan
    /// ends refused at once and the next one is offered.
    pub fn new(
        config: Config,
        session: Session,
        plans: Vec<Plan>,
        infos: Vec<FirmwareInfo>,
    ) -> Self {
        let config = Config {
            read_timeout: None,
            update_timeout: None,
            ..config
        };
        Upgrade {
            module: Module::new(config),
            session,
            plans: Some(plans),
            infos,
            link_info: None,
            offered: None,
            commands: VecDeque::new(),
            notices: VecDeque::new(),
            now: Duration::ZERO,
        }
    }

    /// The next command for the adapter: `Fetch`, `StoreChunk`, `Refeed`, `DiscardImage`,
    /// `Report`, `HandToMcu`, and `OfferPiece`, which it answers with [`Upgrade::piece`].
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// The next notice, if any.
    pub fn poll_notice(&mut self) -> Option<Notice> {
        self.notices.pop_front()
    }

    /// The session, e.g. for its results.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The AT module, e.g. for the versions the MCU reported.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// True once the MCU has asked for plans and every plan has ended.
    pub fn is_finished(&self) -> bool {
        self.plans.is_none() && self.session.is_finished()
    }

    /// Feeds the session an event from the adapter's I/O (`Downloaded`, `DownloadFailed`,
    /// `Stored`, `StoreLost`).
    pub fn handle(&mut self, event: Event, now: Duration) -> Result<(), Rejected> {
        self.now = now;
        let result = self.session.handle(event, stamp(now));
        self.pump();
        self.react();
        result
    }

    /// The stored bytes of the piece `OfferPiece { offset, .. }` asked for: URC 10703.
    pub fn piece(&mut self, offset: u64, bytes: Vec<u8>, now: Duration) {
        self.now = now;
        if self.offered.map(|(o, _)| o) == Some(offset) {
            self.module.piece_ready(offset, bytes, now);
        }
    }

    fn feed(&mut self, event: Event) {
        // A rejected event (e.g. a confirmation the MCU repeated) changes nothing.
        let _ = self.session.handle(event, stamp(self.now));
    }

    fn react(&mut self) {
        while let Some(event) = self.module.poll_event() {
            match &event {
                LinkEvent::VersionReported { component, version } => {
                    self.feed(Event::McuVersion(Component {
                        identity: component.clone(),
                        version: version.clone(),
                    }));
                }
                LinkEvent::PlanRequested { .. } => match self.plans.take() {
                    Some(plans) => self.feed(Event::Plans(plans)),
                    // Asked again (a URC was lost): the plan in progress again.
                    None => self.reoffer(),
                },
                LinkEvent::Confirmed => self.confirmed(),
                LinkEvent::Refused { .. } if self.session.state() == StateKind::Offered => {
                    self.feed(Event::Declined {
                        by: "the MCU (AT+QIOTUPDATE=0)".into(),
                    });
                }
                LinkEvent::PieceTaken { offset, len } => {
                    let len = u32::try_from(*len).unwrap_or(u32::MAX);
                    self.feed(Event::McuTookPiece {
                        offset: *offset,
                        len,
                    });
                }
                _ => {}
            }
            self.notices.push_back(Notice::Link(event));
            self.pump();
        }
    }

    fn reoffer(&mut self) {
        if let Some(plan) = self.session.current_plan() {
            let plan = link_plan(plan);
            self.module.offer_plan(plan);
        }
    }

    fn confirmed(&mut self) {
        match self.session.state() {
            StateKind::Offered => {
                let Some(plan) = self.session.current_plan() else {
                    return;
                };
                let readings = Readings {
                    battery: plan.min_battery,
                    signal_dbm: plan.min_signal_dbm,
                    free_flash: plan.space_needed,
                };
                self.feed(Event::Readings {
                    readings,
                    override_reason: None,
                });
            }
            // The MCU confirmed the plan again after asking for it again: pick up where the
            // session is.
            StateKind::Downloading | StateKind::Transferring => {
                if let Some(info) = self.link_info.clone() {
                    self.module.start_download(info, self.now);
                }
                if let (StateKind::Transferring, Some((offset, len))) =
                    (self.session.state(), self.offered)
                {
                    self.offer(offset, len);
                }
            }
            _ => {}
        }
    }

    fn offer(&mut self, offset: u64, len: u32) {
        let Some(plan) = self.session.current_plan() else {
            return;
        };
        let total = self.link_info.as_ref().map_or(0, |i| i.size);
        self.commands.push_back(Command::OfferPiece {
            component: plan.identity.clone(),
            component_type: plan.component_type,
            offset,
            len,
            total,
        });
    }

    /// Carries out what the session asked for that concerns the MCU, and passes the rest on.
    fn pump(&mut self) {
        loop {
            let mut busy = false;
            while let Some(event) = self.session.poll_event() {
                busy = true;
                self.on_engine_event(&event);
                self.notices.push_back(Notice::Engine(event));
            }
            while let Some(command) = self.session.poll_command() {
                busy = true;
                match command {
                    Command::SetDeadline { .. } => {}
                    Command::OfferPiece { offset, len, .. } => {
                        self.offered = Some((offset, len));
                        self.commands.push_back(command);
                    }
                    other => self.commands.push_back(other),
                }
            }
            if !busy {
                return;
            }
        }
    }

    fn on_engine_event(&mut self, event: &UiEvent) {
        match event {
            UiEvent::State { component, state } => match state {
                StateKind::Offered => {
                    self.link_info = None;
                    self.offered = None;
                    self.reoffer();
                }
                StateKind::AwaitingInfo => {
                    // No info for this component: the session's 30 s wait fails the plan.
                    if let Some(info) = self.infos.iter().find(|i| i.identity == *component) {
                        let info = info.clone();
                        self.feed(Event::FirmwareInfo(info));
                    }
                }
                StateKind::Downloading => {
                    let info = self
                        .infos
                        .iter()
                        .find(|i| i.identity == *component)
                        .map(link_info);
                    if let Some(info) = info {
                        self.link_info = Some(info.clone());
                        self.module.start_download(info, self.now);
                    }
                }
                _ => {}
            },
            UiEvent::Finished(result) => {
                if let Outcome::Failed(failure) = &result.outcome {
                    self.module.stop(failure.to_string());
                }
                self.offered = None;
            }
            _ => {}
        }
    }
}

impl Endpoint for Upgrade {
    fn handle_input(&mut self, now: Duration, bytes: &[u8]) {
        self.now = now;
        // Expired session waits come first, as in the session itself.
        self.session.handle_timeout(stamp(now));
        self.pump();
        self.module.handle_input(now, bytes);
        self.react();
    }

    fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        self.module.poll_transmit(out);
    }

    fn poll_timeout(&self) -> Option<Duration> {
        let session = self
            .session
            .poll_timeout()
            .map(|t| Duration::from_millis(t.as_millis()));
        [self.module.poll_timeout(), session]
            .into_iter()
            .flatten()
            .min()
    }

    fn handle_timeout(&mut self, now: Duration) {
        self.now = now;
        if self.module.poll_timeout().is_some_and(|t| t <= now) {
            self.module.handle_timeout(now);
            self.react();
        }
        self.session.handle_timeout(stamp(now));
        self.pump();
        self.react();
    }

    fn is_done(&self) -> bool {
        self.is_finished() && (self.module.plan().is_none() || self.module.plan_ended())
    }
}
