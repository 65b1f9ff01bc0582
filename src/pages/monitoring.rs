//! Upgrade monitoring of one plan (`/center/plans/:id/monitoring`): the upgrades per status as
//! bars, the plan's devices with each component's status and progress, a component's details,
//! the upgrade log, and the log as CSV. Lists are paged on the server (a plan may reach 100,000
//! devices); what moves arrives on the plan's event stream and is applied to what is shown, so
//! nothing is reloaded but after a gap in the stream.

use std::time::Duration;

use super::engineer::{guarded, loading, session, short_time};
use super::{model, tr};
use crate::adapters::{clock, page};
use crate::api::{self, ApiError, Following};
use crate::i18n::{t, Lang};
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;
use sota_api::events::PlanEvent;
use sota_api::monitoring::{LogEntry, Outcome, PlanCounts, PlanDevice, UpgradeView, Window};
use sota_engine::Status;

/// Devices on one page of the list.
pub const PAGE: usize = 50;
/// Log lines on one page of the log.
pub const LOG_PAGE: usize = 100;

/// Where a page's event stream stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Live {
    /// Opening.
    Connecting,
    /// Open: what is shown follows the center.
    Open,
    /// Broken or ended; opened again shortly.
    Reconnecting,
    /// No more changes will come (a verification job ended).
    Ended,
}

/// Follows the server-sent events at `path` while the calling view is shown: `on_data` gets
/// each event's data. A stream that breaks or ends is opened again after a pause (longer each
/// time, up to 15 s) unless `done()`; `on_gap` hears first that changes may have been missed.
/// A refused token stops it, and the session shows the sign-in page.
pub fn follow_while_shown(
    path: String,
    live: RwSignal<Live>,
    mut on_data: impl FnMut(String) + 'static,
    on_gap: impl Fn() + 'static,
    done: impl Fn() -> bool + 'static,
) {
    let session = session();
    let following = Following::new();
    on_cleanup(move || following.stop());
    leptos::task::spawn_local(async move {
        let mut pause = Duration::from_secs(1);
        loop {
            let mut heard = false;
            let result = api::follow(&path, following, |data| {
                heard = true;
                if live.get_untracked() != Live::Open {
                    live.set(Live::Open);
                }
                on_data(data);
            })
            .await;
            if following.stopped() {
                return;
            }
            if done() {
                live.set(Live::Ended);
                return;
            }
            if let Err(e) = &result {
                session.see(e);
                if e.signed_out() {
                    return;
                }
            }
            live.set(Live::Reconnecting);
            on_gap();
            if heard {
                pause = Duration::from_secs(1);
            }
            clock::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(15));
            if following.stopped() {
                return;
            }
        }
    });
}

/// The "live" badge of a page that follows a stream.
pub fn live_badge(live: RwSignal<Live>) -> impl IntoView {
    let lang = model().lang;
    move || {
        let (class, key) = match live.get() {
            Live::Connecting => ("live connecting", "mo.connecting"),
            Live::Open => ("live open", "mo.live"),
            Live::Reconnecting => ("live connecting", "mo.reconnecting"),
            Live::Ended => return None,
        };
        Some(
            view! { <span class=class id="live" role="status">{t(lang.get(), key).to_string()}</span> },
        )
    }
}

/// An OTA status name (`update_ok`) as the engineer reads it.
pub fn status_text(lang: Lang, name: &str) -> String {
    let key = format!("st.{name}");
    let text = t(lang, &key);
    if text == key {
        name.to_string()
    } else {
        text.to_string()
    }
}

/// An outcome as the engineer reads it.
pub fn outcome_text(lang: Lang, o: Outcome) -> &'static str {
    t(
        lang,
        match o {
            Outcome::Pending => "c.pending",
            Outcome::Succeeded => "c.succeeded",
            Outcome::Failed => "c.failed",
            Outcome::Refused => "c.refused",
        },
    )
}

/// The colour class of a status's bar: done, failed, waiting to start, or on its way.
fn status_class(s: Status) -> &'static str {
    match s {
        Status::UpdateOk => "ok",
        Status::Refused | Status::DownloadError | Status::UpdateError => "bad",
        Status::None => "idle",
        _ => "busy",
    }
}

