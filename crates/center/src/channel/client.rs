//! The center's side of the broker: with an external broker, a client that
//! subscribes to every device's `up` topic and answers on `down`; with the
//! embedded one, the same lanes and sender in-process ([`spawn_embedded`]).
//!
//! Three kinds of task, none of which waits on another in a cycle:
//!
//! - **The event loop** moves packets. It puts each device message on the
//!   device's lane (with an external broker, after the device's rate limit,
//!   [`super::limit`]; the embedded broker checks it before the message is
//!   routed). It never waits for a lane: a message that finds too much in
//!   hand is answered "busy, retry" instead, so the center keeps reading and
//!   the broker does not drop messages because the center fell behind.
//! - **One lane per device** handles its messages: the first message of a
//!   device with nothing in hand starts a task that handles that device's
//!   messages in arrival order and ends when none is left. Different devices
//!   never wait for each other (a device whose write waits for the disk holds
//!   up only itself), and an idle device costs nothing. A device with
//!   [`LANE_QUEUE`] messages waiting, or a center with [`IN_HAND`] messages in
//!   hand, is answered "busy, retry" instead.
//! - **The sender** publishes answers, and pushes only when no answer waits,
//!   so a push to a whole fleet does not delay the answer to a request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt;
use rmqtt::context::ServerContext;
use rmqtt::session::SessionState;
use rmqtt::types::{CodecPublish, From, Id, Publish};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use sota_protocol::topic::{CENTER_USERNAME, UP_FILTER};
use sota_protocol::{DeviceId, Direction, Down, ErrorCode};
use tokio::sync::mpsc;

use super::limit::RateGuard;
use super::messages;
use crate::api::AppState;

/// Requests (publishes, subscribes) waiting for the event loop.
const QUEUE: usize = 1024;
/// Messages one device may have waiting; beyond this it is answered "busy"
/// (above the rate limit's default burst, so only a device flooding past an
/// external broker, or the limit turned off, meets it).
pub const LANE_QUEUE: usize = 64;
/// Messages the center may have in hand at once, all devices together;
/// beyond this every device is answered "busy" until some are handled.
pub const IN_HAND: usize = 65_536;

/// A message for a device's `down` topic, serialized.
type Outgoing = (String, Bytes);

/// What the pushes queue holds: a message, or a mark the sender answers once every push queued
/// before it has left for the broker ([`Outbox::pushes_sent`]).
enum Queued {
    Message(Outgoing),
    Mark(tokio::sync::oneshot::Sender<()>),
}

/// Where the center's messages to devices go: answers first, then pushes.
#[derive(Clone)]
pub struct Outbox {
    answers: mpsc::UnboundedSender<Outgoing>,
    pushes: mpsc::UnboundedSender<Queued>,
    /// For a lane's own answers, sent by the lane itself ([`Self::answer_now`]).
    direct: Sender,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

impl Outbox {
    /// An outbox over `direct` and the two queues its sender drains (answers, pushes).
    fn new(
        direct: Sender,
    ) -> (
        Self,
        mpsc::UnboundedReceiver<Outgoing>,
        mpsc::UnboundedReceiver<Queued>,
    ) {
        let (answers, a) = mpsc::unbounded_channel();
        let (pushes, p) = mpsc::unbounded_channel();
        (
            Self {
                answers,
                pushes,
                direct,
            },
            a,
            p,
        )
    }

    /// Send an answer to `to` from the device's lane. Not through the queue that one
    /// task drains for every device: under load an answer waited there behind other
    /// devices' messages. The lane handles one message of a device at a time, so the
    /// device's answers still leave in order.
    pub async fn answer_now(&self, to: &DeviceId, down: &Down) {
        if let Err(e) = self
            .direct
            .publish(to.down(), Bytes::from(down.to_json()))
            .await
        {
            tracing::error!(device = %to, "cannot queue an answer for the broker: {e}");
        }
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
        if self
            .pushes
            .send(Queued::Message((to.down(), message)))
            .is_err()
        {
            tracing::error!(device = %to, "the MQTT sender has stopped; push dropped");
        }
    }

