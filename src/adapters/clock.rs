//! Time for the sans-IO layers: the page's monotonic clock, converted once to the `Duration`
//! since page load that `sota-flow` and `sota-link` take.

use core::time::Duration;
use wasm_bindgen::JsCast;

thread_local! {
    // Looked up once: the flow loop asks for the time several times per serial chunk.
    static PERFORMANCE: Option<web_sys::Performance> =
        web_sys::window().and_then(|w| w.performance());
}

/// Time since the page loaded (`performance.now()`); never goes backwards.
pub fn now() -> Duration {
    let ms = PERFORMANCE.with(|p| p.as_ref().map_or(0.0, |p| p.now()));
    Duration::from_micros((ms * 1000.0) as u64)
}

/// Resolves after `d` (a `setTimeout`).
pub async fn sleep(d: Duration) {
    let ms = d.as_millis().min(i32::MAX as u128) as i32;
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w
                .set_timeout_with_callback_and_timeout_and_arguments_0(resolve.unchecked_ref(), ms);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Wall-clock time of day for the log, `HH:MM:SS.mmm`.
pub fn time_of_day() -> String {
    let d = js_sys::Date::new_0();
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        d.get_hours(),
        d.get_minutes(),
        d.get_seconds(),
        d.get_milliseconds()
    )
}
