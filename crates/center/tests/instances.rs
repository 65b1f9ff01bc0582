//! Two `sota-center serve` instances on one PostgreSQL database, one S3 bucket and one mosquitto
//! act as one center (issue 12): a package uploaded through one downloads through the other,
//! whole and by range; a scheduled push cycle runs on one of them, each device pushed once; and
//! when the instance running a cycle is killed (SIGKILL) in the middle of it, the other finishes
//! the cycle without pushing any device twice, keeps every write the dead one acknowledged, and
//! answers the dead one's devices.
//!
//! Every part is real and started here: a throwaway PostgreSQL cluster (`common::cluster`),
//! moto's S3 server (`common::moto`), Debian's mosquitto. Needs the center built with S3 support:
//! `cargo test -p sota-center --features s3 --test instances` (as `cargo xtask test` runs it).
#![cfg(feature = "s3")]

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::events::Events;
use common::mosquitto::{connect_provisioned, free_port, Mosquitto};
use common::moto::Moto;
use common::mqtt::{plans, Dev, Got, PRODUCT};
use common::Center;
use jiff::Timestamp;
use reqwest::{header, StatusCode};
use serde_json::json;
use sota_api::events::PlanEvent;
use sota_engine::Status;
use sota_protocol::{decode_down, Down, Up};

/// Devices the plan is pushed to.
const FLEET: usize = 8;
/// `--push-rate`: devices pushed per second, so that a cycle over the fleet lasts about 4 s and
/// can be cut in the middle. Also the size of the batch a kill may lose.
const PUSH_RATE: usize = 2;
/// The multipart chunk of the S3 store (5 MiB): the package is larger, so uploaded in parts.
const PART: usize = 5 * 1024 * 1024;
/// What must happen "within a few seconds" is given this long before the test fails.
const SOON: Duration = Duration::from_secs(10);
/// No push for this long (more than the 1 s between two batches at `PUSH_RATE`): the cycle is over.
const QUIET: Duration = Duration::from_millis(1500);
const BUCKET: &str = "sota-fleet";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_centers_on_one_database_store_and_broker_act_as_one() {
    let started = Instant::now();
    let mut fleet = Fleet::start().await;
    eprintln!(
        "two centers and their devices ready after {:?}",
        started.elapsed()
    );
    a_link_signed_by_either_center_downloads_from_both(&mut fleet).await;
    a_cycle_asked_of_both_runs_once_and_pushes_each_device_once(&mut fleet).await;
    a_cycle_cut_by_its_centers_death_is_finished_by_the_other(&mut fleet).await;
    eprintln!("done in {:?}", started.elapsed());
}

/// Centers A and B on one database, store and broker, a plan activated through A, and the
/// devices on the broker.
struct Fleet {
    a: Center,
    b: Center,
    /// The fleet's devices, then the one that takes the upgrade (never pushed).
    devices: Vec<Dev>,
    plan_id: i64,
    image: Vec<u8>,
    /// The moments of the two push cycles, in the plan's push period.
    cycles: [Timestamp; 2],
    _mosquitto: Mosquitto,
    _moto: Moto,
    _dir: tempfile::TempDir,
}

impl Fleet {
    async fn start() -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let database = common::cluster()
            .create_database()
            .unwrap_or_else(|e| panic!("cannot create the shared database: {e}"));
        let moto = Moto::start();
        moto.create_bucket(BUCKET).await;

        // One mosquitto with a login for each of the two centers.
        let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
        let broker_files = dir.path().join("mosquitto");
        let broker_files = broker_files.to_str().unwrap();
        let (port, ws_port) = (free_port(), free_port());
        let conf = cli(
            &[
                "broker",
                "mosquitto-config",
                "--dir",
                broker_files,
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--ws-listen",
                &format!("127.0.0.1:{ws_port}"),
                "--centers",
                "2",
            ],
            &a_dir,
            &database,
        );
        let mosquitto = Mosquitto::start(&conf, port);
        let broker = format!("127.0.0.1:{port}");

