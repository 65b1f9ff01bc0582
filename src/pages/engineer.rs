//! The engineer's pages under `/center`: the frame (navigation, language, sign-in with an
//! operator token, sign-out), products, a product's devices and a device's history. Version
//! packages are in [`super::packages`]. Everything goes through [`crate::api`].

use super::{model, tr, LanguageSwitch};
use crate::api::{self, ApiError};
use crate::i18n::t;
use leptos::prelude::*;
use leptos_router::components::{Outlet, A};
use leptos_router::hooks::{use_location, use_params_map};
use sota_api::device::{Device, Paging};
use sota_api::monitoring::{DeviceHistory, Outcome};
use sota_api::product::ProductFilter;

/// Whether the engineer is signed in, and why the center last refused the token.
#[derive(Clone, Copy)]
pub struct Session {
    /// A token is kept in this browser.
    pub signed_in: RwSignal<bool>,
    /// The API's message of the last 401/403, until the next sign-in.
    pub refused: RwSignal<Option<String>>,
}

impl Session {
    /// Notes a refused token: the pages give way to the sign-in page with the API's message.
    pub fn see(&self, e: &ApiError) {
        if e.signed_out() {
            self.refused.set(Some(e.message.clone()));
        }
    }
}

/// The session from context.
pub fn session() -> Session {
    expect_context::<Session>()
}

/// A request's result, with a refused token noted on the session.
pub async fn guarded<T>(
    session: Session,
    request: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let r = request.await;
    if let Err(e) = &r {
        session.see(e);
    }
    r
}

/// An API error as the page shows it.
pub fn error_view(e: ApiError) -> impl IntoView {
    view! { <p class="notice error" role="alert">{e.message}</p> }
}

/// "Loading…".
pub fn loading() -> impl IntoView {
    view! { <p class="hint">{tr("c.loading")}</p> }
}

/// The frame of the engineer's pages.
#[component]
pub fn CenterArea() -> impl IntoView {
    let m = model();
    let session = Session {
        signed_in: RwSignal::new(api::token().is_some()),
        refused: RwSignal::new(None),
    };
    provide_context(session);
    Effect::new(move |_| {
        document().set_title(t(m.lang.get(), "c.title"));
    });
    let sign_out = move |_| {
        api::sign_out();
        session.refused.set(None);
        session.signed_in.set(false);
    };
    let open = move || session.signed_in.get() && session.refused.get().is_none();
    // The section the address is in: the first segment after `/center` (products, with their
    // devices, when there is none).
    let location = use_location();
    let here = move |section: &'static str| {
        let path = location.pathname.get();
        let first = path
            .trim_start_matches("/center")
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("")
            .to_string();
        let current = if first.is_empty() {
            "products"
        } else {
            first.as_str()
        };
        (current == section).then_some("page")
    };
    view! {
        <header class="top">
            <div class="top-title">
                <h1>{tr("c.title")}</h1>
                <p class="lede">{tr("c.lede")}</p>
            </div>
            <div class="top-tools">
                <LanguageSwitch />
                <Show when=move || session.signed_in.get()>
                    <button type="button" id="sign-out" class="on-dark" on:click=sign_out>{tr("c.sign_out")}</button>
                </Show>
            </div>
        </header>
        <nav class="center-nav" aria-label=tr("c.nav")>
            <a href="/center" aria-current=move || here("products")>{tr("c.products")}</a>
            <a href="/center/packages" aria-current=move || here("packages")>{tr("c.packages")}</a>
            <a href="/center/plans" aria-current=move || here("plans")>{tr("pl.plans")}</a>
            <a href="/center/verify" aria-current=move || here("verify").or_else(|| here("verifications"))>{tr("vf.nav")}</a>
            <a href="/" rel="external" class="away">{tr("c.technician")}</a>
        </nav>
        <main>
            <Show when=open fallback=SignIn>
                <Outlet />
            </Show>
        </main>
    }
}

