//! Several centers behind one external broker: which of them handles which device.
//!
//! Every center subscribes to every device's `up` topic, and each handles only the devices it
//! owns. A shared subscription (`$share/…`) would hand one device's messages to different
//! centers in turn, and their order (a request before its accept, statuses in sequence) would
//! be lost across processes; owning a device keeps all its messages in one lane of one process.
//! Ownership is rendezvous hashing of the device over the live centers that serve (subscribed
//! to the broker; `instance.rs`): every center computes the same owner from the same list, and
//! when one dies only its devices move, spread over the others.
//!
//! Lists are read at different moments by different centers, so a moving device could for a
//! moment have two owners, or none. None is harmless (a device repeats a request that gets no
//! answer); two would break its order. Three rules keep it at none:
//!
//! - A read of the list is a lease: a center owns devices only until [`LEASE`] after the start
//!   of its last good read (its own liveness lock checked, the list read). A center that cannot
//!   read — its database connection broke, its reads hang — stops owning within [`LEASE`].
//! - A center that went missing from the list keeps its devices, in the others' eyes, for
//!   [`LEASE`] after they first miss it: by then its own lease has run out.
//! - A center joining (or coming back after its lock broke) takes its share only [`SETTLE`]
//!   after it announced itself: by then every other center has read the list again, or its
//!   lease has run out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sota_protocol::DeviceId;

use crate::api::AppState;

/// How often the live centers are read again.
pub const REFRESH: Duration = Duration::from_secs(1);
/// How long a good read of the list lets a center own devices (a few reads, so one slow read
/// does not stop it).
pub const LEASE: Duration = Duration::from_secs(3);
/// A read that takes longer than this is given up (and the lease left to run out).
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How long after announcing itself a center waits before taking its share.
pub const SETTLE: Duration = Duration::from_secs(LEASE.as_secs() + 1);

/// Printed on stdout once this center takes its share of the devices.
pub const SERVING: &str = "sota-center takes its share of the devices";

/// Which devices this center handles, as its reads of the list decide.
#[derive(Debug)]
pub struct Share {
    me: String,
    /// Behind an external broker: shares apply (else this center handles every device).
    enabled: AtomicBool,
    view: Mutex<View>,
}

#[derive(Debug, Default)]
struct View {
    /// The serving centers as last read.
    serving: Vec<String>,
    /// Centers missing from the list since then, kept as owners for [`LEASE`].
    departed: Vec<(String, Instant)>,
    /// `serving` and `departed` together, sorted: who owns devices.
    owners: Vec<String>,
    /// The lease of the last good read.
    until: Option<Instant>,
    /// Subscribed to the broker.
    subscribed: bool,
    /// When this center takes its share (`None`: it does not serve).
    from: Option<Instant>,
    /// Whether the last good read found this center alone (`None`: nothing read yet).
    alone: Option<bool>,
    /// [`serve`] is announcing it now.
    announcing: bool,
}

impl Share {
    /// Owning nothing until it serves and has read the list.
    pub fn new(me: &str) -> Share {
        Share {
            me: me.to_string(),
            enabled: AtomicBool::new(false),
            view: Mutex::new(View::default()),
        }
    }

    fn view(&self) -> std::sync::MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Shares apply from now on (an external broker).
    pub fn enable(&self) {
        self.enabled.store(true, Ordering::Relaxed);
    }

    /// Whether this center handles `device`'s messages: always with its own broker; behind an
    /// external one, when it owns the device.
    pub fn handles(&self, device: &DeviceId) -> bool {
        !self.enabled.load(Ordering::Relaxed) || self.owns(device, Instant::now())
    }

    fn owns(&self, device: &DeviceId, now: Instant) -> bool {
        let v = self.view();
        v.from.is_some_and(|from| now >= from)
            && v.until.is_some_and(|until| now < until)
            && owner(&v.owners, device) == Some(self.me.as_str())
    }

    /// Whether the last read found this center alone on the database (false before any read).
    pub fn alone(&self) -> bool {
        self.view().alone == Some(true)
    }