        let broker_url = format!("mqtt://{broker}");
        let store = format!("s3://{BUCKET}/firmware");
        let push_rate = PUSH_RATE.to_string();
        let flags = [
            "--no-demo",
            "--broker",
            &broker_url,
            "--store",
            &store,
            "--push-rate",
            &push_rate,
        ];
        let env = moto.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let a = Center::start_shared(&a_dir, &database, &flags, &env);
        let b = Center::start_shared(&b_dir, &database, &flags, &env);

        // Through A: the product, a package of several S3 parts, an active plan.
        let image = firmware(PART + 1_234_567);
        let cycles = cycles();
        let plan_id = seed(&a, &image, cycles).await;

        let names: Vec<String> = (1..=FLEET)
            .map(|i| format!("d{i}"))
            .chain(["fetcher".to_string()])
            .collect();
        let secrets: Vec<String> = names
            .iter()
            .map(|device| {
                cli(
                    &[
                        "broker",
                        "provision",
                        "--dir",
                        broker_files,
                        "--product",
                        PRODUCT,
                        "--device",
                        device,
                    ],
                    &a_dir,
                    &database,
                )
            })
            .collect();
        mosquitto.reload();
        // Until both take their share, a device's message may find no center (never two).
        for center in [&a, &b] {
            center.wait_for_line(sota_center::channel::share::SERVING);
        }
        let mut devices = Vec::new();
        for (name, secret) in names.iter().zip(&secrets) {
            devices.push(connect_provisioned(&broker, name, secret).await);
        }
        // Each reports its version and is offered the plan, by whichever center handles it.
        for d in &mut devices {
            d.versions("1_0_0").await;
            let offered = plans(d.sync().await);
            assert_eq!(offer_ids(&offered), [plan_id], "{}", d.id);
        }
        Fleet {
            a,
            b,
            devices,
            plan_id,
            image,
            cycles,
            _mosquitto: mosquitto,
            _moto: moto,
            _dir: dir,
        }
    }

    fn scheduled(cycle: Timestamp) -> serde_json::Value {
        json!({"at": cycle.to_string(), "scheduled": true})
    }
}

/// a) The fetcher takes the upgrade; its download link, signed by whichever center handles it,
/// serves the package from either, whole and by range.
async fn a_link_signed_by_either_center_downloads_from_both(fleet: &mut Fleet) {
    // Pages on both centers watch the plan: one of them is not the fetcher's center.
    let path = format!("/plans/{}/events", fleet.plan_id);
    let mut pages = [
        Events::open(&fleet.a, &path).await,
        Events::open(&fleet.b, &path).await,
    ];
    for page in &mut pages {
        assert!(matches!(page.plan_event().await, PlanEvent::Open));
    }
    let fetcher = &mut fleet.devices[FLEET];
    let Down::Firmware(fw) = fetcher.ask(&Up::accept(fleet.plan_id, "STM32")).await else {
        panic!("no firmware info for the fetcher")
    };
    for (page, center) in pages.iter_mut().zip(["A", "B"]) {
        loop {
            if let PlanEvent::Upgrade { upgrade, .. } = page.plan_event().await {
                if upgrade.device_key == "fetcher" && upgrade.status == Status::Accepted.code() {
                    break;
                }
            }
        }
        eprintln!("a page on {center} saw the fetcher accept");
    }
    assert_eq!(fw.size, fleet.image.len() as u64);
    for center in [&fleet.a, &fleet.b] {
        download_through(center, &fw.url, &fleet.image).await;
    }
}

