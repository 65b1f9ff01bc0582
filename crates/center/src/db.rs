//! The metadata database: SQLite (the default) or PostgreSQL, through sqlx's `Any` driver so
//! both run one set of queries (`$1, $2…` placeholders, which SQLite accepts too), with the
//! schema by embedded migrations, one folder per backend (`migrations/{sqlite,postgres}`, the
//! same versions).
//!
//! What differs between the backends is kept here: how a connection is set up
//! ([`open`]), how a write transaction starts ([`begin_write`]), and the native pool the push
//! cycle's scan reads through ([`Native`]).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool, Executor, Row};

/// The pool every query of the center runs on, whichever the backend.
pub type Pool = AnyPool;

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The file could not be opened or created, or the server not reached.
    #[error("cannot open the metadata database {path}: {source}; check that the data directory exists and is writable, or that the PostgreSQL server is reachable with these credentials")]
    Open {
        /// The SQLite file, or the PostgreSQL URL without its password.
        path: String,
        /// Cause.
        source: sqlx::Error,
    },
    /// `--database` is neither a PostgreSQL URL nor a SQLite path.
    #[error("--database {0:?} is not a database: write postgres://user:password@host:port/database, or leave it out for SQLite in the data directory")]
    Url(String),
    /// A migration failed.
    #[error("cannot migrate the metadata database: {0}; it may come from a newer sota-center")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("metadata database error: {0}")]
    Query(#[from] sqlx::Error),
}

/// Which database the center keeps its metadata in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file (created if missing).
    Sqlite(PathBuf),
    /// A PostgreSQL database, by its `postgres://` URL.
    Postgres(String),
}

impl Database {
    /// `--database` as given, or SQLite's file in `data_dir` without it.
    pub fn choose(database: Option<&str>, data_dir: &Path) -> Result<Self, DbError> {
        match database {
            None => Ok(Self::Sqlite(data_dir.join("center.sqlite3"))),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(Self::Postgres(url.to_string()))
            }
            Some(url) => match url.strip_prefix("sqlite://") {
                Some(path) if !path.is_empty() => Ok(Self::Sqlite(PathBuf::from(path))),
                _ => Err(DbError::Url(url.to_string())),
            },
        }
    }

    /// How the database is named in messages: the file, or the URL without its password.
    pub fn display(&self) -> String {
        match self {
            Self::Sqlite(path) => path.display().to_string(),
            Self::Postgres(url) => {
                // postgres://user:password@host…: the password is left out.
                let Some((scheme, rest)) = url.split_once("://") else {
                    return url.clone();
                };
                match rest.split_once('@') {
                    Some((user, host)) if user.contains(':') => {
                        let name = user.split(':').next().unwrap_or("");
                        format!("{scheme}://{name}:***@{host}")
                    }
                    _ => url.clone(),
                }
            }
        }
    }

    fn url(&self) -> String {
        match self {
            // rwc: create the file if it is missing.
            Self::Sqlite(path) => format!("sqlite://{}?mode=rwc", path.display()),
            Self::Postgres(url) => url.clone(),
        }
    }
}

/// SQLite's settings, applied to every connection of either pool.
///
/// WAL + FULL: a committed row survives a kill -9 or power loss (given a disk that honours
/// flushes). Firmware files are made durable by the store before a row names them
/// (`FirmwareStore::make_durable`).
const SQLITE_PRAGMAS: [&str; 4] = [
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA busy_timeout = 10000",
];

/// PostgreSQL's per-session setting that makes the crash-safety promise: a commit returns only
/// once its WAL record is flushed (the server's default, asked for in case the server's
/// configuration turned it off).
const POSTGRES_SETTINGS: [&str; 1] = ["SET synchronous_commit = on"];

/// Open (creating a SQLite file if missing) and migrate `database`.
pub async fn open(database: &Database) -> Result<Pool, DbError> {
    sqlx::any::install_default_drivers();
    let open_err = |source| DbError::Open {
        path: database.display(),
        source,
    };
    let postgres = matches!(database, Database::Postgres(_));
    let pool = AnyPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(15))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                let settings: &[&str] = if postgres {
                    &POSTGRES_SETTINGS
                } else {
                    &SQLITE_PRAGMAS
                };
                for sql in settings {
                    conn.execute(*sql).await?;
                }
                Ok(())
            })
        })
        .connect(&database.url())
        .await
        .map_err(open_err)?;
    if postgres {
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
    } else {
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
    }
    Ok(pool)
}

/// On PostgreSQL, what every write transaction takes first: one transaction-level advisory lock
/// (its key an arbitrary constant of this center's own), released at commit or rollback.
const POSTGRES_WRITE_LOCK: &str = "SELECT pg_advisory_xact_lock(5070)";

/// Whether `pool` is on PostgreSQL (else SQLite).
pub fn is_postgres(pool: &Pool) -> bool {
    pool.connect_options()
        .database_url
        .scheme()
        .starts_with("postgres")
}

/// Whether `conn` is on PostgreSQL (else SQLite).
pub fn conn_is_postgres(conn: &AnyConnection) -> bool {
    conn.backend_name() == "PostgreSQL"
}

