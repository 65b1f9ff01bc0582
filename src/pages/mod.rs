//! The views: each renders the [`crate::model::Model`] and passes the technician's choices
//! on; none decides what happens next. The engineer's pages under `/center` ([`engineer`],
//! [`packages`], [`plans`], [`verify`], [`monitoring`]) render what the center's API answers
//! ([`crate::api`]).

pub mod center;
pub mod device;
pub mod engineer;
pub mod log;
pub mod monitoring;
pub mod packages;
pub mod plans;
pub mod upgrade;
pub mod verify;

use crate::i18n::{t, Lang};
use crate::model::Model;
use crate::run::Control;
use futures::channel::mpsc::UnboundedSender;
use leptos::prelude::*;

/// Where the running connection takes the technician's choices.
pub type Controls = StoredValue<Option<UnboundedSender<Control>>, LocalStorage>;

/// The model from context.
pub fn model() -> Model {
    expect_context::<Model>()
}

/// The controls from context.
pub fn controls() -> Controls {
    expect_context::<Controls>()
}

/// A translated text that follows the language switch.
pub fn tr(key: &'static str) -> impl Fn() -> String + Copy + 'static {
    let lang = model().lang;
    move || t(lang.get(), key).to_string()
}

/// Sends a choice to the running connection, if any.
pub fn send(control: Control) {
    controls().with_value(|c| {
        if let Some(tx) = c {
            let _ = tx.unbounded_send(control);
        }
    });
}

/// The language switch.
#[component]
pub fn LanguageSwitch() -> impl IntoView {
    let m = model();
    let pick = move |l: Lang| move |_| m.lang.set(l);
    view! {
        <div class="lang" role="group" aria-label=tr("language")>
            <button type="button" class="link" aria-pressed=move || (m.lang.get() == Lang::En).to_string() on:click=pick(Lang::En)>"English"</button>
            <button type="button" class="link" aria-pressed=move || (m.lang.get() == Lang::Zh).to_string() on:click=pick(Lang::Zh)>"中文"</button>
        </div>
    }
}
