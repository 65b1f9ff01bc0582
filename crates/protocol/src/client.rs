//! A device's MQTT 3.1.1 connection to the broker, sans-IO: bytes, events and the current time
//! in; bytes, events and deadlines out. No socket, clock, thread or `async` — the browser
//! (a WebSocket), the load tools and the tests (a `TcpStream`) each drive it with a loop of a
//! few lines. The packets are encoded and decoded by `mqttbytes`; this module decides what is
//! sent when.
//!
//! What it does: CONNECT with the device's login, SUBSCRIBE (QoS 1) after every CONNACK,
//! PINGREQ every keep-alive interval and a lost connection when nothing answers it in time,
//! QoS 1 publishing with packet ids — queued (up to [`Options::max_queue`]) while disconnected,
//! sent in order once connected, resent with DUP after a reconnect until acknowledged — and
//! reconnecting with exponential backoff (1 s doubling to 30 s, reset by a CONNACK that
//! accepts). A CONNACK that refuses is final: no reconnect.
//!
//! # Driving it
//!
//! Like quinn-proto's `Connection`, its methods are of four kinds:
//!
//! - **handle** what happened: [`Client::transport_opened`], [`Client::handle_input`],
//!   [`Client::transport_closed`], [`Client::handle_timeout`];
//! - **mutators** for the device's wishes: [`Client::publish`], [`Client::publish_up`],
//!   [`Client::disconnect`];
//! - **poll** what to do: [`Client::poll_transmit`] (bytes for the transport, in order),
//!   [`Client::poll_event`], [`Client::poll_timeout`] (when to call `handle_timeout`);
//! - getters: [`Client::is_connected`], [`Client::queued`].
//!
//! The loop: open a transport right after [`Client::new`] and call `transport_opened`; call
//! the handle methods and mutators as things happen, then drain every poll. On
//! [`ClientEvent::Lost`] or [`ClientEvent::Refused`] close the transport (if it is still
//! open); on [`ClientEvent::Reconnect`] open a new one. Time is a [`Duration`] since an origin
//! the caller picks; it must never go backwards.
//!
//! ```
//! use core::time::Duration;
//! use sota_protocol::client::{Client, ClientEvent};
//! use sota_protocol::{DeviceId, Up};
//!
//! let id = DeviceId::new("demo-product", "dev-1").unwrap();
//! let mut client = Client::device(&id, "device secret", Duration::ZERO);
//! client.publish_up(&Up::Request).unwrap(); // queued until connected
//! client.transport_opened(Duration::ZERO);
//! let connect = client.poll_transmit().unwrap(); // write it to the transport
//! assert_eq!(connect[0] >> 4, 1, "CONNECT");
//! // … bytes from the broker go to `client.handle_input(&bytes, now)` …
//! assert!(client.poll_event().is_none());
//! assert!(client.poll_timeout().is_some());
//! ```

use crate::message::Up;
use crate::topic::DeviceId;
use crate::MAX_DOWN_BYTES;
use bytes::BytesMut;
use core::fmt;
use core::time::Duration;
use mqttbytes::v4::{self, Packet};
use mqttbytes::QoS;
use std::collections::VecDeque;

/// The keep-alive interval when none is given.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(30);
/// How long the broker may take to accept a connection or answer a ping, when not given.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How many unacknowledged messages may wait, when not given.
pub const DEFAULT_MAX_QUEUE: usize = 1000;
/// The largest packet taken from the broker: the largest center message and its topic.
pub const MAX_INCOMING_PACKET: usize = MAX_DOWN_BYTES + 4096;
/// The wait before the first reconnect after a loss.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between reconnects.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The most messages [`Options::max_queue`] can allow: each holds one of MQTT's 65,535 packet
/// ids until acknowledged, and one is kept for the SUBSCRIBE.
const MAX_QUEUE_LIMIT: usize = 65_000;

