//! Which center process this is, and whether another one is still alive.
//!
//! Several centers may share one database and one store. Each process takes an instance id at
//! start (random hex) and holds a liveness lock on it for its lifetime, a lock that dies with the
//! process at once, kill -9 included:
//!
//! - PostgreSQL: a session-level advisory lock (its key the id's 64 bits) on one connection of
//!   its own, kept open beside the pool.
//! - SQLite: an exclusive lock on `centers/<id>.lock` beside the database file.
//!
//! Another center is alive while its lock cannot be taken. What an instance records as its own
//! (the pending uploads, `package.rs`) is swept only once its owner is gone.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::{Connection, Row};

use crate::db::{self, Pool};
use crate::ApiError;

/// This process's instance id and the lock that says it is alive (released on drop).
#[derive(Debug)]
pub struct Instance {
    id: String,
    /// Its number among the live instances (`center_instances.slot`).
    slot: i64,
    hold: Hold,
}

#[derive(Debug)]
enum Hold {
    /// The connection holding the advisory lock, kept for the process lifetime (reconnected and
    /// locked again should it break).
    Postgres(tokio::sync::Mutex<sqlx::PgConnection>),
    /// The open, locked `centers/<id>.lock` (removed on drop).
    Sqlite { _file: std::fs::File, path: PathBuf },
}

