//! "2 · Firmware" and "3 · Upgrade": the file, what it is, the start and cancel buttons, the
//! live progress and the result.

use super::{model, send, tr};
use crate::file_check::{FileCheck, Picked};
use crate::i18n::t;
use crate::model::{Ending, Link, Protocol};
use crate::run::{Control, Firmware};
use leptos::prelude::*;
use sota_engine::ExpectedDigests;
use sota_flow::Step;
use web_sys::Blob;

/// The demo image's name; picking it fills in the version the simulated MCU will report.
const DEMO_NAME: &str = "demo-firmware-2_0_0.bin";
const DEMO_VERSION: &str = "2_0_0";

fn demo_blob() -> Option<(String, Blob)> {
    let bytes = sota_sim::test_image(48 * 1024, 2026);
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(&bytes[..]));
    let blob = Blob::new_with_u8_array_sequence(&parts).ok()?;
    Some((DEMO_NAME.to_string(), blob))
}

fn parse_address(text: &str) -> Option<u32> {
    let t = text.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}

fn step_key(step: Step) -> &'static str {
    match step {
        Step::Idle => "s.Idle",
        Step::Connecting => "s.Connecting",
        Step::WaitingForMcu => "s.WaitingForMcu",
        Step::Verifying => "s.Verifying",
        Step::Erasing => "s.Erasing",
        Step::Writing => "s.Writing",
        Step::ReadingBack => "s.ReadingBack",
        Step::Updating => "s.Updating",
        Step::Done => "s.Done",
        Step::Failed => "s.Failed",
    }
}

fn human_rate(bytes_per_s: f64) -> String {
    if bytes_per_s >= 1e6 {
        format!("{:.1} MB/s", bytes_per_s / 1e6)
    } else {
        format!("{:.1} kB/s", bytes_per_s / 1e3)
    }
}

fn human_time(secs: u64) -> String {
    if secs >= 60 {
        format!("{} min {} s", secs / 60, secs % 60)
    } else {
        format!("{secs} s")
    }
}

