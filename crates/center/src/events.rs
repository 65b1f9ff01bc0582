//! Live changes for the engineer's pages: once a write that moved an upgrade
//! or changed a verification job is committed, its writer announces it here,
//! and the events endpoints ([`crate::api::events`]) stream it to whoever
//! watches that plan or job.
//!
//! One `tokio::sync::broadcast` channel of [`CAPACITY`] changes: announcing
//! never waits, and a watcher that falls behind loses the oldest changes and
//! is told how many ([`Next::Lagged`]), so a slow page never slows the
//! channel. A change nobody watches costs a map lookup: nothing is read for it.
//!
//! Centers sharing a PostgreSQL database tell each other of every change ([`Peers`]): a page
//! watching through one center sees the upgrades another center moves. The notice names the
//! change only; a center with watchers reads it from the database itself.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sqlx::Connection;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::{mpsc, watch};

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
    /// The other centers on the database, once [`connect_peers`] ran.
    peers: std::sync::OnceLock<Peers>,
}

impl Default for Events {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(CAPACITY).0,
            watchers: Default::default(),
            closing: watch::channel(false).0,
            peers: Default::default(),
        }
    }
}

/// The PostgreSQL notification channel of the centers' notices.
const CHANNEL: &str = "sota_center_changes";

/// A change, as one center tells the others (`from` is the sender's instance id).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Notice {
    from: String,
    #[serde(flatten)]
    what: Changed,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Changed {
    Upgrade {
        plan: i64,
        device: i64,
        identity: String,
    },
    Verification {
        id: i64,
    },
}

/// Notices waiting to be sent; beyond this they are dropped (a page then misses a change, as a
/// lagging watcher does) rather than held without bound through a burst.
const NOTICES_WAITING: usize = 4096;

/// The sending side: notices queue here and one task sends them in order on its connection
/// (PostgreSQL delivers one session's notifications in the order sent).
#[derive(Debug)]
struct Peers {
    me: String,
    tx: mpsc::Sender<String>,
    dropped: std::sync::atomic::AtomicU64,
}

/// Tell the other centers (if [`connect_peers`] ran, and any is alive) of a change.
fn tell_peers(state: &AppState, what: Changed) {
    let Some(peers) = state.events.peers.get() else {
        return;
    };
    if state.share.alone() {
        return;
    }
    let notice = Notice {
        from: peers.me.clone(),
        what,
    };
    let Ok(json) = serde_json::to_string(&notice) else {
        return;
    };
    if peers.tx.try_send(json).is_err() {
        let n = peers
            .dropped
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n % 1000 == 0 {
            tracing::warn!(
                dropped = n + 1,
                "changes not told to the other centers: {NOTICES_WAITING} notices wait already"
            );
        }
    }
}

/// On PostgreSQL: send this center's notices to the others, and pass theirs on to this
/// center's watchers, until the process ends. A notice lost while a connection is down
/// costs a page one change, as a lagging watcher does.
pub async fn connect_peers(state: Arc<AppState>) -> Result<(), crate::ApiError> {
    let url = state.pool.connect_options().database_url.clone();
    let options = sqlx::postgres::PgConnectOptions::from_str(url.as_str())?;
    let mut listener = sqlx::postgres::PgListener::connect(url.as_str()).await?;
    listener.listen(CHANNEL).await?;
    let (tx, mut rx) = mpsc::channel::<String>(NOTICES_WAITING);
    let _ = state.events.peers.set(Peers {
        me: state.instance.id().to_string(),
        tx,
        dropped: Default::default(),
    });
    tokio::spawn(async move {
        let mut conn: Option<sqlx::PgConnection> = None;
        while let Some(json) = rx.recv().await {
            if conn.is_none() {
                conn = sqlx::PgConnection::connect_with(&options).await.ok();
            }
            let Some(c) = conn.as_mut() else {
                tracing::warn!(
                    "a change was not told to the other centers: no database connection"
                );
                continue;
            };
            let sent = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(&json)
                .execute(&mut *c)
                .await;
            if let Err(e) = sent {
                tracing::warn!("a change was not told to the other centers: {e}");
                conn = None;
            }
        }
    });
    tokio::spawn(async move {
        loop {
            match listener.recv().await {
                Ok(n) => heard(&state, n.payload()).await,
                Err(e) => {
                    tracing::warn!("listening to the other centers' changes: {e}; again in 1 s");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    });
    Ok(())
}

/// Another center's notice: read the change for this center's watchers, if any.
async fn heard(state: &AppState, payload: &str) {
    let Ok(notice) = serde_json::from_str::<Notice>(payload) else {
        tracing::warn!("an unreadable notice from another center: {payload:?}");
        return;
    };
    if notice.from == state.instance.id() {
        return;
    }
    match notice.what {
        Changed::Upgrade {
            plan,
            device,
            identity,
        } => {
            let key = Key {
                plan_id: plan,
                device_id: device,
                identity,
            };
            send_upgrade(state, &key).await;
        }
        Changed::Verification { id } => {
            if !state.events.watched(Topic::Verification(id)) {
                return;
            }
            match crate::verification::get(&state.pool, id).await {
                Ok(job) => send_verification(state, &job),
                Err(e) => {
                    tracing::warn!("verification {id} changed on another center: {}", e.message)
                }
            }
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
/// watchers (and the other centers) where it stands now. Failures are logged: a page misses
/// one change.
pub async fn upgrade_moved(state: &AppState, key: &Key) {
    tell_peers(
        state,
        Changed::Upgrade {
            plan: key.plan_id,
            device: key.device_id,
            identity: key.identity.clone(),
        },
    );
    send_upgrade(state, key).await;
}

/// Send where `key` stands to this center's watchers of its plan.
async fn send_upgrade(state: &AppState, key: &Key) {
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

/// A verification job changed (committed): tell its watchers (and the other centers) what it
/// is now.
pub fn verification_changed(state: &AppState, job: &Verification) {
    tell_peers(state, Changed::Verification { id: job.id });
    send_verification(state, job);
}

/// Send `job` to this center's watchers of it.
fn send_verification(state: &AppState, job: &Verification) {
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