    /// Wait until every push queued so far has left for the broker (handed to the MQTT
    /// client, or routed by the embedded broker).
    pub async fn pushes_sent(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.pushes.send(Queued::Mark(tx)).is_ok() {
            let _ = rx.await;
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

/// The event loop's side: rate limit (external broker), then the device's lane.
struct Dispatch {
    state: Arc<AppState>,
    outbox: Outbox,
    /// The rate limit, when the broker does not apply it.
    guard: Option<Arc<RateGuard>>,
    lanes: Arc<Lanes>,
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
        // Another live center handles this device (`share`).
        if !self.state.share.handles(&from) {
            return;
        }
        if let Some(guard) = &self.guard {
            if !guard.admit(&from, Some(&self.outbox)) {
                return;
            }
        }
        let Err(from) = self
            .lanes
            .take(&self.state, &self.outbox, from, Work::Message(payload))
        else {
            return;
        };
        if let Some(n) = self.busy.hit(Instant::now()) {
            tracing::warn!(device = %from, refused = n, "the center is busy (this device has {LANE_QUEUE} messages waiting, or the center {IN_HAND}); messages answered with \"retry\" errors");
        }
        let message =
            "the center is busy and did not handle this message; send it again in a few seconds"
                .to_string();
        self.outbox
            .answer(&from, &Down::error(ErrorCode::Busy, message));
    }
}

impl Dispatch {
    /// `from` connected: its lane reads its view first (see [`Work::Connected`]);
    /// skipped when the center has too much in hand.
    fn connected(&mut self, from: DeviceId) {
        let _ = self
            .lanes
            .take(&self.state, &self.outbox, from, Work::Connected);
    }
}

/// What a device's lane does next.
#[derive(Debug)]
enum Work {
    /// Handle a message from the device.
    Message(Bytes),
    /// The device connected: read its request view into the memory (when on)
    /// while it subscribes, so its versions and request find it kept. In the
    /// lane, so no message of the device runs beside the read.
    Connected,
}

/// The devices with messages in hand, each with its waiting messages.
#[derive(Debug, Default)]
struct Lanes {
    waiting: std::sync::Mutex<LaneMap>,
}

#[derive(Debug, Default)]
struct LaneMap {
    lanes: std::collections::HashMap<DeviceId, std::collections::VecDeque<Work>>,
    in_hand: usize,
}

impl Lanes {
    fn lock(&self) -> std::sync::MutexGuard<'_, LaneMap> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue `payload` on `from`'s lane, starting the lane if it was idle;
    /// `Err(from)` when the device or the center has too much in hand.
    fn take(
        self: &Arc<Self>,
        state: &Arc<AppState>,
        outbox: &Outbox,
        from: DeviceId,
        payload: Work,
    ) -> Result<(), DeviceId> {
        let mut map = self.lock();
        if map.in_hand >= IN_HAND {
            return Err(from);
        }
        match map.lanes.get_mut(&from) {
            Some(queue) if queue.len() >= LANE_QUEUE => return Err(from),
            Some(queue) => queue.push_back(payload),
            None => {
                // The lane's task takes this message first; the entry stays
                // (empty) while it runs, so later messages queue behind it.
                map.lanes.insert(from.clone(), Default::default());
                tokio::spawn(lane(
                    self.clone(),
                    state.clone(),
                    outbox.clone(),
                    from,
                    payload,
                ));
            }
        }
        map.in_hand += 1;
        Ok(())
    }

    /// `from`'s next message, or `None` (and the lane closed) when none waits.
    /// One message is done either way.
    fn next(&self, from: &DeviceId) -> Option<Work> {
        let mut map = self.lock();
        map.in_hand -= 1;
        let next = map.lanes.get_mut(from).and_then(|q| q.pop_front());
        if next.is_none() {
            map.lanes.remove(from);
        }
        next
    }
}

/// Handle `from`'s messages, `first` first, until none waits.
async fn lane(
    lanes: Arc<Lanes>,
    state: Arc<AppState>,
    outbox: Outbox,
    from: DeviceId,
    first: Work,
) {
    let mut work = first;
    loop {
        match &work {
            // Queued before the device moved to another center: that one handles what follows.
            Work::Message(_) if !state.share.handles(&from) => {}
            Work::Message(payload) => handle(&state, &outbox, &from, payload).await,
            Work::Connected => prefetch(&state, &from).await,
        }
        match lanes.next(&from) {
            Some(next) => work = next,
            None => return,
        }
    }
}

/// Read `from`'s request view into the memory; a failure only means its
/// request reads it later.
async fn prefetch(state: &AppState, from: &DeviceId) {
    let read = async {
        let Some(dev) = messages::lookup(state, from).await? else {
            return Ok(None);
        };
        state
            .memory
            .view_if_on(state, from, dev.product_id, dev.device_id)
            .await
    };
    let read: Result<_, crate::error::ApiError> = std::panic::AssertUnwindSafe(read)
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            Err(crate::error::ApiError::internal(
                "reading the view panicked (a bug)",
            ))
        });
    if let Err(e) = read {
        tracing::debug!(device = %from, "the view read at connection failed: {}", e.message);
    }
}

/// Handle one device message: answer it, then write what the answer left.
async fn handle(state: &AppState, outbox: &Outbox, from: &DeviceId, payload: &[u8]) {
    let handled = std::panic::AssertUnwindSafe(messages::handle(state, from, payload))
        .catch_unwind()
        .await;
    match handled {
        Ok((answer, after)) => {
            if let Some(answer) = answer {
                outbox.answer_now(from, &answer).await;
            }
            // Before this device's next message: what the answer left to write.
            let finished = std::panic::AssertUnwindSafe(messages::finish(state, from, after))
                .catch_unwind()
                .await;
            if finished.is_err() {
                tracing::error!(device = %from, "recording after an answer panicked (a bug)");
            }
        }
        Err(_) => {
            tracing::error!(device = %from, "handling a channel message panicked (a bug)");
            let message = "the center hit an internal fault; this is a bug; retry later";
            outbox
                .answer_now(from, &Down::error(ErrorCode::Internal, message))
                .await;
        }
    }
}

/// Where the center's messages for devices go: its MQTT connection to an
/// external broker, or the embedded broker's router in-process.
#[derive(Clone)]
enum Sender {
    Client(AsyncClient),
    Embedded(ServerContext),
}

impl Sender {
    async fn publish(&self, topic: String, payload: Bytes) -> Result<(), String> {
        match self {
            Sender::Client(client) => client
                .publish_bytes(topic, QoS::AtLeastOnce, false, payload)
                .await
                .map_err(|e| e.to_string()),
            Sender::Embedded(scx) => {
                let publish = Publish {
                    inner: Box::new(CodecPublish {
                        dup: false,
                        retain: false,
                        qos: rmqtt::types::QoS::AtLeastOnce,
                        topic: topic.into(),
                        packet_id: None,
                        payload,
                        properties: None,
                    }),
                    target_clientid: None,
                    delay_interval: None,
                    create_time: Some(rmqtt::utils::timestamp_millis()),
                };
                SessionState::forwards(scx, From::from_system(center_id(scx)), publish, false, None)
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    }
}

/// The center's identity as the sender of what it routes in-process.
fn center_id(scx: &ServerContext) -> Id {
    Id::new(
        scx.node.id(),
        0,
        None,
        None,
        CENTER_USERNAME.into(),
        Some(CENTER_USERNAME.into()),
    )
}

/// Publish what the outbox holds, answers first, until it closes.
async fn send_all(
    sender: Sender,
    mut answers: mpsc::UnboundedReceiver<Outgoing>,
    mut pushes: mpsc::UnboundedReceiver<Queued>,
) {
    loop {
        let (topic, payload) = tokio::select! {
            biased;
            Some(m) = answers.recv() => m,
            Some(q) = pushes.recv() => match q {
                Queued::Message(m) => m,
                Queued::Mark(done) => {
                    let _ = done.send(());
                    continue;
                }
            },
            else => return,
        };
        if let Err(e) = sender.publish(topic, payload).await {
            tracing::error!("cannot queue a message for the broker: {e}");
        }
    }
}

/// Serve devices through the embedded broker, in-process: its ACL hook hands
/// every admitted device message to `inbound` (in each device's order), and
/// messages for devices go straight to its router — no MQTT session of the
/// center's own, so a request costs the device's round trip to the broker
/// and the handling, nothing more.
pub fn spawn_embedded(
    state: Arc<AppState>,
    scx: ServerContext,
    mut inbound: mpsc::UnboundedReceiver<super::broker::FromBroker>,
) {
    let (outbox, answers, pushes) = Outbox::new(Sender::Embedded(scx.clone()));
    let _ = state.outbox.set(outbox.clone());
    tokio::spawn(send_all(Sender::Embedded(scx), answers, pushes));
    let mut dispatch = Dispatch {
        state,
        outbox,
        guard: None,
        lanes: Default::default(),
        busy: Throttled::default(),
        external: false,
    };
    tokio::spawn(async move {
        while let Some(from_broker) = inbound.recv().await {
            match from_broker {
                super::broker::FromBroker::Message(topic, payload) => {
                    dispatch.dispatch(&topic, payload)
                }
                super::broker::FromBroker::Connected(id) => dispatch.connected(id),
            }
        }
    });
}

/// Connect to the external broker at `host:port` as the center and serve
/// devices until the process ends. Presence comes from messages, and `guard`
/// applies the rate limit here (the embedded broker applies it itself).
pub fn spawn(state: Arc<AppState>, host: String, port: u16, secret: String, guard: Arc<RateGuard>) {
    // Brokers give a login one session: each live center logs in with its slot's.
    let login = super::mosquitto::center_user(state.instance.slot());
    tracing::info!("logging in to the broker as {login}");
    let mut options = MqttOptions::new(login.clone(), host, port);
    options
        .set_credentials(login, secret)
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
    let (outbox, answers, pushes) = Outbox::new(Sender::Client(client.clone()));
    let _ = state.outbox.set(outbox.clone());
    tokio::spawn(send_all(Sender::Client(client.clone()), answers, pushes));
    let mut dispatch = Dispatch {
        state,
        outbox,
        guard: Some(guard),
        lanes: Default::default(),
        busy: Throttled::default(),
        external: true,
    };
    let slot = dispatch.state.instance.slot();
    dispatch.state.share.enable();
    tokio::spawn(async move {
        // Which centers serve, read before any device message can arrive (`share`).
        super::share::refresh(&dispatch.state).await;
        tokio::spawn(super::share::run(dispatch.state.clone()));
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let state = dispatch.state.clone();
                    tokio::spawn(async move { super::share::subscribed(&state).await });
                }
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
                Err(e) if dispatch.state.share.serving_now() => {
                    // Its devices go to the others until it is back.
                    tracing::warn!("center's MQTT connection: {e}; reconnecting in 1 s");
                    super::share::unsubscribed(&dispatch.state).await;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(rumqttc::ConnectionError::ConnectionRefused(code)) => {
                    tracing::error!(
                        "the broker refused this center's login {} ({code:?}); with several \
                         centers, each needs a login of its own: write the broker's files with \
                         `sota-center broker mosquitto-config --centers N`, N more than {slot}; \
                         trying again in 5 s",
                        super::mosquitto::center_user(slot)
                    );
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
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
