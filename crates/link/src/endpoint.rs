//! The one shape every protocol (and every simulated MCU) has, so one driver loop runs them all.

use core::time::Duration;

/// A sans-IO side of a serial link.
///
/// Time is a [`Duration`] since an origin the caller picks (a session start, `performance.now()`
/// at connect); it must never go backwards.
pub trait Endpoint {
    /// Feeds bytes that arrived from the other side at `now`.
    fn handle_input(&mut self, now: Duration, bytes: &[u8]);
    /// Appends the bytes this side wants to send to `out`.
    fn poll_transmit(&mut self, out: &mut Vec<u8>);
    /// When this side next needs [`Endpoint::handle_timeout`], if ever.
    fn poll_timeout(&self) -> Option<Duration>;
    /// Tells this side that `now` has come (call it at or after [`Endpoint::poll_timeout`]).
    fn handle_timeout(&mut self, now: Duration);
    /// True once this side has nothing more to do (finished or failed).
    fn is_done(&self) -> bool;
}

/// Progress of a long transfer, for a progress bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// What is being done.
    pub phase: Phase,
    /// Bytes done in this phase.
    pub done: u64,
    /// Bytes in this phase.
    pub total: u64,
}

/// The phase a transfer is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the other side to answer.
    Connecting,
    /// Erasing flash.
    Erasing,
    /// Sending the image.
    Writing,
    /// Reading back and comparing.
    Verifying,
}