/// The sign-in page: no token kept, or the center refused it.
#[component]
fn SignIn() -> impl IntoView {
    let session = session();
    let token = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let value = token.get_untracked().trim().to_string();
        if value.is_empty() {
            problem.set(Some(
                t(model().lang.get_untracked(), "c.need_token").to_string(),
            ));
            return;
        }
        busy.set(true);
        api::sign_in(&value);
        leptos::task::spawn_local(async move {
            // The token is tried on the smallest list before the pages open.
            match api::products().await {
                Ok(_) => {
                    problem.set(None);
                    session.refused.set(None);
                    session.signed_in.set(true);
                }
                Err(e) => {
                    if e.signed_out() {
                        api::sign_out();
                        session.signed_in.set(false);
                    }
                    problem.set(Some(e.message));
                }
            }
            busy.set(false);
        });
    };
    view! {
        <section class="panel sign-in" aria-labelledby="sign-in-title">
            <h2 id="sign-in-title">
                {move || if session.refused.get().is_some() { tr("c.sign_in_again")() } else { tr("c.sign_in")() }}
            </h2>
            {move || session.refused.get().map(|m| view! { <p class="notice error" role="alert" id="refused">{m}</p> })}
            <p class="hint">{tr("c.token_hint")}" "<code>"sota-center token create --name <who>"</code></p>
            <form on:submit=submit class="fields">
                <label>
                    {tr("c.token")}
                    <input id="token" type="password" autocomplete="off" spellcheck="false"
                        prop:value=token on:input=move |ev| token.set(event_target_value(&ev)) />
                </label>
                <div class="actions">
                    <button type="submit" id="sign-in" class="primary" disabled=busy>{tr("c.sign_in_button")}</button>
                </div>
            </form>
            {move || problem.get().map(|m| view! { <p class="notice error" role="alert" id="sign-in-error">{m}</p> })}
        </section>
    }
}

/// An unknown address.
#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <main>
            <section class="panel">
                <h2>{tr("c.not_found")}</h2>
                <p><a href="/center" rel="external">{tr("c.title")}</a>" · "<a href="/" rel="external">{tr("title")}</a></p>
            </section>
        </main>
    }
}

/// "Previous", the rows shown and "Next" under a list paged on the server, `PAGE` rows a page;
/// `name` prefixes the ids (`{name}-prev`, `{name}-range`, `{name}-next`).
pub fn pager(name: &'static str, offset: RwSignal<u32>, shown: u32, more: bool) -> impl IntoView {
    let first = offset.get_untracked();
    view! {
        <div class="actions pager">
            <button type="button" id=format!("{name}-prev") disabled=first == 0
                on:click=move |_| offset.update(|o| *o = o.saturating_sub(PAGE))>{tr("c.previous")}</button>
            <span class="figures" id=format!("{name}-range")>
                {if shown == 0 { String::new() } else { format!("{}–{}", first + 1, first + shown) }}
            </span>
            <button type="button" id=format!("{name}-next") disabled=!more
                on:click=move |_| offset.update(|o| *o += PAGE)>{tr("c.next")}</button>
        </div>
    }
}

/// A list searched on the server by product and by name: what is typed, what is searched,
/// and the first row shown (a new search starts again at the first page).
#[derive(Clone, Copy)]
pub struct ProductSearch {
    typed: RwSignal<String>,
    product: RwSignal<String>,
    /// The name text searched.
    pub query: RwSignal<String>,
    /// The first row shown.
    pub offset: RwSignal<u32>,
}

impl ProductSearch {
    /// Nothing searched yet: every product, the first page.
    pub fn new() -> Self {
        ProductSearch {
            typed: RwSignal::new(String::new()),
            product: RwSignal::new(String::new()),
            query: RwSignal::new(String::new()),
            offset: RwSignal::new(0),
        }
    }