    /// A good read of the list that started at `started`: `serving` are the serving centers.
    fn read(&self, started: Instant, mut serving: Vec<String>, alone: bool) {
        serving.sort();
        let now = Instant::now();
        let mut v = self.view();
        let missing: Vec<String> = v
            .serving
            .iter()
            .filter(|id| !serving.contains(id) && !v.departed.iter().any(|(d, _)| d == *id))
            .cloned()
            .collect();
        v.departed.extend(missing.into_iter().map(|id| (id, now)));
        v.departed
            .retain(|(id, since)| now < *since + LEASE && !serving.contains(id));
        let mut owners: Vec<String> = serving
            .iter()
            .cloned()
            .chain(v.departed.iter().map(|(id, _)| id.clone()))
            .collect();
        owners.sort();
        if owners != v.owners {
            tracing::info!(
                centers = owners.len(),
                "the centers sharing the devices: {owners:?}"
            );
        }
        v.owners = owners;
        v.serving = serving;
        v.until = Some(started + LEASE);
        v.alone = Some(alone);
    }

    /// No good read: own nothing until the next one.
    fn lost(&self) {
        self.view().until = None;
    }

    /// This center's lock was taken again, or its row written again: the others may have let
    /// it go, so it takes its share only after [`SETTLE`], as when it joined.
    fn settle_again(&self) {
        let mut v = self.view();
        if v.from.is_some() {
            v.from = Some(Instant::now() + SETTLE);
        }
        v.until = None;
    }

    fn serving(&self) -> bool {
        self.view().from.is_some()
    }

    /// Whether this center is subscribed and announced as serving.
    pub fn serving_now(&self) -> bool {
        let v = self.view();
        v.subscribed && v.from.is_some()
    }
}

/// The center among `owners` that owns `device`: the highest hash of (center, device).
pub fn owner<'a>(owners: &'a [String], device: &DeviceId) -> Option<&'a str> {
    owners
        .iter()
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

/// The center subscribed to the broker: announce it, so that it takes its share.
pub async fn subscribed(state: &AppState) {
    state.share.view().subscribed = true;
    serve(state).await;
}

/// The center lost the broker: it serves no more (the others take its devices) until it
/// subscribes again.
pub async fn unsubscribed(state: &AppState) {
    {
        let mut v = state.share.view();
        if !v.subscribed {
            return;
        }
        v.subscribed = false;
        v.from = None;
    }
    if let Err(e) = state.instance.set_serving(&state.pool, false).await {
        tracing::warn!(
            "cannot record that this center lost the broker: {}",
            e.message
        );
    }
}

/// Announce a subscribed center as serving; it takes its share at once when it is alone
/// (nobody to overlap with), else after [`SETTLE`]. Tried again at each read until it works.
async fn serve(state: &AppState) {
    let share = &state.share;
    {
        let mut v = share.view();
        if !v.subscribed || v.from.is_some() || v.announcing {
            return;
        }
        v.announcing = true;
    }
    let recorded = state.instance.set_serving(&state.pool, true).await;
    share.view().announcing = false;
    if let Err(e) = recorded {
        tracing::warn!(
            "cannot record this center as serving; trying again: {}",
            e.message
        );
        return;
    }
    let from = {
        let mut v = share.view();
        let from = if v.alone == Some(true) {
            // Counted at once by this center; the others' next read sees it serve.
            v.serving = vec![share.me.clone()];
            v.owners = v.serving.clone();
            Instant::now()
        } else {
            Instant::now() + SETTLE
        };
        v.from = Some(from);
        from
    };
    tokio::time::sleep_until(from.into()).await;
    // On stdout, after the banner: scripts and tests wait for it.
    println!("{SERVING}");
}

/// Read the serving centers every [`REFRESH`] until the process ends (the first read is
/// [`refresh`], before subscribing).
pub async fn run(state: Arc<AppState>) {
    loop {
        tokio::time::sleep(REFRESH).await;
        refresh(&state).await;
        let state = state.clone();
        tokio::spawn(async move { serve(&state).await });
    }
}

