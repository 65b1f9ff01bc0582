//! Verify firmware: try a version package on one device before a mass upgrade. `/center/verify`
//! picks the package, a device of its product (searched by key on the server) and one of the
//! device's components, checked by the API's rules before it is sent; `/center/verifications/:id`
//! shows the job — status, progress and log — as the device reports it, live.

use super::engineer::{error_view, guarded, loading, session, short_time};
use super::monitoring::{follow_while_shown, live_badge, progress, status_text, Live};
use super::{model, tr};
use crate::api;
use crate::forms::VerificationDraft;
use crate::i18n::{t, Lang};
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};
use sota_api::device::{Device, Paging};
use sota_api::package::Package;
use sota_api::verification::{Outcome, Verification};

/// Devices listed for one search.
const FOUND: u32 = 10;

fn job_outcome(lang: Lang, o: Outcome) -> &'static str {
    t(
        lang,
        match o {
            Outcome::Pending => "c.pending",
            Outcome::Succeeded => "c.succeeded",
            Outcome::Failed => "c.failed",
        },
    )
}

fn outcome_class(o: Outcome) -> &'static str {
    match o {
        Outcome::Pending => "outcome-pending",
        Outcome::Succeeded => "outcome-succeeded",
        Outcome::Failed => "outcome-failed",
    }
}

/// A package as the picker lists it: number, name, versions, product.
fn package_label(p: &Package) -> String {
    let versions = match &p.meta.source_version {
        Some(source) => format!("{source} → {}", p.meta.target_version),
        None => p.meta.target_version.clone(),
    };
    format!(
        "#{} {} — {versions} ({})",
        p.id,
        p.meta.name,
        p.product_key.as_deref().unwrap_or("—")
    )
}

