//! The embedded broker (rmqtt): a TCP and a WebSocket listener, with logins
//! and topic access decided in the broker itself through rmqtt's hooks — a
//! device may publish only on its `up` topic and subscribe only to its `down`
//! topic; the center's client may use all channel topics. The per-device rate
//! limit is applied here too, so a flood is dropped before it is routed to the
//! center.

use std::net::SocketAddr;
use std::sync::Arc;

use rmqtt::codec::v5::SubscribeAckReason;
use rmqtt::context::ServerContext;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType, Type};
use rmqtt::net::Builder;
use rmqtt::server::MqttServer;
use rmqtt::types::{AuthResult, PublishAclResult, SubscribeAclResult};
use sota_protocol::DeviceId;
use sqlx::AnyPool;

use super::credentials::{self, Login};
use super::limit::RateGuard;
use super::presence::Presence;
use crate::api::AppState;

/// Largest MQTT packet the broker takes: a center message at its limit plus
/// the topic. Devices' larger-than-allowed messages still reach the center,
/// which answers them with a `too_large` error.
pub const MAX_PACKET: u32 = sota_protocol::MAX_DOWN_BYTES as u32 + 4096;

/// A running embedded broker.
#[derive(Clone)]
pub struct EmbeddedBroker {
    /// MQTT over TCP.
    pub tcp: SocketAddr,
    /// MQTT over WebSocket (path `/mqtt` or any).
    pub ws: SocketAddr,
    /// The broker itself: the center routes its messages for devices through it in-process.
    pub scx: ServerContext,
}

/// What the broker hands the center in-process, in each device's order.
#[derive(Debug)]
pub enum FromBroker {
    /// A device message the broker admitted: (topic, payload).
    Message(String, bytes::Bytes),
    /// A device's session opened.
    Connected(DeviceId),
}

/// Where the broker hands device messages and sessions to the center.
pub type Inbound = tokio::sync::mpsc::UnboundedSender<FromBroker>;

/// Why the broker did not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the MQTT broker on {addr}: {reason}; pick another address with --mqtt-listen / --mqtt-ws-listen (port 0 picks a free one)")]
pub struct BrokerError {
    addr: SocketAddr,
    reason: String,
}

/// The hooks' one handler: logins, topic access, who is connected, and
/// messages the broker had to drop.
struct Gate {
    state: Arc<AppState>,
    pool: AnyPool,
    presence: Arc<Presence>,
    guard: Arc<RateGuard>,
    center_secret: String,
    /// Where admitted device messages go: the center takes them here, not as a subscriber,
    /// which saves a network round trip and an MQTT session's queue per message.
    inbound: Inbound,
    /// Drops since the last log line, and when that was.
    dropped: std::sync::Mutex<(u64, Option<std::time::Instant>)>,
}

impl Gate {
    /// Count a dropped delivery; `Some(n)` when a log line is due (at most one a second).
    fn count_drop(&self) -> Option<u64> {
        let mut d = self.dropped.lock().unwrap_or_else(|e| e.into_inner());
        d.0 += 1;
        let now = std::time::Instant::now();
        if d.1
            .is_some_and(|t| now.duration_since(t) < std::time::Duration::from_secs(1))
        {
            return None;
        }
        d.1 = Some(now);
        Some(std::mem::take(&mut d.0))
    }
}

fn device_of(username: &str) -> Option<DeviceId> {
    DeviceId::from_username(username)
}

