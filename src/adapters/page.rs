//! What the page itself offers: a screen wake lock, a guard against closing the tab mid
//! transfer, remembered settings, saving a text file, the browser's language, and its time
//! zones (`Intl`: the names it knows and the time now in one).

use serde::{de::DeserializeOwned, Serialize};
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{BeforeUnloadEvent, Blob, BlobPropertyBag, HtmlAnchorElement, Url, WakeLockSentinel};

/// The `beforeunload` listener while a transfer runs.
type UnloadGuard = Closure<dyn FnMut(BeforeUnloadEvent)>;

thread_local! {
    static WAKE: RefCell<Option<WakeLockSentinel>> = const { RefCell::new(None) };
    static UNLOAD: RefCell<Option<UnloadGuard>> = const { RefCell::new(None) };
}

/// Keeps the screen on while flashing (a sleeping laptop stops the transfer), or lets it go.
pub fn keep_awake(on: bool) {
    if !on {
        if let Some(lock) = WAKE.with(|w| w.borrow_mut().take()) {
            let _ = lock.release();
        }
        return;
    }
    let Some(window) = web_sys::window() else {
        return;
    };
    let navigator = window.navigator();
    if !js_sys::Reflect::has(&navigator, &"wakeLock".into()).unwrap_or(false) {
        return;
    }
    let promise = navigator.wake_lock().request(web_sys::WakeLockType::Screen);
    spawn_local(async move {
        // Refused (e.g. the tab is hidden): flashing goes on; the hidden-tab warning covers it.
        if let Ok(lock) = JsFuture::from(promise).await {
            WAKE.with(|w| *w.borrow_mut() = Some(lock.unchecked_into()));
        }
    });
}

/// Asks before the tab closes or reloads while `on`.
pub fn guard_unload(on: bool) {
    let Some(window) = web_sys::window() else {
        return;
    };
    UNLOAD.with(|u| {
        let mut slot = u.borrow_mut();
        if let Some(old) = slot.take() {
            let _ = window
                .remove_event_listener_with_callback("beforeunload", old.as_ref().unchecked_ref());
        }
        if on {
            let guard = Closure::<dyn FnMut(BeforeUnloadEvent)>::new(|e: BeforeUnloadEvent| {
                e.prevent_default();
                e.set_return_value("A firmware transfer is running.");
            });
            let _ = window
                .add_event_listener_with_callback("beforeunload", guard.as_ref().unchecked_ref());
            *slot = Some(guard);
        }
    });
}

/// True while the tab is hidden (browsers slow hidden tabs down).
pub fn hidden() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .is_some_and(|d| d.hidden())
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// A value remembered under `key`, if any and readable.
pub fn recall<T: DeserializeOwned>(key: &str) -> Option<T> {
    let text = storage()?.get_item(key).ok().flatten()?;
    serde_json::from_str(&text).ok()
}

/// Remembers `value` under `key` (quietly does nothing if storage is off).
pub fn remember<T: Serialize>(key: &str, value: &T) {
    if let (Some(s), Ok(text)) = (storage(), serde_json::to_string(value)) {
        let _ = s.set_item(key, &text);
    }
}

/// Offers `text` as a download named `name`.
pub fn save_text(name: &str, text: &str) -> Result<(), String> {
    let parts = js_sys::Array::of1(&JsValue::from_str(text));
    let options = BlobPropertyBag::new();
    options.set_type("text/plain;charset=utf-8");
    let blob = Blob::new_with_str_sequence_and_options(&parts, &options)
        .map_err(|_| "the browser could not build the file".to_string())?;
    let url = Url::create_object_url_with_blob(&blob)
        .map_err(|_| "the browser could not offer the file".to_string())?;
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("no document")?;
    let a: HtmlAnchorElement = document
        .create_element("a")
        .map_err(|_| "no link element")?
        .unchecked_into();
    a.set_href(&url);
    a.set_download(name);
    a.click();
    let _ = Url::revoke_object_url(&url);
    Ok(())
}

/// The browser's preferred language, e.g. "zh-CN".
pub fn language() -> String {
    web_sys::window()
        .and_then(|w| w.navigator().language())
        .unwrap_or_default()
}

/// `Intl`, if the browser has it.
fn intl() -> Option<js_sys::Object> {
    js_sys::Reflect::get(&js_sys::global(), &"Intl".into())
        .ok()
        .filter(|v| v.is_object())
        .map(JsCast::unchecked_into)
}

/// The IANA time zone names the browser knows (`Intl.supportedValuesOf('timeZone')`), so the
/// page bundles no time zone database; empty where the browser cannot list them.
pub fn time_zones() -> Vec<String> {
    let Some(intl) = intl() else {
        return Vec::new();
    };
    let list = js_sys::Reflect::get(&intl, &"supportedValuesOf".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        .and_then(|f| f.call1(&intl, &"timeZone".into()).ok());
    match list.and_then(|l| l.dyn_into::<js_sys::Array>().ok()) {
        Some(a) => a.iter().filter_map(|v| v.as_string()).collect(),
        None => Vec::new(),
    }
}

/// The browser's own time zone, e.g. `Europe/Berlin`.
pub fn own_time_zone() -> Option<String> {
    let format = js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &js_sys::Object::new());
    let options = format.resolved_options();
    js_sys::Reflect::get(&options, &"timeZone".into())
        .ok()?
        .as_string()
}

/// The time now in `zone` for people reading `locale` (e.g. "Wed 14:05"), or `None` where the
/// browser does not know the zone (its `RangeError` is caught, never a panic).
pub fn time_in(zone: &str, locale: &str) -> Option<String> {
    let options = js_sys::Object::new();
    for (k, v) in [
        ("timeZone", zone),
        ("weekday", "short"),
        ("hour", "2-digit"),
        ("minute", "2-digit"),
        ("hourCycle", "h23"),
    ] {
        js_sys::Reflect::set(&options, &k.into(), &v.into()).ok()?;
    }
    let now = js_sys::Date::new_0();
    let to_string = js_sys::Reflect::get(&now, &"toLocaleString".into())
        .ok()?
        .dyn_into::<js_sys::Function>()
        .ok()?;
    to_string
        .call2(&now, &locale.into(), &options)
        .ok()?
        .as_string()
}
