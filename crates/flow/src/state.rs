//! The one state a UI renders, in the style of esp-web-tools: a step, bytes done of a total,
//! and a rate. The CLI's progress bar and the console's Leptos signal both show a
//! [`FlowState`]; neither decides anything from it.

use core::time::Duration;
use serde::{Deserialize, Serialize};
use sota_link::endpoint::{Phase, Progress};

/// What the flow is doing, in the words shown to the technician.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    /// Nothing started.
    Idle,
    /// Waiting for the MCU or bootloader to answer.
    Connecting,
    /// Waiting for the MCU to ask for its plan (AT).
    WaitingForMcu,
    /// Reading the image and checking MD5, CRC32 and SHA-256.
    Verifying,
    /// Erasing flash.
    Erasing,
    /// Sending the image to the MCU.
    Writing,
    /// Reading the flash back and comparing.
    ReadingBack,
    /// The MCU writes the new firmware and restarts.
    Updating,
    /// Finished well.
    Done,
    /// Stopped with an error.
    Failed,
}

/// Where a flow stands: the UI renders this and nothing else.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowState {
    /// The step.
    pub step: Step,
    /// Bytes done in this step.
    pub done: u64,
    /// Bytes in this step (0 when it has no size).
    pub total: u64,
    /// Bytes per second over the last seconds, once known.
    pub rate: Option<f64>,
}

impl FlowState {
    /// The idle state.
    pub const IDLE: FlowState = FlowState {
        step: Step::Idle,
        done: 0,
        total: 0,
        rate: None,
    };

    /// Whole percent done, if the step has a size.
    pub fn percent(&self) -> Option<u8> {
        (self.total > 0).then(|| (self.done.min(self.total) * 100 / self.total) as u8)
    }

    /// Seconds left at the current rate, if known.
    pub fn seconds_left(&self) -> Option<u64> {
        let rate = self.rate.filter(|r| *r > 0.0)?;
        (self.total > 0).then(|| (self.total.saturating_sub(self.done) as f64 / rate).ceil() as u64)
    }
}

/// The step a link protocol's progress phase belongs to.
pub fn step_of(phase: Phase) -> Step {
    match phase {
        Phase::Connecting => Step::Connecting,
        Phase::Erasing => Step::Erasing,
        Phase::Writing => Step::Writing,
        Phase::Verifying => Step::ReadingBack,
    }
}

/// How far back the rate looks: long enough to smooth stop-and-wait bursts, short enough
/// to follow a baud change.
const RATE_WINDOW: Duration = Duration::from_secs(3);

/// How often the rate takes a sample.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// Turns progress reports into a [`FlowState`] with a rate.
#[derive(Clone, Debug)]
pub struct Tracker {
    state: FlowState,
    /// (time, bytes done) samples of the current step, oldest first.
    samples: Vec<(Duration, u64)>,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker {
            state: FlowState::IDLE,
            samples: Vec::new(),
        }
    }
}

impl Tracker {
    /// The current state.
    pub fn state(&self) -> FlowState {
        self.state
    }

    /// Enters `step` (or stays in it) with `done` of `total` bytes at `now`.
    pub fn update(&mut self, step: Step, done: u64, total: u64, now: Duration) -> FlowState {
        if step != self.state.step || done < self.state.done {
            self.samples.clear();
        }
        // One sample per tenth of a second is plenty for a rate, and keeps this O(1) however
        // often progress is reported.
        let sample_due = self
            .samples
            .last()
            .is_none_or(|(t, _)| now.saturating_sub(*t) >= SAMPLE_EVERY);
        if sample_due {
            self.samples.push((now, done));
            let stale = self
                .samples
                .iter()
                .take_while(|(t, _)| now.saturating_sub(*t) > RATE_WINDOW)
                .count();
            // The sample just taken is never stale, so one always remains.
            self.samples.drain(..stale);
        }
        let (t0, d0) = self.samples[0];
        let secs = now.saturating_sub(t0).as_secs_f64();
        let rate = (secs >= 0.2 && done > d0).then(|| (done - d0) as f64 / secs);
        self.state = FlowState {
            step,
            done,
            total,
            rate: rate.or(if step == self.state.step {
                self.state.rate
            } else {
                None
            }),
        };
        self.state
    }

    /// Shows a link protocol's progress.
    pub fn progress(&mut self, p: Progress, now: Duration) -> FlowState {
        self.update(step_of(p.phase), p.done, p.total, now)
    }

