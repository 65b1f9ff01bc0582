//! The flashing procedure: sync, identify, erase the covered pages, write (skipping blocks that
//! are all 0xFF after the erase), read back and compare, repair mismatching pages, then Go.

use super::{
    address, chip, cmd, command, erase_pages, extended_erase_pages, read_length, write_data, Chip,
    ACK, NACK, SYNC,
};
use crate::endpoint::{Endpoint, Phase, Progress};
use core::time::Duration;
use std::collections::VecDeque;

/// Bytes per Write/Read Memory command (the note's maximum).
const BLOCK: usize = 256;
/// Pages per erase command, so that one command's timeout stays bounded.
const PAGES_PER_ERASE: usize = 32;
/// Verify-and-repair rounds before giving up.
const REPAIR_ROUNDS: u32 = 3;
/// Reads of one block before a mismatch that never repeats itself is taken as real.
const MAX_REREADS: u32 = 6;

/// Timeouts and limits.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long to wait for an ACK or data (the note's commands answer in microseconds).
    pub response_timeout: Duration,
    /// How long to wait for the ACK of one erase command (up to 32 pages).
    pub erase_timeout: Duration,
    /// How long to wait for the ACK of a mass erase (large F4 parts take over 30 s).
    pub mass_erase_timeout: Duration,
    /// Tries per command before giving up.
    pub max_tries: u32,
    /// Quiet time after a NACK or stray bytes before retrying, so the bootloader is idle again.
    pub settle: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            response_timeout: Duration::from_secs(1),
            erase_timeout: Duration::from_secs(10),
            mass_erase_timeout: Duration::from_secs(60),
            max_tries: 5,
            settle: Duration::from_millis(50),
        }
    }
}

/// What to flash where.
#[derive(Clone, Debug)]
pub struct Options {
    /// Flash address of the image's first byte (4-aligned).
    pub address: u32,
    /// Jump to `address` after a verified write.
    pub go: bool,
    /// Page size for products missing from [`super::CHIPS`] (at least 1; 0 is refused).
    pub page_size: Option<u32>,
    /// Read back blocks that are all 0xFF too. Off trusts the erase's ACK for them, which
    /// saves a third of the time on an image that is one-third 0xFF; a write that went to a
    /// wrong address inside them would then go unnoticed.
    pub verify_erased: bool,
    /// Erase the whole flash (Extended Erase 0xFFFF or Erase 0xFF 0x00) instead of the pages
    /// the image covers: for sector-based families (F2/F4) and unknown products.
    pub mass_erase: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            address: 0x0800_0000,
            go: false,
            page_size: None,
            verify_erased: true,
            mass_erase: false,
        }
    }
}

/// Why flashing failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No answer to 0x7F.
    #[error("the MCU did not answer the sync byte 0x7F within {0:?} — is BOOT0 high (reset the board into its bootloader), the line 8E1, and the baud rate ≤ 115200?")]
    NoSync(Duration),
    /// A command kept failing.
    #[error("{what} failed {tries} times ({last}) — check the cable and that flash is not write- or read-out-protected")]
    CommandFailed {
        /// The command, with its address.
        what: String,
        /// Tries made.
        tries: u32,
        /// The last failure: "NACK", "no answer", "unexpected byte 0x.."
        last: String,
    },
    /// The product is not in the chip table.
    #[error(
        "unknown STM32 product ID 0x{0:03X} — pass its erase page size (e.g. --page-size 2048)"
    )]
    UnknownChip(u16),
    /// The image does not fit the flash.
    #[error("the image (0x{start:08X}..0x{end:08X}) does not fit the flash of {chip} (0x{flash_start:08X}..0x{flash_end:08X})")]
    DoesNotFit {
        /// Image start.
        start: u32,
        /// Image end (exclusive).
        end: u64,
        /// Product name.
        chip: String,
        /// Flash start.
        flash_start: u32,
        /// Flash end (exclusive).
        flash_end: u64,
    },
    /// The address is not 4-aligned.
    #[error("the flash address 0x{0:08X} is not a multiple of 4, as Write Memory requires")]
    Unaligned(u32),
    /// The bootloader lists no erase command.
    #[error("the bootloader supports neither Erase (0x43) nor Extended Erase (0x44) — is flash read-out protected?")]
    NoErase,
    /// The erase page size is 0.
    #[error("the erase page size must be at least 1 byte (e.g. --page-size 2048)")]
    ZeroPageSize,
    /// A page number does not fit the erase command the bootloader offers.
    #[error("page {page} cannot be erased with {command}, which takes page numbers up to {max} — pass the chip's real (larger) page size with --page-size, or use --mass-erase")]
    PageOutOfRange {
        /// The page number.
        page: u32,
        /// "Erase (0x43)" or "Extended Erase (0x44)".
        command: &'static str,
        /// The highest page number the command takes.
        max: u32,
    },
    /// Read-back kept differing after repairs.
    #[error("flash at 0x{0:08X} still differs from the image after {REPAIR_ROUNDS} erase-and-rewrite rounds — the flash may be worn or protected")]
    VerifyFailed(u32),
}

