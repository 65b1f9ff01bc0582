//! Upgrade plans: the list (paged, by product and by name, on the server), "Create a plan" and
//! a draft's editing with every field of `sota-api`'s plan (checked by its rules before
//! anything is sent), and the life cycle: activate (after a confirmation that an activated
//! plan cannot be deleted), pause, resume, finish; delete only a draft. Each plan links to its
//! monitoring page.

use super::engineer::{
    error_view, guarded, loading, pager, session, short_time, ProductSearch, PAGE,
};
use super::{model, tr};
use crate::adapters::page;
use crate::api::{self, ApiError};
use crate::forms::{in_both, parse_keys, ComponentDraft, PlanDraft, TextDraft};
use crate::i18n::{t, Lang};
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map};
use sota_api::package::{Package, PackageFilter, PackageType};
use sota_api::plan::{Plan, PlanFilter, PlanState, Transition, UpgradeMode};
use sota_api::Refusal;
use wasm_bindgen::JsCast;

/// Device keys shown of a frozen plan's list; the rest are counted.
const SHOWN_KEYS: usize = 200;

fn state_key(s: PlanState) -> &'static str {
    match s {
        PlanState::Draft => "pl.state_draft",
        PlanState::Active => "pl.state_active",
        PlanState::Paused => "pl.state_paused",
        PlanState::Finished => "pl.state_finished",
    }
}

fn state_badge(s: PlanState) -> impl IntoView {
    let lang = model().lang;
    view! {
        <span class=format!("badge state state-{}", s.as_str())>{move || t(lang.get(), state_key(s)).to_string()}</span>
    }
}

fn push_text(p: &Plan, lang: Lang) -> String {
    match &p.push_period {
        Some(pp) => format!("{}–{}", pp.start, pp.end),
        None => t(lang, "pl.all_day").to_string(),
    }
}

