//! Reading all of a product's devices at the database's own speed, for a push
//! cycle over a million of them.
//!
//! sqlx copies every value of every row it returns and hands each row from its
//! worker thread to the caller (a few µs a row: seconds for a million rows, more
//! than the rest of a push cycle together), and its `Any` driver copies each row
//! once more. This one read-only scan therefore reads two result sets through
//! the backend's own pool ([`Native`]) and merges them by device id: the devices
//! with their components' versions, and the upgrades of the product's active
//! plans. Nothing else goes through here.
//!
//! - SQLite: both statements are stepped directly, on a connection locked
//!   through sqlx's raw-handle API (`LockedSqliteHandle`, meant for this).
//! - PostgreSQL: both are streamed as `COPY (…) TO STDOUT` on two connections
//!   and their text rows parsed here, without a row object per row.

use std::ffi::{CStr, CString};
use std::ptr::{null_mut, NonNull};

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use libsqlite3_sys as ffi;
use sota_engine::Status;
use sqlx::postgres::PgPoolCopyExt;
use sqlx::{PgPool, SqlitePool};

use crate::db::Native;
use crate::error::ApiError;

/// Where one of a device's upgrades of an active plan stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// The plan.
    pub plan_id: i64,
    /// The component identity.
    pub identity: String,
    /// Its last status.
    pub status: Status,
    /// Whether it ended (succeeded, failed, refused).
    pub ended: bool,
}

/// One device as the scan reads it.
#[derive(Debug, Default)]
pub struct Device {
    /// Row id.
    pub id: i64,
    /// Device key.
    pub key: String,
    /// Component identity → version.
    pub components: Vec<(String, String)>,
    /// Its upgrades of the plans asked for.
    pub standing: Vec<Standing>,
}

/// A prepared statement, finalized on drop.
struct Statement {
    db: *mut ffi::sqlite3,
    stmt: *mut ffi::sqlite3_stmt,
}

fn error(db: *mut ffi::sqlite3, what: &str) -> ApiError {
    // SAFETY: `db` is the open connection the caller holds locked; SQLite
    // always returns a NUL-terminated message for it.
    let message = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) };
    ApiError::internal(format!(
        "reading devices for a push ({what}): {}",
        message.to_string_lossy()
    ))
}

impl Statement {
    /// Prepare `sql` on `db`, binding `ints` to its parameters in order.
    fn new(db: *mut ffi::sqlite3, sql: &str, ints: &[i64]) -> Result<Self, ApiError> {
        let text = CString::new(sql).map_err(|_| ApiError::internal("SQL with a NUL byte"))?;
        let mut stmt = null_mut();
        // SAFETY: `db` is open and locked by the caller; `text` outlives the call.
        let rc = unsafe { ffi::sqlite3_prepare_v2(db, text.as_ptr(), -1, &mut stmt, null_mut()) };
        if rc != ffi::SQLITE_OK {
            return Err(error(db, "prepare"));
        }
        let statement = Self { db, stmt };
        for (i, v) in ints.iter().enumerate() {
            // SAFETY: a statement just prepared on `db`; parameters count from 1.
            let rc = unsafe { ffi::sqlite3_bind_int64(stmt, i as i32 + 1, *v) };
            if rc != ffi::SQLITE_OK {
                return Err(error(db, "bind"));
            }
        }
        Ok(statement)
    }

    /// The next row: true, or false when done.
    fn step(&mut self) -> Result<bool, ApiError> {
        // SAFETY: a prepared, not finalized statement of the locked connection.
        match unsafe { ffi::sqlite3_step(self.stmt) } {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => Ok(false),
            _ => Err(error(self.db, "step")),
        }
    }

    fn int(&self, column: i32) -> i64 {
        // SAFETY: the statement stands on a row (after `step` returned true).
        unsafe { ffi::sqlite3_column_int64(self.stmt, column) }
    }

    /// A text column of the current row (`None` for NULL); valid until the next step.
    fn text(&self, column: i32) -> Option<&str> {
        // SAFETY: the statement stands on a row; SQLite returns the text and
        // its length in bytes, valid until the next step or finalize, which
        // need `&mut self` and so end this borrow first.
        unsafe {
            if ffi::sqlite3_column_type(self.stmt, column) == ffi::SQLITE_NULL {
                return None;
            }
            let p = ffi::sqlite3_column_text(self.stmt, column);
            let n = ffi::sqlite3_column_bytes(self.stmt, column);
            if p.is_null() || n < 0 {
                return Some("");
            }
            std::str::from_utf8(std::slice::from_raw_parts(p, n as usize)).ok()
        }
    }
}

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: finalized exactly once, while the connection is still locked
        // (statements live inside `scan_locked`).
        unsafe {
            ffi::sqlite3_finalize(self.stmt);
        }
    }
}

