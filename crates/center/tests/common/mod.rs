//! Test harness: runs the real `sota-center` binary on a random loopback port
//! with a temporary data directory, and stops it on drop.
//!
//! The database: SQLite in the data directory, or with `SOTA_TEST_DATABASE=postgres` a
//! database of its own (one per data directory, so a restarted center finds its data) on a
//! throwaway PostgreSQL cluster this test process starts (`sota_center::scratch_pg`). The same
//! tests run on both: `cargo xtask test` runs the API suite a second time on PostgreSQL.

#![allow(dead_code)]

pub mod events;
pub mod mosquitto;
pub mod moto;
pub mod mqtt;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_sota-center");

/// Whether this run's centers use PostgreSQL (`SOTA_TEST_DATABASE=postgres`).
pub fn on_postgres() -> bool {
    match std::env::var("SOTA_TEST_DATABASE").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Ok("") | Err(_) => false,
        Ok(other) => panic!("SOTA_TEST_DATABASE={other:?}: write postgres or sqlite"),
    }
}

/// The throwaway cluster of this test process, started at its first use.
pub fn cluster() -> &'static sota_center::scratch_pg::Cluster {
    static CLUSTER: std::sync::OnceLock<Result<sota_center::scratch_pg::Cluster, String>> =
        std::sync::OnceLock::new();
    match CLUSTER.get_or_init(sota_center::scratch_pg::Cluster::start) {
        Ok(c) => c,
        Err(e) => panic!("cannot start a throwaway PostgreSQL cluster for the tests: {e}"),
    }
}

/// The `--database` of a center on `data_dir`: `None` for SQLite in it, else its own
/// PostgreSQL database (the same one each time for one data directory).
pub fn database_for(data_dir: &Path) -> Option<String> {
    if !on_postgres() {
        return None;
    }
    static DATABASES: std::sync::Mutex<Vec<(PathBuf, String)>> = std::sync::Mutex::new(Vec::new());
    let mut known = DATABASES.lock().unwrap();
    if let Some((_, url)) = known.iter().find(|(d, _)| d == data_dir) {
        return Some(url.clone());
    }
    let url = cluster()
        .create_database()
        .unwrap_or_else(|e| panic!("cannot create a test database: {e}"));
    known.push((data_dir.to_path_buf(), url.clone()));
    Some(url)
}

/// The center's database on `data_dir`, opened by the library (for tests that reach past the API).
pub async fn open_db(data_dir: &Path) -> sota_center::db::Pool {
    let database =
        sota_center::db::Database::choose(database_for(data_dir).as_deref(), data_dir).unwrap();
    sota_center::db::open(&database).await.unwrap()
}

pub struct Center {
    pub child: Child,
    pub url: String,
    pub token: String,
    pub data_dir: PathBuf,
    pub startup: Vec<String>,
    pub http: reqwest::Client,
    /// What it prints on stdout after its banner.
    output: std::sync::Mutex<mpsc::Receiver<String>>,
    _dir: Option<tempfile::TempDir>,
}

pub fn create_token(data_dir: &Path, name: &str) -> String {
    create_token_on(data_dir, database_for(data_dir), name)
}

/// [`create_token`] in the given database (`None`: SQLite in `data_dir`).
fn create_token_on(data_dir: &Path, database: Option<String>, name: &str) -> String {
    run_cli(&["token", "create", "--name", name], data_dir, database)
}

/// Start a center on `data_dir` with extra flags; waits for its startup banner.
pub fn spawn(data_dir: &Path, token: &str, extra: &[&str]) -> (Child, String, Vec<String>) {
    spawn_env(data_dir, token, extra, &[])
}

/// [`spawn`] with extra environment variables (e.g. the `AWS_*` settings of an S3 store).
pub fn spawn_env(
    data_dir: &Path,
    token: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Child, String, Vec<String>) {
    let (child, url, startup, _) = spawn_on(data_dir, database_for(data_dir), token, extra, env);
    (child, url, startup)
}

/// [`spawn_env`] on the given database (`None`: SQLite in `data_dir`).
fn spawn_on(
    data_dir: &Path,
    database: Option<String>,
    token: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Child, String, Vec<String>, mpsc::Receiver<String>) {
    let mut child = serve_command(data_dir, database)
        .args(extra)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn sota-center");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                // Keep draining so the server never blocks on a full pipe.
                continue;
            }
        }
    });
    let mut lines = Vec::new();
    let mut url = None;
    while url.is_none() || lines.len() < 3 {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                if let Some(rest) = line.strip_prefix("sota-center listening on ") {
                    url = Some(rest.trim().to_string());
                }
                lines.push(line);
            }
            Err(_) => break,
        }
    }
    // Demo lines follow the banner immediately when seeding happened.
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
        lines.push(line);
    }
    let url = url.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("sota-center did not start; output: {lines:?}")
    });
    let _ = token;
    (child, url, lines, rx)
}

impl Center {
    pub fn start(extra: &[&str]) -> Center {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Center::start_in(dir.path(), extra);
        c._dir = Some(dir);
        c
    }

    pub fn start_in(data_dir: &Path, extra: &[&str]) -> Center {
        Center::start_in_env(data_dir, extra, &[])
    }

    /// [`Center::start_in`] with extra environment variables.
    pub fn start_in_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Center {
        Center::start_on(data_dir, database_for(data_dir), extra, env)
    }

