//! Which devices are connected to the embedded broker now, as its
//! connect/disconnect hooks tell. Counted, not flagged: a reconnecting device's
//! new session may be announced before its old one is gone.

use std::collections::HashMap;
use std::sync::Mutex;

use sota_protocol::DeviceId;

/// The connected devices.
#[derive(Debug, Default)]
pub struct Presence(Mutex<HashMap<DeviceId, u32>>);

impl Presence {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<DeviceId, u32>> {
        // A panic while holding the lock leaves plain counts behind; keep using them.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A session of `id` opened.
    pub fn connected(&self, id: DeviceId) {
        *self.sessions().entry(id).or_default() += 1;
    }

    /// `id` spoke: with an external broker, whose sessions the center cannot
    /// see, a device counts as connected once it sent a message.
    pub fn seen(&self, id: &DeviceId) {
        self.sessions().entry(id.clone()).or_insert(1);
    }

    /// A session of `id` closed.
    pub fn disconnected(&self, id: &DeviceId) {
        let mut s = self.sessions();
        if let Some(n) = s.get_mut(id) {
            *n -= 1;
            if *n == 0 {
                s.remove(id);
            }
        }
    }

    /// The devices with at least one session, sorted.
    pub fn devices(&self) -> Vec<DeviceId> {
        let mut v: Vec<DeviceId> = self.sessions().keys().cloned().collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_takeover_does_not_lose_the_device() {
        let p = Presence::default();
        let d = DeviceId::new("p", "d").unwrap();
        p.connected(d.clone());
        p.connected(d.clone()); // the new session, before the old one closes
        p.disconnected(&d);
        assert_eq!(p.devices(), std::slice::from_ref(&d));
        p.disconnected(&d);
        p.disconnected(&d);
        assert!(p.devices().is_empty());
    }
}
