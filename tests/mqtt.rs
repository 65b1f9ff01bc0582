//! The MQTT-over-WebSocket adapter in a real browser against a real broker: the center's
//! embedded one, which `cargo xtask test` starts (`sota-center serve`, demo data, random
//! ports) before building these tests, passing its address and the demo product's secret at
//! compile time — a wasm test cannot read the environment when it runs.
//!
//! By hand: start `sota-center serve`, then
//! `SOTA_TEST_MQTT_WS=ws://127.0.0.1:8083/mqtt SOTA_TEST_PRODUCT_SECRET=<demo-product's
//! product_secret from GET /api/v1/products/demo-product> cargo test --target
//! wasm32-unknown-unknown -p sota-console --test mqtt`.
#![cfg(target_arch = "wasm32")]

use core::time::Duration;
use futures::{pin_mut, select, FutureExt};
use sota_console::adapters::clock;
use sota_console::adapters::mqtt::{self, Mqtt};
use sota_protocol::client::{ClientEvent, Options};
use sota_protocol::{decode_down, ComponentVersion, DeviceId, Down, Up};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const PRODUCT: &str = "demo-product";
const WAIT: Duration = Duration::from_secs(15);

/// The broker's WebSocket URL and the demo product's secret, given when the tests were built.
fn broker() -> (&'static str, &'static str) {
    match (
        option_env!("SOTA_TEST_MQTT_WS"),
        option_env!("SOTA_TEST_PRODUCT_SECRET"),
    ) {
        (Some(url), Some(secret)) if !url.is_empty() && !secret.is_empty() => (url, secret),
        _ => panic!(
            "no broker for the MQTT adapter test: SOTA_TEST_MQTT_WS and SOTA_TEST_PRODUCT_SECRET \
             were not set when the tests were built. Run `cargo xtask test` (its browser-test \
             stage starts sota-center and sets both), or start `sota-center serve` yourself and \
             build with SOTA_TEST_MQTT_WS=ws://<its MQTT-over-WebSocket address>/mqtt and \
             SOTA_TEST_PRODUCT_SECRET=<product_secret of GET /api/v1/products/demo-product>"
        ),
    }
}

/// A device key no earlier run of this test used on the same center.
fn fresh_device(prefix: &str) -> DeviceId {
    let n = (js_sys::Math::random() * 1e9) as u64;
    DeviceId::new(PRODUCT, &format!("{prefix}-{n}")).unwrap()
}

/// The next event, or `None` after `within`.
async fn next(link: &mut Mqtt, within: Duration) -> Option<ClientEvent> {
    let event = link.recv().fuse();
    let timeout = clock::sleep(within).fuse();
    pin_mut!(event, timeout);
    select! {
        e = event => e,
        () = timeout => None,
    }
}

/// Events until `done` says yes for one (returned); panics after [`WAIT`].
async fn until(
    link: &mut Mqtt,
    seen: &mut Vec<ClientEvent>,
    done: impl Fn(&ClientEvent) -> bool,
) -> ClientEvent {
    let end = clock::now() + WAIT;
    loop {
        let left = end.saturating_sub(clock::now());
        match next(link, left).await {
            Some(e) => {
                seen.push(e.clone());
                if done(&e) {
                    return e;
                }
            }
            None => panic!("not within {WAIT:?}; events so far: {seen:?}"),
        }
    }
}

async fn answer(link: &mut Mqtt, seen: &mut Vec<ClientEvent>) -> Down {
    match until(link, seen, |e| matches!(e, ClientEvent::Message { .. })).await {
        ClientEvent::Message { payload, .. } => decode_down(&payload)
            .unwrap_or_else(|e| panic!("undecodable: {e}: {}", String::from_utf8_lossy(&payload))),
        _ => unreachable!(),
    }
}

#[wasm_bindgen_test]
fn addresses_are_absolute_websocket_urls_or_the_pages_own_center() {
    let page = web_sys::window().unwrap().location();
    let expected = format!("ws://{}/mqtt", page.host().unwrap());
    assert_eq!(page.protocol().unwrap(), "http:");
    assert_eq!(mqtt::page_url().unwrap(), expected);
    assert_eq!(mqtt::resolve("").unwrap(), expected);
    assert_eq!(mqtt::resolve("  ").unwrap(), expected);
    assert_eq!(
        mqtt::resolve("wss://center.example/mqtt").unwrap(),
        "wss://center.example/mqtt"
    );
    assert_eq!(
        mqtt::resolve("ws://127.0.0.1:8083/mqtt").unwrap(),
        "ws://127.0.0.1:8083/mqtt"
    );
    for bad in [
        "http://127.0.0.1:8081/mqtt",
        "/mqtt",
        "ws://",
        "center:8083",
    ] {
        let err = mqtt::resolve(bad).unwrap_err();
        assert!(err.contains("ws://host:port/mqtt"), "{bad}: {err}");
    }
}

