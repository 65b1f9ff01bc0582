//! Monitoring: what the upgrades of a plan or a device look like now, and
//! their log — read-only views over `upgrades` and `upgrade_log`.

use std::collections::BTreeMap;

use sota_engine::Status;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::error::ApiError;
pub use sota_api::monitoring::{
    DeviceHistory, LogEntry, Outcome, PlanCounts, PlanDevice, UpgradeView, Window,
};

fn status_parts(code: i64) -> (u8, String) {
    let s = u8::try_from(code)
        .ok()
        .and_then(Status::from_code)
        .unwrap_or(Status::None);
    (s.code(), sota_protocol::status_name(s).to_string())
}

fn percent(row: &AnyRow) -> Result<Option<u8>, sqlx::Error> {
    Ok(row
        .try_get::<Option<i64>, _>("percent")?
        .and_then(|p| u8::try_from(p).ok()))
}

fn upgrade_view(row: &AnyRow) -> Result<UpgradeView, ApiError> {
    let (status, status_name) = status_parts(row.try_get("status")?);
    let outcome: String = row.try_get("outcome")?;
    Ok(UpgradeView {
        plan_id: row.try_get("plan_id")?,
        device_key: row.try_get("device_key")?,
        identity: row.try_get("identity")?,
        status,
        status_name,
        percent: percent(row)?,
        outcome: Outcome::parse(&outcome),
        message: row.try_get("message")?,
        started_at: row.try_get("started_at")?,
        updated_at: row.try_get("updated_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

fn log_entry(row: &AnyRow) -> Result<LogEntry, ApiError> {
    let (status, status_name) = status_parts(row.try_get("status")?);
    Ok(LogEntry {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        plan_id: row.try_get("plan_id")?,
        device_key: row.try_get("device_key")?,
        identity: row.try_get("identity")?,
        source: row.try_get("source")?,
        status,
        status_name,
        percent: percent(row)?,
        message: row.try_get("message")?,
    })
}

/// 404 unless the plan exists.
pub async fn check_plan(pool: &AnyPool, id: i64) -> Result<(), ApiError> {
    sqlx::query("SELECT id FROM plans WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?
        .map(|_| ())
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no upgrade plan with id {id}; list them with GET /api/v1/plans"
            ))
        })
}

const UPGRADE_COLUMNS: &str = "upgrades.*, devices.device_key";
const LOG_COLUMNS: &str = "upgrade_log.*, devices.device_key";

/// A plan's devices (by key) with their components' upgrades.
pub async fn plan_devices(
    pool: &AnyPool,
    plan_id: i64,
    window: &Window,
) -> Result<Vec<PlanDevice>, ApiError> {
    check_plan(pool, plan_id).await?;
    let (limit, offset) = window.bounds();
    let rows = sqlx::query(&format!(
        "SELECT {UPGRADE_COLUMNS} FROM upgrades JOIN devices ON devices.id = upgrades.device_id
         WHERE upgrades.plan_id = $1 AND upgrades.device_id IN (
             SELECT u.device_id FROM upgrades u JOIN devices d ON d.id = u.device_id
             WHERE u.plan_id = $2 GROUP BY u.device_id, d.device_key
             ORDER BY d.device_key LIMIT $3 OFFSET $4)
         ORDER BY devices.device_key, upgrades.identity"
    ))
    .bind(plan_id)
    .bind(plan_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let mut out: Vec<PlanDevice> = Vec::new();
    for row in &rows {
        let view = upgrade_view(row)?;
        match out.last_mut() {
            Some(d) if d.device_key == view.device_key => d.components.push(view),
            _ => out.push(PlanDevice {
                device_key: view.device_key.clone(),
                components: vec![view],
            }),
        }
    }
    Ok(out)
}

/// One upgrade as it stands now, with its latest log line; `None` if it was never offered.
/// What a plan's watchers are sent when it moves ([`crate::events`]).
pub async fn upgrade_now(
    pool: &AnyPool,
    key: &crate::upgrade::Key,
) -> Result<Option<(UpgradeView, Option<LogEntry>)>, ApiError> {
    let row = sqlx::query(&format!(
        "SELECT {UPGRADE_COLUMNS} FROM upgrades JOIN devices ON devices.id = upgrades.device_id
         WHERE upgrades.plan_id = $1 AND upgrades.device_id = $2 AND upgrades.identity = $3"
    ))
    .bind(key.plan_id)
    .bind(key.device_id)
    .bind(&key.identity)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    // The device's log, newest first (its index), stops at the line just written.
    let log = sqlx::query(&format!(
        "SELECT {LOG_COLUMNS} FROM upgrade_log JOIN devices ON devices.id = upgrade_log.device_id
         WHERE upgrade_log.device_id = $1 AND upgrade_log.plan_id = $2 AND upgrade_log.identity = $3
         ORDER BY upgrade_log.id DESC LIMIT 1"
    ))
    .bind(key.device_id)
    .bind(key.plan_id)
    .bind(&key.identity)
    .fetch_optional(pool)
    .await?;
    Ok(Some((
        upgrade_view(&row)?,
        log.as_ref().map(log_entry).transpose()?,
    )))
}

/// How many upgrades of a plan stand at each status and outcome.
pub async fn plan_counts(pool: &AnyPool, plan_id: i64) -> Result<PlanCounts, ApiError> {
    check_plan(pool, plan_id).await?;
    let devices: i64 =
        sqlx::query("SELECT COUNT(DISTINCT device_id) AS n FROM upgrades WHERE plan_id = $1")
            .bind(plan_id)
            .fetch_one(pool)
            .await?
            .try_get("n")?;
    let mut by_status = BTreeMap::new();
    for row in
        sqlx::query("SELECT status, COUNT(*) AS n FROM upgrades WHERE plan_id = $1 GROUP BY status")
            .bind(plan_id)
            .fetch_all(pool)
            .await?
    {
        let n: i64 = row.try_get("n")?;
        by_status.insert(status_parts(row.try_get("status")?).1, n as u64);
    }
    let mut by_outcome = BTreeMap::new();
    for row in sqlx::query(
        "SELECT outcome, COUNT(*) AS n FROM upgrades WHERE plan_id = $1 GROUP BY outcome",
    )
    .bind(plan_id)
    .fetch_all(pool)
    .await?
    {
        let n: i64 = row.try_get("n")?;
        by_outcome.insert(row.try_get("outcome")?, n as u64);
    }
    Ok(PlanCounts {
        devices: devices as u64,
        by_status,
        by_outcome,
    })
}

/// A plan's upgrade log, oldest first.
pub async fn plan_log(
    pool: &AnyPool,
    plan_id: i64,
    window: &Window,
) -> Result<Vec<LogEntry>, ApiError> {
    check_plan(pool, plan_id).await?;
    let (limit, offset) = window.bounds();
    let rows = sqlx::query(&format!(
        "SELECT {LOG_COLUMNS} FROM upgrade_log JOIN devices ON devices.id = upgrade_log.device_id
         WHERE upgrade_log.plan_id = $1 ORDER BY upgrade_log.id LIMIT $2 OFFSET $3"
    ))
    .bind(plan_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    rows.iter().map(log_entry).collect()
}

/// A device's upgrades and their log.
pub async fn device_history(
    pool: &AnyPool,
    device_id: i64,
    window: &Window,
) -> Result<DeviceHistory, ApiError> {
    let (limit, offset) = window.bounds();
    let upgrades = sqlx::query(&format!(
        "SELECT {UPGRADE_COLUMNS} FROM upgrades JOIN devices ON devices.id = upgrades.device_id
         WHERE upgrades.device_id = $1 ORDER BY upgrades.plan_id DESC, upgrades.identity"
    ))
    .bind(device_id)
    .fetch_all(pool)
    .await?;
    let log = sqlx::query(&format!(
        "SELECT {LOG_COLUMNS} FROM upgrade_log JOIN devices ON devices.id = upgrade_log.device_id
         WHERE upgrade_log.device_id = $1 ORDER BY upgrade_log.id LIMIT $2 OFFSET $3"
    ))
    .bind(device_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    Ok(DeviceHistory {
        upgrades: upgrades
            .iter()
            .map(upgrade_view)
            .collect::<Result<_, _>>()?,
        log: log.iter().map(log_entry).collect::<Result<_, _>>()?,
    })
}

/// A CSV field: quoted when it holds a separator, quote or line break (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The log as CSV with a header line (RFC 4180, CRLF line ends).
pub fn log_csv(entries: &[LogEntry]) -> String {
    let mut out = String::from(
        "id,at,plan_id,device_key,identity,source,status,status_name,percent,message\r\n",
    );
    for e in entries {
        let fields = [
            e.id.to_string(),
            e.at.clone(),
            e.plan_id.to_string(),
            e.device_key.clone(),
            e.identity.clone(),
            e.source.clone(),
            e.status.to_string(),
            e.status_name.clone(),
            e.percent.map(|p| p.to_string()).unwrap_or_default(),
            e.message.clone(),
        ];
        out.push_str(
            &fields
                .iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it() {
        let e = LogEntry {
            id: 1,
            at: "2026-01-01T00:00:00Z".into(),
            plan_id: 2,
            device_key: "d".into(),
            identity: "STM32".into(),
            source: "device".into(),
            status: 3,
            status_name: "refused".into(),
            percent: None,
            message: "low battery, \"12 %\"\nretry".into(),
        };
        let csv = log_csv(&[e]);
        assert_eq!(
            csv,
            "id,at,plan_id,device_key,identity,source,status,status_name,percent,message\r\n\
             1,2026-01-01T00:00:00Z,2,d,STM32,device,3,refused,,\"low battery, \"\"12 %\"\"\nretry\"\r\n"
        );
    }
}
