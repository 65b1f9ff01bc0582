//! One origin for the console: the built console's files, and MQTT over
//! WebSocket at `/mqtt` bridged to the broker the center uses, so a browser
//! page served here reaches the API and the broker on its own origin.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Shared;
use crate::error::ApiError;

/// Upgrade to a WebSocket speaking `mqtt` and relay its binary frames to the
/// broker's MQTT port and back. The broker authenticates and applies the ACL;
/// this bridge only moves bytes (MQTT over WebSocket is MQTT in binary frames).
pub async fn mqtt(State(state): Shared, upgrade: WebSocketUpgrade) -> Result<Response, ApiError> {
    let Some(broker) = state.broker_tcp.get().cloned() else {
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "broker_unavailable",
            "the MQTT broker is not up yet; retry in a moment",
        ));
    };
    Ok(upgrade
        .protocols(["mqtt"])
        .max_message_size(crate::channel::broker::MAX_PACKET as usize * 2)
        .on_upgrade(move |ws| bridge(ws, broker)))
}

async fn bridge(ws: WebSocket, broker: String) {
    let tcp = match tokio::net::TcpStream::connect(broker.as_str()).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!("MQTT over WebSocket: cannot reach the broker at {broker}: {e}");
            return;
        }
    };
    let (mut tcp_read, mut tcp_write) = tcp.into_split();
    let (mut ws_send, mut ws_recv) = ws.split();
    let up = async move {
        while let Some(Ok(msg)) = ws_recv.next().await {
            match msg {
                Message::Binary(bytes) if tcp_write.write_all(&bytes).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = tcp_write.shutdown().await;
    };
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match tcp_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let frame = Message::Binary(bytes::Bytes::copy_from_slice(&buf[..n]));
                    if ws_send.send(frame).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = ws_send.close().await;
    };
    // Either side ending ends the session.
    tokio::select! { _ = up => {}, _ = down => {} }
}
