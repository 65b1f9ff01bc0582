//! Products: a key, a name and a secret; a product groups devices of one kind.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A product as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Product {
    /// Unique key, e.g. `p1aroma`.
    pub product_key: String,
    /// Display name.
    pub name: String,
    /// Secret devices use to register (next issue).
    pub product_secret: String,
    /// True for the demo data seeded on first start.
    pub demo: bool,
    /// Creation time (RFC 3339).
    pub created_at: String,
}

/// Body of `POST /api/v1/products`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProduct {
    /// Unique key: 1–64 of `A-Z a-z 0-9 _ -`.
    pub product_key: String,
    /// Display name, 1–128 characters.
    pub name: String,
}

/// Which products to list, and which page of them (by key).
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductFilter {
    /// Number of products to skip.
    pub offset: Option<u32>,
    /// At most this many products (1 to 1000); without it, every one from `offset` on.
    pub limit: Option<u32>,
    /// Only products whose key or name contains this text (ignoring ASCII case).
    pub q: Option<String>,
}