/// Read the serving centers once. A center whose row was deleted while its database
/// connection was broken writes it again; if its slot was taken meanwhile it stops the process
/// (see [`crate::instance::Instance::register_again`]).
pub async fn refresh(state: &AppState) {
    let (instance, pool, share) = (&state.instance, &state.pool, &state.share);
    let started = Instant::now();
    let read = tokio::time::timeout(READ_TIMEOUT, async {
        instance.keep_alive(pool).await?;
        instance.live(pool).await
    })
    .await;
    let live = match read {
        Ok(Ok(read)) => read,
        Ok(Err(e)) => {
            tracing::warn!(
                "cannot read the live centers; this one takes no devices: {}",
                e.message
            );
            share.lost();
            return;
        }
        Err(_) => {
            tracing::warn!("reading the live centers took over {READ_TIMEOUT:?}; this one takes no devices meanwhile");
            share.lost();
            return;
        }
    };
    if instance.take_relocked() {
        share.settle_again();
    }
    if !live.iter().any(|c| c.id == instance.id()) {
        match instance.register_again(pool, share.serving()).await {
            Ok(()) => share.settle_again(),
            Err(e) if e.code == "slot_taken" => {
                tracing::error!("{}", e.message);
                eprintln!("sota-center: {}", e.message);
                std::process::exit(1);
            }
            Err(e) => {
                tracing::warn!(
                    "cannot record this center among the live ones: {}",
                    e.message
                );
                share.lost();
            }
        }
        return;
    }
    let alone = live.len() == 1;
    let serving = live
        .into_iter()
        .filter(|c| c.serving)
        .map(|c| c.id)
        .collect();
    share.read(started, serving, alone);
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

    fn serving_since(share: &Share, at: Instant) {
        share.view().from = Some(at);
    }

    #[test]
    fn each_center_owns_what_the_others_say_it_owns_while_its_lease_holds() {
        let live = ids(2);
        let (a, b) = (Share::new(&live[0]), Share::new(&live[1]));
        let d = DeviceId::new("p", "d").unwrap();
        let now = Instant::now();
        for s in [&a, &b] {
            s.read(now, live.clone(), false);
        }
        assert!(!a.owns(&d, now) && !b.owns(&d, now), "neither serves yet");
        for s in [&a, &b] {
            serving_since(s, now);
        }
        assert!(
            a.owns(&d, now) != b.owns(&d, now),
            "together, exactly one does"
        );
        let owner = if a.owns(&d, now) { &a } else { &b };
        assert!(
            !owner.owns(&d, now + LEASE),
            "no read for a lease: it owns nothing"
        );
        owner.lost();
        assert!(!owner.owns(&d, now));
    }

    #[test]
    fn a_center_gone_from_the_list_keeps_its_devices_for_a_lease() {
        let live = ids(2);
        let a = Share::new(&live[0]);
        let now = Instant::now();
        serving_since(&a, now);
        a.read(now, live.clone(), false);
        // A device of the other center.
        let d = (0..)
            .map(|i| DeviceId::new("p", &format!("d{i}")).unwrap())
            .find(|d| owner(&live, d) == Some(live[1].as_str()))
            .unwrap();
        a.read(Instant::now(), vec![live[0].clone()], true);
        assert!(
            !a.owns(&d, Instant::now()),
            "not before the other's lease ran out"
        );
        // A lease later (the miss recorded a lease ago), the next read lets it go.
        a.view().departed[0].1 -= LEASE;
        a.read(Instant::now(), vec![live[0].clone()], true);
        assert!(a.owns(&d, Instant::now()), "then it is taken over");
    }

    #[test]
    fn a_center_whose_lock_was_taken_again_waits_before_owning() {
        let me = ids(1);
        let a = Share::new(&me[0]);
        let d = DeviceId::new("p", "d").unwrap();
        let now = Instant::now();
        serving_since(&a, now);
        a.read(now, me.clone(), true);
        assert!(a.owns(&d, now));
        a.settle_again();
        assert!(!a.owns(&d, Instant::now()), "its lease is void");
        let read = Instant::now();
        a.read(read, me.clone(), true);
        assert!(!a.owns(&d, read), "settling");
        let settled = a.view().from.unwrap();
        assert!(settled >= read + SETTLE - Duration::from_millis(100));
        a.read(settled, me.clone(), true);
        assert!(a.owns(&d, settled), "settled");
    }
}
