//! What differs between the two backends, checked on both: each connection's settings (the
//! crash-safety promise), the migrations, and the push cycle's scan (SQLite stepped directly,
//! PostgreSQL through `COPY … TO STDOUT`) reading the same devices from each.
//!
//! PostgreSQL is a throwaway cluster these tests start (`sota_center::scratch_pg`); without its
//! binaries they fail and say how to install them.

use sota_center::channel::scan;
use sota_center::db::{self, Database, Native, Pool};
use sota_center::scratch_pg::Cluster;
use sqlx::Row;

/// Rows a scan sees, spelled out: ids, keys, versions with a tab and a backslash (escaped in
/// COPY's text format), upgrades of two plans in each state, a device of another product.
const FIXTURE: &str = "
    INSERT INTO products (id, product_key, name, product_secret, created_at) VALUES
        (1, 'p', 'P', 's', 't'), (2, 'q', 'Q', 's', 't');
    INSERT INTO devices (id, product_id, device_key, registered_at, last_seen_at) VALUES
        (1, 1, 'd1', 't', 't'), (2, 1, 'd2', 't', 't'), (3, 2, 'other', 't', 't'), (4, 1, 'd4', 't', 't');
    INSERT INTO device_components (device_id, identity, version, reported_at) VALUES
        (1, 'A', '1_0_0', 't'), (1, 'B', 'tab\there', 't'), (2, 'A', 'back\\slash', 't'), (3, 'A', '9', 't');
    INSERT INTO plans (id, name, product_id, time_zone, upgrade_mode, min_battery_percent, min_signal_dbm,
                       space_needed_bytes, download_retries, state, created_at, updated_at) VALUES
        (10, 'x', 1, 'UTC', 'silent', 0, 0, 0, 0, 'active', 't', 't'),
        (11, 'y', 1, 'UTC', 'silent', 0, 0, 0, 0, 'active', 't', 't'),
        (12, 'z', 1, 'UTC', 'silent', 0, 0, 0, 0, 'active', 't', 't');
    INSERT INTO upgrades (plan_id, device_id, identity, status, outcome, message, started_at, updated_at) VALUES
        (10, 1, 'A', 4, 'pending', 'm', 't', 't'), (11, 1, 'A', 9, 'succeeded', 'm', 't', 't'),
        (10, 4, 'B', 0, 'refused', 'm', 't', 't'), (12, 2, 'A', 1, 'pending', 'm', 't', 't')";

async fn exec(pool: &Pool, sql: &str) {
    for statement in sql.split(';').filter(|s| !s.trim().is_empty()) {
        sqlx::query(statement).execute(pool).await.unwrap();
    }
}

/// What the scan visited, as text.
async fn scanned(pool: &Pool) -> Vec<String> {
    let native = Native::connect(pool).await.unwrap();
    let mut seen = Vec::new();
    let mut visit = |d: &scan::Device| {
        seen.push(format!(
            "{} {} {:?} {:?}",
            d.id, d.key, d.components, d.standing
        ))
    };
    scan::devices(&native, 1, &[10, 11], &mut visit)
        .await
        .unwrap();
    seen
}

#[tokio::test]
async fn the_scan_reads_the_same_devices_from_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let lite = db::open(&Database::Sqlite(dir.path().join("center.sqlite3")))
        .await
        .unwrap();
    let cluster = Cluster::start().unwrap_or_else(|e| panic!("{e}"));
    let pg = db::open(&Database::Postgres(cluster.create_database().unwrap()))
        .await
        .unwrap();
    exec(&lite, FIXTURE).await;
    exec(&pg, FIXTURE).await;

    let from_sqlite = scanned(&lite).await;
    assert_eq!(
        from_sqlite.len(),
        3,
        "the product's devices: {from_sqlite:#?}"
    );
    assert!(
        from_sqlite[0].contains(r#"("B", "tab\there")"#),
        "{from_sqlite:?}"
    );
    assert!(
        from_sqlite[1].contains(r#""back\\slash""#),
        "{from_sqlite:?}"
    );
    assert!(
        from_sqlite[1].ends_with("[]"),
        "plan 12 was not asked for: {from_sqlite:?}"
    );
    assert_eq!(scanned(&pg).await, from_sqlite);
}

#[tokio::test]
async fn each_backend_keeps_its_settings_on_every_connection_and_migrates_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("center.sqlite3");
    let lite = db::open(&Database::Sqlite(path.clone())).await.unwrap();
    // Several connections at once: each one set up, not only the first.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut conn = lite.acquire().await.unwrap();
        let pragma = |name: &'static str| format!("PRAGMA {name}");
        let journal: String = sqlx::query(&pragma("journal_mode"))
            .fetch_one(&mut *conn)
            .await
            .unwrap()
            .get(0);
        assert_eq!(journal, "wal");
        for (name, want) in [("synchronous", 2), ("foreign_keys", 1)] {
            let v: i64 = sqlx::query(&pragma(name))
                .fetch_one(&mut *conn)
                .await
                .unwrap()
                .get(0);
            assert_eq!(v, want, "PRAGMA {name}");
        }
        held.push(conn);
    }
    drop(held);
    lite.close().await;
    // Opening again finds every migration applied, with the same checksums.
    db::open(&Database::Sqlite(path)).await.unwrap();

    let cluster = Cluster::start().unwrap_or_else(|e| panic!("{e}"));
    let url = cluster.create_database().unwrap();
    let pg = db::open(&Database::Postgres(url.clone())).await.unwrap();
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut conn = pg.acquire().await.unwrap();
        let v: String = sqlx::query("SHOW synchronous_commit")
            .fetch_one(&mut *conn)
            .await
            .unwrap()
            .get(0);
        assert_eq!(v, "on");
        held.push(conn);
    }
    drop(held);
    // Foreign keys hold: a device of no product is refused.
    let orphan = sqlx::query(
        "INSERT INTO devices (product_id, device_key, registered_at, last_seen_at) VALUES (99, 'x', 't', 't')",
    )
    .execute(&pg)
    .await;
    assert!(orphan.is_err());
    let versions: Vec<i64> = sqlx::query("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&pg)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    pg.close().await;
    db::open(&Database::Postgres(url)).await.unwrap();
}
