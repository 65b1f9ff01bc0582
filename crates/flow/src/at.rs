//! The QuecThing AT module driven by the engine's upgrade [`Session`]: the session decides
//! (plans, verification, pieces, timeouts, results), the link's [`Module`] speaks AT to the
//! MCU, and the handler in [`crate::io`] turns the session's I/O into [`Io`] requests.
//!
//! Plans are not known up front: a center chooses them only after the MCU reported its
//! components, so the first `AT+QIOTOTAREQ` becomes [`Io::NeedPlans`], and an accepted plan
//! becomes [`Io::NeedFirmwareInfo`].
//!
//! | MCU / module | session |
//! |---|---|
//! | `AT+QIOTMCUVER="c","v"` | `McuVersion` (and the component list for [`Io::NeedPlans`]) |
//! | first `AT+QIOTOTAREQ` | [`Io::NeedPlans`], then `Plans` from [`AtUpgrade::provide_plans`] |
//! | session offers a plan | 10700 (after 10707 when a plan ended before) |
//! | `AT+QIOTUPDATE=1` | `Readings` (see [`AtUpgrade::new`]) |
//! | session awaits info | [`Io::NeedFirmwareInfo`], then [`AtUpgrade::provide_info`] |
//! | session downloads | 10701, then 10702 every 5 s |
//! | `OfferPiece` (only after MD5, CRC32 and SHA-256 matched) | 10703 with the stored bytes |
//! | piece read to its end, `=2` / `=3` | `McuTookPiece` |
//! | session fails the plan | 10706 |

use crate::io::{Driver, Handler, Io, Left};
use crate::stamp;
use crate::state::{FlowState, Step, Tracker};
use core::time::Duration;
use serde::{Deserialize, Serialize};
use sota_engine::{
    Component, Event, FirmwareInfo, Outcome, Plan, Readings, Rejected, Session, Stage, StateKind,
    UiEvent,
};
use sota_link::at_sota::{
    Config, Event as LinkEvent, FirmwareInfo as LinkInfo, Module, Plan as LinkPlan, ResumePoint,
};
use sota_link::Endpoint;
use std::collections::VecDeque;

/// What the upgrade tells its caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// From the AT module (versions, reads, progress of the MCU's reads, …).
    Link(LinkEvent),
    /// From the engine's session (states, 10 % steps, verification, results, …).
    Engine(UiEvent),
    /// A request the session did not take (a late or repeated answer), for the log.
    Rejected(Rejected),
}

/// What an [`AtUpgrade`] keeps to be taken up by a new instance ([`AtUpgrade::snapshot`],
/// [`AtUpgrade::restore`]): the console's page reloaded mid-upgrade, the MCU did not.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AtSnapshot {
    session: Session,
    info: FirmwareInfo,
    echo: bool,
    sha256: bool,
    versions: Vec<(String, String)>,
}

impl AtSnapshot {
    /// The session as it was saved (its plan, state and offsets, for a UI to describe).
    pub fn session(&self) -> &Session {
        &self.session
    }
}

/// Where the plans stand.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Plans {
    /// The MCU has not asked yet.
    NotAsked,
    /// Asked; waiting for [`AtUpgrade::provide_plans`].
    Asked,
    /// Handed to the session.
    Given,
}

