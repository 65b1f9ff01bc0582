//! The center as a client of the broker (the embedded one or an external
//! one): subscribes to every device's `up` topic and answers on `down`.
//!
//! Three kinds of task, none of which waits on another in a cycle:
//!
//! - **The event loop** moves packets. It hands each device message to the
//!   worker that owns the device (with an external broker, after the device's
//!   rate limit, [`super::limit`]; the embedded broker checks it before the
//!   message is routed). It never waits for a worker: a message for a worker
//!   whose queue is full is answered "busy, retry" instead, so the center keeps
//!   reading and the broker does not drop messages because the center fell behind.
//! - **[`WORKERS`] workers** handle messages: a device always goes to the same
//!   worker (a hash of its id), so each device's messages are handled in
//!   arrival order, while different devices are handled concurrently and a
//!   slow or flooding device holds up only its own worker's queue.
//! - **The sender** publishes answers, and pushes only when no answer waits,
//!   so a push to a whole fleet does not delay the answer to a request.

use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use sota_protocol::topic::{CENTER_USERNAME, UP_FILTER};
use sota_protocol::{DeviceId, Direction, Down, ErrorCode};
use tokio::sync::mpsc;

use super::limit::RateGuard;
use super::messages;
use crate::api::AppState;

/// Requests (publishes, subscribes) waiting for the event loop.
const QUEUE: usize = 1024;
/// Workers handling device messages concurrently (each device on one of them).
pub const WORKERS: usize = 64;
/// Messages waiting for one worker; beyond this the device is answered "busy".
const WORKER_QUEUE: usize = 1024;

/// A message for a device's `down` topic, serialized.
type Outgoing = (String, Bytes);

/// Where the center's messages to devices go: answers first, then pushes.
#[derive(Debug, Clone)]
pub struct Outbox {
    answers: mpsc::UnboundedSender<Outgoing>,
    pushes: mpsc::UnboundedSender<Outgoing>,
}

impl Outbox {
    /// An outbox and the two queues its sender drains (answers, pushes).
    fn new() -> (
        Self,
        mpsc::UnboundedReceiver<Outgoing>,
        mpsc::UnboundedReceiver<Outgoing>,
    ) {
        let (answers, a) = mpsc::unbounded_channel();
        let (pushes, p) = mpsc::unbounded_channel();
        (Self { answers, pushes }, a, p)
    }

    /// Queue an answer to `to` (sent before any waiting push).
    pub fn answer(&self, to: &DeviceId, down: &Down) {
        if self
            .answers
            .send((to.down(), Bytes::from(down.to_json())))
            .is_err()
        {
            tracing::error!(device = %to, "the MQTT sender has stopped; answer dropped");
        }
    }

    /// Queue a push to `to` (sent when no answer waits).
    pub fn push(&self, to: &DeviceId, down: &Down) {
        self.push_bytes(to, Bytes::from(down.to_json()));
    }

    /// Queue a push of a serialized message to `to` (sent when no answer waits).
    pub fn push_bytes(&self, to: &DeviceId, message: Bytes) {
        if self.pushes.send((to.down(), message)).is_err() {
            tracing::error!(device = %to, "the MQTT sender has stopped; push dropped");
        }
    }
}

/// A log line at most once a second for a repeated condition, with its count.
#[derive(Debug, Default)]
struct Throttled {
    count: u64,
    logged: Option<Instant>,
}

impl Throttled {
    /// Count one occurrence; `Some(n)` when a line is due, `n` occurrences since the last.
    fn hit(&mut self, now: Instant) -> Option<u64> {
        self.count += 1;
        if self
            .logged
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1))
        {
            return None;
        }
        self.logged = Some(now);
        Some(std::mem::take(&mut self.count))
    }
}

/// The event loop's side: rate limit (external broker), then the device's worker.
struct Dispatch {
    state: Arc<AppState>,
    outbox: Outbox,
    /// The rate limit, when the broker does not apply it.
    guard: Option<Arc<RateGuard>>,
    workers: Vec<mpsc::Sender<(DeviceId, Bytes)>>,
    hasher: std::collections::hash_map::RandomState,
    busy: Throttled,
    external: bool,
}

impl Dispatch {
    fn dispatch(&mut self, topic: &str, payload: Bytes) {
        let Some((from, Direction::Up)) = DeviceId::parse_topic(topic) else {
            tracing::warn!(%topic, "message on a topic that is no device's up topic; ignored");
            return;
        };
        if self.external {
            self.state.presence.seen(&from);
        }
        if let Some(guard) = &self.guard {
            if !guard.admit(&from, Some(&self.outbox)) {
                return;
            }
        }
        let worker = (self.hasher.hash_one(&from) % self.workers.len() as u64) as usize;
        match self.workers[worker].try_send((from, payload)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full((from, _))) => {
                if let Some(n) = self.busy.hit(Instant::now()) {
                    tracing::warn!(device = %from, refused = n, "the center is busy ({WORKER_QUEUE} messages wait for this device's worker); messages answered with \"retry\" errors");
                }
                let message = "the center is busy and did not handle this message; send it again in a few seconds".to_string();
                self.outbox
                    .answer(&from, &Down::error(ErrorCode::Busy, message));
            }
            Err(mpsc::error::TrySendError::Closed((from, _))) => {
                tracing::error!(device = %from, "the device's worker has stopped; message dropped");
            }
        }
    }
}

