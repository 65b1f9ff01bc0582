//! YMODEM-1K sender (batch of one file), as IAP bootloaders such as ST AN4657's expect.
//!
//! Wire format: the receiver asks with `C` (CRC mode); blocks are `SOH`+128 or `STX`+1024 data
//! bytes framed as `hdr, n, 255-n, data, CRC-16/XMODEM (big-endian)`. Block 0 carries
//! `name\0size\0`; the last data block is padded with 0x1A; the end is `EOT`, (`NAK`, `EOT`),
//! `ACK`, `C` and an all-zero block 0. Stop-and-wait: every block waits for `ACK` or `NAK`.

use crate::endpoint::{Endpoint, Phase, Progress};
use core::time::Duration;
use std::collections::VecDeque;

/// Start of a 128-byte block.
pub const SOH: u8 = 0x01;
/// Start of a 1024-byte block.
pub const STX: u8 = 0x02;
/// End of transmission.
pub const EOT: u8 = 0x04;
/// Acknowledge.
pub const ACK: u8 = 0x06;
/// Negative acknowledge: send again.
pub const NAK: u8 = 0x15;
/// Cancel; two in a row abort the transfer.
pub const CAN: u8 = 0x18;
/// The receiver's request for CRC-mode blocks.
pub const CRC_REQUEST: u8 = b'C';
/// Padding of the last data block (CP/M end of file).
pub const PAD: u8 = 0x1A;

const CRC16: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_XMODEM);

/// CRC-16/XMODEM of a block's data.
pub fn crc16(data: &[u8]) -> u16 {
    CRC16.checksum(data)
}

/// Frames one block: header byte by size, number and complement, data padded with `pad`, CRC.
///
/// `data` must not be longer than 1024 bytes; up to 128 bytes make a `SOH` block.
pub fn encode_block(number: u8, data: &[u8], pad: u8) -> Vec<u8> {
    let size = if data.len() <= 128 { 128 } else { 1024 };
    let mut frame = Vec::with_capacity(size + 5);
    frame.push(if size == 128 { SOH } else { STX });
    frame.push(number);
    frame.push(!number);
    frame.extend_from_slice(&data[..data.len().min(size)]);
    frame.resize(3 + size, pad);
    let crc = crc16(&frame[3..]);
    frame.extend_from_slice(&crc.to_be_bytes());
    frame
}

/// The data of block 0 for a file: `name\0size\0`, zero-padded by [`encode_block`].
pub fn header_data(name: &str, size: u64) -> Vec<u8> {
    let mut data = Vec::with_capacity(name.len() + 24);
    data.extend_from_slice(name.as_bytes());
    data.push(0);
    data.extend_from_slice(size.to_string().as_bytes());
    data.push(0);
    data
}

/// Timeouts and limits; the defaults follow common senders (lrzsz, AN4657).
#[derive(Clone, Debug)]
pub struct Config {
    /// How long to wait for the receiver's first `C`.
    pub start_timeout: Duration,
    /// How long to wait for `ACK`/`NAK` after a block.
    pub response_timeout: Duration,
    /// Tries per block before giving up.
    pub max_tries: u32,
    /// After a block that went out more often than it was `NAK`ed (a timeout resent it, or a
    /// `C` did), how long to wait for the other copies' `ACK`/`NAK` before the next block.
    /// Without it a late `ACK` and the `ACK` of the resent copy both count, and the second one
    /// is taken for the next block's: the sender runs a block ahead of the receiver. lrzsz
    /// purges its input before each block for the same reason. It must cover one 1 KiB block
    /// on the wire (89 ms at 115200 baud) and stay below the receiver's own wait between
    /// blocks (1 s in many IAP bootloaders).
    pub stray_reply_wait: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            start_timeout: Duration::from_secs(60),
            response_timeout: Duration::from_secs(10),
            max_tries: 10,
            stray_reply_wait: Duration::from_millis(500),
        }
    }
}