/// b) The same scheduled cycle asked of both centers at once: one runs it, the other is told it
/// is claimed, and each device is pushed once.
async fn a_cycle_asked_of_both_runs_once_and_pushes_each_device_once(fleet: &mut Fleet) {
    let (a, b, cycle) = (&fleet.a, &fleet.b, fleet.cycles[0]);
    let asked = Instant::now();
    let (from_a, from_b) = tokio::join!(
        a.post("/push", Fleet::scheduled(cycle)),
        b.post("/push", Fleet::scheduled(cycle)),
    );
    // Answered once the cycle is over: batches of PUSH_RATE devices a second apart.
    let answered = asked.elapsed();
    assert!(
        answered >= Duration::from_secs(3),
        "a cycle over {FLEET} devices at {PUSH_RATE} a second answered after {answered:?}"
    );
    let (ran, refused) = if from_a.0 == StatusCode::OK {
        (from_a, from_b)
    } else {
        (from_b, from_a)
    };
    assert_eq!(
        ran.0,
        StatusCode::OK,
        "neither center ran the cycle: {}",
        ran.1
    );
    common::assert_error(&refused, 409, "cycle_claimed");
    assert_eq!(ran.1["plans"], json!([fleet.plan_id]), "{}", ran.1);
    let mut listed: Vec<&str> = ran.1["devices"]
        .as_array()
        .unwrap_or_else(|| panic!("no devices in {}", ran.1))
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    listed.sort_unstable();
    let fleet_ids: Vec<String> = fleet.devices[..FLEET]
        .iter()
        .map(|d| d.id.to_string())
        .collect();
    assert_eq!(listed, fleet_ids, "the report lists the fleet");

    let mut pushes = Pushes::new(fleet.plan_id, fleet.devices.len());
    pushes
        .until(&mut fleet.devices, "every device pushed", |p| {
            p.devices_pushed() == FLEET
        })
        .await;
    pushes.until_quiet(&mut fleet.devices).await;
    assert_eq!(
        pushes.counts,
        [vec![1; FLEET], vec![0]].concat(),
        "pushes per device in one cycle (the fetcher last: it took the upgrade)"
    );
}

/// c) A runs the next cycle and is killed (SIGKILL) in the middle of it, while it acknowledges
/// writes. B finishes the cycle, no device pushed twice; no write A acknowledged is lost; B
/// answers every device, A's former ones included.
async fn a_cycle_cut_by_its_centers_death_is_finished_by_the_other(fleet: &mut Fleet) {
    let cycle = fleet.cycles[1];
    let a = &mut fleet.a;
    let written = Arc::new(AtomicUsize::new(0));
    let writes = tokio::spawn(write_products_until_gone(
        a.url.clone(),
        a.token.clone(),
        written.clone(),
    ));
    // Writes go on all through the cycle, and are in flight when A dies.
    let deadline = Instant::now() + SOON;
    while written.load(Ordering::Relaxed) < 20 {
        assert!(Instant::now() < deadline, "A acknowledges no writes");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cut = {
        let (http, url, token) = (a.http.clone(), a.api("/push"), a.token.clone());
        tokio::spawn(async move {
            let body = Fleet::scheduled(cycle);
            let r = http.post(url).bearer_auth(token).json(&body).send().await?;
            Ok::<_, reqwest::Error>((r.status(), r.text().await?))
        })
    };
    let mut pushes = Pushes::new(fleet.plan_id, fleet.devices.len());
    pushes
        .until(&mut fleet.devices, "A's first batch", |p| {
            p.devices_pushed() >= PUSH_RATE
        })
        .await;
    a.kill();
    let killed = Instant::now();
    let before_kill = pushes.counts.clone();
    assert!(
        pushes.devices_pushed() < FLEET,
        "A finished the cycle before it was killed (--push-rate not applied?): {before_kill:?}"
    );
    let cut = cut.await.unwrap();
    assert!(cut.is_err(), "A answered a cycle it was killed in: {cut:?}");

    // B takes the cycle over and pushes the rest; a batch A was sending may be lost.
    pushes
        .until(&mut fleet.devices, "B finishing A's cycle", |p| {
            p.devices_pushed() >= FLEET - PUSH_RATE
        })
        .await;
    pushes.until_quiet(&mut fleet.devices).await;
    let after_kill: Vec<Duration> = pushes
        .arrived
        .iter()
        .flatten()
        .filter(|&&t| t > killed)
        .map(|&t| t - killed)
        .collect();
    let (took_over, finished) = (after_kill.iter().min(), after_kill.iter().max());
    eprintln!(
        "pushes before the kill {before_kill:?}, after it {:?}; after the kill, B's first push \
         {took_over:?}, its last {finished:?}",
        pushes.counts
    );
    assert!(
        took_over.is_some_and(|t| *t < Duration::from_secs(5)),
        "B took the cycle over {took_over:?} after A's death"
    );
    assert!(
        pushes.counts.iter().all(|&n| n <= 1),
        "a device was pushed twice in one cycle: {:?}",
        pushes.counts
    );
    assert_eq!(pushes.counts[FLEET], 0, "the fetcher took the upgrade");
    let b = &fleet.b;
    common::assert_error(
        &b.post("/push", Fleet::scheduled(cycle)).await,
        409,
        "cycle_claimed",
    );

    let acknowledged = writes
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("a write through A failed while it ran: {e}"));
    for key in &acknowledged {
        let (s, product) = b.get(&format!("/products/{key}")).await;
        assert_eq!(
            s,
            StatusCode::OK,
            "product {key}, acknowledged by A before its death, read through B: {product}"
        );
    }
    eprintln!(
        "{} products acknowledged by A, all read through B",
        acknowledged.len()
    );

    for d in &mut fleet.devices[..FLEET] {
        let answer = tokio::time::timeout(SOON, d.ask(&Up::Request))
            .await
            .unwrap_or_else(|_| panic!("{}'s request unanswered after A's death", d.id));
        assert_eq!(offer_ids(&plans(answer)), [fleet.plan_id], "{}", d.id);
    }
}

