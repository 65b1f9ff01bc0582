//! Load tool behind `cargo xtask bench channel`.
//!
//! - `fleet <api-url> <token> <mqtt host:port> <data-dir> <devices> <rate> <timeout-s>`:
//!   against a running center, create a product, a 64 KiB package and an
//!   active plan through the API; then `devices` simulated devices (rumqttc
//!   clients, `sota-protocol`'s topics and messages) start `rate` a second and
//!   each: connects with the product secret, `register` → `registered`,
//!   reconnects with its device secret, reports `versions`, `request` → `plans`
//!   (timed), reports status 1, `accept` → `firmware` (timed), reports status 4,
//!   and stays connected until every device is done. With every request an
//!   echo client (the center's login, client id `sota-center-echo`, whose
//!   secret is read from `<data-dir>`) sends one message to a topic it
//!   subscribes to, through the same broker at the same moment: the broker's
//!   bare round trip under the same load. Prints `key value` lines (ms).
//! - `upgrade <api-url> <token> <mqtt host:port> <plan-id> <from-version> <step-ms>
//!   <timeout-s> <device-key>…`: a small fleet takes an existing, active plan all
//!   the way. Each device (new to the center) registers with its product's
//!   secret, reconnects with its device secret, reports `from-version` for each
//!   of the plan's components and requests plans. When the plan is offered, for
//!   each of its components: status 1, `accept` → `firmware`, the image
//!   downloaded from the firmware's URL and its size and SHA-256 checked,
//!   statuses 4, 5 at every 10 % (with the percent), 8 and 9, then the new
//!   version reported (`versions`, and 11 with `version`): the center counts
//!   success by that version. `step-ms` apart, so a page can watch it. Prints
//!   `device <key> offered yes|no outcome <outcome per the center's monitoring>`
//!   per device — a blacklisted key says `offered no` — and fails if an offered
//!   device did not succeed.
//! - `push <data-dir> <devices> [database-url]`: with the center stopped, add
//!   devices to the fleet's product until it has `devices`, mark them all
//!   connected, and time `sota_center::channel::push::cycle` (twice: recording
//!   the offers, then with the offers already recorded). Prints `key value`
//!   lines. On a database without the fleet's product (a fresh SQLite data
//!   directory, or `database-url`, a PostgreSQL database) the demo data is
//!   seeded first and its product and active plan are used instead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{
    AsyncClient, ConnectReturnCode, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS,
};
use serde_json::{json, Value};
use sota_engine::Status;
use sota_protocol::topic::CENTER_USERNAME;
use sota_protocol::{decode_down, status_name, ComponentVersion, DeviceId, Down, StatusReport, Up};
use sqlx::Row;
use tokio::sync::{mpsc, watch};

type Result<T = ()> = std::result::Result<T, String>;

const PRODUCT: &str = "bench";
const COMPONENT: &str = "STM32";
const FROM: &str = "1_0_0";
const TARGET: &str = "2_0_0";
/// How long one answer may take before the device gives up.
const ANSWER: Duration = Duration::from_secs(60);
const ECHO_TOPIC: &str = "bench/echo";

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("fleet") if args.len() == 8 => {
            fleet(Fleet {
                api: args[1].clone(),
                token: args[2].clone(),
                mqtt: args[3].clone(),
                data_dir: args[4].clone().into(),
                devices: parse(&args[5]),
                rate: parse(&args[6]),
                timeout: Duration::from_secs(parse(&args[7]) as u64),
            })
            .await
        }
        Some("upgrade") if args.len() >= 9 => {
            upgrade(Upgrade {
                api: args[1].clone(),
                token: args[2].clone(),
                mqtt: args[3].clone(),
                plan_id: parse(&args[4]) as i64,
                from: args[5].clone(),
                step: Duration::from_millis(parse(&args[6]) as u64),
                timeout: Duration::from_secs(parse(&args[7]) as u64),
                keys: args[8..].to_vec(),
            })
            .await
        }
        Some("push") if args.len() == 3 || args.len() == 4 => {
            push(args[1].as_ref(), parse(&args[2]), args.get(3).map(String::as_str)).await
        }
        _ => Err("usage: channel_bench fleet <api> <token> <mqtt host:port> <data-dir> <devices> <rate> <timeout-s> | upgrade <api> <token> <mqtt host:port> <plan-id> <from-version> <step-ms> <timeout-s> <device-key>… | push <data-dir> <devices> [database-url]".into()),
    };
    if let Err(e) = r {
        eprintln!("channel_bench: {e}");
        std::process::exit(1);
    }
}