/// How to log in and what to subscribe to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// MQTT client id (a device: the same as its username).
    pub client_id: String,
    /// Username; empty sends none.
    pub username: String,
    /// Password (a device: the product secret to register, else its device secret); empty
    /// sends none.
    pub password: String,
    /// Keep-alive interval: a PINGREQ goes out this often; zero turns keep-alive off.
    /// Whole seconds on the wire (at most 65,535).
    pub keep_alive: Duration,
    /// Ask the broker to forget this client's session at CONNECT.
    pub clean_session: bool,
    /// Topic filters subscribed (QoS 1) after every CONNACK.
    pub subscriptions: Vec<String>,
    /// The device this client is, if it is one: [`Client::publish_up`] publishes on its `up`.
    pub device: Option<DeviceId>,
    /// How long the broker may take to accept a connection (from the new transport to the
    /// CONNACK) or to answer a PINGREQ before the connection counts as lost.
    pub response_timeout: Duration,
    /// How many messages may wait unacknowledged (queued while disconnected or in flight);
    /// [`Client::publish`] refuses more with [`PublishError::QueueFull`]. At most 65,000.
    pub max_queue: usize,
    /// The largest packet taken from the broker (remaining length); a larger one is a
    /// protocol error that ends the connection.
    pub max_packet: usize,
}

impl Options {
    /// A login with the defaults: clean session, keep-alive 30 s, 10 s to answer, up to 1000
    /// queued messages, no subscriptions.
    pub fn new(
        client_id: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Options {
            client_id: client_id.into(),
            username: username.into(),
            password: password.into(),
            keep_alive: DEFAULT_KEEP_ALIVE,
            clean_session: true,
            subscriptions: Vec::new(),
            device: None,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            max_queue: DEFAULT_MAX_QUEUE,
            max_packet: MAX_INCOMING_PACKET,
        }
    }

    /// A device of the channel: username and client id `<product>&<device>`, `secret` as the
    /// password (the product secret to register, else the device secret), subscribed to its
    /// `down` topic, publishing [`Client::publish_up`] on its `up` topic.
    pub fn device(id: &DeviceId, secret: impl Into<String>) -> Self {
        Options {
            subscriptions: vec![id.down()],
            device: Some(id.clone()),
            ..Options::new(id.username(), id.username(), secret)
        }
    }
}

/// What the client reports to its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// The broker accepted the login (CONNACK 0); queued messages are on their way and the
    /// subscriptions asked for.
    Connected,
    /// A message arrived (already acknowledged to the broker).
    Message {
        /// Its topic.
        topic: String,
        /// Its payload.
        payload: Vec<u8>,
    },
    /// The broker acknowledged (PUBACK) the message [`Client::publish`] returned this id for.
    Delivered(MessageId),
    /// The broker refused a subscription (SUBACK 0x80): its ACL does not allow the topic.
    SubscriptionRefused {
        /// The topic filter.
        topic: String,
    },
    /// The broker refused the login (CONNACK 1–5). Final: the client does not reconnect;
    /// close the transport.
    Refused {
        /// The CONNACK return code.
        code: u8,
        /// What it means and what to check.
        text: String,
    },
    /// The connection is gone; close the transport if it is still open. A
    /// [`ClientEvent::Reconnect`] follows after `retry_in`.
    Lost {
        /// What happened.
        reason: String,
        /// The backoff before the next attempt.
        retry_in: Duration,
    },
    /// Open a new transport now and call [`Client::transport_opened`] when it is open (or
    /// [`Client::transport_closed`] if it fails).
    Reconnect,
}

/// Names one published message until its [`ClientEvent::Delivered`]; counts up from 1 over
/// the client's life (MQTT's packet ids are reused, these are not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub u64);

/// Why [`Client::publish`] did not take a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublishError {
    /// [`Options::max_queue`] messages wait unacknowledged already.
    QueueFull {
        /// The bound.
        max: usize,
    },
    /// The login was refused or [`Client::disconnect`] was called: nothing will be sent.
    Closed,
    /// [`Client::publish_up`] on a client that is no device ([`Options::device`] is `None`).
    NotADevice,
    /// The topic is empty, longer than 65,535 bytes or holds a wildcard (`+`, `#`) or NUL, or
    /// the packet would be larger than MQTT allows.
    Invalid(String),
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::QueueFull { max } => write!(
                f,
                "{max} messages already wait for the broker's acknowledgement (the client's \
                 max_queue); wait until the connection is back, or raise max_queue"
            ),
            PublishError::Closed => write!(
                f,
                "the connection is closed (the login was refused, or it was disconnected): \
                 nothing more is sent"
            ),
            PublishError::NotADevice => write!(
                f,
                "this client was not made for a device (Options::device), so it has no `up` topic"
            ),
            PublishError::Invalid(why) => write!(f, "cannot publish: {why}"),
        }
    }
}