    /// The product picked, if any (tracked).
    pub fn product(&self) -> Option<String> {
        Some(self.product.get()).filter(|p| !p.is_empty())
    }

    /// The form over `products`; `name` prefixes the ids (`{name}-product`, `{name}-search`,
    /// `{name}-search-go`).
    pub fn form(
        self,
        name: &'static str,
        products: LocalResource<Result<Vec<sota_api::product::Product>, ApiError>>,
    ) -> impl IntoView {
        let ProductSearch {
            typed,
            product,
            query,
            offset,
        } = self;
        let search = move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            offset.set(0);
            query.set(typed.get_untracked().trim().to_string());
        };
        view! {
            <form class="search" role="search" on:submit=search>
                <label for=format!("{name}-product")>{tr("c.product")}</label>
                <select id=format!("{name}-product") on:change=move |ev| { offset.set(0); product.set(event_target_value(&ev)) }>
                    <option value="">{tr("pl.all_products")}</option>
                    {move || products.get().and_then(Result::ok).unwrap_or_default().into_iter().map(|p| {
                        let key = p.product_key;
                        view! { <option value=key.clone()>{key.clone()}</option> }
                    }).collect_view()}
                </select>
                <label for=format!("{name}-search")>{tr("pl.name_contains")}</label>
                <input id=format!("{name}-search") type="search" spellcheck="false" autocomplete="off"
                    prop:value=typed on:input=move |ev| typed.set(event_target_value(&ev)) />
                <button type="submit" id=format!("{name}-search-go")>{tr("c.search")}</button>
            </form>
        }
    }
}

impl Default for ProductSearch {
    fn default() -> Self {
        Self::new()
    }
}