fn parse(s: &str) -> usize {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s}"))
}

struct Fleet {
    api: String,
    token: String,
    mqtt: String,
    data_dir: std::path::PathBuf,
    devices: usize,
    rate: usize,
    timeout: Duration,
}

/// The soft limit on open files (Linux), if it can be read.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Samples of one measurement, in seconds.
#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl Samples {
    fn add(&self, d: Duration) {
        self.0.lock().unwrap().push(d.as_secs_f64());
    }

    /// (count, p50, p99) in milliseconds.
    fn percentiles(&self) -> (usize, f64, f64) {
        let mut v = self.0.lock().unwrap().clone();
        if v.is_empty() {
            return (0, f64::NAN, f64::NAN);
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let at = |q: usize| v[((v.len() * q).div_ceil(100)).clamp(1, v.len()) - 1] * 1000.0;
        (v.len(), at(50), at(99))
    }
}

#[derive(Default)]
struct Stats {
    connect: Samples,
    register: Samples,
    request: Samples,
    accept: Samples,
    echo: Samples,
    /// Devices that finished their sequence.
    done: AtomicUsize,
    /// Devices that connected with their device secret.
    connected: AtomicUsize,
    /// Logins tried again after "server unavailable".
    connect_retries: AtomicUsize,
    failed: AtomicUsize,
    first_error: Mutex<Option<String>>,
}

async fn api(token: &str, req: reqwest::RequestBuilder) -> Result<Value> {
    let r = req
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let s = r.status();
    let v: Value = r.json().await.map_err(|e| e.to_string())?;
    if s.is_success() {
        Ok(v)
    } else {
        Err(format!("{s}: {v}"))
    }
}

/// Product, package and an active plan; returns (product secret, plan id).
async fn prepare(f: &Fleet) -> Result<(String, i64)> {
    let http = reqwest::Client::new();
    let product = api(
        &f.token,
        http.post(format!("{}/products", f.api))
            .json(&json!({"product_key": PRODUCT, "name": "channel bench"})),
    )
    .await?;
    let secret = product["product_secret"]
        .as_str()
        .ok_or("no product_secret")?
        .to_string();
    let image: Vec<u8> = (0..65536u32).map(|i| (i * 31 % 251) as u8).collect();
    let form = reqwest::multipart::Form::new()
        .text("product_key", PRODUCT)
        .text("name", "bench MCU")
        .text("component_type", "SOTA")
        .text("package_type", "full")
        .text("target_version", TARGET)
        .part(
            "file",
            reqwest::multipart::Part::bytes(image).file_name("bench.bin"),
        );
    let pkg = api(
        &f.token,
        http.post(format!("{}/packages", f.api)).multipart(form),
    )
    .await?;
    let plan = api(
        &f.token,
        http.post(format!("{}/plans", f.api)).json(&json!({
            "name": "bench plan", "product_key": PRODUCT, "time_zone": "UTC", "upgrade_mode": "silent",
            "components": [{"identity": COMPONENT, "component_type": "SOTA", "package_id": pkg["id"]}],
        })),
    )
    .await?;
    let plan_id = plan["id"].as_i64().ok_or("no plan id")?;
    api(
        &f.token,
        http.post(format!("{}/plans/{plan_id}/activate", f.api))
            .json(&json!({})),
    )
    .await?;
    Ok((secret, plan_id))
}

fn options(addr: &str, client_id: &str, username: &str, secret: &str) -> Result<MqttOptions> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("{addr} is not host:port"))?;
    let port: u16 = port.parse().map_err(|_| format!("{addr}: bad port"))?;
    let mut o = MqttOptions::new(client_id, host, port);
    o.set_credentials(username, secret)
        .set_keep_alive(Duration::from_secs(60))
        .set_clean_session(true)
        .set_max_packet_size(2 << 20, 2 << 20);
    Ok(o)
}

/// Every bench client sends at once (TCP_NODELAY), as the center's own client does.
fn nodelay(events: &mut EventLoop) {
    let mut network = events.network_options();
    network.set_tcp_nodelay(true);
    events.set_network_options(network);
}

