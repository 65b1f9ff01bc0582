//! kill -9 while uploads and plan changes run: after restart every
//! acknowledged change is there and no half-uploaded file is visible.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{create_token, spawn, Center, BIN};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[derive(Default)]
struct Acked {
    /// package id → sha256 of its one file.
    packages: HashMap<i64, String>,
    /// plan id → (acknowledged state, state if the in-flight change landed).
    plans: HashMap<i64, (String, Option<String>)>,
}

struct Client {
    http: reqwest::Client,
    api: String,
    token: String,
}

impl Client {
    async fn upload(&self, seed: u32, size: usize) -> Result<(StatusCode, Value), reqwest::Error> {
        let data: Vec<u8> = (0..size as u32)
            .map(|i| (i.wrapping_mul(seed | 1) >> 3) as u8)
            .collect();
        let form = reqwest::multipart::Form::new()
            .text("product_key", "p")
            .text("name", format!("crash {seed}"))
            .text("component_type", "SOTA")
            .text("package_type", "full")
            .text("target_version", format!("v{seed}"))
            .part(
                "file",
                reqwest::multipart::Part::bytes(data).file_name("fw.bin"),
            );
        let r = self
            .http
            .post(format!("{}/packages", self.api))
            .bearer_auth(&self.token)
            .multipart(form)
            .send()
            .await?;
        let s = r.status();
        Ok((s, r.json().await.unwrap_or(Value::Null)))
    }

    async fn post(&self, path: &str, body: Value) -> Result<(StatusCode, Value), reqwest::Error> {
        let r = self
            .http
            .post(format!("{}{path}", self.api))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let s = r.status();
        Ok((s, r.json().await.unwrap_or(Value::Null)))
    }

    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.api))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

async fn uploads(c: Arc<Client>, acked: Arc<Mutex<Acked>>, worker: u32) {
    for n in 0.. {
        let seed = worker * 100_000 + n;
        let size = 200_000 + (seed as usize % 7) * 150_000;
        match c.upload(seed, size).await {
            Ok((StatusCode::CREATED, b)) => {
                let sha = b["files"][0]["sha256"].as_str().unwrap().to_string();
                acked
                    .lock()
                    .unwrap()
                    .packages
                    .insert(b["id"].as_i64().unwrap(), sha);
            }
            Ok((s, b)) => panic!("upload refused: {s} {b}"),
            Err(_) => return, // the server died
        }
    }
}