/// Progress at OTA status `code`, percent: the download's while downloading, full once downloaded.
pub fn progress(code: u8, percent: Option<u8>) -> Option<u8> {
    match Status::from_code(code)? {
        Status::Downloading => percent,
        Status::DownloadOk | Status::Updating | Status::UpdateOk | Status::UpdateError => Some(100),
        _ => None,
    }
}

/// Applies a moved upgrade to the page of devices shown (`first_page`: nothing before it,
/// `last_page`: nothing after it): its component is replaced, or its device added where the
/// server's order (by key) puts it if that is on this page. True when the page grew past
/// `page` devices: its last one moved on to the next page.
pub fn apply_upgrade(
    devices: &mut Vec<PlanDevice>,
    upgrade: UpgradeView,
    first_page: bool,
    last_page: bool,
    page: usize,
) -> bool {
    let key = upgrade.device_key.clone();
    match devices.binary_search_by(|d| d.device_key.cmp(&key)) {
        Ok(at) => {
            let components = &mut devices[at].components;
            match components.binary_search_by(|c| c.identity.cmp(&upgrade.identity)) {
                Ok(i) => components[i] = upgrade,
                Err(i) => components.insert(i, upgrade),
            }
            false
        }
        Err(at) => {
            let after_first = first_page || at > 0;
            let before_last = last_page || at < devices.len();
            if !(after_first && before_last) {
                return false;
            }
            devices.insert(
                at,
                PlanDevice {
                    device_key: key,
                    components: vec![upgrade],
                },
            );
            if devices.len() > page {
                devices.truncate(page);
                return true;
            }
            false
        }
    }
}

/// What the page shows of one list: its items, whether more follow, why it failed.
#[derive(Clone, Debug)]
struct Listed<T> {
    items: Vec<T>,
    loaded: bool,
    more: bool,
    error: Option<String>,
}

impl<T> Default for Listed<T> {
    fn default() -> Self {
        Listed {
            items: Vec::new(),
            loaded: false,
            more: false,
            error: None,
        }
    }
}

impl<T: Clone> Listed<T> {
    /// The list after a page of at most `page` rows was asked for with one row more (which
    /// tells whether a next page exists); a refusal keeps the rows shown and says why.
    fn page(current: &Self, got: Result<Vec<T>, ApiError>, page: usize) -> Self {
        match got {
            Ok(mut items) => {
                let more = items.len() > page;
                items.truncate(page);
                Listed {
                    items,
                    loaded: true,
                    more,
                    error: None,
                }
            }
            Err(e) => Listed {
                error: Some(e.message),
                ..current.clone()
            },
        }
    }
}

/// `/center/plans/:id/monitoring`.
#[component]
pub fn MonitoringPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").and_then(|s| s.parse::<i64>().ok());
    // A new plan's address starts over: its own lists and stream.
    move || match id() {
        Some(id) => view! { <Monitoring id=id /> }.into_any(),
        None => view! { <section class="panel"><h2>{tr("c.not_found")}</h2></section> }.into_any(),
    }
}

