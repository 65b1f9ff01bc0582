//! "Plans from the center" (AT): where the center is, who this device is, the plans it
//! offers with their limits and upgrade text, and Accept or Refuse for a manual plan.

use super::{model, send, tr};
use crate::adapters::page;
use crate::center::{CenterSettings, SETTINGS_KEY};
use crate::i18n::{t, Lang};
use crate::model::{CenterLinkState, Link, Protocol};
use crate::run::Control;
use leptos::prelude::*;
use sota_protocol::{PackageType, PlanOffer, UpgradeMode};

/// The plan's text in the technician's language, else English, else Chinese, else any.
fn text_for(offer: &PlanOffer, lang: Lang) -> Option<String> {
    [lang.tag(), "en", "zh"]
        .iter()
        .find_map(|l| offer.texts.get(*l))
        .or_else(|| offer.texts.values().next())
        .cloned()
}

fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

/// One offered plan.
fn offer_view(offer: PlanOffer, lang: Lang) -> impl IntoView {
    let from = match offer.package_type {
        PackageType::Full => t(lang, "full_package").to_string(),
        PackageType::Delta => format!("{} {}", t(lang, "delta_from"), offer.src_ver),
    };
    let mode = match offer.mode {
        UpgradeMode::Silent => t(lang, "mode_silent"),
        UpgradeMode::Manual => t(lang, "mode_manual"),
    };
    let mut limits = vec![
        format!("{} ≥ {} %", t(lang, "battery"), offer.min_battery),
        format!("{} ≥ {} dBm", t(lang, "signal"), offer.min_signal),
    ];
    if offer.use_space > 0 {
        limits.push(format!(
            "{} ≥ {}",
            t(lang, "free_flash"),
            size(offer.use_space)
        ));
    }
    let limits = format!("{}: {}", t(lang, "needs"), limits.join(" · "));
    // Rendered as text: whatever the plan's author typed is never HTML here.
    let text = text_for(&offer, lang);
    view! {
        <li class="offer" data-plan=offer.plan_id>
            <p class="offer-head"><strong>{offer.comp_no.clone()}</strong>
                " → " <strong>{offer.tgt_ver.clone()}</strong>
                " (" {from} ", " {size(offer.size)} ", " {mode} ")"</p>
            <p class="figures">{limits}</p>
            {text.map(|x| view! { <p class="offer-text">{x}</p> })}
        </li>
    }
}

/// The center panel (AT only).
#[component]
pub fn CenterPanel() -> impl IntoView {
    let m = model();
    let s = m.center_settings;
    let reason = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<String>);
    let field = move |get: fn(&CenterSettings) -> String, set: fn(&mut CenterSettings, String)| {
        (
            move || s.with(get),
            move |ev| s.update(|c| set(c, event_target_value(&ev))),
        )
    };
    let (address, on_address) = field(|c| c.address.clone(), |c, v| c.address = v);
    let (product, on_product) = field(|c| c.product.clone(), |c, v| c.product = v);
    let (device, on_device) = field(|c| c.device.clone(), |c, v| c.device = v);
    let (device_secret, on_device_secret) =
        field(|c| c.device_secret.clone(), |c, v| c.device_secret = v);
    let (product_secret, on_product_secret) =
        field(|c| c.product_secret.clone(), |c, v| c.product_secret = v);
    let connected = move || matches!(m.link.get(), Link::Open { .. });
    let connect = move |_| {
        let lang = m.lang.get_untracked();
        if !connected() {
            return problem.set(Some(t(lang, "need_connect").into()));
        }
        let settings = s.get_untracked();
        if let Err(e) = settings.id() {
            return problem.set(Some(e));
        }
        if settings.device_secret.trim().is_empty() && settings.product_secret.trim().is_empty() {
            return problem.set(Some(t(lang, "need_secret").into()));
        }
        problem.set(None);
        page::remember(SETTINGS_KEY, &settings);
        m.offers.set(Vec::new());
        send(Control::FromCenter(settings));
    };
    let refuse = move |_| {
        let why = reason.get_untracked().trim().to_string();
        if why.is_empty() {
            return problem.set(Some(t(m.lang.get_untracked(), "need_reason").into()));
        }
        problem.set(None);
        send(Control::Refuse(why));
    };
    let state = move || match m.center.get() {
        CenterLinkState::Off => None,
        CenterLinkState::Connecting => Some(("status", tr("center_connecting")())),
        CenterLinkState::Connected => Some(("status ok", tr("center_connected")())),
        CenterLinkState::Lost(why) => {
            Some(("status error", format!("{} ({why})", tr("center_lost")())))
        }
        CenterLinkState::Refused(why) => Some(("status error", why)),
    };
    view! {
        <Show when=move || m.protocol.get() == Protocol::At>
            <section class="panel" aria-labelledby="center-title" id="center-panel">
                <h2 id="center-title">{tr("center")}</h2>
                <p class="hint">{tr("center_hint")}</p>
                <div class="fields">
                    <label>{tr("product_key")}
                        <input id="center-product" spellcheck="false" autocomplete="off" disabled=move || m.running.get()
                            prop:value=product on:input=on_product />
                    </label>
                    <label>{tr("device_key")}
                        <input id="center-device" spellcheck="false" autocomplete="off" disabled=move || m.running.get()
                            prop:value=device on:input=on_device />
                    </label>
                    <label>{tr("device_secret")}
                        <input id="center-device-secret" type="password" autocomplete="off" disabled=move || m.running.get()
                            prop:value=device_secret on:input=on_device_secret />
                    </label>
                    <label>{tr("product_secret")}
                        <input id="center-product-secret" type="password" autocomplete="off" disabled=move || m.running.get()
                            prop:value=product_secret on:input=on_product_secret />
                    </label>
                    <label>{tr("center_address")}
                        <input id="center-address" class="mono" spellcheck="false" placeholder=tr("center_address_here")
                            disabled=move || m.running.get() prop:value=address on:input=on_address />
                    </label>
                </div>
                <div class="actions">
                    <button type="button" id="center-connect" class="primary" disabled=move || m.running.get() on:click=connect>
                        {tr("center_connect")}
                    </button>
                </div>
                {move || state().map(|(class, text)| view! { <p id="center-state" class=class role="status">{text}</p> })}
                {move || problem.get().map(|p| view! { <p id="center-problem" class="status error" role="alert">{p}</p> })}
                <Show when=move || !m.offers.get().is_empty()>
                    <h3>{tr("offered")}</h3>
                    <ul id="offers" class="offers">
                        {move || { let lang = m.lang.get(); m.offers.get().into_iter().map(|o| offer_view(o, lang)).collect_view() }}
                    </ul>
                </Show>
                <Show when=move || m.offers_held.get()>
                    <p class="notice" role="status">{tr("decide")}</p>
                    <div class="actions">
                        <button type="button" id="plan-accept" class="primary" on:click=move |_| send(Control::Approve)>{tr("accept")}</button>
                        <label class="inline">{tr("refuse_reason")}
                            <input id="refuse-reason" prop:value=move || reason.get() on:input=move |ev| reason.set(event_target_value(&ev)) />
                        </label>
                        <button type="button" id="plan-refuse" class="danger" on:click=refuse>{tr("refuse")}</button>
                    </div>
                </Show>
            </section>
        </Show>
    }
}
