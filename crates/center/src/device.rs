//! Devices: one product's units, each with its components' reported versions.
//!
//! Devices are created the first time they register; [`register`] is that
//! entry point (the MQTT side of a later issue calls it; operators can call it
//! through `PUT /api/v1/products/{key}/devices/{device_key}` meanwhile).

use std::collections::BTreeMap;

use sqlx::{AnyPool, Row};

use crate::error::ApiError;
use crate::product::check_key;
pub use sota_api::device::{Device, DeviceReport, Paging};
pub use sota_api::rules::check_token;

/// Register a device (creating it on first contact) and record its versions.
pub async fn register(
    pool: &AnyPool,
    product_id: i64,
    device_key: &str,
    report: &DeviceReport,
) -> Result<(), ApiError> {
    let mut tx = pool.begin().await?;
    register_on(&mut tx, product_id, device_key, report).await?;
    tx.commit().await?;
    Ok(())
}

/// [`register`] inside the caller's transaction (the device channel's group commit).
pub async fn register_on(
    tx: &mut sqlx::AnyConnection,
    product_id: i64,
    device_key: &str,
    report: &DeviceReport,
) -> Result<(), ApiError> {
    check_key("device_key", device_key)?;
    if report.components.len() > 64 {
        return Err(ApiError::invalid(
            "too_many_components",
            "a device reports at most 64 components",
        ));
    }
    for (identity, version) in &report.components {
        check_token("component identity", identity)?;
        check_token("component version", version)?;
    }
    let now = crate::now_text();
    sqlx::query(
        "INSERT INTO devices (product_id, device_key, registered_at, last_seen_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (product_id, device_key) DO UPDATE SET last_seen_at = excluded.last_seen_at",
    )
    .bind(product_id)
    .bind(device_key)
    .bind(&now)
    .bind(&now)
    .execute(&mut *tx)
    .await?;
    let id: i64 = sqlx::query("SELECT id FROM devices WHERE product_id = $1 AND device_key = $2")
        .bind(product_id)
        .bind(device_key)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
    for (identity, version) in &report.components {
        sqlx::query(
            "INSERT INTO device_components (device_id, identity, version, reported_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (device_id, identity) DO UPDATE SET version = excluded.version, reported_at = excluded.reported_at",
        )
        .bind(id)
        .bind(identity)
        .bind(version)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

async fn components_of(
    pool: &AnyPool,
    device_id: i64,
) -> Result<BTreeMap<String, String>, ApiError> {
    let rows = sqlx::query("SELECT identity, version FROM device_components WHERE device_id = $1")
        .bind(device_id)
        .fetch_all(pool)
        .await?;
    let mut map = BTreeMap::new();
    for row in rows {
        map.insert(row.try_get("identity")?, row.try_get("version")?);
    }
    Ok(map)
}

/// One device of a product and its row id, or 404.
pub async fn get(
    pool: &AnyPool,
    product_id: i64,
    product_key: &str,
    device_key: &str,
) -> Result<(i64, Device), ApiError> {
    let row = sqlx::query("SELECT * FROM devices WHERE product_id = $1 AND device_key = $2")
        .bind(product_id)
        .bind(device_key)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "product {product_key:?} has no device {device_key:?}; devices appear when they first register"
            ))
        })?;
    let id: i64 = row.try_get("id")?;
    Ok((
        id,
        Device {
            product_key: product_key.to_string(),
            device_key: row.try_get("device_key")?,
            components: components_of(pool, id).await?,
            registered_at: row.try_get("registered_at")?,
            last_seen_at: row.try_get("last_seen_at")?,
        },
    ))
}

/// A page of a product's devices, by key; with `q`, only the keys that start with it.
pub async fn list(
    pool: &AnyPool,
    product_id: i64,
    product_key: &str,
    paging: &Paging,
) -> Result<Vec<Device>, ApiError> {
    let limit = paging.limit.unwrap_or(100).clamp(1, 1000);
    let offset = paging.offset.unwrap_or(0);
    // A key range, not LIKE: SQLite walks the (product_id, device_key) index from `q`.
    let rows = match paging.key_range() {
        Some((from, to)) => sqlx::query(
            "SELECT * FROM devices WHERE product_id = $1 AND device_key >= $2 AND device_key < $3
                 ORDER BY device_key LIMIT $4 OFFSET $5",
        )
        .bind(product_id)
        .bind(from)
        .bind(to)
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(pool)
        .await?,
        None => sqlx::query(
            "SELECT * FROM devices WHERE product_id = $1 ORDER BY device_key LIMIT $2 OFFSET $3",
        )
        .bind(product_id)
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(pool)
        .await?,
    };
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id: i64 = row.try_get("id")?;
        out.push(Device {
            product_key: product_key.to_string(),
            device_key: row.try_get("device_key")?,
            components: components_of(pool, id).await?,
            registered_at: row.try_get("registered_at")?,
            last_seen_at: row.try_get("last_seen_at")?,
        });
    }
    Ok(out)
}
