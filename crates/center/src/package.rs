//! Version packages: 1 to 5 firmware files of one component type, full or
//! delta, with their digests computed while they stream into the store.

use object_store::path::Path as ObjectPath;
use object_store::WriteMultipart;
use sota_engine::Digester;
use sqlx::{AnyPool, Row};

use crate::error::ApiError;
use crate::instance::Instance;
use crate::product::{self, check_key};
use crate::store::FirmwareStore;
pub use sota_api::package::{
    check_file_name, ComponentType, Package, PackageFile, PackageFilter, PackageMeta, PackageType,
    EXTENSIONS, MAX_FILES, MAX_FILE_BYTES,
};

/// A file in the store: the file as the API shows it, and where its bytes
/// are (never shown).
#[derive(Debug, Clone)]
pub struct StoredFile {
    /// The file and its digests.
    pub file: PackageFile,
    /// Where the bytes are in the store.
    pub object_key: String,
}

/// Streams one file into the store under a fresh key while digesting it.
pub struct FileWriter {
    pool: AnyPool,
    store: FirmwareStore,
    key: ObjectPath,
    writer: WriteMultipart,
    digester: Digester,
    limit: u64,
    file_name: String,
}

impl FileWriter {
    /// Start writing `file_name` into the store, refusing more than `limit` bytes.
    ///
    /// The key is recorded as pending first, owned by `instance`, so whatever a
    /// crash leaves under it is removed once `instance` is gone ([`sweep_pending`]).
    pub async fn start(
        pool: &AnyPool,
        store: &FirmwareStore,
        instance: &Instance,
        file_name: &str,
        limit: u64,
    ) -> Result<Self, ApiError> {
        let key = ObjectPath::from(format!(
            "packages/{}/{}",
            crate::random_hex(16)?,
            crate::random_hex(4)?
        ));
        sqlx::query(
            "INSERT INTO pending_uploads (object_key, created_at, owner) VALUES ($1, $2, $3)",
        )
        .bind(key.as_ref())
        .bind(crate::now_text())
        .bind(instance.id())
        .execute(pool)
        .await?;
        // If this fails the pending row stays; a sweep clears it once this process is gone.
        let upload = store.objects.put_multipart(&key).await?;
        Ok(Self {
            pool: pool.clone(),
            store: store.clone(),
            key,
            writer: WriteMultipart::new(upload),
            digester: Digester::new(),
            limit,
            file_name: file_name.into(),
        })
    }

    /// Append a chunk; fails (leaving the abort to the caller) past the size limit.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), ApiError> {
        if self.digester.size() + chunk.len() as u64 > self.limit {
            return Err(ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "file_too_large",
                format!(
                    "file {:?} is larger than the {} byte limit per file; split or shrink it",
                    self.file_name, self.limit
                ),
            ));
        }
        self.digester.update(chunk);
        self.writer.write(chunk);
        self.writer.wait_for_capacity(4).await?;
        Ok(())
    }

    /// Abandon the upload: nothing becomes visible under the key.
    pub async fn abort(self) {
        match self.writer.abort().await {
            Ok(()) => forget_pending(&self.pool, self.key.as_ref()).await,
            // The pending row stays, so the next start removes the leftovers.
            Err(e) => tracing::warn!("aborting upload of {:?} failed: {e}", self.file_name),
        }
    }

    /// Complete the object (it becomes visible under its key), make it durable,
    /// and return the file.
    pub async fn finish(self, position: u32) -> Result<StoredFile, ApiError> {
        if self.digester.size() == 0 {
            self.abort().await;
            return Err(ApiError::invalid(
                "empty_file",
                "an uploaded file is empty; send the firmware bytes",
            ));
        }
        self.writer.finish().await?;
        // Before any row names the object: a power cut must not keep the row
        // and lose the bytes.
        if let Err(e) = self.store.make_durable(&self.key).await {
            if self.store.remove_leftovers(&self.key).await.is_ok() {
                forget_pending(&self.pool, self.key.as_ref()).await;
            }
            return Err(ApiError::internal(format!(
                "firmware file {:?} could not be flushed to disk: {e}; check the firmware store's disk",
                self.file_name
            )));
        }
        let d = self.digester.finish();
        Ok(StoredFile {
            file: PackageFile {
                position,
                file_name: self.file_name,
                size: d.size,
                md5: d.md5,
                crc32: d.crc32,
                sha256: d.sha256,
            },
            object_key: self.key.to_string(),
        })
    }
}

