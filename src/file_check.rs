//! "Check a firmware file": pick or drop a file, get its size, MD5, CRC32 and SHA-256 from one
//! streaming pass, and compare them with values pasted from the center or a release note.

use crate::adapters::file::{self as blob, ReadError};
use leptos::prelude::*;
use leptos::task::spawn_local;
use sota_engine::digest::{parse_expected, Digests};
use sota_engine::Digester;
use web_sys::{Blob, HtmlInputElement};

/// Where a check stands; the view only renders this.
#[derive(Clone, Debug, PartialEq)]
pub enum CheckState {
    /// No file chosen yet.
    Idle,
    /// Reading: bytes done of total.
    Reading {
        /// File name.
        name: String,
        /// Bytes read so far.
        done: u64,
        /// File size.
        total: u64,
    },
    /// All three digests are known.
    Done {
        /// File name.
        name: String,
        /// The result.
        digests: Digests,
    },
    /// The file could not be read.
    Failed(String),
}

/// One expected-value field: its kind, hex length and what the user typed.
#[derive(Clone, Copy)]
struct Field {
    key: &'static str,
    label: &'static str,
    digits: usize,
}

const FIELDS: [Field; 3] = [
    Field {
        key: "md5",
        label: "MD5",
        digits: 32,
    },
    Field {
        key: "crc32",
        label: "CRC32",
        digits: 8,
    },
    Field {
        key: "sha256",
        label: "SHA-256",
        digits: 64,
    },
];

fn computed<'a>(d: &'a Digests, key: &str) -> &'a str {
    match key {
        "md5" => &d.md5,
        "crc32" => &d.crc32,
        _ => &d.sha256,
    }
}

/// What to show beside one digest: nothing, match, mismatch, or why the input is not usable.
fn verdict(field: Field, typed: &str, got: Option<&Digests>) -> (&'static str, String) {
    match parse_expected(field.label, typed, field.digits) {
        Ok(None) => ("none", String::new()),
        Err(e) => ("invalid", e.to_string()),
        Ok(Some(exp)) => match got {
            None => ("none", String::new()),
            Some(d) if computed(d, field.key) == exp => ("match", "match".into()),
            Some(_) => ("mismatch", format!("MISMATCH: expected {exp}")),
        },
    }
}

/// The console's words when the panel is inside the console (English elsewhere, e.g. tests).
#[derive(Clone, Copy)]
struct Words(Option<RwSignal<crate::i18n::Lang>>);

