//! The firmware store: where package files live (an `object_store`).
//!
//! Uploads go through multipart writes, which both the local directory and S3
//! make visible under the final key only when complete — a crash mid-upload
//! leaves no half file under a real key. On a local directory a completed
//! object is also fsynced ([`FirmwareStore::make_durable`]) before its package
//! row is committed, because `object_store` 0.12 never syncs. What an upload
//! that was never committed leaves is removed at start: its key is recorded as
//! pending in the database before the upload begins (`package::sweep_pending`),
//! and nothing else in the store is ever swept. On S3 a crash mid-upload leaves
//! the parts of an unfinished multipart upload, which S3 keeps (and bills)
//! until aborted: the sweep aborts those of the pending key too.

use std::path::PathBuf;
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The local directory could not be created or used.
    #[error("cannot use the firmware directory {path}: {message}")]
    Local {
        /// Directory.
        path: String,
        /// Cause.
        message: String,
    },
    /// S3 was asked for but is unavailable or misconfigured.
    #[error("{0}")]
    S3(String),
}

/// The configured firmware store.
#[derive(Clone, Debug)]
pub struct FirmwareStore {
    /// The object store itself.
    pub objects: Arc<dyn ObjectStore>,
    /// For a local directory store: its root, so downloads can read files directly.
    pub local_root: Option<PathBuf>,
    /// For an S3 store: what finds and aborts unfinished multipart uploads.
    #[cfg(feature = "s3")]
    s3_uploads: Option<s3::Uploads>,
}

impl FirmwareStore {
    /// Open the store described by `spec` (a path, or `s3://bucket/prefix`).
    pub fn open(spec: &str) -> Result<Self, StoreError> {
        if spec.starts_with("s3://") {
            return Self::open_s3(spec);
        }
        let root = PathBuf::from(spec);
        let local = |message: String| StoreError::Local {
            path: root.display().to_string(),
            message,
        };
        std::fs::create_dir_all(&root).map_err(|e| local(e.to_string()))?;
        let root = root.canonicalize().map_err(|e| local(e.to_string()))?;
        let fs = LocalFileSystem::new_with_prefix(&root).map_err(|e| local(e.to_string()))?;
        Ok(Self {
            objects: Arc::new(fs),
            local_root: Some(root),
            #[cfg(feature = "s3")]
            s3_uploads: None,
        })
    }

    #[cfg(feature = "s3")]
    fn open_s3(spec: &str) -> Result<Self, StoreError> {
        let url = url::Url::parse(spec).map_err(|e| {
            StoreError::S3(format!("bad S3 URL {spec}: {e}; use s3://bucket/prefix"))
        })?;
        let connector = s3::KeepClient::default();
        let builder = object_store::aws::AmazonS3Builder::from_env()
            .with_url(spec)
            .with_http_connector(connector.clone());
        let amazon = builder.clone().build().map_err(|e| {
            StoreError::S3(format!(
                "cannot configure S3 from {spec} and AWS_* variables: {e}"
            ))
        })?;
        let prefix = url.path().trim_matches('/').to_string();
        let bucket = url.host_str().unwrap_or_default();
        let s3_uploads = s3::Uploads::new(&builder, &amazon, &connector, bucket, &prefix);
        if s3_uploads.is_none() {
            tracing::warn!(
                "{spec}: unfinished multipart uploads cannot be listed on this bucket, so a crash \
                 mid-upload leaves its parts; add a lifecycle rule that aborts incomplete \
                 multipart uploads (e.g. after 1 day)"
            );
        }
        let objects: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(amazon)
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(
                amazon,
                prefix.as_str(),
            ))
        };
        Ok(Self {
            objects,
            local_root: None,
            s3_uploads,
        })
    }

    #[cfg(not(feature = "s3"))]
    fn open_s3(spec: &str) -> Result<Self, StoreError> {
        Err(StoreError::S3(format!(
            "{spec}: this sota-center was built without S3 support; rebuild with `cargo build -p sota-center --release --features s3`"
        )))
    }

    /// Make a completed object survive power loss before a database row names it.
    ///
    /// `LocalFileSystem` in object_store 0.12 writes and renames without any
    /// fsync, so a power cut could keep the committed row but lose the file or
    /// its directory entry. This syncs the file, then every directory from its
    /// parent up to the store root (the key's directories are created by the
    /// upload). A no-op for S3, where a completed upload is already as durable
    /// as the service makes it.
    pub async fn make_durable(&self, key: &ObjectPath) -> Result<(), std::io::Error> {
        let Some(root) = self.local_root.clone() else {
            return Ok(());
        };
        let file = key
            .parts()
            .fold(root.clone(), |p, part| p.join(part.as_ref()));
        tokio::task::spawn_blocking(move || sync_file_and_dirs(&root, &file))
            .await
            .map_err(std::io::Error::other)?
    }

    /// Remove what an unfinished upload of `key` may have left: the object
    /// and, on a local store, its staging files (`<key>#<n>`), on S3 its
    /// unfinished multipart uploads. Only this key is touched, so another
    /// writer's objects and uploads are safe. Returns how many things were removed.
    pub async fn remove_leftovers(&self, key: &ObjectPath) -> Result<usize, object_store::Error> {
        let mut removed = match self.objects.delete(key).await {
            Ok(()) => 1,
            Err(object_store::Error::NotFound { .. }) => 0,
            Err(e) => return Err(e),
        };
        if let Some(root) = &self.local_root {
            let file = key
                .parts()
                .fold(root.clone(), |p, part| p.join(part.as_ref()));
            removed += remove_staging_files(&file);
        }
        #[cfg(feature = "s3")]
        if let Some(uploads) = &self.s3_uploads {
            removed += uploads.abort(key).await?;
        }
        Ok(removed)
    }
}