/// The moments of the test's two push cycles: the 10-minute boundaries 10 and 20 minutes after
/// the next one. Ahead of the clock, so that the centers' own scheduler (which wakes every 5
/// minutes of real time) reaches neither while the test runs; and not past, since a cycle more
/// than 10 minutes old is abandoned rather than finished when its holder dies.
fn cycles() -> [Timestamp; 2] {
    let next = (Timestamp::now().as_second() / 600 + 1) * 600;
    [next + 600, next + 1200].map(|s| Timestamp::from_second(s).unwrap())
}

/// Through `center`: product `PRODUCT`, a full package STM32 → 2_0_0 holding `image`, and an
/// active plan for it in UTC, its push period from the first cycle to the end of the last: the
/// scheduler's own cycles, at real time, push nothing while the test counts pushes.
async fn seed(center: &Center, image: &[u8], [first, last]: [Timestamp; 2]) -> i64 {
    let wall_clock = |t: Timestamp| t.strftime("%H:%M").to_string();
    let end = last + jiff::SignedDuration::from_mins(10);
    let period = json!({"push_period": {"start": wall_clock(first), "end": wall_clock(end)}});
    common::mqtt::seed_plan_with(center, image.to_vec(), period)
        .await
        .plan_id
}

fn offer_ids(offers: &[sota_protocol::PlanOffer]) -> Vec<i64> {
    offers.iter().map(|o| o.plan_id).collect()
}

/// The `plans` pushes each device received during one cycle. The devices asked nothing
/// meanwhile, so whatever arrives for them is a push.
struct Pushes {
    plan_id: i64,
    counts: Vec<usize>,
    /// When each device's first push arrived.
    arrived: Vec<Option<Instant>>,
    last: Instant,
}

impl Pushes {
    fn new(plan_id: i64, devices: usize) -> Pushes {
        Pushes {
            plan_id,
            counts: vec![0; devices],
            arrived: vec![None; devices],
            last: Instant::now(),
        }
    }

    fn devices_pushed(&self) -> usize {
        self.counts.iter().filter(|&&n| n > 0).count()
    }