/// Poll until CONNACK; an error unless accepted.
async fn connack(events: &mut EventLoop) -> Result {
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(a))) if a.code == ConnectReturnCode::Success => {
                return Ok(())
            }
            Ok(Event::Incoming(Packet::ConnAck(a))) => {
                return Err(format!("refused: {:?}", a.code))
            }
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Poll until SUBACK.
async fn suback(events: &mut EventLoop) -> Result {
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::SubAck(a))) => {
                return match a.return_codes[..] {
                    [rumqttc::SubscribeReasonCode::Success(_)] => Ok(()),
                    ref other => Err(format!("subscription refused: {other:?}")),
                }
            }
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// One device's MQTT connection.
struct Conn {
    id: DeviceId,
    client: AsyncClient,
    events: EventLoop,
}

impl Conn {
    /// Connects, trying again (as `sota-protocol`'s client does) while the broker answers
    /// "server unavailable": a login right after the device's previous session closed can
    /// meet that session still closing. Counts those retries in `retries`.
    async fn open(addr: &str, id: &DeviceId, secret: &str, retries: &AtomicUsize) -> Result<Conn> {
        let mut wait = Duration::from_millis(100);
        for _ in 0..5 {
            match Conn::open_once(addr, id, secret).await {
                Err(e) if e.contains("ServiceUnavailable") => {
                    retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                other => return other,
            }
        }
        Conn::open_once(addr, id, secret).await
    }

    async fn open_once(addr: &str, id: &DeviceId, secret: &str) -> Result<Conn> {
        let user = id.username();
        let (client, mut events) = AsyncClient::new(options(addr, &user, &user, secret)?, 16);
        nodelay(&mut events);
        tokio::time::timeout(ANSWER, async {
            connack(&mut events).await?;
            client
                .subscribe(id.down(), QoS::AtLeastOnce)
                .await
                .map_err(|e| e.to_string())?;
            suback(&mut events).await
        })
        .await
        .map_err(|_| "no CONNACK/SUBACK in time".to_string())??;
        Ok(Conn {
            id: id.clone(),
            client,
            events,
        })
    }

    async fn send(&mut self, up: &Up) -> Result {
        self.client
            .publish(self.id.up(), QoS::AtLeastOnce, false, up.to_json())
            .await
            .map_err(|e| e.to_string())
    }

    async fn recv(&mut self) -> Result<Down> {
        let got = tokio::time::timeout(ANSWER, async {
            loop {
                match self.events.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        return decode_down(&p.payload).map_err(|e| e.to_string())
                    }
                    Ok(_) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
        })
        .await;
        got.map_err(|_| format!("no answer within {ANSWER:?}"))?
    }

    /// Sends `up` and drives the connection until it is out and `pause` has passed (so a
    /// watching page sees each step). A plan pushed meanwhile is passed over, an error is one.
    async fn paced(&mut self, up: &Up, pause: Duration) -> Result {
        self.send(up).await?;
        let until = tokio::time::Instant::now() + pause;
        let mut sent = false;
        loop {
            let polled = if sent {
                match tokio::time::timeout_at(until, self.events.poll()).await {
                    Ok(polled) => polled,
                    Err(_) => return Ok(()),
                }
            } else {
                tokio::time::timeout(ANSWER, self.events.poll())
                    .await
                    .map_err(|_| format!("the report was not sent within {ANSWER:?}"))?
            };
            match polled.map_err(|e| e.to_string())? {
                Event::Outgoing(Outgoing::Publish(_)) => sent = true,
                Event::Incoming(Packet::Publish(p)) => {
                    if let Ok(Down::Error { code, message }) = decode_down(&p.payload) {
                        return Err(format!("the center answered {code:?}: {message}"));
                    }
                }
                _ => {}
            }
        }
    }

    /// The next message `pick` takes; plans pushed meanwhile are passed over, an error is one.
    async fn expect<T>(&mut self, what: &str, pick: impl Fn(Down) -> Option<T>) -> Result<T> {
        loop {
            match self.recv().await? {
                Down::Plans { .. } => {}
                Down::Error { code, message } => {
                    return Err(format!("{what}: the center answered {code:?}: {message}"))
                }
                other => {
                    let shown = format!("{other:?}");
                    return pick(other).ok_or_else(|| format!("{what}: unexpected answer {shown}"));
                }
            }
        }
    }

    /// Keep the connection alive (pings) until `stop`, then disconnect.
    async fn hold(mut self, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                r = self.events.poll() => if r.is_err() { return },
            }
        }
        self.close().await;
    }

    async fn close(mut self) {
        let _ = self.client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match self.events.poll().await {
                    Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }
}

/// The echo client: one message per trigger to a topic it subscribes to.
struct Echo {
    trigger: mpsc::UnboundedSender<()>,
}

