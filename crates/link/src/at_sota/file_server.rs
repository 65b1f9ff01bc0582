//! The module serving local firmware files without the engine: answers the [`Module`]'s
//! requests itself, one component plan after another, while the caller still sees every event.
//!
//! It checks nothing (no digests, no strategy): it is the protocol's test and benchmark
//! harness. `sota serve-at` runs the engine's session instead (`sota_flow::AtUpgrade`).

use super::{Event, FirmwareInfo, Module, Plan};
use crate::endpoint::Endpoint;
use core::time::Duration;
use std::collections::VecDeque;

/// One component's plan and the file it installs.
#[derive(Clone, Debug)]
pub struct Offer {
    /// The plan (URC 10700).
    pub plan: Plan,
    /// The firmware info (URC 10701).
    pub info: FirmwareInfo,
    /// The firmware file.
    pub firmware: Vec<u8>,
}

/// A [`Module`] with up to 20 plans and their files, offered one after another to the MCU.
#[derive(Debug)]
pub struct FileServer {
    module: Module,
    offers: Vec<Offer>,
    /// Index of the plan in progress; `offers.len()` once all have ended.
    current: usize,
    piece_size: u64,
    events: VecDeque<Event>,
    now: Duration,
}

impl FileServer {
    /// Serves `firmware` (described by `info`) under `plan`, in pieces of `piece_size` bytes
    /// (the module's free space; the whole file if it is larger).
    pub fn new(
        module: Module,
        plan: Plan,
        info: FirmwareInfo,
        firmware: Vec<u8>,
        piece_size: u64,
    ) -> Self {
        Self::with_plans(
            module,
            vec![Offer {
                plan,
                info,
                firmware,
            }],
            piece_size,
        )
    }

    /// Serves several component plans (multi-plan), in order: the next plan is announced
    /// (10707, then 10700) as soon as the previous one ended.
    pub fn with_plans(module: Module, offers: Vec<Offer>, piece_size: u64) -> Self {
        FileServer {
            module,
            offers,
            current: 0,
            piece_size: piece_size.max(1),
            events: VecDeque::new(),
            now: Duration::ZERO,
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The module, e.g. to read the versions the MCU reported.
    pub fn module(&self) -> &Module {
        &self.module
    }

    fn piece(&self, offset: u64) -> Vec<u8> {
        let Some(firmware) = self.offers.get(self.current).map(|o| &o.firmware) else {
            return Vec::new();
        };
        let start = (offset as usize).min(firmware.len());
        let end = (offset.saturating_add(self.piece_size) as usize).min(firmware.len());
        firmware[start..end].to_vec()
    }

    fn react(&mut self) {
        while let Some(event) = self.module.poll_event() {
            let current = self.offers.get(self.current).cloned();
            match (&event, current) {
                // Asked again mid-plan (a URC was lost): the same plan, no 10707.
                (Event::PlanRequested { .. }, Some(offer)) => self.module.offer_plan(offer.plan),
                (Event::Confirmed, Some(offer)) => {
                    self.module.start_download(offer.info, self.now);
                    let piece = self.piece(0);
                    self.module.piece_ready(0, piece, self.now);
                }
                (Event::PieceRequested { offset }, Some(_)) => {
                    let piece = self.piece(*offset);
                    self.module.piece_ready(*offset, piece, self.now);
                }
                (Event::Succeeded { .. } | Event::Failed(_) | Event::Refused { .. }, Some(_)) => {
                    self.current += 1;
                    if let Some(next) = self.offers.get(self.current) {
                        self.module.offer_plan(next.plan.clone());
                    }
                }
                _ => {}
            }
            self.events.push_back(event);
        }
    }
}

impl Endpoint for FileServer {
    fn handle_input(&mut self, now: Duration, bytes: &[u8]) {
        self.now = now;
        self.module.handle_input(now, bytes);
        self.react();
    }

    fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        self.module.poll_transmit(out);
    }

    fn poll_timeout(&self) -> Option<Duration> {
        self.module.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Duration) {
        self.now = now;
        self.module.handle_timeout(now);
        self.react();
    }

    /// Every plan has ended (the count moves on only at a plan's result; with no plan,
    /// there is nothing to wait for).
    fn is_done(&self) -> bool {
        self.current >= self.offers.len()
    }
}