impl std::error::Error for PublishError {}

/// CONNACK's "server unavailable": the one refusal that is worth trying again.
const SERVER_UNAVAILABLE: u8 = 3;

/// The meaning of a CONNACK refusal, with what to check.
pub fn refusal_text(code: u8) -> String {
    match code {
        1 => "unacceptable protocol version: the broker does not speak MQTT 3.1.1".into(),
        2 => "identifier rejected: the broker does not accept this client id".into(),
        3 => "server unavailable: the broker is up but does not take logins now".into(),
        4 => {
            "bad user name or password: check the product key, the device key and the secret".into()
        }
        5 => "not authorized: a registered device must log in with its device secret (not the \
              product secret), and the client id must equal the username"
            .into(),
        other => format!("refused with CONNACK return code {other}"),
    }
}

/// Where the connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for the driver's transport; the CONNACK is due by `deadline`.
    Opening { deadline: Duration },
    /// CONNECT sent; the CONNACK is due by `deadline`.
    Connecting { deadline: Duration },
    /// Logged in. A PINGREQ is due at `next_ping`; `ping_sent` while one is unanswered.
    Connected {
        next_ping: Option<Duration>,
        ping_sent: Option<Duration>,
    },
    /// Lost; [`ClientEvent::Reconnect`] at `at`.
    Waiting { at: Duration },
    /// The login was refused: final.
    Refused,
    /// [`Client::disconnect`]: final.
    Closed,
}

/// A message waiting for its PUBACK.
struct Queued {
    id: MessageId,
    packet: v4::Publish,
    /// Written to a transport at least once (a resend carries DUP).
    sent: bool,
}

/// A device's MQTT connection; see the [module documentation](self) for how to drive it.
pub struct Client {
    options: Options,
    state: State,
    /// Bytes of a packet not yet complete.
    inbound: BytesMut,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<ClientEvent>,
    /// Unacknowledged messages, in publishing order.
    outbox: VecDeque<Queued>,
    /// The SUBSCRIBE waiting for its SUBACK: packet id and filters.
    subscribing: Option<(u16, Vec<String>)>,
    next_pid: u16,
    next_id: u64,
    /// The wait before the next reconnect.
    backoff: Duration,
}

impl Client {
    /// A client that is about to connect: open a transport now. The CONNACK is due within
    /// [`Options::response_timeout`] from `now`.
    pub fn new(mut options: Options, now: Duration) -> Self {
        options.max_queue = options.max_queue.min(MAX_QUEUE_LIMIT);
        let deadline = now.saturating_add(options.response_timeout);
        Client {
            options,
            state: State::Opening { deadline },
            inbound: BytesMut::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            outbox: VecDeque::new(),
            subscribing: None,
            next_pid: 0,
            next_id: 0,
            backoff: FIRST_BACKOFF,
        }
    }

    /// A device's client with the default options: see [`Options::device`].
    pub fn device(id: &DeviceId, secret: impl Into<String>, now: Duration) -> Self {
        Client::new(Options::device(id, secret), now)
    }

    /// The options it was made with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Whether the broker accepted the login on the current transport.
    pub fn is_connected(&self) -> bool {
        matches!(self.state, State::Connected { .. })
    }

    /// How many published messages wait for their PUBACK (queued or in flight).
    pub fn queued(&self) -> usize {
        self.outbox.len()
    }

    /// The transport the driver opened (first, or after [`ClientEvent::Reconnect`]) is open:
    /// the CONNECT is queued. Ignored at any other time.
    pub fn transport_opened(&mut self, _now: Duration) {
        let State::Opening { deadline } = self.state else {
            return;
        };
        self.inbound.clear();
        self.transmits.clear();
        self.state = State::Connecting { deadline };
        let mut connect = v4::Connect::new(self.options.client_id.clone());
        connect.keep_alive = self.options.keep_alive.as_secs().min(u16::MAX.into()) as u16;
        connect.clean_session = self.options.clean_session;
        if !self.options.username.is_empty() || !self.options.password.is_empty() {
            connect.set_login(self.options.username.clone(), self.options.password.clone());
        }
        self.send(|b| connect.write(b));
    }