/// An AT SOTA module whose upgrades are run by an engine [`Session`].
#[derive(Debug)]
pub struct AtUpgrade {
    module: Module,
    session: Session,
    handler: Handler,
    plans: Plans,
    /// The firmware info of the plan being downloaded or transferred, as URC 10701 shows it.
    link_info: Option<LinkInfo>,
    /// The same, as the session took it (kept for [`AtUpgrade::snapshot`]).
    info: Option<FirmwareInfo>,
    /// The session before the MCU's last piece was taken, until the MCU reads in the next
    /// one: what [`AtUpgrade::snapshot`] keeps meanwhile (see there).
    before_take: Option<Session>,
    /// The piece the session offers now: (offset, len).
    offered: Option<(u64, u32)>,
    notices: VecDeque<Notice>,
    tracker: Tracker,
    now: Duration,
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

impl AtUpgrade {
    /// A module whose upgrades `session` runs; plans are asked for when the MCU wants them.
    ///
    /// The session owns every wait, so the module's own read and update timeouts are off.
    /// AT SOTA carries the MCU's strategy verdict, not its numbers: the MCU checks battery,
    /// signal and space against the minimums in 10700 and confirms with `=1` only if all are
    /// met. The session then gets those minimums as the readings the MCU vouched for, so its
    /// own check (including the source version of a delta package against the version the MCU
    /// reported) decides. A refusal (`=0`) reaches the session as `Event::Declined`: that plan
    /// ends refused at once and the next one is offered.
    pub fn new(config: Config, session: Session) -> Self {
        let config = Config {
            read_timeout: None,
            update_timeout: None,
            ..config
        };
        AtUpgrade {
            module: Module::new(config),
            session,
            handler: Handler::default(),
            plans: Plans::NotAsked,
            link_info: None,
            info: None,
            before_take: None,
            offered: None,
            notices: VecDeque::new(),
            tracker: Tracker::default(),
            now: Duration::ZERO,
        }
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

    /// Where the flow stands, for the UI.
    pub fn state(&self) -> FlowState {
        self.tracker.state()
    }

    /// True once the MCU has asked for plans and every plan has ended.
    pub fn is_finished(&self) -> bool {
        self.plans == Plans::Given && self.session.is_finished()
    }

    /// What a new instance needs to go on with this upgrade after the old one is gone (a page
    /// reload): `Some` while a plan downloads or transfers. Before that the MCU asks for the
    /// plan again by itself, and after it (updating) it reports its new version by itself.
    ///
    /// It never runs ahead of the MCU: after a piece was taken (`=2`) it stays at that piece
    /// until the MCU reads in the next one, since the OK may not have reached the MCU, which
    /// then repeats `=2` — for the piece the new instance must take it as.
    pub fn snapshot(&self) -> Option<AtSnapshot> {
        if !matches!(
            self.session.state(),
            StateKind::Downloading | StateKind::Transferring
        ) {
            return None;
        }
        let point = self.module.resume_point();
        Some(AtSnapshot {
            session: self.before_take.as_ref().unwrap_or(&self.session).clone(),
            info: self.info.clone()?,
            echo: point.echo,
            sha256: point.sha256,
            versions: point.versions,
        })
    }

    /// Takes up the upgrade of `snapshot` in a new instance; `stored` is how many bytes of the
    /// image the store still holds. The session checks the stored image again (and mid-download
    /// fetches on from what was kept, see `Session::keep_stored`). Mid-transfer, the module
    /// holds the MCU's input until the piece at the kept offset is ready again, so its reads
    /// get no ERROR in between; then its last command is answered (see `Module::resumed`).
    pub fn restore(config: Config, snapshot: AtSnapshot, stored: u64, now: Duration) -> Self {
        let config = Config {
            read_timeout: None,
            update_timeout: None,
            ..config
        };
        let AtSnapshot {
            mut session,
            info,
            echo,
            sha256,
            versions,
        } = snapshot;
        session.keep_stored(stored);
        let link = link_info(&info);
        let point = ResumePoint {
            echo,
            sha256,
            versions,
        };
        let read_to = session.transfer_offset();
        let module = match session.current_plan() {
            Some(plan) => {
                Module::resumed(config, point, link_plan(plan), link.clone(), read_to, now)
            }
            None => Module::new(config),
        };
        let state = session.state();
        let mut up = AtUpgrade {
            module,
            session,
            handler: Handler::default(),
            plans: Plans::Given,
            link_info: Some(link),
            info: Some(info),
            before_take: None,
            offered: None,
            notices: VecDeque::new(),
            tracker: Tracker::default(),
            now,
        };
        let step = match state {
            StateKind::Transferring => Step::Writing,
            _ => Step::Verifying,
        };
        up.tracker.enter(step, now);
        up.session.resume(stamp(now));
        up.pump();
        up.react();
        up
    }

    /// The components the MCU reported so far.
    pub fn components(&self) -> Vec<Component> {
        self.session.components().to_vec()
    }

    fn feed(&mut self, event: Event) {
        // A rejected event (e.g. a confirmation the MCU repeated) changes nothing.
        if let Err(e) = self.session.handle(event, stamp(self.now)) {
            self.notices.push_back(Notice::Rejected(e));
        }
    }

    fn react(&mut self) {
        while let Some(event) = self.module.poll_event() {
            match &event {
                LinkEvent::VersionReported { component, version } => {
                    self.feed(Event::McuVersion(Component {
                        identity: component.clone(),
                        version: version.clone(),
                    }));
                    self.remember(component, version);
                }
                LinkEvent::PlanRequested { .. } => match self.plans {
                    Plans::NotAsked => {
                        self.plans = Plans::Asked;
                        let components = self.components();
                        self.handler.push(Io::NeedPlans { components });
                    }
                    Plans::Asked => {}
                    // Asked again (a URC was lost): the plan in progress again.
                    Plans::Given => self.reoffer(),
                },
                LinkEvent::Confirmed => self.confirmed(),
                LinkEvent::Refused { .. } if self.session.state() == StateKind::Offered => {
                    self.feed(Event::Declined {
                        by: "the MCU (AT+QIOTUPDATE=0)".into(),
                    });
                }
                LinkEvent::PieceTaken { offset, len } => {
                    self.before_take = Some(self.session.clone());
                    let len = u32::try_from(*len).unwrap_or(u32::MAX);
                    self.feed(Event::McuTookPiece {
                        offset: *offset,
                        len,
                    });
                }
                LinkEvent::Progress(p) => {
                    // The MCU reads in the piece after the one taken: it knows it was taken.
                    self.before_take = None;
                    self.tracker
                        .update(Step::Writing, p.done, p.total, self.now);
                }
                LinkEvent::Updating => {
                    self.tracker.enter(Step::Updating, self.now);
                }
                _ => {}
            }
            self.notices.push_back(Notice::Link(event));
            self.pump();
        }
    }

    /// Keeps the session's component list current, so [`Io::NeedPlans`] lists every one.
    fn remember(&mut self, component: &str, version: &str) {
        let mut list = self.session.components().to_vec();
        match list.iter_mut().find(|c| c.identity == component) {
            Some(c) => c.version = version.to_string(),
            None => list.push(Component {
                identity: component.to_string(),
                version: version.to_string(),
            }),
        }
        self.feed(Event::Components(list));
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
                    self.handler.command(sota_engine::Command::OfferPiece {
                        component: self
                            .session
                            .current_plan()
                            .map_or_else(String::new, |p| p.identity.clone()),
                        component_type: sota_engine::ComponentType::Mcu,
                        offset,
                        len,
                        total: self.link_info.as_ref().map_or(0, |i| i.size),
                    });
                }
            }
            _ => {}
        }
    }

    /// Carries out what the session asked for that concerns the MCU, and passes the rest on.
    fn pump(&mut self) {
        // Commands before events: a report the session made (e.g. "accepted") goes out before
        // the request its new state leads to (the firmware info).
        loop {
            let mut busy = false;
            while let Some(command) = self.session.poll_command() {
                busy = true;
                if let sota_engine::Command::OfferPiece { offset, len, .. } = &command {
                    self.offered = Some((*offset, *len));
                }
                if let Left::Command(sota_engine::Command::HandToMcu(_)) =
                    self.handler.command(command)
                {
                    // AT SOTA has no way to hand a URL to the MCU: the module downloads.
                    self.session_stop("the MCU-downloads mode is not available over AT SOTA");
                }
            }
            while let Some(event) = self.session.poll_event() {
                busy = true;
                self.on_engine_event(&event);
                self.notices.push_back(Notice::Engine(event));
            }
            if !busy {
                return;
            }
        }
    }

    fn session_stop(&mut self, why: &str) {
        self.module.stop(why.to_string());
    }

    fn on_engine_event(&mut self, event: &UiEvent) {
        match event {
            UiEvent::State { state, .. } => match state {
                StateKind::Offered => {
                    self.link_info = None;
                    self.info = None;
                    self.offered = None;
                    self.reoffer();
                    self.tracker.enter(Step::WaitingForMcu, self.now);
                }
                StateKind::AwaitingInfo => {
                    if let Some(plan) = self.session.current_plan() {
                        let plan = plan.clone();
                        self.handler.push(Io::NeedFirmwareInfo { plan });
                    }
                }
                StateKind::Updating => {
                    self.tracker.enter(Step::Updating, self.now);
                }
                _ => {}
            },
            UiEvent::Progress {
                stage: Stage::Download,
                percent,
                ..
            } => {
                let total = self.link_info.as_ref().map_or(0, |i| i.size);
                let done = total * u64::from(*percent) / 100;
                self.tracker.update(Step::Verifying, done, total, self.now);
            }
            UiEvent::Finished(result) => {
                if let Outcome::Failed(failure) = &result.outcome {
                    self.module.stop(failure.to_string());
                }
                self.offered = None;
                self.before_take = None;
                let step = match (&result.outcome, self.session.is_finished()) {
                    (_, false) => Step::WaitingForMcu,
                    (Outcome::Succeeded, true) => Step::Done,
                    (Outcome::Failed(_), true) => Step::Failed,
                };
                self.tracker.enter(step, self.now);
            }
            _ => {}
        }
    }

    fn on_info(&mut self, info: &FirmwareInfo) {
        let link = link_info(info);
        self.link_info = Some(link.clone());
        self.info = Some(info.clone());
        if self.session.state() == StateKind::Downloading {
            self.module.start_download(link, self.now);
            self.tracker.update(Step::Verifying, 0, info.size, self.now);
        }
    }

    /// Answers [`Io::NeedPlans`]: the plans the center (or the local file) issues. None at
    /// all (the center has nothing for this device now) ends the flow: the MCU gets no offer.
    pub fn provide_plans(&mut self, plans: Vec<Plan>, now: Duration) -> Result<(), Rejected> {
        self.now = now;
        if plans.is_empty() && self.session.is_finished() {
            self.plans = Plans::Given;
            return Ok(());
        }
        let result = self.session.handle(Event::Plans(plans), stamp(now));
        if result.is_ok() {
            self.plans = Plans::Given;
        }
        self.pump();
        self.react();
        result
    }

    /// Answers [`Io::NeedFirmwareInfo`].
    pub fn provide_info(&mut self, info: FirmwareInfo, now: Duration) -> Result<(), Rejected> {
        self.now = now;
        let result = self
            .session
            .handle(Event::FirmwareInfo(info.clone()), stamp(now));
        if result.is_ok() {
            self.on_info(&info);
        }
        self.pump();
        self.react();
        result
    }

    /// The technician cancels: a plan in progress ends with URC 10706, so the MCU keeps the
    /// firmware it runs and can be upgraded again later. Nothing more is offered.
    pub fn cancel(&mut self, reason: &str) {
        self.module.stop(reason.to_string());
        self.tracker.enter(Step::Failed, self.now);
    }

    fn after_io(&mut self, now: Duration) {
        self.now = now;
        self.pump();
        self.react();
    }
}

