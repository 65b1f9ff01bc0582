//! The HTTP API under `/api/v1`: routing, operator authentication, and the
//! extractors that turn every malformed request into a `{error, message}` 4xx.

pub mod console;
pub mod devices;
pub mod events;
pub mod extract;
pub mod firmware;
pub mod monitoring;
pub mod openapi;
pub mod packages;
pub mod plans;
pub mod products;
pub mod push;
pub mod verifications;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use sqlx::AnyPool;

use crate::download::LinkSigner;
use crate::error::ApiError;
use crate::store::FirmwareStore;

/// Shared state of all handlers.
#[derive(Debug)]
pub struct AppState {
    /// Metadata database.
    pub pool: AnyPool,
    /// Firmware store.
    pub store: FirmwareStore,
    /// Download link signer.
    pub signer: LinkSigner,
    /// Base URL for download links, without a trailing slash.
    pub public_url: String,
    /// Lifetime of download links, seconds.
    pub download_ttl: u64,
    /// Largest accepted file, bytes.
    pub max_file_bytes: u64,
    /// Firmware files mapped for download (local store), by object key.
    pub mapped: std::sync::Mutex<std::collections::HashMap<String, bytes::Bytes>>,
    /// Devices connected to the embedded broker.
    pub presence: Arc<crate::channel::presence::Presence>,
    /// The broker's MQTT address (`host:port`), for the WebSocket bridge at `/mqtt`.
    pub broker_tcp: std::sync::OnceLock<String>,
    /// Where messages to devices go, once the center's MQTT client runs.
    pub outbox: std::sync::OnceLock<crate::channel::client::Outbox>,
    /// Active plans resolved for offers (activation freezes a plan, so they are read once).
    pub active_plans: crate::channel::active::ActivePlans,
    /// The device channel's writes, group-committed.
    pub writes: crate::channel::writes::Writes,
    /// Registered devices' row ids (product, device) by device: rows are never
    /// deleted nor renumbered, so a device is looked up once.
    pub known: std::sync::Mutex<std::collections::HashMap<sota_protocol::DeviceId, (i64, i64)>>,
    /// Versions reported but not yet committed (a request right behind sees them).
    pub reported: std::sync::Arc<crate::channel::reported::Reported>,
    /// Request views kept while this center is the only one (the embedded broker).
    pub memory: std::sync::Arc<crate::channel::memory::Memory>,
    /// Live changes of upgrades and verification jobs, for the events endpoints.
    pub events: crate::events::Events,
    /// The backend's own pool for the push cycle's scan, opened at the first cycle.
    pub native: tokio::sync::OnceCell<crate::db::Native>,
    /// This center process among those sharing the database: the owner of its uploads.
    pub instance: Arc<crate::instance::Instance>,
    /// Which devices this center handles among the live centers behind one external broker.
    pub share: crate::channel::share::Share,
    /// Devices a push cycle sends to per second (0: no limit; `--push-rate`).
    pub push_rate: u32,
}

impl AppState {
    /// The state of a center over `pool` and `store`, its channel not yet
    /// started (but for its database writer: call within a tokio runtime).
    pub fn new(
        pool: AnyPool,
        store: FirmwareStore,
        instance: Arc<crate::instance::Instance>,
        signer: LinkSigner,
        public_url: String,
        download_ttl: u64,
        max_file_bytes: u64,
    ) -> Self {
        Self {
            store,
            signer,
            public_url,
            download_ttl,
            max_file_bytes,
            mapped: Default::default(),
            presence: Default::default(),
            broker_tcp: Default::default(),
            outbox: Default::default(),
            active_plans: Default::default(),
            writes: crate::channel::writes::Writes::start(pool.clone()),
            known: Default::default(),
            reported: Default::default(),
            memory: Default::default(),
            events: Default::default(),
            native: Default::default(),
            share: crate::channel::share::Share::new(instance.id()),
            push_rate: 0,
            instance,
            pool,
        }
    }
}