/// Delete objects whose keys are pending (a rejected upload, a deleted
/// package), then their pending rows. Best effort: what fails stays pending
/// and is retried at the next start.
pub async fn discard(pool: &AnyPool, store: &FirmwareStore, files: &[StoredFile]) {
    for f in files {
        match store
            .remove_leftovers(&ObjectPath::from(f.object_key.as_str()))
            .await
        {
            Ok(_) => forget_pending(pool, &f.object_key).await,
            Err(e) => tracing::warn!("could not delete firmware object {}: {e}", f.object_key),
        }
    }
}

/// Drop a pending row whose object is gone (best effort: a row left behind
/// only costs a no-op at the next start).
async fn forget_pending(pool: &AnyPool, key: &str) {
    if let Err(e) = sqlx::query("DELETE FROM pending_uploads WHERE object_key = $1")
        .bind(key)
        .execute(pool)
        .await
    {
        tracing::warn!("could not clear pending firmware key {key}: {e}");
    }
}

/// Remove everything a crash left under keys recorded as pending by a center
/// that is gone (its liveness lock free, or no owner recorded: rows of older
/// versions), and their rows; keys of centers still running, this one
/// included, are left to them. Run at start, before serving, and then every
/// [`SWEEP_EVERY`]. Objects this database does not list as pending are never
/// touched: they may belong to another center sharing the store, or to a newer
/// database than a restored backup. Returns how many objects were removed.
pub async fn sweep_pending(
    pool: &AnyPool,
    store: &FirmwareStore,
    instance: &Instance,
) -> Result<usize, ApiError> {
    let rows = sqlx::query("SELECT object_key, owner FROM pending_uploads")
        .fetch_all(pool)
        .await?;
    let mut alive = std::collections::HashMap::new();
    let mut removed = 0;
    for row in rows {
        let key: String = row.try_get("object_key")?;
        let owner: Option<String> = row.try_get("owner")?;
        let live = match alive.get(&owner) {
            Some(live) => *live,
            None => {
                let live = instance.is_alive(pool, owner.as_deref()).await?;
                alive.insert(owner.clone(), live);
                live
            }
        };
        if live {
            continue;
        }
        // A key a committed package names is never deleted, whatever the table says.
        let committed = sqlx::query("SELECT package_id FROM package_files WHERE object_key = $1")
            .bind(&key)
            .fetch_optional(pool)
            .await?
            .is_some();
        if !committed {
            removed += store
                .remove_leftovers(&ObjectPath::from(key.as_str()))
                .await?;
        }
        sqlx::query(
            "DELETE FROM pending_uploads WHERE object_key = $1 AND (owner = $2 OR (owner IS NULL AND $2 IS NULL))",
        )
        .bind(&key)
        .bind(&owner)
        .execute(pool)
        .await?;
    }
    Ok(removed)
}

/// How often a running center sweeps what gone centers left ([`sweep_pending`]).
pub const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Keep `instance`'s liveness lock and sweep every [`SWEEP_EVERY`], for the
/// process lifetime: another center's crash is cleaned up while this one runs.
pub async fn sweep_forever(
    pool: AnyPool,
    store: FirmwareStore,
    instance: std::sync::Arc<Instance>,
) {
    loop {
        tokio::time::sleep(SWEEP_EVERY).await;
        if let Err(e) = instance.keep_alive(&pool).await {
            tracing::warn!("{e}");
            continue;
        }
        match sweep_pending(&pool, &store, &instance).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("removed {n} firmware object(s) left by a center that stopped"),
            Err(e) => tracing::warn!("the sweep of pending uploads failed (retried): {e}"),
        }
    }
}

