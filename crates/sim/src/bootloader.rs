//! The STM32 ROM bootloader over USART as ST's AN3155 describes it, on a [`Flash`] model:
//! auto-baud on 0x7F, Get, Get Version, Get ID, Read Memory, Write Memory, Erase or Extended
//! Erase, Go, and the protection commands (which only reset, as nothing is ever protected).
//!
//! Unlike most ROM bootloaders it drops a half-received address or data frame after
//! [`BootloaderConfig::idle_timeout`] of silence, so a host that lost bytes can resynchronise
//! by waiting; real chips need the host to fill the frame and take the NACK. A lone command
//! byte waits for its complement for ever, as on the chip.

use crate::flash::Flash;
use core::time::Duration;
use sota_link::an3155::{checksum, cmd, ACK, NACK, SYNC};
use sota_link::Endpoint;

/// Which chip to be and how fast.
#[derive(Clone, Debug)]
pub struct BootloaderConfig {
    /// Product ID answered by Get ID (0x410: STM32F10xxx medium-density).
    pub pid: u16,
    /// Bootloader version answered by Get (0x22: 2.2).
    pub version: u8,
    /// Offer Extended Erase (0x44) instead of Erase (0x43), as bootloaders from v3.0 do.
    pub extended_erase: bool,
    /// Flash start, page size and page count.
    pub flash: (u32, u32, u32),
    /// RAM start and size.
    pub ram: (u32, u32),
    /// Time to erase one page before the ACK.
    pub erase_page_time: Duration,
    /// Silence in the middle of a command after which it is dropped.
    pub idle_timeout: Duration,
}

impl Default for BootloaderConfig {
    fn default() -> Self {
        BootloaderConfig {
            pid: 0x410,
            version: 0x22,
            extended_erase: false,
            flash: (0x0800_0000, 1024, 128),
            ram: (0x2000_0000, 20 * 1024),
            erase_page_time: Duration::ZERO,
            idle_timeout: Duration::from_millis(500),
        }
    }
}

/// STM32F1 option bytes (read protection off, nothing write-protected).
const OPTION_BYTES: (u32, [u8; 16]) = (
    0x1FFF_F800,
    [
        0xA5, 0x5A, 0xFF, 0x00, 0xFF, 0x00, 0xFF, 0x00, 0xFF, 0x00, 0xFF, 0x00, 0xFF, 0x00, 0xFF,
        0x00,
    ],
);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    AwaitSync,
    Idle,
    Complement(u8),
    Address(u8),
    ReadLength(u32),
    WriteData(u32),
    EraseList,
    ExtendedEraseList,
    Running,
}

/// The simulated bootloader.
pub struct Bootloader {
    config: BootloaderConfig,
    flash: Flash,
    ram: Vec<u8>,
    state: State,
    buf: Vec<u8>,
    out: Vec<u8>,
    /// Replies held back until an erase "finishes".
    delayed: Vec<u8>,
    release_at: Option<Duration>,
    idle_deadline: Option<Duration>,
    generation: u64,
    jumped_to: Option<u32>,
}

impl Bootloader {
    /// A bootloader right after reset, with erased flash.
    pub fn new(config: BootloaderConfig) -> Self {
        let (base, page, pages) = config.flash;
        let ram = vec![0; config.ram.1 as usize];
        Bootloader {
            flash: Flash::new(base, page, pages),
            config,
            ram,
            state: State::AwaitSync,
            buf: Vec::new(),
            out: Vec::new(),
            delayed: Vec::new(),
            release_at: None,
            idle_deadline: None,
            generation: 0,
            jumped_to: None,
        }
    }

    /// The flash memory.
    pub fn flash(&self) -> &Flash {
        &self.flash
    }

    /// Replaces the flash contents from `image` at the flash start (for a demo or a test).
    pub fn load(&mut self, image: &[u8]) {
        self.flash.mass_erase();
        let base = self.flash.base();
        self.flash
            .program(base, &image[..image.len().min(self.flash.size() as usize)]);
    }

    /// Counts changes to flash, so an adapter can save it when it changed.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Where Go jumped, if it did (the bootloader no longer answers then).
    pub fn jumped_to(&self) -> Option<u32> {
        self.jumped_to
    }

    /// Back to the state after reset (flash kept), e.g. when a host reconnects after Go.
    pub fn reset(&mut self) {
        self.state = State::AwaitSync;
        self.buf.clear();
        self.jumped_to = None;
    }

