//! Reading a `Blob` (a picked or dropped `File`) in chunks, so a large firmware image never
//! sits whole in memory.

use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::Blob;

/// How much is read at a time: large enough that per-chunk overhead is small, small enough
/// that memory stays flat and the progress bar moves often.
pub const CHUNK: u64 = 1 << 20;

/// Why a file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError(pub String);

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "could not read the file: {} (was it moved, or is it on a disconnected drive?)",
            self.0
        )
    }
}

fn js_message(e: wasm_bindgen::JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

/// Calls `each(chunk, bytes_done)` for consecutive chunks of `blob`. `each` returns false to stop
/// early (for example when the user picked another file); then the result is `Ok(false)`.
pub async fn for_each_chunk(
    blob: &Blob,
    mut each: impl FnMut(&[u8], u64) -> bool,
) -> Result<bool, ReadError> {
    let size = blob.size() as u64;
    let mut buf = Vec::new();
    let mut offset = 0u64;
    while offset < size {
        let end = (offset + CHUNK).min(size);
        let part = blob
            .slice_with_f64_and_f64(offset as f64, end as f64)
            .map_err(|e| ReadError(js_message(e)))?;
        let array: ArrayBuffer = JsFuture::from(part.array_buffer())
            .await
            .map_err(|e| ReadError(js_message(e)))?
            .unchecked_into();
        let bytes = Uint8Array::new(&array);
        let len = bytes.length() as usize;
        if len == 0 {
            return Err(ReadError(format!(
                "the file ended at byte {offset} of {size}"
            )));
        }
        buf.resize(len, 0);
        bytes.copy_to(&mut buf);
        offset += len as u64;
        if !each(&buf, offset) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Bytes `start..end` of `blob` (fewer only past its end).
pub async fn read_range(blob: &Blob, start: u64, end: u64) -> Result<Vec<u8>, ReadError> {
    let part = blob
        .slice_with_f64_and_f64(start as f64, end as f64)
        .map_err(|e| ReadError(js_message(e)))?;
    let array: ArrayBuffer = JsFuture::from(part.array_buffer())
        .await
        .map_err(|e| ReadError(js_message(e)))?
        .unchecked_into();
    Ok(Uint8Array::new(&array).to_vec())
}
