//! The firmware store: where package files live (an `object_store`).
//!
//! Uploads go through multipart writes, which both the local directory and S3
//! make visible under the final key only when complete — a crash mid-upload
//! leaves no half file under a real key. On a local directory a completed
//! object is also fsynced ([`FirmwareStore::make_durable`]) before its package
//! row is committed, because `object_store` 0.12 never syncs. What an upload
//! that was never committed leaves is removed at start: its key is recorded as
//! pending in the database before the upload begins (`package::sweep_pending`),
//! and nothing else in the store is ever swept.

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
    /// and, on a local store, its staging files (`<key>#<n>`). Only this key
    /// is touched, so another writer's objects and uploads are safe. Returns
    /// how many things were removed.
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
        Ok(removed)
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
