//! Live changes for the engineer's pages: once a write that moved an upgrade
//! or changed a verification job is committed, its writer announces it here,
//! and the events endpoints ([`crate::api::events`]) stream it to whoever
//! watches that plan or job.
//!
//! One `tokio::sync::broadcast` channel of [`CAPACITY`] changes: announcing
//! never waits, and a watcher that falls behind loses the oldest changes and
//! is told how many ([`Next::Lagged`]), so a slow page never slows the
//! channel. A change nobody watches costs a map lookup: nothing is read for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;

use crate::api::AppState;
use crate::upgrade::Key;
use crate::verification::{Outcome, Verification};
use sota_api::events::PlanEvent;

/// What a watcher follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// A plan's upgrades.
    Plan(i64),
    /// One verification job.
    Verification(i64),
}

/// One announced change: its topic, the event's JSON (serialized once for
/// every watcher), and whether it is the topic's last (a job that ended).
#[derive(Debug, Clone)]
struct Change {
    topic: Topic,
    json: Arc<str>,
    last: bool,
}

/// Changes held for the slowest watcher; one further behind lags.
pub const CAPACITY: usize = 1024;

type Counts = Arc<Mutex<HashMap<Topic, usize>>>;

/// The center's announcements and its watchers.
#[derive(Debug)]
pub struct Events {
    tx: broadcast::Sender<Change>,
    watchers: Counts,
    closing: watch::Sender<bool>,
}

impl Default for Events {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(CAPACITY).0,
            watchers: Default::default(),
            closing: watch::channel(false).0,
        }
    }
}

fn lock(counts: &Counts) -> std::sync::MutexGuard<'_, HashMap<Topic, usize>> {
    counts.lock().unwrap_or_else(|e| e.into_inner())
}

impl Events {
    /// Whether anyone watches `topic` now.
    pub fn watched(&self, topic: Topic) -> bool {
        lock(&self.watchers).contains_key(&topic)
    }

    /// Announce `json` to `topic`'s watchers; `last` ends their streams after it.
    fn send(&self, topic: Topic, json: String, last: bool) {
        // An error only says that nobody listens.
        let _ = self.tx.send(Change {
            topic,
            json: json.into(),
            last,
        });
    }

    /// Start watching `topic`: every change announced from now on.
    pub fn watch(&self, topic: Topic) -> Watch {
        *lock(&self.watchers).entry(topic).or_default() += 1;
        Watch {
            topic,
            rx: self.tx.subscribe(),
            closing: self.closing.subscribe(),
            watchers: self.watchers.clone(),
        }
    }

    /// The center is shutting down: every watch ends (an open stream would
    /// hold the graceful shutdown forever).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }
}

/// What [`Watch::next`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// A change of the topic, as JSON; `last` when the topic ends with it.
    Change {
        /// The event's JSON.
        json: Arc<str>,
        /// Nothing follows (a verification job ended).
        last: bool,
    },
    /// At most this many changes were dropped for this watcher.
    Lagged(u64),
    /// The center is shutting down.
    Closed,
}

/// One watcher of one topic; stops counting as a watcher when dropped.
#[derive(Debug)]
pub struct Watch {
    topic: Topic,
    rx: broadcast::Receiver<Change>,
    closing: watch::Receiver<bool>,
    watchers: Counts,
}

impl Watch {
    /// The topic's next change.
    pub async fn next(&mut self) -> Next {
        loop {
            tokio::select! {
                got = self.rx.recv() => match got {
                    Ok(c) if c.topic == self.topic => return Next::Change { json: c.json, last: c.last },
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => return Next::Lagged(n),
                    Err(RecvError::Closed) => return Next::Closed,
                },
                _ = self.closing.wait_for(|closing| *closing) => return Next::Closed,
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut counts = lock(&self.watchers);
        if let Some(n) = counts.get_mut(&self.topic) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.topic);
            }
        }
    }
}

/// An upgrade was offered or moved, its write committed: tell its plan's
/// watchers where it stands now. Failures are logged: a page misses one change.
pub async fn upgrade_moved(state: &AppState, key: &Key) {
    if !state.events.watched(Topic::Plan(key.plan_id)) {
        return;
    }
    match crate::monitoring::upgrade_now(&state.pool, key).await {
        Ok(Some((upgrade, log))) => {
            let event = PlanEvent::Upgrade {
                upgrade: Box::new(upgrade),
                log,
            };
            match serde_json::to_string(&event) {
                Ok(json) => state.events.send(Topic::Plan(key.plan_id), json, false),
                Err(e) => tracing::error!("cannot serialize a plan event: {e}"),
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(
            plan = key.plan_id,
            "a change of plan {} was not sent to its watchers: {}",
            key.plan_id,
            e.message
        ),
    }
}

/// A verification job changed (committed): tell its watchers what it is now.
pub fn verification_changed(state: &AppState, job: &Verification) {
    let topic = Topic::Verification(job.id);
    if !state.events.watched(topic) {
        return;
    }
    match serde_json::to_string(job) {
        Ok(json) => state
            .events
            .send(topic, json, job.outcome != Outcome::Pending),
        Err(e) => tracing::error!("cannot serialize a verification event: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_watcher_gets_its_topic_only_and_lags_instead_of_slowing_the_sender() {
        let events = Events::default();
        assert!(!events.watched(Topic::Plan(1)));
        let mut one = events.watch(Topic::Plan(1));
        assert!(events.watched(Topic::Plan(1)) && !events.watched(Topic::Plan(2)));
        events.send(Topic::Plan(2), "other".into(), false);
        events.send(Topic::Plan(1), "mine".into(), false);
        assert_eq!(
            one.next().await,
            Next::Change {
                json: "mine".into(),
                last: false
            }
        );
        // Far more than the channel holds, sent without a reader: the sender never waits.
        for i in 0..CAPACITY + 10 {
            events.send(Topic::Plan(1), i.to_string(), false);
        }
        assert_eq!(one.next().await, Next::Lagged(10));
        assert_eq!(
            one.next().await,
            Next::Change {
                json: "10".into(),
                last: false
            }
        );
        drop(one);
        assert!(
            !events.watched(Topic::Plan(1)),
            "a dropped watcher stops counting"
        );
    }

    #[tokio::test]
    async fn closing_ends_every_watch() {
        let events = Events::default();
        let mut one = events.watch(Topic::Verification(4));
        let mut two = events.watch(Topic::Verification(4));
        events.close();
        assert_eq!(one.next().await, Next::Closed);
        assert_eq!(two.next().await, Next::Closed);
        // A watch started after the close ends at once too.
        assert_eq!(events.watch(Topic::Plan(1)).next().await, Next::Closed);
    }
}
