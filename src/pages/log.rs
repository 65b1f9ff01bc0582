//! The log panel: every step with its time, the MCU's messages, and raw serial data on demand.

use super::{model, tr};
use crate::adapters::page;
use leptos::prelude::*;
use std::fmt::Write;

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for b in bytes {
        let _ = write!(s, "{b:02x} ");
    }
    s
}

/// The log panel.
#[component]
pub fn LogPanel() -> impl IntoView {
    let m = model();
    let show_hex = RwSignal::new(false);
    let list = NodeRef::<leptos::html::Ol>::new();
    // Newest line in view, as a terminal would.
    Effect::new(move |_| {
        m.log.track();
        if let Some(el) = list.get() {
            el.set_scroll_top(f64::from(el.scroll_height()));
        }
    });
    let save = move |_| {
        if let Err(e) = page::save_text("sota-console-log.txt", &m.log_text()) {
            m.log("error", format!("could not save the log: {e}"));
        }
    };
    view! {
        <section class="panel" aria-labelledby="log-title">
            <h2 id="log-title">{tr("log")}</h2>
            <div class="actions">
                <label class="choice">
                    <input type="checkbox" id="show-hex" prop:checked=move || show_hex.get()
                        on:change=move |ev| show_hex.set(event_target_checked(&ev)) />
                    <span>{tr("hex")}</span>
                </label>
                <button type="button" id="download-log" on:click=save>{tr("download_log")}</button>
            </div>
            <ol id="log" class="log" aria-live="off" node_ref=list>
                <For each=move || { let l = m.log.get(); l.into_iter().enumerate().collect::<Vec<_>>() } key=|(i, _)| *i let:item>
                    <li class=format!("log-{}", item.1.kind)>
                        <span class="time">{item.1.time.clone()}</span>
                        <span class="text">{item.1.text.clone()}</span>
                    </li>
                </For>
            </ol>
            <Show when=move || show_hex.get()>
                <pre id="hex" class="hex mono">
                    {move || m.raw.get().iter().map(|c| format!(
                        "{:>10.3} s {} {:>5} B  {}{}\n",
                        c.at_ms as f64 / 1e3,
                        if c.sent { "→" } else { "←" },
                        c.len,
                        hex(&c.bytes),
                        if c.len > c.bytes.len() { "…" } else { "" }
                    )).collect::<String>()}
                </pre>
            </Show>
        </section>
    }
}