    fn readable(&self, addr: u32, len: usize) -> Option<Vec<u8>> {
        if let Some(bytes) = self.flash.read(addr, len) {
            return Some(bytes.to_vec());
        }
        let (ram, size) = self.config.ram;
        if addr >= ram && (addr - ram) as u64 + len as u64 <= size as u64 {
            let start = (addr - ram) as usize;
            return Some(self.ram[start..start + len].to_vec());
        }
        let (ob, bytes) = OPTION_BYTES;
        if addr >= ob && (addr - ob) as usize + len <= bytes.len() {
            let start = (addr - ob) as usize;
            return Some(bytes[start..start + len].to_vec());
        }
        None
    }

    fn write(&mut self, addr: u32, data: &[u8]) -> bool {
        if self.flash.program(addr, data) {
            self.generation += 1;
            return true;
        }
        let (ram, size) = self.config.ram;
        if addr >= ram && (addr - ram) as u64 + data.len() as u64 <= size as u64 {
            let start = (addr - ram) as usize;
            self.ram[start..start + data.len()].copy_from_slice(data);
            return true;
        }
        false
    }

    fn commands(&self) -> Vec<u8> {
        let erase = if self.config.extended_erase {
            cmd::EXTENDED_ERASE
        } else {
            cmd::ERASE
        };
        vec![
            cmd::GET,
            cmd::GET_VERSION,
            cmd::GET_ID,
            cmd::READ,
            cmd::GO,
            cmd::WRITE,
            erase,
            cmd::WRITE_PROTECT,
            cmd::WRITE_UNPROTECT,
            cmd::READOUT_PROTECT,
            cmd::READOUT_UNPROTECT,
        ]
    }

    fn reply(&mut self, bytes: &[u8]) {
        if self.release_at.is_some() {
            self.delayed.extend_from_slice(bytes);
        } else {
            self.out.extend_from_slice(bytes);
        }
    }

    fn become_idle(&mut self) {
        self.state = State::Idle;
        self.buf.clear();
    }

    fn nack(&mut self) {
        self.reply(&[NACK]);
        self.become_idle();
    }

    fn command(&mut self, code: u8) {
        let commands = self.commands();
        if !commands.contains(&code) {
            self.nack();
            return;
        }
        self.reply(&[ACK]);
        match code {
            cmd::GET => {
                let mut r = vec![commands.len() as u8, self.config.version];
                r.extend_from_slice(&commands);
                r.push(ACK);
                self.reply(&r);
                self.become_idle();
            }
            cmd::GET_VERSION => {
                self.reply(&[self.config.version, 0x00, 0x00, ACK]);
                self.become_idle();
            }
            cmd::GET_ID => {
                let [hi, lo] = self.config.pid.to_be_bytes();
                self.reply(&[1, hi, lo, ACK]);
                self.become_idle();
            }
            cmd::READ | cmd::WRITE | cmd::GO => self.state = State::Address(code),
            cmd::ERASE => self.state = State::EraseList,
            cmd::EXTENDED_ERASE => self.state = State::ExtendedEraseList,
            // Nothing is ever protected: ACK the operation and reset, as the chip does.
            _ => {
                self.reply(&[ACK]);
                self.reset();
            }
        }
    }

    fn erase(&mut self, pages: &[u32], now: Duration) {
        if pages.iter().any(|&p| p >= self.flash.pages()) {
            self.nack();
            return;
        }
        for &p in pages {
            self.flash.erase_page(p);
        }
        self.generation += 1;
        self.busy(self.config.erase_page_time * pages.len() as u32, now);
        self.reply(&[ACK]);
        self.become_idle();
    }

    fn busy(&mut self, time: Duration, now: Duration) {
        if !time.is_zero() {
            self.release_at = Some(now + time);
        }
    }

