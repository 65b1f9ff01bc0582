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
use sota_api::package::{Package, PackageFilter};
use sota_api::plan::{Plan, PlanFilter, PlanInput, Transition};
use sota_api::product::{Product, ProductFilter};
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

/// `path` with the given query parameters, percent-encoded; absent and empty ones left out.
fn with_query(mut path: String, params: &[(&str, Option<String>)]) -> String {
    let query: Vec<String> = params
        .iter()
        .filter_map(|(name, value)| {
            let value = value.as_deref().filter(|v| !v.is_empty())?;
            Some(format!("{name}={}", segment(value)))
        })
        .collect();
    if !query.is_empty() {
        path.push('?');
        path.push_str(&query.join("&"));
    }
    path
}

/// A list's `path` with the product, the page and the search as query parameters: every list
/// of the API pages and searches the same way.
fn list_path(
    path: String,
    product: Option<String>,
    offset: Option<u32>,
    limit: Option<u32>,
    q: Option<String>,
) -> String {
    with_query(
        path,
        &[
            ("product", product),
            ("offset", offset.map(|o| o.to_string())),
            ("limit", limit.map(|l| l.to_string())),
            ("q", q),
        ],
    )
}

/// `/products/{key}/devices` with the paging and the key prefix as query parameters.
pub fn devices_path(product: &str, p: &Paging) -> String {
    let path = format!("/products/{}/devices", segment(product));
    list_path(path, None, p.offset, p.limit, p.q.clone())
}

/// `/products` with the page and the search as query parameters.
pub fn products_path(f: &ProductFilter) -> String {
    list_path("/products".into(), None, f.offset, f.limit, f.q.clone())
}

/// `/packages` with the product, the page and the name search as query parameters.
pub fn packages_path(f: &PackageFilter) -> String {
    let product = f.product.clone();
    list_path("/packages".into(), product, f.offset, f.limit, f.q.clone())
}

/// `/plans` with the product, the page and the name search as query parameters.
pub fn plans_path(f: &PlanFilter) -> String {
    let product = f.product.clone();
    list_path("/plans".into(), product, f.offset, f.limit, f.q.clone())
}

fn bearer() -> Option<String> {
    token().map(|t| format!("Bearer {t}"))
}

/// Sends `method path` with the token; the status and the body's text.
async fn send(method: &str, path: &str) -> Result<(u16, String), ApiError> {
    send_with(method, path, None).await
}

