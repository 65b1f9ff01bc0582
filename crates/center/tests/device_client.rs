//! `sota_protocol::client` — the sans-IO device client the console and the load tools use —
//! against the center's embedded broker, driven over a plain `std::net::TcpStream` by the
//! few-line adapter below: register with the demo product's secret, log in with the device
//! secret, request plans and get the demo plan, survive a cut connection, and be refused for a
//! wrong secret without ever reconnecting.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Center;
use reqwest::StatusCode;
use sota_protocol::client::{Client, ClientEvent};
use sota_protocol::{decode_down, ComponentVersion, DeviceId, Down, Up};

const PRODUCT: &str = "demo-product";
const WAIT: Duration = Duration::from_secs(15);

/// The adapter: a TCP connection carrying the client's transmits, its bytes fed back with the
/// time, its timeouts and its Reconnect events carried out. It decides nothing.
struct Tcp {
    addr: String,
    client: Client,
    stream: Option<TcpStream>,
    origin: Instant,
    /// Every event, in order, for the test to look at.
    seen: Vec<ClientEvent>,
}

impl Tcp {
    fn new(addr: &str, client: Client, origin: Instant) -> Tcp {
        let mut tcp = Tcp {
            addr: addr.to_string(),
            client,
            stream: None,
            origin,
            seen: Vec::new(),
        };
        tcp.open();
        tcp
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn open(&mut self) {
        let now = self.now();
        match TcpStream::connect(&self.addr) {
            Ok(s) => {
                s.set_nodelay(true).unwrap();
                self.stream = Some(s);
                self.client.transport_opened(now);
            }
            Err(e) => self.client.transport_closed(e.to_string(), now),
        }
    }

    /// Cuts the connection under the client, as a network failure would.
    fn cut(&mut self) {
        self.stream = None;
        let now = self.now();
        self.client
            .transport_closed("the test cut the connection", now);
    }

    /// Runs the loop until `done` says yes for an event (returning it), or `within` passes.
    fn until(
        &mut self,
        within: Duration,
        mut done: impl FnMut(&ClientEvent) -> bool,
    ) -> Option<ClientEvent> {
        let end = Instant::now() + within;
        loop {
            let mut busy = false;
            while let Some(bytes) = self.client.poll_transmit() {
                busy = true;
                if let Some(s) = self.stream.as_mut() {
                    if let Err(e) = s.write_all(&bytes) {
                        self.stream = None;
                        let now = self.now();
                        self.client.transport_closed(e.to_string(), now);
                    }
                }
            }
            while let Some(event) = self.client.poll_event() {
                busy = true;
                match &event {
                    ClientEvent::Lost { .. } | ClientEvent::Refused { .. } => self.stream = None,
                    ClientEvent::Reconnect => self.open(),
                    _ => {}
                }
                self.seen.push(event.clone());
                if done(&event) {
                    return Some(event);
                }
            }
            if busy {
                // Carrying out an event (a Reconnect's CONNECT) may have queued more.
                continue;
            }
            let now = self.now();
            if Instant::now() >= end {
                return None;
            }
            // Wait for bytes until the client's next deadline, at most 50 ms at a time.
            let wait = self
                .client
                .poll_timeout()
                .map_or(Duration::from_millis(50), |at| at.saturating_sub(now))
                .clamp(Duration::from_millis(1), Duration::from_millis(50));
            match self.stream.as_mut() {
                Some(s) => {
                    s.set_read_timeout(Some(wait)).unwrap();
                    let mut buf = [0u8; 4096];
                    match s.read(&mut buf) {
                        Ok(0) => {
                            self.stream = None;
                            let now = self.now();
                            self.client
                                .transport_closed("the broker closed the connection", now);
                        }
                        Ok(n) => {
                            let now = self.now();
                            self.client.handle_input(&buf[..n], now);
                        }
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                        Err(e) => {
                            self.stream = None;
                            let now = self.now();
                            self.client.transport_closed(e.to_string(), now);
                        }
                    }
                }
                None => std::thread::sleep(wait),
            }
            let now = self.now();
            if self.client.poll_timeout().is_some_and(|at| at <= now) {
                self.client.handle_timeout(now);
            }
        }
    }

    /// The next message from the center, decoded.
    fn recv(&mut self) -> Down {
        match self.until(WAIT, |e| matches!(e, ClientEvent::Message { .. })) {
            Some(ClientEvent::Message { payload, .. }) => {
                decode_down(&payload).unwrap_or_else(|e| {
                    panic!("undecodable: {e}: {}", String::from_utf8_lossy(&payload))
                })
            }
            _ => panic!(
                "no message from the center within {WAIT:?}; events: {:?}",
                self.seen
            ),
        }
    }

    fn connected(&mut self) {
        let got = self.until(WAIT, |e| {
            matches!(e, ClientEvent::Connected | ClientEvent::Refused { .. })
        });
        assert_eq!(got, Some(ClientEvent::Connected), "events: {:?}", self.seen);
    }
}

async fn product_secret(center: &Center) -> String {
    let (status, body) = center.get(&format!("/products/{PRODUCT}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["product_secret"]
        .as_str()
        .unwrap_or_else(|| panic!("no product_secret in {body}"))
        .to_string()
}

#[tokio::test]
async fn the_device_client_registers_requests_plans_and_survives_a_cut_connection() {
    let center = Center::start(&[]);
    let (mqtt, _) = center.broker();
    let product_secret = product_secret(&center).await;
    tokio::task::spawn_blocking(move || {
        let origin = Instant::now();
        let id = DeviceId::new(PRODUCT, "client-test-1").unwrap();

        // Registration: logged in with the product secret.
        let mut dev = Tcp::new(
            &mqtt,
            Client::device(&id, &product_secret, origin.elapsed()),
            origin,
        );
        dev.connected();
        dev.client
            .publish_up(&Up::Register {
                product_secret: product_secret.clone(),
            })
            .unwrap();
        let Down::Registered { device_secret } = dev.recv() else {
            panic!("no registration answer: {:?}", dev.seen)
        };
        assert!(
            dev.seen
                .iter()
                .any(|e| matches!(e, ClientEvent::Delivered(_))),
            "the register message was acknowledged: {:?}",
            dev.seen
        );
        dev.client.disconnect();
        dev.until(Duration::ZERO, |_| false);

        // From now on with the device secret.
        let mut dev = Tcp::new(
            &mqtt,
            Client::device(&id, &device_secret, origin.elapsed()),
            origin,
        );
        dev.client
            .publish_up(&Up::Versions {
                components: vec![ComponentVersion {
                    comp_no: "STM32".into(),
                    version: "1_0_0".into(),
                }],
            })
            .unwrap();
        dev.client.publish_up(&Up::Request).unwrap();
        dev.connected();
        let Down::Plans { plans } = dev.recv() else {
            panic!("expected plans: {:?}", dev.seen)
        };
        assert_eq!(plans.len(), 1, "the demo plan: {plans:?}");
        assert_eq!(plans[0].comp_no, "STM32");
        assert_eq!(plans[0].tgt_ver, "1_0_1");

        // A cut connection: what is published meanwhile goes out after the reconnect.
        dev.cut();
        dev.client.publish_up(&Up::Request).unwrap();
        let reconnect_at = Instant::now();
        dev.connected();
        assert!(
            reconnect_at.elapsed() >= Duration::from_millis(900),
            "reconnected after the 1 s backoff, not at once"
        );
        assert!(dev.seen.contains(&ClientEvent::Reconnect));
        let Down::Plans { plans } = dev.recv() else {
            panic!("expected plans after the reconnect: {:?}", dev.seen)
        };
        assert_eq!(plans.len(), 1);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_wrong_secret_is_refused_and_never_retried() {
    let center = Center::start(&[]);
    let (mqtt, _) = center.broker();
    tokio::task::spawn_blocking(move || {
        let origin = Instant::now();
        let id = DeviceId::new(PRODUCT, "client-test-2").unwrap();
        let mut dev = Tcp::new(
            &mqtt,
            Client::device(&id, "not-the-secret", origin.elapsed()),
            origin,
        );
        let got = dev.until(WAIT, |e| matches!(e, ClientEvent::Refused { .. }));
        let Some(ClientEvent::Refused { code, text }) = got else {
            panic!("not refused: {:?}", dev.seen)
        };
        assert_eq!(code, 4, "{text}");
        assert!(text.contains("bad user name or password"), "{text}");
        // Longer than the first backoff: nothing more happens.
        dev.until(Duration::from_millis(2500), |_| false);
        assert_eq!(dev.seen.len(), 1, "no Lost, no Reconnect: {:?}", dev.seen);
        assert_eq!(dev.client.poll_timeout(), None);
    })
    .await
    .unwrap();
}
