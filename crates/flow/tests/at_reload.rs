//! A console page reloaded at every moment of an AT SOTA transfer: the `AtUpgrade` is dropped
//! with the bytes in flight either way, the MCU (`sota_sim`'s AT MCU) goes on alone for a
//! while, and a new instance is restored from the snapshot the page kept last (or the one
//! before, when the last write had not landed), its storage answering at once or late, its
//! first bytes to the MCU delivered or lost. Every cut must still end in the MCU running
//! exactly the image: no piece is taken that the MCU did not read, and none it read is refused.

use core::time::Duration;
use sota_engine::{
    ComponentType, Config as EngineConfig, Digester, DownloadMode, FirmwareInfo, Outcome, Plan,
    Session, StateKind,
};
use sota_flow::io::{serve, Source};
use sota_flow::{AtSnapshot, AtUpgrade, Io, MemoryStore};
use sota_link::at_sota::Config;
use sota_link::Endpoint;
use sota_sim::at_mcu::{AtMcu, McuConfig, McuOutcome};
use sota_sim::test_image as image;

const URL: &str = "file:///fw.bin";

struct File(Vec<u8>);

impl Source for File {
    fn read(&mut self, _url: &str, start: u64, end: u64) -> Result<Vec<u8>, String> {
        let end = end.min(self.0.len() as u64);
        Ok(self.0[start as usize..end as usize].to_vec())
    }
}

/// What `src/run.rs` compares to decide whether to keep the snapshot again.
type Mark = (StateKind, Option<u64>, Option<u64>);

/// The console's page: the upgrade, its image store, and the snapshots it kept.
struct Page {
    up: AtUpgrade,
    plan: Plan,
    info: FirmwareInfo,
    file: File,
    store: MemoryStore,
    /// Snapshots as JSON, in the order the page kept them.
    kept: Vec<(Mark, String)>,
    mark: Option<Mark>,
}

impl Page {
    fn new(firmware: &[u8], piece_size: u32) -> Self {
        let d = Digester::digest(firmware);
        let size = firmware.len() as u64;
        let config = EngineConfig {
            piece_size,
            ..EngineConfig::default()
        };
        Page {
            up: AtUpgrade::new(Config::default(), Session::new(config, Vec::new())),
            plan: Plan {
                identity: "STM32".into(),
                component_type: ComponentType::Mcu,
                source_version: String::new(),
                target_version: "2_0_0".into(),
                min_battery: 30,
                min_signal_dbm: -113,
                space_needed: size,
                package_size: size,
                download_retries: None,
            },
            info: FirmwareInfo {
                identity: "STM32".into(),
                version: "2_0_0".into(),
                md5: d.md5,
                crc32: d.crc32,
                sha256: d.sha256,
                url: URL.into(),
                size,
                mode: DownloadMode::ConsoleDownloads,
            },
            file: File(firmware.to_vec()),
            store: MemoryStore::default(),
            kept: Vec::new(),
            mark: None,
        }
    }

    fn serve(&mut self, now: Duration) {
        let (plan, info) = (&self.plan, &self.info);
        serve(
            &mut self.up,
            &mut self.file,
            &mut self.store,
            now,
            |up, io| match io {
                Io::NeedPlans { .. } => up.provide_plans(vec![plan.clone()], now).unwrap(),
                Io::NeedFirmwareInfo { .. } => up.provide_info(info.clone(), now).unwrap(),
                Io::Report(_) => {}
                other => panic!("serve passed on {other:?}"),
            },
        );
    }

    /// As `src/run.rs` keeps it: whenever the state, the confirmed offset or the downloaded
    /// MiB changed.
    fn keep(&mut self) {
        let Some(snapshot) = self.up.snapshot() else {
            return;
        };
        let s = snapshot.session();
        let mark = (
            s.state(),
            s.transfer_offset(),
            s.download_offset().map(|o| o >> 20),
        );
        if self.mark != Some(mark) {
            self.mark = Some(mark);
            self.kept
                .push((mark, serde_json::to_string(&snapshot).unwrap()));
        }
    }
}

/// Where the page goes away.
#[derive(Clone, Copy, Debug)]
struct Cut {
    /// The exchange (one batch of bytes one way) lost with the page.
    at: u64,
    /// The new page takes up the snapshot before the last (the last write had not landed).
    stale: bool,
    /// How long the MCU is alone.
    gap: Duration,
    /// The new page's storage answers only after the MCU's next bytes.
    late_io: bool,
    /// The new page's first bytes to the MCU are lost too (its port was not through yet).
    first_lost: bool,
}

struct Run {
    mcu: AtMcu,
    page: Page,
    /// (exchange, confirmed offset) each time the confirmed offset moved.
    confirmed: Vec<(u64, u64)>,
    /// The offset confirmed in the snapshot the new page took up.
    restored_at: Option<u64>,
}

/// Time one batch of bytes takes on the line.
const HOP: Duration = Duration::from_millis(5);