#[component]
fn Monitoring(id: i64) -> impl IntoView {
    let session = session();
    let lang = model().lang;
    let plan = LocalResource::new(move || guarded(session, api::plan(id)));
    let counts = RwSignal::new(None::<Result<PlanCounts, String>>);
    let devices = RwSignal::new(Listed::<PlanDevice>::default());
    let offset = RwSignal::new(0usize);
    let log = RwSignal::new(Listed::<LogEntry>::default());
    let log_offset = RwSignal::new(0usize);
    let selected = RwSignal::new(None::<String>);
    let detail_log = RwSignal::new(None::<Result<Vec<LogEntry>, String>>);
    let live = RwSignal::new(Live::Connecting);
    // Counts are read again at most once a second while upgrades move.
    let counts_due = StoredValue::new(false);

    let load_counts = move || {
        leptos::task::spawn_local(async move {
            let got = guarded(session, api::plan_counts(id)).await;
            counts.set(Some(got.map_err(|e| e.message)));
        })
    };
    let load_devices = move || {
        leptos::task::spawn_local(async move {
            let from = offset.get_untracked();
            let window = Window {
                offset: Some(from as u32),
                // One more than shown tells whether a next page exists.
                limit: Some(PAGE as u32 + 1),
            };
            let got = guarded(session, api::plan_devices(id, &window)).await;
            if offset.get_untracked() != from {
                return; // The engineer paged on meanwhile.
            }
            devices.update(|l| *l = Listed::page(l, got, PAGE));
        })
    };
    let load_log = move || {
        leptos::task::spawn_local(async move {
            let from = log_offset.get_untracked();
            let window = Window {
                offset: Some(from as u32),
                limit: Some(LOG_PAGE as u32 + 1),
            };
            let got = guarded(session, api::plan_log(id, &window)).await;
            if log_offset.get_untracked() != from {
                return;
            }
            log.update(|l| *l = Listed::page(l, got, LOG_PAGE));
        })
    };
    let load_all = move || {
        load_counts();
        load_devices();
        load_log();
    };

    let on_event = move |data: String| {
        let Ok(event) = serde_json::from_str::<PlanEvent>(&data) else {
            return;
        };
        match event {
            // Loaded once the stream is open, so no change falls between the two.
            PlanEvent::Open | PlanEvent::Lagged { .. } => load_all(),
            PlanEvent::Upgrade { upgrade, log: line } => {
                counts_due.set_value(true);
                let first = offset.get_untracked() == 0;
                devices.update(|d| {
                    let last = !d.more;
                    if apply_upgrade(&mut d.items, *upgrade, first, last, PAGE) {
                        d.more = true;
                    }
                });
                if let Some(line) = line {
                    if selected.with_untracked(|s| s.as_deref() == Some(&line.device_key)) {
                        detail_log.update(|l| {
                            if let Some(Ok(lines)) = l {
                                lines.push(line.clone());
                            }
                        });
                    }
                    // A new line belongs on the log's last page.
                    log.update(|l| {
                        if !l.loaded || l.more || l.items.last().is_some_and(|e| e.id >= line.id) {
                            return;
                        }
                        if l.items.len() < LOG_PAGE {
                            l.items.push(line);
                        } else {
                            l.more = true;
                        }
                    });
                }
            }
        }
    };
    follow_while_shown(
        format!("/plans/{id}/events"),
        live,
        on_event,
        move || counts_due.set_value(true),
        || false,
    );
    // The counts, while the page is shown: read again when upgrades moved. (A `Following`
    // without a stream: its stopped flag, set by the cleanup, is what the loop needs.)
    let shown = Following::new();
    on_cleanup(move || shown.stop());
    leptos::task::spawn_local(async move {
        while !shown.stopped() {
            clock::sleep(Duration::from_secs(1)).await;
            if !shown.stopped() && counts_due.get_value() {
                counts_due.set_value(false);
                load_counts();
            }
        }
    });

    let show_details = move |key: String| {
        if selected.get_untracked().as_deref() == Some(key.as_str()) {
            selected.set(None);
            return;
        }
        selected.set(Some(key.clone()));
        detail_log.set(None);
        leptos::task::spawn_local(async move {
            let product = match plan.get_untracked() {
                Some(Ok(p)) => p.product_key,
                _ => return,
            };
            let got = guarded(session, api::history(&product, &key)).await;
            if selected.get_untracked().as_deref() != Some(key.as_str()) {
                return;
            }
            detail_log.set(Some(
                got.map(|h| h.log.into_iter().filter(|e| e.plan_id == id).collect())
                    .map_err(|e| e.message),
            ));
        });
    };

    let exporting = RwSignal::new(false);
    let exported = RwSignal::new(None::<Result<String, String>>);
    let export = move |_| {
        exporting.set(true);
        exported.set(None);
        leptos::task::spawn_local(async move {
            let got = guarded(session, api::plan_log_csv(id, |_| {})).await;
            let name = format!("plan-{id}-log.csv");
            exported.set(Some(match got {
                Ok(csv) => page::save_text(&name, &csv).map(|_| name),
                Err(e) => Err(e.message),
            }));
            exporting.set(false);
        });
    };

    let plan_name = move || match plan.get() {
        Some(Ok(p)) => p.name,
        _ => format!("#{id}"),
    };
    view! {
        <section class="panel" aria-labelledby="monitoring-title">
            <p class="crumbs">
                <A href="/center/plans">{tr("pl.plans")}</A>" › "
                <A href=format!("/center/plans/{id}")>{plan_name}</A>" › "{tr("mo.title")}
            </p>
            <div class="package-head">
                <h2 id="monitoring-title">{tr("mo.title")}": "{plan_name}</h2>
                {live_badge(live)}
            </div>
            {move || match plan.get() {
                Some(Ok(p)) => Some(view! {
                    <p class="figures plain" id="plan-facts">
                        {tr("mo.plan")}" #"{p.id}" · "{tr("c.product")}" "{p.product_key.clone()}" · "
                        {p.components.iter().map(|c| c.identity.clone()).collect::<Vec<_>>().join(", ")}
                    </p>
                }.into_any()),
                Some(Err(e)) => Some(view! { <p class="notice error" role="alert">{e.message}</p> }.into_any()),
                None => None,
            }}
            <h3>{tr("mo.counts")}</h3>
            {move || match counts.get() {
                None => loading().into_any(),
                Some(Err(m)) => view! { <p class="notice error" role="alert">{m}</p> }.into_any(),
                Some(Ok(c)) => counts_view(c, lang).into_any(),
            }}
        </section>
        <section class="panel" aria-labelledby="plan-devices-title">
            <h2 id="plan-devices-title">{tr("mo.devices")}</h2>
            <p class="hint">{tr("mo.devices_hint")}</p>
            {move || devices.with(|d| d.error.clone()).map(|m| view! { <p class="notice error" role="alert">{m}</p> })}
            {move || {
                let d = devices.get();
                if !d.loaded {
                    return loading().into_any();
                }
                if d.items.is_empty() {
                    return view! { <p class="hint" id="no-plan-devices">{tr("mo.no_upgrades")}</p> }.into_any();
                }
                let first = offset.get_untracked();
                let shown = d.items.len();
                view! {
                    <div class="table-wrap">
                    <table class="list" id="plan-devices">
                        <thead><tr>
                            <th>{tr("c.device_key")}</th><th>{tr("c.identity")}</th><th>{tr("c.status")}</th>
                            <th>{tr("mo.progress")}</th><th>{tr("c.outcome")}</th><th>{tr("c.updated")}" (UTC)"</th>
                        </tr></thead>
                        <tbody>
                            {d.items.into_iter().flat_map(|dev| {
                                let key = dev.device_key.clone();
                                dev.components.into_iter().map(move |u| {
                                    let key = key.clone();
                                    let open = {
                                        let key = key.clone();
                                        move || selected.get().as_deref() == Some(key.as_str())
                                    };
                                    let progress = progress(u.status, u.percent);
                                    let name = u.status_name.clone();
                                    view! {
                                        <tr data-device=key.clone() data-identity=u.identity.clone()
                                            data-status=u.status_name.clone() data-outcome=u.outcome.as_str()>
                                            // The key opens the device's details (one column less on a tablet).
                                            <td><button type="button" class="link details mono" aria-expanded=move || open().to_string()
                                                title=tr("mo.details")
                                                on:click={
                                                    let key = key.clone();
                                                    move |_| show_details(key.clone())
                                                }>{key.clone()}</button></td>
                                            <td>{u.identity.clone()}</td>
                                            <td class="status-name">{move || status_text(lang.get(), &name)}</td>
                                            <td class="progress-cell">{progress.map(|p| view! {
                                                <progress max="100" value=p.to_string()></progress>
                                                <span class="figures">{format!("{p} %")}</span>
                                            })}</td>
                                            <td class=format!("outcome-{} nowrap", u.outcome.as_str())>{move || outcome_text(lang.get(), u.outcome)}</td>
                                            <td class="when" title=short_time(&u.updated_at)>{compact_time(&u.updated_at)}</td>
                                        </tr>
                                    }
                                }).collect::<Vec<_>>()
                            }).collect_view()}
                        </tbody>
                    </table>
                    </div>
                    <div class="actions pager">
                        <button type="button" id="plan-devices-prev" disabled=first == 0
                            on:click=move |_| { offset.update(|o| *o = o.saturating_sub(PAGE)); load_devices(); }>{tr("c.previous")}</button>
                        <span class="figures" id="plan-devices-range">{format!("{}–{}", first + 1, first + shown)}</span>
                        <button type="button" id="plan-devices-next" disabled=!d.more
                            on:click=move |_| { offset.update(|o| *o += PAGE); load_devices(); }>{tr("c.next")}</button>
                    </div>
                }.into_any()
            }}
            {move || selected.get().map(|key| details_view(key, devices, detail_log, selected, lang))}
        </section>
        <section class="panel" aria-labelledby="plan-log-title">
            <div class="package-head">
                <h2 id="plan-log-title">{tr("mo.log")}</h2>
                <button type="button" id="export-csv" on:click=export disabled=exporting>
                    {move || if exporting.get() { tr("mo.exporting")() } else { tr("mo.export")() }}
                </button>
            </div>
            {move || exported.get().map(|r| match r {
                Ok(name) => view! { <p class="hint" id="exported" role="status">{t(lang.get(), "mo.exported").replace("{name}", &name)}</p> }.into_any(),
                Err(m) => view! { <p class="notice error" role="alert" id="export-error">{m}</p> }.into_any(),
            })}
            {move || log.with(|l| l.error.clone()).map(|m| view! { <p class="notice error" role="alert">{m}</p> })}
            {move || {
                let l = log.get();
                if !l.loaded {
                    return loading().into_any();
                }
                if l.items.is_empty() {
                    return view! { <p class="hint">{tr("mo.no_log")}</p> }.into_any();
                }
                let first = log_offset.get_untracked();
                let shown = l.items.len();
                view! {
                    {log_view(l.items, lang, "plan-log")}
                    <div class="actions pager">
                        <button type="button" id="plan-log-prev" disabled=first == 0
                            on:click=move |_| { log_offset.update(|o| *o = o.saturating_sub(LOG_PAGE)); load_log(); }>{tr("c.previous")}</button>
                        <span class="figures">{format!("{}–{}", first + 1, first + shown)}</span>
                        <button type="button" id="plan-log-next" disabled=!l.more
                            on:click=move |_| { log_offset.update(|o| *o += LOG_PAGE); load_log(); }>{tr("c.next")}</button>
                    </div>
                }.into_any()
            }}
        </section>
    }
}

