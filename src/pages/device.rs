//! "1 · Device": the protocol, the serial settings, and connecting a board or the simulator.

use super::Controls;
use super::{controls, model, send, tr};
use crate::adapters::page;
use crate::adapters::serial::{self, Flow, Parity, SerialSettings, Unavailable};
use crate::adapters::simulated::{self, SimMcu};
use crate::model::{Link, Model, Protocol};
use crate::resume;
use crate::run::{self, Control};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::{Deserialize, Serialize};

/// Baud rates offered in the list; any other can be typed.
const BAUDS: [u32; 8] = [
    9_600, 19_200, 38_400, 57_600, 115_200, 230_400, 460_800, 921_600,
];

/// What is remembered for a port.
#[derive(Serialize, Deserialize)]
struct Remembered {
    protocol: Protocol,
    settings: SerialSettings,
}

const LAST: &str = "sota.port.last";

fn port_key(id: (u16, u16)) -> String {
    format!("sota.port.{:04x}:{:04x}", id.0, id.1)
}

/// Restores the settings used last, if any.
pub fn restore() {
    let m = model();
    if let Some(r) = page::recall::<Remembered>(LAST) {
        m.protocol.set(r.protocol);
        m.settings.set(r.settings);
    }
}

/// True while a run waits for its board to come back.
fn awaiting_return(m: Model) -> bool {
    m.running.get_untracked() && matches!(m.link.get_untracked(), Link::Lost(_))
}

/// Opens `port` for the run that lost its link. Runs outside the reactive owner, so it
/// gets the model and controls handed in.
async fn hand_back(m: Model, c: Controls, port: web_sys::SerialPort) {
    let settings = m.settings.get_untracked();
    match serial::open(port, &settings).await {
        Ok(p) => c.with_value(|tx| {
            if let Some(tx) = tx {
                let _ = tx.unbounded_send(Control::Reconnect(p));
            }
        }),
        Err(e) => m.log("error", format!("could not reopen the port: {e}")),
    }
}

/// Watches for the board coming back by itself (the same USB device plugged in again).
pub fn watch_return() {
    let m = model();
    let c = controls();
    serial::on_connect(move |port| {
        let same = serial::usb_id(&port) == m.usb_id.get_untracked();
        if awaiting_return(m) && same {
            m.log("step", "the board is back");
            spawn_local(hand_back(m, c, port));
        }
    });
}

fn connect(simulated: bool) {
    let m = model();
    let c = controls();
    if awaiting_return(m) && !simulated {
        spawn_local(async move {
            match serial::request().await {
                Ok(p) => hand_back(m, c, p).await,
                Err(e) => m.log("error", format!("could not connect: {e}")),
            }
        });
        return;
    }
    send(Control::Disconnect);
    m.link.set(Link::Opening);
    m.reported.set(None);
    m.chip.set(None);
    m.ending.set(None);
    m.flow.set(sota_flow::FlowState::IDLE);
    let protocol = m.protocol.get_untracked();
    let settings = m.settings.get_untracked();
    spawn_local(async move {
        let port = if simulated {
            Ok(simulated::open(
                match protocol {
                    Protocol::At => SimMcu::At,
                    Protocol::Ymodem => SimMcu::Ymodem,
                    Protocol::An3155 => SimMcu::An3155,
                },
                settings.baud,
            ))
        } else {
            match serial::request().await {
                Ok(p) => {
                    let id = serial::usb_id(&p);
                    m.usb_id.set(id);
                    // This board's center settings, if it was connected before.
                    if let Some(remembered) = id.and_then(crate::center::recall_settings) {
                        m.center_settings.set(remembered);
                    }
                    let opened = serial::open(p, &settings).await;
                    if opened.is_ok() {
                        let r = Remembered {
                            protocol,
                            settings: settings.clone(),
                        };
                        page::remember(LAST, &r);
                        if let Some(id) = id {
                            page::remember(&port_key(id), &r);
                        }
                    }
                    opened
                }
                Err(e) => Err(e),
            }
        };
        match port {
            Ok(port) => {
                m.log("step", format!("connected: {}", port.label));
                m.link.set(Link::Open {
                    label: port.label.clone(),
                    simulated,
                });
                c.set_value(Some(run::start(m, port, protocol)));
            }
            Err(e) => {
                m.log("error", format!("could not connect: {e}"));
                m.link.set(Link::Lost(e));
            }
        }
    });
}

