//! Versions a device reported whose write is not on disk yet.
//!
//! A device sends its versions and its plan request back to back. The request
//! must see the versions, but waiting for their commit (a disk flush) before
//! handling it made every request wait for the disk. So a versions report is
//! queued for the group commit without waiting, kept here until it is
//! committed, and a plan request lays these over what it reads from the database. A
//! report that fails to commit is dropped from here and logged; the device
//! reports its versions again on its next connection.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// Per device row id: the latest report's generation and the versions in flight.
#[derive(Debug, Default)]
pub struct Reported(Mutex<Overlays>);

#[derive(Debug, Default)]
struct Overlays {
    next: u64,
    devices: HashMap<i64, (u64, BTreeMap<String, String>)>,
}

impl Reported {
    fn lock(&self) -> std::sync::MutexGuard<'_, Overlays> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hold `components` for `device_id` until [`Self::settled`] is called with
    /// the generation returned here; later reports override earlier ones.
    pub fn hold(&self, device_id: i64, components: &BTreeMap<String, String>) -> u64 {
        let mut o = self.lock();
        o.next += 1;
        let generation = o.next;
        let entry = o.devices.entry(device_id).or_default();
        entry.0 = generation;
        entry
            .1
            .extend(components.iter().map(|(k, v)| (k.clone(), v.clone())));
        generation
    }

    /// The write of `generation` is committed (or failed): drop what is held,
    /// unless a later report of the same device is still in flight.
    pub fn settled(&self, device_id: i64, generation: u64) {
        let mut o = self.lock();
        if o.devices
            .get(&device_id)
            .is_some_and(|(g, _)| *g == generation)
        {
            o.devices.remove(&device_id);
        }
    }

    /// The versions in flight for `device_id` (lay them over what the database says).
    pub fn held(&self, device_id: i64) -> BTreeMap<String, String> {
        self.lock()
            .devices
            .get(&device_id)
            .map(|(_, held)| held.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_report_is_held_until_its_write_settles() {
        let r = Reported::default();
        let g = r.hold(7, &versions(&[("mcu", "2")]));
        assert_eq!(r.held(7), versions(&[("mcu", "2")]));
        assert!(r.held(8).is_empty(), "another device has nothing held");
        r.settled(7, g);
        assert!(r.held(7).is_empty());
    }

    #[test]
    fn an_earlier_report_settling_keeps_a_later_one() {
        let r = Reported::default();
        let first = r.hold(7, &versions(&[("mcu", "2")]));
        let second = r.hold(7, &versions(&[("mcu", "3"), ("ble", "6")]));
        r.settled(7, first);
        assert_eq!(r.held(7), versions(&[("mcu", "3"), ("ble", "6")]));
        r.settled(7, second);
        assert!(r.held(7).is_empty());
    }
}
