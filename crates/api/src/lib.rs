//! `sota-api` — the Developer Center's HTTP API under `/api/v1`, as data.
//!
//! The request and response bodies of every endpoint, the error body, and
//! the rules a request must meet that need no database (a plan's fields, a
//! package's fields and file names, keys and versions). The center
//! (`sota-center`) serves these types and checks these rules; the console's
//! pages send and render the same types and run the same checks before they
//! send. The center's OpenAPI document is derived from them (utoipa), so
//! their doc comments are the API's descriptions.
//!
//! No I/O and no database: this crate builds for `wasm32-unknown-unknown`.

#![deny(missing_docs)]

pub mod device;
pub mod events;
pub mod monitoring;
pub mod package;
pub mod plan;
pub mod product;
pub mod push;
pub mod rules;
pub mod verification;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The JSON body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// A stable machine-readable code, e.g. `plan_frozen`.
    pub error: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// A request that breaks one of the API's rules: the center answers it with
/// `status` and an [`ErrorBody`] of `code` and `message`; a page shows the
/// message before sending.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Refusal {
    /// The HTTP status the center answers with: 422 for a value that breaks
    /// a rule, 409 for a request that conflicts with the current state.
    pub status: u16,
    /// Stable machine-readable code, e.g. `invalid_push_period`.
    pub code: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Refusal {
    /// 422: the request is well-formed but breaks a rule; `code` names the rule.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: 422,
            code,
            message: message.into(),
        }
    }

    /// 409: the request conflicts with the current state.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: 409,
            code,
            message: message.into(),
        }
    }

    /// The body the center answers with.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.code.to_string(),
            message: self.message.clone(),
        }
    }
}