    /// Bytes that arrived on the transport: any number of packets, or part of one (kept until
    /// the rest arrives).
    pub fn handle_input(&mut self, bytes: &[u8], now: Duration) {
        if !matches!(
            self.state,
            State::Connecting { .. } | State::Connected { .. }
        ) {
            return;
        }
        self.inbound.extend_from_slice(bytes);
        while matches!(
            self.state,
            State::Connecting { .. } | State::Connected { .. }
        ) {
            match v4::read(&mut self.inbound, self.options.max_packet) {
                Ok(packet) => self.handle_packet(packet, now),
                Err(mqttbytes::Error::InsufficientBytes(_)) => return,
                Err(mqttbytes::Error::PayloadSizeLimitExceeded(len)) => {
                    return self.lose(
                        format!(
                            "the broker sent a packet of {len} bytes, more than the {} this \
                             client takes",
                            self.options.max_packet
                        ),
                        now,
                    )
                }
                Err(e) => {
                    return self.lose(format!("the broker sent a malformed packet ({e:?})"), now)
                }
            }
        }
    }

    /// The transport closed or could not be opened (`reason` says how). Ignored once the
    /// client already counts the connection as lost, refused or closed.
    pub fn transport_closed(&mut self, reason: impl Into<String>, now: Duration) {
        if matches!(
            self.state,
            State::Opening { .. } | State::Connecting { .. } | State::Connected { .. }
        ) {
            self.lose(reason.into(), now);
        }
    }

    /// Time passed: the deadline from [`Client::poll_timeout`] (or any later time) is here.
    pub fn handle_timeout(&mut self, now: Duration) {
        match self.state {
            State::Opening { deadline } if now >= deadline => self.lose(
                format!(
                    "the connection to the broker did not open within {} s",
                    self.options.response_timeout.as_secs_f32()
                ),
                now,
            ),
            State::Connecting { deadline } if now >= deadline => self.lose(
                format!(
                    "the broker did not answer the login (CONNACK) within {} s",
                    self.options.response_timeout.as_secs_f32()
                ),
                now,
            ),
            State::Connected {
                next_ping,
                ping_sent,
            } => {
                if ping_sent
                    .is_some_and(|sent| now >= sent.saturating_add(self.options.response_timeout))
                {
                    return self.lose(
                        format!(
                            "the broker did not answer the keep-alive ping within {} s",
                            self.options.response_timeout.as_secs_f32()
                        ),
                        now,
                    );
                }
                if next_ping.is_some_and(|due| now >= due) {
                    let ping_sent = match ping_sent {
                        Some(sent) => Some(sent),
                        None => {
                            self.send(|b| v4::PingReq.write(b));
                            Some(now)
                        }
                    };
                    self.state = State::Connected {
                        next_ping: Some(now.saturating_add(self.options.keep_alive)),
                        ping_sent,
                    };
                }
            }
            State::Waiting { at } if now >= at => {
                self.state = State::Opening {
                    deadline: now.saturating_add(self.options.response_timeout),
                };
                self.events.push_back(ClientEvent::Reconnect);
            }
            _ => {}
        }
    }

