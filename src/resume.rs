//! An upgrade that outlives its page: what a reloaded (or crashed) page needs to continue an
//! upgrade from the center, kept in browser storage beside the image. The flow decides what a
//! snapshot holds and how it continues ([`AtUpgrade::restore`]); this module only keeps it,
//! describes it to the technician, and forgets it when the upgrade ends.
//!
//! Only upgrades from the center are kept: a local file is not in browser storage (the picked
//! file cannot be opened again without the technician), and the page's simulated MCU ends with
//! the page.

use crate::adapters::serial::SerialSettings;
use crate::adapters::storage::Storage;
use crate::center::CenterSettings;
use serde::{Deserialize, Serialize};
use sota_engine::StateKind;
use sota_flow::{AtSnapshot, CenterSnapshot};
use std::cell::RefCell;

/// The storage record: one upgrade in progress per browser profile (one board on the cable).
const RECORD: &str = "resume";

/// What is kept.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Saved {
    /// The board's USB vendor and product id, to find its port again.
    pub usb: Option<(u16, u16)>,
    /// The serial settings it was opened with.
    pub serial: SerialSettings,
    /// The center and the device's credentials.
    pub center: CenterSettings,
    /// The flow: session, firmware info, the MCU's settings.
    pub at: AtSnapshot,
    /// The plans the center gave (their ids name every report).
    pub link: CenterSnapshot,
    /// Link time when saved, in ms: the continued upgrade's clock goes on from here, so the
    /// session's deadlines neither shrink nor grow by the reload.
    pub at_ms: u64,
}

/// What the page tells the technician about a kept upgrade.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Component.
    pub component: String,
    /// Version it goes to.
    pub target: String,
    /// True: the MCU was reading it; false: it was downloading.
    pub transferring: bool,
    /// Bytes done (downloaded, or confirmed by the MCU).
    pub done: u64,
    /// Image size.
    pub total: u64,
}

impl Saved {
    /// The summary, if the snapshot is of an upgrade in progress.
    pub fn summary(&self) -> Option<Summary> {
        let session = self.at.session();
        let plan = session.current_plan()?;
        let transferring = session.state() == StateKind::Transferring;
        Some(Summary {
            component: plan.identity.clone(),
            target: plan.target_version.clone(),
            transferring,
            done: session
                .transfer_offset()
                .or(session.download_offset())
                .unwrap_or(0),
            total: plan.package_size,
        })
    }
}

thread_local! {
    /// The kept upgrade found when the page loaded, until the technician continues or drops it.
    static FOUND: RefCell<Option<Saved>> = const { RefCell::new(None) };
}

/// Looks for a kept upgrade; its summary when there is one to offer.
pub async fn find() -> Option<Summary> {
    let storage = Storage::open().await.ok()?;
    let text = storage.record(RECORD).await.ok()??;
    let Ok(saved) = serde_json::from_str::<Saved>(&text) else {
        // Another version of the console wrote it: it cannot be continued.
        let _ = storage.delete_record(RECORD).await;
        return None;
    };
    let summary = saved.summary()?;
    FOUND.with(|f| *f.borrow_mut() = Some(saved));
    Some(summary)
}

/// The kept upgrade, taken to be continued.
pub fn take() -> Option<Saved> {
    FOUND.with(|f| f.borrow_mut().take())
}

/// Puts a taken upgrade back (its board could not be opened).
pub fn put_back(saved: Saved) {
    FOUND.with(|f| *f.borrow_mut() = Some(saved));
}

/// Keeps `saved` (in the background; IndexedDB runs write transactions on one store in the
/// order they were opened, so the last one kept is the last one asked for).
pub fn keep(storage: &Storage, saved: &Saved) {
    let Ok(text) = serde_json::to_string(saved) else {
        return;
    };
    let storage = storage.clone();
    wasm_bindgen_futures::spawn_local(async move {
        if let Err(e) = storage.put_record(RECORD, &text).await {
            web_sys::console::warn_1(&format!("the upgrade could not be kept: {e}").into());
        }
    });
}

/// Forgets the kept upgrade: it ended, or the technician dropped it.
pub fn forget(storage: &Storage) {
    let storage = storage.clone();
    wasm_bindgen_futures::spawn_local(async move {
        let _ = storage.delete_record(RECORD).await;
    });
}
