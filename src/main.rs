//! The console's entry point in the browser: mount the app on the page.

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(sota_console::App);
}
