//! An S3-compatible server for the store tests: moto's `moto_server` (PyPI `moto[server]`,
//! pinned in xtask/requirements-test.txt and installed into the project's `.venv` by
//! `cargo xtask setup`), started on a free loopback port and killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

/// How long moto may take to listen.
const START: Duration = Duration::from_secs(30);

/// A `moto_server` on a free loopback port, killed on drop.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    pub http: reqwest::Client,
    /// Its output (a line per request), quoted when it fails to start.
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Moto {
    pub fn start() -> Moto {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .nth(2)
            .unwrap();
        let bin = workspace.join(".venv/bin/moto_server");
        assert!(
            bin.exists(),
            "{} is missing: the S3 store tests run against moto's S3 server from PyPI; \
             run `cargo xtask setup` (it installs xtask/requirements-test.txt into .venv)",
            bin.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("moto.log");
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::options().append(true).open(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + START;
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return moto;
            }
            let exited = moto.child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(&moto.log).unwrap_or_default();
                panic!(
                    "moto_server did not listen on port {port} within {START:?} ({exited:?}): {log}"
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Create an empty bucket.
    pub async fn create_bucket(&self, bucket: &str) {
        let r = self
            .http
            .put(format!("{}/{bucket}", self.endpoint))
            .send()
            .await
            .expect("create the bucket on moto");
        assert!(
            r.status().is_success(),
            "creating the bucket: {}",
            r.status()
        );
    }

    /// The `AWS_*` settings a center on this server runs with: its endpoint over plain HTTP
    /// and keys moto accepts.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "test-key".into()),
            ("AWS_SECRET_ACCESS_KEY", "test-secret".into()),
        ]
    }

    /// An unsigned GET (moto does not check signatures); the body of a 200.
    pub async fn get(&self, path_and_query: &str) -> String {
        let r = self
            .http
            .get(format!("{}/{path_and_query}", self.endpoint))
            .send()
            .await
            .expect("GET on moto");
        assert_eq!(r.status(), StatusCode::OK, "GET {path_and_query} on moto");
        r.text().await.unwrap()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
