//! Flashing through a bootloader: YMODEM-1K or the STM32 ROM bootloader (AN3155), behind one
//! endpoint and one notice type, so the CLI and the console run either with the same loop.
//!
//! The image must have passed its digest check before a [`Flash`] exists: callers build one
//! only from a [`crate::LocalFirmware`] without mismatches (see [`Flash::ymodem`]).

use crate::state::{FlowState, Step, Tracker};
use crate::LocalFirmware;
use core::time::Duration;
use sota_link::an3155::{self, Chip};
use sota_link::{ymodem, Endpoint};
use std::collections::VecDeque;

/// What flashing tells its caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlashNotice {
    /// The ROM bootloader answered: its version, the product ID and the layout used.
    Identified {
        /// Bootloader version (0x22 is 2.2).
        bootloader: u8,
        /// Product ID.
        pid: u16,
        /// The chip's name, flash size and page size.
        chip: Chip,
    },
    /// Flashed (and, for the ROM bootloader, read back identical).
    Finished {
        /// What happened, in a sentence for the technician.
        summary: String,
    },
    /// Flashing failed; nothing more will be sent.
    Failed(String),
}

enum Protocol {
    Ymodem(Box<ymodem::Sender>),
    An3155(Box<an3155::Flasher>),
}

/// A bootloader flash of one verified image.
pub struct Flash {
    protocol: Protocol,
    size: u64,
    tracker: Tracker,
    notices: VecDeque<FlashNotice>,
    done: bool,
    cancelled: bool,
    /// Bytes to send after a cancel.
    farewell: Vec<u8>,
}

impl Flash {
    /// YMODEM-1K of `image` (checked against `firmware`'s expected digests first) as `name`.
    pub fn ymodem(
        firmware: &LocalFirmware,
        name: &str,
        image: Vec<u8>,
        config: ymodem::Config,
        now: Duration,
    ) -> Result<Flash, String> {
        firmware.check()?;
        let size = image.len() as u64;
        let sender = ymodem::Sender::new(name, image, config, now).map_err(|e| e.to_string())?;
        Ok(Flash::with(Protocol::Ymodem(Box::new(sender)), size, now))
    }

    /// YMODEM-1K of a file of `size` bytes (checked against `firmware` first) whose contents
    /// arrive a window at a time: answer [`Flash::wants`] with [`Flash::provide`]. The image
    /// never sits whole in memory.
    pub fn ymodem_streaming(
        firmware: &LocalFirmware,
        name: &str,
        config: ymodem::Config,
        now: Duration,
    ) -> Result<Flash, String> {
        firmware.check()?;
        let size = firmware.own.size;
        let sender =
            ymodem::Sender::streaming(name, size, config, now).map_err(|e| e.to_string())?;
        Ok(Flash::with(Protocol::Ymodem(Box::new(sender)), size, now))
    }

    /// The image bytes the protocol needs next, as `(offset, len)`.
    pub fn wants(&self) -> Option<(u64, u64)> {
        match &self.protocol {
            Protocol::Ymodem(s) if !self.cancelled => s.wants(),
            _ => None,
        }
    }

    /// Image bytes at `offset`, answering [`Flash::wants`].
    pub fn provide(&mut self, offset: u64, bytes: Vec<u8>, now: Duration) {
        if let Protocol::Ymodem(s) = &mut self.protocol {
            s.provide(offset, bytes, now);
        }
        self.collect(now);
    }

    /// The STM32 ROM bootloader writing `image` (checked first) with `options`.
    pub fn an3155(
        firmware: &LocalFirmware,
        image: &[u8],
        options: an3155::Options,
        config: an3155::Config,
        now: Duration,
    ) -> Result<Flash, String> {
        firmware.check()?;
        let flasher =
            an3155::Flasher::new(image, options, config, now).map_err(|e| e.to_string())?;
        Ok(Flash::with(
            Protocol::An3155(Box::new(flasher)),
            image.len() as u64,
            now,
        ))
    }