/// Why a YMODEM transfer failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The file name does not fit block 0 or contains a NUL.
    #[error("the file name {0:?} cannot be sent: it must be at most 100 bytes and contain no NUL")]
    BadName(String),
    /// No `C` arrived.
    #[error("the receiver never asked for the file (no 'C' within {0:?}) — is the bootloader waiting for a YMODEM upload, and is the baud rate right?")]
    NoStart(Duration),
    /// The receiver sent two `CAN`s.
    #[error("the receiver cancelled the transfer (CAN CAN) at {at} of {total} bytes — the bootloader may have rejected the file (too large? wrong name?)")]
    Cancelled {
        /// Bytes acknowledged before the cancel.
        at: u64,
        /// File size.
        total: u64,
    },
    /// A block was never acknowledged.
    #[error("{what} was not acknowledged after {tries} tries — check the cable, the baud rate, and that nothing else uses the port")]
    NoAck {
        /// Which block ("block 0 (file name)", "data block 17", "end of file").
        what: String,
        /// Tries made.
        tries: u32,
    },
}

/// What the sender reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Bytes acknowledged so far.
    Progress(Progress),
    /// The receiver acknowledged the whole file and the end of the batch.
    Finished,
    /// The transfer failed; nothing more will be sent.
    Failed(Error),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    AwaitStart,
    AwaitHeaderAck,
    AwaitDataStart,
    AwaitBlockAck(u64),
    /// Block `next - 1` was acknowledged, but `pending` more copies of it were sent than
    /// answered: their replies are dropped before block `next` goes out.
    DrainStray {
        next: u64,
        pending: u32,
    },
    AwaitEotReply,
    AwaitFinalStart,
    AwaitFinalAck,
    /// Block `i` is next, but its bytes have not been handed over yet ([`Sender::wants`]).
    AwaitData(u64),
    Done,
}

/// How much of the file a streaming sender asks for at a time.
pub const WINDOW: u64 = 64 * 1024;

/// A YMODEM-1K sender of one file.
///
/// The file is either handed over whole ([`Sender::new`]) or in windows as the transfer goes
/// ([`Sender::streaming`]: answer [`Sender::wants`] with [`Sender::provide`]), so a large image
/// never needs to sit in memory.
#[derive(Debug)]
pub struct Sender {
    config: Config,
    name: String,
    size: u64,
    /// File bytes from `window_start` on, as handed over.
    window: Vec<u8>,
    window_start: u64,
    /// The offset the sender waits for, if any.
    wanted: Option<u64>,
    state: State,
    /// The frame last sent, resent on `NAK` or timeout.
    frame: Vec<u8>,
    out: Vec<u8>,
    deadline: Option<Duration>,
    tries: u32,
    /// `NAK`s received for the frame in flight: each answers one copy of it.
    naks: u32,
    last_was_can: bool,
    events: VecDeque<Event>,
}

impl Sender {
    /// A sender for `file` named `name`, waiting for the receiver's `C` from `now` on.
    pub fn new(name: &str, file: Vec<u8>, config: Config, now: Duration) -> Result<Self, Error> {
        let mut sender = Sender::streaming(name, file.len() as u64, config, now)?;
        sender.window = file;
        Ok(sender)
    }