/// Visit every device of product `product_id`, by id, with its components and
/// where its upgrades of `plan_ids` stand.
pub async fn devices(
    pool: &Native,
    product_id: i64,
    plan_ids: &[i64],
    visit: &mut (dyn FnMut(&Device) + Send),
) -> Result<(), ApiError> {
    match pool {
        Native::Sqlite(pool) => devices_sqlite(pool, product_id, plan_ids, visit).await,
        Native::Postgres(pool) => devices_postgres(pool, product_id, plan_ids, visit).await,
    }
}

async fn devices_sqlite(
    pool: &SqlitePool,
    product_id: i64,
    plan_ids: &[i64],
    visit: &mut (dyn FnMut(&Device) + Send),
) -> Result<(), ApiError> {
    let mut conn = pool.acquire().await?;
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle();
    let mut scan = || scan_locked(db, product_id, plan_ids, visit);
    // Stepping a million rows takes a second: off the async scheduler's hands
    // where the runtime allows it (a current-thread runtime runs it in place).
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread {
        tokio::task::block_in_place(scan)
    } else {
        scan()
    }
}

fn scan_locked(
    db: NonNull<ffi::sqlite3>,
    product_id: i64,
    plan_ids: &[i64],
    visit: &mut (dyn FnMut(&Device) + Send),
) -> Result<(), ApiError> {
    let db = db.as_ptr();
    let mut devices = Statement::new(
        db,
        "SELECT d.id, d.device_key, c.identity, c.version FROM devices d
         LEFT JOIN device_components c ON c.device_id = d.id
         WHERE d.product_id = ? ORDER BY d.id",
        &[product_id],
    )?;
    let placeholders = vec!["?"; plan_ids.len()].join(", ");
    let mut upgrades = Statement::new(
        db,
        &format!(
            "SELECT device_id, plan_id, identity, status, outcome != 'pending' FROM upgrades
             WHERE plan_id IN ({placeholders}) ORDER BY device_id"
        ),
        plan_ids,
    )?;
    let mut upgrade = upgrades.step()?;
    let mut device = Device::default();
    let mut more = devices.step()?;
    while more {
        let id = devices.int(0);
        device.id = id;
        device.key.clear();
        device.key.push_str(devices.text(1).unwrap_or(""));
        device.components.clear();
        // This device's rows (one a component, or one with no component).
        while more && devices.int(0) == id {
            if let (Some(identity), Some(version)) = (devices.text(2), devices.text(3)) {
                if !device.components.iter().any(|(i, _)| i == identity) {
                    device
                        .components
                        .push((identity.to_string(), version.to_string()));
                }
            }
            more = devices.step()?;
        }
        device.standing.clear();
        while upgrade && upgrades.int(0) < id {
            upgrade = upgrades.step()?;
        }
        while upgrade && upgrades.int(0) == id {
            device.standing.push(Standing {
                plan_id: upgrades.int(1),
                identity: upgrades.text(2).unwrap_or("").to_string(),
                status: u8::try_from(upgrades.int(3))
                    .ok()
                    .and_then(Status::from_code)
                    .unwrap_or(Status::None),
                ended: upgrades.int(4) != 0,
            });
            upgrade = upgrades.step()?;
        }
        visit(&device);
    }
    Ok(())
}

/// The rows of one `COPY … TO STDOUT` (PostgreSQL's text format), one at a time.
struct CopyRows {
    stream: BoxStream<'static, Result<Bytes, sqlx::Error>>,
    buf: Vec<u8>,
    /// Where the next row starts in `buf`.
    at: usize,
    /// The current row's fields, unescaped (`None` for NULL).
    fields: Vec<Option<String>>,
}

impl CopyRows {
    async fn start(pool: &PgPool, sql: &str) -> Result<Self, ApiError> {
        Ok(Self {
            stream: pool.copy_out_raw(sql).await?,
            buf: Vec::new(),
            at: 0,
            fields: Vec::new(),
        })
    }

