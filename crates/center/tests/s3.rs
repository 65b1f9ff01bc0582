//! The firmware store through the center's HTTP API, on each store it supports: the local
//! directory, and an S3-compatible server — moto's `moto_server` (PyPI `moto[server]`, pinned
//! in xtask/requirements-test.txt and installed into the project's `.venv` by
//! `cargo xtask setup`), started by each test on a free loopback port with a fresh bucket.
//!
//! The S3 half needs the center built with S3 support:
//! `cargo test -p sota-center --features s3 --test s3` (as `cargo xtask test` runs it).
//! Without the feature only the local half is built.
#![cfg_attr(not(feature = "s3"), allow(dead_code))]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::moto::Moto;
use common::Center;
use reqwest::{header, StatusCode};
use serde_json::{json, Value};

/// The multipart chunk of `object_store`'s `WriteMultipart` (5 MiB): a file larger than it is
/// uploaded in several parts.
const PART: usize = 5 * 1024 * 1024;
/// How long a store may take to show what the test waits for.
const WAIT: Duration = Duration::from_secs(30);

/// Where the center under test keeps firmware.
enum Store {
    /// The default: `<data dir>/firmware`.
    Local,
    /// `s3://bucket/prefix` on a moto server.
    S3 { moto: Moto, bucket: String },
}

/// The key prefix the center is given inside the bucket (`s3://bucket/PREFIX`).
const PREFIX: &str = "fleet/firmware";

impl Store {
    /// A moto server with an empty bucket.
    #[cfg(feature = "s3")]
    async fn s3() -> Store {
        let moto = Moto::start();
        let bucket = "sota-test".to_string();
        moto.create_bucket(&bucket).await;
        Store::S3 { moto, bucket }
    }

    /// The center's flags for this store.
    fn args(&self) -> Vec<String> {
        match self {
            Store::Local => Vec::new(),
            Store::S3 { bucket, .. } => vec!["--store".into(), format!("s3://{bucket}/{PREFIX}")],
        }
    }

    /// The `AWS_*` settings a center on this store runs with: moto's endpoint over plain HTTP
    /// and keys moto accepts.
    fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Store::Local => Vec::new(),
            Store::S3 { moto, .. } => moto.env(),
        }
    }

    fn start_center(&self, data_dir: &Path) -> Center {
        let args = self.args();
        let mut flags: Vec<&str> = vec!["--no-demo"];
        flags.extend(args.iter().map(String::as_str));
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Center::start_in_env(data_dir, &flags, &env)
    }

    /// Complete objects in the store.
    async fn objects(&self, data_dir: &Path) -> Vec<String> {
        match self {
            Store::Local => local_files(data_dir)
                .into_iter()
                .filter(|(name, _)| !name.contains('#'))
                .map(|(name, _)| name)
                .collect(),
            Store::S3 { moto, bucket } => {
                let xml = moto
                    .get(&format!("{bucket}?list-type=2&prefix={PREFIX}/"))
                    .await;
                elements(&xml, "Key")
            }
        }
    }

    /// What unfinished uploads hold: (where, bytes) for each local staging file or each
    /// incomplete S3 multipart upload (the sum of its parts).
    async fn unfinished(&self, data_dir: &Path) -> Vec<(String, u64)> {
        match self {
            Store::Local => local_files(data_dir)
                .into_iter()
                .filter(|(name, _)| name.contains('#'))
                .collect(),
            Store::S3 { moto, bucket } => {
                let xml = moto.get(&format!("{bucket}?uploads")).await;
                let mut out = Vec::new();
                for upload in elements(&xml, "Upload") {
                    let key = elements(&upload, "Key").concat();
                    let id = elements(&upload, "UploadId").concat();
                    let parts = moto.get(&format!("{bucket}/{key}?uploadId={id}")).await;
                    let bytes = elements(&parts, "Size")
                        .iter()
                        .map(|s| s.parse::<u64>().unwrap_or(0))
                        .sum();
                    out.push((key, bytes));
                }
                out
            }
        }
    }

    /// The number of parts an S3 object was uploaded in (from its multipart ETag,
    /// `"<md5>-<parts>"`); `None` on the local store, which has no parts to show.
    async fn parts_of_only_object(&self, data_dir: &Path) -> Option<usize> {
        let Store::S3 { moto, bucket } = self else {
            return None;
        };
        let keys = self.objects(data_dir).await;
        assert_eq!(keys.len(), 1, "{keys:?}");
        let r = moto
            .http
            .head(format!("{}/{bucket}/{}", moto.endpoint, keys[0]))
            .send()
            .await
            .expect("HEAD on moto");
        let etag = r.headers()[header::ETAG]
            .to_str()
            .unwrap()
            .trim_matches('"');
        let parts = etag.rsplit_once('-').map(|(_, n)| n.parse().unwrap());
        Some(parts.unwrap_or_else(|| panic!("ETag {etag} is not a multipart upload's")))
    }
}

