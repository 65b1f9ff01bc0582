//! Upgrades: per plan, device and component, where the upgrade stands, and the
//! log of every transition. The device channel writes them; monitoring reads.
//!
//! Reports are idempotent: a status that does not move an upgrade forward (a
//! duplicate, a late one, anything after the end) changes nothing and adds no
//! log line, so devices may resend after a reconnect.

use sota_engine::Status;
use sqlx::{AnyPool, Row};

use crate::error::ApiError;
pub use sota_api::monitoring::Outcome;

/// Who caused a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A device's report.
    Device,
    /// The center's own decision (an offer, success or failure by version).
    Center,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Device => "device",
            Source::Center => "center",
        }
    }
}

/// One upgrade: a plan's component on a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// Plan id.
    pub plan_id: i64,
    /// Device row id.
    pub device_id: i64,
    /// Component identity.
    pub identity: String,
}

/// A move of an upgrade.
#[derive(Debug, Clone)]
pub struct Step {
    /// The new status.
    pub status: Status,
    /// Progress with `downloading`.
    pub percent: Option<u8>,
    /// Who says so.
    pub source: Source,
    /// What happened.
    pub message: String,
}

/// Where an upgrade stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Current {
    /// Last status.
    pub status: Status,
    /// Last progress.
    pub percent: Option<u8>,
    /// Outcome so far.
    pub outcome: Outcome,
}

/// What [`advance`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advance {
    /// The upgrade moved; a log line was written.
    Moved,
    /// Nothing changed: a duplicate, a stale report, or the upgrade had ended.
    Ignored,
}

/// Position of a status in an upgrade's progress; every end shares the top rank.
fn rank(s: Status) -> u8 {
    match s {
        Status::None => 0,
        Status::Plan => 1,
        Status::Accepted => 2,
        Status::DownloadStart => 3,
        Status::Downloading => 4,
        Status::DownloadOk => 5,
        Status::Updating => 6,
        Status::Refused | Status::DownloadError | Status::UpdateOk | Status::UpdateError => 7,
    }
}

fn outcome_of(s: Status) -> Outcome {
    match s {
        Status::UpdateOk => Outcome::Succeeded,
        Status::Refused => Outcome::Refused,
        Status::DownloadError | Status::UpdateError => Outcome::Failed,
        _ => Outcome::Pending,
    }
}

fn status_of(code: i64) -> Result<Status, ApiError> {
    u8::try_from(code)
        .ok()
        .and_then(Status::from_code)
        .ok_or_else(|| {
            ApiError::internal(format!("stored upgrade status {code} is not an OTA status"))
        })
}

