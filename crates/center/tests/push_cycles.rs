//! Centers sharing one database push each 10-minute cycle once: two connection pools on one
//! database stand for two `sota-center serve` processes. A cycle whose center dies halfway is
//! finished by another, after the devices already pushed. A center with its own broker is
//! refused beside another.

mod common;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::json;
use sota_center::api::AppState;
use sota_center::channel::push::{adopt, claim, scheduled};
use sota_center::download::LinkSigner;
use sota_center::instance::Instance;
use sota_center::store::FirmwareStore;
use sota_protocol::DeviceId;
use sqlx::Row;

#[tokio::test]
async fn each_cycle_is_claimed_by_one_center_and_the_next_is_free_again() {
    let dir = tempfile::tempdir().unwrap();
    let a = common::open_db(dir.path()).await;
    let b = common::open_db(dir.path()).await;
    let tick: Timestamp = "2026-11-27T10:00:00Z".parse().unwrap();

    // Both race for the same cycle, several times over: one wins, once.
    let mut racers = Vec::new();
    for i in 0..8 {
        let pool = if i % 2 == 0 { a.clone() } else { b.clone() };
        racers.push(tokio::spawn(async move {
            claim(&pool, tick, &format!("center-{}", i % 2))
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for r in racers {
        won += usize::from(r.await.unwrap());
    }
    assert_eq!(won, 1, "exactly one claim of a cycle succeeds");

    // The center that ran it "dies" (its pool closes): the next cycle is claimed by the other.
    a.close().await;
    let next: Timestamp = "2026-11-27T10:10:00Z".parse().unwrap();
    assert!(claim(&b, next, "center-1").await.unwrap());
    assert!(!claim(&b, next, "center-1").await.unwrap(), "and only once");
}

#[tokio::test]
async fn claims_older_than_a_day_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let pool = common::open_db(dir.path()).await;
    sqlx::query("INSERT INTO push_cycles (tick, instance, claimed_at) VALUES ('2020-01-01T00:00:00Z', 'old', '2020-01-01T00:00:01Z')")
        .execute(&pool)
        .await
        .unwrap();
    let now = Timestamp::now();
    assert!(claim(&pool, now, "new").await.unwrap());
    let left: Vec<(String,)> = sqlx::query_as("SELECT instance FROM push_cycles")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(left, [("new".to_string(),)]);
}

/// A center in this process on `data_dir`'s database, every device of `devices` connected.
async fn center_state(
    data_dir: &std::path::Path,
    devices: &[String],
    push_rate: u32,
) -> Arc<AppState> {
    let pool = common::open_db(data_dir).await;
    let store = FirmwareStore::open(&data_dir.join("firmware").display().to_string()).unwrap();
    let instance = Arc::new(Instance::start(&pool).await.unwrap());
    let mut state = AppState::new(
        pool,
        store,
        instance,
        LinkSigner::new(&[7; 32]),
        "http://127.0.0.1:1".into(),
        3600,
        1 << 20,
    );
    state.push_rate = push_rate;
    for d in devices {
        state
            .presence
            .connected(DeviceId::new(common::mqtt::PRODUCT, d).unwrap());
    }
    Arc::new(state)
}

#[tokio::test]
async fn a_cycle_whose_center_dies_is_finished_by_another_and_no_device_is_pushed_twice() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<String> = (1..=5).map(|i| format!("dev-{i}")).collect();
    {
        let center = common::Center::start_in(dir.path(), &["--no-demo"]);
        common::mqtt::seed_plan(&center, json!({})).await;
        for k in &keys {
            center
                .device(common::mqtt::PRODUCT, k, json!({"STM32": "1_0_0"}))
                .await;
        }
    }
    let tick: Timestamp = "2026-11-27T10:00:00Z".parse().unwrap();

    // A pushes one device a second; it "dies" (its task stops, its liveness lock goes) after
    // recording its first batch.
    let a = center_state(dir.path(), &keys, 1).await;
    let b = center_state(dir.path(), &keys, 0).await;
    let running = tokio::spawn({
        let a = a.clone();
        async move { scheduled(&a, tick).await }
    });
    let cursor = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let row = sqlx::query("SELECT pushed_device FROM push_cycles WHERE tick = $1")
                .bind(tick.to_string())
                .fetch_optional(&b.pool)
                .await
                .unwrap();
            if let Some(id) = row.and_then(|r| r.get::<Option<i64>, _>(0)) {
                return id;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("A recorded its first batch");
    // While A lives, its cycle is its own.
    assert!(adopt(&b, tick).await.unwrap().is_empty());
    running.abort();
    assert!(
        running.await.unwrap_err().is_cancelled(),
        "A was still in its cycle"
    );
    drop(a);

    // While A's lock is held nothing is taken over; once it is free, B finishes the cycle.
    let report = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let reports = adopt(&b, tick).await.unwrap();
            if let Some(r) = reports.into_iter().next() {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("B took the cycle over");
    let first: String = sqlx::query("SELECT device_key FROM devices WHERE id = $1")
        .bind(cursor)
        .fetch_one(&b.pool)
        .await
        .unwrap()
        .get(0);
    let mut want: Vec<String> = keys
        .iter()
        .filter(|k| **k != first)
        .map(|k| format!("{}/{k}", common::mqtt::PRODUCT))
        .collect();
    want.sort();
    let mut got = report.devices.clone();
    got.sort();
    assert_eq!(
        got, want,
        "B pushes every device A had not, and not {first}"
    );

    let (holder, done): (String, i64) = {
        let row = sqlx::query("SELECT instance, done FROM push_cycles WHERE tick = $1")
            .bind(tick.to_string())
            .fetch_one(&b.pool)
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!((holder.as_str(), done), (b.instance.id(), 1));
    assert!(adopt(&b, tick).await.unwrap().is_empty(), "finished once");
    let again = scheduled(&b, tick).await.unwrap_err();
    assert_eq!(again.code, "cycle_claimed");
}

#[tokio::test]
async fn a_dead_centers_cycle_long_past_is_abandoned_not_pushed() {
    let dir = tempfile::tempdir().unwrap();
    let state = center_state(dir.path(), &[], 0).await;
    sqlx::query("INSERT INTO push_cycles (tick, instance, claimed_at, done) VALUES ('2026-11-27T09:00:00Z', 'deadbeefdeadbeef', '2026-11-27T09:00:00Z', 0)")
        .execute(&state.pool)
        .await
        .unwrap();
    let now: Timestamp = "2026-11-27T09:30:00Z".parse().unwrap();
    assert!(adopt(&state, now).await.unwrap().is_empty());
    let done: i64 = sqlx::query("SELECT done FROM push_cycles")
        .fetch_one(&state.pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(done, 1, "closed, so no center tries again");
}

#[tokio::test]
async fn a_center_with_its_own_broker_is_refused_beside_another_center() {
    let dir = tempfile::tempdir().unwrap();
    let _first = common::Center::start_in(dir.path(), &["--no-demo"]);
    let mut second = common::serve_command(dir.path(), common::database_for(dir.path()))
        .arg("--no-demo")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let exited = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(status) = second.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let Ok(status) = exited else {
        let _ = second.kill();
        panic!("a second center with its own broker started beside the first");
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("another center is running on this database")
            && stderr.contains("run every one of them with --broker"),
        "{stderr}"
    );
}