impl Instance {
    /// A fresh instance id on the database of `pool`, its liveness lock taken.
    pub async fn start(pool: &Pool) -> Result<Instance, ApiError> {
        let id = crate::random_hex(8)?;
        let hold = if db::is_postgres(pool) {
            Hold::Postgres(tokio::sync::Mutex::new(lock_pg(pool, &id).await?))
        } else {
            let path = lock_file(&centers_dir(pool).await?, &id)?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| io_err(&path, e))?;
            file.try_lock().map_err(|e| {
                ApiError::internal(format!(
                    "cannot lock {}: {e}; another center took the same instance id",
                    path.display()
                ))
            })?;
            Hold::Sqlite { _file: file, path }
        };
        let mut instance = Instance { id, slot: 0, hold };
        instance.slot = instance.register(pool).await?;
        Ok(instance)
    }

    /// Record this instance in `center_instances` with the lowest slot no live instance holds
    /// (dead instances' rows are deleted first). Two starting at once may pick the same slot:
    /// the unique slot lets one insert, and the other tries again.
    async fn register(&self, pool: &Pool) -> Result<i64, ApiError> {
        for _ in 0..20 {
            let taken: Vec<i64> = self.live(pool).await?.into_iter().map(|(_, s)| s).collect();
            let slot = (0..).find(|s| !taken.contains(s)).unwrap_or(0);
            let inserted = sqlx::query(
                "INSERT INTO center_instances (id, slot, started_at) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
            )
            .bind(&self.id)
            .bind(slot)
            .bind(crate::now_text())
            .execute(pool)
            .await?
            .rows_affected();
            if inserted == 1 {
                return Ok(slot);
            }
        }
        Err(ApiError::internal(
            "cannot take a slot among the centers sharing the database (20 tries)",
        ))
    }

    /// Write this instance's row again (with its slot), after another center deleted it while
    /// this one's database connection was broken.
    pub async fn register_again(&self, pool: &Pool) -> Result<(), ApiError> {
        sqlx::query(
            "INSERT INTO center_instances (id, slot, started_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(&self.id)
        .bind(self.slot)
        .bind(crate::now_text())
        .execute(pool)
        .await?;
        Ok(())
    }

    /// This instance's slot: 0 for the first live center, then 1, 2, …
    pub fn slot(&self) -> i64 {
        self.slot
    }

    /// The live instances sharing the database, `(id, slot)` in id order, this one included once
    /// it registered. The rows of instances found dead are deleted on the way.
    pub async fn live(&self, pool: &Pool) -> Result<Vec<(String, i64)>, ApiError> {
        let rows = sqlx::query("SELECT id, slot FROM center_instances ORDER BY id")
            .fetch_all(pool)
            .await?;
        let mut live = Vec::with_capacity(rows.len());
        for row in rows {
            let (id, slot): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
            if self.is_alive(pool, Some(&id)).await? {
                live.push((id, slot));
            } else {
                sqlx::query("DELETE FROM center_instances WHERE id = $1")
                    .bind(&id)
                    .execute(pool)
                    .await?;
            }
        }
        Ok(live)
    }

    /// The instance id, recorded as the owner of what this process has in progress.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether the center `owner` (an instance id from the database) is still running: this
    /// one, or one whose liveness lock is held. An unknown, malformed or absent owner is not.
    pub async fn is_alive(&self, pool: &Pool, owner: Option<&str>) -> Result<bool, ApiError> {
        let Some(owner) = owner else {
            return Ok(false);
        };
        if owner == self.id {
            return Ok(true);
        }
        let Some(key) = pg_key(owner) else {
            return Ok(false);
        };
        if db::is_postgres(pool) {
            // Its own connection: the lock must be tried and released in one session, and never
            // on the one holding this instance's lock.
            let mut conn = pool.acquire().await?;
            let free: bool = sqlx::query("SELECT pg_try_advisory_lock($1) AS free")
                .bind(key)
                .fetch_one(&mut *conn)
                .await?
                .try_get("free")?;
            if free {
                sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(key)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(!free)
        } else {
            let path = lock_file(&centers_dir(pool).await?, owner)?;
            let file = match std::fs::OpenOptions::new().write(true).open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(io_err(&path, e)),
            };
            match file.try_lock() {
                Ok(()) => {
                    // Its process is gone: so is its lock file.
                    let _ = std::fs::remove_file(&path);
                    Ok(false)
                }
                Err(std::fs::TryLockError::WouldBlock) => Ok(true),
                Err(std::fs::TryLockError::Error(e)) => Err(io_err(&path, e)),
            }
        }
    }

    /// Check that the liveness lock is still held, taking it again if its PostgreSQL connection
    /// broke (while it was broken, other centers could sweep this one's uploads in progress).
    pub async fn keep_alive(&self, pool: &Pool) -> Result<(), ApiError> {
        let Hold::Postgres(conn) = &self.hold else {
            return Ok(());
        };
        let mut conn = conn.lock().await;
        if sqlx::query("SELECT 1").execute(&mut *conn).await.is_err() {
            tracing::warn!(
                "the connection holding this center's liveness lock broke; taking it again"
            );
            *conn = lock_pg(pool, &self.id).await?;
        }
        Ok(())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Hold::Sqlite { path, .. } = &self.hold {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The advisory lock key of an instance id: its 64 bits (16 hex digits).
fn pg_key(id: &str) -> Option<i64> {
    if id.len() != 16 {
        return None;
    }
    u64::from_str_radix(id, 16).ok().map(|k| k as i64)
}

/// A connection of its own on `pool`'s database, holding `id`'s advisory lock.
async fn lock_pg(pool: &Pool, id: &str) -> Result<sqlx::PgConnection, ApiError> {
    let key = pg_key(id).ok_or_else(|| ApiError::internal(format!("bad instance id {id:?}")))?;
    let url = pool.connect_options().database_url.clone();
    let options = sqlx::postgres::PgConnectOptions::from_str(url.as_str())?;
    let mut conn = sqlx::PgConnection::connect_with(&options).await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(key)
        .execute(&mut conn)
        .await?;
    Ok(conn)
}

/// `centers/` beside the SQLite file of `pool`.
async fn centers_dir(pool: &Pool) -> Result<PathBuf, ApiError> {
    let file: String = sqlx::query("SELECT file FROM pragma_database_list WHERE name = 'main'")
        .fetch_one(pool)
        .await?
        .try_get("file")?;
    match Path::new(&file).parent() {
        Some(dir) if !file.is_empty() => Ok(dir.join("centers")),
        _ => Err(ApiError::internal(
            "the SQLite database has no file; the center's liveness lock needs one",
        )),
    }
}

/// The lock file of instance `id` in `dir` (ids are hex: nothing else names a path).
fn lock_file(dir: &Path, id: &str) -> Result<PathBuf, ApiError> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::internal(format!("bad instance id {id:?}")));
    }
    Ok(dir.join(format!("{id}.lock")))
}

fn io_err(path: &Path, e: std::io::Error) -> ApiError {
    ApiError::internal(format!(
        "the center's liveness lock {}: {e}; check that the database's directory is writable",
        path.display()
    ))
}
