//! The CLI as a device of the center: the MQTT connection (`sota_protocol::client`, the same
//! sans-IO client the console drives, here over a `std::net::TcpStream`) and firmware
//! downloads over HTTP with `Range`. What the messages mean is `sota_flow::CenterLink`'s
//! business, when to ping, resend or reconnect is the client's; this file only moves bytes.

use sota_flow::Source;
use sota_protocol::client::{Client, ClientEvent};
use sota_protocol::{DeviceId, Up};
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Where the center is and who this device is.
#[derive(clap::Args, Clone, Debug)]
pub struct CenterArgs {
    /// The center's HTTP address (e.g. http://127.0.0.1:8080): plans and firmware come from
    /// it instead of a local file.
    #[arg(long, value_name = "URL")]
    pub center: Option<String>,
    /// The center's MQTT broker [default: the center's host, port 1883].
    #[arg(long, value_name = "mqtt://HOST:PORT", requires = "center")]
    pub mqtt: Option<String>,
    /// Product key of the device.
    #[arg(long, requires = "center")]
    pub product: Option<String>,
    /// Device key (e.g. from the board's label).
    #[arg(long, requires = "center")]
    pub device: Option<String>,
    /// The product secret: registers a new device (the center then issues a device secret).
    #[arg(long, env = "SOTA_PRODUCT_SECRET", hide_env_values = true)]
    pub product_secret: Option<String>,
    /// The device secret the center issued at registration.
    #[arg(long, env = "SOTA_DEVICE_SECRET", hide_env_values = true)]
    pub device_secret: Option<String>,
}

/// What the connection reports.
#[derive(Debug)]
pub enum Net {
    /// Logged in and subscribed to the device's down topic.
    Connected,
    /// A message on the down topic (not yet decoded).
    Down(Vec<u8>),
    /// The broker refused the login: retrying cannot help.
    Refused(String),
    /// The connection failed or dropped; the client tries again after its backoff.
    Lost(String),
}

