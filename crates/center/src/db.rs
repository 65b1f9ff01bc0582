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