impl Echo {
    async fn start(addr: &str, secret: &str, stats: Arc<Stats>) -> Result<Echo> {
        let (client, mut events) = AsyncClient::new(
            options(addr, "sota-center-echo", CENTER_USERNAME, secret)?,
            1024,
        );
        nodelay(&mut events);
        tokio::time::timeout(ANSWER, async {
            connack(&mut events).await?;
            client
                .subscribe(ECHO_TOPIC, QoS::AtLeastOnce)
                .await
                .map_err(|e| e.to_string())?;
            suback(&mut events).await
        })
        .await
        .map_err(|_| "the echo client got no CONNACK/SUBACK in time".to_string())?
        .map_err(|e| {
            format!("the echo client (center's login, client id sota-center-echo): {e}")
        })?;
        let sent: Arc<Mutex<HashMap<u64, Instant>>> = Default::default();
        let (trigger, mut triggers) = mpsc::unbounded_channel::<()>();
        let pending = sent.clone();
        tokio::spawn(async move {
            let mut seq = 0u64;
            while triggers.recv().await.is_some() {
                seq += 1;
                pending.lock().unwrap().insert(seq, Instant::now());
                if client
                    .publish(ECHO_TOPIC, QoS::AtLeastOnce, false, seq.to_string())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let now = Instant::now();
                        let seq: Option<u64> = std::str::from_utf8(&p.payload)
                            .ok()
                            .and_then(|s| s.parse().ok());
                        if let Some(at) = seq.and_then(|s| sent.lock().unwrap().remove(&s)) {
                            stats.echo.add(now - at);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("channel_bench: echo client: {e}");
                        return;
                    }
                }
            }
        });
        Ok(Echo { trigger })
    }
}

struct Device {
    index: usize,
    mqtt: String,
    product_secret: String,
    plan_id: i64,
    stats: Arc<Stats>,
    echo: mpsc::UnboundedSender<()>,
}

impl Device {
    /// The whole sequence; returns the open connection.
    async fn run(&self) -> Result<Conn> {
        let id = DeviceId::new(PRODUCT, &format!("dev-{:05}", self.index)).ok_or("bad key")?;
        let (device_secret, took) = register(
            &self.mqtt,
            &id,
            &self.product_secret,
            &self.stats.connect_retries,
        )
        .await?;
        self.stats.register.add(took);

        let t = Instant::now();
        let mut conn = Conn::open(&self.mqtt, &id, &device_secret, &self.stats.connect_retries)
            .await
            .map_err(|e| format!("connect with the device secret: {e}"))?;
        self.stats.connect.add(t.elapsed());
        self.stats.connected.fetch_add(1, Ordering::Relaxed);
        conn.send(&versions(&[(COMPONENT, FROM)])).await?;

        let t = Instant::now();
        let _ = self.echo.send(());
        conn.send(&Up::Request).await?;
        match conn.recv().await? {
            Down::Plans { plans } if plans.iter().any(|p| p.plan_id == self.plan_id) => {}
            other => return Err(format!("request answered with {other:?}")),
        }
        self.stats.request.add(t.elapsed());

        let status = |status: Status| report(self.plan_id, COMPONENT, status, None, None);
        conn.send(&status(Status::Plan)).await?;
        let t = Instant::now();
        conn.send(&Up::accept(self.plan_id, COMPONENT)).await?;
        match conn.recv().await? {
            Down::Firmware(_) => {}
            other => return Err(format!("accept answered with {other:?}")),
        }
        self.stats.accept.add(t.elapsed());
        conn.send(&status(Status::DownloadStart)).await?;
        Ok(conn)
    }
}

/// Registers `id` with the product secret (connect, `register` → `registered`, disconnect):
/// the issued device secret and the register round trip.
async fn register(
    mqtt: &str,
    id: &DeviceId,
    product_secret: &str,
    retries: &AtomicUsize,
) -> Result<(String, Duration)> {
    let mut first = Conn::open(mqtt, id, product_secret, retries)
        .await
        .map_err(|e| format!("connect with the product secret: {e}"))?;
    let t = Instant::now();
    first
        .send(&Up::Register {
            product_secret: product_secret.to_string(),
        })
        .await?;
    let device_secret = match first.recv().await? {
        Down::Registered { device_secret } => device_secret,
        other => return Err(format!("register answered with {other:?}")),
    };
    let took = t.elapsed();
    first.close().await;
    Ok((device_secret, took))
}

