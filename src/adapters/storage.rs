//! Browser storage for what must outlive the page: the verified image of a download from the
//! center, and small named records (a session to continue, reports waiting for the broker).
//!
//! IndexedDB, one record per appended chunk (keyed `[image, offset]`) and one record with the
//! image's length, written in the same transaction, so a reload finds a prefix that is whole.
//! Appends never rewrite what is stored, and no image is ever whole in WASM memory. (The origin
//! private file system was the other candidate: its main-thread writer copies the whole file on
//! every commit, which a 100 MiB download committed per chunk cannot afford.)

use idb::builder::{DatabaseBuilder, ObjectStoreBuilder};
use idb::{Database, KeyRange, ObjectStore, Query, Transaction, TransactionMode};
use js_sys::{Array, Uint8Array};
use wasm_bindgen::JsValue;

const DATABASE: &str = "sota-console";
const CHUNKS: &str = "chunks";
const LENGTHS: &str = "lengths";
const RECORDS: &str = "records";
/// Largest chunk taken (the flow asks for 64 KiB): a read looks this far back for the chunk
/// holding its first byte.
pub const MAX_CHUNK: u64 = 1 << 20;

/// The console's database (a handle: clones share the connection).
#[derive(Clone)]
pub struct Storage {
    db: std::rc::Rc<Database>,
}

fn failed(what: &str, e: impl std::fmt::Display) -> String {
    format!("browser storage: {what} failed: {e}")
}

fn key(image: &str, offset: u64) -> JsValue {
    // IndexedDB numbers are doubles: exact up to 2^53 bytes, far beyond any image.
    Array::of2(&JsValue::from_str(image), &JsValue::from_f64(offset as f64)).into()
}

fn range(image: &str, from: u64, to: u64) -> Result<Query, String> {
    let range = KeyRange::bound(&key(image, from), &key(image, to), Some(false), Some(true))
        .map_err(|e| failed("a key range", e))?;
    Ok(Query::KeyRange(range))
}

fn offset_of(key: &JsValue) -> Option<u64> {
    let v = Array::from(key).get(1).as_f64()?;
    Some(v as u64)
}

impl Storage {
    /// A transaction over `names` and their object stores, in that order.
    fn begin(
        &self,
        names: &[&str],
        mode: TransactionMode,
        what: &str,
    ) -> Result<(Transaction, Vec<ObjectStore>), String> {
        let tx = self
            .db
            .transaction(names, mode)
            .map_err(|e| failed(what, e))?;
        let stores = names
            .iter()
            .map(|n| tx.object_store(n).map_err(|e| failed(what, e)))
            .collect::<Result<_, _>>()?;
        Ok((tx, stores))
    }

    /// Commits `tx`; true when it was committed (not aborted).
    async fn commit(tx: Transaction, what: &str) -> Result<bool, String> {
        let done = tx
            .commit()
            .map_err(|e| failed(what, e))?
            .await
            .map_err(|e| failed(what, e))?;
        Ok(done.is_committed())
    }

    /// Opens (or creates) the database.
    pub async fn open() -> Result<Storage, String> {
        let db = DatabaseBuilder::new(DATABASE)
            .version(1)
            .add_object_store(ObjectStoreBuilder::new(CHUNKS))
            .add_object_store(ObjectStoreBuilder::new(LENGTHS))
            .add_object_store(ObjectStoreBuilder::new(RECORDS))
            .build()
            .await
            .map_err(|e| {
                failed(
                    "opening the database (is the page in a private window with storage off?)",
                    e,
                )
            })?;
        Ok(Storage {
            db: std::rc::Rc::new(db),
        })
    }

    /// Bytes stored of `image` (0 if none).
    pub async fn stored(&self, image: &str) -> Result<u64, String> {
        let (_tx, stores) = self.begin(&[LENGTHS], TransactionMode::ReadOnly, "a read")?;
        let value = stores[0]
            .get(Query::Key(JsValue::from_str(image)))
            .map_err(|e| failed("a read", e))?
            .await
            .map_err(|e| failed("a read", e))?;
        Ok(value.and_then(|v| v.as_f64()).map_or(0, |v| v as u64))
    }