    fn with(protocol: Protocol, size: u64, now: Duration) -> Flash {
        let mut tracker = Tracker::default();
        tracker.enter(Step::Connecting, now);
        Flash {
            protocol,
            size,
            tracker,
            notices: VecDeque::new(),
            done: false,
            cancelled: false,
            farewell: Vec::new(),
        }
    }

    /// Image size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Where the flash stands, for the UI.
    pub fn state(&self) -> FlowState {
        self.tracker.state()
    }

    /// The next notice.
    pub fn poll_notice(&mut self) -> Option<FlashNotice> {
        self.notices.pop_front()
    }

    fn collect(&mut self, now: Duration) {
        match &mut self.protocol {
            Protocol::Ymodem(s) => {
                while let Some(event) = s.poll_event() {
                    match event {
                        ymodem::Event::Progress(p) => {
                            self.tracker.progress(p, now);
                        }
                        ymodem::Event::Finished => {
                            self.tracker.enter(Step::Done, now);
                            self.notices.push_back(FlashNotice::Finished {
                                summary: format!(
                                    "the bootloader acknowledged all {} bytes over YMODEM",
                                    self.size
                                ),
                            });
                        }
                        ymodem::Event::Failed(e) => {
                            self.tracker.enter(Step::Failed, now);
                            self.notices.push_back(FlashNotice::Failed(e.to_string()));
                        }
                    }
                }
            }
            Protocol::An3155(f) => {
                while let Some(event) = f.poll_event() {
                    match event {
                        an3155::Event::Identified {
                            bootloader,
                            pid,
                            chip,
                        } => self.notices.push_back(FlashNotice::Identified {
                            bootloader,
                            pid,
                            chip,
                        }),
                        an3155::Event::Progress(p) => {
                            self.tracker.progress(p, now);
                        }
                        an3155::Event::Finished { written, skipped } => {
                            self.tracker.enter(Step::Done, now);
                            self.notices.push_back(FlashNotice::Finished {
                                summary: format!(
                                    "wrote {written} bytes, skipped {skipped} bytes already erased (0xFF), read back identical"
                                ),
                            });
                        }
                        an3155::Event::Failed(e) => {
                            self.tracker.enter(Step::Failed, now);
                            self.notices.push_back(FlashNotice::Failed(e.to_string()));
                        }
                    }
                }
            }
        }
        if matches!(self.tracker.state().step, Step::Done | Step::Failed) {
            self.done = true;
        }
    }

    /// The technician cancels. YMODEM: two `CAN`s end the batch and the bootloader keeps
    /// (or returns to) its old image, as most IAP bootloaders do. ROM bootloader: nothing
    /// more is sent; the chip stays in its bootloader and can be flashed again.
    pub fn cancel(&mut self, now: Duration) {
        if self.done {
            return;
        }
        if let Protocol::Ymodem(_) = self.protocol {
            self.farewell = vec![ymodem::CAN, ymodem::CAN];
        }
        self.done = true;
        self.cancelled = true;
        self.tracker.enter(Step::Failed, now);
    }

    fn endpoint(&mut self) -> &mut dyn Endpoint {
        match &mut self.protocol {
            Protocol::Ymodem(s) => s.as_mut(),
            Protocol::An3155(f) => f.as_mut(),
        }
    }
}

impl Endpoint for Flash {
    fn handle_input(&mut self, now: Duration, bytes: &[u8]) {
        if self.cancelled {
            return;
        }
        self.endpoint().handle_input(now, bytes);
        self.collect(now);
    }

    fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        if self.cancelled {
            out.append(&mut self.farewell);
        } else {
            self.endpoint().poll_transmit(out);
        }
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if self.cancelled {
            return None;
        }
        match &self.protocol {
            Protocol::Ymodem(s) => s.poll_timeout(),
            Protocol::An3155(f) => f.poll_timeout(),
        }
    }

    fn handle_timeout(&mut self, now: Duration) {
        if self.cancelled {
            return;
        }
        self.endpoint().handle_timeout(now);
        self.collect(now);
    }

    fn is_done(&self) -> bool {
        self.done
            || match &self.protocol {
                Protocol::Ymodem(s) => s.is_done(),
                Protocol::An3155(f) => f.is_done(),
            }
    }
}
