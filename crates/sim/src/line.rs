//! A serial line between two [`Endpoint`]s: bytes paced at a baud rate, a fixed latency, and
//! injected faults, run on simulated time.
//!
//! Bytes reach the receiver in chunks of up to [`LineConfig::chunk`] bytes, as a USB serial
//! adapter hands them over, each chunk when its last byte has arrived.

use crate::rng::Rng;
use core::time::Duration;
use sota_link::Endpoint;
use std::collections::VecDeque;

/// Speed and framing of the line.
#[derive(Clone, Debug)]
pub struct LineConfig {
    /// Baud rate.
    pub baud: u32,
    /// Bits on the wire per byte: 10 for 8N1, 11 for 8E1.
    pub bits_per_byte: u32,
    /// Fixed delay added to every byte (adapter and driver latency).
    pub latency: Duration,
    /// Most bytes delivered at once.
    pub chunk: usize,
}

impl LineConfig {
    /// 8N1 at `baud` with no latency.
    pub fn n81(baud: u32) -> Self {
        LineConfig {
            baud,
            bits_per_byte: 10,
            latency: Duration::ZERO,
            chunk: 64,
        }
    }

    /// 8E1 at `baud` with no latency (the STM32 ROM bootloader's framing).
    pub fn e81(baud: u32) -> Self {
        LineConfig {
            bits_per_byte: 11,
            ..Self::n81(baud)
        }
    }

    /// Payload bytes per second the line carries at best.
    pub fn bytes_per_second(&self) -> f64 {
        self.baud as f64 / self.bits_per_byte as f64
    }

    fn byte_time(&self) -> Duration {
        Duration::from_nanos(1_000_000_000 * self.bits_per_byte as u64 / self.baud as u64)
    }
}

/// The link goes down for a while once the first side has sent `after_bytes` bytes.
#[derive(Clone, Copy, Debug)]
pub struct Disconnect {
    /// Bytes sent by side A before the disconnect.
    pub after_bytes: u64,
    /// How long the link stays down; every byte due in that time is lost.
    pub duration: Duration,
}

/// Faults to inject, reproducible from `seed`.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Probability that any one bit is flipped.
    pub bit_flip_rate: f64,
    /// Probability that a byte is lost.
    pub drop_rate: f64,
    /// One disconnect followed by a reconnect.
    pub disconnect: Option<Disconnect>,
    /// Seed of the fault generator.
    pub seed: u64,
}

/// What happened on the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Simulated time when the run stopped.
    pub elapsed: Duration,
    /// True if side A finished (`is_done`) before the time limit.
    pub finished: bool,
    /// Bytes sent by A, by B.
    pub sent: [u64; 2],
    /// Bits flipped and bytes dropped (including by the disconnect).
    pub flipped_bits: u64,
    /// Bytes lost.
    pub dropped: u64,
}

#[derive(Default)]
struct Direction {
    /// (arrival time, byte)
    in_flight: VecDeque<(Duration, u8)>,
    /// When the wire is free for the next byte.
    free_at: Duration,
    sent: u64,
}

/// The line and its fault generator.
pub struct Line {
    config: LineConfig,
    faults: Faults,
    rng: Rng,
    dirs: [Direction; 2],
    down: Option<(Duration, Duration)>,
    flipped: u64,
    dropped: u64,
    now: Duration,
}

/// Upper bound on loop iterations, so a protocol bug cannot hang a test.
const MAX_STEPS: u64 = 50_000_000;

impl Line {
    /// A line starting at time zero.
    pub fn new(config: LineConfig, faults: Faults) -> Self {
        let rng = Rng::new(faults.seed);
        Line {
            config,
            faults,
            rng,
            dirs: Default::default(),
            down: None,
            flipped: 0,
            dropped: 0,
            now: Duration::ZERO,
        }
    }

    fn send(&mut self, dir: usize, bytes: &[u8]) {
        let byte_time = self.config.byte_time();
        for &byte in bytes {
            let now = self.now;
            let d = &mut self.dirs[dir];
            let start = d.free_at.max(now);
            d.free_at = start + byte_time;
            d.sent += 1;
            let arrival = d.free_at + self.config.latency;
            if dir == 0 && self.down.is_none() {
                if let Some(cut) = self.faults.disconnect {
                    if d.sent > cut.after_bytes {
                        self.down = Some((start, start + cut.duration));
                        for d in &mut self.dirs {
                            let before = d.in_flight.len();
                            d.in_flight.retain(|&(t, _)| t < start);
                            self.dropped += (before - d.in_flight.len()) as u64;
                        }
                    }
                }
            }
            if let Some((from, to)) = self.down {
                if arrival >= from && start < to {
                    self.dropped += 1;
                    continue;
                }
            }
            if self.rng.chance(self.faults.drop_rate) {
                self.dropped += 1;
                continue;
            }
            let mut byte = byte;
            if self.faults.bit_flip_rate > 0.0 {
                for bit in 0..8 {
                    if self.rng.chance(self.faults.bit_flip_rate) {
                        byte ^= 1 << bit;
                        self.flipped += 1;
                    }
                }
            }
            self.dirs[dir].in_flight.push_back((arrival, byte));
        }
    }

    fn next_delivery(&self, dir: usize) -> Option<Duration> {
        let q = &self.dirs[dir].in_flight;
        let k = q.len().min(self.config.chunk);
        (k > 0).then(|| q[k - 1].0)
    }

    fn take_due(&mut self, dir: usize) -> Vec<u8> {
        let q = &mut self.dirs[dir].in_flight;
        let mut bytes = Vec::new();
        while let Some(&(t, b)) = q.front() {
            if t > self.now {
                break;
            }
            bytes.push(b);
            q.pop_front();
        }
        bytes
    }

    /// Runs until `a` is done and nothing is in flight, or until `limit` of simulated time.
    pub fn run(&mut self, a: &mut dyn Endpoint, b: &mut dyn Endpoint, limit: Duration) -> Report {
        let mut buf = Vec::new();
        let mut finished = false;
        for _ in 0..MAX_STEPS {
            a.poll_transmit(&mut buf);
            self.send(0, &buf);
            buf.clear();
            b.poll_transmit(&mut buf);
            self.send(1, &buf);
            buf.clear();
            if a.is_done() && self.dirs.iter().all(|d| d.in_flight.is_empty()) {
                finished = true;
                break;
            }
            let next = [
                a.poll_timeout(),
                b.poll_timeout(),
                self.next_delivery(0),
                self.next_delivery(1),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next else { break };
            if next > limit {
                self.now = limit;
                break;
            }
            self.now = self.now.max(next);
            let now = self.now;
            let to_b = self.take_due(0);
            if !to_b.is_empty() {
                b.handle_input(now, &to_b);
            }
            let to_a = self.take_due(1);
            if !to_a.is_empty() {
                a.handle_input(now, &to_a);
            }
            if a.poll_timeout().is_some_and(|t| t <= now) {
                a.handle_timeout(now);
            }
            if b.poll_timeout().is_some_and(|t| t <= now) {
                b.handle_timeout(now);
            }
        }
        Report {
            elapsed: self.now,
            finished,
            sent: [self.dirs[0].sent, self.dirs[1].sent],
            flipped_bits: self.flipped,
            dropped: self.dropped,
        }
    }
}