/// Every file under `<data dir>/firmware`, as (path inside it, size).
fn local_files(data_dir: &Path) -> Vec<(String, u64)> {
    fn walk(root: &Path, d: &Path, out: &mut Vec<(String, u64)>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out)
            } else {
                let name = p.strip_prefix(root).unwrap().display().to_string();
                out.push((name, e.metadata().map(|m| m.len()).unwrap_or(0)));
            }
        }
    }
    let root = data_dir.join("firmware");
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out
}

/// The text of each `<tag>…</tag>` in an S3 XML answer (flat enough to need no parser).
fn elements(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(open.as_str())
        .skip(1)
        .filter_map(|s| {
            s.split_once(close.as_str())
                .map(|(inner, _)| inner.to_string())
        })
        .collect()
}

/// `n` bytes that differ at every offset a wrong range would show.
fn firmware(n: usize) -> Vec<u8> {
    (0..n as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

const PACKAGE: [(&str, &str); 5] = [
    ("product_key", "p"),
    ("name", "store test"),
    ("component_type", "SOTA"),
    ("package_type", "full"),
    ("target_version", "2"),
];

/// A package larger than two multipart chunks goes in through the API, comes out whole and
/// by ranges (across a part boundary too) through a device's link, and its delete leaves the
/// store empty.
async fn upload_download_and_delete(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let c = store.start_center(dir.path());
    c.product("p").await;
    c.device("p", "d1", json!({"MCU": "1"})).await;
    let data = firmware(2 * PART + 1_234_567);
    let (s, b) = c.upload(&PACKAGE, &[("fw.bin", data.clone())]).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let digests = sota_engine::Digester::digest(&data);
    assert_eq!(b["files"][0]["sha256"], digests.sha256);
    let id = b["id"].as_i64().unwrap();
    assert_eq!(store.objects(dir.path()).await.len(), 1);
    assert!(store.unfinished(dir.path()).await.is_empty());
    if let Some(parts) = store.parts_of_only_object(dir.path()).await {
        assert_eq!(parts, 3, "a {} byte file in 5 MiB parts", data.len());
    }

    let (s, link) = c
        .post(
            &format!("/packages/{id}/files/0/links"),
            json!({"product_key": "p", "device_key": "d1"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{link}");
    let url = link["url"].as_str().unwrap().to_string();

    let r = c.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CONTENT_LENGTH], data.len().to_string());
    assert_eq!(
        r.headers()[header::ETAG],
        format!("\"{}\"", digests.sha256).as_str()
    );
    let whole = r.bytes().await.unwrap();
    assert!(whole.as_ref() == data.as_slice(), "the whole file differs");

    let size = data.len();
    for (range, start, end) in [
        // Across the first part boundary.
        (
            format!("bytes={}-{}", PART - 1000, PART + 999),
            PART - 1000,
            PART + 1000,
        ),
        (format!("bytes={}-", size - 4096), size - 4096, size),
        ("bytes=-100".to_string(), size - 100, size),
        ("bytes=0-0".to_string(), 0, 1),
    ] {
        let r = c
            .http
            .get(&url)
            .header(header::RANGE, &range)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            r.headers()[header::CONTENT_RANGE],
            format!("bytes {start}-{}/{size}", end - 1).as_str(),
            "{range}"
        );
        assert_eq!(
            r.headers()[header::CONTENT_LENGTH],
            (end - start).to_string(),
            "{range}"
        );
        let got = r.bytes().await.unwrap();
        assert!(got.as_ref() == &data[start..end], "{range}: other bytes");
    }

    let (s, b) = c.delete(&format!("/packages/{id}")).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    assert_eq!(store.objects(dir.path()).await, Vec::<String>::new());
    assert!(store.unfinished(dir.path()).await.is_empty());
    let r = c.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::GONE);
}

/// A center killed (SIGKILL) in the middle of an upload leaves its bytes in the store as an
/// unfinished upload; the next start sweeps them, and nothing of that upload is left.
async fn an_upload_cut_by_a_crash_is_swept_at_the_next_start(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = store.start_center(dir.path());
    c.product("p").await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let sent = firmware(PART + PART / 2);
    tx.send(Ok(sent)).await.unwrap();
    // The body never ends: `tx` is held until the center is gone.
    let body = reqwest::Body::wrap_stream(tokio_stream(rx));
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in PACKAGE {
        form = form.text(k, v);
    }
    form = form.part(
        "file",
        reqwest::multipart::Part::stream(body).file_name("fw.bin"),
    );
    let upload = c
        .http
        .post(c.api("/packages"))
        .bearer_auth(&c.token)
        .multipart(form)
        .send();
    let upload = tokio::spawn(upload);

    // Wait until a whole part is in the store.
    let deadline = Instant::now() + WAIT;
    let staged = loop {
        let u = store.unfinished(dir.path()).await;
        if u.iter().map(|(_, n)| n).sum::<u64>() >= PART as u64 {
            break u;
        }
        assert!(
            Instant::now() < deadline,
            "no part of the upload reached the store within {WAIT:?}: {u:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    c.kill();
    let cut = tokio::time::timeout(WAIT, upload)
        .await
        .expect("the upload ends with the center")
        .unwrap();
    assert!(cut.is_err(), "the upload was answered: {cut:?}");
    drop(tx);
    assert_eq!(
        store.unfinished(dir.path()).await,
        staged,
        "the crash left the upload"
    );
    assert!(store.objects(dir.path()).await.is_empty());

    let c = store.start_center(dir.path());

    assert_eq!(store.unfinished(dir.path()).await, Vec::new());
    assert_eq!(store.objects(dir.path()).await, Vec::<String>::new());
    let (s, b) = c.get("/packages").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b, Value::Array(Vec::new()));
}

/// The receiving end of a channel as a stream (tokio's own wrapper is in tokio-stream,
/// which the center does not use).
fn tokio_stream<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test]
async fn local_store_upload_download_with_ranges_and_delete() {
    upload_download_and_delete(Store::Local).await;
}

#[tokio::test]
async fn local_store_upload_cut_by_a_crash_is_swept_at_start() {
    an_upload_cut_by_a_crash_is_swept_at_the_next_start(Store::Local).await;
}

#[cfg(feature = "s3")]
#[tokio::test]
async fn s3_store_multipart_upload_download_with_ranges_and_delete() {
    upload_download_and_delete(Store::s3().await).await;
}

#[cfg(feature = "s3")]
#[tokio::test]
async fn s3_store_upload_cut_by_a_crash_is_swept_at_start() {
    an_upload_cut_by_a_crash_is_swept_at_the_next_start(Store::s3().await).await;
}
