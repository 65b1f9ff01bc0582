//! The one I/O loop under every command: wall-clock time in, bytes in and out, timeouts.

use crate::port::Port;
use sota_link::Endpoint;
use std::io;
use std::time::{Duration, Instant};

/// Longest sleep between checks, so events and progress stay fresh.
const TICK: Duration = Duration::from_millis(50);

/// Runs `endpoint` over `port` until it is done, `step` returns false or the port closed.
/// `step` sees the endpoint after every turn (to drain its events) and the time since the
/// start.
pub fn drive<E: Endpoint + ?Sized>(
    port: &mut dyn Port,
    endpoint: &mut E,
    mut step: impl FnMut(&mut E, Duration) -> bool,
) -> io::Result<()> {
    let start = Instant::now();
    let mut buf = vec![0u8; 4096];
    let mut out = Vec::new();
    loop {
        endpoint.poll_transmit(&mut out);
        if !out.is_empty() {
            port.write_all(&out)?;
            out.clear();
        }
        if !step(endpoint, start.elapsed()) || endpoint.is_done() {
            // What the last step produced (e.g. a final URC) still goes out.
            endpoint.poll_transmit(&mut out);
            return port.write_all(&out);
        }
        let now = start.elapsed();
        let wait = endpoint
            .poll_timeout()
            .map_or(TICK, |t| t.saturating_sub(now))
            .min(TICK);
        let n = port.read_some(&mut buf, wait)?;
        if n == 0 && port.is_closed() {
            return Ok(());
        }
        let now = start.elapsed();
        if n > 0 {
            endpoint.handle_input(now, &buf[..n]);
        }
        if endpoint.poll_timeout().is_some_and(|t| t <= now) {
            endpoint.handle_timeout(now);
        }
    }
}