    /// Enters a step that has no size (waiting, updating, done, failed).
    pub fn enter(&mut self, step: Step, now: Duration) -> FlowState {
        if step == self.state.step {
            return self.state;
        }
        self.update(step, 0, 0, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn rate_follows_the_last_seconds_and_resets_on_a_new_step() {
        let mut t = Tracker::default();
        assert_eq!(t.update(Step::Writing, 0, 1000, ms(0)).rate, None);
        let s = t.update(Step::Writing, 500, 1000, ms(1000));
        assert_eq!(s.rate, Some(500.0));
        assert_eq!(s.percent(), Some(50));
        assert_eq!(s.seconds_left(), Some(1));
        // Faster now: samples older than the window no longer count.
        t.update(Step::Writing, 600, 1000, ms(4000));
        let s = t.update(Step::Writing, 900, 1000, ms(5000));
        assert_eq!(s.rate, Some(300.0));
        let s = t.update(Step::ReadingBack, 0, 1000, ms(5100));
        assert_eq!(
            (s.step, s.rate, s.percent()),
            (Step::ReadingBack, None, Some(0))
        );
    }

    #[test]
    fn a_rate_needs_progress_over_a_fifth_of_a_second() {
        let mut t = Tracker::default();
        t.update(Step::Writing, 0, 1000, ms(0));
        assert_eq!(t.update(Step::Writing, 100, 1000, ms(150)).rate, None);
        assert_eq!(
            t.update(Step::Writing, 0, 1000, ms(500)).rate,
            None,
            "no progress"
        );
        let mut t = Tracker::default();
        t.update(Step::Writing, 0, 1000, ms(0));
        assert_eq!(
            t.update(Step::Writing, 0, 1000, ms(500)).rate,
            None,
            "no bytes yet"
        );
        assert_eq!(
            t.update(Step::Writing, 600, 1000, ms(2000)).rate,
            Some(300.0)
        );
    }

    #[test]
    fn a_stall_lowers_the_rate_and_going_back_starts_over() {
        let mut t = Tracker::default();
        t.update(Step::Writing, 0, 1000, ms(0));
        assert_eq!(
            t.update(Step::Writing, 500, 1000, ms(1000)).rate,
            Some(500.0)
        );
        assert_eq!(
            t.update(Step::Writing, 500, 1000, ms(2000)).rate,
            Some(250.0)
        );
        // A restarted transfer: the old samples no longer say anything.
        t.update(Step::Writing, 100, 1000, ms(2100));
        assert_eq!(
            t.update(Step::Writing, 400, 1000, ms(2600)).rate,
            Some(600.0)
        );
    }

    #[test]
    fn the_window_is_three_seconds_inclusive() {
        let mut t = Tracker::default();
        t.update(Step::Writing, 0, 9000, ms(0));
        assert_eq!(
            t.update(Step::Writing, 900, 9000, ms(3000)).rate,
            Some(300.0)
        );
        // Past three seconds the first sample is out: 300 B over the last 0.4 s.
        t.update(Step::Writing, 1000, 9000, ms(3100));
        let r = t.update(Step::Writing, 1200, 9000, ms(3400)).rate.unwrap();
        assert!((r - 750.0).abs() < 1e-6, "{r}");
    }

    #[test]
    fn time_left_needs_a_size_and_a_positive_rate() {
        let state = |done, total, rate| FlowState {
            step: Step::Writing,
            done,
            total,
            rate,
        };
        assert_eq!(state(0, 0, Some(10.0)).seconds_left(), None);
        assert_eq!(state(0, 100, Some(0.0)).seconds_left(), None);
        assert_eq!(state(50, 100, Some(10.0)).seconds_left(), Some(5));
        assert_eq!(state(0, 0, None).percent(), None);
        assert_eq!(state(150, 100, None).percent(), Some(100));
    }

    #[test]
    fn entering_the_step_it_is_in_keeps_its_figures() {
        let mut t = Tracker::default();
        t.update(Step::Writing, 500, 1000, ms(0));
        let s = t.enter(Step::Writing, ms(10));
        assert_eq!((s.done, s.total), (500, 1000));
        let s = t.enter(Step::Updating, ms(20));
        assert_eq!((s.step, s.done, s.total), (Step::Updating, 0, 0));
    }

    #[test]
    fn no_size_means_no_percent_or_time_left() {
        let mut t = Tracker::default();
        let s = t.enter(Step::Updating, ms(10));
        assert_eq!((s.percent(), s.seconds_left()), (None, None));
    }
}