/// The products, paged and searched (key or name) on the server.
#[component]
pub fn ProductsPage() -> impl IntoView {
    let session = session();
    let typed = RwSignal::new(String::new());
    let query = RwSignal::new(String::new());
    let offset = RwSignal::new(0u32);
    let products = LocalResource::new(move || {
        let filter = ProductFilter {
            offset: Some(offset.get()),
            // One more than shown tells whether there is a next page.
            limit: Some(PAGE + 1),
            q: Some(query.get()),
        };
        async move { guarded(session, api::products_page(&filter)).await }
    });
    let search = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        offset.set(0);
        query.set(typed.get_untracked().trim().to_string());
    };
    view! {
        <section class="panel" aria-labelledby="products-title">
            <h2 id="products-title">{tr("c.products")}</h2>
            <form class="search" role="search" on:submit=search>
                <label for="product-search">{tr("c.search_product")}</label>
                <input id="product-search" type="search" spellcheck="false" autocomplete="off"
                    prop:value=typed on:input=move |ev| typed.set(event_target_value(&ev)) />
                <button type="submit" id="product-search-go">{tr("c.search")}</button>
            </form>
            {move || match products.get() {
                None => loading().into_any(),
                Some(Err(e)) => error_view(e).into_any(),
                Some(Ok(mut list)) => {
                    let more = list.len() > PAGE as usize;
                    list.truncate(PAGE as usize);
                    let shown = list.len() as u32;
                    let rows = if list.is_empty() {
                        view! { <p class="hint" id="no-products">{tr("c.no_products")}</p> }.into_any()
                    } else {
                        view! {
                            <div class="table-wrap">
                            <table class="list" id="products">
                                <thead><tr><th>{tr("c.product_key")}</th><th>{tr("c.name")}</th><th>{tr("c.created")}</th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|p| {
                                        let href = format!("/center/products/{}", api::segment(&p.product_key));
                                        view! {
                                            <tr>
                                                <td><A href=href>{p.product_key.clone()}</A>
                                                    {p.demo.then(|| view! { " " <span class="badge">{tr("c.demo")}</span> })}</td>
                                                <td>{p.name.clone()}</td>
                                                <td class="when">{short_time(&p.created_at)}</td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                            </div>
                        }.into_any()
                    };
                    view! { {rows} {pager("products", offset, shown, more)} }.into_any()
                }
            }}
        </section>
    }
}

/// `2026-11-27T15:10:04.123Z` as `2026-11-27 15:10:04 UTC`.
pub fn short_time(at: &str) -> String {
    match at.strip_suffix('Z') {
        Some(utc) => format!(
            "{} UTC",
            utc.split('.').next().unwrap_or(utc).replacen('T', " ", 1)
        ),
        None => at.replacen('T', " ", 1),
    }
}

fn components_text(d: &Device) -> String {
    d.components
        .iter()
        .map(|(identity, version)| format!("{identity} {version}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rows on one page of a list paged on the server.
pub const PAGE: u32 = 20;

/// A product's devices, paged and searched by key prefix on the server.
#[component]
pub fn DevicesPage() -> impl IntoView {
    let session = session();
    let params = use_params_map();
    let product = move || params.read().get("product").unwrap_or_default();
    let typed = RwSignal::new(String::new());
    let query = RwSignal::new(String::new());
    let offset = RwSignal::new(0u32);
    let devices = LocalResource::new(move || {
        let paging = Paging {
            offset: Some(offset.get()),
            // One more than shown tells whether there is a next page.
            limit: Some(PAGE + 1),
            q: Some(query.get()),
        };
        let product = product();
        async move { guarded(session, api::devices(&product, &paging)).await }
    });
    let search = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        offset.set(0);
        query.set(typed.get_untracked().trim().to_string());
    };
    view! {
        <section class="panel" aria-labelledby="devices-title">
            <p class="crumbs"><A href="/center">{tr("c.products")}</A>" › "{product}</p>
            <h2 id="devices-title">{tr("c.devices_of")}" "{product}</h2>
            <form class="search" role="search" on:submit=search>
                <label for="device-search">{tr("c.search_key")}</label>
                <input id="device-search" type="search" spellcheck="false" autocomplete="off"
                    placeholder=tr("c.search_placeholder")
                    prop:value=typed on:input=move |ev| typed.set(event_target_value(&ev)) />
                <button type="submit" id="device-search-go">{tr("c.search")}</button>
            </form>
            {move || match devices.get() {
                None => loading().into_any(),
                Some(Err(e)) => error_view(e).into_any(),
                Some(Ok(mut list)) => {
                    let more = list.len() > PAGE as usize;
                    list.truncate(PAGE as usize);
                    let shown = list.len() as u32;
                    let product = product();
                    let rows = if list.is_empty() {
                        view! { <p class="hint" id="no-devices">{tr("c.no_devices")}</p> }.into_any()
                    } else {
                        view! {
                            <div class="table-wrap">
                            <table class="list" id="devices">
                                <thead><tr><th>{tr("c.device_key")}</th><th>{tr("c.components")}</th><th>{tr("c.last_seen")}</th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|d| {
                                        let href = format!("/center/products/{}/devices/{}", api::segment(&product), api::segment(&d.device_key));
                                        let components = components_text(&d);
                                        let seen = short_time(&d.last_seen_at);
                                        view! {
                                            <tr>
                                                <td><A href=href>{d.device_key}</A></td>
                                                <td class="mono">{components}</td>
                                                <td class="when">{seen}</td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                            </div>
                        }.into_any()
                    };
                    view! { {rows} {pager("devices", offset, shown, more)} }.into_any()
                }
            }}
        </section>
    }
}

fn outcome_key(o: Outcome) -> &'static str {
    match o {
        Outcome::Pending => "c.pending",
        Outcome::Succeeded => "c.succeeded",
        Outcome::Failed => "c.failed",
        Outcome::Refused => "c.refused",
    }
}

/// One device: its components and versions, and its upgrade history.
#[component]
pub fn DevicePage() -> impl IntoView {
    let session = session();
    let params = use_params_map();
    let product = move || params.read().get("product").unwrap_or_default();
    let key = move || params.read().get("device").unwrap_or_default();
    let device = LocalResource::new(move || {
        let (p, k) = (product(), key());
        async move { guarded(session, api::device(&p, &k)).await }
    });
    let history = LocalResource::new(move || {
        let (p, k) = (product(), key());
        async move { guarded(session, api::history(&p, &k)).await }
    });
    let lang = model().lang;
    view! {
        <section class="panel" aria-labelledby="device-title">
            <p class="crumbs">
                <A href="/center">{tr("c.products")}</A>" › "
                <A href=move || format!("/center/products/{}", api::segment(&product()))>{product}</A>" › "{key}
            </p>
            <h2 id="device-title">{tr("c.device")}" "{key}</h2>
            {move || match device.get() {
                None => loading().into_any(),
                Some(Err(e)) => error_view(e).into_any(),
                Some(Ok(d)) => view! {
                    <p class="figures plain">{tr("c.registered")}" "{short_time(&d.registered_at)}" · "{tr("c.last_seen")}" "{short_time(&d.last_seen_at)}</p>
                    <h3>{tr("c.components")}</h3>
                    {if d.components.is_empty() {
                        view! { <p class="hint">{tr("c.no_components")}</p> }.into_any()
                    } else {
                        view! {
                            <table class="list" id="components">
                                <thead><tr><th>{tr("c.identity")}</th><th>{tr("c.version")}</th></tr></thead>
                                <tbody>
                                    {d.components.into_iter().map(|(i, v)| view! { <tr><td>{i}</td><td class="mono">{v}</td></tr> }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any()
                    }}
                }.into_any(),
            }}
        </section>
        <section class="panel" aria-labelledby="history-title">
            <h2 id="history-title">{tr("c.history")}</h2>
            {move || match history.get() {
                None => loading().into_any(),
                Some(Err(e)) => error_view(e).into_any(),
                Some(Ok(h)) => history_view(h, lang).into_any(),
            }}
        </section>
    }
}

fn history_view(h: DeviceHistory, lang: RwSignal<crate::i18n::Lang>) -> impl IntoView {
    if h.upgrades.is_empty() {
        return view! { <p class="hint" id="no-upgrades">{tr("c.no_upgrades")}</p> }.into_any();
    }
    view! {
        <div class="table-wrap">
        <table class="list" id="upgrades">
            <thead><tr>
                <th>{tr("c.plan")}</th><th>{tr("c.identity")}</th><th>{tr("c.status")}</th>
                <th>{tr("c.outcome")}</th><th>{tr("c.updated")}</th>
            </tr></thead>
            <tbody>
                {h.upgrades.into_iter().map(|u| {
                    let outcome = outcome_key(u.outcome);
                    let class = format!("outcome-{}", u.outcome.as_str());
                    let percent = u.percent.map(|p| format!(" {p} %")).unwrap_or_default();
                    view! {
                        <tr>
                            <td>{u.plan_id}</td>
                            <td>{u.identity}</td>
                            <td>{u.status}" · "{u.status_name}{percent}</td>
                            <td class=class>{move || t(lang.get(), outcome).to_string()}
                                {(!u.message.is_empty()).then(|| view! { <br/><span class="hint">{u.message.clone()}</span> })}</td>
                            <td class="when">{short_time(&u.updated_at)}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        </div>
        <h3>{tr("c.upgrade_log")}</h3>
        <ul class="log" id="upgrade-log">
            {h.log.into_iter().map(|e| view! {
                <li>
                    <span class="time">{short_time(&e.at)}</span>
                    <span class="text">{move || t(lang.get(), "c.plan").to_string()}{format!(" {} · {} {} · {}", e.plan_id, e.identity, e.status_name, e.source)}
                        {e.percent.map(|p| format!(" {p} %"))}
                        {(!e.message.is_empty()).then(|| format!(" — {}", e.message))}</span>
                </li>
            }).collect_view()}
        </ul>
    }
    .into_any()
}
