//! What a plan request needs, kept in memory while the center is alone.
//!
//! A device connects, reports its versions and asks for plans back to back.
//! Reading [`RequestView`] from SQLite for each of those messages put two to
//! three pool round trips on the request's path, several times the broker's
//! own round trip. With the embedded broker every write that can change a view
//! passes through this process (devices reach only this broker, operators only
//! this API), so the view read once is kept here and:
//! - a versions report writes through ([`Memory::versions`]);
//! - any other device message that moves an upgrade or a verification job
//!   forgets that device ([`Memory::forget`]), so its next view is read again;
//! - while an operator's write through the HTTP API runs, views are read and not
//!   kept, and everything is forgotten when it ends ([`Memory::operator_write`]):
//!   plans, verification jobs and device rows change only there (or at start-up);
//! - a device that disconnects is forgotten, which bounds the memory by the
//!   connected fleet (and [`CAPACITY`] bounds it in any case).
//!
//! With an external broker, several centers may share the database, so the
//! memory stays off (the default) and every view is read from the database;
//! the embedded broker turns it on ([`Memory::enable`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use sota_protocol::DeviceId;

use super::view::{self, RequestView};
use crate::api::AppState;
use crate::error::ApiError;

/// Devices kept at most; beyond it views are read, not kept (a fleet this large
/// connected to one embedded broker is past what it is meant for).
pub const CAPACITY: usize = 200_000;

/// The kept views, by device.
#[derive(Debug, Default)]
pub struct Memory {
    on: AtomicBool,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Bumped by every forget and clear: a view read before it is not kept.
    generation: u64,
    /// Operator writes in progress: their commit may come at any moment.
    writers: usize,
    devices: HashMap<DeviceId, RequestView>,
}

impl Memory {
    /// Keep views from now on (the embedded broker: this center sees every write).
    pub fn enable(&self) {
        self.clear_all();
        self.on.store(true, Ordering::SeqCst);
    }

    fn on(&self) -> bool {
        self.on.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves whole views behind; keep using them.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `from`'s view (its rows are `product_id`, `device_id`): kept, or read and kept.
    pub async fn view(
        &self,
        state: &AppState,
        from: &DeviceId,
        product_id: i64,
        device_id: i64,
    ) -> Result<RequestView, ApiError> {
        if !self.on() {
            return view::read(state, product_id, device_id).await;
        }
        let generation = {
            let inner = self.lock();
            if let Some(v) = inner.devices.get(from) {
                return Ok(v.clone());
            }
            inner.generation
        };
        // Read while nothing is kept (an operator write runs): the commit may be next.
        let read = view::read(state, product_id, device_id).await?;
        self.keep(from, generation, &read);
        Ok(read)
    }

    /// `from`'s view as [`Self::view`] gives it, but only when the memory is on
    /// (off, the caller's own narrower reads are cheaper than a whole view).
    pub async fn view_if_on(
        &self,
        state: &AppState,
        from: &DeviceId,
        product_id: i64,
        device_id: i64,
    ) -> Result<Option<RequestView>, ApiError> {
        if !self.on() {
            return Ok(None);
        }
        self.view(state, from, product_id, device_id)
            .await
            .map(Some)
    }

    /// Keep `read`, taken at `generation`, unless something was forgotten since.
    fn keep(&self, from: &DeviceId, generation: u64, read: &RequestView) {
        let mut inner = self.lock();
        if inner.generation == generation && inner.writers == 0 && inner.devices.len() < CAPACITY {
            inner.devices.insert(from.clone(), read.clone());
        }
    }

    /// `from` reported `components` (written through; the database write is queued).
    pub fn versions(&self, from: &DeviceId, components: &BTreeMap<String, String>) {
        if let Some(v) = self.lock().devices.get_mut(from) {
            v.components
                .extend(components.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }

    /// Read `from`'s view again next time.
    pub fn forget(&self, from: &DeviceId) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.devices.remove(from);
    }

    /// Read every view again (an operator changed something).
    pub fn clear(&self) {
        if self.on() {
            self.clear_all();
        }
    }

    fn clear_all(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.devices.clear();
    }

    /// An operator's write through the HTTP API begins: nothing is kept until
    /// the returned guard drops, and everything is forgotten then.
    pub fn operator_write(self: &std::sync::Arc<Self>) -> OperatorWrite {
        let mut inner = self.lock();
        inner.writers += 1;
        inner.generation += 1;
        inner.devices.clear();
        OperatorWrite(self.clone())
    }

    /// Devices kept now.
    pub fn len(&self) -> usize {
        self.lock().devices.len()
    }

    /// Whether no device is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An operator write in progress ([`Memory::operator_write`]).
#[derive(Debug)]
pub struct OperatorWrite(std::sync::Arc<Memory>);

impl Drop for OperatorWrite {
    fn drop(&mut self) {
        let mut inner = self.0.lock();
        inner.writers -= 1;
        inner.generation += 1;
        inner.devices.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(key: &str) -> DeviceId {
        DeviceId::new("p", key).unwrap()
    }

    fn view_with(identity: &str, version: &str) -> RequestView {
        let mut v = RequestView::default();
        v.components.insert(identity.into(), version.into());
        v.updating.insert(identity.into());
        v
    }

    #[test]
    fn a_view_read_before_a_forget_is_not_kept() {
        let m = Memory::default();
        m.enable();
        let generation = m.lock().generation;
        m.forget(&id("other"));
        m.keep(&id("d"), generation, &view_with("mcu", "1"));
        assert!(m.is_empty());
        let generation = m.lock().generation;
        m.keep(&id("d"), generation, &view_with("mcu", "1"));
        assert_eq!(m.len(), 1);
        m.clear();
        assert!(m.is_empty());
    }

    #[test]
    fn nothing_is_kept_while_an_operator_writes() {
        let m = std::sync::Arc::new(Memory::default());
        m.enable();
        let generation = m.lock().generation;
        m.keep(&id("a"), generation, &view_with("mcu", "1"));
        let write = m.operator_write();
        assert!(m.is_empty(), "a write forgets what was kept");
        let during = m.lock().generation;
        m.keep(&id("b"), during, &view_with("mcu", "1"));
        assert!(m.is_empty(), "a view read during a write is not kept");
        drop(write);
        m.keep(&id("b"), during, &view_with("mcu", "1"));
        assert!(m.is_empty(), "nor once it ended");
        let after = m.lock().generation;
        m.keep(&id("b"), after, &view_with("mcu", "1"));
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn versions_write_through_a_kept_view_only() {
        let m = Memory::default();
        m.enable();
        let two = [("mcu".to_string(), "2".to_string())].into();
        m.versions(&id("d"), &two);
        assert!(m.is_empty(), "nothing to write through");
        let generation = m.lock().generation;
        m.keep(&id("d"), generation, &view_with("mcu", "1"));
        m.versions(&id("d"), &two);
        let kept = m.lock().devices.get(&id("d")).cloned().unwrap();
        assert_eq!(kept.components["mcu"], "2");
        m.forget(&id("d"));
        assert!(m.is_empty());
    }
}
