//! The device's side of the channel to the center: turns a flow's requests for plans and
//! firmware info, and its session's reports, into `sota-protocol` messages, and the center's
//! answers back into what the flow takes. One translation for every adapter (the CLI over
//! TCP MQTT, the console over MQTT on a WebSocket); the adapter only moves the JSON.
//!
//! | flow / session | up | down | flow |
//! |---|---|---|---|
//! | [`Io::NeedPlans`] | `versions`, `request` | `plans` | `provide_plans` |
//! | [`Io::NeedFirmwareInfo`] | `accept` | `firmware` | `provide_info` |
//! | report "refused" | `refuse` with the reason | | |
//! | any other report | `status` (percent with 5, version with 11) | | |
//!
//! The session's "accepted" report is not sent: `accept` carries it, and the center logs it.

use crate::io::{Driver, Io};
use core::time::Duration;
use serde::{Deserialize, Serialize};
use sota_engine::{Component, Report, Status};
use sota_protocol::message::MAX_MESSAGE_CHARS;
use sota_protocol::{ComponentVersion, Down, ErrorCode, PlanOffer, StatusReport, Up, UpgradeMode};
use std::collections::VecDeque;

/// What a [`CenterLink`] keeps for a new instance to report on the plans in progress (the
/// page reloaded mid-upgrade): the offers, whose plan ids every report names, and the
/// technician's remark that each later plan's `accept` carries. (The plans were answered, so
/// nothing is asked again, and a push meanwhile waits for the next request either way.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CenterSnapshot {
    offers: Vec<PlanOffer>,
    approval_note: String,
}

/// What the channel tells its adapter, for the screen and the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CenterNotice {
    /// The center answered with these plans (empty: nothing to do now).
    Plans(Vec<PlanOffer>),
    /// The center registered this device: keep the secret for the next logins.
    Registered {
        /// The device secret.
        device_secret: String,
    },
    /// The center refused a message.
    Error {
        /// Why, as a code.
        code: ErrorCode,
        /// Why, in words.
        message: String,
    },
    /// A message that changed nothing (late, repeated, or for a plan not in progress).
    Ignored(String),
}

/// Where the request for plans stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Asked {
    No,
    Waiting,
    Answered,
}

/// The device's side of the channel.
#[derive(Debug)]
pub struct CenterLink {
    asked: Asked,
    /// What the MCU reported, sent with every request.
    components: Vec<Component>,
    /// Manual-mode plans wait for [`CenterLink::approve`] (the technician's "Accept").
    ask_manual: bool,
    /// Plans held for approval.
    held: Vec<PlanOffer>,
    /// The offers handed to the session: their plan ids go into every message about them.
    offers: Vec<PlanOffer>,
    /// The component whose firmware info was asked for and not yet given.
    awaiting_info: Option<String>,
    /// Said with every `accept` of the plans approved last (the technician's override reason).
    approval_note: String,
    up: VecDeque<Up>,
    notices: VecDeque<CenterNotice>,
}

impl Default for CenterLink {
    fn default() -> Self {
        Self::new()
    }
}

impl CenterLink {
    /// A link with nothing asked yet.
    pub fn new() -> Self {
        CenterLink {
            asked: Asked::No,
            components: Vec::new(),
            ask_manual: false,
            held: Vec::new(),
            offers: Vec::new(),
            awaiting_info: None,
            approval_note: String::new(),
            up: VecDeque::new(),
            notices: VecDeque::new(),
        }
    }

    /// A link that holds plans in manual mode until the technician approves or refuses them
    /// (silent plans go ahead, as QuecThing's module does).
    pub fn asking_for_manual_plans() -> Self {
        CenterLink {
            ask_manual: true,
            ..Self::new()
        }
    }

    /// What [`CenterLink::restored`] needs.
    pub fn snapshot(&self) -> CenterSnapshot {
        CenterSnapshot {
            offers: self.offers.clone(),
            approval_note: self.approval_note.clone(),
        }
    }

    /// A link that goes on reporting on the plans of `snapshot`, whose answer the flow took
    /// already: a plan pushed meanwhile waits for the next request, as in the old instance.
    pub fn restored(snapshot: CenterSnapshot) -> Self {
        CenterLink {
            asked: Asked::Answered,
            offers: snapshot.offers,
            approval_note: snapshot.approval_note,
            ..Self::new()
        }
    }

    /// Plans waiting for the technician's decision.
    pub fn held(&self) -> &[PlanOffer] {
        &self.held
    }

    /// The technician accepts the held plans: they go to the flow.
    pub fn approve<D: Driver + ?Sized>(&mut self, flow: &mut D, now: Duration) {
        self.approve_noting("", flow, now);
    }

    /// The technician accepts the held plans with a remark — why a failed strategy check is
    /// overridden — that each plan's `accept` carries into the center's upgrade log.
    pub fn approve_noting<D: Driver + ?Sized>(&mut self, note: &str, flow: &mut D, now: Duration) {
        let plans = std::mem::take(&mut self.held);
        if !plans.is_empty() {
            self.approval_note = bounded(note.trim());
            self.hand_over(plans, flow, now);
        }
    }

    /// The technician refuses the held plans, with a reason for the center's log; the flow
    /// gets no plan.
    pub fn refuse_held<D: Driver + ?Sized>(&mut self, reason: &str, flow: &mut D, now: Duration) {
        let plans = std::mem::take(&mut self.held);
        if plans.is_empty() {
            return;
        }
        for p in &plans {
            self.up.push_back(Up::Refuse {
                plan_id: p.plan_id,
                comp_no: p.comp_no.clone(),
                message: bounded(&format!("refused by the technician: {reason}")),
            });
        }
        flow.provide_plans(Vec::new(), now);
    }