/// Continues the upgrade a page before this one kept: on the same board's port, found among
/// the ports this page was allowed before (the chooser only when it is not there).
fn continue_kept() {
    let m = model();
    let c = controls();
    let Some(saved) = resume::take() else {
        return;
    };
    m.resumable.set(None);
    send(Control::Disconnect);
    m.link.set(Link::Opening);
    m.ending.set(None);
    m.protocol.set(Protocol::At);
    m.settings.set(saved.serial.clone());
    m.usb_id.set(saved.usb);
    m.center_settings.set(saved.center.clone());
    spawn_local(async move {
        let known = serial::granted()
            .await
            .into_iter()
            .find(|p| saved.usb.is_some() && serial::usb_id(p) == saved.usb);
        let port = match known {
            Some(p) => Ok(p),
            None => serial::request().await,
        };
        let opened = match port {
            Ok(p) => serial::open(p, &saved.serial).await,
            Err(e) => Err(e),
        };
        match opened {
            Ok(port) => {
                m.log("step", format!("connected: {}", port.label));
                m.link.set(Link::Open {
                    label: port.label.clone(),
                    simulated: false,
                });
                c.set_value(Some(run::resume(m, port, saved)));
            }
            Err(e) => {
                m.log("error", format!("could not open the board's port: {e}"));
                m.link.set(Link::Lost(e));
                if let Some(summary) = saved.summary() {
                    m.resumable.set(Some(summary));
                }
                resume::put_back(saved);
            }
        }
    });
}

/// Drops the kept upgrade and its image; the MCU asks for a plan again when it restarts.
fn drop_kept() {
    let m = model();
    m.resumable.set(None);
    let Some(saved) = resume::take() else {
        return;
    };
    spawn_local(async move {
        if let Ok(storage) = crate::adapters::storage::Storage::open().await {
            if let (Ok(id), Some(summary)) = (saved.center.id(), saved.summary()) {
                let _ = storage
                    .discard(&crate::center::image_key(&id, &summary.component))
                    .await;
            }
            resume::forget(&storage);
        }
        m.log("step", "the interrupted upgrade was dropped");
    });
}

/// The offer to continue an upgrade a reload or a crash interrupted.
#[component]
fn KeptUpgrade() -> impl IntoView {
    let m = model();
    let text = move || {
        m.resumable.get().map(|s| {
            let what = if s.transferring {
                tr("kept.sent")()
            } else {
                tr("kept.downloaded")()
            };
            let percent = (s.done * 100).checked_div(s.total).unwrap_or(0);
            format!(
                "{} {} → {}: {percent} % {what} ({} / {} B).",
                tr("kept.was")(),
                s.component,
                s.target,
                s.done,
                s.total
            )
        })
    };
    view! {
        <Show when=move || m.resumable.get().is_some() && !m.running.get()>
            <div id="kept-upgrade" class="notice" role="alert">
                <p><strong>{tr("kept.title")}</strong></p>
                <p id="kept-text">{text}</p>
                <p>{tr("kept.hint")}</p>
                <div class="actions">
                    <button type="button" id="kept-continue" class="primary"
                        on:click=move |_| continue_kept()>{tr("kept.continue")}</button>
                    <button type="button" id="kept-drop" class="secondary"
                        on:click=move |_| drop_kept()>{tr("kept.drop")}</button>
                </div>
            </div>
        </Show>
    }
}

