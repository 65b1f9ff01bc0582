//! Extractors whose rejections are `{error, message}` bodies, not plain text.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let bytes =
            axum::body::Bytes::from_request(Request::from_parts(parts.clone(), body), state)
                .await
                .map_err(|r| {
                    ApiError::new(
                        r.status(),
                        "bad_body",
                        format!("cannot read the request body: {}", r.body_text()),
                    )
                })?;
        if has_nul_escape(&bytes) {
            return Err(nul_refused("the body"));
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// Text holding the NUL character cannot be stored (PostgreSQL refuses it in any text column),
/// so both backends refuse it on the way in, with the same message.
pub fn nul_refused(place: &str) -> ApiError {
    ApiError::invalid(
        "nul_character",
        format!("{place} holds the NUL character (\\u0000 or %00), which no text here may hold; remove it"),
    )
}

/// Whether a JSON text has a `\u0000` escape (a raw NUL is no valid JSON anyway).
fn has_nul_escape(json: &[u8]) -> bool {
    json.windows(6).enumerate().any(|(i, w)| {
        w[0] == b'\\'
            && w[1] == b'u'
            && &w[2..] == b"0000"
            // Not itself an escaped backslash: an odd run of backslashes before the `u`.
            && json[..i].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 0
    })
}

/// Whether a URI part has `%00` (a NUL once decoded).
fn has_nul_percent(text: &str) -> bool {
    text.as_bytes().windows(3).any(|w| w == b"%00")
}

fn json_rejection(r: JsonRejection) -> ApiError {
    let text = r.body_text();
    match r {
        JsonRejection::JsonDataError(_) => ApiError::invalid(
            "invalid_body",
            format!("{text}; see the request schema in /api/v1/openapi.json"),
        ),
        JsonRejection::JsonSyntaxError(_) => {
            ApiError::bad_request(format!("{text}; send a valid JSON document"))
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
        ),
        other => ApiError::new(
            other.status(),
            "bad_body",
            format!("cannot read the request body: {text}"),
        ),
    }
}

/// Path parameters.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if has_nul_percent(parts.uri.path()) {
            return Err(nul_refused("the path"));
        }
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(r) => Err(path_rejection(r)),
        }
    }
}

fn path_rejection(r: PathRejection) -> ApiError {
    ApiError::bad_request(format!(
        "bad path parameter: {}; ids are positive integers",
        r.body_text()
    ))
}

/// Query parameters.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if parts.uri.query().is_some_and(has_nul_percent) {
            return Err(nul_refused("the query string"));
        }
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(r) => Err(query_rejection(r)),
        }
    }
}

fn query_rejection(r: QueryRejection) -> ApiError {
    ApiError::bad_request(format!("bad query string: {}", r.body_text()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_escapes_and_percent_nuls_are_found_and_nothing_else() {
        assert!(has_nul_escape(br#"{"name":"a\u0000b"}"#));
        assert!(
            !has_nul_escape(br#"{"name":"a\\u0000b"}"#),
            "an escaped backslash"
        );
        assert!(has_nul_escape(br#"{"name":"a\\\u0000"}"#));
        assert!(!has_nul_escape(br#"{"name":"u0000"}"#));
        assert!(has_nul_percent("q=a%00b"));
        assert!(!has_nul_percent("q=a%20b"));
    }
}
