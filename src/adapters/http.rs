//! HTTP downloads. The flow asks for the image in chunks of at most 64 KiB; one request per
//! chunk cost a round trip each (7 MB/s on loopback), so [`Download`] keeps one response open
//! and reads the next chunk from its body stream while the requests follow on. A chunk asked
//! for anywhere else (a retry after an error, a resume) opens a new `Range` request from there.
//! Requests after the first carry `If-Range` with the first answer's `ETag`: if the file changed
//! on the server meanwhile, the answer is the whole new file (200), and the download fails with
//! a message instead of splicing two files together. Never more than one network chunk (and
//! the chunk asked for) is held in WASM memory.

use js_sys::Uint8Array;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    ReadableStreamDefaultReader, ReadableStreamReadResult, Request, RequestInit, Response,
};

fn js_message(e: wasm_bindgen::JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

/// An open response body, positioned at `at`.
struct Body {
    url: String,
    reader: ReadableStreamDefaultReader,
    at: u64,
    /// Bytes read from the network past what was asked for so far.
    spare: Vec<u8>,
}

impl Drop for Body {
    fn drop(&mut self) {
        // Stops the transfer of the rest of the body.
        let _ = self.reader.cancel();
    }
}

/// A download of one URL at a time, read chunk by chunk from one response where it can.
#[derive(Default)]
pub struct Download {
    body: Option<Body>,
    /// The URL downloaded and the `ETag` of its first answer, sent back as `If-Range`.
    validator: Option<(String, String)>,
}

/// Opens `url` from `start` to its end (`If-Range: etag` when given).
async fn open(url: &str, start: u64, etag: Option<&str>) -> Result<Response, String> {
    let init = RequestInit::new();
    init.set_method("GET");
    let request = Request::new_with_str_and_init(url, &init)
        .map_err(|e| format!("bad download address {url}: {}", js_message(e)))?;
    let headers = request.headers();
    headers
        .set("Range", &format!("bytes={start}-"))
        .map_err(js_message)?;
    if let Some(etag) = etag {
        headers.set("If-Range", etag).map_err(js_message)?;
    }
    let window = web_sys::window().ok_or("no window")?;
    let response: Response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(|e| {
            format!(
                "download from byte {start} failed: {} (network)",
                js_message(e)
            )
        })?
        .unchecked_into();
    let status = response.status();
    if status == 200 && start > 0 && etag.is_some() {
        return Err(format!(
            "the firmware file changed on the server during the download (its ETag is no longer {}): the part downloaded so far is of another file",
            etag.unwrap_or_default()
        ));
    }
    if status != 206 && !(status == 200 && start == 0) {
        return Err(format!(
            "the server answered {status} {} to a request for the bytes from {start}",
            response.status_text()
        ));
    }
    Ok(response)
}

impl Download {
    /// Bytes `start..end` of `url`; after the first chunk, only while the file is still the
    /// one the first answer's `ETag` named. A short result means the body ended early.
    pub async fn range(&mut self, url: &str, start: u64, end: u64) -> Result<Vec<u8>, String> {
        // A download from 0 starts afresh: whatever file the URL names now.
        if start == 0 || self.validator.as_ref().is_some_and(|(u, _)| u != url) {
            self.validator = None;
        }
        let reusable = self
            .body
            .as_ref()
            .is_some_and(|b| b.url == url && b.at == start);
        if !reusable {
            self.body = None;
            let etag = self.validator.as_ref().map(|(_, e)| e.as_str());
            let response = open(url, start, etag).await?;
            if self.validator.is_none() {
                if let Some(etag) = response.headers().get("ETag").ok().flatten() {
                    self.validator = Some((url.to_string(), etag));
                }
            }
            let reader = response
                .body()
                .ok_or_else(|| format!("the server sent no body for the bytes from {start}"))?
                .get_reader()
                .unchecked_into();
            self.body = Some(Body {
                url: url.to_string(),
                reader,
                at: start,
                spare: Vec::new(),
            });
        }
        let body = self.body.as_mut().ok_or("no download is open")?;
        let want = usize::try_from(end - start).unwrap_or(usize::MAX);
        let mut bytes = std::mem::take(&mut body.spare);
        while bytes.len() < want {
            let read = JsFuture::from(body.reader.read()).await.map_err(|e| {
                format!(
                    "download broke off at byte {}: {}",
                    start + bytes.len() as u64,
                    js_message(e)
                )
            });
            let result: ReadableStreamReadResult = match read {
                Ok(r) => r.unchecked_into(),
                Err(e) => {
                    self.body = None;
                    return Err(e);
                }
            };
            if result.get_done().unwrap_or(false) {
                self.body = None;
                return Ok(bytes);
            }
            if let Some(chunk) = result.get_value().dyn_ref::<Uint8Array>() {
                bytes.extend_from_slice(&chunk.to_vec());
            }
        }
        body.spare = bytes.split_off(want);
        body.at = end;
        Ok(bytes)
    }
}