    /// The next row into `fields`: true, or false when done.
    async fn step(&mut self) -> Result<bool, ApiError> {
        loop {
            if let Some(n) = self.buf[self.at..].iter().position(|&b| b == b'\n') {
                let line = &self.buf[self.at..self.at + n];
                let mut count = 0;
                for field in line.split(|&b| b == b'\t') {
                    if self.fields.len() == count {
                        self.fields.push(None);
                    }
                    unescape(field, &mut self.fields[count])?;
                    count += 1;
                }
                self.fields.truncate(count);
                self.at += n + 1;
                return Ok(true);
            }
            // The rest of a row, if any, moves to the front before more arrives.
            self.buf.drain(..self.at);
            self.at = 0;
            match self.stream.next().await {
                Some(chunk) => self.buf.extend_from_slice(&chunk?),
                None if self.buf.is_empty() => return Ok(false),
                None => {
                    return Err(ApiError::internal(
                        "reading devices for a push: COPY ended inside a row",
                    ))
                }
            }
        }
    }

    fn int(&self, column: usize) -> i64 {
        self.text(column).and_then(|t| t.parse().ok()).unwrap_or(0)
    }

    fn text(&self, column: usize) -> Option<&str> {
        self.fields.get(column).and_then(|f| f.as_deref())
    }
}

/// One field of COPY's text format into `out`: `\N` is NULL, backslash escapes are undone.
fn unescape(field: &[u8], out: &mut Option<String>) -> Result<(), ApiError> {
    if field == b"\\N" {
        *out = None;
        return Ok(());
    }
    let text = out.get_or_insert_with(String::new);
    text.clear();
    let bad =
        || ApiError::internal("reading devices for a push: COPY sent a field that is not UTF-8");
    if !field.contains(&b'\\') {
        text.push_str(std::str::from_utf8(field).map_err(|_| bad())?);
        return Ok(());
    }
    let mut bytes = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let b = field[i];
        i += 1;
        if b != b'\\' || i == field.len() {
            bytes.push(b);
            continue;
        }
        let e = field[i];
        i += 1;
        bytes.push(match e {
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'v' => 11,
            b'0'..=b'7' => {
                // Up to three octal digits.
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match field.get(i) {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                v as u8
            }
            other => other,
        });
    }
    text.push_str(std::str::from_utf8(&bytes).map_err(|_| bad())?);
    Ok(())
}

async fn devices_postgres(
    pool: &PgPool,
    product_id: i64,
    plan_ids: &[i64],
    visit: &mut (dyn FnMut(&Device) + Send),
) -> Result<(), ApiError> {
    // COPY takes no parameters: the ids are integers, written in.
    let mut devices = CopyRows::start(
        pool,
        &format!(
            "COPY (SELECT d.id, d.device_key, c.identity, c.version FROM devices d
             LEFT JOIN device_components c ON c.device_id = d.id
             WHERE d.product_id = {product_id} ORDER BY d.id) TO STDOUT"
        ),
    )
    .await?;
    let plans = if plan_ids.is_empty() {
        "NULL".to_string()
    } else {
        plan_ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut upgrades = CopyRows::start(
        pool,
        &format!(
            "COPY (SELECT device_id, plan_id, identity, status,
                          CASE WHEN outcome != 'pending' THEN 1 ELSE 0 END FROM upgrades
             WHERE plan_id IN ({plans}) ORDER BY device_id) TO STDOUT"
        ),
    )
    .await?;
    let mut upgrade = upgrades.step().await?;
    let mut device = Device::default();
    let mut more = devices.step().await?;
    while more {
        let id = devices.int(0);
        device.id = id;
        device.key.clear();
        device.key.push_str(devices.text(1).unwrap_or(""));
        device.components.clear();
        while more && devices.int(0) == id {
            if let (Some(identity), Some(version)) = (devices.text(2), devices.text(3)) {
                if !device.components.iter().any(|(i, _)| i == identity) {
                    device
                        .components
                        .push((identity.to_string(), version.to_string()));
                }
            }
            more = devices.step().await?;
        }
        device.standing.clear();
        while upgrade && upgrades.int(0) < id {
            upgrade = upgrades.step().await?;
        }
        while upgrade && upgrades.int(0) == id {
            device.standing.push(Standing {
                plan_id: upgrades.int(1),
                identity: upgrades.text(2).unwrap_or("").to_string(),
                status: u8::try_from(upgrades.int(3))
                    .ok()
                    .and_then(Status::from_code)
                    .unwrap_or(Status::None),
                ended: upgrades.int(4) != 0,
            });
            upgrade = upgrades.step().await?;
        }
        visit(&device);
    }
    Ok(())
}
