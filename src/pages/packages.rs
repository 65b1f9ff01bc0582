//! Version packages: the list (paged, by product and by name, on the server) with each file's
//! size and digests, delete (the center refuses while a plan uses the package, and its
//! message is shown), and "Add a version package".

use super::engineer::{
    error_view, guarded, loading, pager, session, short_time, ProductSearch, PAGE,
};
use super::{model, tr};
use crate::api::{self, ApiError};
use crate::forms::{file_progress, size_text, PackageDraft};
use crate::i18n::t;
use leptos::prelude::*;
use leptos_router::components::A;
use sota_api::package::{
    ComponentType, Package, PackageFile, PackageFilter, PackageType, EXTENSIONS, MAX_FILES,
};
use wasm_bindgen::JsCast;

fn kind_text(p: &Package, lang: crate::i18n::Lang) -> String {
    let component = match p.meta.component_type {
        ComponentType::Sota => t(lang, "c.sota"),
        ComponentType::Fota => t(lang, "c.fota"),
    };
    match (&p.meta.package_type, &p.meta.source_version) {
        (PackageType::Delta, Some(source)) => format!(
            "{component} · {} {source} → {}",
            t(lang, "c.delta"),
            p.meta.target_version
        ),
        _ => format!(
            "{component} · {} → {}",
            t(lang, "c.full"),
            p.meta.target_version
        ),
    }
}

