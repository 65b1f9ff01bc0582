//! `sota-center migrate-database`: a SQLite center's data copied into PostgreSQL, then served
//! from there with the same answers; and what it refuses.
//!
//! The source is always a SQLite center (whatever `SOTA_TEST_DATABASE` says), the target a
//! database of a throwaway PostgreSQL cluster (`sota_center::scratch_pg`); without
//! PostgreSQL's binaries these tests fail and say how to install them.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Center, BIN};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sota_center::db::{self, Database};
use sqlx::Row;

fn migrate(data_dir: &Path, to: &str) -> Output {
    Command::new(BIN)
        .args(["migrate-database", "--data-dir"])
        .arg(data_dir)
        .args(["--to", to])
        .env_remove("SOTA_CENTER_DATA_DIR")
        .output()
        .expect("run migrate-database")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn get(http: &reqwest::Client, base: &str, token: &str, path: &str) -> (StatusCode, Value) {
    let resp = http
        .get(format!("{base}/api/v1{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// What an operator reads, asked of both centers.
fn reads(plan: i64, verification: i64) -> Vec<String> {
    vec![
        "/products".into(),
        "/products/demo-product".into(),
        "/products/demo-product/devices".into(),
        "/products/p2/devices/d1".into(),
        "/products/demo-product/devices/demo-device-1/upgrades".into(),
        "/packages".into(),
        "/plans".into(),
        format!("/plans/{plan}"),
        format!("/plans/{plan}/counts"),
        format!("/plans/{plan}/devices"),
        format!("/plans/{plan}/log"),
        format!("/verifications/{verification}"),
    ]
}

#[tokio::test]
async fn a_sqlite_center_copied_into_postgresql_answers_the_same_and_takes_new_rows() {
    if common::on_postgres() {
        eprintln!("the copy's source is a SQLite center: nothing to test with SOTA_TEST_DATABASE=postgres");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path();
    let mut lite = Center::start_in(data_dir, &[]);
    lite.product("p2").await;
    lite.device("p2", "d1", json!({"MCU": "2_0_0"})).await;
    let package = lite.package("p2", "SOTA", "full", None, "2_0_1").await;
    let (_, demo_plans) = lite.get("/plans").await;
    let plan = demo_plans["items"][0]["id"]
        .as_i64()
        .or_else(|| demo_plans[0]["id"].as_i64())
        .unwrap_or_else(|| panic!("no demo plan: {demo_plans}"));
    let (_, demo_package) = lite.get("/packages?product=demo-product").await;
    let demo_package = demo_package["items"][0]["id"]
        .as_i64()
        .or_else(|| demo_package[0]["id"].as_i64())
        .unwrap_or_else(|| panic!("no demo package: {demo_package}"));
    let (s, v) = lite
        .post(
            &format!("/packages/{demo_package}/verifications"),
            json!({"product_key": "demo-product", "device_key": "demo-device-1", "component_identity": "STM32"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let verification = v["id"].as_i64().unwrap();
    let (s, v) = lite
        .post(
            &format!("/verifications/{verification}/log"),
            json!({"message": "downloaded 100%"}),
        )
        .await;
    assert!(s.is_success(), "{v}");
    // An upgrade and its log as the channel writes them; text COPY must escape, and NULLs.
    let pool = db::open(&Database::Sqlite(data_dir.join("center.sqlite3")))
        .await
        .unwrap();
    for sql in [
        "INSERT INTO upgrades (plan_id, device_id, identity, status, percent, outcome, message, started_at, updated_at, finished_at)
         SELECT $1, id, 'STM32', 4, 37, 'pending', 'tab\there, back\\slash, line
break, ünïcode', '2026-01-01T00:00:00Z', '2026-01-01T00:01:00Z', NULL
         FROM devices WHERE device_key = 'demo-device-1'",
        "INSERT INTO upgrade_log (plan_id, device_id, identity, at, source, status, percent, message)
         SELECT $1, id, 'STM32', '2026-01-01T00:00:00Z', 'center', 0, NULL, 'offered' FROM devices WHERE device_key = 'demo-device-1'",
        "INSERT INTO upgrade_log (plan_id, device_id, identity, at, source, status, percent, message)
         SELECT $1, id, 'STM32', '2026-01-01T00:01:00Z', 'device', 4, 37, 'downloading \\N' FROM devices WHERE device_key = 'demo-device-1'",
    ] {
        sqlx::query(sql).bind(plan).execute(&pool).await.unwrap();
    }
    let max_package: i64 = sqlx::query("SELECT MAX(id) FROM packages")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    pool.close().await;

    let paths = reads(plan, verification);
    let mut before = Vec::new();
    for path in &paths {
        let (s, v) = lite.get(path).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
        before.push(v);
    }
    let link = lite
        .startup
        .iter()
        .find_map(|l| {
            l.split_once("demo firmware for demo-device-1 (expires ")
                .map(|(_, r)| r)
        })
        .and_then(|r| r.split_once("): ").map(|(_, url)| url.trim().to_string()))
        .unwrap_or_else(|| panic!("no demo download link in {:?}", lite.startup));
    let link_path = link
        .strip_prefix(&lite.url)
        .unwrap_or_else(|| panic!("{link} is not on {}", lite.url))
        .to_string();
    let firmware = reqwest::get(&link).await.unwrap().bytes().await.unwrap();
    assert_eq!(firmware.len(), 64 * 1024);
    let token = lite.token.clone();
    lite.kill();

    let url = common::cluster().create_database().unwrap();
    let out = migrate(data_dir, &url);
    let stdout = text(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for line in [
        "(schema version 9)",
        "(migrated to version 9, empty)",
        "  products                    2 / 2 rows",
        "  upgrade_log                 2 / 2 rows",
        "  push_cycles                 0 / 0 rows",
        "tables in",
        "row counts checked; 8 identity sequences set past their largest id",
        "firmware files are not in the database",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }

    let (mut child, base, _) = common::spawn(data_dir, &token, &["--database", &url]);
    let http = reqwest::Client::new();
    for (path, want) in paths.iter().zip(&before) {
        let (s, got) = get(&http, &base, &token, path).await;
        assert_eq!(
            s,
            StatusCode::OK,
            "{path}: the SQLite token authenticates: {got}"
        );
        assert_eq!(&got, want, "{path} differs on PostgreSQL");
    }
    let again = reqwest::get(format!("{base}{link_path}")).await.unwrap();
    assert_eq!(again.status(), StatusCode::OK, "the link signed on SQLite");
    assert_eq!(again.bytes().await.unwrap(), firmware);

    // New rows take ids past the copied ones.
    let (s, v) = {
        let resp = http
            .post(format!("{base}/api/v1/products"))
            .bearer_auth(&token)
            .json(&json!({"product_key": "p3", "name": "Product p3"}))
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json::<Value>().await.unwrap())
    };
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let form = reqwest::multipart::Form::new()
        .text("product_key", "p2")
        .text("name", "pkg")
        .text("component_type", "SOTA")
        .text("package_type", "full")
        .text("target_version", "2_0_2")
        .part(
            "file",
            reqwest::multipart::Part::bytes(vec![9u8; 100]).file_name("fw.bin"),
        );
    let resp = http
        .post(format!("{base}/api/v1/packages"))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let new: Value = resp.json().await.unwrap();
    assert_eq!(new["id"].as_i64(), Some(max_package + 1), "{new}");
    assert!(package < max_package + 1);
    let out = Command::new(BIN)
        .args([
            "token",
            "create",
            "--name",
            "after-the-copy",
            "--database",
            &url,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (s, _) = get(&http, &base, text(&out.stdout).trim(), "/products").await;
    assert_eq!(s, StatusCode::OK);
    let _ = child.kill();
    let _ = child.wait();
}

async fn count(pool: &db::Pool, table: &str) -> i64 {
    sqlx::query(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_target_with_rows_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let lite = db::open(&Database::Sqlite(dir.path().join("center.sqlite3")))
        .await
        .unwrap();
    sqlx::query("INSERT INTO products (product_key, name, product_secret, created_at) VALUES ('from-sqlite', 'S', 's', 't')")
        .execute(&lite)
        .await
        .unwrap();
    lite.close().await;
    let url = common::cluster().create_database().unwrap();
    let pg = db::open(&Database::Postgres(url.clone())).await.unwrap();
    sqlx::query("INSERT INTO products (product_key, name, product_secret, created_at) VALUES ('already-here', 'P', 's', 't')")
        .execute(&pg)
        .await
        .unwrap();

    let out = migrate(dir.path(), &url);

    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("is not empty (table products has rows)"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let keys: Vec<String> = sqlx::query("SELECT product_key FROM products")
        .fetch_all(&pg)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(keys, ["already-here"]);
    assert_eq!(count(&pg, "settings").await, 0);
}

#[tokio::test]
async fn a_missing_file_a_bad_url_an_unreachable_server_and_an_older_schema_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::cluster().create_database().unwrap();
    let fails_with = |out: Output, want: &str| {
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{want}: {stderr}");
        assert!(stderr.contains(want), "{want:?} missing from: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    };

    fails_with(
        migrate(&dir.path().join("nowhere"), &url),
        "no SQLite database at",
    );
    assert!(
        !dir.path().join("nowhere").exists(),
        "the source is never created"
    );

    let path = dir.path().join("center.sqlite3");
    let lite = db::open(&Database::Sqlite(path)).await.unwrap();
    fails_with(
        migrate(dir.path(), "mysql://db/center"),
        "is not a PostgreSQL database",
    );
    fails_with(
        migrate(dir.path(), "postgres://postgres@127.0.0.1:1/center"),
        "cannot reach the PostgreSQL database postgres://postgres@127.0.0.1:1/center: error communicating with database: Connection refused",
    );

    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 9")
        .execute(&lite)
        .await
        .unwrap();
    lite.close().await;
    fails_with(
        migrate(dir.path(), &url),
        "is at schema version 8, this sota-center's is 9: start this sota-center once on it",
    );
    // Refused before the target was touched.
    let pg = db::open(&Database::Postgres(url)).await.unwrap();
    assert_eq!(count(&pg, "products").await, 0);
}

#[tokio::test]
async fn a_value_that_does_not_fit_its_column_rolls_the_whole_copy_back() {
    let dir = tempfile::tempdir().unwrap();
    let lite = db::open(&Database::Sqlite(dir.path().join("center.sqlite3")))
        .await
        .unwrap();
    for sql in [
        "INSERT INTO products (id, product_key, name, product_secret, created_at) VALUES (1, 'p', 'P', 's', 't')",
        // SQLite keeps text in an integer column; PostgreSQL's BIGINT cannot take it.
        "INSERT INTO devices (id, product_id, device_key, registered_at, last_seen_at, secret_confirmed) VALUES (5, 1, 'd', 't', 't', 'yes')",
    ] {
        sqlx::query(sql).execute(&lite).await.unwrap();
    }
    lite.close().await;
    let url = common::cluster().create_database().unwrap();

    let out = migrate(dir.path(), &url);

    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("devices.secret_confirmed (SQLite rowid 5) holds a TEXT value; its PostgreSQL column takes integers"),
        "{stderr}"
    );
    let pg = db::open(&Database::Postgres(url)).await.unwrap();
    assert_eq!(
        count(&pg, "products").await,
        0,
        "copied before the failure, rolled back"
    );
}