/// Unfinished S3 multipart uploads. `object_store` can abort an upload whose id
/// it is handed but cannot list them, so the listing (`ListMultipartUploads`) is
/// one signed request made here, with the store's own credentials and HTTP client.
#[cfg(feature = "s3")]
mod s3 {
    use std::sync::{Arc, Mutex};

    use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, AwsAuthorizer};
    use object_store::client::{HttpClient, HttpConnector, HttpRequestBody, ReqwestConnector};
    use object_store::multipart::MultipartStore;
    use object_store::path::Path as ObjectPath;
    use object_store::ClientOptions;

    /// Builds the S3 client as `object_store` would and keeps it, so the listing
    /// goes through the same proxy, TLS and plain-HTTP settings. The store's own
    /// client is the last one `AmazonS3Builder::build` connects (credential
    /// providers, if any, connect first).
    #[derive(Debug, Default, Clone)]
    pub struct KeepClient(Arc<Mutex<Option<HttpClient>>>);

    impl HttpConnector for KeepClient {
        fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
            let client = ReqwestConnector::default().connect(options)?;
            if let Ok(mut kept) = self.0.lock() {
                *kept = Some(client.clone());
            }
            Ok(client)
        }
    }

    /// Finds and aborts the unfinished multipart uploads of one key.
    #[derive(Debug, Clone)]
    pub struct Uploads {
        s3: AmazonS3,
        http: HttpClient,
        /// `https://s3.<region>.amazonaws.com/<bucket>`, `<endpoint>/<bucket>`, or
        /// the endpoint itself for virtual-hosted requests: as `object_store` builds it.
        bucket_url: String,
        region: String,
        /// The store's key prefix inside the bucket (`s3://bucket/<prefix>`).
        prefix: ObjectPath,
        sign: bool,
    }

    impl Uploads {
        /// `None` where the bucket's address is not the plain one (S3 Express
        /// directory buckets); there a bucket lifecycle rule must clean up.
        pub fn new(
            builder: &AmazonS3Builder,
            s3: &AmazonS3,
            connector: &KeepClient,
            bucket: &str,
            prefix: &str,
        ) -> Option<Self> {
            let config = |key| builder.get_config_value(&key);
            let yes = |key| config(key).is_some_and(|v| v == "true");
            if yes(AmazonS3ConfigKey::S3Express) {
                return None;
            }
            let region = config(AmazonS3ConfigKey::Region).unwrap_or_else(|| "us-east-1".into());
            let virtual_hosted = yes(AmazonS3ConfigKey::VirtualHostedStyleRequest);
            let bucket_url = match (config(AmazonS3ConfigKey::Endpoint), virtual_hosted) {
                (Some(endpoint), true) => endpoint,
                (Some(endpoint), false) => format!("{}/{bucket}", endpoint.trim_end_matches('/')),
                (None, true) => format!("https://{bucket}.s3.{region}.amazonaws.com"),
                (None, false) => format!("https://s3.{region}.amazonaws.com/{bucket}"),
            };
            let http = connector.0.lock().ok()?.clone()?;
            Some(Self {
                s3: s3.clone(),
                http,
                bucket_url,
                region,
                prefix: ObjectPath::from(prefix),
                sign: !yes(AmazonS3ConfigKey::SkipSignature),
            })
        }

        /// Abort every unfinished multipart upload of exactly `key` (a key of the
        /// prefixed store); returns how many.
        pub async fn abort(&self, key: &ObjectPath) -> object_store::Result<usize> {
            let full: ObjectPath = self.prefix.parts().chain(key.parts()).collect();
            let mut aborted = 0;
            for id in self.list(&full).await? {
                self.s3.abort_multipart(&full, &id).await?;
                aborted += 1;
            }
            Ok(aborted)
        }

        /// The upload ids of `key` (the listing is by prefix; only exact matches count).
        async fn list(&self, key: &ObjectPath) -> object_store::Result<Vec<String>> {
            let mut url = url::Url::parse(&self.bucket_url).map_err(error)?;
            url.query_pairs_mut()
                .append_pair("uploads", "")
                .append_pair("prefix", key.as_ref());
            let mut request = axum::http::Request::get(url.as_str())
                .body(HttpRequestBody::empty())
                .map_err(error)?;
            if self.sign {
                let credential = self.s3.credentials().get_credential().await?;
                AwsAuthorizer::new(&credential, "s3", &self.region).authorize(&mut request, None);
            }
            let response = self.http.execute(request).await.map_err(error)?;
            let status = response.status();
            let body = response.into_body().bytes().await.map_err(error)?;
            let xml = String::from_utf8_lossy(&body);
            if !status.is_success() {
                return Err(error(format!(
                    "listing the unfinished uploads of {key} answered {status}: {xml}"
                )));
            }
            let mine = |upload: &&str| {
                elements(upload, "Key")
                    .iter()
                    .any(|k| unescape(k) == key.as_ref())
            };
            Ok(elements(&xml, "Upload")
                .into_iter()
                .filter(mine)
                .filter_map(|upload| elements(upload, "UploadId").first().map(|id| unescape(id)))
                .collect())
        }
    }

    fn error(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: e.into(),
        }
    }

    /// The contents of each `<tag>…</tag>` of a flat S3 answer.
    fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        xml.split(open.as_str())
            .skip(1)
            .filter_map(|s| s.split_once(close.as_str()).map(|(inner, _)| inner))
            .collect()
    }

    /// XML's five predefined entities (S3 escapes keys in its answers).
    fn unescape(s: &str) -> String {
        s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&")
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn uploads_are_read_from_a_listing() {
            let xml = "<ListMultipartUploadsResult><Bucket>b</Bucket>\
                <Upload><Key>p/packages/a/b</Key><UploadId>id-1</UploadId></Upload>\
                <Upload><Key>p/packages/a/bc</Key><UploadId>id-2</UploadId></Upload>\
                <Upload><Key>a&amp;b</Key><UploadId>x&lt;y</UploadId></Upload>\
                </ListMultipartUploadsResult>";
            let keys: Vec<String> = elements(xml, "Key").into_iter().map(unescape).collect();
            assert_eq!(keys, ["p/packages/a/b", "p/packages/a/bc", "a&b"]);
            let ids: Vec<String> = elements(xml, "UploadId")
                .into_iter()
                .map(unescape)
                .collect();
            assert_eq!(ids, ["id-1", "id-2", "x<y"]);
        }
    }
}

