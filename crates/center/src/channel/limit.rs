//! The per-device rate limit: a token bucket per device. With the embedded
//! broker it is checked in the broker's publish hook, so a flood never
//! reaches the center's own session at the broker (whose queue would
//! otherwise overflow and drop other devices' messages); with an external
//! broker, where the center's MQTT client receives the message, before the
//! message is queued for its handler. Either way a message over the limit is
//! never handled. Every second a device stays over its limit it is told once
//! (an `error` on its `down` topic) and one log line counts the messages
//! refused, so neither the answers nor the log become a flood of their own.
//!
//! Time is an input ([`Limiter::check`] takes `now`); [`RateGuard`] reads the clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sota_protocol::{DeviceId, Down, ErrorCode};

use super::client::Outbox;

/// How many messages a device may send: `burst` at once, refilled at
/// `per_second`. A rate of 0 turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained messages per second.
    pub per_second: f64,
    /// Messages that may arrive at once (the bucket's size).
    pub burst: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_second: 10.0,
            burst: 50.0,
        }
    }
}

/// What to do with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit: handle it.
    Allow,
    /// Over the limit: not handled. `tell` is `Some(n)` when the device is
    /// to be answered with an error and a log line written now, `n` messages
    /// of this device refused since the last one (once a second, not once a
    /// message).
    Refuse {
        /// Refusals to tell and log now, if any.
        tell: Option<u64>,
    },
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    unlogged: u64,
    logged_at: Option<Instant>,
}

/// How often a refusing device is told, and logged.
const LOG_EVERY: Duration = Duration::from_secs(1);
/// How often idle buckets are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The buckets of every device that sent something lately.
#[derive(Debug)]
pub struct Limiter {
    limit: RateLimit,
    buckets: HashMap<DeviceId, Bucket>,
    swept: Option<Instant>,
}

impl Limiter {
    /// A limiter with `limit` for every device.
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: HashMap::new(),
            swept: None,
        }
    }

    /// Take one token of `id`'s bucket at `now`.
    pub fn check(&mut self, id: &DeviceId, now: Instant) -> Verdict {
        if self.limit.per_second <= 0.0 {
            return Verdict::Allow;
        }
        self.sweep(now);
        let limit = self.limit;
        let bucket = match self.buckets.get_mut(id) {
            Some(b) => b,
            None => self.buckets.entry(id.clone()).or_insert(Bucket {
                tokens: limit.burst,
                at: now,
                unlogged: 0,
                logged_at: None,
            }),
        };
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * limit.per_second).min(limit.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Verdict::Allow;
        }
        bucket.unlogged += 1;
        let due = bucket
            .logged_at
            .is_none_or(|t| now.saturating_duration_since(t) >= LOG_EVERY);
        let tell = due.then(|| {
            bucket.logged_at = Some(now);
            std::mem::take(&mut bucket.unlogged)
        });
        Verdict::Refuse { tell }
    }

    /// Drop the buckets that have refilled (a full bucket is what a new device gets).
    fn sweep(&mut self, now: Instant) {
        let Some(last) = self.swept else {
            self.swept = Some(now);
            return;
        };
        if now.saturating_duration_since(last) < SWEEP_EVERY {
            return;
        }
        self.swept = Some(now);
        let limit = self.limit;
        self.buckets.retain(|_, b| {
            let refill = now.saturating_duration_since(b.at).as_secs_f64() * limit.per_second;
            b.tokens + refill < limit.burst || b.unlogged > 0
        });
    }

    /// Devices with a bucket (for tests).
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

/// The limiter shared by the broker's hooks or the center's client, with
/// what a refusal says.
#[derive(Debug)]
pub struct RateGuard {
    limit: RateLimit,
    limiter: Mutex<Limiter>,
}

impl RateGuard {
    /// A guard applying `limit` to every device.
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            limiter: Mutex::new(Limiter::new(limit)),
        }
    }

    /// Whether a message of `id` arriving now may be handled. When not, the
    /// device is told through `outbox` and the refusal logged (at most once a second).
    pub fn admit(&self, id: &DeviceId, outbox: Option<&Outbox>) -> bool {
        let verdict = self
            .limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .check(id, Instant::now());
        let Verdict::Refuse { tell } = verdict else {
            return true;
        };
        if let Some(n) = tell {
            let (rate, burst) = (self.limit.per_second, self.limit.burst);
            tracing::warn!(device = %id, refused = n, "device over its rate limit ({rate} messages/s, bursts of {burst}); its messages are not handled");
            let message = format!("too many messages: a device may send {rate} messages a second (bursts of {burst}); {n} message(s) were not handled; wait, then send again what still needs an answer");
            match outbox {
                Some(o) => o.answer(id, &Down::error(ErrorCode::RateLimited, message)),
                None => {
                    tracing::error!(device = %id, "no MQTT client yet; rate limit error dropped")
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: f64, burst: f64) -> Limiter {
        Limiter::new(RateLimit { per_second, burst })
    }

    #[test]
    fn a_burst_then_the_rate() {
        let mut l = limiter(2.0, 3.0);
        let d = DeviceId::new("p", "d").unwrap();
        let t = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.check(&d, t), Verdict::Allow);
        }
        assert_eq!(l.check(&d, t), Verdict::Refuse { tell: Some(1) });
        assert_eq!(l.check(&d, t), Verdict::Refuse { tell: None });
        // Half a second refills one token.
        let t = t + Duration::from_millis(500);
        assert_eq!(l.check(&d, t), Verdict::Allow);
        assert_eq!(l.check(&d, t), Verdict::Refuse { tell: None });
        // A second after the first line, the next refusal logs the count so far.
        let t = t + Duration::from_millis(500);
        assert_eq!(l.check(&d, t), Verdict::Allow);
        assert_eq!(l.check(&d, t), Verdict::Refuse { tell: Some(3) });
        // Never more than the burst, however long the pause.
        let t = t + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(l.check(&d, t), Verdict::Allow);
        }
        assert!(matches!(l.check(&d, t), Verdict::Refuse { .. }));
    }

    #[test]
    fn devices_have_their_own_buckets() {
        let mut l = limiter(1.0, 1.0);
        let (a, b) = (
            DeviceId::new("p", "a").unwrap(),
            DeviceId::new("p", "b").unwrap(),
        );
        let t = Instant::now();
        assert_eq!(l.check(&a, t), Verdict::Allow);
        assert!(matches!(l.check(&a, t), Verdict::Refuse { .. }));
        assert_eq!(l.check(&b, t), Verdict::Allow);
    }

    #[test]
    fn zero_rate_is_no_limit_and_idle_buckets_are_dropped() {
        let mut off = limiter(0.0, 0.0);
        let d = DeviceId::new("p", "d").unwrap();
        let t = Instant::now();
        for _ in 0..1000 {
            assert_eq!(off.check(&d, t), Verdict::Allow);
        }
        let mut l = limiter(10.0, 10.0);
        for i in 0..100 {
            l.check(&DeviceId::new("p", &format!("d{i}")).unwrap(), t);
        }
        assert_eq!(l.tracked(), 100);
        l.check(&d, t + Duration::from_secs(61));
        assert_eq!(l.tracked(), 1, "only the device that just spoke");
    }
}