/// The state as handlers receive it.
pub type Shared = State<Arc<AppState>>;

/// Largest JSON body (plans with 1,000,000-key lists fit).
const JSON_LIMIT: usize = 64 * 1024 * 1024;

async fn require_operator(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let Some(token) = token else {
        return ApiError::unauthorized(
            "send an operator token as `Authorization: Bearer <token>`; create one with `sota-center token create --name <who>`",
        )
        .into_response();
    };
    match crate::token::check(&state.pool, token).await {
        Ok(Some(_)) if req.method().is_safe() => next.run(req).await,
        Ok(Some(_)) => {
            // Plans, jobs and devices change only here: the channel's kept views step aside.
            let _writing = state.memory.operator_write();
            next.run(req).await
        }
        Ok(None) => ApiError::unauthorized("this operator token is unknown; create one with `sota-center token create --name <who>`")
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such API path; the API is described at /api/v1/openapi.json")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this path does not accept that HTTP method; see /api/v1/openapi.json",
    )
}

fn panic_to_json(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal(
        "the center hit an internal fault; this is a bug, please report it with the request",
    )
    .into_response()
}

/// The complete router; with `console_dir`, the built console is served at `/`.
pub fn router(state: Arc<AppState>, console_dir: Option<&std::path::Path>) -> Router {
    let operator = Router::new()
        .route("/products", get(products::list).post(products::create))
        .route("/products/{product_key}", get(products::get))
        .route("/products/{product_key}/devices", get(devices::list))
        .route(
            "/products/{product_key}/devices/{device_key}",
            get(devices::get).put(devices::register),
        )
        .route(
            "/products/{product_key}/devices/{device_key}/offers",
            get(devices::offers),
        )
        .route("/packages", get(packages::list))
        .route(
            "/packages",
            post(packages::upload).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/packages/{id}",
            get(packages::get).delete(packages::delete),
        )
        .route(
            "/packages/{id}/files/{position}/links",
            post(packages::link),
        )
        .route(
            "/packages/{id}/verifications",
            get(verifications::list).post(verifications::create),
        )
        .route("/verifications/{id}", get(verifications::get))
        .route("/verifications/{id}/events", get(events::verification))
        .route("/verifications/{id}/log", post(verifications::log))
        .route("/verifications/{id}/outcome", post(verifications::outcome))
        .route("/plans", get(plans::list).post(plans::create))
        .route(
            "/plans/{id}",
            get(plans::get).put(plans::update).delete(plans::delete),
        )
        .route("/plans/{id}/activate", post(plans::activate))
        .route("/plans/{id}/pause", post(plans::pause))
        .route("/plans/{id}/resume", post(plans::resume))
        .route("/plans/{id}/finish", post(plans::finish))
        .route("/push", post(push::push))
        .route("/plans/{id}/devices", get(monitoring::plan_devices))
        .route("/plans/{id}/counts", get(monitoring::plan_counts))
        .route("/plans/{id}/log", get(monitoring::plan_log))
        .route("/plans/{id}/log.csv", get(monitoring::plan_log_csv))
        .route("/plans/{id}/events", get(events::plan))
        .route(
            "/products/{product_key}/devices/{device_key}/upgrades",
            get(monitoring::device_history),
        )
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_operator,
        ));
    let public = Router::new()
        .route("/openapi.json", get(openapi::serve))
        .route("/firmware/{token}", get(firmware::download));
    let app = Router::new()
        .nest("/api/v1", operator.merge(public).fallback(not_found))
        .route("/mqtt", get(console::mqtt));
    let app = match console_dir {
        // Unknown paths are the single-page console's own routes: answer with its index.
        Some(dir) => app.fallback_service(
            tower_http::services::ServeDir::new(dir)
                .fallback(tower_http::services::ServeFile::new(dir.join("index.html"))),
        ),
        None => app.fallback(not_found),
    };
    app.method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(JSON_LIMIT))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_to_json,
        ))
        .with_state(state)
}