/// The firmware and upgrade panels.
#[component]
pub fn UpgradePanels() -> impl IntoView {
    let m = model();
    let picked: Picked = RwSignal::new_local(None);
    let expected: [RwSignal<String>; 3] = std::array::from_fn(|_| RwSignal::new(String::new()));
    let identity = RwSignal::new("STM32".to_string());
    let target = RwSignal::new(String::new());
    let address = RwSignal::new("0x08000000".to_string());
    let problem = RwSignal::new(None::<String>);
    let demo = Signal::derive_local(demo_blob);
    Effect::new(move |_| {
        if picked.with(|p| p.as_ref().is_some_and(|(n, _)| n == DEMO_NAME))
            && target.get_untracked().is_empty()
        {
            target.set(DEMO_VERSION.into());
        }
    });
    let is_at = move || m.protocol.get() == Protocol::At;
    let connected = move || matches!(m.link.get(), Link::Open { .. });

    let start = move |_| {
        let lang = m.lang.get_untracked();
        let fail = |key: &str| problem.set(Some(t(lang, key).to_string()));
        if !connected() {
            return fail("need_connect");
        }
        let Some((name, file)) = picked.get_untracked() else {
            return fail("need_file");
        };
        let version = target.get_untracked().trim().to_string();
        if version.is_empty() {
            return fail("need_version");
        }
        let id = if is_at() {
            m.reported
                .get_untracked()
                .map(|(c, _)| c)
                .unwrap_or_else(|| identity.get_untracked())
        } else {
            identity.get_untracked().trim().to_string()
        };
        if id.is_empty() {
            return fail("need_identity");
        }
        let Some(addr) = parse_address(&address.get_untracked()) else {
            return fail("bad_address");
        };
        let [md5, crc, sha] = expected.map(|s| s.get_untracked());
        let expected = match ExpectedDigests::parse(&md5, &crc, &sha) {
            Ok(e) => e,
            Err(e) => return problem.set(Some(e.to_string())),
        };
        problem.set(None);
        send(Control::Start(Firmware {
            file,
            name,
            identity: id,
            target_version: version,
            expected,
            address: addr,
        }));
    };

    let flow = m.flow;
    view! {
        <FileCheck picked=picked expected=expected demo=demo title=Signal::derive(move || if is_at() { tr("firmware_or")() } else { tr("firmware")() }) />
        <section class="panel" aria-labelledby="fw-about">
            <h2 id="fw-about" class="visually-hidden">{tr("firmware")}</h2>
            <div class="fields">
                <label>{tr("identity")}
                    <input id="identity" spellcheck="false"
                        disabled=move || is_at() || m.running.get()
                        prop:value=move || if is_at() { m.reported.get().map(|(c, _)| c).unwrap_or_default() } else { identity.get() }
                        on:input=move |ev| identity.set(event_target_value(&ev)) />
                </label>
                <label>{tr("target_version")}
                    <input id="target-version" spellcheck="false" placeholder="2_0_0" disabled=move || m.running.get()
                        prop:value=move || target.get()
                        on:input=move |ev| target.set(event_target_value(&ev)) />
                </label>
                <Show when=move || m.protocol.get() == Protocol::An3155>
                    <label>{tr("address")}
                        <input id="address" class="mono" spellcheck="false" disabled=move || m.running.get()
                            prop:value=move || address.get()
                            on:input=move |ev| address.set(event_target_value(&ev)) />
                    </label>
                </Show>
            </div>
        </section>
        <section class="panel" aria-labelledby="upgrade-title">
            <h2 id="upgrade-title">{tr("upgrade")}</h2>
            <Show when=move || m.mcu_waiting.get() && !m.running.get()>
                <p class="notice" role="status">{tr("mcu_waiting")}</p>
            </Show>
            <div class="actions">
                <button type="button" id="start" class="primary" disabled=move || m.running.get() on:click=start>
                    {tr("start")}
                </button>
                <button type="button" id="cancel" class="danger" disabled=move || !m.running.get()
                    on:click=move |_| send(Control::Cancel)>{tr("cancel")}</button>
            </div>
            {move || problem.get().map(|p| view! { <p id="problem" class="status error" role="alert">{p}</p> })}
            <Show when=move || m.running.get() && matches!(m.link.get(), Link::Lost(_))>
                <p id="paused" class="notice" role="alert">{tr("paused")}</p>
            </Show>
            <Show when=move || m.hidden_warning.get()>
                <p id="upgrade-panel-hidden" class="notice" role="alert">{tr("hidden")}</p>
            </Show>
            <div id="progress" class="status" role="status" aria-live="polite">
                <progress max=move || flow.get().total.max(1)
                    value=move || { let f = flow.get(); if f.step == Step::Done { f.total.max(1) } else { f.done } }></progress>
                <span id="step" data-step=move || format!("{:?}", flow.get().step)>
                    {move || tr(step_key(flow.get().step))()}
                </span>
                <span id="figures" class="figures">
                    {move || {
                        let f = flow.get();
                        let lang = m.lang.get();
                        let mut parts = Vec::new();
                        if let Some(p) = f.percent() { parts.push(format!("{p} %")); }
                        if f.total > 0 { parts.push(format!("{} / {} B", f.done, f.total)); }
                        if let Some(r) = f.rate { parts.push(human_rate(r)); }
                        if let Some(s) = f.seconds_left() { parts.push(format!("{} {}", human_time(s), t(lang, "left"))); }
                        parts.join(" · ")
                    }}
                </span>
            </div>
            {move || m.ending.get().map(|e| {
                let (class, head, text, next) = match e {
                    Ending::Succeeded(x) => ("result ok", "ok", x, "next_ok"),
                    Ending::Failed(x) => ("result error", "failed", x, "next_failed"),
                    Ending::Cancelled(x) => ("result cancelled", "cancelled", x, "next_failed"),
                };
                view! {
                    <div id="result" class=class role="alert">
                        <h3>{tr(head)}</h3>
                        <p id="result-text">{text}</p>
                        <p>{tr(next)}</p>
                    </div>
                }
            })}
        </section>
    }
}