    /// A sender for a file of `size` bytes whose contents arrive through [`Sender::provide`]
    /// when [`Sender::wants`] asks, [`WINDOW`] bytes at a time.
    pub fn streaming(name: &str, size: u64, config: Config, now: Duration) -> Result<Self, Error> {
        if name.len() > 100 || name.contains('\0') {
            return Err(Error::BadName(name.to_string()));
        }
        let deadline = Some(now + config.start_timeout);
        Ok(Sender {
            config,
            name: name.to_string(),
            size,
            window: Vec::new(),
            window_start: 0,
            wanted: None,
            state: State::AwaitStart,
            frame: Vec::new(),
            out: Vec::new(),
            deadline,
            tries: 0,
            naks: 0,
            last_was_can: false,
            events: VecDeque::new(),
        })
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The bytes the sender needs next, as `(offset, len)`: hand them over with
    /// [`Sender::provide`]. The transfer waits (without a deadline) until they arrive.
    pub fn wants(&self) -> Option<(u64, u64)> {
        let offset = self.wanted?;
        Some((offset, WINDOW.min(self.size - offset)))
    }

    /// File bytes starting at `offset`, answering [`Sender::wants`]; others are ignored.
    pub fn provide(&mut self, offset: u64, bytes: Vec<u8>, now: Duration) {
        let Some((want, len)) = self.wants() else {
            return;
        };
        if offset != want || bytes.len() as u64 != len {
            return;
        }
        // Everything before `offset` was acknowledged: the window moves on.
        self.window = bytes;
        self.window_start = offset;
        self.wanted = None;
        if let State::AwaitData(index) = self.state {
            self.send_block(index, now);
        }
    }

    fn blocks(&self) -> u64 {
        self.size.div_ceil(1024)
    }

    fn acked_bytes(&self, blocks: u64) -> u64 {
        (blocks * 1024).min(self.size)
    }

    fn send(&mut self, frame: Vec<u8>, state: State, now: Duration) {
        self.frame = frame;
        self.out.extend_from_slice(&self.frame);
        self.state = state;
        self.tries = 1;
        self.naks = 0;
        self.deadline = Some(now + self.config.response_timeout);
    }

    fn resend(&mut self, now: Duration) {
        if self.tries >= self.config.max_tries {
            let what = match self.state {
                State::AwaitHeaderAck | State::AwaitDataStart => "block 0 (file name)".to_string(),
                State::AwaitBlockAck(i) => format!("data block {}", i + 1),
                State::AwaitEotReply => "the end of file (EOT)".to_string(),
                _ => "the end of the batch".to_string(),
            };
            let tries = self.tries;
            self.fail(Error::NoAck { what, tries });
            return;
        }
        self.tries += 1;
        self.out.extend_from_slice(&self.frame);
        self.deadline = Some(now + self.config.response_timeout);
    }

    fn fail(&mut self, error: Error) {
        self.state = State::Done;
        self.deadline = None;
        self.events.push_back(Event::Failed(error));
    }

    fn send_block(&mut self, index: u64, now: Duration) {
        let start = index * 1024;
        let end = (start + 1024).min(self.size);
        let held = self.window_start..=self.window_start + self.window.len() as u64;
        if !(held.contains(&start) && held.contains(&end)) {
            self.wanted = Some(start);
            self.state = State::AwaitData(index);
            self.deadline = None;
            return;
        }
        let from = (start - self.window_start) as usize;
        let to = (end - self.window_start) as usize;
        let number = ((index + 1) & 0xFF) as u8;
        let frame = encode_block(number, &self.window[from..to], PAD);
        self.send(frame, State::AwaitBlockAck(index), now);
    }

    fn send_next(&mut self, index: u64, now: Duration) {
        if index < self.blocks() {
            self.send_block(index, now);
        } else {
            self.send(vec![EOT], State::AwaitEotReply, now);
        }
    }

    fn progress(&mut self, blocks: u64) {
        self.events.push_back(Event::Progress(Progress {
            phase: Phase::Writing,
            done: self.acked_bytes(blocks),
            total: self.size,
        }));
    }

    fn handle_byte(&mut self, now: Duration, byte: u8) {
        if byte == CAN {
            if self.last_was_can {
                let at = match self.state {
                    State::AwaitBlockAck(i) => self.acked_bytes(i),
                    State::DrainStray { next, .. } => self.acked_bytes(next),
                    State::AwaitData(i) => self.acked_bytes(i),
                    State::AwaitEotReply | State::AwaitFinalStart | State::AwaitFinalAck => {
                        self.size
                    }
                    _ => 0,
                };
                let total = self.size;
                self.fail(Error::Cancelled { at, total });
                return;
            }
            self.last_was_can = true;
            return;
        }
        self.last_was_can = false;
        match (self.state, byte) {
            (State::AwaitStart, CRC_REQUEST) => {
                let data = header_data(&self.name, self.size);
                self.send(encode_block(0, &data, 0), State::AwaitHeaderAck, now);
            }
            (State::AwaitHeaderAck, ACK) => {
                self.state = State::AwaitDataStart;
                self.deadline = Some(now + self.config.response_timeout);
            }
            (State::AwaitHeaderAck, NAK) => self.resend(now),
            (State::AwaitDataStart, CRC_REQUEST) => self.send_next(0, now),
            (State::AwaitBlockAck(i), ACK) => {
                self.progress(i + 1);
                // Copies neither NAKed nor this ACK's may still be answered.
                let pending = self.tries.saturating_sub(self.naks + 1);
                if pending == 0 {
                    self.send_next(i + 1, now);
                } else {
                    self.state = State::DrainStray {
                        next: i + 1,
                        pending,
                    };
                    self.deadline = Some(now + self.config.stray_reply_wait);
                }
            }
            (State::AwaitBlockAck(_), NAK) => {
                self.naks += 1;
                self.resend(now)
            }
            // A receiver that missed block 0's ACK asks again with `C` before block 1.
            (State::AwaitBlockAck(0), CRC_REQUEST) => self.resend(now),
            (State::DrainStray { next, pending }, ACK | NAK) => {
                if pending <= 1 {
                    self.send_next(next, now);
                } else {
                    self.state = State::DrainStray {
                        next,
                        pending: pending - 1,
                    };
                }
            }
            (State::AwaitEotReply, NAK) => self.resend(now),
            (State::AwaitEotReply, ACK) => {
                self.state = State::AwaitFinalStart;
                self.deadline = Some(now + self.config.response_timeout);
            }
            (State::AwaitFinalStart, CRC_REQUEST) => {
                self.send(encode_block(0, &[], 0), State::AwaitFinalAck, now);
            }
            (State::AwaitFinalAck, ACK) => self.finish(),
            (State::AwaitFinalAck, NAK | CRC_REQUEST) => self.resend(now),
            _ => {} // line noise or a stale request: the deadline handles a lost reply
        }
    }

    fn finish(&mut self) {
        self.state = State::Done;
        self.deadline = None;
        self.events.push_back(Event::Finished);
    }
}

impl Endpoint for Sender {
    fn handle_input(&mut self, now: Duration, bytes: &[u8]) {
        for &byte in bytes {
            if self.state == State::Done {
                return;
            }
            self.handle_byte(now, byte);
        }
    }

    fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.out);
    }

    fn poll_timeout(&self) -> Option<Duration> {
        self.deadline
    }

    fn handle_timeout(&mut self, now: Duration) {
        let Some(deadline) = self.deadline else {
            return;
        };
        if now < deadline {
            return;
        }
        match self.state {
            State::AwaitStart => self.fail(Error::NoStart(self.config.start_timeout)),
            // The receiver's `C` was lost: block 1 is what it waits for anyway.
            State::AwaitDataStart => self.send_next(0, now),
            // EOT was acknowledged, so the receiver has closed the file; only the
            // end-of-batch handshake is missing.
            State::AwaitFinalStart => {
                self.send(encode_block(0, &[], 0), State::AwaitFinalAck, now);
            }
            State::AwaitFinalAck if self.tries >= self.config.max_tries => self.finish(),
            // The other copies' replies were lost: the receiver waits for the next block.
            State::DrainStray { next, .. } => self.send_next(next, now),
            State::Done => self.deadline = None,
            _ => self.resend(now),
        }
    }

    fn is_done(&self) -> bool {
        self.state == State::Done
    }
}

#[cfg(test)]
mod tests;
