//! The one client of the center's HTTP API (`/api/v1` on the page's own origin) for the
//! engineer's pages: typed with `sota-api`'s bodies, signed in with the operator token kept
//! in this browser, every refusal turned into the API's own message.
//!
//! Uploads go through `XMLHttpRequest`, the one browser request that reports upload progress.

use std::cell::RefCell;
use std::rc::Rc;

use serde::de::DeserializeOwned;
use sota_api::device::{Device, Paging};
use sota_api::monitoring::DeviceHistory;
use sota_api::package::Package;
use sota_api::product::Product;
use sota_api::ErrorBody;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{FormData, Headers, ProgressEvent, Request, RequestInit, Response, XmlHttpRequest};

/// Where the API lives on the page's origin.
pub const BASE: &str = "/api/v1";
/// The browser storage key of the operator token.
const TOKEN_KEY: &str = "sota-console.operator-token";

/// Why a request did not give what was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status; 0 when the center was not reached.
    pub status: u16,
    /// The API's code (`ErrorBody::error`), or `network` / `http` / `bad_body` from here.
    pub code: String,
    /// The API's message, or what went wrong on the way.
    pub message: String,
}

impl ApiError {
    /// An answer of `status` with `body`: the API's `{error, message}`, else the text itself.
    pub fn from_response(status: u16, body: &str) -> ApiError {
        match serde_json::from_str::<ErrorBody>(body) {
            Ok(b) => ApiError {
                status,
                code: b.error,
                message: b.message,
            },
            Err(_) => {
                let text: String = body.trim().chars().take(300).collect();
                ApiError {
                    status,
                    code: "http".into(),
                    message: if text.is_empty() {
                        format!("the center answered {status} with no explanation")
                    } else {
                        format!("the center answered {status}: {text}")
                    },
                }
            }
        }
    }

    fn network(what: &str, e: JsValue) -> ApiError {
        ApiError {
            status: 0,
            code: "network".into(),
            message: format!("{what}: the center did not answer ({})", js_message(e)),
        }
    }