/// The counts as bars, one per status in the order an upgrade goes through them.
fn counts_view(c: PlanCounts, lang: RwSignal<Lang>) -> impl IntoView {
    let total: u64 = c.by_status.values().sum();
    let outcome = |o: Outcome| c.by_outcome.get(o.as_str()).copied().unwrap_or(0);
    let summary = [
        Outcome::Succeeded,
        Outcome::Failed,
        Outcome::Refused,
        Outcome::Pending,
    ]
    .map(|o| (o, outcome(o)));
    view! {
        <p class="counts-head" id="counts-head">
            <strong>{c.devices}</strong>" "{tr(if c.devices == 1 { "mo.device_offered" } else { "mo.devices_offered" })}
            {summary.into_iter().map(|(o, n)| view! {
                " · "<span class=(n > 0).then(|| format!("outcome-{}", o.as_str())) data-outcome=o.as_str()>{move || outcome_text(lang.get(), o)}" "{n}</span>
            }).collect_view()}
        </p>
        <ul class="bars" id="status-bars">
            {Status::ALL.into_iter().map(|s| {
                let name = sota_protocol::status_name(s);
                let n = c.by_status.get(name).copied().unwrap_or(0);
                let share = if total == 0 { 0.0 } else { n as f64 * 100.0 / total as f64 };
                view! {
                    <li data-status=name data-count=n.to_string()>
                        <span class="bar-label">{move || status_text(lang.get(), name)}</span>
                        <span class="bar-track" aria-hidden="true">
                            <span class=format!("bar-fill {}", status_class(s)) style:width=format!("{share:.1}%")></span>
                        </span>
                        <span class="bar-count">{n}</span>
                    </li>
                }
            }).collect_view()}
        </ul>
    }
}