fn components_text(p: &Plan) -> String {
    p.components
        .iter()
        .map(|c| format!("{} ← #{}", c.identity, c.package_id))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How a package reads in a picker: `#12 Scent profiles · SOTA full → 1_0_2`.
fn package_label(p: &Package) -> String {
    let kind = match (&p.meta.package_type, &p.meta.source_version) {
        (PackageType::Delta, Some(s)) => format!("delta {s} → {}", p.meta.target_version),
        _ => format!("full → {}", p.meta.target_version),
    };
    format!(
        "#{} {} · {} {kind}",
        p.id,
        p.meta.name,
        p.meta.component_type.as_str()
    )
}

/// The plans, paged and searched on the server.
#[component]
pub fn PlansPage() -> impl IntoView {
    let session = session();
    let lang = model().lang;
    let products = LocalResource::new(move || guarded(session, api::products()));
    let find = ProductSearch::new();
    let (query, offset) = (find.query, find.offset);
    let plans = LocalResource::new(move || {
        let filter = PlanFilter {
            product: find.product(),
            offset: Some(offset.get()),
            // One more than shown tells whether there is a next page.
            limit: Some(PAGE + 1),
            q: Some(query.get()),
        };
        async move { guarded(session, api::plans(&filter)).await }
    });
    view! {
        <section class="panel" aria-labelledby="plans-title">
            <div class="package-head">
                <h2 id="plans-title">{tr("pl.plans")}</h2>
                <A href="/center/plans/new" attr:class="button primary" attr:id="add-plan">{tr("pl.add_plan")}</A>
            </div>
            {find.form("plans", products)}
            {move || match plans.get() {
                None => loading().into_any(),
                Some(Err(e)) => error_view(e).into_any(),
                Some(Ok(mut list)) => {
                    let more = list.len() > PAGE as usize;
                    list.truncate(PAGE as usize);
                    let shown = list.len() as u32;
                    let rows = if list.is_empty() {
                        view! { <p class="hint" id="no-plans">{tr("pl.no_plans")}</p> }.into_any()
                    } else {
                        view! {
                            <div class="table-wrap">
                            <table class="list" id="plans">
                                <thead><tr>
                                    <th>{tr("c.name")}</th><th>{tr("c.product")}</th><th>{tr("pl.state")}</th>
                                    <th>{tr("pl.plan_components")}</th><th>{tr("pl.time_zone")}</th><th>{tr("pl.push_period")}</th>
                                </tr></thead>
                                <tbody>
                                    {list.into_iter().map(|p| {
                                        let id = p.id;
                                        let push = { let p = p.clone(); move || push_text(&p, lang.get()) };
                                        let components = components_text(&p);
                                        view! {
                                            <tr id=format!("plan-{id}")>
                                                <td><A href=format!("/center/plans/{id}") attr:class="plan-name">{p.name.clone()}</A>
                                                    {p.demo.then(|| view! { " " <span class="badge">{tr("c.demo")}</span> })}
                                                    // In the first column, so a narrow screen never scrolls it away.
                                                    <br/><A href=format!("/center/plans/{id}/monitoring") attr:class="monitoring">{tr("pl.monitoring")}" →"</A></td>
                                                <td>{p.product_key.clone()}</td>
                                                <td>{state_badge(p.state)}</td>
                                                <td class="mono">{components}</td>
                                                <td>{p.time_zone.clone()}</td>
                                                <td class="figures plain">{push}</td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                            </div>
                        }.into_any()
                    };
                    view! { {rows} {pager("plans", offset, shown, more)} }.into_any()
                }
            }}
        </section>
    }
}

/// "Create a plan".
#[component]
pub fn NewPlanPage() -> impl IntoView {
    let navigate = use_navigate();
    let created = move |p: Plan| navigate(&format!("/center/plans/{}", p.id), Default::default());
    view! {
        <section class="panel" aria-labelledby="plan-form-title">
            <p class="crumbs"><A href="/center/plans">{tr("pl.plans")}</A>" › "{tr("pl.add_plan")}</p>
            <h2 id="plan-form-title">{tr("pl.add_plan")}</h2>
            <PlanForm plan=None saved=created />
        </section>
    }
}

/// One plan: a draft's form, or a frozen plan's content; its life cycle; its monitoring.
#[component]
pub fn PlanPage() -> impl IntoView {
    let session = session();
    let params = use_params_map();
    let id = move || {
        params
            .read()
            .get("id")
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let plan = LocalResource::new(move || {
        let id = id();
        async move { guarded(session, api::plan(id)).await }
    });
    // Kept here so that a transition shows its answer at once and the form is not rebuilt.
    let current = RwSignal::new(None::<Plan>);
    Effect::new(move |_| {
        if let Some(Ok(p)) = plan.get() {
            current.set(Some(p));
        }
    });
    // The form or the summary is rebuilt only when the plan's state changes (a saved draft
    // keeps its form and its "Saved").
    let shown = Memo::new(move |_| current.with(|p| p.as_ref().map(|p| (p.id, p.state))));
    view! {
        <section class="panel" aria-labelledby="plan-title">
            <p class="crumbs"><A href="/center/plans">{tr("pl.plans")}</A>" › "{move || current.with(|p| p.as_ref().map(|p| p.name.clone()))}</p>
            {move || match plan.get() {
                None => loading().into_any(),
                Some(Err(e)) => error_view(e).into_any(),
                Some(Ok(_)) => view! { <PlanHead current /> }.into_any(),
            }}
        </section>
        {move || match (plan.get(), shown.get()) {
            (Some(Ok(_)), Some((_, PlanState::Draft))) => {
                let initial = current.get_untracked();
                view! {
                    <section class="panel" aria-labelledby="plan-form-title">
                        <h2 id="plan-form-title">{tr("pl.edit_draft")}</h2>
                        <PlanForm plan=initial saved=move |p: Plan| current.set(Some(p)) />
                    </section>
                }.into_any()
            }
            (Some(Ok(_)), Some(_)) => view! { <PlanSummary current /> }.into_any(),
            _ => ().into_any(),
        }}
    }
}

/// A plan's name, state, life-cycle buttons and monitoring link.
#[component]
fn PlanHead(current: RwSignal<Option<Plan>>) -> impl IntoView {
    let session = session();
    let navigate = use_navigate();
    let confirming = RwSignal::new(None::<&'static str>);
    let refused = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let id = move || current.with(|p| p.as_ref().map_or(0, |p| p.id));
    let state = move || current.with(|p| p.as_ref().map(|p| p.state));
    let step = move |t: Transition| {
        move |_| {
            let id = id();
            busy.set(true);
            refused.set(None);
            leptos::task::spawn_local(async move {
                match guarded(session, api::move_plan(id, t)).await {
                    Ok(p) => current.set(Some(p)),
                    Err(e) => refused.set(Some(e.message)),
                }
                confirming.set(None);
                busy.set(false);
            });
        }
    };
    let delete = move |_| {
        let id = id();
        busy.set(true);
        refused.set(None);
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match guarded(session, api::delete_plan(id)).await {
                Ok(()) => navigate("/center/plans", Default::default()),
                Err(e) => refused.set(Some(e.message)),
            }
            confirming.set(None);
            busy.set(false);
        });
    };
    let ask = move |what: &'static str| {
        move |_| {
            refused.set(None);
            confirming.set(Some(what));
        }
    };
    let not_now = move |_| confirming.set(None);
    view! {
        <div class="package-head">
            <h2 id="plan-title">{move || current.with(|p| p.as_ref().map(|p| p.name.clone()))}" "
                {move || state().map(state_badge)}</h2>
            <A href=move || format!("/center/plans/{}/monitoring", id()) attr:id="plan-monitoring">{tr("pl.monitoring")}" →"</A>
        </div>
        <p class="figures plain" id="plan-facts">
            "#"{id}" · "{tr("c.product")}" "{move || current.with(|p| p.as_ref().map(|p| p.product_key.clone()))}
            " · "{tr("c.updated")}" "{move || current.with(|p| p.as_ref().map(|p| short_time(&p.updated_at)))}
        </p>
        <div class="actions" id="plan-actions">
            {move || match (state(), confirming.get()) {
                (Some(PlanState::Draft), None) => view! {
                    <button type="button" class="primary" id="plan-activate" on:click=ask("activate")>{tr("pl.activate")}</button>
                    <button type="button" class="danger" id="plan-delete" on:click=ask("delete")>{tr("pl.delete_draft")}</button>
                }.into_any(),
                (Some(PlanState::Draft), Some("activate")) => view! {
                    <div class="notice confirm" role="alertdialog" aria-labelledby="activate-warning" id="plan-activate-confirm">
                        <p id="activate-warning"><strong>{tr("pl.activate_warning")}</strong></p>
                        <div class="actions">
                            <button type="button" class="primary" id="plan-activate-yes" disabled=busy on:click=step(Transition::Activate)>{tr("pl.activate_yes")}</button>
                            <button type="button" class="secondary" on:click=not_now>{tr("pl.not_now")}</button>
                        </div>
                    </div>
                }.into_any(),
                (Some(PlanState::Draft), Some(_)) => view! {
                    <span>{tr("pl.delete_plan_confirm")}</span>
                    <button type="button" class="danger" id="plan-delete-yes" disabled=busy on:click=delete.clone()>{tr("c.delete_yes")}</button>
                    <button type="button" class="secondary" on:click=not_now>{tr("c.keep")}</button>
                }.into_any(),
                (Some(PlanState::Active | PlanState::Paused), Some(_)) => view! {
                    <span>{tr("pl.finish_warning")}</span>
                    <button type="button" class="danger" id="plan-finish-yes" disabled=busy on:click=step(Transition::Finish)>{tr("pl.finish_yes")}</button>
                    <button type="button" class="secondary" on:click=not_now>{tr("pl.not_now")}</button>
                }.into_any(),
                (Some(PlanState::Active), None) => view! {
                    <button type="button" id="plan-pause" disabled=busy on:click=step(Transition::Pause)>{tr("pl.pause")}</button>
                    <button type="button" class="danger" id="plan-finish" on:click=ask("finish")>{tr("pl.finish")}</button>
                }.into_any(),
                (Some(PlanState::Paused), None) => view! {
                    <button type="button" class="primary" id="plan-resume" disabled=busy on:click=step(Transition::Resume)>{tr("pl.resume")}</button>
                    <button type="button" class="danger" id="plan-finish" on:click=ask("finish")>{tr("pl.finish")}</button>
                }.into_any(),
                (Some(PlanState::Finished), _) => view! { <p class="hint">{tr("pl.finished_hint")}</p> }.into_any(),
                (None, _) => ().into_any(),
            }}
        </div>
        {move || (state() != Some(PlanState::Draft) && state().is_some()).then(|| view! { <p class="hint">{tr("pl.frozen_hint")}</p> })}
        {move || refused.get().map(|m| view! { <p class="notice error" role="alert" id="plan-refusal">{m}</p> })}
    }
}

/// Up to [`SHOWN_KEYS`] keys of a list, and how many more; `empty` says what an empty list
/// means (an empty whitelist is every device, not none).
fn keys_view(keys: &[String], lang: RwSignal<Lang>, empty: &'static str) -> impl IntoView {
    let count = keys.len();
    if count == 0 {
        return view! { <span class="figures plain">{move || t(lang.get(), empty).to_string()}</span> }
            .into_any();
    }
    let shown = keys
        .iter()
        .take(SHOWN_KEYS)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    let more = count.saturating_sub(SHOWN_KEYS);
    view! {
        <span class="figures plain">{move || t(lang.get(), "pl.n_keys").replace("{n}", &count.to_string())}</span>
        <details><summary>{tr("pl.show_keys")}</summary>
            <p class="mono">{shown}{(more > 0).then(|| format!(" … (+{more})"))}</p>
        </details>
    }
    .into_any()
}

/// A frozen plan's content, read only.
#[component]
fn PlanSummary(current: RwSignal<Option<Plan>>) -> impl IntoView {
    let session = session();
    let lang = model().lang;
    // The product's packages, to name each component's package.
    let product = Memo::new(move |_| current.with(|p| p.as_ref().map(|p| p.product_key.clone())));
    let packages = LocalResource::new(move || {
        let filter = PackageFilter {
            product: product.get(),
            limit: Some(1000),
            ..PackageFilter::default()
        };
        async move { guarded(session, api::packages_page(&filter)).await }
    });
    let package_name = move |id: i64| {
        packages
            .get()
            .and_then(Result::ok)
            .and_then(|list| list.iter().find(|p| p.id == id).map(package_label))
            .unwrap_or_else(|| format!("#{id}"))
    };
    let strategy = move |s: &sota_api::plan::Strategy| {
        let lang = lang.get();
        format!(
            "{}: {} · {}: {} · {}: {} · {}: {}",
            t(lang, "pl.min_battery"),
            s.min_battery_percent,
            t(lang, "pl.min_signal"),
            s.min_signal_dbm,
            t(lang, "pl.space_needed"),
            s.space_needed_bytes,
            t(lang, "pl.retries"),
            s.download_retries
        )
    };
    move || {
        current.get().map(|p| {
            let mode = match p.upgrade_mode {
                UpgradeMode::Silent => "pl.silent",
                UpgradeMode::Manual => "pl.manual",
            };
            let zone = p.time_zone.clone();
            let push = { let p = p.clone(); move || push_text(&p, lang.get()) };
            let s = p.strategy.clone();
            view! {
                <section class="panel" aria-labelledby="plan-content-title">
                    <h2 id="plan-content-title">{tr("pl.plan_content")}</h2>
                    <dl class="facts" id="plan-summary">
                        <dt>{tr("pl.upgrade_mode")}</dt><dd>{move || t(lang.get(), mode).to_string()}</dd>
                        <dt>{tr("pl.time_zone")}</dt><dd>{zone.clone()}" · "{tr("pl.now_there")}" "{move || page::time_in(&zone, lang.get().tag())}</dd>
                        <dt>{tr("pl.push_period")}</dt><dd>{push}</dd>
                        <dt>{tr("pl.strategy")}</dt>
                        <dd>{move || strategy(&s)}</dd>
                        <dt>{tr("pl.whitelist")}</dt><dd>{keys_view(&p.whitelist, lang, "pl.whitelist_empty")}</dd>
                        <dt>{tr("pl.blacklist")}</dt><dd>{keys_view(&p.blacklist, lang, "pl.blacklist_empty")}</dd>
                    </dl>
                    <h3>{tr("pl.plan_components")}</h3>
                    <table class="list" id="plan-components">
                        <thead><tr><th>{tr("c.identity")}</th><th>{tr("c.component_type")}</th><th>{tr("pl.package")}</th><th>{tr("c.file")}</th></tr></thead>
                        <tbody>
                            {p.components.iter().map(|c| view! {
                                <tr><td>{c.identity.clone()}</td><td>{c.component_type.as_str()}</td>
                                    <td>{let id = c.package_id; move || package_name(id)}</td><td>{c.file_position + 1}</td></tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                    <h3>{tr("pl.texts")}</h3>
                    {if p.texts.is_empty() {
                        view! { <p class="hint">{tr("pl.no_texts")}</p> }.into_any()
                    } else {
                        view! {
                            <dl class="facts" id="plan-texts">
                                {p.texts.iter().map(|(l, text)| view! { <dt>{l.clone()}</dt><dd class="offer-text">{text.clone()}</dd> }).collect_view()}
                            </dl>
                        }.into_any()
                    }}
                </section>
            }
        })
    }
}

/// Reads the first picked file's text (a list of device keys) and hands it to `add`.
fn read_keys_file(ev: leptos::ev::Event, add: impl Fn(Result<String, String>) + 'static) {
    let Some(input) = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
    else {
        return;
    };
    let Some(file) = input.files().and_then(|l| l.get(0)) else {
        return;
    };
    // The same file can be read again after the list was cleared.
    input.set_value("");
    let name = file.name();
    leptos::task::spawn_local(async move {
        match wasm_bindgen_futures::JsFuture::from(file.text()).await {
            Ok(v) => add(Ok(v.as_string().unwrap_or_default())),
            Err(_) => add(Err(name)),
        }
    });
}

/// One device list of the form: the keys, a file to read them from, and what they parse to.
#[component]
fn KeyList(
    draft: RwSignal<PlanDraft>,
    black: bool,
    text: Memo<String>,
    parsed: Memo<Result<Vec<String>, Refusal>>,
    problem: RwSignal<Option<String>>,
) -> impl IntoView {
    let lang = model().lang;
    let id = if black {
        "plan-blacklist"
    } else {
        "plan-whitelist"
    };
    let set = move |value: String| {
        draft.update(|d| {
            if black {
                d.blacklist = value
            } else {
                d.whitelist = value
            }
        })
    };
    let add = move |read: Result<String, String>| match read {
        Ok(keys) => {
            let mut list = text.get_untracked();
            if !list.trim().is_empty() {
                list.push('\n');
            }
            list.push_str(keys.trim());
            set(list);
        }
        Err(name) => problem.set(Some(
            t(lang.get_untracked(), "pl.file_unreadable").replace("{name}", &name),
        )),
    };
    view! {
        <div class="key-list">
            <label for=id>{tr(if black { "pl.blacklist" } else { "pl.whitelist" })}</label>
            <p class="hint">{tr(if black { "pl.blacklist_hint" } else { "pl.whitelist_hint" })}</p>
            <textarea id=id rows="5" spellcheck="false" placeholder=tr("pl.keys_placeholder")
                prop:value=move || text.get() on:input=move |ev| set(event_target_value(&ev))></textarea>
            <div class="actions">
                <label class="button-like" for=format!("{id}-file")>{tr("pl.read_keys_file")}</label>
                <input id=format!("{id}-file") class="visually-hidden" type="file" accept=".txt,.csv,text/plain,text/csv"
                    on:change=move |ev| read_keys_file(ev, add) />
                <button type="button" class="link" on:click=move |_| set(String::new())>{tr("pl.clear")}</button>
                <span class="figures" id=format!("{id}-count")>{move || parsed.with(|p| match p {
                    Ok(keys) => t(lang.get(), "pl.n_keys").replace("{n}", &keys.len().to_string()),
                    Err(_) => String::new(),
                })}</span>
            </div>
            {move || parsed.with(|p| p.as_ref().err().map(|r| r.message.clone())).map(|m| view! { <p class="notice error" id=format!("{id}-error")>{m}</p> })}
        </div>
    }
}

/// The plan form, for a new plan (`plan` is `None`) or a draft; `saved` gets the center's
/// answer.
#[component]
fn PlanForm(plan: Option<Plan>, saved: impl Fn(Plan) + Clone + 'static) -> impl IntoView {
    let session = session();
    let lang = model().lang;
    let editing = plan.as_ref().map(|p| p.id);
    let draft = RwSignal::new(match &plan {
        Some(p) => PlanDraft::from_plan(p),
        None => PlanDraft {
            time_zone: page::own_time_zone().unwrap_or_else(|| "UTC".into()),
            ..PlanDraft::default()
        },
    });
    let problem = RwSignal::new(None::<String>);
    let done = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let products = LocalResource::new(move || guarded(session, api::products()));
    let product = Memo::new(move |_| draft.with(|d| d.product_key.clone()));
    // The product's packages, the components' choices (newest first, at most a page of 1000).
    let packages = LocalResource::new(move || {
        let product = product.get();
        async move {
            if product.is_empty() {
                return Ok(Vec::new());
            }
            let filter = PackageFilter {
                product: Some(product),
                limit: Some(1000),
                ..PackageFilter::default()
            };
            guarded(session, api::packages_page(&filter)).await
        }
    });
    let zones = StoredValue::new(page::time_zones());
    // The clock of the picked zone moves on while the form is open.
    let tick = RwSignal::new(0u32);
    if let Ok(handle) = set_interval_with_handle(
        move || tick.update(|n| *n = n.wrapping_add(1)),
        std::time::Duration::from_secs(15),
    ) {
        on_cleanup(move || handle.clear());
    }

    // A new plan's product defaults to the first one listed.
    Effect::new(move |_| {
        if let Some(Ok(list)) = products.get() {
            if draft.with_untracked(|d| d.product_key.is_empty()) {
                if let Some(p) = list.first() {
                    let key = p.product_key.clone();
                    draft.update(|d| d.product_key = key);
                }
            }
        }
    });

    // A refusal stays until the engineer changes something.
    Effect::new(move |first: Option<()>| {
        draft.track();
        if first.is_some() {
            problem.set(None);
            done.set(false);
        }
    });
    let field = move |f: fn(&mut PlanDraft, String)| {
        move |ev: leptos::ev::Event| {
            let v = event_target_value(&ev);
            draft.update(|d| f(d, v));
            done.set(false);
        }
    };
    let submit = {
        let saved = saved.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            if busy.get_untracked() {
                return;
            }
            let known = packages
                .get_untracked()
                .and_then(Result::ok)
                .unwrap_or_default();
            let input = match draft.with_untracked(|d| d.check(&known)) {
                Ok(input) => input,
                Err(refusal) => {
                    problem.set(Some(refusal.message));
                    return;
                }
            };
            problem.set(None);
            busy.set(true);
            let saved = saved.clone();
            leptos::task::spawn_local(async move {
                let result = match editing {
                    Some(id) => guarded(session, api::update_plan(id, &input)).await,
                    None => guarded(session, api::create_plan(&input)).await,
                };
                busy.set(false);
                match result {
                    Ok(p) => {
                        done.set(true);
                        saved(p);
                    }
                    Err(ApiError { message, .. }) => problem.set(Some(message)),
                }
            });
        }
    };

    let zone_now = move || {
        tick.get();
        let zone = draft.with(|d| d.time_zone.trim().to_string());
        match sota_api::plan::time_zone(&zone) {
            Ok(_) => page::time_in(&zone, lang.get().tag())
                .map(|now| t(lang.get(), "pl.now_there").to_string() + " " + &now)
                .unwrap_or_default(),
            Err(r) => r.message,
        }
    };
    let manual = move || draft.with(|d| d.upgrade_mode == UpgradeMode::Manual);
    // Which of the texts manual mode needs are still blank.
    let missing_texts = move || {
        draft.with(|d| {
            ["zh", "en"]
                .into_iter()
                .filter(|l| {
                    !d.texts
                        .iter()
                        .any(|r| r.language.trim() == *l && !r.text.trim().is_empty())
                })
                .collect::<Vec<_>>()
        })
    };
    // Each list is parsed again only when its own text changes (it may hold 100,000 keys).
    let white_text = Memo::new(move |_| draft.with(|d| d.whitelist.clone()));
    let black_text = Memo::new(move |_| draft.with(|d| d.blacklist.clone()));
    let white = Memo::new(move |_| white_text.with(|t| parse_keys("whitelist", t)));
    let black = Memo::new(move |_| black_text.with(|t| parse_keys("blacklist", t)));
    let both = Memo::new(move |_| {
        white.with(|w| {
            black.with(|b| match (w, b) {
                (Ok(w), Ok(b)) => in_both(w, b).len(),
                _ => 0,
            })
        })
    });
    let component_count = Memo::new(move |_| draft.with(|d| d.components.len()));
    let text_count = Memo::new(move |_| draft.with(|d| d.texts.len()));

    let component_row = move |i: usize| {
        let picked =
            Memo::new(move |_| draft.with(|d| d.components.get(i).and_then(|c| c.package_id)));
        let files = move || {
            let id = picked.get()?;
            let list = packages.get()?.ok()?;
            let p = list.into_iter().find(|p| p.id == id)?;
            (p.files.len() > 1).then_some(p.files)
        };
        view! {
            <tr class="component-row">
                <td><input class="comp-identity" spellcheck="false" placeholder="STM32" aria-label=tr("c.identity")
                    prop:value=move || draft.with(|d| d.components.get(i).map(|c| c.identity.clone()).unwrap_or_default())
                    on:input=move |ev| { let v = event_target_value(&ev); draft.update(|d| if let Some(c) = d.components.get_mut(i) { c.identity = v }) } /></td>
                <td>
                    <select class="comp-package" aria-label=tr("pl.package")
                        on:change=move |ev| {
                            let v = event_target_value(&ev).parse::<i64>().ok();
                            draft.update(|d| if let Some(c) = d.components.get_mut(i) { c.package_id = v; c.file_position = 0 })
                        }>
                        <option value="">{tr("pl.pick_package")}</option>
                        {move || packages.get().and_then(Result::ok).unwrap_or_default().into_iter().map(|p| {
                            let selected = picked.get_untracked() == Some(p.id);
                            view! { <option value=p.id.to_string() selected=selected>{package_label(&p)}</option> }
                        }).collect_view()}
                    </select>
                    {move || files().map(|files| view! {
                        <select class="comp-file" aria-label=tr("c.file")
                            on:change=move |ev| { let v = event_target_value(&ev).parse::<u32>().unwrap_or(0); draft.update(|d| if let Some(c) = d.components.get_mut(i) { c.file_position = v }) }>
                            {files.into_iter().map(|f| {
                                let selected = draft.with_untracked(|d| d.components.get(i).map(|c| c.file_position)) == Some(f.position);
                                view! { <option value=f.position.to_string() selected=selected>{format!("{}: {}", f.position + 1, f.file_name)}</option> }
                            }).collect_view()}
                        </select>
                    })}
                </td>
                <td><button type="button" class="link remove" disabled={move || component_count.get() <= 1}
                    on:click=move |_| draft.update(|d| if d.components.len() > 1 && i < d.components.len() { d.components.remove(i); })>{tr("c.remove")}</button></td>
            </tr>
        }
    };
    let text_row = move |i: usize| {
        view! {
            <div class="text-row">
                <label class="lang-code">{tr("pl.language")}
                    <input class="text-lang" spellcheck="false" maxlength="16"
                        prop:value=move || draft.with(|d| d.texts.get(i).map(|r| r.language.clone()).unwrap_or_default())
                        on:input=move |ev| { let v = event_target_value(&ev); draft.update(|d| if let Some(r) = d.texts.get_mut(i) { r.language = v }) } />
                </label>
                <label class="wide">{tr("pl.text")}
                    <textarea class="text-body" rows="2" maxlength="2000"
                        prop:value=move || draft.with(|d| d.texts.get(i).map(|r| r.text.clone()).unwrap_or_default())
                        on:input=move |ev| { let v = event_target_value(&ev); draft.update(|d| if let Some(r) = d.texts.get_mut(i) { r.text = v }) }></textarea>
                </label>
                <button type="button" class="link remove" on:click=move |_| draft.update(|d| if i < d.texts.len() { d.texts.remove(i); })>{tr("c.remove")}</button>
            </div>
        }
    };

    view! {
        <form class="package-form plan-form" on:submit=submit novalidate>
            <div class="fields">
                <label>{tr("pl.plan_name")}
                    <input id="plan-name" maxlength="128" prop:value=move || draft.with(|d| d.name.clone())
                        on:input=field(|d, v| d.name = v) />
                </label>
                <label>{tr("c.product")}
                    <select id="plan-product" on:change=move |ev| {
                        let v = event_target_value(&ev);
                        // Another product's packages do not fit: the components pick again.
                        draft.update(|d| {
                            d.product_key = v;
                            for c in &mut d.components { c.package_id = None; c.file_position = 0; }
                        });
                    }>
                        {move || products.get().and_then(Result::ok).unwrap_or_default().into_iter().map(|p| {
                            let key = p.product_key.clone();
                            let selected = draft.with_untracked(|d| d.product_key == key);
                            view! { <option value=key.clone() selected=selected>{format!("{key} — {}", p.name)}</option> }
                        }).collect_view()}
                    </select>
                </label>
            </div>

            <fieldset>
                <legend>{tr("pl.devices")}</legend>
                <p class="hint">{tr("pl.lists_hint")}</p>
                <p class="notice" id="blacklist-wins"><strong>{tr("pl.blacklist_wins")}</strong></p>
                <div class="key-lists">
                    <KeyList draft black=false text=white_text parsed=white problem />
                    <KeyList draft black=true text=black_text parsed=black problem />
                </div>
                {move || (both.get() > 0).then(|| view! {
                    <p class="notice" id="plan-in-both">{move || t(lang.get(), "pl.in_both").replace("{n}", &both.get().to_string())}</p>
                })}
            </fieldset>

            <fieldset>
                <legend>{tr("pl.when")}</legend>
                <div class="fields">
                    <label>{tr("pl.time_zone")}
                        <input id="plan-tz" list="tz-names" spellcheck="false" autocomplete="off"
                            prop:value=move || draft.with(|d| d.time_zone.clone())
                            on:input=field(|d, v| d.time_zone = v) />
                        <span class="hint" id="plan-tz-now">{zone_now}</span>
                    </label>
                    <datalist id="tz-names">
                        {zones.get_value().into_iter().map(|z| view! { <option value=z></option> }).collect_view()}
                    </datalist>
                </div>
                <label class="choice"><input type="checkbox" id="plan-push" prop:checked=move || draft.with(|d| d.push_period)
                    on:change=move |ev| { let on = event_target_checked(&ev); draft.update(|d| d.push_period = on) } />{tr("pl.push_window")}</label>
                <Show when=move || draft.with(|d| d.push_period)>
                    <div class="fields">
                        <label>{tr("pl.push_start")}
                            <input id="plan-push-start" type="time" prop:value=move || draft.with(|d| d.push_start.clone())
                                on:input=field(|d, v| d.push_start = v) />
                        </label>
                        <label>{tr("pl.push_end")}
                            <input id="plan-push-end" type="time" prop:value=move || draft.with(|d| d.push_end.clone())
                                on:input=field(|d, v| d.push_end = v) />
                        </label>
                    </div>
                    <p class="hint">{tr("pl.push_hint")}</p>
                </Show>
            </fieldset>

            <fieldset>
                <legend>{tr("pl.upgrade_mode")}</legend>
                <label class="choice"><input type="radio" name="plan-mode" id="plan-silent" prop:checked=move || !manual()
                    on:change=move |_| draft.update(|d| d.upgrade_mode = UpgradeMode::Silent) />{tr("pl.silent_long")}</label>
                <label class="choice"><input type="radio" name="plan-mode" id="plan-manual" prop:checked=manual
                    on:change=move |_| draft.update(|d| d.upgrade_mode = UpgradeMode::Manual) />{tr("pl.manual_long")}</label>
            </fieldset>

            <fieldset>
                <legend>{tr("pl.texts")}</legend>
                <p class="hint">{tr("pl.texts_hint")}</p>
                {move || (0..text_count.get()).map(text_row).collect_view()}
                <button type="button" id="plan-add-text" on:click=move |_| draft.update(|d| d.texts.push(TextDraft::default()))>{tr("pl.add_language")}</button>
                {move || {
                    let missing = missing_texts();
                    (manual() && !missing.is_empty()).then(|| view! {
                        <p class="notice" id="plan-texts-missing">{move || t(lang.get(), "pl.texts_missing").replace("{langs}", &missing.join(", "))}</p>
                    })
                }}
            </fieldset>

            <fieldset>
                <legend>{tr("pl.strategy")}</legend>
                <div class="fields">
                    <label>{tr("pl.min_battery")}
                        <input id="plan-battery" type="number" min="0" max="100" prop:value=move || draft.with(|d| d.min_battery_percent.clone())
                            on:input=field(|d, v| d.min_battery_percent = v) />
                    </label>
                    <label>{tr("pl.min_signal")}
                        <input id="plan-signal" type="number" min="-150" max="0" prop:value=move || draft.with(|d| d.min_signal_dbm.clone())
                            on:input=field(|d, v| d.min_signal_dbm = v) />
                    </label>
                    <label>{tr("pl.space_needed")}
                        <input id="plan-space" type="number" min="0" prop:value=move || draft.with(|d| d.space_needed_bytes.clone())
                            on:input=field(|d, v| d.space_needed_bytes = v) />
                    </label>
                    <label>{tr("pl.retries")}
                        <input id="plan-retries" type="number" min="0" max="10" prop:value=move || draft.with(|d| d.download_retries.clone())
                            on:input=field(|d, v| d.download_retries = v) />
                    </label>
                </div>
            </fieldset>

            <fieldset>
                <legend>{tr("pl.plan_components")}</legend>
                <p class="hint">{tr("pl.components_hint")}</p>
                {move || match packages.get() {
                    Some(Err(e)) => Some(error_view(e).into_any()),
                    Some(Ok(list)) if list.is_empty() && !product.get().is_empty() =>
                        Some(view! { <p class="notice" id="plan-no-packages">{tr("pl.no_product_packages")}" "<A href="/center/packages/new">{tr("c.add_package")}</A></p> }.into_any()),
                    _ => None,
                }}
                <div class="table-wrap">
                <table class="list" id="plan-components-form">
                    <thead><tr><th>{tr("c.identity")}</th><th>{tr("pl.package")}</th><th></th></tr></thead>
                    <tbody>{move || (0..component_count.get()).map(component_row).collect_view()}</tbody>
                </table>
                </div>
                <button type="button" id="plan-add-component" disabled={move || component_count.get() >= sota_engine::MAX_PLANS}
                    on:click=move |_| draft.update(|d| d.components.push(ComponentDraft::default()))>{tr("pl.add_component")}</button>
            </fieldset>

            {move || problem.get().map(|m| view! { <p class="notice error" role="alert" id="plan-error">{m}</p> })}
            {move || done.get().then(|| view! { <p class="result ok" role="status" id="plan-saved">{tr("pl.saved")}</p> })}
            <div class="actions">
                <button type="submit" class="primary" id="plan-save" disabled=busy>
                    {move || tr(if editing.is_some() { "pl.save_draft" } else { "pl.create_draft" })()}
                </button>
                <A href="/center/plans">{tr("pl.back_to_plans")}</A>
            </div>
        </form>
    }
}