    /// A center on `database`, which other centers of the test share (its own data directory
    /// still), with a token of its own in that database.
    pub fn start_shared(
        data_dir: &Path,
        database: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Center {
        Center::start_on(data_dir, Some(database.to_string()), extra, env)
    }

    /// A center on `database` (`None`: SQLite in `data_dir`) with a token of its own.
    fn start_on(
        data_dir: &Path,
        database: Option<String>,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Center {
        std::fs::create_dir_all(data_dir).unwrap();
        let token = create_token_on(
            data_dir,
            database.clone(),
            &format!("t{}", std::process::id() ^ rand_suffix()),
        );
        let (child, url, startup, output) = spawn_on(data_dir, database, &token, extra, env);
        Center {
            child,
            url,
            token,
            data_dir: data_dir.to_path_buf(),
            startup,
            http: reqwest::Client::new(),
            output: std::sync::Mutex::new(output),
            _dir: None,
        }
    }

    /// Wait (30 s at most) for a line of its stdout starting with `prefix` (among those read
    /// with the banner, or after).
    pub fn wait_for_line(&self, prefix: &str) -> String {
        if let Some(line) = self.startup.iter().find(|l| l.starts_with(prefix)) {
            return line.clone();
        }
        let output = self.output.lock().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match output.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(e) => panic!("no line {prefix:?} from the center ({e})"),
            }
        }
    }

    /// The embedded broker's address from the banner: (`mqtt` host:port, `ws` host:port).
    pub fn broker(&self) -> (String, String) {
        let find = |prefix: &str| {
            self.startup
                .iter()
                .find_map(|l| l.strip_prefix(prefix))
                .map(|rest| rest.trim().trim_end_matches("/mqtt").to_string())
                .unwrap_or_else(|| panic!("no {prefix:?} line in {:?}", self.startup))
        };
        (
            find("sota-center MQTT on mqtt://"),
            find("sota-center MQTT over WebSocket on ws://"),
        )
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.url)
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, self.api(path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    /// Upload a package: text fields then files.
    pub async fn upload(
        &self,
        fields: &[(&str, &str)],
        files: &[(&str, Vec<u8>)],
    ) -> (StatusCode, Value) {
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        for (name, bytes) in files {
            form = form.part(
                "file",
                reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.to_string()),
            );
        }
        let resp = self
            .http
            .post(self.api("/packages"))
            .bearer_auth(&self.token)
            .multipart(form)
            .send()
            .await
            .expect("upload");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn product(&self, key: &str) {
        let (s, b) = self
            .post(
                "/products",
                serde_json::json!({"product_key": key, "name": format!("Product {key}")}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }

    pub async fn device(&self, product: &str, key: &str, components: Value) {
        let (s, b) = self
            .put(
                &format!("/products/{product}/devices/{key}"),
                serde_json::json!({ "components": components }),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }

    /// Upload a one-file package of `product` and return its id.
    pub async fn package(
        &self,
        product: &str,
        component_type: &str,
        package_type: &str,
        source: Option<&str>,
        target: &str,
    ) -> i64 {
        let mut fields = vec![
            ("product_key", product),
            ("name", "pkg"),
            ("component_type", component_type),
            ("package_type", package_type),
            ("target_version", target),
        ];
        if let Some(s) = source {
            fields.push(("source_version", s));
        }
        let (s, b) = self.upload(&fields, &[("fw.bin", vec![7u8; 1000])]).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b["id"].as_i64().unwrap()
    }

    /// Firmware object files in the local store (ignoring directories).
    pub fn stored_files(&self) -> Vec<PathBuf> {
        files_under(&self.data_dir.join("firmware"))
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Center {
    fn drop(&mut self) {
        self.kill();
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

/// Assert an error response: status, code, and a non-empty message.
#[track_caller]
pub fn assert_error(got: &(StatusCode, Value), status: u16, code: &str) {
    assert_eq!(got.0.as_u16(), status, "body: {}", got.1);
    assert_eq!(got.1["error"], code, "body: {}", got.1);
    assert!(
        got.1["message"].as_str().is_some_and(|m| m.len() > 10),
        "message missing: {}",
        got.1
    );
}

/// Every file under `root` (none if it is missing), sorted: what a local firmware store holds.
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out)
            } else {
                out.push(p)
            }
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    out.sort();
    out
}

/// `--database DATABASE`, or nothing (SQLite in the data directory).
fn database_args(database: Option<String>) -> impl Iterator<Item = String> {
    database
        .map(|url| ["--database".to_string(), url])
        .into_iter()
        .flatten()
}

/// `sota-center serve` on `data_dir` (and `database`), every listener on a free loopback port;
/// not started yet.
pub fn serve_command(data_dir: &Path, database: Option<String>) -> Command {
    let mut command = Command::new(BIN);
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--mqtt-listen",
            "127.0.0.1:0",
        ])
        .args(["--mqtt-ws-listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(database_args(database));
    command
}

/// `sota-center ARGS --data-dir DATA_DIR [--database DATABASE]` run to its end; its stdout,
/// trimmed. Fails the test when it fails.
pub fn run_cli(args: &[&str], data_dir: &Path, database: Option<String>) -> String {
    std::fs::create_dir_all(data_dir).unwrap();
    let out = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .args(database_args(database))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
