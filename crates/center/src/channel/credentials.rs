//! Who may log in to the broker: the center with its own secret, a device
//! with its device secret, or — until its secret is confirmed by a first
//! login — with its product's secret to register (QuecThing's dynamic
//! registration). Only SHA-256 hashes of device secrets are stored.

use sha2::{Digest, Sha256};
use sota_protocol::topic::CENTER_USERNAME;
use sota_protocol::DeviceId;
use sqlx::{AnyPool, Row};

use super::writes::Writes;
use crate::device::{self, DeviceReport};
use crate::error::ApiError;
use crate::product;

/// The answer to a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// The center's own client: may use every channel topic.
    Center,
    /// A device: may use only its own topics.
    Device(DeviceId),
    /// Unknown user or wrong secret.
    BadCredentials,
    /// Known, but not allowed (client id not the username, or a registered
    /// device trying the product secret).
    NotAuthorized,
}

fn hash(secret: &str) -> String {
    sota_engine::digest::hex(&Sha256::digest(secret.as_bytes()))
}

/// Constant-time equality: a secret must not leak through timing.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Decide a login. A device's first login with its device secret confirms it
/// (written through `writes`).
pub async fn login(
    pool: &AnyPool,
    writes: &Writes,
    center_secret: &str,
    client_id: &str,
    username: &str,
    password: &str,
) -> Result<Login, ApiError> {
    if username == CENTER_USERNAME {
        if !same(password, center_secret) {
            return Ok(Login::BadCredentials);
        }
        // Like a device's, the center's client id is its username. Further
        // sessions of the center's login (tools such as the channel bench's
        // echo client) are named `sota-center-<suffix>`, so none takes over
        // the center's own session, and no device's id (`<product>&<device>`)
        // can be one of them.
        let tool = client_id
            .strip_prefix(CENTER_USERNAME)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|suffix| !suffix.is_empty());
        return Ok(if client_id == CENTER_USERNAME || tool {
            Login::Center
        } else {
            Login::NotAuthorized
        });
    }
    let Some(id) = DeviceId::from_username(username) else {
        return Ok(Login::BadCredentials);
    };
    if client_id != username {
        // Client ids are the broker's session keys: one device must not take over another's.
        return Ok(Login::NotAuthorized);
    }
    let Ok((product_id, product)) = product::get(pool, &id.product).await else {
        return Ok(Login::BadCredentials);
    };
    let row = sqlx::query("SELECT id, secret_hash, secret_confirmed FROM devices WHERE product_id = $1 AND device_key = $2")
        .bind(product_id)
        .bind(&id.device)
        .fetch_optional(pool)
        .await?;
    let (device_row, secret_hash, confirmed) = match &row {
        Some(r) => (
            Some(r.try_get::<i64, _>("id")?),
            r.try_get::<Option<String>, _>("secret_hash")?,
            r.try_get::<i64, _>("secret_confirmed")? != 0,
        ),
        None => (None, None, false),
    };
    if let (Some(device_row), Some(h)) = (device_row, &secret_hash) {
        if same(&hash(password), h) {
            if !confirmed {
                writes
                    .run(move |conn| {
                        Box::pin(async move {
                            sqlx::query("UPDATE devices SET secret_confirmed = 1 WHERE id = $1")
                                .bind(device_row)
                                .execute(&mut *conn)
                                .await?;
                            Ok(())
                        })
                    })
                    .await?;
            }
            return Ok(Login::Device(id));
        }
    }
    if same(password, &product.product_secret) {
        return Ok(if confirmed {
            Login::NotAuthorized
        } else {
            Login::Device(id)
        });
    }
    Ok(Login::BadCredentials)
}

/// Why a registration was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// Wrong product secret.
    #[error("the product secret is wrong; use the secret shown for product {0:?} in the Developer Center")]
    WrongSecret(String),
    /// The device already logged in with its own secret.
    #[error("device {0} is registered and has used its device secret; log in with that secret (registration is only for new devices)")]
    AlreadyRegistered(DeviceId),
    /// Database.
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// Register a device (creating it if new) and issue a fresh device secret
/// (written through `writes`). Until the device logs in with it, registering
/// again issues another one, so a lost answer does not lock the device out.
pub async fn register(
    pool: &AnyPool,
    writes: &Writes,
    id: &DeviceId,
    product_secret: &str,
) -> Result<String, RegisterError> {
    let (product_id, product) = product::get(pool, &id.product).await?;
    if !same(product_secret, &product.product_secret) {
        return Err(RegisterError::WrongSecret(id.product.clone()));
    }
    let secret = crate::random_hex(16)?;
    // One write: the device (created if new) and its new secret.
    let (device, hashed) = (id.device.clone(), hash(&secret));
    let now = crate::now_text();
    let issued = writes
        .run(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO devices (product_id, device_key, registered_at, last_seen_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (product_id, device_key) DO UPDATE SET last_seen_at = excluded.last_seen_at",
                )
                .bind(product_id)
                .bind(&device)
                .bind(&now)
                .bind(&now)
                .execute(&mut *conn)
                .await?;
                let done = sqlx::query(
                    "UPDATE devices SET secret_hash = $1, secret_confirmed = 0 WHERE product_id = $2 AND device_key = $3 AND secret_confirmed = 0",
                )
                .bind(&hashed)
                .bind(product_id)
                .bind(&device)
                .execute(&mut *conn)
                .await?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await?;
    if !issued {
        return Err(RegisterError::AlreadyRegistered(id.clone()));
    }
    Ok(secret)
}

/// Provision a device for an external broker (an operator's act): create it
/// if new and issue a new, already confirmed device secret, so the product
/// secret never registers it again.
pub async fn provision(pool: &AnyPool, id: &DeviceId) -> Result<String, ApiError> {
    let (product_id, _) = product::get(pool, &id.product).await?;
    device::register(
        pool,
        product_id,
        &id.device,
        &DeviceReport {
            components: Default::default(),
        },
    )
    .await?;
    let secret = crate::random_hex(16)?;
    sqlx::query("UPDATE devices SET secret_hash = $1, secret_confirmed = 1 WHERE product_id = $2 AND device_key = $3")
        .bind(hash(&secret))
        .bind(product_id)
        .bind(&id.device)
        .execute(pool)
        .await?;
    Ok(secret)
}

/// The center's broker secret, created on first start and kept in the database.
pub async fn center_secret(pool: &AnyPool) -> Result<String, ApiError> {
    let secret = crate::db::setting_or_init(pool, "broker_center_secret", || {
        crate::random_hex(32).unwrap_or_default()
    })
    .await?;
    if secret.len() < 32 {
        return Err(ApiError::internal(
            "the broker secret is missing; the OS random source failed",
        ));
    }
    Ok(secret)
}