/// Sends `method path` with the token and, if given, a JSON body; the status and the body's
/// text.
async fn send_with(
    method: &str,
    path: &str,
    json: Option<&str>,
) -> Result<(u16, String), ApiError> {
    let what = format!("{method} {BASE}{path}");
    let init = RequestInit::new();
    init.set_method(method);
    let headers = Headers::new().map_err(|e| ApiError::network(&what, e))?;
    let _ = headers.set("Accept", "application/json");
    if let Some(b) = bearer() {
        let _ = headers.set("Authorization", &b);
    }
    if let Some(body) = json {
        let _ = headers.set("Content-Type", "application/json");
        init.set_body(&JsValue::from_str(body));
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

/// `method path` with `body` as JSON; the answer as `T`.
pub async fn send_json<B: serde::Serialize, T: DeserializeOwned>(
    method: &str,
    path: &str,
    body: &B,
) -> Result<T, ApiError> {
    let json = serde_json::to_string(body).map_err(|e| ApiError {
        status: 0,
        code: "bad_body".into(),
        message: format!("this page could not write the request: {e}"),
    })?;
    let (status, text) = send_with(method, path, Some(&json)).await?;
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

/// One page of the products (with `q`, those whose key or name contains it).
pub async fn products_page(filter: &ProductFilter) -> Result<Vec<Product>, ApiError> {
    get(&products_path(filter)).await
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

/// One page of the version packages, newest first (of one product, by name).
pub async fn packages_page(filter: &PackageFilter) -> Result<Vec<Package>, ApiError> {
    get(&packages_path(filter)).await
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

/// One page of the upgrade plans, newest first (of one product, by name).
pub async fn plans(filter: &PlanFilter) -> Result<Vec<Plan>, ApiError> {
    get(&plans_path(filter)).await
}

/// One plan.
pub async fn plan(id: i64) -> Result<Plan, ApiError> {
    get(&format!("/plans/{id}")).await
}

/// Creates a draft plan.
pub async fn create_plan(input: &PlanInput) -> Result<Plan, ApiError> {
    send_json("POST", "/plans", input).await
}

/// Replaces a draft's content (refused once activated).
pub async fn update_plan(id: i64, input: &PlanInput) -> Result<Plan, ApiError> {
    send_json("PUT", &format!("/plans/{id}"), input).await
}

/// Moves a plan along its life cycle: activate, pause, resume or finish.
pub async fn move_plan(id: i64, transition: Transition) -> Result<Plan, ApiError> {
    send_json(
        "POST",
        &format!("/plans/{id}/{}", transition.verb()),
        &serde_json::json!({}),
    )
    .await
}

/// Deletes a draft (refused once activated).
pub async fn delete_plan(id: i64) -> Result<(), ApiError> {
    delete(&format!("/plans/{id}")).await
}

// Verification jobs and upgrade monitoring (the verify and monitoring pages).

/// One version package.
pub async fn package(id: i64) -> Result<sota_api::package::Package, ApiError> {
    get(&format!("/packages/{id}")).await
}

/// A package's verification jobs, newest first.
pub async fn verifications(
    package: i64,
) -> Result<Vec<sota_api::verification::Verification>, ApiError> {
    get(&format!("/packages/{package}/verifications")).await
}

/// One verification job and its log.
pub async fn verification(id: i64) -> Result<sota_api::verification::Verification, ApiError> {
    get(&format!("/verifications/{id}")).await
}

/// Starts verifying `package` on one device's component.
pub async fn verify(
    package: i64,
    job: &sota_api::verification::NewVerification,
) -> Result<sota_api::verification::Verification, ApiError> {
    send_json("POST", &format!("/packages/{package}/verifications"), job).await
}

/// `path` with a window of a list as query parameters.
pub fn window_path(path: String, window: &sota_api::monitoring::Window) -> String {
    with_query(
        path,
        &[
            ("offset", window.offset.map(|o| o.to_string())),
            ("limit", window.limit.map(|l| l.to_string())),
        ],
    )
}

/// One page of a plan's devices (by key), each with its components' upgrades.
pub async fn plan_devices(
    plan: i64,
    window: &sota_api::monitoring::Window,
) -> Result<Vec<sota_api::monitoring::PlanDevice>, ApiError> {
    get(&window_path(format!("/plans/{plan}/devices"), window)).await
}

/// How many of a plan's upgrades stand at each status and outcome.
pub async fn plan_counts(plan: i64) -> Result<sota_api::monitoring::PlanCounts, ApiError> {
    get(&format!("/plans/{plan}/counts")).await
}

/// One page of a plan's upgrade log, oldest first.
pub async fn plan_log(
    plan: i64,
    window: &sota_api::monitoring::Window,
) -> Result<Vec<sota_api::monitoring::LogEntry>, ApiError> {
    get(&window_path(format!("/plans/{plan}/log"), window)).await
}

/// Log lines the center sends in one CSV request at most.
const CSV_PAGE: u32 = 10_000;

/// A plan's whole upgrade log as CSV (the center's own format), read a page of
/// [`CSV_PAGE`] lines at a time; `pages` hears how many pages were read so far.
pub async fn plan_log_csv(plan: i64, pages: impl Fn(u32)) -> Result<String, ApiError> {
    let mut csv = String::new();
    let mut offset = 0;
    for page in 1.. {
        let window = sota_api::monitoring::Window {
            offset: Some(offset),
            limit: Some(CSV_PAGE),
        };
        let (status, text) = send(
            "GET",
            &window_path(format!("/plans/{plan}/log.csv"), &window),
        )
        .await?;
        if !(200..300).contains(&status) {
            return Err(ApiError::from_response(status, &text));
        }
        // Every page starts with the header line; only the first one's is kept.
        let (header, rows) = text.split_once("\r\n").unwrap_or((&text, ""));
        if csv.is_empty() {
            csv.push_str(header);
            csv.push_str("\r\n");
        }
        pages(page);
        if rows.is_empty() {
            break;
        }
        csv.push_str(rows);
        offset += CSV_PAGE;
    }
    Ok(csv)
}

/// A stream of server-sent events a page follows, named by a number so that the page's
/// cleanup (which must be `Send`) can stop it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Following(u64);

/// Streams being followed: the reader of each open one, to cancel it when stopped.
struct Followed {
    next: u64,
    open: std::collections::HashMap<u64, Option<web_sys::ReadableStreamDefaultReader>>,
}

thread_local! {
    static FOLLOWED: RefCell<Followed> = RefCell::new(Followed { next: 0, open: Default::default() });
}

impl Following {
    /// A new stream to follow.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Following {
        FOLLOWED.with(|f| {
            let mut f = f.borrow_mut();
            f.next += 1;
            let id = f.next;
            f.open.insert(id, None);
            Following(id)
        })
    }

    /// Stops following: the request is cancelled and [`follow`] returns.
    pub fn stop(self) {
        if let Some(Some(reader)) = FOLLOWED.with(|f| f.borrow_mut().open.remove(&self.0)) {
            let _ = reader.cancel();
        }
    }

    /// Whether [`Self::stop`] was called.
    pub fn stopped(self) -> bool {
        FOLLOWED.with(|f| !f.borrow().open.contains_key(&self.0))
    }

    /// Keeps `reader` to cancel on stop; false when already stopped.
    fn reading(self, reader: &web_sys::ReadableStreamDefaultReader) -> bool {
        FOLLOWED.with(|f| match f.borrow_mut().open.get_mut(&self.0) {
            Some(slot) => {
                *slot = Some(reader.clone());
                true
            }
            None => false,
        })
    }
}

/// Reads the server-sent events at `path`, calling `on_data` with each event's data, until
/// the stream ends (`Ok`), breaks or is refused (`Err`), or `following` is stopped (`Ok`).
///
/// Read with `fetch`, not the browser's `EventSource`: only `fetch` sends the operator token
/// in the `Authorization` header, and a token in the address would be kept in the center's
/// logs and the browser's history.
pub async fn follow(
    path: &str,
    following: Following,
    mut on_data: impl FnMut(String),
) -> Result<(), ApiError> {
    let what = format!("GET {BASE}{path}");
    let init = RequestInit::new();
    init.set_method("GET");
    let headers = Headers::new().map_err(|e| ApiError::network(&what, e))?;
    let _ = headers.set("Accept", "text/event-stream");
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
    let status = response.status();
    if !(200..300).contains(&status) {
        let text = match response.text() {
            Ok(p) => JsFuture::from(p)
                .await
                .ok()
                .and_then(|t| t.as_string())
                .unwrap_or_default(),
            Err(_) => String::new(),
        };
        return Err(ApiError::from_response(status, &text));
    }
    let reader: web_sys::ReadableStreamDefaultReader = response
        .body()
        .ok_or_else(|| ApiError::network(&what, "the answer has no body".into()))?
        .get_reader()
        .unchecked_into();
    if !following.reading(&reader) {
        let _ = reader.cancel();
        return Ok(());
    }
    let mut events = sota_api::events::EventStream::default();
    loop {
        let read = JsFuture::from(reader.read()).await;
        if following.stopped() {
            return Ok(());
        }
        let result: web_sys::ReadableStreamReadResult = read
            .map_err(|e| ApiError::network(&what, e))?
            .unchecked_into();
        if result.get_done().unwrap_or(false) {
            return Ok(());
        }
        let Some(chunk) = result
            .get_value()
            .dyn_ref::<js_sys::Uint8Array>()
            .map(|c| c.to_vec())
        else {
            continue;
        };
        let found = events.push(&chunk).map_err(|message| ApiError {
            status,
            code: "bad_body".into(),
            message: format!("the center's event stream is not what this page expects: {message}"),
        })?;
        for data in found {
            on_data(data);
        }
    }
}