    /// Count what has arrived; each must be a push of the plan.
    fn take(&mut self, devices: &mut [Dev]) {
        for ((d, count), arrived) in devices
            .iter_mut()
            .zip(&mut self.counts)
            .zip(&mut self.arrived)
        {
            while let Ok(got) = d.got.try_recv() {
                let Got::Message(topic, payload) = got else {
                    panic!("{}: unexpected SUBACK", d.id)
                };
                assert_eq!(topic, d.id.down());
                let down = decode_down(&payload).unwrap_or_else(|e| {
                    panic!("{}: {e}: {}", d.id, String::from_utf8_lossy(&payload))
                });
                assert_eq!(offer_ids(&plans(down)), [self.plan_id], "{}", d.id);
                *count += 1;
                self.last = Instant::now();
                arrived.get_or_insert(self.last);
            }
        }
    }

    /// Count until `done` holds; fails after [`SOON`].
    async fn until(&mut self, devices: &mut [Dev], what: &str, done: impl Fn(&Pushes) -> bool) {
        let deadline = Instant::now() + SOON;
        loop {
            self.take(devices);
            if done(self) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {SOON:?}; pushes per device {:?}",
                self.counts
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Count until no push has come for [`QUIET`]: what a cycle still had in flight arrives,
    /// and so would a second push of the same cycle.
    async fn until_quiet(&mut self, devices: &mut [Dev]) {
        let deadline = Instant::now() + SOON;
        loop {
            self.take(devices);
            if self.last.elapsed() >= QUIET {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "pushes keep coming: {:?}",
                self.counts
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Create products through the center at `url`, one after another, until it stops answering:
/// the keys it acknowledged (201), counted in `written` as they are. Any other answer is an error.
async fn write_products_until_gone(
    url: String,
    token: String,
    written: Arc<AtomicUsize>,
) -> Result<Vec<String>, String> {
    let http = reqwest::Client::builder().timeout(SOON).build().unwrap();
    let mut acknowledged = Vec::new();
    for i in 0.. {
        let key = format!("w{i}");
        let sent = http
            .post(format!("{url}/api/v1/products"))
            .bearer_auth(&token)
            .json(&json!({"product_key": key, "name": format!("Written {i}")}))
            .send()
            .await;
        match sent {
            Ok(r) if r.status() == StatusCode::CREATED => {
                acknowledged.push(key);
                written.fetch_add(1, Ordering::Relaxed);
            }
            Ok(r) => {
                let status = r.status();
                return Err(format!(
                    "{key}: {status} {}",
                    r.text().await.unwrap_or_default()
                ));
            }
            // The center is gone: this write was never acknowledged.
            Err(_) => return Ok(acknowledged),
        }
    }
    unreachable!()
}

/// Download `link` (signed by whichever center) from `center`: whole, and a range across the
/// first S3 part boundary.
async fn download_through(center: &Center, link: &str, image: &[u8]) {
    let mut url = reqwest::Url::parse(link).unwrap();
    let there = reqwest::Url::parse(&center.url).unwrap();
    url.set_host(there.host_str()).unwrap();
    url.set_port(there.port()).unwrap();

    let r = center.http.get(url.clone()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{url}");
    let whole = r.bytes().await.unwrap();
    assert!(whole.as_ref() == image, "{url}: the whole file differs");

    let (start, end) = (PART - 1000, PART + 1000);
    let r = center
        .http
        .get(url.clone())
        .header(header::RANGE, format!("bytes={start}-{}", end - 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{url}");
    assert_eq!(
        r.headers()[header::CONTENT_RANGE],
        format!("bytes {start}-{}/{}", end - 1, image.len()).as_str(),
        "{url}"
    );
    let part = r.bytes().await.unwrap();
    assert!(
        part.as_ref() == &image[start..end],
        "{url}: other bytes in the range"
    );
}

/// `n` bytes that differ at every offset a wrong range would show.
fn firmware(n: usize) -> Vec<u8> {
    (0..n as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// `sota-center ARGS --data-dir DATA --database DATABASE`; its output.
fn cli(args: &[&str], data_dir: &Path, database: &str) -> String {
    common::run_cli(args, data_dir, Some(database.to_string()))
}
