//! `/packages`: streaming upload, list, look up, delete, and download links.

use axum::extract::multipart::{Field, Multipart, MultipartRejection};
use axum::http::StatusCode;

use super::extract::{Json, Path, Query};
use super::Shared;
use crate::error::{ApiError, ErrorBody};
use crate::package::{
    self, check_file_name, ComponentType, FileWriter, Package, PackageMeta, PackageType,
    StoredFile, MAX_FILES,
};
use crate::{device, product};
pub use sota_api::package::{Link, LinkRequest, PackageFilter, PackageUpload};

const TEXT_LIMIT: usize = 4096;

async fn text_of(mut field: Field<'_>, name: &str) -> Result<String, ApiError> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if buf.len() + chunk.len() > TEXT_LIMIT {
            return Err(ApiError::invalid(
                "field_too_long",
                format!("form field {name:?} is longer than {TEXT_LIMIT} bytes"),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf)
        .map_err(|_| ApiError::bad_request(format!("form field {name:?} is not UTF-8 text")))
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    ApiError::new(
        e.status(),
        "bad_multipart",
        format!("cannot read the multipart form: {}", e.body_text()),
    )
}

#[derive(Default)]
struct Form {
    product_key: Option<String>,
    name: Option<String>,
    component_type: Option<String>,
    package_type: Option<String>,
    source_version: Option<String>,
    target_version: Option<String>,
    remarks: Option<String>,
}

impl Form {
    /// The product key and the package's descriptive fields.
    fn meta(self) -> Result<(String, PackageMeta), ApiError> {
        let need = |v: Option<String>, name: &str| {
            v.ok_or_else(|| {
                ApiError::invalid(
                    "missing_field",
                    format!("the form lacks the {name:?} field"),
                )
            })
        };
        let product_key = self.product_key.ok_or_else(|| {
            ApiError::invalid(
                "missing_field",
                "the form lacks the \"product_key\" field: a version package belongs to a product; name it (see GET /api/v1/products)",
            )
        })?;
        let meta = PackageMeta {
            name: need(self.name, "name")?,
            component_type: ComponentType::parse(&need(self.component_type, "component_type")?)?,
            package_type: PackageType::parse(&need(self.package_type, "package_type")?)?,
            source_version: self.source_version.filter(|s| !s.is_empty()),
            target_version: need(self.target_version, "target_version")?,
            remarks: self.remarks.unwrap_or_default(),
        };
        Ok((product_key, meta))
    }
}

async fn receive(
    state: &super::AppState,
    mut form: Multipart,
    files: &mut Vec<StoredFile>,
) -> Result<(String, PackageMeta), ApiError> {
    let mut fields = Form::default();
    while let Some(field) = form.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or("").to_string();
        let slot = match name.as_str() {
            "file" => None,
            "product_key" => Some(&mut fields.product_key),
            "name" => Some(&mut fields.name),
            "component_type" => Some(&mut fields.component_type),
            "package_type" => Some(&mut fields.package_type),
            "source_version" => Some(&mut fields.source_version),
            "target_version" => Some(&mut fields.target_version),
            "remarks" => Some(&mut fields.remarks),
            other => {
                return Err(ApiError::invalid(
                    "unknown_field",
                    format!("unknown form field {other:?}; send product_key, name, component_type, package_type, source_version, target_version, remarks and file parts"),
                ))
            }
        };
        if let Some(slot) = slot {
            let text = text_of(field, &name).await?;
            if name == "product_key" {
                // Refused before any file streams in (the commit checks again).
                package::product_of_upload(&state.pool, &text).await?;
            }
            *slot = Some(text);
            continue;
        }
        if files.len() == MAX_FILES {
            return Err(ApiError::invalid(
                "too_many_files",
                format!("a package holds at most {MAX_FILES} files"),
            ));
        }
        let file_name = field.file_name().unwrap_or("").to_string();
        check_file_name(&file_name)?;
        let mut field = field;
        let mut writer = FileWriter::start(
            &state.pool,
            &state.store,
            &state.instance,
            &file_name,
            state.max_file_bytes,
        )
        .await?;
        loop {
            let chunk = match field.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    writer.abort().await;
                    return Err(multipart_error(e));
                }
            };
            if let Err(e) = writer.write(&chunk).await {
                writer.abort().await;
                return Err(e);
            }
        }
        files.push(writer.finish(files.len() as u32).await?);
    }
    if files.is_empty() {
        return Err(ApiError::invalid(
            "no_files",
            "a package needs 1 to 5 files: add `file` parts to the form",
        ));
    }
    let (product_key, meta) = fields.meta()?;
    meta.check()?;
    Ok((product_key, meta))
}

