//! Several centers behind one external broker: which of them handles which device.
//!
//! Every center subscribes to every device's `up` topic, and each handles only the devices it
//! owns. A shared subscription (`$share/…`) would hand one device's messages to different
//! centers in turn, and their order (a request before its accept, statuses in sequence) would
//! be lost across processes; owning a device keeps all its messages in one lane of one process.
//! Ownership is rendezvous hashing of the device over the live centers that serve (subscribed
//! to the broker; `instance.rs`): every center computes the same owner from the same list, and
//! when one dies only its devices move, spread over the others. The list is read again every
//! [`REFRESH`]; a dead center's devices are unanswered until the others see it gone (its lock is
//! freed when its process dies, so within about [`REFRESH`]).
//!
//! Lists are read at different moments by different centers, so a moving device could for a
//! moment have two owners, or none. None is harmless (a device repeats a request that gets no
//! answer); two would break its order. So a center takes its share only [`SETTLE`] after it
//! announced itself, when every other center has seen it and let those devices go; and a center
//! that cannot keep its liveness lock (its database connection broke) owns nothing until it has
//! it again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sota_protocol::DeviceId;

use crate::api::AppState;

/// How often the live centers are read again.
pub const REFRESH: Duration = Duration::from_secs(1);
/// How long after announcing itself a center waits before taking its share: every other center
/// has read the list again by then.
pub const SETTLE: Duration = Duration::from_secs(2 * REFRESH.as_secs());

/// Printed on stdout once this center takes its share of the devices.
pub const SERVING: &str = "sota-center takes its share of the devices";

/// The serving centers, as this center last read them.
#[derive(Debug)]
pub struct Share {
    me: String,
    live: RwLock<Vec<String>>,
    /// When this center takes its share (set once it serves).
    from: Mutex<Option<Instant>>,
    /// Whether other centers are alive.
    others: AtomicBool,
}

impl Share {
    /// Owning nothing until it serves and has read the list.
    pub fn new(me: &str) -> Share {
        Share {
            me: me.to_string(),
            live: RwLock::new(Vec::new()),
            from: Mutex::new(None),
            others: AtomicBool::new(false),
        }
    }

    /// Whether this center handles `device`'s messages.
    pub fn owns(&self, device: &DeviceId) -> bool {
        let settled = self
            .from
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|from| Instant::now() >= from);
        let live = self.live.read().unwrap_or_else(|e| e.into_inner());
        settled && owner(&live, device) == Some(self.me.as_str())
    }

    /// Whether this center is the only one on the database, as last read.
    pub fn alone(&self) -> bool {
        !self.others.load(Ordering::Relaxed)
    }

    /// Replace the list of serving centers.
    pub fn set_live(&self, mut ids: Vec<String>) {
        ids.sort();
        let mut live = self.live.write().unwrap_or_else(|e| e.into_inner());
        if *live != ids {
            tracing::info!(
                centers = ids.len(),
                "the centers sharing the devices: {ids:?}"
            );
            *live = ids;
        }
    }

    /// This center serves from now on: it takes its share after [`SETTLE`].
    fn serve(&self) {
        let mut from = self.from.lock().unwrap_or_else(|e| e.into_inner());
        from.get_or_insert_with(|| Instant::now() + SETTLE);
    }

    fn serving(&self) -> bool {
        self.from
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }
}

/// The center among `live` that owns `device`: the highest hash of (center, device).
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

/// The center subscribed to the broker: announce it, so that it takes its share — at once
/// when it is alone (nobody to overlap with), else after [`SETTLE`].
pub async fn subscribed(state: &AppState) {
    let share = &state.share;
    if share.serving() {
        return;
    }
    if share.alone() {
        *share.from.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        share.set_live(vec![share.me.clone()]);
    }
    match state.instance.set_serving(&state.pool).await {
        Ok(()) => {
            share.serve();
            let from = *share.from.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(from) = from {
                tokio::time::sleep_until(from.into()).await;
            }
            // On stdout, after the banner: scripts and tests wait for it.
            println!("{SERVING}");
        }
        Err(e) => {
            tracing::error!(
                "cannot record this center as serving; it takes no devices: {}",
                e.message
            );
            *share.from.lock().unwrap_or_else(|e| e.into_inner()) = None;
            share.set_live(Vec::new());
        }
    }
}

/// Read the serving centers every [`REFRESH`] until the process ends (the first read is
/// [`refresh`], before subscribing). A center whose row was deleted while its database
/// connection was broken writes it again; if its slot was taken meanwhile it stops the process
/// (see [`crate::instance::Instance::register_again`]).
pub async fn run(state: Arc<AppState>) {
    loop {
        tokio::time::sleep(REFRESH).await;
        refresh(&state).await;
    }
}

/// Read the serving centers once.
pub async fn refresh(state: &AppState) {
    let (instance, pool) = (&state.instance, &state.pool);
    if let Err(e) = instance.keep_alive(pool).await {
        tracing::warn!(
            "this center's liveness lock is lost; it takes no devices: {}",
            e.message
        );
        state.share.set_live(Vec::new());
        return;
    }
    let live = match instance.live(pool).await {
        Ok(live) => live,
        Err(e) => {
            tracing::warn!(
                "cannot read the live centers; they take no devices here: {}",
                e.message
            );
            state.share.set_live(Vec::new());
            return;
        }
    };
    if !live.iter().any(|c| c.id == instance.id()) {
        if let Err(e) = instance.register_again(pool, state.share.serving()).await {
            tracing::error!("{}", e.message);
            eprintln!("sota-center: {}", e.message);
            std::process::exit(1);
        }
        // Counted again from the next read, when the others have seen it too.
        state.share.set_live(Vec::new());
        return;
    }
    state.share.others.store(live.len() > 1, Ordering::Relaxed);
    state.share.set_live(
        live.into_iter()
            .filter(|c| c.serving)
            .map(|c| c.id)
            .collect(),
    );
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
    fn each_center_owns_what_the_others_say_it_owns_once_settled() {
        let live = ids(2);
        let a = Share::new(&live[0]);
        let b = Share::new(&live[1]);
        let d = DeviceId::new("p", "d").unwrap();
        a.set_live(live.clone());
        b.set_live(live.clone());
        assert!(!a.owns(&d) && !b.owns(&d), "neither serves yet");
        for s in [&a, &b] {
            *s.from.lock().unwrap() = Some(Instant::now());
        }
        assert!(a.owns(&d) != b.owns(&d), "together, exactly one does");
        a.serve();
        assert!(a.serving(), "serving stays set");
        // A center that is not in the list it read (its row was deleted) owns nothing.
        b.set_live(vec![live[0].clone()]);
        assert!(!b.owns(&d));
    }
}