/// What the flasher reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The bootloader answered Get and Get ID.
    Identified {
        /// Bootloader version (0x22 is 2.2).
        bootloader: u8,
        /// Product ID.
        pid: u16,
        /// Layout used.
        chip: Chip,
    },
    /// Progress of a phase.
    Progress(Progress),
    /// Written, read back identical, and started if asked.
    Finished {
        /// Bytes written.
        written: u64,
        /// Bytes skipped because they were all 0xFF after the erase.
        skipped: u64,
    },
    /// Flashing failed; nothing more will be sent.
    Failed(Error),
}

#[derive(Clone, Debug)]
enum Op {
    Sync,
    Get,
    GetId,
    /// Pages to erase and their page-list frame, checked against the command's range.
    Erase {
        pages: Vec<u32>,
        frame: Vec<u8>,
    },
    MassErase,
    Write(usize),
    Verify(usize),
    Go,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// ACK, or NACK from a bootloader that was already synced.
    SyncReply,
    Ack,
    /// ACK then this many data bytes.
    AckData(usize),
    /// A count N, N+1 bytes, ACK (Get, Get ID, after the command's ACK).
    Counted,
}

struct Stage {
    send: Vec<u8>,
    expect: Expect,
    timeout: Duration,
}

enum Failure {
    Nack,
    Silence,
    Stray(u8),
}

impl Failure {
    fn describe(&self) -> String {
        match self {
            Failure::Nack => "NACK".into(),
            Failure::Silence => "no answer".into(),
            Failure::Stray(b) => format!("unexpected byte 0x{b:02X}"),
        }
    }
}

enum State {
    /// Waiting for the reply to `stages[stage]`.
    Exchange {
        stage: usize,
        rx: Vec<u8>,
        data: Vec<u8>,
    },
    /// Ignoring input until the bootloader is idle, then resynchronising.
    Settling,
    /// Sent this many lone 0x7F to realign with the bootloader's command framing: a NACK
    /// (0x7F completed a half-received command) or an ACK (it had reset) means aligned.
    Resync(u32),
    Done,
}

/// An AN3155 flasher for one image.
pub struct Flasher {
    config: Config,
    options: Options,
    /// The image padded to a multiple of 4 with 0xFF.
    image: Vec<u8>,
    ops: VecDeque<Op>,
    op: Op,
    stages: Vec<Stage>,
    tries: u32,
    state: State,
    deadline: Option<Duration>,
    out: Vec<u8>,
    events: VecDeque<Event>,
    bootloader: u8,
    extended_erase: Option<bool>,
    chip: Option<Chip>,
    round: u32,
    current_phase: Option<Phase>,
    went: bool,
    mismatches: Vec<usize>,
    /// The last read of a block that differed, and how many reads that block took.
    last_read: Option<(usize, Vec<u8>)>,
    rereads: u32,
    done: u64,
    total: u64,
    written: u64,
    skipped: u64,
}