/// The broker's `host:port` from `--mqtt`, or the center URL's host with port 1883.
pub fn broker_address(center: &str, mqtt: Option<&str>) -> Result<(String, u16), String> {
    if let Some(m) = mqtt {
        let rest = m.strip_prefix("mqtt://").ok_or_else(|| {
            format!("--mqtt {m:?} is not an mqtt://HOST:PORT address (TLS is not supported yet)")
        })?;
        let (host, port) = rest
            .trim_end_matches('/')
            .rsplit_once(':')
            .ok_or_else(|| format!("--mqtt {m:?} has no port; e.g. mqtt://127.0.0.1:1883"))?;
        let port = port
            .parse()
            .map_err(|_| format!("--mqtt {m:?}: {port:?} is not a port number"))?;
        return Ok((host.to_string(), port));
    }
    let rest = center
        .strip_prefix("http://")
        .or_else(|| center.strip_prefix("https://"))
        .ok_or_else(|| format!("--center {center:?} is not an http:// or https:// address"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => authority,
    };
    if host.is_empty() {
        return Err(format!("--center {center:?} has no host"));
    }
    Ok((host.to_string(), 1883))
}

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The device's MQTT connection: [`Channel::poll`] moves bytes both ways and hands out what
/// happened; call it often (the CLI's loop does every 50 ms at most).
pub struct Channel {
    client: Client,
    address: (String, u16),
    stream: Option<TcpStream>,
    /// The client asked for a transport.
    open_now: bool,
    origin: Instant,
    events: VecDeque<Net>,
}

impl Channel {
    /// A connection as `id` with `password` to `host:port`; the first attempt is made by the
    /// first [`Channel::poll`].
    pub fn open(host: &str, port: u16, id: DeviceId, password: &str) -> Channel {
        let origin = Instant::now();
        Channel {
            client: Client::device(&id, password, Duration::ZERO),
            address: (host.to_string(), port),
            stream: None,
            open_now: true,
            origin,
            events: VecDeque::new(),
        }
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn connect(&mut self) {
        self.open_now = false;
        let (host, port) = &self.address;
        let attempt = (host.as_str(), *port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {host}: {e}"))
            .and_then(|mut addrs| addrs.next().ok_or_else(|| format!("{host} has no address")))
            .and_then(|addr| {
                TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
                    .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))
            })
            .and_then(|stream| {
                // Reads wait at most a moment: the caller's loop also serves the serial port.
                stream
                    .set_read_timeout(Some(Duration::from_millis(1)))
                    .map_err(|e| e.to_string())?;
                let _ = stream.set_nodelay(true);
                Ok(stream)
            });
        let now = self.now();
        match attempt {
            Ok(stream) => {
                self.stream = Some(stream);
                self.client.transport_opened(now);
            }
            Err(e) => self.client.transport_closed(e, now),
        }
    }

    fn closed(&mut self, reason: String) {
        self.stream = None;
        let now = self.now();
        self.client.transport_closed(reason, now);
    }

    /// Moves bytes, runs the client's timers, and returns the next thing that happened.
    pub fn poll(&mut self) -> Option<Net> {
        if self.open_now && self.stream.is_none() {
            self.connect();
        }
        let mut buf = [0u8; 16 * 1024];
        while let Some(stream) = self.stream.as_mut() {
            match stream.read(&mut buf) {
                Ok(0) => self.closed("the broker closed the connection".into()),
                Ok(n) => {
                    let now = self.now();
                    self.client.handle_input(&buf[..n], now);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => self.closed(e.to_string()),
            }
        }
        let now = self.now();
        if self.client.poll_timeout().is_some_and(|t| t <= now) {
            self.client.handle_timeout(now);
        }
        self.flush();
        while let Some(event) = self.client.poll_event() {
            match event {
                ClientEvent::Connected => self.events.push_back(Net::Connected),
                ClientEvent::Message { payload, .. } => self.events.push_back(Net::Down(payload)),
                ClientEvent::Refused { text, .. } => {
                    self.stream = None;
                    self.events.push_back(Net::Refused(text));
                }
                ClientEvent::Lost { reason, retry_in } => {
                    self.stream = None;
                    self.events.push_back(Net::Lost(format!(
                        "{reason}; trying again in {} s",
                        retry_in.as_secs()
                    )));
                }
                ClientEvent::Reconnect => self.open_now = true,
                ClientEvent::SubscriptionRefused { topic } => self.events.push_back(Net::Refused(
                    format!("the subscription to {topic} was refused"),
                )),
                ClientEvent::Delivered(_) => {}
            }
        }
        self.flush();
        self.events.pop_front()
    }

    fn flush(&mut self) {
        while let Some(bytes) = self.client.poll_transmit() {
            let Some(stream) = self.stream.as_mut() else {
                // Not connected: the client keeps QoS 1 messages and sends them after the login.
                continue;
            };
            if let Err(e) = stream.write_all(&bytes) {
                self.closed(e.to_string());
            }
        }
    }

    /// Queues `up` on the device's up topic (QoS 1: kept and resent across a reconnect).
    pub fn send(&mut self, up: &Up) -> Result<(), String> {
        self.client
            .publish_up(up)
            .map(|_| ())
            .map_err(|e| format!("cannot queue a message for the center: {e:?}"))
    }

    /// Waits at most `limit` for the broker to confirm every queued message (the last status
    /// report among them), then says goodbye.
    pub fn close(mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        while self.client.queued() > 0 && Instant::now() < deadline {
            if self.poll().is_none() {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let unconfirmed = self.client.queued();
        self.client.disconnect();
        self.flush();
        if unconfirmed > 0 {
            return Err(format!(
                "{unconfirmed} message(s) for the center were not confirmed within {} s",
                limit.as_secs()
            ));
        }
        Ok(())
    }
}

/// Firmware over HTTP: each read is one `Range` request (the engine asks for 64 KiB at a
/// time and resumes from its own offset after a failure).
pub struct HttpSource {
    agent: ureq::Agent,
}

impl Default for HttpSource {
    fn default() -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .build();
        HttpSource {
            agent: config.into(),
        }
    }
}

impl Source for HttpSource {
    fn read(&mut self, url: &str, start: u64, end: u64) -> Result<Vec<u8>, String> {
        let mut response = self
            .agent
            .get(url)
            .header("Range", format!("bytes={start}-{}", end.saturating_sub(1)))
            .call()
            .map_err(|e| format!("download of bytes {start}..{end} failed: {e}"))?;
        let status = response.status().as_u16();
        let whole = status == 200;
        if status != 206 && !(whole && start == 0) {
            return Err(format!(
                "the server answered {status} to a request for bytes {start}..{end}"
            ));
        }
        let mut bytes = response
            .body_mut()
            .with_config()
            .limit(if whole { u64::MAX } else { end - start })
            .read_to_vec()
            .map_err(|e| format!("download of bytes {start}..{end} broke off: {e}"))?;
        // A server that ignores Range sends everything from 0: keep the part asked for.
        bytes.truncate(usize::try_from(end - start).unwrap_or(usize::MAX));
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::broker_address;

    #[test]
    fn the_broker_defaults_to_the_centers_host() {
        assert_eq!(
            broker_address("http://10.0.0.5:8080/", None),
            Ok(("10.0.0.5".into(), 1883))
        );
        assert_eq!(
            broker_address("https://center.example", None),
            Ok(("center.example".into(), 1883))
        );
        assert_eq!(
            broker_address("http://x:1", Some("mqtt://127.0.0.1:18830")),
            Ok(("127.0.0.1".into(), 18830))
        );
        assert!(broker_address("ftp://x", None)
            .unwrap_err()
            .contains("--center"));
        assert!(broker_address("http://x", Some("mqtts://h:1"))
            .unwrap_err()
            .contains("mqtt://"));
        assert!(broker_address("http://x", Some("mqtt://h"))
            .unwrap_err()
            .contains("no port"));
    }
}