    /// Publishes `payload` on `topic` with QoS 1: sent now when connected, else queued and
    /// sent, in order, after the next CONNACK; resent (DUP) after a reconnect until the broker
    /// acknowledges it ([`ClientEvent::Delivered`] with the returned id).
    pub fn publish(
        &mut self,
        topic: &str,
        payload: impl Into<Vec<u8>>,
    ) -> Result<MessageId, PublishError> {
        if matches!(self.state, State::Refused | State::Closed) {
            return Err(PublishError::Closed);
        }
        if topic.is_empty() || topic.len() > usize::from(u16::MAX) {
            return Err(PublishError::Invalid(format!(
                "a topic is 1 to 65,535 bytes, not {}",
                topic.len()
            )));
        }
        if topic.contains(['+', '#', '\0']) {
            return Err(PublishError::Invalid(format!(
                "the topic {topic:?} holds a wildcard or NUL"
            )));
        }
        if self.outbox.len() >= self.options.max_queue {
            return Err(PublishError::QueueFull {
                max: self.options.max_queue,
            });
        }
        let mut packet = v4::Publish::new(topic, QoS::AtLeastOnce, payload);
        packet.pkid = self.next_packet_id();
        if let Err(e) = packet.write(&mut BytesMut::new()) {
            return Err(PublishError::Invalid(format!(
                "the packet is too large ({e:?})"
            )));
        }
        self.next_id += 1;
        let id = MessageId(self.next_id);
        let sent = self.is_connected();
        if sent {
            self.send(|b| packet.write(b));
        }
        self.outbox.push_back(Queued { id, packet, sent });
        Ok(id)
    }

    /// Publishes a device message on this device's `up` topic (see [`Client::publish`]).
    pub fn publish_up(&mut self, up: &Up) -> Result<MessageId, PublishError> {
        let topic = self
            .options
            .device
            .as_ref()
            .ok_or(PublishError::NotADevice)?
            .up();
        self.publish(&topic, up.to_json())
    }

    /// Ends the connection for good: a DISCONNECT is queued when connected (send it, then
    /// close the transport). Unacknowledged messages stay counted in [`Client::queued`].
    pub fn disconnect(&mut self) {
        if self.is_connected() {
            self.send(|b| v4::Disconnect.write(b));
        }
        self.subscribing = None;
        self.state = State::Closed;
    }