/// The statements that open a write transaction on `conn`.
///
/// SQLite: `BEGIN IMMEDIATE` takes the one write lock before the first read, so a transaction
/// that reads then writes waits for another writer instead of failing. PostgreSQL: a plain
/// `BEGIN` and a transaction-level advisory lock that every such transaction takes, so they run
/// one at a time there too, as the code around them was written for (read, decide, write).
pub fn write_begin(conn: &AnyConnection) -> &'static [&'static str] {
    if conn_is_postgres(conn) {
        &["BEGIN", POSTGRES_WRITE_LOCK]
    } else {
        &["BEGIN IMMEDIATE"]
    }
}

/// A write transaction on `pool` (see [`write_begin`]).
pub async fn begin_write(
    pool: &Pool,
) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
    if is_postgres(pool) {
        let mut tx = pool.begin().await?;
        tx.execute(POSTGRES_WRITE_LOCK).await?;
        Ok(tx)
    } else {
        pool.begin_with("BEGIN IMMEDIATE").await
    }
}

/// The backend's own pool beside the `Any` one, for the one read that must go faster than `Any`
/// can hand rows over: the push cycle's scan of every device (`channel/scan.rs`).
#[derive(Debug, Clone)]
pub enum Native {
    /// SQLite, stepped directly.
    Sqlite(sqlx::SqlitePool),
    /// PostgreSQL, streamed.
    Postgres(sqlx::PgPool),
}

impl Native {
    /// A one-connection pool on the same database as `pool`.
    pub async fn connect(pool: &Pool) -> Result<Self, sqlx::Error> {
        let url = pool.connect_options().database_url.clone();
        if is_postgres(pool) {
            let options = sqlx::postgres::PgConnectOptions::from_str(url.as_str())?;
            let pg = sqlx::postgres::PgPoolOptions::new()
                .max_connections(2)
                .connect_with(options)
                .await?;
            Ok(Self::Postgres(pg))
        } else {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(url.as_str())?
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let lite = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await?;
            Ok(Self::Sqlite(lite))
        }
    }
}

/// The `VALUES` of a multi-row insert: `row` (each `?` a bound value, e.g. `(?, ?, 0)`)
/// `rows` times, its `?` numbered `$1, $2…` through all of them. (sqlx's `QueryBuilder`
/// writes `?` for `Any`, which PostgreSQL does not take.)
pub fn values(rows: usize, row: &str) -> String {
    let mut out = String::with_capacity(rows * (row.len() + 8));
    let mut n = 0;
    for i in 0..rows {
        if i > 0 {
            out.push_str(", ");
        }
        for part in row.split_inclusive('?') {
            match part.strip_suffix('?') {
                Some(before) => {
                    n += 1;
                    out.push_str(before);
                    out.push('$');
                    out.push_str(&n.to_string());
                }
                None => out.push_str(part),
            }
        }
    }
    out
}

/// The `LIMIT` and `OFFSET` of one page of a list (products, packages, plans): 1 to 1000
/// rows when a limit is asked for, every row (the largest `LIMIT` both backends take) without one.
pub fn window(offset: Option<u32>, limit: Option<u32>) -> (i64, i64) {
    (
        limit.map_or(i64::MAX, |l| i64::from(l.clamp(1, 1000))),
        i64::from(offset.unwrap_or(0)),
    )
}

/// The `LIKE … ESCAPE '\'` pattern of a search text (contains it, `%` and `_` taken
/// literally), or `None` for an absent or empty one.
pub fn search(q: &Option<String>) -> Option<String> {
    let q = q.as_deref().filter(|q| !q.is_empty())?;
    let mut pattern = String::with_capacity(q.len() + 2);
    pattern.push('%');
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    Some(pattern)
}

/// A setting, created with `init` on first use (so it is stable across restarts).
pub async fn setting_or_init(
    pool: &Pool,
    name: &str,
    init: impl FnOnce() -> String,
) -> Result<String, sqlx::Error> {
    if let Some(row) = sqlx::query("SELECT value FROM settings WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await?
    {
        return row.try_get("value");
    }
    sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .bind(init())
        .execute(pool)
        .await?;
    let row = sqlx::query("SELECT value FROM settings WHERE name = $1")
        .bind(name)
        .fetch_one(pool)
        .await?;
    row.try_get("value")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema before packages belonged to products (migrations 1–4).
    async fn before_products(path: &Path) -> Pool {
        let mut old = sqlx::migrate!("./migrations/sqlite");
        old.migrations = old
            .migrations
            .iter()
            .filter(|m| m.version < 5)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        sqlx::any::install_default_drivers();
        let pool = AnyPool::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
        sqlx::query("PRAGMA foreign_keys = ON")
            .execute(&pool)
            .await
            .unwrap();
        old.run(&pool).await.unwrap();
        pool
    }

    async fn exec(pool: &Pool, sql: &str) {
        for statement in sql.split(';').filter(|s| !s.trim().is_empty()) {
            sqlx::query(statement).execute(pool).await.unwrap();
        }
    }

    async fn product_of(pool: &Pool, package: i64) -> Option<String> {
        sqlx::query(
            "SELECT products.product_key FROM packages LEFT JOIN products ON products.id = packages.product_id WHERE packages.id = $1",
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

        let pool = open(&Database::Sqlite(path.clone())).await.unwrap();

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

        let pool = open(&Database::Sqlite(path.clone())).await.unwrap();

        for id in 1..=4 {
            assert_eq!(product_of(&pool, id).await.as_deref(), Some("only"));
        }
    }
}