    /// Dynamic registration: log in with the product secret and send this; the answer comes
    /// as [`CenterNotice::Registered`].
    pub fn register(&mut self, product_secret: &str) {
        self.up.push_back(Up::Register {
            product_secret: product_secret.to_string(),
        });
    }

    /// The connection to the center is (re)established: repeat what is still unanswered, as
    /// messages sent before may have been lost with the old connection.
    pub fn reconnected(&mut self) {
        if self.asked == Asked::Waiting {
            self.request();
        }
        if let Some(component) = self.awaiting_info.clone() {
            self.accept(&component);
        }
    }

    /// Takes the requests the center answers and the reports it records; gives every other
    /// request back for the adapter to carry out.
    pub fn take(&mut self, io: Io) -> Option<Io> {
        match io {
            Io::NeedPlans { components } => {
                self.components = components;
                self.asked = Asked::Waiting;
                self.request();
                None
            }
            Io::NeedFirmwareInfo { plan } => {
                self.awaiting_info = Some(plan.identity.clone());
                self.accept(&plan.identity);
                None
            }
            Io::Report(report) => {
                self.report(&report);
                None
            }
            other => Some(other),
        }
    }

    /// A message from the center: plans and firmware info go to `flow`.
    pub fn handle_down<D: Driver + ?Sized>(&mut self, down: Down, flow: &mut D, now: Duration) {
        match down {
            Down::Plans { plans } => self.plans(plans, flow, now),
            Down::Firmware(firmware) => {
                if self.awaiting_info.as_deref() != Some(firmware.comp_no.as_str())
                    || self.plan_id(&firmware.comp_no) != Some(firmware.plan_id)
                {
                    self.notices.push_back(CenterNotice::Ignored(format!(
                        "firmware info for {} (plan {}), which is not awaited",
                        firmware.comp_no, firmware.plan_id
                    )));
                    return;
                }
                self.awaiting_info = None;
                flow.provide_info(firmware.to_info(), now);
            }
            Down::Registered { device_secret } => {
                self.notices
                    .push_back(CenterNotice::Registered { device_secret });
            }
            Down::Error { code, message } => {
                self.notices
                    .push_back(CenterNotice::Error { code, message });
            }
        }
    }

    fn plans<D: Driver + ?Sized>(&mut self, plans: Vec<PlanOffer>, flow: &mut D, now: Duration) {
        if self.asked == Asked::Answered {
            // The session takes one list; a push while it works waits for the next request.
            self.notices.push_back(CenterNotice::Ignored(format!(
                "{} plan(s) pushed while an upgrade is in progress; they are offered again at the next request",
                plans.len()
            )));
            return;
        }
        // Answered, or pushed before the MCU asked: the session takes them either way.
        self.asked = Asked::Answered;
        self.notices.push_back(CenterNotice::Plans(plans.clone()));
        if self.ask_manual && plans.iter().any(|p| p.mode == UpgradeMode::Manual) {
            // The offers are known (so the plan ids are), but nothing goes to the MCU yet.
            self.offers = plans.clone();
            self.held = plans;
            return;
        }
        // Nobody approved these: no remark of an earlier approval applies.
        self.approval_note.clear();
        self.hand_over(plans, flow, now);
    }

    fn hand_over<D: Driver + ?Sized>(
        &mut self,
        plans: Vec<PlanOffer>,
        flow: &mut D,
        now: Duration,
    ) {
        let engine = plans.iter().map(PlanOffer::to_plan).collect();
        self.offers = plans;
        flow.provide_plans(engine, now);
    }

    /// The next message for the center.
    pub fn poll_up(&mut self) -> Option<Up> {
        self.up.pop_front()
    }

    /// The next notice.
    pub fn poll_notice(&mut self) -> Option<CenterNotice> {
        self.notices.pop_front()
    }

    /// The offer of the component's plan in progress (its texts, mode and limits for a UI).
    pub fn offer(&self, component: &str) -> Option<&PlanOffer> {
        self.offers.iter().find(|o| o.comp_no == component)
    }

    fn plan_id(&self, component: &str) -> Option<i64> {
        self.offer(component).map(|o| o.plan_id)
    }

    fn request(&mut self) {
        if !self.components.is_empty() {
            let components = self
                .components
                .iter()
                .map(|c| ComponentVersion {
                    comp_no: c.identity.clone(),
                    version: c.version.clone(),
                })
                .collect();
            self.up.push_back(Up::Versions { components });
        }
        self.up.push_back(Up::Request);
    }

    fn accept(&mut self, component: &str) {
        match self.plan_id(component) {
            Some(plan_id) => self.up.push_back(Up::Accept {
                plan_id,
                comp_no: component.to_string(),
                message: self.approval_note.clone(),
            }),
            None => self.notices.push_back(CenterNotice::Ignored(format!(
                "the session accepted a plan for {component} that the center did not offer"
            ))),
        }
    }

    fn report(&mut self, report: &Report) {
        let Some(plan_id) = self.plan_id(&report.component) else {
            // A local plan (no center) or a report before any offer: nothing to send.
            return;
        };
        match report.status {
            Status::Accepted => {}
            Status::Refused => self.up.push_back(Up::Refuse {
                plan_id,
                comp_no: report.component.clone(),
                message: bounded(&report.message),
            }),
            _ => {
                let mut status = StatusReport::new(plan_id, report);
                status.message = bounded(&status.message);
                self.up.push_back(Up::Status(status));
            }
        }
    }
}

/// The center refuses longer messages; the log keeps the head of a long failure.
fn bounded(message: &str) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => message[..cut].to_string(),
        None => message.to_string(),
    }
}