fn run(firmware: &[u8], piece_size: u32, cut: Option<Cut>) -> Run {
    let mut now = Duration::ZERO;
    let mut mcu = AtMcu::new(McuConfig::default(), now);
    let mut page = Page::new(firmware, piece_size);
    let mut exchanges = 0u64;
    let mut confirmed = Vec::new();
    let mut restored_at = None;
    let mut hold_io = false;
    let mut drop_out = false;
    let limit = Duration::from_secs(3600);
    while now < limit && !(mcu.outcome().is_some() && page.up.is_done()) {
        if !hold_io {
            page.serve(now);
        }
        let mut moved = false;
        let mut cut_now = false;
        let mut bytes = Vec::new();
        page.up.poll_transmit(&mut bytes);
        if !bytes.is_empty() {
            moved = true;
            exchanges += 1;
            if cut.is_some_and(|c| c.at == exchanges) {
                cut_now = true;
            } else if !std::mem::take(&mut drop_out) {
                mcu.handle_input(now, &bytes);
            }
        }
        let mut bytes = Vec::new();
        mcu.poll_transmit(&mut bytes);
        if !cut_now && !bytes.is_empty() {
            moved = true;
            exchanges += 1;
            if cut.is_some_and(|c| c.at == exchanges) {
                cut_now = true;
            } else {
                page.up.handle_input(now, &bytes);
                hold_io = false;
                page.serve(now);
            }
        }
        let offset = page.up.session().transfer_offset();
        if let Some(o) = offset {
            if confirmed.last().is_none_or(|(_, last)| *last != o) {
                confirmed.push((exchanges, o));
            }
        }
        if !cut_now {
            page.keep();
        }
        if let (true, Some(c)) = (cut_now, cut) {
            // The page is gone; the MCU goes on alone and what it sends is lost.
            let back = now + c.gap;
            while let Some(t) = mcu.poll_timeout().filter(|t| *t <= back) {
                now = now.max(t);
                mcu.handle_timeout(now);
                mcu.poll_transmit(&mut Vec::new());
            }
            now = back;
            let last = page.kept.len() - 1;
            let earlier = last
                .checked_sub(1)
                .filter(|i| page.kept[*i].0 .0 == StateKind::Transferring);
            let i = earlier.filter(|_| c.stale).unwrap_or(last);
            let (mark, json) = page.kept[i].clone();
            assert_eq!(mark.0, StateKind::Transferring, "cut {c:?}");
            restored_at = mark.1;
            let snapshot: AtSnapshot = serde_json::from_str(&json).unwrap();
            let stored = firmware.len() as u64;
            page.up = AtUpgrade::restore(Config::default(), snapshot, stored, now);
            page.kept.truncate(i + 1);
            page.mark = None;
            hold_io = c.late_io;
            drop_out = c.first_lost;
            continue;
        }
        if moved {
            now += HOP;
            // Waits that expired meanwhile.
            if page.up.poll_timeout().is_some_and(|t| t <= now) {
                page.up.handle_timeout(now);
            }
            if mcu.poll_timeout().is_some_and(|t| t <= now) {
                mcu.handle_timeout(now);
            }
            continue;
        }
        let next = [page.up.poll_timeout(), mcu.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let Some(next) = next else { break };
        now = now.max(next);
        page.up.handle_timeout(now);
        mcu.handle_timeout(now);
    }
    Run {
        mcu,
        page,
        confirmed,
        restored_at,
    }
}

/// Why a run did not end with the MCU running the image, if it did not.
fn failure(firmware: &[u8], r: &Run) -> Option<String> {
    let results: Vec<_> = r.page.up.session().results().to_vec();
    let ok = r.mcu.outcome()
        == Some(&McuOutcome::Updated {
            version: "2_0_0".into(),
        })
        && r.mcu.flash() == firmware
        && results.len() == 1
        && results[0].outcome == Outcome::Succeeded;
    (!ok).then(|| {
        format!(
            "restored at {:?}: MCU {:?} ({} B received, flash {} B), session {:?}",
            r.restored_at,
            r.mcu.outcome(),
            r.mcu.firmware_bytes_received(),
            r.mcu.flash().len(),
            results.iter().map(|r| &r.outcome).collect::<Vec<_>>()
        )
    })
}

/// Cuts in pieces 2 to 4 (every one, or within `near` exchanges of a piece's confirmation),
/// with each kind of page and each of `gaps` (ms; shorter than the MCU's 5 tries 2 s apart).
fn cut_in_pieces_2_to_4(len: usize, piece_size: u32, near: Option<u64>, gaps: &[u64]) {
    let firmware = image(len, 7);
    let whole = run(&firmware, piece_size, None);
    assert_eq!(failure(&firmware, &whole), None);
    let p = u64::from(piece_size);
    let at = |offset: u64| {
        whole
            .confirmed
            .iter()
            .find(|(_, o)| *o == offset)
            .map(|(e, _)| *e)
            .unwrap()
    };
    let (from, to) = (at(p) + 1, at(4 * p) + 8);
    let cuts: Vec<u64> = match near {
        None => (from..=to).collect(),
        Some(n) => (from..=to)
            .filter(|k| (2..=4).any(|i| at(i * p).abs_diff(*k) <= n))
            .collect(),
    };
    let mut failed = Vec::new();
    let mut runs = 0;
    for k in cuts {
        for stale in [false, true] {
            for &gap in gaps {
                for (late_io, first_lost) in [(false, false), (true, false), (false, true)] {
                    let cut = Cut {
                        at: k,
                        stale,
                        gap: Duration::from_millis(gap),
                        late_io,
                        first_lost,
                    };
                    let r = run(&firmware, piece_size, Some(cut));
                    runs += 1;
                    if let Some(why) = failure(&firmware, &r) {
                        failed.push(format!("{cut:?}: {why}"));
                    }
                }
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {runs} cuts failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

#[test]
fn a_page_reloaded_at_any_moment_of_the_transfer_ends_with_the_mcu_running_the_image() {
    // Pieces of four reads: every exchange of pieces 2 to 4.
    cut_in_pieces_2_to_4(5 * 4096 + 100, 4096, None, &[800, 3_000, 7_000]);
}

#[test]
fn a_page_reloaded_around_a_64_kib_piece_boundary_ends_with_the_mcu_running_the_image() {
    // The console's piece size: the exchanges around each confirmation of pieces 2 to 4.
    cut_in_pieces_2_to_4(4 * 65_536 + 1_000, 65_536, Some(4), &[800]);
}