/// `/center/verify` (`?package=ID` picks the package).
#[component]
pub fn VerifyPage() -> impl IntoView {
    let session = session();
    let lang = model().lang;
    let navigate = use_navigate();
    let query = use_query_map();
    let packages = LocalResource::new(move || guarded(session, api::packages()));
    let draft = RwSignal::new(VerificationDraft {
        package_id: query
            .read_untracked()
            .get("package")
            .and_then(|p| p.parse().ok()),
        ..VerificationDraft::default()
    });
    let picked_package = move || {
        let id = draft.with(|d| d.package_id)?;
        match packages.get() {
            Some(Ok(list)) => list.into_iter().find(|p| p.id == id),
            _ => None,
        }
    };
    let typed = RwSignal::new(String::new());
    let found = RwSignal::new(None::<Result<Vec<Device>, String>>);
    let device = RwSignal::new(None::<Device>);
    // The package's product is where the device is searched; another product's device goes.
    Effect::new(move |_| {
        let product = picked_package()
            .and_then(|p| p.product_key)
            .unwrap_or_default();
        if draft.with_untracked(|d| d.product_key != product) {
            draft.update(|d| {
                d.product_key = product;
                d.device_key.clear();
                d.component_identity.clear();
            });
            device.set(None);
            found.set(None);
        }
    });
    let search = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let product = draft.with_untracked(|d| d.product_key.clone());
        if product.is_empty() {
            found.set(Some(Err(
                t(lang.get_untracked(), "vf.pick_package").to_string()
            )));
            return;
        }
        let paging = Paging {
            offset: Some(0),
            limit: Some(FOUND),
            q: Some(typed.get_untracked().trim().to_string()),
        };
        found.set(None);
        leptos::task::spawn_local(async move {
            let got = guarded(session, api::devices(&product, &paging)).await;
            found.set(Some(got.map_err(|e| e.message)));
        });
    };
    let choose = move |d: Device| {
        let identity = d.components.keys().next().cloned().unwrap_or_default();
        draft.update(|draft| {
            draft.device_key = d.device_key.clone();
            draft.component_identity = identity;
        });
        device.set(Some(d));
    };

    let problem = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let (package, job) = match draft.get_untracked().check() {
            Ok(checked) => checked,
            Err(refusal) => {
                problem.set(Some(refusal.message));
                return;
            }
        };
        problem.set(None);
        busy.set(true);
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match guarded(session, api::verify(package, &job)).await {
                Ok(v) => navigate(
                    &format!("/center/verifications/{}", v.id),
                    Default::default(),
                ),
                Err(e) => problem.set(Some(e.message)),
            }
            busy.set(false);
        });
    };
    let jobs = LocalResource::new(move || {
        let package = draft.with(|d| d.package_id);
        async move {
            match package {
                Some(p) => Some(guarded(session, api::verifications(p)).await),
                None => None,
            }
        }
    });

    view! {
        <section class="panel" aria-labelledby="verify-title">
            <h2 id="verify-title">{tr("vf.title")}</h2>
            <p class="hint">{tr("vf.hint")}</p>
            <div class="package-form">
                <div class="fields">
                    <label>{tr("vf.package")}
                        <select id="vf-package" on:change=move |ev| {
                            let id = event_target_value(&ev).parse().ok();
                            draft.update(|d| d.package_id = id);
                            problem.set(None);
                        }>
                            <option value="" selected=move || draft.with(|d| d.package_id.is_none())>{tr("vf.pick_package")}</option>
                            {move || match packages.get() {
                                Some(Ok(list)) => list.into_iter().map(|p| {
                                    let id = p.id;
                                    view! { <option value=id.to_string() selected=move || draft.with(|d| d.package_id == Some(id))>{package_label(&p)}</option> }
                                }).collect_view().into_any(),
                                _ => ().into_any(),
                            }}
                        </select>
                    </label>
                </div>
                {move || match packages.get() {
                    Some(Err(e)) => Some(error_view(e)),
                    _ => None,
                }}
            </div>
            <form class="search" role="search" id="vf-search" on:submit=search>
                <label for="vf-device-search">{tr("vf.device")}" "
                    {move || draft.with(|d| (!d.product_key.is_empty()).then(|| format!("({})", d.product_key)))}</label>
                <input id="vf-device-search" type="search" spellcheck="false" autocomplete="off"
                    placeholder=tr("c.search_placeholder")
                    prop:value=typed on:input=move |ev| typed.set(event_target_value(&ev)) />
                <button type="submit" id="vf-device-go">{tr("vf.search")}</button>
            </form>
            {move || found.get().map(|r| match r {
                Err(m) => view! { <p class="notice error" role="alert">{m}</p> }.into_any(),
                Ok(list) if list.is_empty() => view! { <p class="hint" id="vf-no-device">{tr("vf.no_device")}</p> }.into_any(),
                Ok(list) => view! {
                    <div class="table-wrap">
                    <table class="list" id="vf-devices">
                        <thead><tr><th>{tr("c.device_key")}</th><th>{tr("c.components")}</th><th></th></tr></thead>
                        <tbody>
                            {list.into_iter().map(|d| {
                                let key = d.device_key.clone();
                                let components = d.components.iter().map(|(i, v)| format!("{i} {v}")).collect::<Vec<_>>().join(", ");
                                let chosen = {
                                    let key = key.clone();
                                    move || draft.with(|x| x.device_key == key)
                                };
                                let chosen2 = chosen.clone();
                                view! {
                                    <tr data-device=key.clone()>
                                        <td class="mono">{key.clone()}</td>
                                        <td class="mono">{components}</td>
                                        <td><button type="button" class="choose" aria-pressed=move || chosen().to_string()
                                            on:click=move |_| choose(d.clone())>
                                            {move || if chosen2() { tr("vf.picked")() } else { tr("vf.pick")() }}
                                        </button></td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                    </div>
                }.into_any(),
            })}
            <form class="package-form" on:submit=submit novalidate>
                {move || device.get().map(|d| {
                    if d.components.is_empty() {
                        return view! { <p class="notice" id="vf-no-components">{tr("vf.no_components")}</p> }.into_any();
                    }
                    view! {
                        <div class="fields">
                            <label><span>{tr("vf.component")}" · "<span class="mono">{d.device_key.clone()}</span></span>
                                <select id="vf-component" on:change=move |ev| {
                                    let v = event_target_value(&ev);
                                    draft.update(|x| x.component_identity = v);
                                }>
                                    {d.components.into_iter().map(|(identity, version)| {
                                        let i = identity.clone();
                                        view! { <option value=identity.clone() selected=move || draft.with(|x| x.component_identity == i)>{format!("{identity} ({version})")}</option> }
                                    }).collect_view()}
                                </select>
                            </label>
                        </div>
                    }.into_any()
                })}
                {move || problem.get().map(|m| view! { <p class="notice error" role="alert" id="vf-error">{m}</p> })}
                <div class="actions">
                    <button type="submit" class="primary" id="vf-submit" disabled=busy>
                        {move || if busy.get() { tr("vf.starting")() } else { tr("vf.submit")() }}
                    </button>
                </div>
            </form>
        </section>
        {move || jobs.get().flatten().map(|r| view! {
            <section class="panel" aria-labelledby="vf-jobs-title">
                <h2 id="vf-jobs-title">{tr("vf.jobs")}</h2>
                {match r {
                    Err(e) => error_view(e).into_any(),
                    Ok(list) if list.is_empty() => view! { <p class="hint">{tr("vf.no_jobs")}</p> }.into_any(),
                    Ok(list) => jobs_view(list, lang).into_any(),
                }}
            </section>
        })}
    }
}

fn jobs_view(list: Vec<Verification>, lang: RwSignal<Lang>) -> impl IntoView {
    view! {
        <div class="table-wrap">
        <table class="list" id="vf-jobs">
            <thead><tr>
                <th>{tr("vf.job")}</th><th>{tr("c.device_key")}</th><th>{tr("c.identity")}</th>
                <th>{tr("c.status")}</th><th>{tr("c.outcome")}</th><th>{tr("vf.started")}</th>
            </tr></thead>
            <tbody>
                {list.into_iter().map(|v| {
                    let name = v.status_name.clone();
                    view! {
                        <tr data-job=v.id.to_string()>
                            <td><A href=format!("/center/verifications/{}", v.id)>{format!("#{}", v.id)}</A></td>
                            <td class="mono">{v.device_key.clone()}</td>
                            <td>{v.component_identity.clone()}</td>
                            <td>{move || status_text(lang.get(), &name)}</td>
                            <td class=outcome_class(v.outcome)>{move || job_outcome(lang.get(), v.outcome)}</td>
                            <td class="when">{short_time(&v.created_at)}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        </div>
    }
}

/// `/center/verifications/:id`.
#[component]
pub fn VerificationPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").and_then(|s| s.parse::<i64>().ok());
    move || match id() {
        Some(id) => view! { <VerificationDetails id=id /> }.into_any(),
        None => view! { <section class="panel"><h2>{tr("c.not_found")}</h2></section> }.into_any(),
    }
}

#[component]
fn VerificationDetails(id: i64) -> impl IntoView {
    let session = session();
    let lang = model().lang;
    let job = RwSignal::new(None::<Result<Verification, String>>);
    let live = RwSignal::new(Live::Connecting);
    let load = move || {
        leptos::task::spawn_local(async move {
            let got = guarded(session, api::verification(id)).await;
            job.set(Some(got.map_err(|e| e.message)));
        })
    };
    // Each event is the job as it is now; the stream ends with its outcome.
    follow_while_shown(
        format!("/verifications/{id}/events"),
        live,
        move |data| {
            if let Ok(v) = serde_json::from_str::<Verification>(&data) {
                job.set(Some(Ok(v)));
            }
        },
        load,
        move || {
            job.with_untracked(|j| matches!(j, Some(Ok(v)) if v.outcome != Outcome::Pending))
                || job.with_untracked(|j| matches!(j, Some(Err(_))))
        },
    );
    let package = LocalResource::new(move || {
        let package = job.with(|j| {
            j.as_ref()
                .and_then(|j| j.as_ref().ok())
                .map(|v| v.package_id)
        });
        async move {
            match package {
                Some(p) => api::package(p).await.ok(),
                None => None,
            }
        }
    });
    view! {
        <section class="panel" aria-labelledby="job-title">
            <p class="crumbs"><A href="/center/verify">{tr("vf.nav")}</A>" › "{tr("vf.job")}" #"{id}</p>
            <div class="package-head">
                <h2 id="job-title">{tr("vf.job")}" #"{id}</h2>
                {live_badge(live)}
            </div>
            {move || match job.get() {
                None => loading().into_any(),
                Some(Err(m)) => view! { <p class="notice error" role="alert">{m}</p> }.into_any(),
                Some(Ok(v)) => {
                    let name = v.status_name.clone();
                    let progress = progress(v.status, v.percent);
                    let package_text = move || package.get().flatten().map(|p| package_label(&p)).unwrap_or_else(|| format!("#{}", v.package_id));
                    view! {
                        <dl class="facts" id="job-facts">
                            <dt>{tr("vf.package")}</dt>
                            <dd><A href=format!("/center/verify?package={}", v.package_id)>{package_text}</A></dd>
                            <dt>{tr("c.device")}</dt>
                            <dd><A href=format!("/center/products/{}/devices/{}", api::segment(&v.product_key), api::segment(&v.device_key))>{v.device_key.clone()}</A>
                                " ("{v.product_key.clone()}")"</dd>
                            <dt>{tr("c.identity")}</dt><dd>{v.component_identity.clone()}</dd>
                            <dt>{tr("c.status")}</dt>
                            <dd id="job-status" data-status=v.status_name.clone()>{move || status_text(lang.get(), &name)}</dd>
                            <dt>{tr("mo.progress")}</dt>
                            // A dash until the device reports a percent, like "Finished".
                            <dd id="job-progress">{match progress {
                                Some(p) => view! {
                                    <progress max="100" value=p.to_string()></progress>
                                    <span class="figures">{format!("{p} %")}</span>
                                }.into_any(),
                                None => "—".into_any(),
                            }}</dd>
                            <dt>{tr("c.outcome")}</dt>
                            <dd id="job-outcome" data-outcome=format!("{:?}", v.outcome).to_lowercase() class=outcome_class(v.outcome)>{move || job_outcome(lang.get(), v.outcome)}</dd>
                            <dt>{tr("vf.started")}</dt><dd class="when">{short_time(&v.created_at)}</dd>
                            <dt>{tr("vf.finished")}</dt><dd class="when">{v.finished_at.as_deref().map(short_time).unwrap_or_else(|| "—".into())}</dd>
                        </dl>
                        {(v.outcome == Outcome::Pending && v.status == 0).then(|| view! { <p class="hint" id="job-waiting">{tr("vf.waiting")}</p> })}
                        <h3>{tr("vf.log")}</h3>
                        // Newest first in the page, shown oldest first (`log-tail`): the browser
                        // keeps such a list scrolled to its newest line as lines arrive.
                        <ul class="log log-tail" id="job-log">
                            {v.log.into_iter().rev().map(|l| view! {
                                <li><span class="time">{short_time(&l.at)}</span><span class="text">{l.message}</span></li>
                            }).collect_view()}
                        </ul>
                        {(v.outcome != Outcome::Pending).then(|| view! {
                            <div class="actions">
                                <A href=format!("/center/verify?package={}", v.package_id) attr:class="button primary" attr:id="verify-again">{tr("vf.again")}</A>
                            </div>
                        })}
                    }.into_any()
                }
            }}
        </section>
    }
}
