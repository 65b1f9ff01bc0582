//! "Plans from the center" (AT): where the center is, who this device is, the plans it
//! offers with their limits and upgrade text, and Accept or Refuse for a manual plan.

use super::{model, send, tr};
use crate::center::{remember_settings, CenterSettings};
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
    let typed = RwSignal::new(crate::readings::Typed::default());
    let override_reason = RwSignal::new(String::new());
    // Every held plan's limits the typed readings miss; Err: a field that does not parse.
    let unmet = move || -> Result<Vec<sota_engine::Refusal>, String> {
        let typed = typed.get();
        let mut all = Vec::new();
        for o in m.offers.get() {
            all.extend(crate::readings::unmet(&o, &typed)?);
        }
        Ok(all)
    };
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
        remember_settings(m.usb_id.get_untracked(), &settings);
        m.offers.set(Vec::new());
        send(Control::FromCenter(settings));
    };
    let accept = move |_| {
        let lang = m.lang.get_untracked();
        let note = match unmet() {
            Err(e) => return problem.set(Some(e)),
            Ok(missed) if missed.is_empty() => String::new(),
            Ok(missed) => {
                let why = override_reason.get_untracked();
                if why.trim().is_empty() {
                    return problem.set(Some(t(lang, "need_override").into()));
                }
                crate::readings::override_note(&missed, &why)
            }
        };
        problem.set(None);
        send(Control::Approve(note));
    };
    let reading = move |get: fn(&crate::readings::Typed) -> String,
                        set: fn(&mut crate::readings::Typed, String)| {
        (
            move || typed.with(get),
            move |ev| typed.update(|r| set(r, event_target_value(&ev))),
        )
    };
    let (battery, on_battery) = reading(|r| r.battery.clone(), |r, v| r.battery = v);
    let (signal, on_signal) = reading(|r| r.signal.clone(), |r, v| r.signal = v);
    let (free_kib, on_free_kib) = reading(|r| r.free_kib.clone(), |r, v| r.free_kib = v);
    let verdicts = move || {
        let typed = typed.get();
        if typed.is_empty() {
            return None;
        }
        let mut lines = Vec::new();
        for o in m.offers.get() {
            match crate::readings::verdicts(&o, &typed, m.lang.get()) {
                Ok(v) => lines.extend(
                    v.into_iter()
                        .map(|(ok, text)| (ok, format!("{}: {text}", o.comp_no))),
                ),
                Err(e) => return Some(vec![(false, e)]),
            }
        }
        Some(lines)
    };
    let overriding = move || unmet().is_ok_and(|u| !u.is_empty());
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
                // Next to the buttons that caused it: connecting, or deciding on a held plan.
                {move || problem.get().filter(|_| !m.offers_held.get()).map(|p| view! { <p id="center-problem" class="status error" role="alert">{p}</p> })}
                <Show when=move || !m.offers.get().is_empty()>
                    <h3>{tr("offered")}</h3>
                    <ul id="offers" class="offers">
                        {move || { let lang = m.lang.get(); m.offers.get().into_iter().map(|o| offer_view(o, lang)).collect_view() }}
                    </ul>
                </Show>
                <Show when=move || m.offers_held.get()>
                    <p class="notice" role="status">{tr("decide")}</p>
                    <h3>{tr("readings")}</h3>
                    <p class="hint">{tr("readings_hint")}</p>
                    <div class="fields">
                        <label>{tr("battery_now")}
                            <input id="reading-battery" inputmode="numeric" autocomplete="off" prop:value=battery on:input=on_battery />
                        </label>
                        <label>{tr("signal_now")}
                            <input id="reading-signal" inputmode="numeric" autocomplete="off" prop:value=signal on:input=on_signal />
                        </label>
                        <label>{tr("free_flash_now")}
                            <input id="reading-flash" inputmode="numeric" autocomplete="off" prop:value=free_kib on:input=on_free_kib />
                        </label>
                    </div>
                    {move || verdicts().map(|lines| view! {
                        <ul id="verdicts" class="verdicts">
                            {lines.into_iter().map(|(ok, text)| view! {
                                <li class=if ok { "pass" } else { "fail" }>{if ok { "✓ " } else { "✗ " }}{text}</li>
                            }).collect_view()}
                        </ul>
                    })}
                    <Show when=overriding>
                        <label class="inline">{tr("override_reason")}
                            <input id="override-reason" prop:value=move || override_reason.get()
                                on:input=move |ev| override_reason.set(event_target_value(&ev)) />
                        </label>
                    </Show>
                    <div class="actions">
                        <button type="button" id="plan-accept" class="primary" on:click=accept>
                            {move || if overriding() { tr("accept_anyway")() } else { tr("accept")() }}
                        </button>
                        <label class="inline">{tr("refuse_reason")}
                            <input id="refuse-reason" prop:value=move || reason.get() on:input=move |ev| reason.set(event_target_value(&ev)) />
                        </label>
                        <button type="button" id="plan-refuse" class="danger" on:click=refuse>{tr("refuse")}</button>
                    </div>
                    {move || problem.get().map(|p| view! { <p id="center-problem" class="status error" role="alert">{p}</p> })}
                </Show>
            </section>
        </Show>
    }
}
