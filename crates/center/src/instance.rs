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
    /// The liveness lock was taken again (its connection had broken).
    relocked: std::sync::atomic::AtomicBool,
}

#[derive(Debug)]
enum Hold {
    /// The connection holding the advisory lock, kept for the process lifetime (reconnected and
    /// locked again should it break).
    Postgres(tokio::sync::Mutex<sqlx::PgConnection>),
    /// The open, locked `centers/<id>.lock` (removed on drop).
    Sqlite { _file: std::fs::File, path: PathBuf },
}

/// A live center, as its `center_instances` row says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    /// Its instance id.
    pub id: String,
    /// Its slot (broker login).
    pub slot: i64,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// It runs its own broker.
    pub embedded: bool,
    /// It takes its share of the devices behind an external broker.
    pub serving: bool,
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
        let mut instance = Instance {
            id,
            slot: 0,
            hold,
            relocked: Default::default(),
        };
        instance.slot = instance.register(pool).await?;
        Ok(instance)
    }

    /// Record this instance in `center_instances` with the lowest slot no live instance holds
    /// (dead instances' rows are deleted first). Two starting at once may pick the same slot:
    /// the unique slot lets one insert, and the other tries again.
    async fn register(&self, pool: &Pool) -> Result<i64, ApiError> {
        for _ in 0..20 {
            let taken: Vec<i64> = self.live(pool).await?.iter().map(|c| c.slot).collect();
            let slot = (0..).find(|s| !taken.contains(s)).unwrap_or(0);
            if self.insert(pool, slot).await? {
                return Ok(slot);
            }
        }
        Err(ApiError::internal(
            "cannot take a slot among the centers sharing the database (20 tries)",
        ))
    }

    /// Insert this instance's row with `slot`; false when the slot is taken.
    async fn insert(&self, pool: &Pool, slot: i64) -> Result<bool, ApiError> {
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
        Ok(inserted == 1)
    }

    /// Write this instance's row again, after another center deleted it while this one's
    /// database connection was broken (its lock free, it looked dead). Refused when a center
    /// started meanwhile took its slot: two centers on one broker login would end each other's
    /// sessions, so this one has to stop.
    pub async fn register_again(&self, pool: &Pool, serving: bool) -> Result<(), ApiError> {
        if !self.insert(pool, self.slot).await? {
            return Err(ApiError::conflict(
                "slot_taken",
                format!(
                    "this center (instance {}) lost its place among the centers sharing the \
                     database while its connection to it was broken, and a center started \
                     meanwhile took its slot {}; restart this center",
                    self.id, self.slot
                ),
            ));
        }
        if serving {
            self.set_serving(pool, true).await?;
        }
        Ok(())
    }

    /// Record how this center reaches devices, and refuse a mix that would not act as one
    /// center: a center with its own (embedded) broker must be alone on the database — its
    /// devices reach only it, and it keeps their request views in memory — and centers on an
    /// external broker cannot join one.
    pub async fn join(&self, pool: &Pool, embedded: bool) -> Result<(), ApiError> {
        self.set_flag(pool, "embedded", embedded).await?;
        let other = self
            .live(pool)
            .await?
            .into_iter()
            .find(|c| c.id != self.id && (embedded || c.embedded));
        if let Some(other) = other {
            return Err(ApiError::conflict(
                "not_alone",
                format!(
                    "another center is running on this database (instance {}, started {}{}); \
                     several centers need an external broker: run every one of them with \
                     --broker, or stop the other one",
                    other.id,
                    other.started_at,
                    if other.embedded {
                        ", with its own broker"
                    } else {
                        ""
                    }
                ),
            ));
        }
        Ok(())
    }

    /// Record whether this center takes its share of the devices (subscribed to the external
    /// broker).
    pub async fn set_serving(&self, pool: &Pool, serving: bool) -> Result<(), ApiError> {
        self.set_flag(pool, "serving", serving).await
    }

    /// Set one of this instance's 0/1 columns (`embedded`, `serving`).
    async fn set_flag(&self, pool: &Pool, column: &'static str, on: bool) -> Result<(), ApiError> {
        sqlx::query(&format!(
            "UPDATE center_instances SET {column} = $1 WHERE id = $2"
        ))
        .bind(i64::from(on))
        .bind(&self.id)
        .execute(pool)
        .await?;
        Ok(())
    }

    /// This instance's slot: 0 for the first live center, then 1, 2, …
    pub fn slot(&self) -> i64 {
        self.slot
    }

    /// The live instances sharing the database, in id order, this one included once it
    /// registered. The rows of instances found dead are deleted on the way.
    pub async fn live(&self, pool: &Pool) -> Result<Vec<Live>, ApiError> {
        let rows = sqlx::query(
            "SELECT id, slot, started_at, embedded, serving FROM center_instances ORDER BY id",
        )
        .fetch_all(pool)
        .await?;
        let mut live = Vec::with_capacity(rows.len());
        for row in rows {
            let center = Live {
                id: row.try_get(0)?,
                slot: row.try_get(1)?,
                started_at: row.try_get(2)?,
                embedded: row.try_get::<i64, _>(3)? != 0,
                serving: row.try_get::<i64, _>(4)? != 0,
            };
            if self.is_alive(pool, Some(&center.id)).await? {
                live.push(center);
            } else {
                sqlx::query("DELETE FROM center_instances WHERE id = $1")
                    .bind(&center.id)
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
    /// When it had to be taken again, [`Instance::take_relocked`] says so once.
    pub async fn keep_alive(&self, pool: &Pool) -> Result<(), ApiError> {
        let Hold::Postgres(conn) = &self.hold else {
            return Ok(());
        };
        let mut conn = conn.lock().await;
        if sqlx::query("SELECT 1").execute(&mut *conn).await.is_ok() {
            return Ok(());
        }
        tracing::warn!("the connection holding this center's liveness lock broke; taking it again");
        *conn = lock_pg(pool, &self.id).await?;
        self.relocked
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Whether the liveness lock was taken again since last asked: meanwhile other centers may
    /// have counted this one as gone.
    pub fn take_relocked(&self) -> bool {
        self.relocked
            .swap(false, std::sync::atomic::Ordering::Relaxed)
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
