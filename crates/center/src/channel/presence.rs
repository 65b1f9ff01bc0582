//! Which devices are connected to the embedded broker now, as its
//! connect/disconnect hooks tell. Counted, not flagged: a reconnecting device's
//! new session may be announced before its old one is gone. Kept per product,
//! so a push cycle takes one product's connected devices without sorting or
//! scanning the others.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use sota_protocol::DeviceId;

/// Product key → device key → open sessions.
type Sessions = HashMap<String, HashMap<String, u32>>;

/// The connected devices.
#[derive(Debug, Default)]
pub struct Presence(Mutex<Sessions>);

impl Presence {
    fn sessions(&self) -> std::sync::MutexGuard<'_, Sessions> {
        // A panic while holding the lock leaves plain counts behind; keep using them.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A session of `id` opened.
    pub fn connected(&self, id: DeviceId) {
        *self
            .sessions()
            .entry(id.product)
            .or_default()
            .entry(id.device)
            .or_default() += 1;
    }

    /// `id` spoke: with an external broker, whose sessions the center cannot
    /// see, a device counts as connected once it sent a message.
    pub fn seen(&self, id: &DeviceId) {
        self.sessions()
            .entry(id.product.clone())
            .or_default()
            .entry(id.device.clone())
            .or_insert(1);
    }

    /// A session of `id` closed.
    pub fn disconnected(&self, id: &DeviceId) {
        let mut s = self.sessions();
        let Some(devices) = s.get_mut(&id.product) else {
            return;
        };
        if let Some(n) = devices.get_mut(&id.device) {
            *n -= 1;
            if *n == 0 {
                devices.remove(&id.device);
                if devices.is_empty() {
                    s.remove(&id.product);
                }
            }
        }
    }

    /// Whether `id` has at least one session.
    pub fn is_connected(&self, id: &DeviceId) -> bool {
        self.has(&id.product, &id.device)
    }

    /// The keys of one product's connected devices (a copy).
    pub fn devices_of(&self, product: &str) -> HashSet<String> {
        self.sessions()
            .get(product)
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether `product`'s device `device` has at least one session.
    pub fn has(&self, product: &str, device: &str) -> bool {
        self.sessions()
            .get(product)
            .is_some_and(|d| d.contains_key(device))
    }

    /// Whether any device of `product` is connected.
    pub fn any_of(&self, product: &str) -> bool {
        self.sessions().contains_key(product)
    }

    /// The devices with at least one session, sorted.
    pub fn devices(&self) -> Vec<DeviceId> {
        let mut v: Vec<DeviceId> = self
            .sessions()
            .iter()
            .flat_map(|(p, devices)| devices.keys().filter_map(move |d| DeviceId::new(p, d)))
            .collect();
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
        assert!(p.is_connected(&d));
        p.disconnected(&d);
        p.disconnected(&d);
        assert!(p.devices().is_empty());
        assert!(!p.is_connected(&d));
        assert!(p.devices_of("p").is_empty());
    }

    #[test]
    fn devices_are_kept_per_product() {
        let p = Presence::default();
        for (product, device) in [("a", "1"), ("a", "2"), ("b", "1")] {
            p.connected(DeviceId::new(product, device).unwrap());
        }
        p.seen(&DeviceId::new("c", "9").unwrap());
        p.seen(&DeviceId::new("a", "1").unwrap());
        assert_eq!(
            p.devices_of("a"),
            HashSet::from(["1".to_string(), "2".to_string()])
        );
        assert_eq!(p.devices_of("c"), HashSet::from(["9".to_string()]));
        assert!(p.devices_of("z").is_empty());
        assert!(p.any_of("b") && !p.any_of("z"));
        assert!(p.has("a", "2") && !p.has("a", "3") && !p.has("z", "1"));
        assert_eq!(p.devices().len(), 4);
    }
}
