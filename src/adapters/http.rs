//! HTTP downloads: one `Range` request per chunk the flow asks for (at most 64 KiB), so the
//! image streams into storage and a broken download resumes from the engine's own offset.

use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Request, RequestInit, Response};

fn js_message(e: wasm_bindgen::JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

/// Bytes `start..end` of `url`.
pub async fn fetch_range(url: &str, start: u64, end: u64) -> Result<Vec<u8>, String> {
    let init = RequestInit::new();
    init.set_method("GET");
    let request = Request::new_with_str_and_init(url, &init)
        .map_err(|e| format!("bad download address {url}: {}", js_message(e)))?;
    request
        .headers()
        .set("Range", &format!("bytes={start}-{}", end.saturating_sub(1)))
        .map_err(js_message)?;
    let window = web_sys::window().ok_or("no window")?;
    let response: Response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(|e| {
            format!(
                "download of bytes {start}..{end} failed: {} (network)",
                js_message(e)
            )
        })?
        .unchecked_into();
    let status = response.status();
    if status != 206 && !(status == 200 && start == 0) {
        return Err(format!(
            "the server answered {status} {} to a request for bytes {start}..{end}",
            response.status_text()
        ));
    }
    let body = response.array_buffer().map_err(js_message)?;
    let buffer: ArrayBuffer = JsFuture::from(body)
        .await
        .map_err(|e| {
            format!(
                "download of bytes {start}..{end} broke off: {}",
                js_message(e)
            )
        })?
        .unchecked_into();
    let mut bytes = Uint8Array::new(&buffer).to_vec();
    // A server that ignores Range sends everything from 0: keep the part asked for.
    bytes.truncate(usize::try_from(end - start).unwrap_or(usize::MAX));
    Ok(bytes)
}