    /// Appends `bytes` at `offset`, which must be the stored length.
    pub async fn append(&self, image: &str, offset: u64, bytes: &[u8]) -> Result<(), String> {
        if bytes.len() as u64 > MAX_CHUNK {
            return Err(format!(
                "browser storage: a chunk of {} bytes is over the {MAX_CHUNK}-byte limit",
                bytes.len()
            ));
        }
        let stored = self.stored(image).await?;
        if offset != stored {
            return Err(format!(
                "browser storage: append at {offset}, but {stored} bytes of {image} are stored"
            ));
        }
        let (tx, stores) = self.begin(&[CHUNKS, LENGTHS], TransactionMode::ReadWrite, "a write")?;
        let (chunks, lengths) = (&stores[0], &stores[1]);
        let data = Uint8Array::from(bytes);
        chunks
            .put(&data, Some(&key(image, offset)))
            .map_err(|e| failed("a write", e))?;
        let end = JsValue::from_f64((offset + bytes.len() as u64) as f64);
        lengths
            .put(&end, Some(&JsValue::from_str(image)))
            .map_err(|e| failed("a write", e))?;
        if !Self::commit(tx, "a write").await? {
            return Err(
                "browser storage: a write was not committed (is the disk full or the quota used up?)"
                    .into(),
            );
        }
        Ok(())
    }

    /// `len` stored bytes of `image` from `offset`.
    pub async fn read(&self, image: &str, offset: u64, len: u64) -> Result<Vec<u8>, String> {
        let end = offset + len;
        let stored = self.stored(image).await?;
        if end > stored {
            return Err(format!(
                "browser storage: bytes {offset}..{end} of {image} asked for, {stored} stored"
            ));
        }
        let (_tx, stores) = self.begin(&[CHUNKS], TransactionMode::ReadOnly, "a read")?;
        let chunks = &stores[0];
        let from = offset.saturating_sub(MAX_CHUNK - 1);
        let keys = chunks
            .get_all_keys(Some(range(image, from, end)?), None)
            .map_err(|e| failed("a read", e))?
            .await
            .map_err(|e| failed("a read", e))?;
        let values = chunks
            .get_all(Some(range(image, from, end)?), None)
            .map_err(|e| failed("a read", e))?
            .await
            .map_err(|e| failed("a read", e))?;
        let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        for (k, v) in keys.iter().zip(values) {
            let Some(start) = offset_of(k) else { continue };
            let chunk = Uint8Array::from(v);
            let chunk_end = start + u64::from(chunk.length());
            if chunk_end <= offset || start >= end {
                continue;
            }
            let a = (offset.max(start) - start) as u32;
            let b = (end.min(chunk_end) - start) as u32;
            out.extend_from_slice(&chunk.subarray(a, b).to_vec());
        }
        if out.len() as u64 != len {
            return Err(format!(
                "browser storage: {image} has a gap: {} of bytes {offset}..{end} found",
                out.len()
            ));
        }
        Ok(out)
    }

    /// Forgets `image`.
    pub async fn discard(&self, image: &str) -> Result<(), String> {
        let (tx, stores) =
            self.begin(&[CHUNKS, LENGTHS], TransactionMode::ReadWrite, "a delete")?;
        let (chunks, lengths) = (&stores[0], &stores[1]);
        chunks
            .delete(range(image, 0, 1 << 53)?)
            .map_err(|e| failed("a delete", e))?;
        lengths
            .delete(Query::Key(JsValue::from_str(image)))
            .map_err(|e| failed("a delete", e))?;
        Self::commit(tx, "a delete").await?;
        Ok(())
    }

    /// Keeps a small named record (JSON text).
    pub async fn put_record(&self, name: &str, text: &str) -> Result<(), String> {
        let (tx, stores) = self.begin(&[RECORDS], TransactionMode::ReadWrite, "a write")?;
        let records = &stores[0];
        records
            .put(&JsValue::from_str(text), Some(&JsValue::from_str(name)))
            .map_err(|e| failed("a write", e))?;
        Self::commit(tx, "a write").await?;
        Ok(())
    }