/// The row id of the product a package is uploaded for; an unknown or
/// malformed key is a 422 `unknown_product` / `invalid_key`.
pub async fn product_of_upload(
    conn: impl sqlx::any::AnyExecutor<'_>,
    product_key: &str,
) -> Result<i64, ApiError> {
    check_key("product_key", product_key)?;
    let row = sqlx::query("SELECT id FROM products WHERE product_key = $1")
        .bind(product_key)
        .fetch_optional(conn)
        .await?;
    match row {
        Some(row) => Ok(row.try_get("id")?),
        None => Err(ApiError::invalid(
            "unknown_product",
            format!(
                "product_key {product_key:?} names no product; a version package belongs to a product: create it first (POST /api/v1/products) or pick one from GET /api/v1/products"
            ),
        )),
    }
}

/// Record a package of `product_key` whose files are already in the store.
pub async fn commit(
    pool: &AnyPool,
    product_key: &str,
    meta: &PackageMeta,
    files: Vec<StoredFile>,
    demo: bool,
) -> Result<Package, ApiError> {
    // Before the transaction: a read first would make its write fail with
    // SQLITE_BUSY under concurrent uploads. Products are never deleted, and
    // the foreign key holds the row to it anyway.
    let product_id = product_of_upload(pool, product_key).await?;
    let now = crate::now_text();
    let mut tx = pool.begin().await?;
    let id: i64 = sqlx::query(
        "INSERT INTO packages (product_id, name, component_type, package_type, source_version, target_version, remarks, demo, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(product_id)
    .bind(&meta.name)
    .bind(meta.component_type.as_str())
    .bind(meta.package_type.as_str())
    .bind(&meta.source_version)
    .bind(&meta.target_version)
    .bind(&meta.remarks)
    .bind(i64::from(demo))
    .bind(&now)
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    for StoredFile {
        file: f,
        object_key,
    } in &files
    {
        // The object is now owned by a committed row; no sweep may take it.
        sqlx::query("DELETE FROM pending_uploads WHERE object_key = $1")
            .bind(object_key)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO package_files (package_id, position, file_name, object_key, size, md5, crc32, sha256)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(i64::from(f.position))
        .bind(&f.file_name)
        .bind(object_key)
        .bind(f.size as i64)
        .bind(&f.md5)
        .bind(&f.crc32)
        .bind(&f.sha256)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(Package {
        id,
        product_key: Some(product_key.to_string()),
        meta: meta.clone(),
        files: files.into_iter().map(|f| f.file).collect(),
        demo,
        created_at: now,
    })
}

fn meta_from_row(row: &sqlx::any::AnyRow) -> Result<PackageMeta, ApiError> {
    let ct: String = row.try_get("component_type")?;
    let pt: String = row.try_get("package_type")?;
    Ok(PackageMeta {
        name: row.try_get("name")?,
        component_type: ComponentType::parse(&ct)?,
        package_type: PackageType::parse(&pt)?,
        source_version: row.try_get("source_version")?,
        target_version: row.try_get("target_version")?,
        remarks: row.try_get("remarks")?,
    })
}

/// A package's files with their object keys: the one place a file row becomes a file.
async fn files_of(pool: &AnyPool, id: i64) -> Result<Vec<StoredFile>, ApiError> {
    let rows = sqlx::query("SELECT * FROM package_files WHERE package_id = $1 ORDER BY position")
        .bind(id)
        .fetch_all(pool)
        .await?;
    let mut files = Vec::with_capacity(rows.len());
    for row in rows {
        let size: i64 = row.try_get("size")?;
        files.push(StoredFile {
            file: PackageFile {
                position: u32::try_from(row.try_get::<i64, _>("position")?).unwrap_or(u32::MAX),
                file_name: row.try_get("file_name")?,
                size: size as u64,
                md5: row.try_get("md5")?,
                crc32: row.try_get("crc32")?,
                sha256: row.try_get("sha256")?,
            },
            object_key: row.try_get("object_key")?,
        });
    }
    Ok(files)
}

/// The columns of a package row with its product's key.
const SELECT: &str = "SELECT packages.*, products.product_key FROM packages
     LEFT JOIN products ON products.id = packages.product_id";

async fn from_row(pool: &AnyPool, row: &sqlx::any::AnyRow) -> Result<Package, ApiError> {
    let id: i64 = row.try_get("id")?;
    Ok(Package {
        id,
        product_key: row.try_get("product_key")?,
        meta: meta_from_row(row)?,
        files: files_of(pool, id)
            .await?
            .into_iter()
            .map(|f| f.file)
            .collect(),
        demo: row.try_get::<i64, _>("demo")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

/// One package, or 404.
pub async fn get(pool: &AnyPool, id: i64) -> Result<Package, ApiError> {
    let row = sqlx::query(&format!("{SELECT} WHERE packages.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no version package with id {id}; list them with GET /api/v1/packages"
            ))
        })?;
    from_row(pool, &row).await
}

/// A page of the packages, newest first; with `product`, only that product's (404 if no
/// product has that key); with `q`, only those whose name contains it.
pub async fn list(pool: &AnyPool, filter: &PackageFilter) -> Result<Vec<Package>, ApiError> {
    let product_id = match &filter.product {
        Some(key) => Some(product::get(pool, key).await?.0),
        None => None,
    };
    let (limit, offset) = crate::db::window(filter.offset, filter.limit);
    let rows = sqlx::query(&format!(
        "{SELECT} WHERE ($1 IS NULL OR packages.product_id = $1)
         AND ($2 IS NULL OR lower(packages.name) LIKE lower($2) ESCAPE '\\')
         ORDER BY packages.id DESC LIMIT $3 OFFSET $4"
    ))
    .bind(product_id)
    .bind(crate::db::search(&filter.q))
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(from_row(pool, &row).await?);
    }
    Ok(out)
}

/// Refuse a package of another product than `product_key` (or of none):
/// 422 `package_product_mismatch`, naming both products. `what` says who
/// uses the package, e.g. `component "STM32" of the plan`.
pub fn check_product(pkg: &Package, product_key: &str, what: &str) -> Result<(), ApiError> {
    match pkg.product_key.as_deref() {
        Some(own) if own == product_key => Ok(()),
        Some(own) => Err(ApiError::invalid(
            "package_product_mismatch",
            format!(
                "{what}: package {} belongs to product {own:?}, not to product {product_key:?}; a version package serves only its own product: use a package uploaded for {product_key:?}",
                pkg.id
            ),
        )),
        None => Err(ApiError::invalid(
            "package_product_mismatch",
            format!(
                "{what}: package {} belongs to no product (it was uploaded before packages belonged to products), not to product {product_key:?}; upload it again under product {product_key:?}",
                pkg.id
            ),
        )),
    }
}

/// Delete a package no plan uses; its rows go first, then its objects (pending,
/// owned by `instance`, meanwhile).
pub async fn delete(
    pool: &AnyPool,
    store: &FirmwareStore,
    instance: &Instance,
    id: i64,
) -> Result<(), ApiError> {
    get(pool, id).await?;
    let files = files_of(pool, id).await?;
    let mut tx = pool.begin().await?;
    let used: i64 = sqlx::query("SELECT COUNT(*) AS n FROM plan_components WHERE package_id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
    if used > 0 {
        return Err(ApiError::conflict(
            "package_in_use",
            format!("package {id} is used by {used} upgrade plan component(s); remove it from those plans first"),
        ));
    }
    // The objects become pending in the same transaction, so a crash before
    // they are deleted leaves them to the sweep, not orphaned.
    sqlx::query(
        "INSERT INTO pending_uploads (object_key, created_at, owner)
         SELECT object_key, $1, $2 FROM package_files WHERE package_id = $3",
    )
    .bind(crate::now_text())
    .bind(instance.id())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM packages WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    discard(pool, store, &files).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> PackageMeta {
        PackageMeta {
            name: "kept".into(),
            component_type: ComponentType::Sota,
            package_type: PackageType::Full,
            source_version: None,
            target_version: "v1".into(),
            remarks: String::new(),
        }
    }

    /// A fresh database holding product `p`.
    async fn pool_with_product(dir: &std::path::Path) -> AnyPool {
        let pool = crate::db::open(&crate::db::Database::Sqlite(dir.join("db.sqlite3")))
            .await
            .unwrap();
        let new = product::NewProduct {
            product_key: "p".into(),
            name: "P".into(),
        };
        product::create(&pool, &new, false).await.unwrap();
        pool
    }

    async fn pending_keys(pool: &AnyPool) -> Vec<String> {
        sqlx::query("SELECT object_key FROM pending_uploads")
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get("object_key"))
            .collect()
    }

    #[tokio::test]
    async fn sweep_removes_only_uncommitted_uploads_of_this_database() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool_with_product(dir.path()).await;
        let root = dir.path().join("store");
        let store = FirmwareStore::open(root.to_str().unwrap()).unwrap();
        // The center that writes, then crashes.
        let gone = Instance::start(&pool).await.unwrap();

        // Committed: its pending row goes in the commit.
        let mut w = FileWriter::start(&pool, &store, &gone, "a.bin", 1000)
            .await
            .unwrap();
        w.write(b"committed").await.unwrap();
        let kept = w.finish(0).await.unwrap();
        commit(&pool, "p", &meta(), vec![kept.clone()], false)
            .await
            .unwrap();
        // Completed but never committed (a crash before the row).
        let mut w = FileWriter::start(&pool, &store, &gone, "b.bin", 1000)
            .await
            .unwrap();
        w.write(b"orphan").await.unwrap();
        let orphan = w.finish(0).await.unwrap();
        // Interrupted mid-upload: only a staging file exists.
        let mut w = FileWriter::start(&pool, &store, &gone, "c.bin", 1000)
            .await
            .unwrap();
        w.write(b"half").await.unwrap();
        std::mem::forget(w); // as a crash would: dropping it cleans up
        assert_eq!(pending_keys(&pool).await.len(), 2);
        // Another center's finished object and in-flight staging file.
        let foreign = root.join("packages/0123456789abcdef/cafe");
        std::fs::create_dir_all(foreign.parent().unwrap()).unwrap();
        std::fs::write(&foreign, b"not ours").unwrap();
        std::fs::write(root.join("packages/0123456789abcdef/beef#1"), b"busy").unwrap();

        drop(gone);
        let this = Instance::start(&pool).await.unwrap();
        let removed = sweep_pending(&pool, &store, &this).await.unwrap();

        assert_eq!(removed, 2, "the orphan object and the staging file");
        assert!(pending_keys(&pool).await.is_empty());
        assert!(!root.join(&orphan.object_key).exists());
        assert!(root.join(&kept.object_key).exists());
        assert_eq!(std::fs::read(&foreign).unwrap(), b"not ours");
        assert!(root.join("packages/0123456789abcdef/beef#1").exists());
        let leftovers: Vec<_> = walk(&root.join("packages"))
            .into_iter()
            .filter(|p| p.to_string_lossy().contains('#') && !p.ends_with("beef#1"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[tokio::test]
    async fn deleting_a_package_leaves_its_objects_pending_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool_with_product(dir.path()).await;
        let root = dir.path().join("store");
        let store = FirmwareStore::open(root.to_str().unwrap()).unwrap();
        let this = Instance::start(&pool).await.unwrap();
        let mut w = FileWriter::start(&pool, &store, &this, "a.bin", 1000)
            .await
            .unwrap();
        w.write(b"bytes").await.unwrap();
        let file = w.finish(0).await.unwrap();
        let id = commit(&pool, "p", &meta(), vec![file.clone()], false)
            .await
            .unwrap()
            .id;
        assert!(pending_keys(&pool).await.is_empty());

        delete(&pool, &store, &this, id).await.unwrap();

        assert!(!root.join(&file.object_key).exists());
        assert!(pending_keys(&pool).await.is_empty());
    }

    fn walk(d: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }
}