/// A `versions` report of (component, version) pairs.
fn versions(components: &[(&str, &str)]) -> Up {
    Up::Versions {
        components: components
            .iter()
            .map(|(comp_no, version)| ComponentVersion {
                comp_no: comp_no.to_string(),
                version: version.to_string(),
            })
            .collect(),
    }
}

/// A status report of one component of a plan.
fn report(
    plan_id: i64,
    comp_no: &str,
    status: Status,
    percent: Option<u8>,
    version: Option<&str>,
) -> Up {
    Up::Status(StatusReport {
        plan_id,
        comp_no: comp_no.into(),
        status,
        percent,
        version: version.map(String::from),
        // The center logs the status's name; the percent is worth a word.
        message: percent.map(|p| format!("{p} %")).unwrap_or_default(),
    })
}

async fn center_secret(data_dir: &std::path::Path) -> Result<String> {
    let pool = sota_center::db::open(&sota_center::db::Database::Sqlite(
        data_dir.join("center.sqlite3"),
    ))
    .await
    .map_err(|e| e.to_string())?;
    let secret = sota_center::channel::credentials::center_secret(&pool)
        .await
        .map_err(|e| e.message)?;
    pool.close().await;
    Ok(secret)
}

async fn fleet(f: Fleet) -> Result {
    let needed = f.devices as u64 + 256;
    match open_files_limit() {
        Some(n) if n < needed => {
            return Err(format!(
                "{} devices need about {needed} open files, the limit is {n}; raise it (ulimit -n {needed})",
                f.devices
            ))
        }
        Some(n) => println!("open_files_limit {n}"),
        None => {}
    }
    let (product_secret, plan_id) = prepare(&f).await?;
    let stats = Arc::new(Stats::default());
    let echo = Echo::start(&f.mqtt, &center_secret(&f.data_dir).await?, stats.clone()).await?;
    println!("devices {}", f.devices);
    println!("rate {}", f.rate);

    let (stop_tx, stop) = watch::channel(false);
    let start = Instant::now();
    let every = Duration::from_secs_f64(1.0 / f.rate.max(1) as f64);
    let mut tasks = Vec::with_capacity(f.devices);
    for index in 0..f.devices {
        let device = Device {
            index,
            mqtt: f.mqtt.clone(),
            product_secret: product_secret.clone(),
            plan_id,
            stats: stats.clone(),
            echo: echo.trigger.clone(),
        };
        let stop = stop.clone();
        let at = start + every * index as u32;
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            match device.run().await {
                Ok(conn) => {
                    device.stats.done.fetch_add(1, Ordering::Relaxed);
                    conn.hold(stop).await;
                }
                Err(e) => {
                    device.stats.failed.fetch_add(1, Ordering::Relaxed);
                    let mut first = device.stats.first_error.lock().unwrap();
                    if first.is_none() {
                        *first = Some(format!("device {index}: {e}"));
                    }
                }
            }
        }));
    }

    // Wait until every device finished its sequence (or failed), within the timeout.
    let progress = Arc::new(AtomicU64::new(0));
    let deadline = start + f.timeout;
    loop {
        let (done, failed) = (
            stats.done.load(Ordering::Relaxed),
            stats.failed.load(Ordering::Relaxed),
        );
        if done + failed == f.devices {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "timed out after {:?}: {done} devices done, {failed} failed, {} connected with their device secret, of {}",
                f.timeout,
                stats.connected.load(Ordering::Relaxed),
                f.devices
            ));
        }
        let seconds = start.elapsed().as_secs();
        if seconds >= progress.load(Ordering::Relaxed) + 10 {
            progress.store(seconds, Ordering::Relaxed);
            eprintln!(
                "  {seconds} s: {done} devices done, {failed} failed, {} connected",
                stats.connected.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let run = start.elapsed();
    let failed = stats.failed.load(Ordering::Relaxed);
    if failed > 0 {
        let _ = stop_tx.send(true);
        return Err(format!(
            "{failed} of {} devices failed; first: {}",
            f.devices,
            stats
                .first_error
                .lock()
                .unwrap()
                .clone()
                .unwrap_or_default()
        ));
    }
    // Every device is connected now, all at once. Let the echoes still in flight land.
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!("connected_at_once {}", stats.done.load(Ordering::Relaxed));
    println!(
        "connect_retries {}",
        stats.connect_retries.load(Ordering::Relaxed)
    );
    println!("run_seconds {:.2}", run.as_secs_f64());

    // The statuses reached the center: every device's upgrade stands at "download start".
    let http = reqwest::Client::new();
    let want = status_name(Status::DownloadStart);
    let mut counts = Value::Null;
    let settle = Instant::now() + Duration::from_secs(60);
    while Instant::now() < settle {
        counts = api(
            &f.token,
            http.get(format!("{}/plans/{plan_id}/counts", f.api)),
        )
        .await?;
        if counts["by_status"][want].as_u64() == Some(f.devices as u64) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "statuses_recorded {}",
        counts["by_status"][want].as_u64().unwrap_or(0)
    );
    eprintln!("  plan {plan_id} counts: {counts}");

    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    for (name, s) in [
        ("register", &stats.register),
        ("connect", &stats.connect),
        ("request", &stats.request),
        ("accept", &stats.accept),
        ("echo", &stats.echo),
    ] {
        let (n, p50, p99) = s.percentiles();
        println!("{name}_count {n}");
        println!("{name}_p50_ms {p50:.3}");
        println!("{name}_p99_ms {p99:.3}");
    }
    Ok(())
}

struct Upgrade {
    api: String,
    token: String,
    mqtt: String,
    plan_id: i64,
    from: String,
    step: Duration,
    timeout: Duration,
    keys: Vec<String>,
}

/// What one device of `upgrade` saw.
struct Upgraded {
    key: String,
    /// The plan was among the request's plans.
    offered: bool,
}

/// The image at `url` (the firmware's signed link), checked against its size and SHA-256.
async fn download(http: &reqwest::Client, fw: &sota_protocol::Firmware) -> Result {
    use sha2::Digest;
    let image = http
        .get(&fw.url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("download of {}: {e}", fw.url))?
        .bytes()
        .await
        .map_err(|e| format!("download of {}: {e}", fw.url))?;
    let sha256 = sota_engine::digest::hex(&sha2::Sha256::digest(&image));
    if image.len() as u64 != fw.size || sha256 != fw.sha256 {
        return Err(format!(
            "the image from {} has {} bytes and SHA-256 {sha256}; the firmware info says {} bytes, {}",
            fw.url,
            image.len(),
            fw.size,
            fw.sha256
        ));
    }
    Ok(())
}

/// One device of `upgrade`: register, report, request; run the plan if offered.
async fn upgrade_one(
    u: &Upgrade,
    product: &str,
    product_secret: &str,
    identities: &[String],
    key: &str,
) -> Result<Upgraded> {
    let id = DeviceId::new(product, key).ok_or_else(|| format!("bad device key {key:?}"))?;
    let retries = AtomicUsize::new(0);
    let (device_secret, _) = register(&u.mqtt, &id, product_secret, &retries).await?;
    let mut conn = Conn::open(&u.mqtt, &id, &device_secret, &retries)
        .await
        .map_err(|e| format!("connect with the device secret: {e}"))?;
    let from: Vec<(&str, &str)> = identities
        .iter()
        .map(|i| (i.as_str(), u.from.as_str()))
        .collect();
    conn.send(&versions(&from)).await?;
    conn.send(&Up::Request).await?;
    let offers = match conn.recv().await? {
        Down::Plans { plans } => plans,
        other => return Err(format!("request answered with {other:?}")),
    };
    let ours: Vec<_> = offers.iter().filter(|o| o.plan_id == u.plan_id).collect();
    if ours.is_empty() {
        conn.close().await;
        return Ok(Upgraded {
            key: key.to_string(),
            offered: false,
        });
    }
    let http = reqwest::Client::new();
    let plan = u.plan_id;
    for offer in ours {
        let comp = offer.comp_no.as_str();
        conn.paced(&report(plan, comp, Status::Plan, None, None), u.step)
            .await?;
        conn.send(&Up::accept(plan, comp)).await?;
        let fw = conn
            .expect("accept", |d| match d {
                Down::Firmware(fw) => Some(fw),
                _ => None,
            })
            .await?;
        conn.paced(
            &report(plan, comp, Status::DownloadStart, None, None),
            u.step,
        )
        .await?;
        if let Err(e) = download(&http, &fw).await {
            let failed = report(plan, comp, Status::DownloadError, None, None);
            conn.paced(&failed, Duration::ZERO).await?;
            return Err(e);
        }
        for percent in (10..=100).step_by(10) {
            let at = report(plan, comp, Status::Downloading, Some(percent), None);
            conn.paced(&at, u.step).await?;
        }
        for status in [Status::DownloadOk, Status::Updating] {
            conn.paced(&report(plan, comp, status, None, None), u.step)
                .await?;
        }
        // Restarted on the new image: the version is what the center decides success by.
        conn.send(&versions(&[(comp, &fw.version)])).await?;
        conn.send(&report(
            plan,
            comp,
            Status::UpdateOk,
            None,
            Some(&fw.version),
        ))
        .await?;
    }
    // A round trip: every report above was handled when the answer comes.
    conn.send(&Up::Request).await?;
    conn.recv().await?;
    conn.close().await;
    Ok(Upgraded {
        key: key.to_string(),
        offered: true,
    })
}

async fn upgrade(u: Upgrade) -> Result {
    let http = reqwest::Client::new();
    let plan = api(&u.token, http.get(format!("{}/plans/{}", u.api, u.plan_id))).await?;
    let product = plan["product_key"]
        .as_str()
        .ok_or("the plan has no product_key")?;
    let identities: Vec<String> = plan["components"]
        .as_array()
        .ok_or("the plan has no components")?
        .iter()
        .filter_map(|c| c["identity"].as_str().map(String::from))
        .collect();
    let product_secret = api(&u.token, http.get(format!("{}/products/{product}", u.api))).await?
        ["product_secret"]
        .as_str()
        .ok_or("the product has no product_secret")?
        .to_string();
    println!(
        "plan {} product {product} devices {}",
        u.plan_id,
        u.keys.len()
    );

    let u = Arc::new(u);
    let mut tasks = Vec::new();
    for key in u.keys.clone() {
        let (u, product, secret, identities) = (
            u.clone(),
            product.to_string(),
            product_secret.clone(),
            identities.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let r = upgrade_one(&u, &product, &secret, &identities, &key).await;
            (key, r)
        }));
    }
    let mut results = Vec::new();
    let all = async {
        for t in tasks {
            results.push(t.await.map_err(|e| format!("a device task failed: {e}"))?);
        }
        Result::Ok(())
    };
    tokio::time::timeout(u.timeout, all)
        .await
        .map_err(|_| format!("the fleet did not finish within {:?}", u.timeout))??;

    // What the center's monitoring says of each device.
    let devices = api(
        &u.token,
        http.get(format!("{}/plans/{}/devices?limit=10000", u.api, u.plan_id)),
    )
    .await?;
    let outcome = |key: &str| -> String {
        let found = devices.as_array().and_then(|list| {
            list.iter().find(|d| d["device_key"] == key).map(|d| {
                d["components"]
                    .as_array()
                    .map(|cs| {
                        cs.iter()
                            .map(|c| c["outcome"].as_str().unwrap_or("?"))
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default()
            })
        });
        found.unwrap_or_else(|| "none".into())
    };
    let mut failed = Vec::new();
    for (key, r) in results {
        match r {
            Ok(Upgraded { key, offered }) => {
                let outcome = outcome(&key);
                println!(
                    "device {key} offered {} outcome {outcome}",
                    if offered { "yes" } else { "no" }
                );
                if offered && outcome.split(',').any(|o| o != "succeeded") {
                    failed.push(format!("{key}: {outcome}"));
                }
            }
            Err(e) => {
                println!("device {key} error {e}");
                failed.push(format!("{key}: {e}"));
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("not upgraded: {}", failed.join("; ")))
    }
}

async fn push(data_dir: &std::path::Path, devices: usize, database: Option<&str>) -> Result {
    let database =
        sota_center::db::Database::choose(database, data_dir).map_err(|e| e.to_string())?;
    let pool = sota_center::db::open(&database)
        .await
        .map_err(|e| e.to_string())?;
    let err = |e: sqlx::Error| e.to_string();
    let store =
        sota_center::store::FirmwareStore::open(&data_dir.join("firmware").display().to_string())
            .map_err(|e| e.to_string())?;
    let instance = std::sync::Arc::new(
        sota_center::instance::Instance::start(&pool)
            .await
            .map_err(|e| e.message)?,
    );
    let fleet = sqlx::query("SELECT id FROM products WHERE product_key = $1")
        .bind(PRODUCT)
        .fetch_optional(&pool)
        .await
        .map_err(err)?;
    let product = if fleet.is_some() {
        PRODUCT
    } else {
        sota_center::seed::seed_if_first_start(&pool, &store, &instance)
            .await
            .map_err(|e| e.message)?;
        sota_center::seed::DEMO_PRODUCT
    };
    let product_id: i64 = sqlx::query("SELECT id FROM products WHERE product_key = $1")
        .bind(product)
        .fetch_one(&pool)
        .await
        .map_err(|e| format!("no product {product:?}: {e}"))?
        .get(0);
    let count = |pool: sqlx::AnyPool, sql: &'static str| async move {
        sqlx::query(sql)
            .bind(product_id)
            .fetch_one(&pool)
            .await
            .map(|r| r.get::<i64, _>(0) as usize)
            .map_err(|e| e.to_string())
    };
    let have = count(
        pool.clone(),
        "SELECT COUNT(*) FROM devices WHERE product_id = $1",
    )
    .await?;

    // The fleet: devices with the component at the plan's source version, in one transaction.
    let t = Instant::now();
    let now = sota_center::now_text();
    let mut tx = pool.begin().await.map_err(err)?;
    let last: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM devices")
        .fetch_one(&mut *tx)
        .await
        .map_err(err)?
        .get(0);
    let keys: Vec<String> = (have..devices).map(|i| format!("push-{i:07}")).collect();
    for chunk in keys.chunks(2000) {
        let sql = format!(
            "INSERT INTO devices (product_id, device_key, registered_at, last_seen_at) VALUES {}",
            sota_center::db::values(chunk.len(), "(?, ?, ?, ?)")
        );
        let mut q = sqlx::query(&sql);
        for key in chunk {
            q = q.bind(product_id).bind(key).bind(&now).bind(&now);
        }
        q.execute(&mut *tx).await.map_err(err)?;
    }
    sqlx::query(
        "INSERT INTO device_components (device_id, identity, version, reported_at)
         SELECT id, $1, $2, $3 FROM devices WHERE id > $4",
    )
    .bind(COMPONENT)
    .bind(FROM)
    .bind(&now)
    .bind(last)
    .execute(&mut *tx)
    .await
    .map_err(err)?;
    tx.commit().await.map_err(err)?;
    sqlx::query("ANALYZE").execute(&pool).await.map_err(err)?;
    let registered = count(
        pool.clone(),
        "SELECT COUNT(*) FROM devices WHERE product_id = $1",
    )
    .await?;
    eprintln!(
        "  {} devices added in {:.1} s (not timed below); {registered} registered",
        keys.len(),
        t.elapsed().as_secs_f64()
    );

    let state = sota_center::api::AppState::new(
        pool.clone(),
        store,
        instance,
        sota_center::download::LinkSigner::new(b"channel bench"),
        "http://127.0.0.1:8081".into(),
        3600,
        sota_center::package::MAX_FILE_BYTES,
    );
    // Every registered device counts as connected.
    let mut keys = sqlx::query("SELECT device_key FROM devices WHERE product_id = $1")
        .bind(product_id)
        .fetch_all(&pool)
        .await
        .map_err(err)?;
    for row in keys.drain(..) {
        let key: &str = row.get(0);
        if let Some(id) = DeviceId::new(product, key) {
            state.presence.connected(id);
        }
    }
    println!("push_registered {registered}");
    println!(
        "push_connected {}",
        state.presence.devices_of(product).len()
    );

    // A due moment: the plan (UTC, no push period) is due at every 10-minute boundary.
    let at: jiff::Timestamp = "2026-01-01T10:00:00Z".parse().map_err(|e| format!("{e}"))?;
    let offers = |pool: sqlx::AnyPool| async move {
        sqlx::query("SELECT COUNT(*) FROM upgrades")
            .fetch_one(&pool)
            .await
            .map(|r| r.get::<i64, _>(0))
            .map_err(|e| e.to_string())
    };
    for pass in ["push", "push_again"] {
        let before = offers(pool.clone()).await?;
        let (mut messages, mut bytes) = (0usize, 0usize);
        // What `push` does with each message but the network: serialize it.
        let mut send = |_: DeviceId, message: bytes::Bytes| {
            messages += 1;
            bytes += message.len();
        };
        let t = Instant::now();
        let report = sota_center::channel::push::cycle(&state, at, &mut send)
            .await
            .map_err(|e| e.message)?;
        let secs = t.elapsed().as_secs_f64();
        let recorded = offers(pool.clone()).await? - before;
        println!("{pass}_seconds {secs:.3}");
        println!("{pass}_devices {}", report.devices.len());
        println!("{pass}_messages {messages}");
        println!("{pass}_bytes {bytes}");
        println!("{pass}_recorded {recorded}");
    }
    Ok(())
}
