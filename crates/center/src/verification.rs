//! Verification: try a package on one device and one component before a mass
//! upgrade. A job starts `pending`; its log and outcome are the package's
//! verification details. The device side (a later issue) reports through
//! [`append_log`] and [`finish`], as operators can through the API now.

use sqlx::{AnyPool, Row};

use crate::error::ApiError;
use crate::package::{self, PackageType};
use crate::{device, product};
pub use sota_api::verification::{
    check_message, LogLine, LogReport, NewVerification, Outcome, OutcomeReport, Verification,
};

/// Start a verification of `package_id` on one device component.
pub async fn create(
    pool: &AnyPool,
    reported: &crate::channel::reported::Reported,
    package_id: i64,
    new: &NewVerification,
) -> Result<Verification, ApiError> {
    let pkg = package::get(pool, package_id).await?;
    new.check()?;
    let (product_id, _) = product::get(pool, &new.product_key)
        .await
        .map_err(|e| ApiError::invalid("unknown_product", e.message))?;
    let (device_id, dev) = device::get(pool, product_id, &new.product_key, &new.device_key)
        .await
        .map_err(|e| ApiError::invalid("unknown_device", e.message))?;
    package::check_product(
        &pkg,
        &new.product_key,
        &format!(
            "a verification on device {:?} of product {:?}",
            new.device_key, new.product_key
        ),
    )?;
    // Versions the device just reported count, though their write may not be on disk yet.
    let mut components = dev.components;
    components.extend(reported.held(device_id));
    let Some(current) = components.get(&new.component_identity) else {
        return Err(ApiError::invalid(
            "unknown_component",
            format!(
                "device {:?} has not reported a component {:?}; it reports: {}",
                new.device_key,
                new.component_identity,
                components.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    };
    if pkg.meta.package_type == PackageType::Delta
        && pkg.meta.source_version.as_deref() != Some(current.as_str())
    {
        return Err(ApiError::invalid(
            "version_mismatch",
            format!(
                "delta package {package_id} upgrades from {:?} but the device's {:?} is at {current:?}; pick a device at the source version or a full package",
                pkg.meta.source_version.as_deref().unwrap_or(""),
                new.component_identity
            ),
        ));
    }
    let now = crate::now_text();
    let mut tx = pool.begin().await?;
    let id: i64 = sqlx::query(
        "INSERT INTO verifications (package_id, device_id, component_identity, outcome, created_at) VALUES ($1, $2, $3, 'pending', $4) RETURNING id",
    )
    .bind(package_id)
    .bind(device_id)
    .bind(&new.component_identity)
    .bind(&now)
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    sqlx::query("INSERT INTO verification_log (verification_id, at, message) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(&now)
        .bind(format!(
            "verification created: {} {current} → {}",
            new.component_identity, pkg.meta.target_version
        ))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    get(pool, id).await
}

/// One verification, or 404.
pub async fn get(pool: &AnyPool, id: i64) -> Result<Verification, ApiError> {
    let row = sqlx::query(
        "SELECT v.*, d.device_key, p.product_key FROM verifications v
         JOIN devices d ON d.id = v.device_id JOIN products p ON p.id = d.product_id WHERE v.id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| ApiError::not_found(format!("no verification with id {id}")))?;
    let log = sqlx::query(
        "SELECT at, message FROM verification_log WHERE verification_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(LogLine {
            at: r.try_get("at")?,
            message: r.try_get("message")?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let outcome: String = row.try_get("outcome")?;
    let status = u8::try_from(row.try_get::<i64, _>("status")?)
        .ok()
        .and_then(sota_engine::Status::from_code)
        .unwrap_or(sota_engine::Status::None);
    let percent: Option<i64> = row.try_get("percent")?;
    Ok(Verification {
        id,
        package_id: row.try_get("package_id")?,
        product_key: row.try_get("product_key")?,
        device_key: row.try_get("device_key")?,
        component_identity: row.try_get("component_identity")?,
        outcome: match outcome.as_str() {
            "succeeded" => Outcome::Succeeded,
            "failed" => Outcome::Failed,
            _ => Outcome::Pending,
        },
        status: status.code(),
        status_name: sota_protocol::status_name(status).to_string(),
        percent: percent.and_then(|p| u8::try_from(p).ok()),
        created_at: row.try_get("created_at")?,
        finished_at: row.try_get("finished_at")?,
        log,
    })
}

/// A package's verification details, newest first.
pub async fn list_for_package(
    pool: &AnyPool,
    package_id: i64,
) -> Result<Vec<Verification>, ApiError> {
    package::get(pool, package_id).await?;
    let ids = sqlx::query("SELECT id FROM verifications WHERE package_id = $1 ORDER BY id DESC")
        .bind(package_id)
        .fetch_all(pool)
        .await?;
    let mut out = Vec::with_capacity(ids.len());
    for r in ids {
        out.push(get(pool, r.try_get("id")?).await?);
    }
    Ok(out)
}

/// Add a log line to a pending verification.
pub async fn append_log(pool: &AnyPool, id: i64, message: &str) -> Result<Verification, ApiError> {
    check_message(message)?;
    let v = get(pool, id).await?;
    if v.outcome != Outcome::Pending {
        return Err(ApiError::conflict(
            "verification_finished",
            format!("verification {id} has finished; its log is closed"),
        ));
    }
    sqlx::query("INSERT INTO verification_log (verification_id, at, message) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(crate::now_text())
        .bind(message)
        .execute(pool)
        .await?;
    get(pool, id).await
}

/// Record the outcome of a pending verification (once).
pub async fn finish(
    pool: &AnyPool,
    id: i64,
    report: &OutcomeReport,
) -> Result<Verification, ApiError> {
    check_message(&report.message)?;
    if report.outcome == Outcome::Pending {
        return Err(ApiError::invalid(
            "invalid_outcome",
            "an outcome is \"succeeded\" or \"failed\"",
        ));
    }
    get(pool, id).await?;
    let now = crate::now_text();
    let outcome = if report.outcome == Outcome::Succeeded {
        "succeeded"
    } else {
        "failed"
    };
    let mut tx = pool.begin().await?;
    let done = sqlx::query("UPDATE verifications SET outcome = $1, finished_at = $2 WHERE id = $3 AND outcome = 'pending'")
        .bind(outcome)
        .bind(&now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(ApiError::conflict(
            "verification_finished",
            format!("verification {id} already has an outcome"),
        ));
    }
    sqlx::query("INSERT INTO verification_log (verification_id, at, message) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(&now)
        .bind(format!("{outcome}: {}", report.message))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    get(pool, id).await
}