    /// The next packet to write to the transport, in order.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When [`Client::handle_timeout`] is due next, if ever.
    pub fn poll_timeout(&self) -> Option<Duration> {
        match self.state {
            State::Opening { deadline } | State::Connecting { deadline } => Some(deadline),
            State::Connected {
                next_ping,
                ping_sent,
            } => {
                let answer = ping_sent.map(|s| s.saturating_add(self.options.response_timeout));
                match (next_ping, answer) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            State::Waiting { at } => Some(at),
            State::Refused | State::Closed => None,
        }
    }

    fn handle_packet(&mut self, packet: Packet, now: Duration) {
        if let State::Connecting { .. } = self.state {
            return match packet {
                Packet::ConnAck(ack) => self.connack(ack.code as u8, now),
                other => self.lose(
                    format!(
                        "the broker sent {} before accepting the login",
                        name(&other)
                    ),
                    now,
                ),
            };
        }
        // Anything from the broker shows it is alive: no answer to a ping is awaited anymore.
        if let State::Connected { ping_sent, .. } = &mut self.state {
            *ping_sent = None;
        }
        match packet {
            Packet::Publish(p) => match p.qos {
                QoS::AtMostOnce | QoS::AtLeastOnce => {
                    if p.qos == QoS::AtLeastOnce {
                        let ack = v4::PubAck::new(p.pkid);
                        self.send(|b| ack.write(b));
                    }
                    self.events.push_back(ClientEvent::Message {
                        topic: p.topic,
                        payload: p.payload.to_vec(),
                    });
                }
                QoS::ExactlyOnce => self.lose(
                    format!(
                        "the broker sent a QoS 2 message on {:?}, above the QoS 1 subscribed",
                        p.topic
                    ),
                    now,
                ),
            },
            Packet::PubAck(ack) => {
                if let Some(i) = self
                    .outbox
                    .iter()
                    .position(|q| q.sent && q.packet.pkid == ack.pkid)
                {
                    if let Some(q) = self.outbox.remove(i) {
                        self.events.push_back(ClientEvent::Delivered(q.id));
                    }
                }
            }
            Packet::SubAck(ack) => {
                if self.subscribing.as_ref().is_some_and(|s| s.0 == ack.pkid) {
                    let (_, topics) = self.subscribing.take().unwrap_or_default();
                    for (topic, code) in topics.into_iter().zip(ack.return_codes) {
                        if code == v4::SubscribeReasonCode::Failure {
                            self.events
                                .push_back(ClientEvent::SubscriptionRefused { topic });
                        }
                    }
                }
            }
            Packet::PingResp | Packet::UnsubAck(_) => {}
            other => self.lose(
                format!(
                    "the broker sent {}, which a client never receives",
                    name(&other)
                ),
                now,
            ),
        }
    }

    fn connack(&mut self, code: u8, now: Duration) {
        if code == SERVER_UNAVAILABLE {
            // Not a verdict on this device: the broker could not take a login just then (busy,
            // or the device's previous session still closing). Try again after the backoff.
            return self.lose(refusal_text(code), now);
        }
        if code != 0 {
            self.transmits.clear();
            self.inbound.clear();
            self.state = State::Refused;
            self.events.push_back(ClientEvent::Refused {
                code,
                text: refusal_text(code),
            });
            return;
        }
        self.backoff = FIRST_BACKOFF;
        self.state = State::Connected {
            next_ping: (!self.options.keep_alive.is_zero())
                .then(|| now.saturating_add(self.options.keep_alive)),
            ping_sent: None,
        };
        self.events.push_back(ClientEvent::Connected);
        if !self.options.subscriptions.is_empty() {
            let pid = self.next_packet_id();
            let topics = self.options.subscriptions.clone();
            let mut subscribe = v4::Subscribe::new_many(
                topics
                    .iter()
                    .map(|t| v4::SubscribeFilter::new(t.clone(), QoS::AtLeastOnce)),
            );
            subscribe.pkid = pid;
            self.subscribing = Some((pid, topics));
            self.send(|b| subscribe.write(b));
        }
        let mut resend = Vec::with_capacity(self.outbox.len());
        for q in &mut self.outbox {
            q.packet.dup = q.sent;
            q.sent = true;
            let mut b = BytesMut::new();
            if q.packet.write(&mut b).is_ok() {
                resend.push(b.to_vec());
            }
        }
        self.transmits.extend(resend);
    }

    /// The connection is gone: drop what belonged to it and wait before reconnecting.
    fn lose(&mut self, reason: String, now: Duration) {
        self.transmits.clear();
        self.inbound.clear();
        self.subscribing = None;
        let retry_in = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        self.state = State::Waiting {
            at: now.saturating_add(retry_in),
        };
        self.events
            .push_back(ClientEvent::Lost { reason, retry_in });
    }

    /// Encodes one packet into the transmit queue.
    fn send(&mut self, write: impl FnOnce(&mut BytesMut) -> Result<usize, mqttbytes::Error>) {
        let mut b = BytesMut::new();
        // Every packet written here was checked when it was made (publish) or is small and
        // fixed; a failure would mean a codec bug, and sending nothing is the safe answer.
        if write(&mut b).is_ok() {
            self.transmits.push_back(b.to_vec());
        }
    }

    /// A packet id no waiting message or SUBSCRIBE holds (1–65,535, then around again).
    fn next_packet_id(&mut self) -> u16 {
        loop {
            self.next_pid = self.next_pid.checked_add(1).unwrap_or(1);
            let pid = self.next_pid;
            let used = self.outbox.iter().any(|q| q.packet.pkid == pid)
                || self.subscribing.as_ref().is_some_and(|s| s.0 == pid);
            if !used {
                return pid;
            }
        }
    }
}

/// A packet's name for messages.
fn name(packet: &Packet) -> &'static str {
    match packet {
        Packet::Connect(_) => "CONNECT",
        Packet::ConnAck(_) => "CONNACK",
        Packet::Publish(_) => "PUBLISH",
        Packet::PubAck(_) => "PUBACK",
        Packet::PubRec(_) => "PUBREC",
        Packet::PubRel(_) => "PUBREL",
        Packet::PubComp(_) => "PUBCOMP",
        Packet::Subscribe(_) => "SUBSCRIBE",
        Packet::SubAck(_) => "SUBACK",
        Packet::Unsubscribe(_) => "UNSUBSCRIBE",
        Packet::UnsubAck(_) => "UNSUBACK",
        Packet::PingReq => "PINGREQ",
        Packet::PingResp => "PINGRESP",
        Packet::Disconnect => "DISCONNECT",
    }
}

#[cfg(test)]
mod tests;
