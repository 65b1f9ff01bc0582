//! The device-side upgrade session: a sans-IO state machine in the style of quinn-proto.
//!
//! Feed it [`Event`]s with [`Session::handle`] and the passing of time with
//! [`Session::handle_timeout`]; carry out the [`Command`]s from [`Session::poll_command`],
//! show the [`UiEvent`]s from [`Session::poll_event`], and wake it at
//! [`Session::poll_timeout`]. It serializes with serde; after deserializing, call
//! [`Session::resume`] once to get the commands that continue the work.

mod config;
mod decide;
mod download;
mod io;
mod outcome;
mod phase;
mod transfer;

pub use config::{Config, Timeouts};
pub use io::{Command, Event, Rejected, Stage, StateKind, UiEvent};
pub use outcome::{DigestKind, Failure, Mismatch, Outcome, PlanResult};

use crate::digest::Digester;
use crate::plan::{Component, Plan, MAX_PLANS};
use crate::status::{Report, Status};
use crate::strategy::Refusal;
use crate::time::Timestamp;
use download::fetch;
use phase::{Current, Hasher, Phase, Recheck};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use transfer::offer;

/// One device's upgrade session: a queue of plans, handled one after another.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Session {
    config: Config,
    components: Vec<Component>,
    current: Option<Current>,
    queue: VecDeque<Plan>,
    results: Vec<PlanResult>,
    /// Outputs are not serialized: [`Session::resume`] re-issues what the state still needs.
    #[serde(skip)]
    commands: VecDeque<Command>,
    #[serde(skip)]
    events: VecDeque<UiEvent>,
}

impl Session {
    /// A session for a device that reports `components`.
    pub fn new(config: Config, components: Vec<Component>) -> Self {
        let config = Config {
            piece_size: config.piece_size.max(1),
            ..config
        };
        Self {
            config,
            components,
            current: None,
            queue: VecDeque::new(),
            results: Vec::new(),
            commands: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The next command for the adapter, in order.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// The next event for the UI, in order.
    pub fn poll_event(&mut self) -> Option<UiEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.current.as_ref().map(|c| c.phase.deadline())
    }

    /// Where the current plan is.
    pub fn state(&self) -> StateKind {
        self.current
            .as_ref()
            .map_or(StateKind::Idle, |c| c.phase.kind())
    }

    /// The plan in progress.
    pub fn current_plan(&self) -> Option<&Plan> {
        self.current.as_ref().map(|c| &c.plan)
    }

    /// Plans waiting their turn.
    pub fn queued_plans(&self) -> impl Iterator<Item = &Plan> {
        self.queue.iter()
    }

    /// Results of the plans that ended, in order.
    pub fn results(&self) -> &[PlanResult] {
        &self.results
    }

    /// The device's components as last reported.
    pub fn components(&self) -> &[Component] {
        &self.components
    }

    /// True when no plan is in progress or waiting.
    pub fn is_finished(&self) -> bool {
        self.current.is_none() && self.queue.is_empty()
    }

    /// Bytes downloaded (and stored) of the current image, while downloading.
    pub fn download_offset(&self) -> Option<u64> {
        match &self.current.as_ref()?.phase {
            Phase::Downloading(d) => Some(d.received),
            _ => None,
        }
    }

    /// Bytes the MCU has taken, while transferring.
    pub fn transfer_offset(&self) -> Option<u64> {
        match &self.current.as_ref()?.phase {
            Phase::Transferring(t) => Some(t.offset),
            _ => None,
        }
    }

    /// Continues after deserializing: re-issues what the current state still needs (a
    /// [`Command::Refeed`] of the stored prefix, the fetch from the download offset, the
    /// offered piece). Deadlines are absolute and kept: a wait that expired while the
    /// adapter was away fails at the next [`handle_timeout`](Self::handle_timeout).
    pub fn resume(&mut self, now: Timestamp) {
        self.fire_expired(now);
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        let component = cur.plan.identity.clone();
        self.events.push_back(UiEvent::State {
            component: component.clone(),
            state: cur.phase.kind(),
        });
        self.commands.push_back(Command::SetDeadline {
            at: Some(cur.phase.deadline()),
        });
        match &mut cur.phase {
            Phase::Downloading(d) => {
                // A refeed cut short by another restart starts over: the adapter's feed is gone.
                if !matches!(d.hasher, Hasher::Live(_)) && d.received > 0 {
                    d.hasher = Hasher::Refeeding(Digester::new());
                    self.commands.push_back(Command::Refeed {
                        component,
                        len: d.received,
                    });
                    return;
                }
                if !matches!(d.hasher, Hasher::Live(_)) {
                    d.hasher = Hasher::Live(Digester::new());
                }
                self.commands.push_back(fetch(&d.info, d.received));
            }
            Phase::Transferring(t) => {
                // No piece before the stored image is known to be the verified one again.
                t.recheck = Recheck::Running(Box::default());
                self.commands.push_back(Command::Refeed {
                    component,
                    len: t.info.size,
                });
            }
            _ => {}
        }
    }

    /// Before [`resume`](Self::resume), on a session restored from storage: the store kept only
    /// the first `len` bytes of the image being downloaded (an adapter that writes in batches
    /// loses the unwritten tail in a crash), so the download continues from there. A longer
    /// `len` than the session counted, or any other state, changes nothing: the session never
    /// takes bytes it did not hash as stored.
    pub fn keep_stored(&mut self, len: u64) {
        if let Some(Current {
            phase: Phase::Downloading(d),
            ..
        }) = self.current.as_mut()
        {
            if len < d.received {
                d.received = len;
                d.hasher = Hasher::Lost;
            }
        }
    }

    /// Calls the timeout handling for every deadline at or before `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.fire_expired(now);
    }

