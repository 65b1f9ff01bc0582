//! MQTT helpers for the channel tests: a device on the broker (rumqttc), and
//! a center seeded with one active plan.

use std::time::Duration;

use reqwest::StatusCode;
use rumqttc::{
    AsyncClient, ConnectReturnCode, Event, MqttOptions, Packet, QoS, SubscribeReasonCode,
};
use serde_json::{json, Value};
use sota_engine::Status;
use sota_protocol::{decode_down, ComponentVersion, DeviceId, Down, ErrorCode, StatusReport, Up};
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::Center;

pub const WAIT: Duration = Duration::from_secs(10);
pub const PRODUCT: &str = "aroma";

pub enum Got {
    Message(String, Vec<u8>),
    SubAck(Vec<SubscribeReasonCode>),
}

/// A device on the broker: its client and what arrives for it.
pub struct Dev {
    pub id: DeviceId,
    pub client: AsyncClient,
    pub got: mpsc::UnboundedReceiver<Got>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Dev {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn connect_as(
    addr: &str,
    client_id: &str,
    username: &str,
    secret: &str,
) -> Result<(AsyncClient, rumqttc::EventLoop), String> {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let mut o = MqttOptions::new(client_id, host, port.parse::<u16>().unwrap());
    o.set_credentials(username, secret)
        .set_keep_alive(Duration::from_secs(5))
        .set_max_packet_size(2 << 20, 2 << 20);
    let (client, mut events) = AsyncClient::new(o, 64);
    match timeout(WAIT, events.poll()).await {
        Ok(Ok(Event::Incoming(Packet::ConnAck(ack)))) if ack.code == ConnectReturnCode::Success => {
            Ok((client, events))
        }
        Ok(Ok(other)) => Err(format!("unexpected first event {other:?}")),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no CONNACK in time".into()),
    }
}

impl Dev {
    pub async fn connect(addr: &str, device: &str, secret: &str) -> Result<Dev, String> {
        let id = DeviceId::new(PRODUCT, device).unwrap();
        let (client, mut events) = connect_as(addr, &id.username(), &id.username(), secret).await?;
        let (tx, got) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send(Got::Message(p.topic, p.payload.to_vec()));
                    }
                    Ok(Event::Incoming(Packet::SubAck(a))) => {
                        let _ = tx.send(Got::SubAck(a.return_codes));
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
        let mut dev = Dev {
            id,
            client,
            got,
            task,
        };
        let down = dev.id.down();
        assert!(
            matches!(
                dev.subscribe(&down).await[..],
                [SubscribeReasonCode::Success(_)]
            ),
            "own down topic"
        );
        Ok(dev)
    }

    pub async fn subscribe(&mut self, filter: &str) -> Vec<SubscribeReasonCode> {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .unwrap();
        match timeout(WAIT, self.got.recv())
            .await
            .expect("no SUBACK in time")
            .expect("connection closed")
        {
            Got::SubAck(codes) => codes,
            Got::Message(t, _) => panic!("unexpected message on {t} while subscribing"),
        }
    }

    pub async fn publish_raw(&self, topic: &str, payload: Vec<u8>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }

    pub async fn send(&self, up: &Up) {
        self.publish_raw(&self.id.up(), up.to_json()).await;
    }

    pub async fn recv(&mut self) -> Down {
        match timeout(WAIT, self.got.recv())
            .await
            .expect("no answer from the center in time")
            .expect("connection closed")
        {
            Got::Message(topic, payload) => {
                assert_eq!(topic, self.id.down());
                decode_down(&payload).unwrap_or_else(|e| {
                    panic!(
                        "undecodable answer {e}: {}",
                        String::from_utf8_lossy(&payload)
                    )
                })
            }
            Got::SubAck(_) => panic!("unexpected SUBACK"),
        }
    }

    pub async fn ask(&mut self, up: &Up) -> Down {
        self.send(up).await;
        self.recv().await
    }

    pub async fn status(
        &mut self,
        plan_id: i64,
        status: Status,
        percent: Option<u8>,
        version: Option<&str>,
    ) {
        let report = StatusReport {
            plan_id,
            comp_no: "STM32".into(),
            status,
            percent,
            version: version.map(String::from),
            message: format!("step {}", status.code()),
        };
        self.send(&Up::Status(report)).await;
    }

    pub async fn versions(&self, version: &str) {
        self.send(&Up::Versions {
            components: vec![ComponentVersion {
                comp_no: "STM32".into(),
                version: version.into(),
            }],
        })
        .await;
    }

    /// Round trip through the center: every earlier message of this device is handled when this returns.
    pub async fn sync(&mut self) -> Down {
        self.ask(&Up::Request).await
    }
}

pub fn plans(down: Down) -> Vec<sota_protocol::PlanOffer> {
    match down {
        Down::Plans { plans } => plans,
        other => panic!("expected plans, got {other:?}"),
    }
}

pub fn error_code(down: Down) -> ErrorCode {
    match down {
        Down::Error { code, message } => {
            assert!(!message.is_empty());
            code
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

/// What [`seed_plan`] created.
pub struct Seeded {
    pub product_secret: String,
    pub package_id: i64,
    pub plan_id: i64,
    pub image: Vec<u8>,
}

/// Product `PRODUCT`, a full package STM32 → 2_0_0 of 3000 bytes, and an active
/// plan for it; `overrides` replace fields of the plan.
pub async fn seed_plan(center: &Center, overrides: Value) -> Seeded {
    let image: Vec<u8> = (0..3000u32).map(|i| (i * 13 % 251) as u8).collect();
    seed_plan_with(center, image, overrides).await
}

/// [`seed_plan`] with the package holding `image`.
pub async fn seed_plan_with(center: &Center, image: Vec<u8>, overrides: Value) -> Seeded {
    let (s, product) = center
        .post(
            "/products",
            json!({"product_key": PRODUCT, "name": "Aroma"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{product}");
    let fields = [
        ("product_key", PRODUCT),
        ("name", "MCU 2"),
        ("component_type", "SOTA"),
        ("package_type", "full"),
        ("target_version", "2_0_0"),
        ("remarks", ""),
    ];
    let (s, pkg) = center.upload(&fields, &[("mcu.bin", image.clone())]).await;
    assert_eq!(s, StatusCode::CREATED, "{pkg}");
    let mut plan = json!({
        "name": "STM32 to 2_0_0", "product_key": PRODUCT, "time_zone": "UTC", "upgrade_mode": "silent",
        "components": [{"identity": "STM32", "component_type": "SOTA", "package_id": pkg["id"]}],
    });
    for (k, v) in overrides.as_object().unwrap() {
        plan[k] = v.clone();
    }
    let (s, plan) = center.post("/plans", plan).await;
    assert_eq!(s, StatusCode::CREATED, "{plan}");
    let plan_id = plan["id"].as_i64().unwrap();
    assert_eq!(
        center
            .post(&format!("/plans/{plan_id}/activate"), json!({}))
            .await
            .0,
        StatusCode::OK
    );
    Seeded {
        product_secret: product["product_secret"].as_str().unwrap().to_string(),
        package_id: pkg["id"].as_i64().unwrap(),
        plan_id,
        image,
    }
}