impl Flasher {
    /// A flasher for `image` that starts by sending the sync byte at `now`.
    pub fn new(
        image: &[u8],
        options: Options,
        config: Config,
        now: Duration,
    ) -> Result<Self, Error> {
        if !options.address.is_multiple_of(4) {
            return Err(Error::Unaligned(options.address));
        }
        if options.page_size == Some(0) {
            return Err(Error::ZeroPageSize);
        }
        let mut padded = image.to_vec();
        padded.resize(image.len().div_ceil(4) * 4, 0xFF);
        let mut flasher = Flasher {
            config,
            options,
            image: padded,
            ops: VecDeque::from([Op::Get, Op::GetId]),
            op: Op::Sync,
            stages: Vec::new(),
            tries: 0,
            state: State::Settling,
            deadline: None,
            out: Vec::new(),
            events: VecDeque::new(),
            bootloader: 0,
            extended_erase: None,
            chip: None,
            round: 0,
            current_phase: None,
            went: false,
            mismatches: Vec::new(),
            last_read: None,
            rereads: 0,
            done: 0,
            total: 0,
            written: 0,
            skipped: 0,
        };
        flasher.start(Op::Sync, now);
        Ok(flasher)
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn blocks(&self) -> usize {
        self.image.len().div_ceil(BLOCK)
    }

    fn block(&self, index: usize) -> &[u8] {
        &self.image[index * BLOCK..((index + 1) * BLOCK).min(self.image.len())]
    }

    fn block_address(&self, index: usize) -> u32 {
        self.options.address + (index * BLOCK) as u32
    }

    fn stages_for(&self, op: &Op) -> Vec<Stage> {
        let t = self.config.response_timeout;
        let stage = |send: &[u8], expect| Stage {
            send: send.to_vec(),
            expect,
            timeout: t,
        };
        match op {
            Op::Sync => vec![stage(&[SYNC], Expect::SyncReply)],
            Op::Get => vec![
                stage(&command(cmd::GET), Expect::Ack),
                stage(&[], Expect::Counted),
            ],
            Op::GetId => vec![
                stage(&command(cmd::GET_ID), Expect::Ack),
                stage(&[], Expect::Counted),
            ],
            Op::Erase { frame, .. } => {
                let list = frame.clone();
                let code = if self.extended_erase == Some(true) {
                    cmd::EXTENDED_ERASE
                } else {
                    cmd::ERASE
                };
                vec![
                    stage(&command(code), Expect::Ack),
                    Stage {
                        send: list,
                        expect: Expect::Ack,
                        timeout: self.config.erase_timeout,
                    },
                ]
            }
            Op::MassErase => {
                let (code, frame) = if self.extended_erase == Some(true) {
                    (cmd::EXTENDED_ERASE, vec![0xFF, 0xFF, 0x00])
                } else {
                    (cmd::ERASE, vec![0xFF, 0x00])
                };
                vec![
                    stage(&command(code), Expect::Ack),
                    Stage {
                        send: frame,
                        expect: Expect::Ack,
                        timeout: self.config.mass_erase_timeout,
                    },
                ]
            }
            Op::Write(i) => vec![
                stage(&command(cmd::WRITE), Expect::Ack),
                stage(&address(self.block_address(*i)), Expect::Ack),
                stage(&write_data(self.block(*i)), Expect::Ack),
            ],
            Op::Verify(i) => vec![
                stage(&command(cmd::READ), Expect::Ack),
                stage(&address(self.block_address(*i)), Expect::Ack),
                stage(
                    &read_length(self.block(*i).len()),
                    Expect::AckData(self.block(*i).len()),
                ),
            ],
            Op::Go => vec![
                stage(&command(cmd::GO), Expect::Ack),
                stage(&address(self.options.address), Expect::Ack),
            ],
        }
    }

    fn describe(&self, op: &Op) -> String {
        match op {
            Op::Sync => "sync (0x7F)".into(),
            Op::Get => "Get (0x00)".into(),
            Op::GetId => "Get ID (0x02)".into(),
            Op::Erase { pages, .. } => {
                format!("erasing pages {}..={}", pages[0], pages[pages.len() - 1])
            }
            Op::MassErase => "mass erase".into(),
            Op::Write(i) => format!("Write Memory at 0x{:08X}", self.block_address(*i)),
            Op::Verify(i) => format!("Read Memory at 0x{:08X}", self.block_address(*i)),
            Op::Go => format!("Go to 0x{:08X}", self.options.address),
        }
    }

    fn start(&mut self, op: Op, now: Duration) {
        self.stages = self.stages_for(&op);
        self.op = op;
        self.tries = 0;
        self.attempt(now);
    }

    fn attempt(&mut self, now: Duration) {
        self.tries += 1;
        self.enter_stage(0, Vec::new(), now);
    }

    fn enter_stage(&mut self, stage: usize, data: Vec<u8>, now: Duration) {
        self.out.extend_from_slice(&self.stages[stage].send);
        self.deadline = Some(now + self.stages[stage].timeout);
        self.state = State::Exchange {
            stage,
            rx: Vec::new(),
            data,
        };
    }

    fn fail(&mut self, error: Error) {
        self.state = State::Done;
        self.deadline = None;
        self.events.push_back(Event::Failed(error));
    }

    fn failed_attempt(&mut self, failure: Failure, now: Duration) {
        if self.tries >= self.config.max_tries {
            let error = if matches!(self.op, Op::Sync) {
                Error::NoSync(self.config.response_timeout)
            } else {
                Error::CommandFailed {
                    what: self.describe(&self.op),
                    tries: self.tries,
                    last: failure.describe(),
                }
            };
            self.fail(error);
            return;
        }
        match (failure, &self.op) {
            (_, Op::Sync) => self.attempt(now),
            // After silence the bootloader is as idle as it will get.
            (Failure::Silence, _) => self.resync(0, now),
            _ => {
                self.state = State::Settling;
                self.deadline = Some(now + self.config.settle);
            }
        }
    }

    /// A lost byte or reply can leave the bootloader one byte into a command; resending the
    /// command would then stay misaligned forever. Lone 0x7F bytes realign it, as stm32flash
    /// does at start-up.
    fn resync(&mut self, sent: u32, now: Duration) {
        if sent >= 3 {
            // Give the command itself another try; its own limit ends this.
            self.attempt(now);
            return;
        }
        self.out.push(SYNC);
        self.state = State::Resync(sent + 1);
        self.deadline = Some(now + self.config.response_timeout);
    }

    fn handle_byte(&mut self, now: Duration, byte: u8) {
        if let State::Resync(_) = self.state {
            if byte == ACK || byte == NACK {
                self.attempt(now);
            }
            return;
        }
        let State::Exchange { stage, rx, data } = &mut self.state else {
            return;
        };
        let stage_index = *stage;
        let expect = self.stages[stage_index].expect;
        rx.push(byte);
        let first = rx[0];
        let complete = match expect {
            Expect::SyncReply => match first {
                ACK | NACK => Ok(true),
                other => Err(Failure::Stray(other)),
            },
            Expect::Ack => match first {
                ACK => Ok(true),
                NACK => Err(Failure::Nack),
                other => Err(Failure::Stray(other)),
            },
            Expect::AckData(len) => match first {
                ACK => {
                    if rx.len() > 1 {
                        data.push(byte);
                    }
                    Ok(rx.len() == len + 1)
                }
                NACK => Err(Failure::Nack),
                other => Err(Failure::Stray(other)),
            },
            Expect::Counted => {
                let n = first as usize + 1;
                if rx.len() == n + 2 {
                    if byte == ACK {
                        data.extend_from_slice(&rx[1..=n]);
                        Ok(true)
                    } else {
                        Err(Failure::Stray(byte))
                    }
                } else {
                    Ok(false)
                }
            }
        };
        match complete {
            Ok(false) => {}
            Ok(true) => {
                let data = std::mem::take(data);
                if stage_index + 1 < self.stages.len() {
                    self.enter_stage(stage_index + 1, data, now);
                } else {
                    self.complete(data, now);
                }
            }
            Err(failure) => self.failed_attempt(failure, now),
        }
    }

    fn progress(&mut self, phase: Phase) {
        self.events.push_back(Event::Progress(Progress {
            phase,
            done: self.done,
            total: self.total,
        }));
    }

    fn begin_phase(&mut self, phase: Phase, total: u64) {
        self.done = 0;
        self.total = total;
        self.progress(phase);
    }

    fn complete(&mut self, data: Vec<u8>, now: Duration) {
        let op = std::mem::replace(&mut self.op, Op::Sync);
        match op {
            Op::Sync => {}
            Op::Get => {
                self.bootloader = data.first().copied().unwrap_or(0);
                let commands = data.get(1..).unwrap_or(&[]);
                self.extended_erase = if commands.contains(&cmd::EXTENDED_ERASE) {
                    Some(true)
                } else if commands.contains(&cmd::ERASE) {
                    Some(false)
                } else {
                    None
                };
            }
            Op::GetId => {
                let pid = match data.as_slice() {
                    [hi, lo] => u16::from_be_bytes([*hi, *lo]),
                    _ => 0,
                };
                if let Err(error) = self.plan(pid) {
                    self.fail(error);
                    return;
                }
            }
            Op::Erase { pages, .. } => {
                self.done += pages.len() as u64;
                self.progress(Phase::Erasing);
            }
            Op::MassErase => {
                self.done += 1;
                self.progress(Phase::Erasing);
            }
            Op::Write(i) => {
                let len = self.block(i).len() as u64;
                self.written += len;
                self.done += len;
                self.progress(Phase::Writing);
            }
            Op::Verify(i) => {
                // Read Memory has no checksum: a mismatch may be line noise. Believe it only
                // when two reads agree; a read equal to the image needs no second opinion.
                let previous = self.last_read.take().filter(|(block, _)| *block == i);
                if data != self.block(i) {
                    let confirmed = previous.as_ref().is_some_and(|(_, p)| *p == data);
                    self.rereads += 1;
                    if !confirmed && self.rereads < MAX_REREADS {
                        self.last_read = Some((i, data));
                        self.ops.push_front(Op::Verify(i));
                        self.next(now);
                        return;
                    }
                    self.mismatches.push(i);
                }
                self.rereads = 0;
                self.done += self.block(i).len() as u64;
                self.progress(Phase::Verifying);
            }
            Op::Go => {}
        }
        self.next(now);
    }

    /// Identifies the chip and queues erase, write and verify.
    fn plan(&mut self, pid: u16) -> Result<(), Error> {
        let known = chip(pid);
        let chip = match (known, self.options.page_size) {
            (Some(c), None) => c,
            (Some(c), Some(page_size)) => Chip { page_size, ..c },
            (None, Some(page_size)) => Chip {
                pid,
                name: "STM32 (page size given)",
                flash_start: 0x0800_0000,
                flash_size: u32::MAX - 0x0800_0000,
                page_size,
            },
            // The page size is never used: every erase is a mass erase.
            (None, None) if self.options.mass_erase => Chip {
                pid,
                name: "STM32 (mass erase)",
                flash_start: 0x0800_0000,
                flash_size: u32::MAX - 0x0800_0000,
                page_size: 1024,
            },
            (None, None) => return Err(Error::UnknownChip(pid)),
        };
        self.events.push_back(Event::Identified {
            bootloader: self.bootloader,
            pid,
            chip,
        });
        let start = self.options.address;
        let end = start as u64 + self.image.len() as u64;
        let flash_end = chip.flash_start as u64 + chip.flash_size as u64;
        if start < chip.flash_start || end > flash_end {
            return Err(Error::DoesNotFit {
                start,
                end,
                chip: chip.name.to_string(),
                flash_start: chip.flash_start,
                flash_end,
            });
        }
        if self.extended_erase.is_none() {
            return Err(Error::NoErase);
        }
        self.chip = Some(chip);
        let blocks: Vec<usize> = (0..self.blocks()).collect();
        self.queue_round(&blocks)
    }

    fn page_of(&self, chip: &Chip, addr: u32) -> u32 {
        (addr - chip.flash_start) / chip.page_size
    }

    /// Queues erasing the pages under `blocks`, writing those blocks (all blocks of every
    /// erased page, as an erase wipes them) and verifying them.
    fn queue_round(&mut self, blocks: &[usize]) -> Result<(), Error> {
        let Some(chip) = self.chip else { return Ok(()) };
        if self.options.mass_erase {
            // A mass erase wipes what earlier rounds wrote: every round rewrites everything.
            self.ops.push_back(Op::MassErase);
            let all: Vec<usize> = (0..self.blocks()).collect();
            self.queue_writes_and_verifies(&all);
            return Ok(());
        }
        let mut pages: Vec<u32> = Vec::new();
        for &i in blocks {
            let first = self.page_of(&chip, self.block_address(i));
            let last = self.page_of(
                &chip,
                self.block_address(i) + self.block(i).len() as u32 - 1,
            );
            pages.extend(first..=last);
        }
        pages.sort_unstable();
        pages.dedup();
        let extended = self.extended_erase == Some(true);
        let mut frames = Vec::new();
        for chunk in pages.chunks(PAGES_PER_ERASE) {
            frames.push(erase_frame(chunk, extended)?);
        }
        let in_pages = |i: usize, me: &Self| {
            let a = me.page_of(&chip, me.block_address(i));
            let b = me.page_of(&chip, me.block_address(i) + me.block(i).len() as u32 - 1);
            pages.binary_search(&a).is_ok() || pages.binary_search(&b).is_ok()
        };
        let affected: Vec<usize> = (0..self.blocks()).filter(|&i| in_pages(i, self)).collect();
        for (chunk, frame) in pages.chunks(PAGES_PER_ERASE).zip(frames) {
            self.ops.push_back(Op::Erase {
                pages: chunk.to_vec(),
                frame,
            });
        }
        self.queue_writes_and_verifies(&affected);
        Ok(())
    }

    /// Queues writing `affected` (skipping all-0xFF blocks) and reading them back.
    fn queue_writes_and_verifies(&mut self, affected: &[usize]) {
        for &i in affected {
            if self.block(i).iter().all(|&b| b == 0xFF) {
                if self.round == 0 {
                    self.skipped += self.block(i).len() as u64;
                }
            } else {
                self.ops.push_back(Op::Write(i));
            }
        }
        for &i in affected {
            if self.options.verify_erased || self.block(i).iter().any(|&b| b != 0xFF) {
                self.ops.push_back(Op::Verify(i));
            }
        }
    }

    fn next(&mut self, now: Duration) {
        // A new phase starts when the next op is of another kind.
        let phase_of = |op: &Op| match op {
            Op::Erase { .. } | Op::MassErase => Some(Phase::Erasing),
            Op::Write(_) => Some(Phase::Writing),
            Op::Verify(_) => Some(Phase::Verifying),
            _ => None,
        };
        if let Some(op) = self.ops.pop_front() {
            let phase = phase_of(&op);
            if phase.is_some() && phase != self.current_phase {
                let total = self
                    .ops
                    .iter()
                    .chain(std::iter::once(&op))
                    .filter(|o| phase_of(o) == phase)
                    .map(|o| match o {
                        Op::Erase { pages, .. } => pages.len() as u64,
                        Op::MassErase => 1,
                        Op::Write(i) | Op::Verify(i) => self.block(*i).len() as u64,
                        _ => 0,
                    })
                    .sum();
                self.current_phase = phase;
                if let Some(phase) = phase {
                    self.begin_phase(phase, total);
                }
            }
            self.start(op, now);
            return;
        }
        if self.chip.is_none() {
            return;
        }
        if !self.mismatches.is_empty() {
            self.round += 1;
            if self.round > REPAIR_ROUNDS {
                let addr = self.block_address(self.mismatches[0]);
                self.fail(Error::VerifyFailed(addr));
                return;
            }
            let bad = std::mem::take(&mut self.mismatches);
            self.current_phase = None;
            if let Err(e) = self.queue_round(&bad) {
                self.fail(e);
                return;
            }
            self.next(now);
            return;
        }
        if self.options.go && !self.went {
            self.went = true;
            self.start(Op::Go, now);
            return;
        }
        self.state = State::Done;
        self.deadline = None;
        self.events.push_back(Event::Finished {
            written: self.written,
            skipped: self.skipped,
        });
    }
}

/// Highest page number Extended Erase (0x44) takes: 0xFFF0..=0xFFFF are special codes (0xFFFF
/// mass erase, 0xFFFE/0xFFFD bank erase, the rest reserved), so a wrapped or large page number
/// must never reach the wire.
const MAX_EXTENDED_PAGE: u32 = 0xFFEF;

/// The page-list frame of one erase command, or the first page the command cannot name.
fn erase_frame(pages: &[u32], extended: bool) -> Result<Vec<u8>, Error> {
    let out_of_range = |page: u32| {
        let (command, max) = if extended {
            ("Extended Erase (0x44)", MAX_EXTENDED_PAGE)
        } else {
            ("Erase (0x43)", u32::from(u8::MAX))
        };
        Error::PageOutOfRange { page, command, max }
    };
    if extended {
        let narrow: Vec<u16> = pages
            .iter()
            .map(|&p| {
                u16::try_from(p)
                    .ok()
                    .filter(|&n| u32::from(n) <= MAX_EXTENDED_PAGE)
                    .ok_or_else(|| out_of_range(p))
            })
            .collect::<Result<_, _>>()?;
        Ok(extended_erase_pages(&narrow))
    } else {
        let narrow: Vec<u8> = pages
            .iter()
            .map(|&p| u8::try_from(p).map_err(|_| out_of_range(p)))
            .collect::<Result<_, _>>()?;
        Ok(erase_pages(&narrow))
    }
}

impl Endpoint for Flasher {
    fn handle_input(&mut self, now: Duration, bytes: &[u8]) {
        for &byte in bytes {
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
        match self.deadline {
            Some(deadline) if now >= deadline => {}
            _ => return,
        }
        match self.state {
            State::Exchange { .. } => self.failed_attempt(Failure::Silence, now),
            State::Settling => self.resync(0, now),
            State::Resync(sent) => self.resync(sent, now),
            State::Done => self.deadline = None,
        }
    }

    fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

#[cfg(test)]
mod tests;
