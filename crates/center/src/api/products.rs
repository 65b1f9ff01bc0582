//! `/products`: create, list and look up products.

use axum::http::StatusCode;

use super::extract::{Json, Path, Query};
use super::Shared;
use crate::error::{ApiError, ErrorBody};
use crate::product::{self, NewProduct, Product, ProductFilter};

/// Create a product; the answer carries its generated secret.
#[utoipa::path(post, path = "/api/v1/products", tag = "products", request_body = NewProduct,
    responses((status = 201, description = "Created", body = Product), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn create(
    state: Shared,
    Json(body): Json<NewProduct>,
) -> Result<(StatusCode, axum::Json<Product>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(product::create(&state.pool, &body, false).await?),
    ))
}

/// Products by key, a page of them, optionally searched by key or name.
#[utoipa::path(get, path = "/api/v1/products", tag = "products", params(ProductFilter),
    responses((status = 200, description = "Products", body = Vec<Product>), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn list(
    state: Shared,
    Query(filter): Query<ProductFilter>,
) -> Result<axum::Json<Vec<Product>>, ApiError> {
    Ok(axum::Json(product::list(&state.pool, &filter).await?))
}

/// One product.
#[utoipa::path(get, path = "/api/v1/products/{product_key}", tag = "products",
    params(("product_key" = String, Path, description = "Product key")),
    responses((status = 200, description = "The product", body = Product), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn get(state: Shared, Path(key): Path<String>) -> Result<axum::Json<Product>, ApiError> {
    Ok(axum::Json(product::get(&state.pool, &key).await?.1))
}