/// The device panel.
#[component]
pub fn DevicePanel() -> impl IntoView {
    let m = model();
    let available = serial::availability();
    let busy = move || m.running.get();
    // Protocol and settings belong to the open link: change them after disconnecting.
    let locked = move || busy() || matches!(m.link.get(), Link::Open { .. } | Link::Opening);
    let set = move |f: fn(&mut SerialSettings, &str)| {
        move |ev: leptos::ev::Event| {
            let v = event_target_value(&ev);
            m.settings.update(|s| f(s, &v));
        }
    };
    let protocol_choice = move |p: Protocol, key: &'static str| {
        view! {
            <label class="choice">
                <input type="radio" name="protocol" value=p.key()
                    prop:checked=move || m.protocol.get() == p
                    disabled=locked
                    on:change=move |_| {
                        m.protocol.set(p);
                        m.settings.set(p.default_settings());
                    } />
                <span>{tr(key)}</span>
            </label>
        }
    };
    let baud_is_preset = move || BAUDS.contains(&m.settings.get().baud);
    view! {
        <section class="panel" aria-labelledby="device-title">
            <h2 id="device-title">{tr("device")}</h2>
            {match available {
                Ok(()) => None,
                Err(Unavailable::NotSecure) => Some(view! { <p class="notice" role="note">{tr("not_secure")}</p> }),
                Err(Unavailable::NoApi) => Some(view! { <p class="notice" role="note">{tr("no_serial")}</p> }),
            }}
            <KeptUpgrade />
            <fieldset>
                <legend>{tr("protocol")}</legend>
                {protocol_choice(Protocol::At, "p.at")}
                {protocol_choice(Protocol::Ymodem, "p.ymodem")}
                {protocol_choice(Protocol::An3155, "p.an3155")}
            </fieldset>
            <fieldset class="serial">
                <legend>{tr("serial")}</legend>
                <label>{tr("baud")}
                    <select id="baud-preset" disabled=locked on:change=set(|s, v| if let Ok(b) = v.parse() { s.baud = b })>
                        {BAUDS.into_iter().map(|b| view! {
                            <option value=b.to_string() selected=move || m.settings.get().baud == b>{b.to_string()}</option>
                        }).collect_view()}
                        <option value="" selected=move || !baud_is_preset()>"…"</option>
                    </select>
                    <input id="baud" type="number" min="300" max="4000000" inputmode="numeric" disabled=locked
                        prop:value=move || m.settings.get().baud.to_string()
                        on:change=set(|s, v| if let Ok(b) = v.trim().parse::<u32>() { if (300..=4_000_000).contains(&b) { s.baud = b } }) />
                </label>
                <label>{tr("data_bits")}
                    <select id="data-bits" disabled=locked on:change=set(|s, v| s.data_bits = if v == "7" { 7 } else { 8 })>
                        <option value="8" selected=move || m.settings.get().data_bits == 8>"8"</option>
                        <option value="7" selected=move || m.settings.get().data_bits == 7>"7"</option>
                    </select>
                </label>
                <label>{tr("parity")}
                    <select id="parity" disabled=locked on:change=set(|s, v| s.parity = match v { "even" => Parity::Even, "odd" => Parity::Odd, _ => Parity::None })>
                        <option value="none" selected=move || m.settings.get().parity == Parity::None>{tr("none")}</option>
                        <option value="even" selected=move || m.settings.get().parity == Parity::Even>{tr("even")}</option>
                        <option value="odd" selected=move || m.settings.get().parity == Parity::Odd>{tr("odd")}</option>
                    </select>
                </label>
                <label>{tr("stop_bits")}
                    <select id="stop-bits" disabled=locked on:change=set(|s, v| s.stop_bits = if v == "2" { 2 } else { 1 })>
                        <option value="1" selected=move || m.settings.get().stop_bits == 1>"1"</option>
                        <option value="2" selected=move || m.settings.get().stop_bits == 2>"2"</option>
                    </select>
                </label>
                <label>{tr("flow")}
                    <select id="flow" disabled=locked on:change=set(|s, v| s.flow = if v == "hardware" { Flow::Hardware } else { Flow::None })>
                        <option value="none" selected=move || m.settings.get().flow == Flow::None>{tr("none")}</option>
                        <option value="hardware" selected=move || m.settings.get().flow == Flow::Hardware>{tr("hardware")}</option>
                    </select>
                </label>
            </fieldset>
            <div class="actions">
                <button type="button" id="connect" class="primary"
                    disabled=move || (busy() && !matches!(m.link.get(), Link::Lost(_))) || available.is_err()
                    on:click=move |_| connect(false)>{tr("connect")}</button>
                <button type="button" id="simulate" disabled=busy
                    on:click=move |_| connect(true)>{tr("simulate")}</button>
                <Show when=move || matches!(m.link.get(), Link::Open { .. })>
                    <button type="button" id="disconnect" class="secondary" disabled=busy
                        on:click=move |_| { send(Control::Disconnect); m.link.set(Link::None); }>{tr("disconnect")}</button>
                </Show>
            </div>
            <p id="link-status" class="status" role="status">
                {move || match m.link.get() {
                    Link::None => tr("not_connected")(),
                    Link::Opening => tr("opening")(),
                    Link::Open { label, .. } => format!("{}: {label}", tr("connected")()),
                    Link::Lost(why) => format!("{}: {why}", tr("lost")()),
                }}
            </p>
            <Show when=move || m.protocol.get() == Protocol::At && matches!(m.link.get(), Link::Open { .. })>
                <p id="reported" class="status">
                    {move || match m.reported.get() {
                        Some((c, v)) => format!("{}: {c} {v}", tr("reported")()),
                        None => tr("waiting_version")(),
                    }}
                </p>
            </Show>
            <Show when=move || m.chip.get().is_some()>
                <p id="chip" class="status">{move || format!("{}: {}", tr("chip")(), m.chip.get().unwrap_or_default())}</p>
            </Show>
        </section>
    }
}
