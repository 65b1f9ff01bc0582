//! Several centers behind one external broker: which of them handles which device.
//!
//! Every center subscribes to every device's `up` topic, and each handles only the devices it
//! owns. A shared subscription (`$share/…`) would hand one device's messages to different
//! centers in turn, and their order (a request before its accept, statuses in sequence) would
//! be lost across processes; owning a device keeps all its messages in one lane of one process.
//! Ownership is rendezvous hashing of the device over the live instances (`instance.rs`): every
//! center computes the same owner from the same list, and when an instance dies only its devices
//! move, spread over the others. The list is read again every [`REFRESH`]; a dead center's
//! devices are unanswered until the others see it gone (its lock is freed when its process
//! dies, so within about [`REFRESH`]).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use sota_protocol::DeviceId;

use crate::api::AppState;

/// How often the live instances are read again.
pub const REFRESH: Duration = Duration::from_secs(1);

/// The live instances, as this center last read them.
#[derive(Debug)]
pub struct Share {
    me: String,
    live: RwLock<Vec<String>>,
}

impl Share {
    /// Alone until the first refresh.
    pub fn new(me: &str) -> Share {
        Share {
            me: me.to_string(),
            live: RwLock::new(vec![me.to_string()]),
        }
    }

    /// Whether this center handles `device`'s messages.
    pub fn owns(&self, device: &DeviceId) -> bool {
        let live = self.live.read().unwrap_or_else(|e| e.into_inner());
        owner(&live, device).is_none_or(|o| o == self.me)
    }

    /// Replace the list of live instances (this one always among them).
    pub fn set_live(&self, mut ids: Vec<String>) {
        if !ids.contains(&self.me) {
            ids.push(self.me.clone());
        }
        ids.sort();
        let mut live = self.live.write().unwrap_or_else(|e| e.into_inner());
        if *live != ids {
            tracing::info!(
                centers = ids.len(),
                "the centers sharing the devices changed: {ids:?}"
            );
            *live = ids;
        }
    }
}

/// The instance among `live` that owns `device`: the highest hash of (instance, device).
pub fn owner<'a>(live: &'a [String], device: &DeviceId) -> Option<&'a str> {
    live.iter()
        .max_by_key(|id| weight(id, device))
        .map(String::as_str)
}

/// A stable hash (the same in every build and process, unlike std's hasher).
fn weight(instance: &str, device: &DeviceId) -> [u8; 8] {
    let digest = Sha256::new()
        .chain_update(instance.as_bytes())
        .chain_update([0])
        .chain_update(device.product.as_bytes())
        .chain_update([0])
        .chain_update(device.device.as_bytes())
        .finalize();
    let mut w = [0; 8];
    w.copy_from_slice(&digest[..8]);
    w
}

/// Read the live instances every [`REFRESH`] until the process ends; a center whose row was
/// deleted while its database connection was broken writes it again.
pub async fn run(state: Arc<AppState>) {
    loop {
        match state.instance.live(&state.pool).await {
            Ok(live) => {
                if !live.iter().any(|(id, _)| id == state.instance.id()) {
                    if let Err(e) = state.instance.register_again(&state.pool).await {
                        tracing::warn!(
                            "cannot record this center among the live ones: {}",
                            e.message
                        );
                    }
                }
                state
                    .share
                    .set_live(live.into_iter().map(|(id, _)| id).collect());
            }
            Err(e) => tracing::warn!("cannot read the live centers: {}", e.message),
        }
        tokio::time::sleep(REFRESH).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{i:016x}")).collect()
    }

    #[test]
    fn devices_spread_over_centers_and_only_a_dead_ones_move() {
        let three = ids(3);
        let devices: Vec<DeviceId> = (0..3000)
            .map(|i| DeviceId::new("p", &format!("d{i}")).unwrap())
            .collect();
        let mut counts = [0; 3];
        for d in &devices {
            let o = owner(&three, d).unwrap();
            counts[three.iter().position(|i| i == o).unwrap()] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
        // Center 1 dies: its devices move, nobody else's does.
        let two = vec![three[0].clone(), three[2].clone()];
        for d in &devices {
            let before = owner(&three, d).unwrap();
            let after = owner(&two, d).unwrap();
            if before != three[1] {
                assert_eq!(before, after);
            }
        }
    }

    #[test]
    fn each_center_owns_what_the_others_say_it_owns() {
        let live = ids(2);
        let a = Share::new(&live[0]);
        let b = Share::new(&live[1]);
        let d = DeviceId::new("p", "d").unwrap();
        assert!(a.owns(&d) && b.owns(&d), "alone, each owns everything");
        a.set_live(live.clone());
        b.set_live(live.clone());
        assert!(a.owns(&d) != b.owns(&d), "together, exactly one does");
    }
}
