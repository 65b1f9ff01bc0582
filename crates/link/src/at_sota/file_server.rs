//! The module serving one local firmware file: answers the [`Module`]'s requests itself, as the
//! CLI's `serve-at` does, while the caller still sees every event.

use super::{Event, FirmwareInfo, Module, Plan};
use crate::endpoint::Endpoint;
use core::time::Duration;
use std::collections::VecDeque;

/// A [`Module`] with a plan and a firmware file that it offers to every MCU that asks.
#[derive(Debug)]
pub struct FileServer {
    module: Module,
    plan: Plan,
    info: FirmwareInfo,
    firmware: Vec<u8>,
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
        FileServer {
            module,
            plan,
            info,
            firmware,
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
        let start = (offset as usize).min(self.firmware.len());
        let end = (offset.saturating_add(self.piece_size) as usize).min(self.firmware.len());
        self.firmware[start..end].to_vec()
    }

    fn react(&mut self) {
        while let Some(event) = self.module.poll_event() {
            match &event {
                Event::PlanRequested { .. } => self.module.offer_plan(self.plan.clone()),
                Event::Confirmed => {
                    self.module.start_download(self.info.clone(), self.now);
                    let piece = self.piece(0);
                    self.module.piece_ready(0, piece, self.now);
                }
                Event::PieceRequested { offset } => {
                    let piece = self.piece(*offset);
                    self.module.piece_ready(*offset, piece, self.now);
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

    fn is_done(&self) -> bool {
        self.module.is_done()
    }
}
