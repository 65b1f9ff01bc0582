//! Live changes, streamed as server-sent events (`text/event-stream`):
//! `GET /plans/{id}/events` sends a [`PlanEvent`] whenever one of the plan's
//! upgrades moves, `GET /verifications/{id}/events` the job as it is now
//! whenever it changes. Each event's `data` is one JSON body; comments
//! (`: …`) keep the connection alive. [`EventStream`] splits a stream's
//! bytes into those bodies, whatever the network's chunking.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::monitoring::{LogEntry, UpgradeView};

/// One event of a plan's stream.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PlanEvent {
    /// The stream is open: every change from now on is sent. A page loads its
    /// lists after this event, so that nothing falls between the two.
    Open,
    /// An upgrade of the plan was offered or moved: where it stands now, and
    /// the log line written with the move.
    Upgrade {
        /// The upgrade as `GET /plans/{id}/devices` shows it now.
        // Boxed: the other events are a few bytes (serde and the schema see an `UpgradeView`).
        upgrade: Box<UpgradeView>,
        /// The log line of this move, if it could be read.
        log: Option<LogEntry>,
    },
    /// This watcher fell behind and `missed` changes were dropped for it (the
    /// center never waits for a slow watcher): load the lists again, once.
    Lagged {
        /// How many changes were dropped.
        missed: u64,
    },
}

/// Most bytes of one event a reader holds; a longer one is an error.
pub const MAX_EVENT_BYTES: usize = 16 << 20;

/// Splits a `text/event-stream` body into each event's `data`.
#[derive(Debug, Default)]
pub struct EventStream {
    /// Bytes of a line not yet ended.
    line: Vec<u8>,
    /// The data lines of the event being read, joined by `\n`.
    data: Option<String>,
}

impl EventStream {
    /// Feed the next bytes; the `data` of every event they complete, in order.
    /// An error when an event is not UTF-8 or longer than [`MAX_EVENT_BYTES`].
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, String> {
        let mut done = Vec::new();
        for &b in bytes {
            if b != b'\n' {
                self.line.push(b);
                let held = self.line.len() + self.data.as_ref().map_or(0, String::len);
                if held > MAX_EVENT_BYTES {
                    return Err(format!(
                        "an event of the stream is longer than {MAX_EVENT_BYTES} bytes"
                    ));
                }
                continue;
            }
            let mut line = std::mem::take(&mut self.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8(line)
                .map_err(|_| "the event stream is not UTF-8 text".to_string())?;
            if line.is_empty() {
                // A blank line ends the event.
                done.extend(self.data.take());
            } else if let Some(value) = line.strip_prefix("data") {
                if let Some(value) = value.strip_prefix(':').or((value.is_empty()).then_some("")) {
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match &mut self.data {
                        Some(d) => {
                            d.push('\n');
                            d.push_str(value);
                        }
                        None => self.data = Some(value.to_string()),
                    }
                }
            }
            // Comments (`:`), `event:`, `id:` and `retry:` lines carry nothing the pages use.
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_found_whatever_the_chunking() {
        let body = ": keep-alive\n\ndata: {\"type\":\"open\"}\n\nevent: x\r\ndata: a\r\ndata:b\r\n\r\ndata: 中文\n\n";
        let whole = EventStream::default().push(body.as_bytes()).unwrap();
        assert_eq!(whole, ["{\"type\":\"open\"}", "a\nb", "中文"]);
        // One byte at a time: the same events, a multi-byte character split across chunks.
        let mut s = EventStream::default();
        let mut bytewise = Vec::new();
        for b in body.as_bytes() {
            bytewise.extend(s.push(std::slice::from_ref(b)).unwrap());
        }
        assert_eq!(bytewise, whole);
        // An event is sent only once its blank line arrived.
        let mut s = EventStream::default();
        assert!(s.push(b"data: half").unwrap().is_empty());
        assert!(s.push(b"\n").unwrap().is_empty());
        assert_eq!(s.push(b"\n").unwrap(), ["half"]);
    }

    #[test]
    fn bad_and_oversized_events_are_errors() {
        assert!(EventStream::default().push(b"data: \xff\n\n").is_err());
        let mut s = EventStream::default();
        let big = vec![b'x'; MAX_EVENT_BYTES];
        assert!(s.push(b"data: ").is_ok());
        assert!(s.push(&big).is_err());
    }
}