#[async_trait::async_trait]
impl Handler for Gate {
    async fn hook(&self, param: &Parameter, acc: Option<HookResult>) -> ReturnType {
        match param {
            Parameter::ClientAuthenticate(info) => {
                let user = info.username().map(|u| u.to_string()).unwrap_or_default();
                let pass = info
                    .password()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .unwrap_or_default();
                let decided = credentials::login(
                    &self.pool,
                    &self.state.writes,
                    &self.center_secret,
                    info.client_id(),
                    &user,
                    &pass,
                )
                .await;
                let result = match decided {
                    Ok(Login::Center) => AuthResult::Allow(true, None),
                    Ok(Login::Device(_)) => AuthResult::Allow(false, None),
                    Ok(Login::BadCredentials) => {
                        tracing::warn!(username = %user, "MQTT login refused: bad username or secret");
                        AuthResult::BadUsernameOrPassword
                    }
                    Ok(Login::NotAuthorized) => {
                        tracing::warn!(username = %user, client_id = %info.client_id(), "MQTT login refused: not authorized");
                        AuthResult::NotAuthorized
                    }
                    Err(e) => {
                        tracing::error!(username = %user, "MQTT login failed: {}", e.message);
                        AuthResult::NotAuthorized
                    }
                };
                (false, Some(HookResult::AuthResult(result)))
            }
            Parameter::ClientSubscribeCheckAcl(session, sub) => {
                let allowed = device_of(session.id.username_ref())
                    .is_some_and(|d| sub.topic_filter.as_ref() as &str == d.down());
                if !allowed {
                    tracing::warn!(username = %session.id.username_ref(), filter = %sub.topic_filter, "MQTT subscribe refused by the ACL");
                }
                let result = if allowed {
                    SubscribeAclResult::new_success(sub.opts.qos(), None)
                } else {
                    SubscribeAclResult::new_failure(SubscribeAckReason::NotAuthorized)
                };
                (false, Some(HookResult::SubscribeAclResult(result)))
            }
            Parameter::MessagePublishCheckAcl(session, publish) => {
                let device = device_of(session.id.username_ref())
                    .filter(|d| publish.inner.topic.as_ref() as &str == d.up());
                if device.is_none() {
                    tracing::warn!(username = %session.id.username_ref(), topic = %publish.inner.topic, "MQTT publish refused by the ACL");
                }
                // Within the ACL, then within the device's rate (refusals are told and logged by the guard).
                let allowed = device.is_some_and(|d| self.guard.admit(&d, self.state.outbox.get()));
                if allowed {
                    // In the device's connection task, so its messages reach the center in order.
                    let message = FromBroker::Message(
                        publish.inner.topic.to_string(),
                        publish.inner.payload.clone(),
                    );
                    if self.inbound.send(message).is_err() {
                        tracing::error!("the center has stopped taking device messages");
                    }
                }
                let result = if allowed {
                    PublishAclResult::allow()
                } else {
                    PublishAclResult::rejected(false, None)
                };
                (false, Some(HookResult::PublishAclResult(result)))
            }
            // A delivery the broker gave up (a subscriber's queue full, a message
            // expired): never silent. Refused publishes are logged by the ACL above.
            Parameter::MessageDropped(Some(to), _, publish, reason) => {
                if let Some(n) = self.count_drop() {
                    tracing::warn!(client_id = %to.client_id, topic = %publish.topic, %reason, dropped = n, "the MQTT broker dropped message(s) for a client");
                }
                (true, acc)
            }
            Parameter::ClientConnected(session) => {
                if let Some(d) = device_of(session.id.username_ref()) {
                    self.presence.connected(d.clone());
                    // The center may read what the device's request will need meanwhile.
                    let _ = self.inbound.send(FromBroker::Connected(d));
                }
                (true, acc)
            }
            Parameter::ClientDisconnected(session, _) => {
                if let Some(d) = device_of(session.id.username_ref()) {
                    self.presence.disconnected(&d);
                    self.state.memory.forget(&d);
                }
                (true, acc)
            }
            _ => (true, acc),
        }
    }
}

fn listener(name: &str, addr: SocketAddr) -> Builder {
    Builder::new()
        .name(name)
        .laddr(addr)
        .allow_anonymous(false)
        .max_packet_size(MAX_PACKET)
        // Small messages both ways: without TCP_NODELAY, Nagle's algorithm and
        // delayed ACKs hold answers back by up to 40 ms.
        .nodelay(true)
}

/// Start the broker on `tcp` and `ws`; logins are checked against the
/// state's database, devices' publishes against `guard`, and the admitted ones
/// go to `inbound`.
pub async fn start(
    state: Arc<AppState>,
    guard: Arc<RateGuard>,
    center_secret: String,
    inbound: Inbound,
    tcp: SocketAddr,
    ws: SocketAddr,
) -> Result<EmbeddedBroker, BrokerError> {
    // rmqtt's own busy check refuses logins while the machine's load average is high, which
    // any other process on the server drives; the center has its own back-pressure (lanes,
    // "busy" answers, the per-device rate limit), so the check is off.
    let scx = ServerContext::new().busy_check_enable(false).build().await;
    let register = scx.extends.hook_mgr().register();
    let gate = || {
        Box::new(Gate {
            state: state.clone(),
            pool: state.pool.clone(),
            presence: state.presence.clone(),
            guard: guard.clone(),
            center_secret: center_secret.clone(),
            inbound: inbound.clone(),
            dropped: Default::default(),
        })
    };
    for typ in [
        Type::ClientAuthenticate,
        Type::ClientSubscribeCheckAcl,
        Type::MessagePublishCheckAcl,
        Type::ClientConnected,
        Type::ClientDisconnected,
        Type::MessageDropped,
    ] {
        register.add(typ, gate()).await;
    }
    register.start().await;
    let err = |addr| {
        move |e: rmqtt::Error| BrokerError {
            addr,
            reason: e.to_string(),
        }
    };
    let tcp_listener = listener("tcp", tcp)
        .bind()
        .map_err(err(tcp))?
        .tcp()
        .map_err(err(tcp))?;
    let ws_listener = listener("ws", ws)
        .bind()
        .map_err(err(ws))?
        .ws()
        .map_err(err(ws))?;
    let addrs = EmbeddedBroker {
        tcp: tcp_listener.local_addr().map_err(err(tcp))?,
        ws: ws_listener.local_addr().map_err(err(ws))?,
        scx: scx.clone(),
    };
    // Explicit listener ids: rmqtt keys listeners by port, and port 0 is shared.
    MqttServer::new(scx)
        .listener_by_id(tcp_listener, 1)
        .listener_by_id(ws_listener, 2)
        .build()
        .start();
    Ok(addrs)
}
