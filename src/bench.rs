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