async fn log_line(
    tx: &mut sqlx::AnyConnection,
    key: &Key,
    step: &Step,
    at: &str,
) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO upgrade_log (plan_id, device_id, identity, at, source, status, percent, message)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(key.plan_id)
    .bind(key.device_id)
    .bind(&key.identity)
    .bind(at)
    .bind(step.source.as_str())
    .bind(i64::from(step.status.code()))
    .bind(step.percent.map(i64::from))
    .bind(&step.message)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Record that the upgrade was offered to the device (status 0, by the
/// center); true when it was new. Offering again changes nothing.
pub async fn offered(pool: &AnyPool, key: &Key) -> Result<bool, ApiError> {
    Ok(offered_all(pool, std::slice::from_ref(key)).await? == 1)
}

/// Record that each upgrade of `keys` was offered (status 0, by the center),
/// in one transaction: the rows that are new get their "offered" log line;
/// offering again changes nothing. Returns how many were new.
pub async fn offered_all(pool: &AnyPool, keys: &[Key]) -> Result<usize, ApiError> {
    if keys.is_empty() {
        return Ok(0);
    }
    let mut tx = crate::db::begin_write(pool).await?;
    let new = offered_all_on(&mut tx, keys).await?;
    tx.commit().await?;
    Ok(new)
}

/// [`offered_all`] inside the caller's transaction.
pub async fn offered_all_on(
    conn: &mut sqlx::AnyConnection,
    keys: &[Key],
) -> Result<usize, ApiError> {
    // Rows per statement: 5 bound values a row, far below SQLite's limit of 32766.
    const ROWS: usize = 500;
    let now = crate::now_text();
    let mut new = 0;
    for chunk in keys.chunks(ROWS) {
        let sql = format!(
            "INSERT INTO upgrades (plan_id, device_id, identity, status, percent, outcome, message, started_at, updated_at)
             VALUES {} ON CONFLICT DO NOTHING RETURNING plan_id, device_id, identity",
            crate::db::values(chunk.len(), "(?, ?, ?, 0, NULL, 'pending', 'offered', ?, ?)")
        );
        let mut insert = sqlx::query(&sql);
        for key in chunk {
            insert = insert
                .bind(key.plan_id)
                .bind(key.device_id)
                .bind(&key.identity)
                .bind(&now)
                .bind(&now);
        }
        let added = insert.fetch_all(&mut *conn).await?;
        if added.is_empty() {
            continue;
        }
        new += added.len();
        let mut rows = Vec::with_capacity(added.len());
        for r in &added {
            rows.push((
                r.try_get::<i64, _>(0)?,
                r.try_get::<i64, _>(1)?,
                r.try_get::<String, _>(2)?,
            ));
        }
        let sql = format!(
            "INSERT INTO upgrade_log (plan_id, device_id, identity, at, source, status, percent, message) VALUES {}",
            crate::db::values(rows.len(), "(?, ?, ?, ?, 'center', 0, NULL, 'offered')")
        );
        let mut log = sqlx::query(&sql);
        for (plan_id, device_id, identity) in &rows {
            log = log.bind(plan_id).bind(device_id).bind(identity).bind(&now);
        }
        log.execute(&mut *conn).await?;
    }
    Ok(new)
}

/// Where the upgrade stands, if it was offered.
pub async fn current(pool: &AnyPool, key: &Key) -> Result<Option<Current>, ApiError> {
    let row = sqlx::query(
        "SELECT status, percent, outcome FROM upgrades WHERE plan_id = $1 AND device_id = $2 AND identity = $3",
    )
    .bind(key.plan_id)
    .bind(key.device_id)
    .bind(&key.identity)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let outcome: String = row.try_get("outcome")?;
    let percent: Option<i64> = row.try_get("percent")?;
    Ok(Some(Current {
        status: status_of(row.try_get("status")?)?,
        percent: percent.and_then(|p| u8::try_from(p).ok()),
        outcome: Outcome::parse(&outcome),
    }))
}

/// Whether `step` moves an upgrade that stands at `now`.
pub fn moves(now: Current, step: &Step) -> bool {
    if now.outcome != Outcome::Pending {
        return false;
    }
    let (from, to) = (rank(now.status), rank(step.status));
    to > from || (to == from && step.status == Status::Downloading && step.percent > now.percent)
}

/// Move an upgrade by `step` if it moves it (see [`moves`]); `None` when the
/// upgrade was never offered.
pub async fn advance(pool: &AnyPool, key: &Key, step: &Step) -> Result<Option<Advance>, ApiError> {
    // IMMEDIATE: this transaction reads before it writes, and a deferred one
    // would fail (not wait) when another connection wrote in between.
    let mut tx = crate::db::begin_write(pool).await?;
    let done = advance_on(&mut tx, key, step).await?;
    tx.commit().await?;
    Ok(done)
}

/// [`advance`] inside the caller's (write) transaction.
pub async fn advance_on(
    conn: &mut sqlx::AnyConnection,
    key: &Key,
    step: &Step,
) -> Result<Option<Advance>, ApiError> {
    let row = sqlx::query(
        "SELECT status, percent, outcome FROM upgrades WHERE plan_id = $1 AND device_id = $2 AND identity = $3",
    )
    .bind(key.plan_id)
    .bind(key.device_id)
    .bind(&key.identity)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let outcome: String = row.try_get("outcome")?;
    let percent: Option<i64> = row.try_get("percent")?;
    let now = Current {
        status: status_of(row.try_get("status")?)?,
        percent: percent.and_then(|p| u8::try_from(p).ok()),
        outcome: Outcome::parse(&outcome),
    };
    if !moves(now, step) {
        return Ok(Some(Advance::Ignored));
    }
    let at = crate::now_text();
    let outcome = outcome_of(step.status);
    sqlx::query(
        "UPDATE upgrades SET status = $1, percent = $2, outcome = $3, message = $4, updated_at = $5,
         finished_at = CASE WHEN $6 THEN $7 ELSE NULL END
         WHERE plan_id = $8 AND device_id = $9 AND identity = $10",
    )
    .bind(i64::from(step.status.code()))
    .bind(step.percent.map(i64::from))
    .bind(outcome.as_str())
    .bind(&step.message)
    .bind(&at)
    .bind(outcome != Outcome::Pending)
    .bind(&at)
    .bind(key.plan_id)
    .bind(key.device_id)
    .bind(&key.identity)
    .execute(&mut *conn)
    .await?;
    log_line(conn, key, step, &at).await?;
    Ok(Some(Advance::Moved))
}

/// A device's pending upgrades of one component that reached `updating`
/// (plan id): a version report may end them.
pub async fn updating(
    pool: &AnyPool,
    device_id: i64,
    identity: &str,
) -> Result<Vec<i64>, ApiError> {
    let rows = sqlx::query(
        "SELECT plan_id FROM upgrades WHERE device_id = $1 AND identity = $2 AND outcome = 'pending' AND status = $3",
    )
    .bind(device_id)
    .bind(identity)
    .bind(i64::from(Status::Updating.code()))
    .fetch_all(pool)
    .await?;
    rows.iter().map(|r| Ok(r.try_get("plan_id")?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(status: Status, percent: Option<u8>) -> Current {
        Current {
            status,
            percent,
            outcome: outcome_of(status),
        }
    }

    fn step(status: Status, percent: Option<u8>) -> Step {
        Step {
            status,
            percent,
            source: Source::Device,
            message: String::new(),
        }
    }

    #[test]
    fn only_forward_moves_count() {
        assert!(moves(at(Status::None, None), &step(Status::Plan, None)));
        assert!(moves(
            at(Status::Accepted, None),
            &step(Status::Downloading, Some(10))
        ));
        assert!(moves(
            at(Status::Downloading, Some(10)),
            &step(Status::Downloading, Some(20))
        ));
        assert!(
            !moves(
                at(Status::Downloading, Some(20)),
                &step(Status::Downloading, Some(20))
            ),
            "duplicate"
        );
        assert!(
            !moves(
                at(Status::Downloading, Some(20)),
                &step(Status::Downloading, Some(10))
            ),
            "late"
        );
        assert!(
            !moves(at(Status::Updating, None), &step(Status::DownloadOk, None)),
            "late"
        );
        assert!(moves(
            at(Status::Updating, None),
            &step(Status::UpdateError, None)
        ));
        for end in [
            Status::UpdateOk,
            Status::UpdateError,
            Status::Refused,
            Status::DownloadError,
        ] {
            for next in Status::ALL {
                assert!(
                    !moves(at(end, None), &step(next, Some(50))),
                    "{end:?} then {next:?}"
                );
            }
        }
    }
}