impl Words {
    fn at(self, key: &'static str) -> impl Fn() -> String + Copy + Send + Sync + 'static {
        move || {
            let lang = self.0.map_or(crate::i18n::Lang::En, |l| l.get());
            crate::i18n::t(lang, key).to_string()
        }
    }
}

fn words() -> Words {
    Words(use_context::<crate::model::Model>().map(|m| m.lang))
}

/// The firmware file the technician chose: its name and contents.
pub type Picked = RwSignal<Option<(String, Blob)>, LocalStorage>;

/// The file check panel: `picked` receives the chosen file, `expected` holds the typed
/// MD5, CRC32 and SHA-256 (in that order), `demo` offers a generated image when set.
#[component]
pub fn FileCheck(
    /// Receives the chosen file.
    picked: Picked,
    /// The typed MD5, CRC32 and SHA-256.
    expected: [RwSignal<String>; 3],
    /// A generated image offered by a button, if any.
    #[prop(optional)]
    demo: Option<Signal<Option<(String, Blob)>, LocalStorage>>,
    /// The panel's heading.
    #[prop(into)]
    title: Signal<String>,
) -> impl IntoView {
    let state = RwSignal::new(CheckState::Idle);
    let words = words();
    let tr = move |key| words.at(key);
    // Each new file bumps the generation; an older read sees it and stops.
    let generation = StoredValue::new(0u64);

    let start = move |name: String, file: Blob| {
        let gen = generation.get_value() + 1;
        generation.set_value(gen);
        picked.set(Some((name.clone(), file.clone())));
        let total = file.size() as u64;
        state.set(CheckState::Reading {
            name: name.clone(),
            done: 0,
            total,
        });
        spawn_local(async move {
            let mut digester = Digester::new();
            let read = blob::for_each_chunk(&file, |chunk, done| {
                if generation.get_value() != gen {
                    return false;
                }
                digester.update(chunk);
                state.set(CheckState::Reading {
                    name: name.clone(),
                    done,
                    total,
                });
                true
            })
            .await;
            if generation.get_value() != gen {
                return;
            }
            state.set(match read {
                Ok(_) => CheckState::Done {
                    name,
                    digests: digester.finish(),
                },
                Err(ReadError(msg)) => CheckState::Failed(ReadError(msg).to_string()),
            });
        });
    };

    let on_pick = move |ev: web_sys::Event| {
        let input: HtmlInputElement = event_target(&ev);
        if let Some(file) = input.files().and_then(|f| f.get(0)) {
            start(file.name(), file.into());
        }
    };
    let on_drop = move |ev: web_sys::DragEvent| {
        ev.prevent_default();
        if let Some(file) = ev
            .data_transfer()
            .and_then(|d| d.files())
            .and_then(|f| f.get(0))
        {
            start(file.name(), file.into());
        }
    };

    // Memos: progress updates change `state` often, but the digests and verdicts only once.
    let digests = Memo::new(move |_| match state.get() {
        CheckState::Done { digests, .. } => Some(digests),
        _ => None,
    });

    view! {
        <section class="panel file-check">
            <h2>{move || title.get()}</h2>
            <label
                class="drop"
                on:dragover=|ev: web_sys::DragEvent| ev.prevent_default()
                on:drop=on_drop
            >
                <span>{tr("drop")}</span>
                <input id="fw-file" type="file" on:change=on_pick />
            </label>
            {move || demo.map(|d| view! {
                <button type="button" id="demo-file" class="secondary"
                    on:click=move |_| if let Some((name, blob)) = d.get() { start(name, blob) }>
                    {tr("demo_file")}
                </button>
            })}
            <Status state=state />
            <table class="digests">
                <thead>
                    <tr><th>{tr("digest")}</th><th>{tr("computed")}</th><th>{tr("expected")}</th><th></th></tr>
                </thead>
                <tbody>
                    <tr>
                        <td>{tr("size")}</td>
                        <td id="digest-size" class="mono">
                            {move || digests.get().map(|d| format!("{} bytes", d.size)).unwrap_or_default()}
                        </td>
                        <td></td>
                        <td></td>
                    </tr>
                    {FIELDS
                        .into_iter()
                        .zip(expected)
                        .map(|(field, typed)| {
                            let v = Memo::new(move |_| verdict(field, &typed.get(), digests.get().as_ref()));
                            let (class, text) = (move || v.get().0, move || v.get().1);
                            view! {
                                <tr>
                                    <td>{field.label}</td>
                                    <td id=format!("digest-{}", field.key) class="mono">
                                        {move || digests.get().map(|d| computed(&d, field.key).to_string()).unwrap_or_default()}
                                    </td>
                                    <td>
                                        <input
                                            id=format!("expect-{}", field.key)
                                            class="mono"
                                            placeholder=move || tr("hex_digits")().replace("{n}", &field.digits.to_string())
                                            spellcheck="false"
                                            prop:value=move || typed.get()
                                            on:input=move |ev| typed.set(event_target_value(&ev))
                                        />
                                    </td>
                                    <td id=format!("verdict-{}", field.key) class=move || format!("verdict {}", class())>
                                        {text}
                                    </td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </section>
    }
}

/// The progress bar and the one-line status under the file picker.
#[component]
fn Status(state: RwSignal<CheckState>) -> impl IntoView {
    let words = words();
    let tr = move |key| words.at(key);
    move || {
        match state.get() {
        CheckState::Idle => view! { <p id="check-status" class="status">{tr("no_file")}</p> }.into_any(),
        CheckState::Reading { name, done, total } => {
            let pct = (done * 100).checked_div(total).unwrap_or(100);
            view! {
                <div id="check-status" class="status">
                    <progress max=total.max(1) value=done></progress>
                    <span>{format!("{} {name}: {pct} % ({done} / {total} B)", tr("reading")())}</span>
                </div>
            }
            .into_any()
        }
        CheckState::Done { name, digests } => view! {
            <p id="check-status" class="status ok">{format!("{name}: {} B {}", digests.size, tr("checked")())}</p>
        }
        .into_any(),
        CheckState::Failed(msg) => view! { <p id="check-status" class="status error">{msg}</p> }.into_any(),
    }
    }
}