/// What a log line's message adds to its status and percent, if anything: the center words a
/// bare report as its status name (`plan`, `downloading: 40 %`).
pub fn said(e: &LogEntry) -> Option<&str> {
    let m = e.message.as_str();
    let rest = match m.strip_prefix(e.status_name.as_str()) {
        Some("") => "",
        Some(r) if r.starts_with(':') => r[1..].trim(),
        _ => m,
    };
    let bare_percent = e.percent.is_some_and(|p| rest == format!("{p} %"));
    (!rest.is_empty() && !bare_percent).then_some(rest)
}

/// `2026-11-27T17:44:01.123Z` as `11-27 17:44:01` (UTC), for narrow columns.
pub fn compact_time(at: &str) -> String {
    let full = short_time(at);
    let full = full.trim_end_matches(" UTC");
    full.get(5..).unwrap_or(full).to_string()
}

/// Log lines, oldest first.
pub fn log_view(lines: Vec<LogEntry>, lang: RwSignal<Lang>, id: &'static str) -> impl IntoView {
    view! {
        <ul class="log" id=id>
            {lines.into_iter().map(|e| {
                let name = e.status_name.clone();
                let source = if e.source == "center" { "mo.source_center" } else { "mo.source_device" };
                view! {
                    <li data-status=e.status_name.clone()>
                        <span class="time">{short_time(&e.at)}</span>
                        <span class="text">
                            <span class="mono">{e.device_key.clone()}</span>
                            {format!(" · {} · ", e.identity)}
                            <strong>{move || status_text(lang.get(), &name)}</strong>
                            {e.percent.map(|p| format!(" {p} %"))}
                            {move || format!(" · {}", t(lang.get(), source))}
                            {said(&e).map(|m| format!(" — {m}"))}
                        </span>
                    </li>
                }
            }).collect_view()}
        </ul>
    }
}

