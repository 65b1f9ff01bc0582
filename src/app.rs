use crate::file_check::FileCheck;
use leptos::prelude::*;

/// The whole console page.
#[component]
pub fn App() -> impl IntoView {
    view! {
        <header class="top">
            <h1>"SOTA upgrade console"</h1>
            <p class="lede">"MCU firmware over the air, from this laptop to the board on the USB cable."</p>
        </header>
        <main>
            <FileCheck />
        </main>
    }
}
