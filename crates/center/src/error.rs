//! The one error type of the API: a status, a stable code and a message that
//! tells the operator what to change.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
pub use sota_api::{ErrorBody, Refusal};

/// An API error: rendered as `{error, message}` with its status.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// HTTP status to answer with.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable, actionable message.
    pub message: String,
}

impl ApiError {
    /// An error with an explicit status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    /// 400: the request is malformed (syntax, encoding).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    /// 422: the request is well-formed but breaks a rule; `code` names the rule.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
    /// 404: the named thing does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    /// 409: the request conflicts with the current state.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
    /// 401: no or a wrong operator token.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    /// 500: a fault of the server itself (storage, OS), never of the request.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

/// A rule of the API (`sota-api`) refused the request: its status, code and message.
impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
        Self::new(status, r.code, r.message)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => ApiError::conflict(
                "already_exists",
                format!(
                    "this would duplicate an existing record ({d}); choose another key or name"
                ),
            ),
            // PostgreSQL's "character not in repertoire": a NUL in text that got past the
            // extractors (a multipart field).
            sqlx::Error::Database(d) if d.code().as_deref() == Some("22021") => {
                crate::api::extract::nul_refused("the request")
            }
            sqlx::Error::PoolTimedOut => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the metadata database is busy; retry in a moment",
            ),
            _ => ApiError::internal(format!("metadata database error: {e}")),
        }
    }
}

impl From<object_store::Error> for ApiError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { path, .. } => ApiError::not_found(format!(
                "firmware object {path} is missing from the store; re-upload the package"
            )),
            e => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                format!("firmware store error: {e}; check the store configuration and retry"),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.to_string(),
            message: self.message,
        };
        (self.status, axum::Json(body)).into_response()
    }
}