    /// The named record, if kept.
    pub async fn record(&self, name: &str) -> Result<Option<String>, String> {
        let (_tx, stores) = self.begin(&[RECORDS], TransactionMode::ReadOnly, "a read")?;
        let records = &stores[0];
        let value = records
            .get(Query::Key(JsValue::from_str(name)))
            .map_err(|e| failed("a read", e))?
            .await
            .map_err(|e| failed("a read", e))?;
        Ok(value.and_then(|v| v.as_string()))
    }

    /// Forgets the named record.
    pub async fn delete_record(&self, name: &str) -> Result<(), String> {
        let (tx, stores) = self.begin(&[RECORDS], TransactionMode::ReadWrite, "a delete")?;
        let records = &stores[0];
        records
            .delete(Query::Key(JsValue::from_str(name)))
            .map_err(|e| failed("a delete", e))?;
        Self::commit(tx, "a delete").await?;
        Ok(())
    }
}

/// Appends to one image in pieces of up to [`MAX_CHUNK`]: a download arrives in 64 KiB chunks,
/// and one IndexedDB transaction per chunk cost more than the network. A full piece is written
/// while the next one fills (the download does not wait for the disk), one write at a time so
/// pieces land in order. Bytes not yet written are at most two pieces; [`Appender::flush`]
/// writes them and waits (before reading the image back). A failed write is reported by the
/// next `push` or `flush`.
pub struct Appender {
    storage: Storage,
    image: String,
    /// Where `held` starts in the image.
    offset: u64,
    held: Vec<u8>,
    /// The piece being written, whose result arrives here.
    writing: Option<futures::channel::oneshot::Receiver<Result<(), String>>>,
}

impl Appender {
    /// Appends to `image` of `storage`, from `offset` (its stored length).
    pub fn new(storage: Storage, image: &str, offset: u64) -> Self {
        Appender {
            storage,
            image: image.to_string(),
            offset,
            held: Vec::new(),
            writing: None,
        }
    }

    /// The image it appends to.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// Where the next bytes go.
    pub fn end(&self) -> u64 {
        self.offset + self.held.len() as u64
    }

    /// Takes `bytes` for offset [`Appender::end`]; a full piece starts being written.
    pub async fn push(&mut self, bytes: &[u8]) -> Result<(), String> {
        if self.held.len() as u64 + bytes.len() as u64 > MAX_CHUNK {
            self.write_held().await?;
        }
        if bytes.len() as u64 >= MAX_CHUNK {
            return self.write(bytes.to_vec()).await;
        }
        self.held.extend_from_slice(bytes);
        Ok(())
    }

    /// Writes what is held and waits until every piece is written.
    pub async fn flush(&mut self) -> Result<(), String> {
        self.write_held().await?;
        self.written().await
    }

    async fn write_held(&mut self) -> Result<(), String> {
        if self.held.is_empty() {
            return Ok(());
        }
        let held = std::mem::replace(&mut self.held, Vec::with_capacity(MAX_CHUNK as usize));
        self.write(held).await
    }

    /// Starts writing `piece` at the end of what is written, after the write before it.
    async fn write(&mut self, piece: Vec<u8>) -> Result<(), String> {
        self.written().await?;
        let (done, result) = futures::channel::oneshot::channel();
        let (storage, image, offset) = (self.storage.clone(), self.image.clone(), self.offset);
        self.offset += piece.len() as u64;
        self.writing = Some(result);
        wasm_bindgen_futures::spawn_local(async move {
            let _ = done.send(storage.append(&image, offset, &piece).await);
        });
        Ok(())
    }

    /// Waits for the piece being written.
    async fn written(&mut self) -> Result<(), String> {
        match self.writing.take() {
            Some(result) => result
                .await
                .unwrap_or_else(|_| Err("browser storage: a write was dropped".into())),
            None => Ok(()),
        }
    }
}