async fn plan_changes(c: Arc<Client>, acked: Arc<Mutex<Acked>>, package_id: i64) {
    for n in 0.. {
        let body = json!({"name": format!("crash plan {n}"), "product_key": "p", "time_zone": "Europe/Berlin", "upgrade_mode": "silent",
            "whitelist": (0..200).map(|i| format!("dev{i}")).collect::<Vec<_>>(),
            "components": [{"identity": "MCU", "component_type": "SOTA", "package_id": package_id}]});
        let Ok((s, b)) = c.post("/plans", body).await else {
            return;
        };
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let id = b["id"].as_i64().unwrap();
        acked
            .lock()
            .unwrap()
            .plans
            .insert(id, ("draft".into(), Some("active".into())));
        let Ok((s, _)) = c.post(&format!("/plans/{id}/activate"), json!({})).await else {
            return;
        };
        assert_eq!(s, StatusCode::OK);
        acked
            .lock()
            .unwrap()
            .plans
            .insert(id, ("active".into(), Some("paused".into())));
        let Ok((s, _)) = c.post(&format!("/plans/{id}/pause"), json!({})).await else {
            return;
        };
        assert_eq!(s, StatusCode::OK);
        acked
            .lock()
            .unwrap()
            .plans
            .insert(id, ("paused".into(), None));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_change_and_shows_no_half_file() {
    let dir = tempfile::tempdir().unwrap();
    let token = create_token(dir.path(), "crash");
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut base_package = None;
    for round in 0..3 {
        let (mut child, url, _) = spawn(dir.path(), &token, &["--no-demo"]);
        let c = Arc::new(Client {
            http: reqwest::Client::new(),
            api: format!("{url}/api/v1"),
            token: token.clone(),
        });

        // Everything acknowledged before the last kill is there.
        check(&c, &acked, dir.path()).await;

        if round == 0 {
            c.post("/products", json!({"product_key": "p", "name": "crash"}))
                .await
                .unwrap();
            let (_, b) = c.upload(1, 1000).await.unwrap();
            base_package = b["id"].as_i64();
            acked.lock().unwrap().packages.insert(
                b["id"].as_i64().unwrap(),
                b["files"][0]["sha256"].as_str().unwrap().into(),
            );
        }
        let tasks = vec![
            tokio::spawn(uploads(c.clone(), acked.clone(), round * 10 + 1)),
            tokio::spawn(uploads(c.clone(), acked.clone(), round * 10 + 2)),
            tokio::spawn(plan_changes(
                c.clone(),
                acked.clone(),
                base_package.unwrap(),
            )),
        ];
        tokio::time::sleep(Duration::from_millis(1500 + 400 * round as u64)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(20), t)
                .await
                .expect("client tasks end")
                .expect("no task panicked");
        }
    }
    let (mut child, url, _) = spawn(dir.path(), &token, &["--no-demo"]);
    let c = Client {
        http: reqwest::Client::new(),
        api: format!("{url}/api/v1"),
        token,
    };
    check(&c, &acked, dir.path()).await;
    let a = acked.lock().unwrap();
    eprintln!(
        "crash test: {} acknowledged packages, {} plans survived 3 kill -9",
        a.packages.len(),
        a.plans.len()
    );
    assert!(
        a.packages.len() > 5 && a.plans.len() > 3,
        "the load was too light to mean anything: {} packages, {} plans",
        a.packages.len(),
        a.plans.len()
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = BIN;
}

async fn check(c: &Client, acked: &Mutex<Acked>, dir: &std::path::Path) {
    let packages = c.get("/packages").await;
    let packages = packages.as_array().unwrap();
    let by_id: HashMap<i64, &Value> = packages
        .iter()
        .map(|p| (p["id"].as_i64().unwrap(), p))
        .collect();
    let expected: Vec<(i64, String)> = acked
        .lock()
        .unwrap()
        .packages
        .iter()
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    for (id, sha) in expected {
        let p = by_id
            .get(&id)
            .unwrap_or_else(|| panic!("acknowledged package {id} is missing after kill -9"));
        assert_eq!(p["files"][0]["sha256"], sha);
    }
    // Every visible package's file is complete: the store holds exactly the
    // listed objects (crash leftovers are swept at start) and each reads back whole.
    let files = common::files_under(&dir.join("firmware"));
    assert_eq!(
        files.len(),
        packages.len(),
        "store objects {files:?} vs {} packages",
        packages.len()
    );
    for f in &files {
        assert!(
            !f.to_string_lossy().contains('#'),
            "staging file left: {f:?}"
        );
    }
    let mut on_disk: Vec<String> = files
        .iter()
        .map(|f| sota_engine::Digester::digest(&std::fs::read(f).unwrap()).sha256)
        .collect();
    let mut listed: Vec<String> = packages
        .iter()
        .map(|p| p["files"][0]["sha256"].as_str().unwrap().to_string())
        .collect();
    on_disk.sort();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "a stored object is not the complete file of its package"
    );
    let plans = c.get("/plans").await;
    let states: HashMap<i64, String> = plans
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_i64().unwrap(),
                p["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (id, (state, maybe_next)) in acked.lock().unwrap().plans.iter() {
        let got = states
            .get(id)
            .unwrap_or_else(|| panic!("acknowledged plan {id} is missing after kill -9"));
        assert!(
            got == state || maybe_next.as_ref() == Some(got),
            "plan {id}: acknowledged {state}, found {got}"
        );
    }
}

/// Power loss cannot be simulated here, so this watches the system calls: the
/// firmware file and every directory up to the store root are fsynced, and the
/// database commit that names the file comes after. Needs `strace` (Debian
/// package `strace`) and ptrace permission.
#[tokio::test]
async fn firmware_file_is_fsynced_before_its_package_row_commits() {
    let c = Center::start(&["--no-demo"]);
    c.product("p").await;
    let log = c.data_dir.join("strace.log");
    let mut strace = std::process::Command::new("strace")
        .args(["-f", "-y", "-e", "trace=fsync,fdatasync", "-o"])
        .arg(&log)
        .args(["-p", &c.child.id().to_string()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("this test needs strace: apt-get install strace");
    // strace reports on stderr once it has attached.
    let mut stderr = std::io::BufReader::new(strace.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    assert!(line.contains("attached"), "strace could not attach: {line}");
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));

    let (s, b) = c
        .upload(
            &[
                ("product_key", "p"),
                ("name", "durable"),
                ("component_type", "SOTA"),
                ("package_type", "full"),
                ("target_version", "v1"),
            ],
            &[("fw.bin", vec![3u8; 5000])],
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let files = c.stored_files();
    assert_eq!(files.len(), 1, "{files:?}");
    let file = files[0].canonicalize().unwrap();
    let mut c = c;
    c.kill(); // strace ends with its tracee
    strace.wait().unwrap();

    let log = std::fs::read_to_string(&log).unwrap();
    let synced: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("sync(") && l.ends_with("= 0"))
        .collect();
    let position = |path: &std::path::Path| {
        let needle = format!("<{}>)", path.display());
        synced.iter().position(|l| l.contains(&needle))
    };
    let file_synced = position(&file).unwrap_or_else(|| panic!("{file:?} never fsynced:\n{log}"));
    let root = c.data_dir.join("firmware").canonicalize().unwrap();
    let mut dir = file.parent().unwrap();
    loop {
        let at = position(dir).unwrap_or_else(|| panic!("directory {dir:?} never fsynced:\n{log}"));
        assert!(at > file_synced, "{dir:?} synced before the file:\n{log}");
        if dir == root {
            break;
        }
        dir = dir.parent().unwrap();
    }
    assert!(
        synced[file_synced..]
            .iter()
            .any(|l| l.contains("center.sqlite3-wal>")),
        "no database commit after the file was synced:\n{log}"
    );
}

/// A second center sharing the store, or a restored older database, must not
/// make a restart delete firmware this database never wrote.
#[tokio::test]
async fn objects_this_database_does_not_know_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Center::start_in(dir.path(), &["--no-demo"]);
    c.product("p").await;
    let id = c.package("p", "SOTA", "full", None, "v1").await;
    c.kill();
    let foreign_dir = dir
        .path()
        .join("firmware/packages/0123456789abcdef0123456789abcdef");
    std::fs::create_dir_all(&foreign_dir).unwrap();
    std::fs::write(foreign_dir.join("cafe0001"), b"another center's firmware").unwrap();
    std::fs::write(foreign_dir.join("cafe0002#1"), b"its upload in progress").unwrap();

    let c = Center::start_in(dir.path(), &["--no-demo"]);

    assert_eq!(
        std::fs::read(foreign_dir.join("cafe0001")).unwrap(),
        b"another center's firmware"
    );
    assert!(foreign_dir.join("cafe0002#1").exists());
    let (s, b) = c.get(&format!("/packages/{id}")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(c.stored_files().len(), 3, "{:?}", c.stored_files());
}