    /// Takes one event. Waits whose deadline is at or before `now` time out first; then a
    /// rejected event leaves the session as it was.
    pub fn handle(&mut self, event: Event, now: Timestamp) -> Result<(), Rejected> {
        // An event after an expired deadline comes too late: the timeout wins, as on the module.
        self.fire_expired(now);
        let state = self.state();
        let unexpected = |event: &Event| Rejected::Unexpected {
            event: event.name(),
            state,
        };
        match event {
            Event::Components(list) => {
                self.components = list;
                Ok(())
            }
            Event::Plans(plans) => self.on_plans(plans, now),
            Event::McuVersion(c) => {
                self.on_version(c, now);
                Ok(())
            }
            e @ (Event::Readings { .. } | Event::Declined { .. })
                if state != StateKind::Offered =>
            {
                Err(unexpected(&e))
            }
            Event::Declined { by } => {
                let reasons = vec![Refusal::Declined { by }];
                if let Some(cur) = self.current.as_ref() {
                    let component = cur.plan.identity.clone();
                    self.events.push_back(UiEvent::Refused {
                        component,
                        reasons: reasons.clone(),
                    });
                }
                self.finish(Outcome::Failed(Failure::Refused(reasons)), now);
                Ok(())
            }
            Event::Readings {
                readings,
                override_reason,
            } => self.on_readings(readings, override_reason, now),
            e @ Event::FirmwareInfo(_) if state != StateKind::AwaitingInfo => Err(unexpected(&e)),
            Event::FirmwareInfo(info) => self.on_info(info, now),
            e @ (Event::Downloaded { .. } | Event::DownloadFailed { .. })
                if state != StateKind::Downloading =>
            {
                Err(unexpected(&e))
            }
            // Stored bytes come back for a refeed: a restored download or transfer.
            e @ Event::Stored { .. }
                if !matches!(state, StateKind::Downloading | StateKind::Transferring) =>
            {
                Err(unexpected(&e))
            }
            Event::Downloaded { offset, bytes } => self.on_downloaded(offset, bytes, now),
            Event::Stored { offset, bytes } => self.on_stored(offset, bytes, now),
            Event::DownloadFailed { reason } => {
                self.download_failed(reason, now);
                Ok(())
            }
            Event::StoreLost => match self.current.as_ref().map(|c| &c.phase) {
                Some(Phase::Downloading(_) | Phase::Transferring(_)) => {
                    self.finish(Outcome::Failed(Failure::ImageLost), now);
                    Ok(())
                }
                _ => Err(unexpected(&Event::StoreLost)),
            },
            e @ Event::McuTookPiece { .. } if state != StateKind::Transferring => {
                Err(unexpected(&e))
            }
            Event::McuTookPiece { offset, len } => self.on_piece_taken(offset, len, now),
            Event::McuUpdateDone => {
                let Some(Current {
                    phase: Phase::Updating { stored, .. },
                    ..
                }) = self.current
                else {
                    return Err(unexpected(&Event::McuUpdateDone));
                };
                let deadline = now.plus_millis(self.config.timeouts.version_report_ms);
                self.enter(Phase::AwaitingVersion { deadline, stored });
                Ok(())
            }
        }
    }

