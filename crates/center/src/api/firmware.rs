//! `GET /firmware/{token}`: the per-device download, streamed from the store,
//! with `Range`, `If-Range`, `ETag` / `If-None-Match` and `Content-Length`.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange};
use sqlx::Row;

use super::extract::Path;
use super::Shared;
use crate::download::{parse_range, RangeRequest};
use crate::error::{ApiError, ErrorBody};

/// Body frame size for local files: large frames mean few wake-ups per download.
const CHUNK: usize = 4 * 1024 * 1024;

/// Download one firmware file through a per-device link.
#[utoipa::path(get, path = "/api/v1/firmware/{token}", tag = "firmware", security(()),
    params(("token" = String, Path, description = "Link token from an offer or a link request"),
        ("Range" = Option<String>, Header, description = "e.g. bytes=1024-")),
    responses((status = 200, description = "The whole file", content_type = "application/octet-stream"),
        (status = 206, description = "The requested range", content_type = "application/octet-stream"),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = "4XX", description = "Invalid, expired or unsatisfiable", body = ErrorBody)))]
pub async fn download(
    state: Shared,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let grant = state
        .signer
        .verify(&token, jiff::Timestamp::now().as_second())?;
    let row = sqlx::query("SELECT file_name, object_key, size, sha256 FROM package_files WHERE package_id = $1 AND position = $2")
        .bind(grant.package_id)
        .bind(i64::from(grant.position))
        .fetch_optional(&state.pool)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::GONE, "package_deleted", "the package of this link has been deleted"))?;
    let file_name: String = row.try_get("file_name")?;
    let key: String = row.try_get("object_key")?;
    let size = row.try_get::<i64, _>("size")? as u64;
    let sha256: String = row.try_get("sha256")?;
    let etag = format!("\"{sha256}\"");
    let etag_value = HeaderValue::from_str(&etag).map_err(|_| ApiError::internal("bad ETag"))?;

    let header_str = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(inm) = header_str(header::IF_NONE_MATCH) {
        if inm.split(',').any(|t| t.trim() == etag || t.trim() == "*") {
            return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response());
        }
    }
    // A stale If-Range means the client's partial copy is of another file: send it all.
    let range_header = match header_str(header::IF_RANGE) {
        Some(ir) if ir.trim() != etag => None,
        _ => header_str(header::RANGE),
    };
    let (status, start, end) = match parse_range(range_header, size) {
        RangeRequest::Full => (StatusCode::OK, 0, size),
        RangeRequest::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b),
        RangeRequest::Unsatisfiable => {
            let mut r = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the file has {size} bytes; request a range inside it"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(r);
        }
    };

    let len = end - start;
    let body = if let Some(root) = &state.store.local_root {
        let path = root.join(&key);
        let missing = |e: std::io::Error| {
            ApiError::new(
                StatusCode::GONE,
                "file_missing",
                format!("the firmware file is missing from the store ({e}); re-upload the package"),
            )
        };
        if len == 0 {
            Body::empty()
        } else {
            let whole = mapped(&state, &key, &path).map_err(missing)?;
            if (whole.len() as u64) < end {
                return Err(missing(std::io::Error::other(
                    "the stored file is shorter than recorded",
                )));
            }
            let bytes = whole.slice(start as usize..end as usize);
            // Zero-copy: hyper writes straight from the page cache mapping.
            let chunks = (0..bytes.len()).step_by(CHUNK).map(move |at| {
                Ok::<_, std::io::Error>(bytes.slice(at..(at + CHUNK).min(bytes.len())))
            });
            Body::from_stream(futures::stream::iter(chunks))
        }
    } else if len == 0 {
        Body::empty()
    } else {
        let opts = GetOptions {
            range: Some(GetRange::Bounded(start..end)),
            ..Default::default()
        };
        let got = state
            .store
            .objects
            .get_opts(&ObjectPath::from(key.as_str()), opts)
            .await?;
        Body::from_stream(got.into_stream().map(|r| r.map_err(std::io::Error::other)))
    };

    let mut resp = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, len)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, etag_value)
        .header(header::CACHE_CONTROL, "private, max-age=0");
    if status == StatusCode::PARTIAL_CONTENT {
        resp = resp.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{size}", end - 1),
        );
    }
    let safe_name: String = file_name
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\')
        .collect();
    resp = resp.header(
        header::CONTENT_DISPOSITION,
        format!("attachment; filename=\"{safe_name}\""),
    );
    resp.body(body)
        .map_err(|e| ApiError::internal(format!("cannot build the download response: {e}")))
}

/// Most files kept mapped between downloads.
const MAPPED_FILES: usize = 32;

/// The whole file mapped into memory, shared by concurrent downloads (one map
/// per file, not per request, so its pages are faulted in once).
fn mapped(
    state: &super::AppState,
    key: &str,
    path: &std::path::Path,
) -> std::io::Result<bytes::Bytes> {
    if let Some(b) = state.mapped.lock().ok().and_then(|m| m.get(key).cloned()) {
        return Ok(b);
    }
    let file = std::fs::File::open(path)?;
    // SAFETY: committed objects are immutable (a fresh key per upload, never
    // rewritten; deletion unlinks, which keeps the mapping valid), so the
    // mapped bytes cannot change or shrink under a response.
    let map = unsafe { memmap2::Mmap::map(&file) }?;
    let bytes = bytes::Bytes::from_owner(map);
    if let Ok(mut m) = state.mapped.lock() {
        if m.len() >= MAPPED_FILES {
            m.clear();
        }
        m.insert(key.to_string(), bytes.clone());
    }
    Ok(bytes)
}
