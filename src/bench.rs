//! The in-browser half of `cargo xtask bench digest`: the same pass over the same bytes as the
//! native half, timed with the page's clock.

use sota_engine::Digester;
use wasm_bindgen::prelude::*;

/// The benchmark's data: byte i is `i % 251`, the pattern the native half uses too.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Digests `mib` MiB `runs` times and returns each run's throughput in MB/s (10^6 bytes/s),
/// fed in 1 MiB chunks as the file check does.
#[wasm_bindgen]
pub fn bench_digest(mib: u32, runs: u32) -> Vec<f64> {
    let data = pattern(mib as usize * (1 << 20));
    let perf = web_sys::window().and_then(|w| w.performance());
    let now = || perf.as_ref().map_or(0.0, |p| p.now());
    (0..runs)
        .map(|_| {
            let t = now();
            let mut d = Digester::new();
            data.chunks(1 << 20).for_each(|c| d.update(c));
            let digests = d.finish();
            let ms = (now() - t).max(0.001);
            std::hint::black_box(digests);
            data.len() as f64 / 1e6 / (ms / 1e3)
        })
        .collect()
}

/// Bytes of WASM memory right now (`memory.buffer.byteLength`); it only grows.
#[wasm_bindgen]
pub fn wasm_memory_bytes() -> f64 {
    use wasm_bindgen::JsCast;
    wasm_bindgen::memory()
        .unchecked_into::<js_sys::WebAssembly::Memory>()
        .buffer()
        .unchecked_into::<js_sys::ArrayBuffer>()
        .byte_length() as f64
}

/// The in-browser half of `cargo xtask bench console`: upgrades the MCU behind
/// `navigator.serial` (the bench installs a fake port with a zero-delay AT MCU) with `file`
/// through the real Web Serial adapter and flow runner, and returns
/// `[ms from start to result, ms of the transfer to the MCU, peak WASM memory bytes, ok]`.
#[wasm_bindgen]
pub async fn bench_flash(file: web_sys::Blob) -> Result<js_sys::Array, JsValue> {
    use crate::adapters::{clock, serial};
    use crate::model::{Ending, Model, Protocol};
    use crate::run::{self, Control, Firmware};
    use core::time::Duration;
    use leptos::prelude::*;

    let owner = Owner::new();
    owner.set();
    let model = Model::new(crate::i18n::Lang::En);
    let port = serial::request().await.map_err(|e| JsValue::from_str(&e))?;
    let port = serial::open(port, &serial::SerialSettings::n81(921_600))
        .await
        .map_err(|e| JsValue::from_str(&e))?;
    let controls = run::start(model, port, Protocol::At);
    let mut peak = wasm_memory_bytes();
    while model.reported.get_untracked().is_none() {
        clock::sleep(Duration::from_millis(5)).await;
    }
    let start = clock::now();
    controls
        .unbounded_send(Control::Start(Firmware {
            file,
            name: "bench.bin".into(),
            identity: "STM32".into(),
            target_version: "2_0_0".into(),
            expected: sota_engine::ExpectedDigests::default(),
            address: 0x0800_0000,
        }))
        .map_err(|_| JsValue::from_str("the runner stopped"))?;
    let mut writing_since = None;
    let ending = loop {
        peak = peak.max(wasm_memory_bytes());
        if writing_since.is_none() && model.flow.get_untracked().step == sota_flow::Step::Writing {
            writing_since = Some(clock::now());
        }
        if let Some(e) = model.ending.get_untracked() {
            break e;
        }
        clock::sleep(Duration::from_millis(20)).await;
    };
    let end = clock::now();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let transfer = end.saturating_sub(writing_since.unwrap_or(start));
    let ok = matches!(ending, Ending::Succeeded(_));
    if !ok {
        leptos::logging::warn!("bench ended with {ending:?}\n{}", model.log_text());
    }
    Ok(js_sys::Array::of4(
        &ms(end - start).into(),
        &ms(transfer).into(),
        &peak.into(),
        &ok.into(),
    ))
}

/// The in-browser half of `cargo xtask bench console`'s download: the console's download path
/// for a package from the center — `Range` requests of the flow's chunk size, every byte through
/// the digester and appended to IndexedDB — timed with the page's clock. Returns
/// `[ms, peak WASM memory bytes, SHA-256 matched]`; the stored image is discarded afterwards.
#[wasm_bindgen]
pub async fn bench_download(
    url: String,
    size: f64,
    sha256: String,
) -> Result<js_sys::Array, JsValue> {
    use crate::adapters::storage::{self, Storage};
    use crate::adapters::{clock, http};
    let err = |e: String| JsValue::from_str(&e);
    let size = size as u64;
    let storage = Storage::open().await.map_err(err)?;
    let image = "bench-download";
    storage.discard(image).await.map_err(err)?;
    let mut digester = Digester::new();
    let mut peak = wasm_memory_bytes();
    let start = clock::now();
    let mut offset = 0;
    let mut appender = storage::Appender::new(storage.clone(), image, 0);
    let mut download = http::Download::default();
    while offset < size {
        let end = (offset + sota_flow::io::CHUNK).min(size);
        // The same requests as an upgrade's download (`If-Range` after the first).
        let bytes = download.range(&url, offset, end).await.map_err(err)?;
        digester.update(&bytes);
        appender.push(&bytes).await.map_err(err)?;
        offset = end;
        peak = peak.max(wasm_memory_bytes());
    }
    appender.flush().await.map_err(err)?;
    let ms = clock::now().saturating_sub(start).as_secs_f64() * 1e3;
    let ok = digester.finish().sha256 == sha256;
    storage.discard(image).await.map_err(err)?;
    Ok(js_sys::Array::of3(&ms.into(), &peak.into(), &ok.into()))
}
