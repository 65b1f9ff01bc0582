//! The metadata database: SQLite through sqlx, schema by embedded migrations.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The file could not be opened or created.
    #[error("cannot open the metadata database {path}: {source}; check that the data directory exists and is writable")]
    Open {
        /// The SQLite file.
        path: String,
        /// Cause.
        source: sqlx::Error,
    },
    /// A migration failed.
    #[error(
        "cannot migrate the metadata database: {0}; the file may come from a newer sota-center"
    )]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("metadata database error: {0}")]
    Query(#[from] sqlx::Error),
}

/// The `LIMIT` and `OFFSET` of one page of a list (products, packages, plans): 1 to 1000
/// rows when a limit is asked for, every row (SQLite's `LIMIT -1`) without one.
pub fn window(offset: Option<u32>, limit: Option<u32>) -> (i64, i64) {
    (
        limit.map_or(-1, |l| i64::from(l.clamp(1, 1000))),
        i64::from(offset.unwrap_or(0)),
    )
}

/// A search text that filters, or `None` for an absent or empty one.
pub fn search(q: &Option<String>) -> Option<&str> {
    q.as_deref().filter(|q| !q.is_empty())
}

/// Open (creating if missing) and migrate the SQLite file at `path`.
pub async fn open(path: &Path) -> Result<SqlitePool, DbError> {
    let open_err = |source| DbError::Open {
        path: path.display().to_string(),
        source,
    };
    let url = format!("sqlite://{}", path.display());
    let options = SqliteConnectOptions::from_str(&url)
        .map_err(open_err)?
        .create_if_missing(true)
        // WAL + FULL: a committed row survives a kill -9 or power loss (given a
        // disk that honours flushes). Firmware files are made durable by the
        // store before a row names them (`FirmwareStore::make_durable`).
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(15))
        .connect_with(options)
        .await
        .map_err(open_err)?;
    sqlx::migrate!("./migrations").run(&pool).await?;
    Ok(pool)
}

/// A setting, created with `init` on first use (so it is stable across restarts).
pub async fn setting_or_init(
    pool: &SqlitePool,
    name: &str,
    init: impl FnOnce() -> String,
) -> Result<String, sqlx::Error> {
    if let Some(row) = sqlx::query("SELECT value FROM settings WHERE name = ?")
        .bind(name)
        .fetch_optional(pool)
        .await?
    {
        return row.try_get("value");
    }
    sqlx::query("INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .bind(init())
        .execute(pool)
        .await?;
    let row = sqlx::query("SELECT value FROM settings WHERE name = ?")
        .bind(name)
        .fetch_one(pool)
        .await?;
    row.try_get("value")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema before packages belonged to products (migrations 1–4).
    async fn before_products(path: &Path) -> SqlitePool {
        let mut old = sqlx::migrate!("./migrations");
        old.migrations = old
            .migrations
            .iter()
            .filter(|m| m.version < 5)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .unwrap()
            .create_if_missing(true)
            .foreign_keys(true);
        let pool = SqlitePool::connect_with(options).await.unwrap();
        old.run(&pool).await.unwrap();
        pool
    }

    async fn exec(pool: &SqlitePool, sql: &str) {
        for statement in sql.split(';').filter(|s| !s.trim().is_empty()) {
            sqlx::query(statement).execute(pool).await.unwrap();
        }
    }

    async fn product_of(pool: &SqlitePool, package: i64) -> Option<String> {
        sqlx::query(
            "SELECT products.product_key FROM packages LEFT JOIN products ON products.id = packages.product_id WHERE packages.id = ?",
        )
        .bind(package)
        .fetch_one(pool)
        .await
        .unwrap()
        .get("product_key")
    }

    const PACKAGES: &str = "
        INSERT INTO packages (id, name, component_type, package_type, target_version, created_at) VALUES
            (1, 'shared', 'SOTA', 'full', '2', 't'), (2, 'verified', 'SOTA', 'full', '2', 't'),
            (3, 'unused', 'SOTA', 'full', '2', 't'), (4, 'planned and verified', 'SOTA', 'full', '2', 't')";

    #[tokio::test]
    async fn old_packages_take_the_product_of_their_oldest_plan_then_verification() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        let pool = before_products(&path).await;
        exec(
            &pool,
            "
            INSERT INTO products (id, product_key, name, product_secret, created_at) VALUES
                (1, 'p1', 'P1', 's', 't'), (2, 'p2', 'P2', 's', 't');
            INSERT INTO devices (id, product_id, device_key, registered_at, last_seen_at) VALUES
                (1, 1, 'd1', 't', 't'), (2, 2, 'd2', 't', 't')",
        )
        .await;
        exec(&pool, PACKAGES).await;
        exec(&pool, "
            INSERT INTO plans (id, name, product_id, time_zone, upgrade_mode, min_battery_percent, min_signal_dbm,
                               space_needed_bytes, download_retries, state, created_at, updated_at) VALUES
                (10, 'older', 2, 'UTC', 'silent', 0, 0, 0, 0, 'active', 't', 't'),
                (11, 'newer', 1, 'UTC', 'silent', 0, 0, 0, 0, 'draft', 't', 't');
            INSERT INTO plan_components (plan_id, identity, component_type, package_id) VALUES
                (11, 'A', 'SOTA', 1), (10, 'A', 'SOTA', 1), (11, 'B', 'SOTA', 4);
            INSERT INTO verifications (package_id, device_id, component_identity, outcome, created_at) VALUES
                (2, 2, 'A', 'pending', 't'), (2, 1, 'A', 'pending', 't'), (4, 2, 'A', 'pending', 't')").await;
        pool.close().await;

        let pool = open(&path).await.unwrap();

        assert_eq!(
            product_of(&pool, 1).await.as_deref(),
            Some("p2"),
            "the oldest plan's product"
        );
        assert_eq!(
            product_of(&pool, 2).await.as_deref(),
            Some("p2"),
            "the oldest job's device's"
        );
        assert_eq!(
            product_of(&pool, 3).await,
            None,
            "two products, no use: not guessed"
        );
        assert_eq!(
            product_of(&pool, 4).await.as_deref(),
            Some("p1"),
            "a plan wins over a job"
        );
    }

    #[tokio::test]
    async fn with_one_product_every_old_package_is_that_products() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        let pool = before_products(&path).await;
        exec(&pool, "INSERT INTO products (id, product_key, name, product_secret, created_at) VALUES (7, 'only', 'Only', 's', 't')").await;
        exec(&pool, PACKAGES).await;
        pool.close().await;

        let pool = open(&path).await.unwrap();

        for id in 1..=4 {
            assert_eq!(product_of(&pool, id).await.as_deref(), Some("only"));
        }
    }
}
