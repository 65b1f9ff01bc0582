//! The channel under a flooding device: its messages over the per-device rate
//! limit are never handled and it is told so with errors (once a second), and
//! meanwhile another device's requests are answered as usual. Also the center's login for tools
//! (the channel bench's echo client). Real MQTT clients (rumqttc) against the
//! embedded broker; every wait is bounded.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::mqtt::{connect_as, plans, seed_plan, Dev, Got, WAIT};
use common::Center;
use rumqttc::{Event, Packet, QoS};
use serde_json::json;
use sota_protocol::{decode_down, Down, ErrorCode, Up};
use tokio::time::timeout;

/// Register `device` with the product secret and connect it with its device secret.
async fn registered(mqtt: &str, product_secret: &str, device: &str) -> Dev {
    let mut dev = Dev::connect(mqtt, device, product_secret).await.unwrap();
    let Down::Registered { device_secret } = dev
        .ask(&Up::Register {
            product_secret: product_secret.to_string(),
        })
        .await
    else {
        panic!("no registration answer")
    };
    drop(dev);
    Dev::connect(mqtt, device, &device_secret).await.unwrap()
}

#[tokio::test]
async fn a_flooding_device_gets_errors_and_does_not_hold_up_another() {
    // 5 messages a second after a burst of 20: the flood below is far over it.
    let center = Center::start(&["--no-demo", "--device-rate", "5", "--device-burst", "20"]);
    let (mqtt, _) = center.broker();
    let seeded = seed_plan(&center, json!({})).await;
    let mut calm = registered(&mqtt, &seeded.product_secret, "calm").await;
    let flooder = registered(&mqtt, &seeded.product_secret, "flooder").await;
    calm.versions("1_0_0").await;
    flooder.versions("1_0_0").await;

    // The flooder sends requests as fast as its connection takes them, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let flooder = Arc::new(flooder);
    let flood = {
        let (stop, sent, flooder) = (stop.clone(), sent.clone(), flooder.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) && sent.load(Ordering::Relaxed) < 5000 {
                flooder.send(&Up::Request).await;
                sent.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    while sent.load(Ordering::Relaxed) < 200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Meanwhile the calm device's requests are answered with its plan, one after another.
    for _ in 0..5 {
        let offers = plans(calm.ask(&Up::Request).await);
        assert_eq!(offers.len(), 1, "{offers:?}");
        assert_eq!(offers[0].plan_id, seeded.plan_id);
    }
    stop.store(true, Ordering::Relaxed);
    flood.await.unwrap();
    let sent = sent.load(Ordering::Relaxed);

    // The flood's answers (until a quiet second): plans for what was within the
    // limit, and errors saying how many were not handled.
    let mut flooder = Arc::into_inner(flooder).expect("the flood task has ended");
    let (mut answered, mut refused) = (0u64, 0u64);
    while let Ok(got) = timeout(Duration::from_secs(1), flooder.got.recv()).await {
        let Some(Got::Message(_, payload)) = got else {
            panic!("connection closed or unexpected SUBACK")
        };
        match decode_down(&payload).unwrap() {
            Down::Plans { .. } => answered += 1,
            Down::Error { code, message } => {
                assert_eq!(code, ErrorCode::RateLimited, "{message}");
                assert!(message.contains("too many messages"), "{message}");
                refused += 1;
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(refused > 0, "{sent} requests, none refused");
    // The burst of 20, less its register and versions messages, at least.
    assert!(
        answered >= 15 && answered + refused <= sent && answered < sent / 2,
        "{answered} handled and {refused} refused of {sent} requests"
    );
    // The flood left the center serving.
    assert_eq!(plans(calm.ask(&Up::Request).await).len(), 1);
}

#[tokio::test]
async fn the_centers_login_opens_tool_sessions_but_no_other_client_id() {
    let center = Center::start(&["--no-demo"]);
    let (mqtt, _) = center.broker();
    let pool = common::open_db(&center.data_dir).await;
    let secret = sota_center::channel::credentials::center_secret(&pool)
        .await
        .unwrap();
    for refused in ["sota-centerx", "sota-center-", "aroma&sota-center-1"] {
        let err = connect_as(&mqtt, refused, "sota-center", &secret)
            .await
            .err()
            .unwrap_or_else(|| panic!("{refused} logged in"));
        assert!(err.contains("NotAuthorized"), "{refused}: {err}");
    }
    // A tool session: a round trip through the broker on a topic of its own.
    let (client, mut events) = connect_as(&mqtt, "sota-center-echo", "sota-center", &secret)
        .await
        .unwrap();
    client
        .subscribe("bench/echo", QoS::AtLeastOnce)
        .await
        .unwrap();
    client
        .publish("bench/echo", QoS::AtLeastOnce, false, b"ping".to_vec())
        .await
        .unwrap();
    let echoed = timeout(WAIT, async {
        loop {
            if let Event::Incoming(Packet::Publish(p)) = events.poll().await.unwrap() {
                return p.payload.to_vec();
            }
        }
    })
    .await
    .expect("no echo");
    assert_eq!(echoed, b"ping");
}