    fn fire_expired(&mut self, now: Timestamp) {
        // Each firing sets a later deadline or ends a plan, so this ends; the bound is a guard.
        for _ in 0..(MAX_PLANS * 16) {
            match self.poll_timeout() {
                Some(d) if d <= now => self.fire(now),
                _ => return,
            }
        }
    }

    fn fire(&mut self, now: Timestamp) {
        let Some(cur) = self.current.as_ref() else {
            return;
        };
        let t = self.config.timeouts;
        let failure = match &cur.phase {
            Phase::Offered { .. } => Failure::Refused(vec![Refusal::NoReadings {
                waited_ms: t.decision_ms,
            }]),
            Phase::AwaitingInfo { .. } => Failure::NoFirmwareInfo {
                waited_ms: t.firmware_info_ms,
            },
            Phase::Downloading(_) => {
                let reason = format!("no data for {} ms", t.download_stall_ms);
                return self.download_failed(reason, now);
            }
            Phase::Transferring(tr) => Failure::McuDidNotTake {
                offset: tr.offset,
                waited_ms: t.piece_take_ms,
            },
            Phase::Updating { .. } => Failure::UpdateTimeout {
                waited_ms: t.updating_ms,
            },
            Phase::AwaitingVersion { .. } => Failure::NoVersionReport {
                waited_ms: t.version_report_ms,
            },
        };
        if let Failure::Refused(reasons) = &failure {
            let component = cur.plan.identity.clone();
            self.events.push_back(UiEvent::Refused {
                component,
                reasons: reasons.clone(),
            });
        }
        self.finish(Outcome::Failed(failure), now);
    }

    /// Ends the current plan and starts the next one.
    fn finish(&mut self, outcome: Outcome, now: Timestamp) {
        let Some(cur) = self.current.take() else {
            return;
        };
        let identity = cur.plan.identity;
        let (status, message) = match &outcome {
            Outcome::Succeeded => (
                Status::UpdateOk,
                format!("now at version {}", cur.plan.target_version),
            ),
            Outcome::Failed(f) => (f.status(), f.to_string()),
        };
        let version =
            matches!(outcome, Outcome::Succeeded).then(|| cur.plan.target_version.clone());
        self.commands.push_back(Command::Report(Report {
            status,
            component: identity.clone(),
            message,
            percent: None,
            version,
        }));
        if cur.phase.has_stored_image() {
            self.commands.push_back(Command::DiscardImage {
                component: identity.clone(),
            });
        }
        let result = PlanResult {
            identity,
            target_version: cur.plan.target_version,
            outcome,
        };
        self.events.push_back(UiEvent::Finished(result.clone()));
        self.results.push(result);
        self.next_plan(now);
    }

    fn next_plan(&mut self, now: Timestamp) {
        match self.queue.pop_front() {
            Some(plan) => {
                let deadline = now.plus_millis(self.config.timeouts.decision_ms);
                self.current = Some(Current {
                    plan,
                    phase: Phase::Offered { deadline },
                });
                self.announce();
            }
            None => {
                self.current = None;
                self.commands.push_back(Command::SetDeadline { at: None });
            }
        }
    }

    fn enter(&mut self, phase: Phase) {
        if let Some(cur) = self.current.as_mut() {
            cur.phase = phase;
            self.announce();
        }
    }

    fn announce(&mut self) {
        if let Some(cur) = self.current.as_ref() {
            let component = cur.plan.identity.clone();
            self.events.push_back(UiEvent::State {
                component,
                state: cur.phase.kind(),
            });
            self.commands.push_back(Command::SetDeadline {
                at: Some(cur.phase.deadline()),
            });
        }
    }

    fn report(&mut self, status: Status, component: &str, message: String) {
        self.commands.push_back(Command::Report(Report {
            status,
            component: component.to_string(),
            message,
            percent: None,
            version: None,
        }));
    }
}

/// The state checks in `handle` rule this out; reaching it is a bug in this module.
#[track_caller]
fn unreachable_state() -> ! {
    unreachable!("session phase does not match the state checked in handle()")
}