    /// True when the token is missing, unknown or not allowed: the engineer signs in again.
    pub fn signed_out(&self) -> bool {
        matches!(self.status, 401 | 403)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn js_message(e: JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// The operator token kept in this browser, if any.
pub fn token() -> Option<String> {
    storage()?
        .get_item(TOKEN_KEY)
        .ok()
        .flatten()
        .filter(|t| !t.trim().is_empty())
}

/// Keeps `token` in this browser for the next requests and pages.
pub fn sign_in(token: &str) {
    if let Some(s) = storage() {
        let _ = s.set_item(TOKEN_KEY, token.trim());
    }
}

/// Forgets the token.
pub fn sign_out() {
    if let Some(s) = storage() {
        let _ = s.remove_item(TOKEN_KEY);
    }
}

/// A path segment, percent-encoded.
pub fn segment(s: &str) -> String {
    String::from(js_sys::encode_uri_component(s))
}

/// `/products/{key}/devices` with the paging and the key prefix as query parameters.
pub fn devices_path(product: &str, paging: &Paging) -> String {
    let mut query = Vec::new();
    if let Some(o) = paging.offset {
        query.push(format!("offset={o}"));
    }
    if let Some(l) = paging.limit {
        query.push(format!("limit={l}"));
    }
    if let Some(q) = paging.q.as_deref().filter(|q| !q.is_empty()) {
        query.push(format!("q={}", segment(q)));
    }
    let mut path = format!("/products/{}/devices", segment(product));
    if !query.is_empty() {
        path.push('?');
        path.push_str(&query.join("&"));
    }
    path
}

fn bearer() -> Option<String> {
    token().map(|t| format!("Bearer {t}"))
}

/// Sends `method path` with the token; the status and the body's text.
async fn send(method: &str, path: &str) -> Result<(u16, String), ApiError> {
    let what = format!("{method} {BASE}{path}");
    let init = RequestInit::new();
    init.set_method(method);
    let headers = Headers::new().map_err(|e| ApiError::network(&what, e))?;
    let _ = headers.set("Accept", "application/json");
    if let Some(b) = bearer() {
        let _ = headers.set("Authorization", &b);
    }
    init.set_headers(&headers);
    let request = Request::new_with_str_and_init(&format!("{BASE}{path}"), &init)
        .map_err(|e| ApiError::network(&what, e))?;
    let window = web_sys::window().ok_or_else(|| ApiError::network(&what, "no window".into()))?;
    let response: Response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(|e| ApiError::network(&what, e))?
        .unchecked_into();
    let text = match response.text() {
        Ok(p) => JsFuture::from(p)
            .await
            .map_err(|e| ApiError::network(&what, e))?
            .as_string()
            .unwrap_or_default(),
        Err(e) => return Err(ApiError::network(&what, e)),
    };
    Ok((response.status(), text))
}

/// The body of a 2xx answer as `T`, else the API's refusal.
pub fn decode<T: DeserializeOwned>(status: u16, text: &str) -> Result<T, ApiError> {
    if !(200..300).contains(&status) {
        return Err(ApiError::from_response(status, text));
    }
    serde_json::from_str(text).map_err(|e| ApiError {
        status,
        code: "bad_body".into(),
        message: format!("the center's answer is not what this page expects: {e}"),
    })
}

/// `GET path` as `T`.
pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, ApiError> {
    let (status, text) = send("GET", path).await?;
    decode(status, &text)
}

/// `DELETE path`.
pub async fn delete(path: &str) -> Result<(), ApiError> {
    let (status, text) = send("DELETE", path).await?;
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(ApiError::from_response(status, &text))
    }
}

/// Every product.
pub async fn products() -> Result<Vec<Product>, ApiError> {
    get("/products").await
}

/// One page of a product's devices (with `q`, those whose key starts with it).
pub async fn devices(product: &str, paging: &Paging) -> Result<Vec<Device>, ApiError> {
    get(&devices_path(product, paging)).await
}

/// One device and its components.
pub async fn device(product: &str, key: &str) -> Result<Device, ApiError> {
    get(&format!(
        "/products/{}/devices/{}",
        segment(product),
        segment(key)
    ))
    .await
}

/// A device's upgrades and their log.
pub async fn history(product: &str, key: &str) -> Result<DeviceHistory, ApiError> {
    get(&format!(
        "/products/{}/devices/{}/upgrades",
        segment(product),
        segment(key)
    ))
    .await
}

/// Every version package, newest first.
pub async fn packages() -> Result<Vec<Package>, ApiError> {
    get("/packages").await
}

/// Deletes a package (refused while a plan uses it).
pub async fn delete_package(id: i64) -> Result<(), ApiError> {
    delete(&format!("/packages/{id}")).await
}

/// Uploads a package: `fields` in order (the product key first, so an unknown product is
/// refused before any file is sent), then `files` as `file` parts. `progress` gets the bytes
/// sent so far of the whole request.
pub async fn upload_package(
    fields: &[(&'static str, String)],
    files: &[web_sys::File],
    progress: impl Fn(f64) + 'static,
) -> Result<Package, ApiError> {
    let what = format!("POST {BASE}/packages");
    let net = |e| ApiError::network(&what, e);
    let form = FormData::new().map_err(net)?;
    for (name, value) in fields {
        form.append_with_str(name, value).map_err(net)?;
    }
    for file in files {
        form.append_with_blob_and_filename("file", file, &file.name())
            .map_err(net)?;
    }
    let xhr = XmlHttpRequest::new().map_err(net)?;
    xhr.open("POST", &format!("{BASE}/packages")).map_err(net)?;
    if let Some(b) = bearer() {
        xhr.set_request_header("Authorization", &b).map_err(net)?;
    }
    let (done_tx, done_rx) = futures::channel::oneshot::channel::<()>();
    let done_tx = Rc::new(RefCell::new(Some(done_tx)));
    let on_progress = Closure::<dyn FnMut(ProgressEvent)>::new(move |e: ProgressEvent| {
        progress(e.loaded());
    });
    let on_end = Closure::<dyn FnMut()>::new(move || {
        if let Some(tx) = done_tx.borrow_mut().take() {
            let _ = tx.send(());
        }
    });
    xhr.upload()
        .map_err(net)?
        .set_onprogress(Some(on_progress.as_ref().unchecked_ref()));
    xhr.set_onloadend(Some(on_end.as_ref().unchecked_ref()));
    xhr.send_with_opt_form_data(Some(&form)).map_err(net)?;
    let _ = done_rx.await;
    drop((on_progress, on_end));
    let status = xhr.status().unwrap_or(0);
    if status == 0 {
        return Err(ApiError::network(&what, "the upload broke off".into()));
    }
    let text = xhr.response_text().ok().flatten().unwrap_or_default();
    decode(status, &text)
}