/// The files of a package with their sizes and digests.
pub fn files_view(files: Vec<PackageFile>) -> impl IntoView {
    view! {
        <table class="digests files">
            <thead><tr><th>{tr("c.file")}</th><th>{tr("size")}</th><th>"MD5"</th><th>"CRC32"</th><th>"SHA-256"</th></tr></thead>
            <tbody>
                {files.into_iter().map(|f| {
                    let name = f.file_name.clone();
                    view! {
                    <tr class="file" data-name=name>
                        <td class="mono">{f.file_name}</td>
                        <td class="size" data-bytes=f.size.to_string()>{size_text(f.size)}</td>
                        <td class="mono md5">{f.md5}</td>
                        <td class="mono crc32">{f.crc32}</td>
                        <td class="mono sha256">{f.sha256}</td>
                    </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// One package of the list, with its delete button.
fn package_view(p: Package, refresh: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let session = session();
    let lang = model().lang;
    let id = p.id;
    let confirming = RwSignal::new(false);
    let refused = RwSignal::new(None::<String>);
    let delete = move |_| {
        leptos::task::spawn_local(async move {
            match guarded(session, api::delete_package(id)).await {
                Ok(()) => refresh(),
                Err(e) => {
                    confirming.set(false);
                    refused.set(Some(e.message));
                }
            }
        });
    };
    let kind = {
        let p = p.clone();
        move || kind_text(&p, lang.get())
    };
    view! {
        <li class="package" id=format!("package-{id}")>
            <div class="package-head">
                <h3>{p.meta.name.clone()}{p.demo.then(|| view! { " " <span class="badge">{tr("c.demo")}</span> })}</h3>
                <div class="actions">
                    <Show when=move || confirming.get() fallback=move || view! {
                        <button type="button" class="danger delete" on:click=move |_| { refused.set(None); confirming.set(true) }>{tr("c.delete")}</button>
                    }>
                        <span>{tr("c.delete_confirm")}</span>
                        <button type="button" class="danger confirm-delete" on:click=delete>{tr("c.delete_yes")}</button>
                        <button type="button" class="secondary" on:click=move |_| confirming.set(false)>{tr("c.keep")}</button>
                    </Show>
                </div>
            </div>
            <p class="figures plain">
                "#"{id}" · "{tr("product_key")}" "{p.product_key.clone().unwrap_or_else(|| "—".into())}" · "{kind}" · "{short_time(&p.created_at)}
            </p>
            {(!p.meta.remarks.is_empty()).then(|| view! { <p class="remarks">{p.meta.remarks.clone()}</p> })}
            {move || refused.get().map(|m| view! { <p class="notice error refusal" role="alert">{m}</p> })}
            <div class="table-wrap">{files_view(p.files)}</div>
        </li>
    }
}

/// The version packages, paged, by product and searched by name on the server.
#[component]
pub fn PackagesPage() -> impl IntoView {
    let session = session();
    let products = LocalResource::new(move || guarded(session, api::products()));
    let find = ProductSearch::new();
    let (query, offset) = (find.query, find.offset);
    let packages = LocalResource::new(move || {
        let filter = PackageFilter {
            product: find.product(),
            offset: Some(offset.get()),
            // One more than shown tells whether there is a next page.
            limit: Some(PAGE + 1),
            q: Some(query.get()),
        };
        async move { guarded(session, api::packages_page(&filter)).await }
    });
    let refresh = move || packages.refetch();
    view! {
        <section class="panel" aria-labelledby="packages-title">
            <div class="package-head">
                <h2 id="packages-title">{tr("c.packages")}</h2>
                <A href="/center/packages/new" attr:class="button primary" attr:id="add-package">{tr("c.add_package")}</A>
            </div>
            {find.form("packages", products)}
            {move || match packages.get() {
                None => loading().into_any(),
                Some(Err(e)) => error_view(e).into_any(),
                Some(Ok(mut list)) => {
                    let more = list.len() > PAGE as usize;
                    list.truncate(PAGE as usize);
                    let shown = list.len() as u32;
                    let rows = if list.is_empty() {
                        view! { <p class="hint" id="no-packages">{tr("c.no_packages")}</p> }.into_any()
                    } else {
                        view! {
                            <ul class="packages" id="packages">
                                {list.into_iter().map(|p| package_view(p, refresh)).collect_view()}
                            </ul>
                        }.into_any()
                    };
                    view! { {rows} {pager("packages", offset, shown, more)} }.into_any()
                }
            }}
        </section>
    }
}

/// "Add a version package": every field, files checked before upload, a bar per file.
#[component]
pub fn NewPackagePage() -> impl IntoView {
    let session = session();
    let lang = model().lang;
    let products = LocalResource::new(move || guarded(session, api::products()));
    let draft = RwSignal::new(PackageDraft::default());
    let files = RwSignal::new_local(Vec::<web_sys::File>::new());
    let problem = RwSignal::new(None::<String>);
    let sizes = RwSignal::new(Vec::<u64>::new());
    let sent = RwSignal::new(0.0f64);
    let busy = RwSignal::new(false);
    let stored = RwSignal::new(None::<Package>);

    // The product defaults to the first one listed.
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

    let pick = move |ev: leptos::ev::Event| {
        let Some(input) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        else {
            return;
        };
        if let Some(list) = input.files() {
            files.update(|fs| {
                for i in 0..list.length() {
                    if let Some(f) = list.get(i) {
                        fs.push(f);
                    }
                }
            });
        }
        // The same file can be picked again after it was removed.
        input.set_value("");
        problem.set(None);
        stored.set(None);
    };
    let remove = move |i: usize| {
        files.update(|fs| {
            if i < fs.len() {
                fs.remove(i);
            }
        });
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let d = draft.get_untracked();
        let picked = files.get_untracked();
        let named: Vec<(String, u64)> =
            picked.iter().map(|f| (f.name(), f.size() as u64)).collect();
        if let Err(refusal) = d.check(named.iter().map(|(n, s)| (n.as_str(), *s))) {
            problem.set(Some(refusal.message));
            return;
        }
        problem.set(None);
        stored.set(None);
        sizes.set(named.iter().map(|(_, s)| *s).collect());
        sent.set(0.0);
        busy.set(true);
        leptos::task::spawn_local(async move {
            let result = guarded(
                session,
                api::upload_package(&d.fields(), &picked, move |loaded| sent.set(loaded)),
            )
            .await;
            busy.set(false);
            match result {
                Ok(p) => {
                    // A fresh form for the next package of the same product.
                    sent.set(0.0);
                    files.set(Vec::new());
                    draft.update(|d| {
                        *d = PackageDraft {
                            product_key: std::mem::take(&mut d.product_key),
                            ..PackageDraft::default()
                        }
                    });
                    stored.set(Some(p));
                }
                Err(ApiError { message, .. }) => problem.set(Some(message)),
            }
        });
    };

    let field = move |f: fn(&mut PackageDraft, String)| {
        move |ev: leptos::ev::Event| {
            let v = event_target_value(&ev);
            draft.update(|d| f(d, v));
        }
    };
    let accept = EXTENSIONS.join(",");
    let rules = move || {
        t(lang.get(), "c.files_rule")
            .replace("{n}", &MAX_FILES.to_string())
            .replace("{ext}", &EXTENSIONS.join(" "))
    };
    let delta = move || draft.with(|d| d.package_type == PackageType::Delta);

    view! {
        <section class="panel" aria-labelledby="new-package-title">
            <p class="crumbs"><A href="/center/packages">{tr("c.packages")}</A>" › "{tr("c.add_package")}</p>
            <h2 id="new-package-title">{tr("c.add_package")}</h2>
            {move || stored.get().map(|p| view! {
                <div class="result ok" id="pkg-result" role="status">
                    <h3>{tr("c.stored")}" #"{p.id}" · "{p.meta.name.clone()}</h3>
                    <div class="table-wrap">{files_view(p.files)}</div>
                </div>
            })}
            <form class="package-form" on:submit=submit novalidate>
                <div class="fields">
                    <label>{tr("c.package_name")}
                        <input id="pkg-name" maxlength="128" prop:value=move || draft.with(|d| d.name.clone())
                            on:input=field(|d, v| d.name = v) />
                    </label>
                    <label>{tr("c.product")}
                        <select id="pkg-product" on:change=field(|d, v| d.product_key = v)>
                            {move || products.get().and_then(Result::ok).unwrap_or_default().into_iter().map(|p| {
                                let key = p.product_key.clone();
                                let selected = draft.with_untracked(|d| d.product_key == key);
                                view! { <option value=key.clone() selected=selected>{format!("{key} — {}", p.name)}</option> }
                            }).collect_view()}
                        </select>
                    </label>
                    <label>{tr("c.component_type")}
                        <select id="pkg-component" prop:value=move || draft.with(|d| d.component_type.as_str()) on:change=field(|d, v| d.component_type = if v == "FOTA" { ComponentType::Fota } else { ComponentType::Sota })>
                            <option value="SOTA">{tr("c.sota_long")}</option>
                            <option value="FOTA">{tr("c.fota_long")}</option>
                        </select>
                    </label>
                </div>
                <fieldset>
                    <legend>{tr("c.package_type")}</legend>
                    <label class="choice"><input type="radio" name="pkg-type" id="pkg-full" value="full"
                        prop:checked=move || !delta() on:change=move |_| draft.update(|d| d.package_type = PackageType::Full) />{tr("c.full_long")}</label>
                    <label class="choice"><input type="radio" name="pkg-type" id="pkg-delta" value="delta"
                        prop:checked=delta on:change=move |_| draft.update(|d| d.package_type = PackageType::Delta) />{tr("c.delta_long")}</label>
                </fieldset>
                <div class="fields">
                    <Show when=delta>
                        <label>{tr("c.source_version")}
                            <input id="pkg-source" spellcheck="false" prop:value=move || draft.with(|d| d.source_version.clone())
                                on:input=field(|d, v| d.source_version = v) />
                        </label>
                    </Show>
                    <label>{tr("c.target_version")}
                        <input id="pkg-target" spellcheck="false" prop:value=move || draft.with(|d| d.target_version.clone())
                            on:input=field(|d, v| d.target_version = v) />
                    </label>
                </div>
                <fieldset>
                    <legend>{tr("c.files")}</legend>
                    <p class="hint">{rules}</p>
                    <label class="drop" for="pkg-files">{tr("c.choose_files")}</label>
                    <input id="pkg-files" class="visually-hidden" type="file" multiple accept=accept on:change=pick />
                    <ul class="picked" id="pkg-picked">
                        {move || {
                            let sizes_now = sizes.get();
                            let loaded = sent.get();
                            let shares = file_progress(&sizes_now, loaded);
                            let uploading = busy.get();
                            files.get().into_iter().enumerate().map(|(i, f)| {
                                let share = if uploading { shares.get(i).copied().unwrap_or(0.0) } else { 0.0 };
                                view! {
                                    <li class="picked-file">
                                        <span class="mono">{f.name()}</span>
                                        <span class="figures">{size_text(f.size() as u64)}</span>
                                        {uploading.then(|| view! {
                                            <progress class="file-progress" max="1" value=share.to_string()></progress>
                                            <span class="figures">{format!("{:.0} %", share * 100.0)}</span>
                                        })}
                                        <button type="button" class="remove" disabled=uploading
                                            on:click=move |_| remove(i)>{tr("c.remove")}</button>
                                    </li>
                                }
                            }).collect_view()
                        }}
                    </ul>
                </fieldset>
                <label class="wide">{tr("c.remarks")}
                    <textarea id="pkg-remarks" rows="3" maxlength="1000" prop:value=move || draft.with(|d| d.remarks.clone())
                        on:input=field(|d, v| d.remarks = v)></textarea>
                </label>
                {move || problem.get().map(|m| view! { <p class="notice error" role="alert" id="pkg-error">{m}</p> })}
                <div class="actions">
                    <button type="submit" class="primary" id="pkg-submit" disabled=busy>
                        {move || if busy.get() { tr("c.uploading")() } else { tr("c.upload")() }}
                    </button>
                    <A href="/center/packages">{tr("c.back_to_packages")}</A>
                </div>
            </form>
        </section>
    }
}
