//! A YMODEM receiver, as an IAP bootloader runs it: asks with `C`, checks block numbers and
//! CRC-16, `NAK`s what is broken, `ACK`s duplicates, answers the first `EOT` with `NAK`, and
//! trims the file to the size in block 0.

use core::time::Duration;
use sota_link::ymodem::{crc16, ACK, CAN, CRC_REQUEST, EOT, NAK, SOH, STX};
use sota_link::Endpoint;

/// Timeouts and limits (as lrzsz's `rb`).
#[derive(Clone, Debug)]
pub struct ReceiverConfig {
    /// Interval between `C`s while waiting for block 0.
    pub start_interval: Duration,
    /// Silence inside a block, or between blocks, before a `NAK`.
    pub timeout: Duration,
    /// Consecutive errors before cancelling.
    pub max_errors: u32,
    /// Quiet time after an `EOT` before it is believed: an `EOT` followed by more bytes is
    /// line noise inside a block whose start was lost (lrzsz does the same).
    pub eot_quiet: Duration,
    /// Quiet time awaited after a bad block before the `NAK`, so the resent block is not read
    /// from the middle of the rest of the broken one (XMODEM's "purge the line").
    pub purge_quiet: Duration,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            start_interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            max_errors: 20,
            eot_quiet: Duration::from_millis(50),
            purge_quiet: Duration::from_millis(100),
        }
    }
}

/// A received file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedFile {
    /// Name from block 0.
    pub name: String,
    /// Contents, trimmed to the size from block 0.
    pub data: Vec<u8>,
}

/// How the session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The sender closed the batch.
    Finished,
    /// Too many errors in a row: the receiver sent CAN CAN.
    GaveUp,
    /// The sender cancelled.
    Cancelled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Header,
    Data,
}

/// A YMODEM receiver.
pub struct Receiver {
    config: ReceiverConfig,
    expect: Expect,
    /// The next block number wanted (low 8 bits on the wire).
    next_block: u8,
    frame: Vec<u8>,
    out: Vec<u8>,
    deadline: Duration,
    errors: u32,
    eot_seen: bool,
    /// An EOT arrived at this time; it counts only if the line stays quiet.
    eot_pending: Option<Duration>,
    /// After an error, bytes are dropped until the line is quiet until this time; then NAK.
    purge_until: Option<Duration>,
    last_was_can: bool,
    name: String,
    size: Option<u64>,
    data: Vec<u8>,
    files: Vec<ReceivedFile>,
    outcome: Option<Outcome>,
}

impl Receiver {
    /// A receiver that sends its first `C` right away.
    pub fn new(config: ReceiverConfig, now: Duration) -> Self {
        let deadline = now + config.start_interval;
        Receiver {
            config,
            expect: Expect::Header,
            next_block: 0,
            frame: Vec::new(),
            out: vec![CRC_REQUEST],
            deadline,
            errors: 0,
            eot_seen: false,
            eot_pending: None,
            purge_until: None,
            last_was_can: false,
            name: String::new(),
            size: None,
            data: Vec::new(),
            files: Vec::new(),
            outcome: None,
        }
    }

    /// Files received completely so far.
    pub fn files(&self) -> &[ReceivedFile] {
        &self.files
    }

    /// How the session ended, once it has.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// Bytes of the current file received so far.
    pub fn received(&self) -> u64 {
        self.data.len() as u64
    }

    fn frame_len(&self) -> Option<usize> {
        match *self.frame.first()? {
            SOH => Some(3 + 128 + 2),
            STX => Some(3 + 1024 + 2),
            _ => None,
        }
    }

    fn error(&mut self, now: Duration) {
        self.frame.clear();
        self.errors += 1;
        if self.errors >= self.config.max_errors {
            self.out.extend_from_slice(&[CAN, CAN, CAN]);
            self.outcome = Some(Outcome::GaveUp);
            return;
        }
        self.purge_until = Some(now + self.config.purge_quiet);
        // The purge's end sets the next deadline.
        self.deadline = now + self.config.purge_quiet + self.config.timeout;
    }

    fn end_purge(&mut self, now: Duration) {
        self.purge_until = None;
        self.out.push(
            if self.expect == Expect::Header && self.next_block == 0 && self.size.is_none() {
                CRC_REQUEST
            } else {
                NAK
            },
        );
        self.deadline = now + self.config.timeout;
    }