impl Driver for AtUpgrade {
    fn poll_io(&mut self) -> Option<Io> {
        self.handler.poll_io()
    }

    fn fetched(&mut self, offset: u64, bytes: Vec<u8>, now: Duration) {
        self.now = now;
        self.handler.fetched(&mut self.session, offset, bytes, now);
        self.after_io(now);
    }

    fn fetch_failed(&mut self, reason: String, now: Duration) {
        self.now = now;
        self.handler.fetch_failed(&mut self.session, reason, now);
        self.after_io(now);
    }

    fn read_done(&mut self, offset: u64, bytes: Vec<u8>, now: Duration) {
        self.now = now;
        if let Some((o, _, bytes)) = self
            .handler
            .read_done(&mut self.session, offset, bytes, now)
        {
            if self.offered.map(|(off, _)| off) == Some(o) {
                self.module.piece_ready(o, bytes, now);
            }
        }
        self.after_io(now);
    }

    fn store_lost(&mut self, now: Duration) {
        self.now = now;
        self.handler.store_lost(&mut self.session, now);
        self.after_io(now);
    }

    fn provide_plans(&mut self, plans: Vec<Plan>, now: Duration) {
        if let Err(e) = AtUpgrade::provide_plans(self, plans, now) {
            self.notices.push_back(Notice::Rejected(e));
        }
    }

    fn provide_info(&mut self, info: FirmwareInfo, now: Duration) {
        if let Err(e) = AtUpgrade::provide_info(self, info, now) {
            self.notices.push_back(Notice::Rejected(e));
        }
    }
}

impl Endpoint for AtUpgrade {
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
