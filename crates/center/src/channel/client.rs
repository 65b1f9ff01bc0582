//! The center as a client of the broker (the embedded one or an external
//! one): subscribes to every device's `up` topic and answers on `down`.
//!
//! The event loop only moves packets; a separate task handles messages in
//! arrival order, so a slow database never stalls the MQTT keep-alive.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use sota_protocol::topic::{CENTER_USERNAME, UP_FILTER};
use sota_protocol::{DeviceId, Direction};
use tokio::sync::mpsc;

use super::messages;
use crate::api::AppState;

/// Messages waiting for the handler; beyond this the event loop waits (back-pressure).
const QUEUE: usize = 1024;

/// Connect to the broker at `host:port` as the center and serve devices until
/// the process ends. With an `external` broker, presence comes from messages.
pub fn spawn(state: Arc<AppState>, host: String, port: u16, secret: String, external: bool) {
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
    let _ = state.mqtt.set(client.clone());
    let (tx, mut rx) = mpsc::channel::<(String, bytes::Bytes)>(QUEUE);
    let subscriber = client.clone();
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    tracing::info!(
                        "center connected to the MQTT broker; subscribing to {UP_FILTER}"
                    );
                    // A clean session forgets subscriptions: subscribe on every connect.
                    if let Err(e) = subscriber.subscribe(UP_FILTER, QoS::AtLeastOnce).await {
                        tracing::error!("cannot subscribe to {UP_FILTER}: {e}");
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.send((p.topic, p.payload)).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("center's MQTT connection: {e}; reconnecting in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
    tokio::spawn(async move {
        while let Some((topic, payload)) = rx.recv().await {
            let Some((from, Direction::Up)) = DeviceId::parse_topic(&topic) else {
                tracing::warn!(%topic, "message on a topic that is no device's up topic; ignored");
                continue;
            };
            if external {
                state.presence.seen(&from);
            }
            if let Some(answer) = messages::handle(&state, &from, &payload).await {
                send(&state, &from, &answer).await;
            }
        }
    });
}

/// Publish `down` on `to`'s down topic (QoS 1); failures are logged.
pub async fn send(state: &AppState, to: &DeviceId, down: &sota_protocol::Down) {
    let Some(client) = state.mqtt.get() else {
        tracing::error!(device = %to, "no MQTT client yet; message dropped");
        return;
    };
    if let Err(e) = client
        .publish(to.down(), QoS::AtLeastOnce, false, down.to_json())
        .await
    {
        tracing::error!(device = %to, "cannot queue a message: {e}");
    }
}