    fn accept(&mut self, now: Duration) {
        let frame = std::mem::take(&mut self.frame);
        let block = frame[1];
        let payload = &frame[3..frame.len() - 2];
        let crc = u16::from_be_bytes([frame[frame.len() - 2], frame[frame.len() - 1]]);
        if block != !frame[2] || crc != crc16(payload) {
            self.error(now);
            return;
        }
        self.errors = 0;
        self.deadline = now + self.config.timeout;
        match self.expect {
            Expect::Header if block == 0 => {
                let name_end = payload
                    .iter()
                    .position(|&b| b == 0)
                    .unwrap_or(payload.len());
                if name_end == 0 {
                    self.out.push(ACK);
                    self.outcome = Some(Outcome::Finished);
                    return;
                }
                self.name = String::from_utf8_lossy(&payload[..name_end]).into_owned();
                let rest = &payload[(name_end + 1).min(payload.len())..];
                let size_text: Vec<u8> = rest
                    .iter()
                    .copied()
                    .take_while(|b| b.is_ascii_digit())
                    .collect();
                self.size = core::str::from_utf8(&size_text)
                    .ok()
                    .and_then(|s| s.parse().ok());
                self.data.clear();
                self.expect = Expect::Data;
                self.next_block = 1;
                self.eot_seen = false;
                self.out.extend_from_slice(&[ACK, CRC_REQUEST]);
            }
            // Block 0 again: our ACK was lost.
            Expect::Data if block == 0 && self.next_block == 1 => {
                self.out.extend_from_slice(&[ACK, CRC_REQUEST])
            }
            Expect::Data if block == self.next_block => {
                self.eot_seen = false;
                self.data.extend_from_slice(payload);
                self.next_block = self.next_block.wrapping_add(1);
                self.out.push(ACK);
            }
            // A repeat of the last block: our ACK was lost.
            Expect::Data if block == self.next_block.wrapping_sub(1) => self.out.push(ACK),
            _ => self.error(now),
        }
    }

    fn end_of_file(&mut self, now: Duration) {
        self.deadline = now + self.config.timeout;
        if self.expect != Expect::Data {
            // EOT repeated after we finished the file: our ACK was lost.
            self.out.extend_from_slice(&[ACK, CRC_REQUEST]);
            return;
        }
        // An EOT before the size from block 0 arrived ends nothing: blocks were lost.
        let short = self
            .size
            .is_some_and(|size| (self.data.len() as u64) < size);
        if !self.eot_seen || short {
            self.eot_seen = true;
            self.out.push(NAK);
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        if let Some(size) = self.size {
            data.truncate(size as usize);
        }
        self.files.push(ReceivedFile {
            name: std::mem::take(&mut self.name),
            data,
        });
        self.expect = Expect::Header;
        self.next_block = 0;
        self.out.extend_from_slice(&[ACK, CRC_REQUEST]);
    }
}

impl Endpoint for Receiver {
    fn handle_input(&mut self, now: Duration, bytes: &[u8]) {
        for &byte in bytes {
            if self.outcome.is_some() {
                return;
            }
            if self.purge_until.is_some() {
                self.purge_until = Some(now + self.config.purge_quiet);
                continue;
            }
            if self.eot_pending.take().is_some() {
                // Something followed the EOT: it was noise.
                self.last_was_can = false;
            }
            if self.frame.is_empty() {
                match byte {
                    SOH | STX => {
                        self.frame.push(byte);
                        self.deadline = now + self.config.timeout;
                    }
                    EOT => self.eot_pending = Some(now + self.config.eot_quiet),
                    CAN if self.last_was_can => self.outcome = Some(Outcome::Cancelled),
                    _ => {} // noise between blocks
                }
                self.last_was_can = byte == CAN;
                continue;
            }
            self.frame.push(byte);
            if Some(self.frame.len()) == self.frame_len() {
                self.accept(now);
            }
        }
    }

    fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.out);
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if self.outcome.is_some() {
            return None;
        }
        [Some(self.deadline), self.eot_pending, self.purge_until]
            .into_iter()
            .flatten()
            .min()
    }

    fn handle_timeout(&mut self, now: Duration) {
        if self.outcome.is_some() {
            return;
        }
        if self.purge_until.is_some_and(|t| t <= now) {
            self.end_purge(now);
            return;
        }
        if self.eot_pending.is_some_and(|t| t <= now) {
            self.eot_pending = None;
            self.end_of_file(now);
            return;
        }
        if now < self.deadline {
            return;
        }
        if self.expect == Expect::Header
            && self.frame.is_empty()
            && self.errors < self.config.max_errors
        {
            // Still waiting for a sender: keep asking, as rb does.
            self.errors += 1;
            self.out.push(CRC_REQUEST);
            self.deadline = now + self.config.start_interval;
            return;
        }
        self.error(now);
    }

    fn is_done(&self) -> bool {
        self.outcome.is_some()
    }
}
