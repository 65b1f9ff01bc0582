//! MQTT over a WebSocket: the browser's transport for `sota_protocol::client::Client`.
//!
//! One task per connection opens `web_sys::WebSocket`s (subprotocol `mqtt`, binary frames),
//! feeds the client what arrives with the page's time, writes what it transmits, sleeps until
//! its deadline on one timer, opens a new socket on [`ClientEvent::Reconnect`] and drops the
//! socket on [`ClientEvent::Lost`] / [`ClientEvent::Refused`]; every event goes to the
//! consumer through [`Mqtt::recv`], in order. Keep-alive, backoff, queueing and resending are
//! the client's: this adapter decides nothing.
//!
//! The center serves MQTT over WebSocket at `/mqtt` on the page's own origin (so does Trunk's
//! proxy in development): [`page_url`] is that address, [`resolve`] takes a configured one.

use super::clock::{self, sleep};
use core::future::Future;
use core::pin::Pin;
use core::time::Duration;
use futures::channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures::{pin_mut, select, FutureExt, StreamExt};
use sota_protocol::client::{Client, ClientEvent, MessageId, Options, PublishError};
use sota_protocol::Up;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

/// The WebSocket subprotocol MQTT uses (MQTT 3.1.1, section 6).
const SUBPROTOCOL: &str = "mqtt";
/// The path the center (and Trunk's proxy) serves MQTT over WebSocket on.
pub const PATH: &str = "/mqtt";

/// `ws://` or `wss://` + the page's host + [`PATH`]: the center that served this page.
pub fn page_url() -> Result<String, String> {
    let location = web_sys::window()
        .ok_or("no window: MQTT over WebSocket needs a page")?
        .location();
    let protocol = location.protocol().map_err(|e| format!("{e:?}"))?;
    let host = location.host().map_err(|e| format!("{e:?}"))?;
    let scheme = match protocol.as_str() {
        "https:" => "wss:",
        "http:" => "ws:",
        other => {
            return Err(format!(
                "the page was loaded over {other}, so it has no center to reach at {PATH}: \
                 enter the center's ws:// or wss:// address"
            ))
        }
    };
    Ok(format!("{scheme}//{host}{PATH}"))
}

/// The address to connect to: `given` when it is an absolute `ws://` or `wss://` URL, the
/// page's own center ([`page_url`]) when it is empty.
pub fn resolve(given: &str) -> Result<String, String> {
    let given = given.trim();
    if given.is_empty() {
        return page_url();
    }
    let ok = ["ws://", "wss://"]
        .iter()
        .any(|s| given.len() > s.len() && given[..s.len()].eq_ignore_ascii_case(s));
    if ok && web_sys::Url::new(given).is_ok() {
        Ok(given.to_string())
    } else {
        Err(format!(
            "{given:?} is not a WebSocket address: give ws://host:port/mqtt or wss://host/mqtt, \
             or leave it empty for the center that served this page"
        ))
    }
}

/// A running connection: publish with [`Mqtt::publish`], receive with [`Mqtt::recv`]. Dropping
/// it closes the connection (DISCONNECT, then the socket).
pub struct Mqtt {
    client: Rc<RefCell<Client>>,
    wake: UnboundedSender<Wake>,
    events: UnboundedReceiver<ClientEvent>,
    /// The WebSocket address.
    pub url: String,
}

impl Mqtt {
    /// Starts the connection to `url` ([`resolve`] it first) with `options`; the first
    /// socket opens at once. Errors only for a `url` the browser cannot open at all.
    pub fn connect(url: &str, options: Options) -> Result<Mqtt, String> {
        let url = resolve(url)?;
        let client = Rc::new(RefCell::new(Client::new(options, clock::now())));
        let (wake, wakes) = unbounded();
        let (events_tx, events) = unbounded();
        let mut task = Task {
            client: Rc::clone(&client),
            subprotocol: page_url().map_or(true, |own| own != url),
            url: url.clone(),
            wake: wake.clone(),
            events: events_tx,
            socket: None,
            generation: 0,
            timer: None,
        };
        task.open();
        spawn_local(task.run(wakes));
        Ok(Mqtt {
            client,
            wake,
            events,
            url,
        })
    }