/// One device's components in full, and its log lines of this plan.
fn details_view(
    key: String,
    devices: RwSignal<Listed<PlanDevice>>,
    detail_log: RwSignal<Option<Result<Vec<LogEntry>, String>>>,
    selected: RwSignal<Option<String>>,
    lang: RwSignal<Lang>,
) -> impl IntoView {
    let shown = key.clone();
    let components = move || {
        devices.with(|d| {
            d.items
                .iter()
                .find(|d| d.device_key == shown)
                .map(|d| d.components.clone())
                .unwrap_or_default()
        })
    };
    view! {
        <div class="details" id="component-details" role="region" aria-labelledby="details-title">
            <div class="package-head">
                <h3 id="details-title">{tr("mo.component_details")}": "<span class="mono">{key.clone()}</span></h3>
                <button type="button" class="secondary" on:click=move |_| selected.set(None)>{tr("mo.close")}</button>
            </div>
            {move || components().into_iter().map(|u| {
                let name = u.status_name.clone();
                view! {
                    <dl class="facts" data-identity=u.identity.clone()>
                        <dt>{tr("c.identity")}</dt><dd>{u.identity.clone()}</dd>
                        <dt>{tr("c.status")}</dt><dd>{move || status_text(lang.get(), &name)}{format!(" ({})", u.status)}{u.percent.map(|p| format!(" · {p} %"))}</dd>
                        <dt>{tr("c.outcome")}</dt><dd class=format!("outcome-{}", u.outcome.as_str())>{move || outcome_text(lang.get(), u.outcome)}</dd>
                        <dt>{tr("mo.message")}</dt><dd>{u.message.clone()}</dd>
                        <dt>{tr("mo.started")}</dt><dd class="when">{short_time(&u.started_at)}</dd>
                        <dt>{tr("c.updated")}</dt><dd class="when">{short_time(&u.updated_at)}</dd>
                        <dt>{tr("mo.finished")}</dt><dd class="when">{u.finished_at.as_deref().map(short_time).unwrap_or_else(|| "—".into())}</dd>
                    </dl>
                }
            }).collect_view()}
            {move || match detail_log.get() {
                None => loading().into_any(),
                Some(Err(m)) => view! { <p class="notice error" role="alert">{m}</p> }.into_any(),
                Some(Ok(lines)) => log_view(lines, lang, "details-log").into_any(),
            }}
        </div>
    }
}
