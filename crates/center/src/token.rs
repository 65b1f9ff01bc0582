//! Operator tokens: bearer tokens for the API. Only their SHA-256 is stored.

use sha2::{Digest, Sha256};
use sqlx::AnyPool;

use crate::error::ApiError;
use crate::product::check_key;

/// SHA-256 of a token, lowercase hex: what the database keeps.
pub fn hash(token: &str) -> String {
    sota_engine::digest::hex(&Sha256::digest(token.as_bytes()))
}

/// Create a named token; returns the token, shown once.
pub async fn create(pool: &AnyPool, name: &str) -> Result<String, ApiError> {
    check_key("token name", name)?;
    let token = format!("sc_{}", crate::random_hex(24)?);
    let done = sqlx::query(
        "INSERT INTO operator_tokens (name, token_hash, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(hash(&token))
    .bind(crate::now_text())
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(ApiError::conflict(
            "token_exists",
            format!("a token named {name:?} already exists; pick another --name"),
        ));
    }
    Ok(token)
}

/// The name of the operator holding `token`, if it is valid.
pub async fn check(pool: &AnyPool, token: &str) -> Result<Option<String>, ApiError> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT name FROM operator_tokens WHERE token_hash = $1")
            .bind(hash(token))
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|r| r.0))
}