    /// The next event; `None` once the connection is closed.
    pub async fn recv(&mut self) -> Option<ClientEvent> {
        self.events.next().await
    }

    /// An event that already arrived, without waiting.
    pub fn try_recv(&mut self) -> Option<ClientEvent> {
        self.events.try_recv().ok()
    }

    /// Publishes with QoS 1 (see [`Client::publish`]): queued while disconnected.
    pub fn publish(
        &self,
        topic: &str,
        payload: impl Into<Vec<u8>>,
    ) -> Result<MessageId, PublishError> {
        let r = self.client.borrow_mut().publish(topic, payload);
        let _ = self.wake.unbounded_send(Wake::Flush);
        r
    }

    /// Publishes a device message on the device's `up` topic (see [`Client::publish_up`]).
    pub fn publish_up(&self, up: &Up) -> Result<MessageId, PublishError> {
        let r = self.client.borrow_mut().publish_up(up);
        let _ = self.wake.unbounded_send(Wake::Flush);
        r
    }

    /// How many published messages wait for the broker's acknowledgement.
    pub fn queued(&self) -> usize {
        self.client.borrow().queued()
    }

    /// Closes the connection: DISCONNECT, then the socket; [`Mqtt::recv`] ends.
    pub fn close(&self) {
        let _ = self.wake.unbounded_send(Wake::Close);
    }
}

impl Drop for Mqtt {
    fn drop(&mut self) {
        self.close();
    }
}

/// What wakes the task. Socket events carry the generation of the socket they came from, so
/// a late event of a replaced socket is told apart and ignored.
enum Wake {
    Opened(u64),
    Bytes(u64, Vec<u8>),
    Closed(u64, String),
    /// A publish queued something.
    Flush,
    Close,
}

enum Woke {
    Wake(Option<Wake>),
    Timer,
}

/// A pending `setTimeout`.
type Sleep = Pin<Box<dyn Future<Output = ()>>>;

/// An open (or opening) WebSocket with its handlers; dropping it detaches them and closes it.
struct Socket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut(web_sys::Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}

struct Task {
    client: Rc<RefCell<Client>>,
    url: String,
    /// Whether to ask for the `mqtt` subprotocol: yes for a broker's own address, no for
    /// the center that served the page. Its `/mqtt` bridge needs none, and Trunk's dev proxy
    /// (`cargo xtask serve`) drops the server's subprotocol answer, after which Chrome
    /// refuses a socket whose offered subprotocol was not chosen.
    subprotocol: bool,
    wake: UnboundedSender<Wake>,
    events: UnboundedSender<ClientEvent>,
    socket: Option<Socket>,
    generation: u64,
    /// The pending wake-up: when, and the sleep that ends then.
    timer: Option<(Duration, Sleep)>,
}

impl Task {
    /// Opens a new socket; a failure to even start goes to the client as a closed transport.
    fn open(&mut self) {
        self.generation += 1;
        self.socket = None;
        match self.new_socket(self.generation) {
            Ok(socket) => self.socket = Some(socket),
            Err(why) => self.client.borrow_mut().transport_closed(
                format!("could not open a WebSocket to {}: {why}", self.url),
                clock::now(),
            ),
        }
    }