    fn byte(&mut self, byte: u8, now: Duration) {
        match self.state {
            State::AwaitSync => {
                if byte == SYNC {
                    self.reply(&[ACK]);
                    self.state = State::Idle;
                }
            }
            State::Running => {}
            State::Idle => self.state = State::Complement(byte),
            State::Complement(code) => {
                if byte == !code {
                    self.command(code);
                } else {
                    self.nack();
                }
            }
            State::Address(code) => {
                self.buf.push(byte);
                if self.buf.len() < 5 {
                    return;
                }
                let addr = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
                let valid = checksum(&self.buf[..4]) == self.buf[4];
                self.buf.clear();
                if !valid || self.readable(addr, 1).is_none() {
                    self.nack();
                    return;
                }
                self.reply(&[ACK]);
                match code {
                    cmd::READ => self.state = State::ReadLength(addr),
                    cmd::WRITE => self.state = State::WriteData(addr),
                    _ => {
                        self.jumped_to = Some(addr);
                        self.state = State::Running;
                    }
                }
            }
            State::ReadLength(addr) => {
                self.buf.push(byte);
                if self.buf.len() < 2 {
                    return;
                }
                let (n, c) = (self.buf[0], self.buf[1]);
                match self.readable(addr, n as usize + 1) {
                    Some(data) if c == !n => {
                        self.reply(&[ACK]);
                        self.reply(&data);
                        self.become_idle();
                    }
                    _ => self.nack(),
                }
            }
            State::WriteData(addr) => {
                self.buf.push(byte);
                let len = self.buf[0] as usize + 1;
                if self.buf.len() < len + 2 {
                    return;
                }
                let valid = checksum(&self.buf[..len + 1]) == self.buf[len + 1];
                let data = self.buf[1..=len].to_vec();
                if valid && self.write(addr, &data) {
                    self.reply(&[ACK]);
                    self.become_idle();
                } else {
                    self.nack();
                }
            }
            State::EraseList => {
                self.buf.push(byte);
                let n = self.buf[0];
                if n == 0xFF {
                    // Global erase: 0xFF, 0x00.
                    if self.buf.len() < 2 {
                        return;
                    }
                    if self.buf[1] == 0x00 {
                        let pages: Vec<u32> = (0..self.flash.pages()).collect();
                        self.erase(&pages, now);
                    } else {
                        self.nack();
                    }
                    return;
                }
                let count = n as usize + 1;
                if self.buf.len() < count + 2 {
                    return;
                }
                if checksum(&self.buf[..=count]) != self.buf[count + 1] {
                    self.nack();
                    return;
                }
                let pages: Vec<u32> = self.buf[1..=count].iter().map(|&p| p as u32).collect();
                self.erase(&pages, now);
            }
            State::ExtendedEraseList => {
                self.buf.push(byte);
                if self.buf.len() < 2 {
                    return;
                }
                let n = u16::from_be_bytes([self.buf[0], self.buf[1]]);
                if n >= 0xFFF0 {
                    // Special erases: 0xFFFF mass, 0xFFFE bank 1, 0xFFFD bank 2; one bank here.
                    if self.buf.len() < 3 {
                        return;
                    }
                    if (0xFFFD..=0xFFFF).contains(&n) && checksum(&self.buf[..2]) == self.buf[2] {
                        let pages: Vec<u32> = (0..self.flash.pages()).collect();
                        self.erase(&pages, now);
                    } else {
                        self.nack();
                    }
                    return;
                }
                let count = n as usize + 1;
                if self.buf.len() < 2 + 2 * count + 1 {
                    return;
                }
                if checksum(&self.buf[..2 + 2 * count]) != self.buf[2 + 2 * count] {
                    self.nack();
                    return;
                }
                let pages: Vec<u32> = self.buf[2..2 + 2 * count]
                    .chunks(2)
                    .map(|p| u16::from_be_bytes([p[0], p[1]]) as u32)
                    .collect();
                self.erase(&pages, now);
            }
        }
    }
}

impl Endpoint for Bootloader {
    fn handle_input(&mut self, now: Duration, bytes: &[u8]) {
        for &b in bytes {
            self.byte(b, now);
        }
        // Like the ROM, a lone first byte waits for its partner for ever (stm32flash relies on
        // that to detect an already synced bootloader); only half-received data is dropped.
        self.idle_deadline = match self.state {
            State::AwaitSync | State::Idle | State::Complement(_) | State::Running => None,
            _ => Some(now + self.config.idle_timeout),
        };
    }

    fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.out);
    }

    fn poll_timeout(&self) -> Option<Duration> {
        [self.release_at, self.idle_deadline]
            .into_iter()
            .flatten()
            .min()
    }

    fn handle_timeout(&mut self, now: Duration) {
        if self.release_at.is_some_and(|t| t <= now) {
            self.release_at = None;
            self.out.append(&mut self.delayed);
        }
        if self.idle_deadline.is_some_and(|t| t <= now) {
            self.idle_deadline = None;
            self.become_idle();
        }
    }

    fn is_done(&self) -> bool {
        self.state == State::Running
    }
}
