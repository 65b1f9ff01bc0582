//! The firmware store: where package files live (an `object_store`).
//!
//! Uploads go through multipart writes, which both the local directory and S3
//! make visible under the final key only when complete — a crash mid-upload
//! leaves no half file under a real key. Objects whose package row was never
//! committed are swept at start ([`FirmwareStore::sweep_orphans`]).

use std::path::PathBuf;
use std::sync::Arc;

use futures::TryStreamExt;
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
        })
    }

    #[cfg(feature = "s3")]
    fn open_s3(spec: &str) -> Result<Self, StoreError> {
        let url = url::Url::parse(spec).map_err(|e| {
            StoreError::S3(format!("bad S3 URL {spec}: {e}; use s3://bucket/prefix"))
        })?;
        let s3 = object_store::aws::AmazonS3Builder::from_env()
            .with_url(spec)
            .build()
            .map_err(|e| {
                StoreError::S3(format!(
                    "cannot configure S3 from {spec} and AWS_* variables: {e}"
                ))
            })?;
        let prefix = url.path().trim_matches('/').to_string();
        let objects: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(s3, prefix.as_str()))
        };
        Ok(Self {
            objects,
            local_root: None,
        })
    }

    #[cfg(not(feature = "s3"))]
    fn open_s3(spec: &str) -> Result<Self, StoreError> {
        Err(StoreError::S3(format!(
            "{spec}: this sota-center was built without S3 support; rebuild with `cargo build -p sota-center --release --features s3`"
        )))
    }

    /// Delete objects under `packages/` that no committed package row names
    /// (left by a crash between the upload and its database commit).
    pub async fn sweep_orphans(
        &self,
        known: &std::collections::HashSet<String>,
    ) -> Result<usize, object_store::Error> {
        let prefix = ObjectPath::from("packages");
        let listed: Vec<_> = self.objects.list(Some(&prefix)).try_collect().await?;
        let mut removed = 0;
        for meta in listed {
            if !known.contains(meta.location.as_ref()) {
                self.objects.delete(&meta.location).await?;
                removed += 1;
            }
        }
        if let Some(root) = &self.local_root {
            removed += remove_staging_files(&root.join("packages"));
        }
        Ok(removed)
    }
}

/// The local store stages multipart uploads as `<key>#<n>` files; a crash can
/// leave them behind. They are never listed, but they take disk space.
fn remove_staging_files(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            removed += remove_staging_files(&path);
        } else if entry.file_name().to_string_lossy().contains('#')
            && std::fs::remove_file(&path).is_ok()
        {
            removed += 1;
        }
    }
    removed
}
