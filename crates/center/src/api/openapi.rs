//! The OpenAPI document, generated from the handlers and types.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{
    devices, events, firmware, monitoring, packages, plans, products, push, verifications,
};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API description served at `/api/v1/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(title = "sota-center", description = "Developer Center of the SOTA upgrade console: products, devices, version packages, verification, upgrade plans and upgrade monitoring."),
    paths(
        products::create, products::list, products::get,
        devices::list, devices::get, devices::register, devices::offers,
        packages::upload, packages::list, packages::get, packages::delete, packages::link,
        verifications::create, verifications::list, verifications::get, verifications::log, verifications::outcome,
        plans::create, plans::list, plans::get, plans::update, plans::delete,
        plans::activate, plans::pause, plans::resume, plans::finish,
        monitoring::plan_devices, monitoring::plan_counts, monitoring::plan_log, monitoring::plan_log_csv,
        monitoring::device_history, events::plan, events::verification, push::push,
        firmware::download,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

/// Serve the document.
pub async fn serve() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}
