//! Reading all of a product's devices at SQLite's own speed, for a push cycle
//! over a million of them.
//!
//! sqlx copies every value of every row it returns and hands each row from its
//! worker thread to the caller (a few µs a row: seconds for a million rows, more
//! than the rest of a push cycle together). This one read-only scan therefore
//! steps two statements itself, on a connection of the pool locked through
//! sqlx's raw-handle API (`LockedSqliteHandle`, meant for this), and merges
//! them by device id: the devices with their components' versions, and the
//! upgrades of the product's active plans. Nothing else goes through here.

use std::ffi::{CStr, CString};
use std::ptr::{null_mut, NonNull};

use libsqlite3_sys as ffi;
use sota_engine::Status;
use sqlx::SqlitePool;

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
