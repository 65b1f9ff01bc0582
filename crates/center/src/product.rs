//! Products: a key, a name and a secret; a product groups devices of one kind.

use sqlx::{AnyPool, Row};

use crate::error::ApiError;
pub use sota_api::product::{NewProduct, Product, ProductFilter};
pub use sota_api::rules::{check_key, check_name};

/// Create a product with a fresh secret.
pub async fn create(pool: &AnyPool, new: &NewProduct, demo: bool) -> Result<Product, ApiError> {
    check_key("product_key", &new.product_key)?;
    check_name("product name", &new.name)?;
    let secret = crate::random_hex(16)?;
    let now = crate::now_text();
    let done = sqlx::query(
        "INSERT INTO products (product_key, name, product_secret, demo, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (product_key) DO NOTHING",
    )
    .bind(&new.product_key)
    .bind(&new.name)
    .bind(&secret)
    .bind(i64::from(demo))
    .bind(&now)
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(ApiError::conflict(
            "product_exists",
            format!(
                "a product with key {:?} already exists; choose another product_key",
                new.product_key
            ),
        ));
    }
    Ok(Product {
        product_key: new.product_key.clone(),
        name: new.name.clone(),
        product_secret: secret,
        demo,
        created_at: now,
    })
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<Product, sqlx::Error> {
    Ok(Product {
        product_key: row.try_get("product_key")?,
        name: row.try_get("name")?,
        product_secret: row.try_get("product_secret")?,
        demo: row.try_get::<i64, _>("demo")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

/// A page of the products, by key; with `q`, those whose key or name contains it.
pub async fn list(pool: &AnyPool, filter: &ProductFilter) -> Result<Vec<Product>, ApiError> {
    let (limit, offset) = crate::db::window(filter.offset, filter.limit);
    let rows = sqlx::query(
        "SELECT * FROM products
         WHERE $1 IS NULL OR lower(product_key) LIKE lower($1) ESCAPE '\\' OR lower(name) LIKE lower($1) ESCAPE '\\'
         ORDER BY product_key LIMIT $2 OFFSET $3",
    )
    .bind(crate::db::search(&filter.q))
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

/// One product and its row id, or 404.
pub async fn get(pool: &AnyPool, key: &str) -> Result<(i64, Product), ApiError> {
    let row = sqlx::query("SELECT * FROM products WHERE product_key = $1")
        .bind(key)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no product with key {key:?}; list them with GET /api/v1/products"
            ))
        })?;
    Ok((row.try_get("id")?, from_row(&row)?))
}