/// fsync `file`, then each directory from its parent up to and including `root`.
fn sync_file_and_dirs(root: &std::path::Path, file: &std::path::Path) -> std::io::Result<()> {
    let with_path = |path: &std::path::Path, e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("cannot sync {}: {e}", path.display()))
    };
    std::fs::File::open(file)
        .and_then(|f| f.sync_all())
        .map_err(|e| with_path(file, e))?;
    if !cfg!(unix) {
        // Only POSIX systems can open and fsync a directory.
        return Ok(());
    }
    let mut dir = file.parent();
    while let Some(d) = dir {
        // Opening a directory read-only and calling fsync on it is how POSIX
        // persists its entries; Rust has no dedicated API for it.
        std::fs::File::open(d)
            .and_then(|f| f.sync_all())
            .map_err(|e| with_path(d, e))?;
        if d == root {
            break;
        }
        dir = d.parent();
    }
    Ok(())
}

/// The local store stages a multipart upload of `file` as `<file>#<n>`; a
/// crash can leave them behind. They are never listed, but take disk space.
fn remove_staging_files(file: &std::path::Path) -> usize {
    let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
        return 0;
    };
    let mut prefix = name.to_os_string();
    prefix.push("#");
    let prefix = prefix.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn make_durable_syncs_a_local_object_and_names_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = FirmwareStore::open(dir.path().to_str().unwrap()).unwrap();
        let key = ObjectPath::from("packages/abc/def");
        store
            .objects
            .put(&key, bytes::Bytes::from_static(b"firmware").into())
            .await
            .unwrap();
        store.make_durable(&key).await.unwrap();

        let err = store
            .make_durable(&ObjectPath::from("packages/abc/gone"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        assert!(err.to_string().contains("gone"), "{err}");
    }
}