#[wasm_bindgen_test]
async fn a_device_registers_and_gets_the_demo_plan_over_the_websocket() {
    let (url, product_secret) = broker();
    let id = fresh_device("wasm");
    let mut seen = Vec::new();

    // Registration, logged in with the product secret.
    let mut link = Mqtt::connect(url, Options::device(&id, product_secret)).unwrap();
    assert_eq!(link.url, url);
    link.publish_up(&Up::Register {
        product_secret: product_secret.to_string(),
    })
    .unwrap();
    assert_eq!(link.queued(), 1, "queued until connected");
    until(&mut link, &mut seen, |e| *e == ClientEvent::Connected).await;
    let Down::Registered { device_secret } = answer(&mut link, &mut seen).await else {
        panic!("no registration answer: {seen:?}")
    };
    link.close();
    while next(&mut link, WAIT).await.is_some() {}

    // Then with the device secret: versions, request → the demo plan.
    let mut seen = Vec::new();
    let mut link = Mqtt::connect(url, Options::device(&id, device_secret)).unwrap();
    until(&mut link, &mut seen, |e| *e == ClientEvent::Connected).await;
    link.publish_up(&Up::Versions {
        components: vec![ComponentVersion {
            comp_no: "STM32".into(),
            version: "1_0_0".into(),
        }],
    })
    .unwrap();
    link.publish_up(&Up::Request).unwrap();
    let Down::Plans { plans } = answer(&mut link, &mut seen).await else {
        panic!("expected plans: {seen:?}")
    };
    assert_eq!(plans.len(), 1, "{plans:?}");
    assert_eq!(
        (plans[0].comp_no.as_str(), plans[0].tgt_ver.as_str()),
        ("STM32", "1_0_1")
    );
    // Both messages acknowledged (their PUBACKs may come before or after the answer).
    let delivered = |seen: &[ClientEvent]| {
        seen.iter()
            .filter(|e| matches!(e, ClientEvent::Delivered(_)))
            .count()
    };
    while delivered(&seen) < 2 {
        until(&mut link, &mut seen, |e| {
            matches!(e, ClientEvent::Delivered(_))
        })
        .await;
    }
    assert_eq!(link.queued(), 0);
    assert!(
        !seen.iter().any(|e| matches!(
            e,
            ClientEvent::SubscriptionRefused { .. } | ClientEvent::Lost { .. }
        )),
        "{seen:?}"
    );
    drop(link);
}

#[wasm_bindgen_test]
async fn a_wrong_secret_is_refused_and_not_retried() {
    let (url, _) = broker();
    let id = fresh_device("wasm-wrong");
    let mut link = Mqtt::connect(url, Options::device(&id, "not-the-secret")).unwrap();
    let mut seen = Vec::new();
    let refused = until(&mut link, &mut seen, |e| {
        matches!(e, ClientEvent::Refused { .. } | ClientEvent::Connected)
    })
    .await;
    let ClientEvent::Refused { code, text } = refused else {
        panic!("logged in with a wrong secret: {seen:?}")
    };
    assert_eq!(code, 4, "{text}");
    assert!(text.contains("bad user name or password"), "{text}");
    // Longer than the first backoff: nothing more.
    assert_eq!(next(&mut link, Duration::from_millis(2500)).await, None);
}

#[wasm_bindgen_test]
async fn an_unreachable_center_is_lost_and_retried_with_backoff() {
    // Port 1 on loopback: nothing listens, the browser fails the socket at once.
    let url = "ws://127.0.0.1:1/mqtt";
    let id = fresh_device("wasm-nowhere");
    let mut link = Mqtt::connect(url, Options::device(&id, "s")).unwrap();
    let mut seen = Vec::new();
    let first = until(&mut link, &mut seen, |e| {
        matches!(e, ClientEvent::Lost { .. })
    })
    .await;
    let ClientEvent::Lost { reason, retry_in } = first else {
        unreachable!()
    };
    assert!(
        reason.contains("could not connect to ws://127.0.0.1:1/mqtt"),
        "{reason}"
    );
    assert_eq!(retry_in, Duration::from_secs(1));
    let at = clock::now();
    until(&mut link, &mut seen, |e| *e == ClientEvent::Reconnect).await;
    let waited = clock::now() - at;
    assert!(
        waited >= Duration::from_millis(900),
        "reconnected after {waited:?}, before the backoff"
    );
    let second = until(&mut link, &mut seen, |e| {
        matches!(e, ClientEvent::Lost { .. })
    })
    .await;
    assert!(
        matches!(second, ClientEvent::Lost { retry_in, .. } if retry_in == Duration::from_secs(2)),
        "{second:?}"
    );
    // Publishing meanwhile queues.
    link.publish_up(&Up::Request).unwrap();
    assert_eq!(link.queued(), 1);
}