/// Handle one worker's messages until the event loop stops.
async fn work(state: Arc<AppState>, outbox: Outbox, mut rx: mpsc::Receiver<(DeviceId, Bytes)>) {
    while let Some((from, payload)) = rx.recv().await {
        let handled = std::panic::AssertUnwindSafe(messages::handle(&state, &from, &payload))
            .catch_unwind()
            .await;
        match handled {
            Ok((answer, after)) => {
                if let Some(answer) = answer {
                    outbox.answer(&from, &answer);
                }
                // Before this device's next message: what the answer left to write.
                messages::finish(&state, &from, after).await;
            }
            Err(_) => {
                tracing::error!(device = %from, "handling a channel message panicked (a bug)");
                let message = "the center hit an internal fault; this is a bug; retry later";
                outbox.answer(&from, &Down::error(ErrorCode::Internal, message));
            }
        }
    }
}

/// Publish what the outbox holds, answers first, until it closes.
async fn send_all(
    client: AsyncClient,
    mut answers: mpsc::UnboundedReceiver<Outgoing>,
    mut pushes: mpsc::UnboundedReceiver<Outgoing>,
) {
    loop {
        let (topic, payload) = tokio::select! {
            biased;
            Some(m) = answers.recv() => m,
            Some(m) = pushes.recv() => m,
            else => return,
        };
        if let Err(e) = client
            .publish_bytes(topic, QoS::AtLeastOnce, false, payload)
            .await
        {
            tracing::error!("cannot queue a message for the broker: {e}");
        }
    }
}

/// Connect to the broker at `host:port` as the center and serve devices until
/// the process ends. With an `external` broker, presence comes from messages,
/// and `guard` applies the rate limit here (the embedded broker applies it itself).
pub fn spawn(
    state: Arc<AppState>,
    host: String,
    port: u16,
    secret: String,
    external: bool,
    guard: Arc<RateGuard>,
) {
    let mut options = MqttOptions::new(CENTER_USERNAME, host, port);
    options
        .set_credentials(CENTER_USERNAME, secret)
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_session(true)
        .set_max_packet_size(
            super::broker::MAX_PACKET as usize,
            super::broker::MAX_PACKET as usize,
        );
    let (client, mut events) = AsyncClient::new(options, QUEUE);
    // Answers are small: send each at once (no Nagle delay).
    let mut network = events.network_options();
    network.set_tcp_nodelay(true);
    events.set_network_options(network);
    let (outbox, answers, pushes) = Outbox::new();
    let _ = state.outbox.set(outbox.clone());
    tokio::spawn(send_all(client.clone(), answers, pushes));
    let mut workers = Vec::with_capacity(WORKERS);
    for _ in 0..WORKERS {
        let (tx, rx) = mpsc::channel(WORKER_QUEUE);
        tokio::spawn(work(state.clone(), outbox.clone(), rx));
        workers.push(tx);
    }
    let mut dispatch = Dispatch {
        state,
        outbox,
        guard: external.then_some(guard),
        workers,
        hasher: Default::default(),
        busy: Throttled::default(),
        external,
    };
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    tracing::info!(
                        "center connected to the MQTT broker; subscribing to {UP_FILTER}"
                    );
                    // A clean session forgets subscriptions: subscribe on every connect,
                    // from another task (the event loop must never wait for its own queue).
                    let client = client.clone();
                    tokio::spawn(async move {
                        if let Err(e) = client.subscribe(UP_FILTER, QoS::AtLeastOnce).await {
                            tracing::error!("cannot subscribe to {UP_FILTER}: {e}");
                        }
                    });
                }
                Ok(Event::Incoming(Packet::Publish(p))) => dispatch.dispatch(&p.topic, p.payload),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("center's MQTT connection: {e}; reconnecting in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
}

/// Queue `down` for `to`'s down topic (QoS 1) as an answer.
pub async fn send(state: &AppState, to: &DeviceId, down: &Down) {
    match state.outbox.get() {
        Some(outbox) => outbox.answer(to, down),
        None => tracing::error!(device = %to, "no MQTT client yet; message dropped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_conditions_are_logged_once_a_second_with_their_count() {
        let mut t = Throttled::default();
        let now = Instant::now();
        assert_eq!(t.hit(now), Some(1));
        assert_eq!(t.hit(now + Duration::from_millis(10)), None);
        assert_eq!(t.hit(now + Duration::from_millis(900)), None);
        assert_eq!(t.hit(now + Duration::from_millis(1000)), Some(3));
    }
}