    fn new_socket(&self, generation: u64) -> Result<Socket, String> {
        let ws = if self.subprotocol {
            WebSocket::new_with_str(&self.url, SUBPROTOCOL)
        } else {
            WebSocket::new(&self.url)
        }
        .map_err(|e| {
            e.dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
                .unwrap_or_else(|| format!("{e:?}"))
        })?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        // Whether this socket ever opened: a close before that means the center was not reached.
        let opened = Rc::new(RefCell::new(false));
        let wake = self.wake.clone();
        let seen_open = Rc::clone(&opened);
        let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            *seen_open.borrow_mut() = true;
            let _ = wake.unbounded_send(Wake::Opened(generation));
        });
        let wake = self.wake.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let data = e.data();
            let wake_up = match data.dyn_ref::<js_sys::ArrayBuffer>() {
                Some(buffer) => Wake::Bytes(generation, js_sys::Uint8Array::new(buffer).to_vec()),
                None => Wake::Closed(
                    generation,
                    "the broker sent a text frame; MQTT over WebSocket is binary".into(),
                ),
            };
            let _ = wake.unbounded_send(wake_up);
        });
        let wake = self.wake.clone();
        let url = self.url.clone();
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            let reason = e.reason();
            let reason = if reason.is_empty() {
                String::new()
            } else {
                format!(": {reason}")
            };
            let why = if *opened.borrow() {
                format!("the WebSocket to {url} closed (code {}{reason})", e.code())
            } else {
                format!(
                    "could not connect to {url} (WebSocket code {}{reason}): is the center \
                     running, and is this its address?",
                    e.code()
                )
            };
            let _ = wake.unbounded_send(Wake::Closed(generation, why));
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(Socket {
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        })
    }

    /// Writes what the client transmits and carries out its events, until it has nothing more.
    fn carry_out(&mut self) {
        loop {
            let event = {
                let mut c = self.client.borrow_mut();
                while let Some(bytes) = c.poll_transmit() {
                    if let Some(s) = &self.socket {
                        // A closing socket drops it; its close event follows.
                        let _ = s.ws.send_with_u8_array(&bytes);
                    }
                }
                c.poll_event()
            };
            let Some(event) = event else {
                return;
            };
            match event {
                ClientEvent::Reconnect => self.open(),
                ClientEvent::Lost { .. } | ClientEvent::Refused { .. } => self.socket = None,
                _ => {}
            }
            let _ = self.events.unbounded_send(event);
        }
    }

    async fn run(mut self, mut wakes: UnboundedReceiver<Wake>) {
        loop {
            self.carry_out();
            // One timer at a time, replaced only when it fired or a nearer deadline came up.
            match self.client.borrow().poll_timeout() {
                Some(at) if self.timer.as_ref().is_none_or(|(t, _)| *t > at) => {
                    // setTimeout counts whole milliseconds: never wake before the deadline.
                    let wait = at.saturating_sub(clock::now()) + Duration::from_millis(1);
                    self.timer = Some((at, Box::pin(sleep(wait))));
                }
                _ => {}
            }
            let woke = {
                let next = wakes.next().fuse();
                let timer = async {
                    match self.timer.as_mut() {
                        Some((_, s)) => s.as_mut().await,
                        None => futures::future::pending().await,
                    }
                }
                .fuse();
                pin_mut!(next, timer);
                select! {
                    w = next => Woke::Wake(w),
                    () = timer => Woke::Timer,
                }
            };
            let now = clock::now();
            match woke {
                Woke::Timer => {
                    self.timer = None;
                    self.client.borrow_mut().handle_timeout(now);
                }
                Woke::Wake(Some(Wake::Opened(g))) if g == self.generation => {
                    self.client.borrow_mut().transport_opened(now)
                }
                Woke::Wake(Some(Wake::Bytes(g, b))) if g == self.generation => {
                    self.client.borrow_mut().handle_input(&b, now)
                }
                Woke::Wake(Some(Wake::Closed(g, why))) if g == self.generation => {
                    self.socket = None;
                    self.client.borrow_mut().transport_closed(why, now);
                }
                // The task holds a sender, so the channel never ends; `None` is only for form.
                Woke::Wake(Some(Wake::Close) | None) => {
                    self.client.borrow_mut().disconnect();
                    self.carry_out();
                    self.socket = None;
                    return;
                }
                // A publish to write (done at the top), or a late event of a replaced socket.
                Woke::Wake(Some(_)) => {}
            }
        }
    }
}