/// Upload a version package (multipart form). Files are digested while they
/// stream into the store; a rejected upload leaves nothing behind.
#[utoipa::path(post, path = "/api/v1/packages", tag = "packages",
    request_body(content = PackageUpload, content_type = "multipart/form-data"),
    responses((status = 201, description = "Stored", body = Package), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn upload(
    state: Shared,
    form: Result<Multipart, MultipartRejection>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match stored(state, form).await {
        Ok(created) => created.into_response(),
        Err(e) => {
            // A refusal may leave the request's body unread; a client that sent its next
            // request on this connection would find it closed under it.
            let mut refused = e.into_response();
            refused.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            refused
        }
    }
}

async fn stored(
    state: Shared,
    form: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, axum::Json<Package>), ApiError> {
    let form = form.map_err(|r| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("{}; upload packages as multipart/form-data", r.body_text()),
        )
    })?;
    let mut files = Vec::new();
    let result = match receive(&state, form, &mut files).await {
        Ok((product_key, meta)) => {
            package::commit(&state.pool, &product_key, &meta, files.clone(), false).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(p) => Ok((StatusCode::CREATED, axum::Json(p))),
        Err(e) => {
            package::discard(&state.pool, &state.store, &files).await;
            Err(e)
        }
    }
}

/// Packages, newest first: all or one product's, a page of them, optionally searched by name.
#[utoipa::path(get, path = "/api/v1/packages", tag = "packages", params(PackageFilter),
    responses((status = 200, description = "Packages", body = Vec<Package>), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn list(
    state: Shared,
    Query(filter): Query<PackageFilter>,
) -> Result<axum::Json<Vec<Package>>, ApiError> {
    Ok(axum::Json(package::list(&state.pool, &filter).await?))
}

/// One package.
#[utoipa::path(get, path = "/api/v1/packages/{id}", tag = "packages",
    params(("id" = i64, Path, description = "Package id")),
    responses((status = 200, description = "The package", body = Package), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn get(state: Shared, Path(id): Path<i64>) -> Result<axum::Json<Package>, ApiError> {
    Ok(axum::Json(package::get(&state.pool, id).await?))
}

/// Delete a package no plan uses.
#[utoipa::path(delete, path = "/api/v1/packages/{id}", tag = "packages",
    params(("id" = i64, Path, description = "Package id")),
    responses((status = 204, description = "Deleted"), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn delete(state: Shared, Path(id): Path<i64>) -> Result<StatusCode, ApiError> {
    package::delete(&state.pool, &state.store, &state.instance, id).await?;
    // Drop mappings so the deleted file's disk space is freed.
    if let Ok(mut m) = state.mapped.lock() {
        m.clear();
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Make an expiring download link of one file for one registered device.
#[utoipa::path(post, path = "/api/v1/packages/{id}/files/{position}/links", tag = "packages",
    params(("id" = i64, Path, description = "Package id"), ("position" = u32, Path, description = "File position, from 0")),
    request_body = LinkRequest,
    responses((status = 201, description = "The link", body = Link), (status = "4XX", description = "Rejected", body = ErrorBody)))]
pub async fn link(
    state: Shared,
    Path((id, position)): Path<(i64, u32)>,
    Json(req): Json<LinkRequest>,
) -> Result<(StatusCode, axum::Json<Link>), ApiError> {
    let pkg = package::get(&state.pool, id).await?;
    if !pkg.files.iter().any(|f| f.position == position) {
        return Err(ApiError::not_found(format!(
            "package {id} has no file at position {position}; it has {} file(s)",
            pkg.files.len()
        )));
    }
    let (pid, _) = product::get(&state.pool, &req.product_key).await?;
    device::get(&state.pool, pid, &req.product_key, &req.device_key).await?;
    let who = format!("a download link for device {:?}", req.device_key);
    package::check_product(&pkg, &req.product_key, &who)?;
    let (url, expires_at) = super::devices::link_for(&state, id, position, &req.device_key)?;
    Ok((StatusCode::CREATED, axum::Json(Link { url, expires_at })))
}
