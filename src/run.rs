//! The browser adapter of `sota-flow`: one loop per connection that moves bytes between the
//! port and the flow, carries out the flow's I/O requests (reading the picked file), and
//! writes what the flow reports into the [`Model`]. It decides nothing: every "what next"
//! comes from `sota-flow`, the engine and the link protocols.

use crate::adapters::clock::{self, sleep};
use crate::adapters::file::{for_each_chunk, read_range};
use crate::adapters::page;
use crate::adapters::port::{Incoming, Port};
use crate::center::{CenterSession, CenterSettings};
use crate::model::{CenterLinkState, Ending, Link, Model, Protocol};
use crate::resume::{self, Saved};
use core::future::Future;
use core::pin::Pin;
use core::time::Duration;
use futures::channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures::{pin_mut, select, FutureExt, StreamExt};
use leptos::prelude::*;
use sota_engine::{Config as EngineConfig, Digester, ExpectedDigests, Outcome, UiEvent};
use sota_flow::io::Driver;
use sota_flow::{AtUpgrade, Flash, FlashNotice, Io, LocalFirmware, Notice, Session, Step};
use sota_link::at_sota::{self, Event as AtEvent};
use sota_link::{an3155, ymodem, Endpoint};
use sota_protocol::client::ClientEvent;
use wasm_bindgen_futures::spawn_local;
use web_sys::Blob;

/// What the technician asks of a running connection.
pub enum Control {
    /// Upgrade with this firmware.
    Start(Firmware),
    /// Stop the upgrade, leaving the MCU recoverable.
    Cancel,
    /// Close the connection.
    Disconnect,
    /// The board is back after the link was lost: continue on this port.
    Reconnect(Port),
    /// AT: take plans from the center instead of a local file.
    FromCenter(CenterSettings),
    /// Accept the plans the center offered in manual mode, with a remark for the center's
    /// log (why a failed strategy check is overridden; empty when none was).
    Approve(String),
    /// Refuse them, with the reason the center logs.
    Refuse(String),
}

/// The firmware and what the technician entered about it.
pub struct Firmware {
    /// The picked or dropped file.
    pub file: Blob,
    /// Its name.
    pub name: String,
    /// Component identity (AT: the one the MCU reported).
    pub identity: String,
    /// Version the MCU runs afterwards.
    pub target_version: String,
    /// Digests the technician expects; empty ones are not checked.
    pub expected: ExpectedDigests,
    /// ROM bootloader: flash address.
    pub address: u32,
}

/// The largest image for the ROM bootloader, which plans erase and read-back over the whole
/// image in memory (an STM32's flash is at most 2 MiB). AT SOTA and YMODEM stream.
pub const MAX_BOOTLOADER_IMAGE: u64 = 16 << 20;

/// Piece size for AT SOTA: what a Quectel module holds at once.
const AT_PIECE: u32 = 64 * 1024;

/// Starts the loop for `port` and returns where to send the technician's choices.
pub fn start(model: Model, port: Port, protocol: Protocol) -> UnboundedSender<Control> {
    launch(model, port, protocol, None)
}

/// Starts the loop for `port` on an AT upgrade a page before this one kept (see
/// [`crate::resume`]): it continues from the last confirmed offset.
pub fn resume(model: Model, port: Port, saved: Saved) -> UnboundedSender<Control> {
    launch(model, port, Protocol::At, Some(saved))
}

fn launch(
    model: Model,
    port: Port,
    protocol: Protocol,
    saved: Option<Saved>,
) -> UnboundedSender<Control> {
    let (tx, rx) = unbounded();
    spawn_local(async move {
        let mut runner = Runner {
            model,
            port,
            controls: rx,
            away: Duration::ZERO,
            ahead: Duration::ZERO,
            kept: None,
            shown: None,
            timer: None,
        };
        match protocol {
            Protocol::At => runner.at(saved).await,
            Protocol::Ymodem | Protocol::An3155 => runner.bootloader(protocol).await,
        }
        runner.port.close();
        // One connection, one upgrade: connect again for the next (an AT MCU asks for a new
        // plan after it restarts anyway).
        if matches!(model.link.get_untracked(), Link::Open { .. }) {
            model.link.set(Link::None);
            model.log("step", "disconnected");
        }
        model.running.set(false);
        model.mcu_waiting.set(false);
        page::keep_awake(false);
        page::guard_unload(false);
    });
    tx
}

enum Wake {
    Port(Option<Incoming>),
    Control(Option<Control>),
    Center(Option<ClientEvent>),
    Timer,
}

struct Runner {
    model: Model,
    port: Port,
    controls: UnboundedReceiver<Control>,
    /// When the flow state was last shown, and its step: the view is refreshed at most every
    /// 50 ms within a step, however fast the MCU reads.
    shown: Option<(Step, Duration)>,
    /// The pending wake-up: when, and the sleep that ends then.
    timer: Option<(Duration, Sleep)>,
    /// Time the link was away. Link time stands still while the cable is out, so no
    /// protocol or session wait runs out during the outage.
    away: Duration,
    /// Link time a continued upgrade had reached on the page before (see [`crate::resume`]).
    ahead: Duration,
    /// Where the upgrade stood when it was last kept for a reload: (state, transfer offset,
    /// MiB downloaded). Kept again when that changes.
    kept: Option<Mark>,
}

/// See [`Runner::kept`].
type Mark = (sota_engine::StateKind, Option<u64>, Option<u64>);

/// A pending `setTimeout`.
type Sleep = Pin<Box<dyn Future<Output = ()>>>;

/// How often progress is redrawn at most.
const SHOW_EVERY: Duration = Duration::from_millis(50);

/// The longest the loop sleeps, so a hidden tab and progress stay fresh.
const TICK: Duration = Duration::from_millis(200);

impl Runner {
    fn show(&mut self, state: sota_flow::FlowState) {
        let t = clock::now();
        let due = match self.shown {
            Some((step, at)) => {
                step != state.step
                    || t.saturating_sub(at) >= SHOW_EVERY
                    || state.done == state.total
            }
            None => true,
        };
        if due && self.model.flow.get_untracked() != state {
            self.shown = Some((state.step, t));
            self.model.flow.set(state);
        }
    }

    /// Link time: the page's clock less the time the link was away (plus where a continued
    /// upgrade's clock was).
    fn now(&self) -> Duration {
        (clock::now() + self.ahead).saturating_sub(self.away)
    }

    /// Keeps what a reloaded page needs to continue (see [`crate::resume`]) when the upgrade
    /// moved on: every piece the MCU confirmed, every MiB downloaded. Once nothing is left to
    /// continue (the MCU updates, the plan ended), the kept upgrade is forgotten.
    fn keep(&mut self, up: &AtUpgrade, center: Option<&CenterSession>) {
        let Some(c) = center else { return };
        if matches!(
            self.model.link.get_untracked(),
            Link::Open {
                simulated: true,
                ..
            }
        ) {
            return; // The page's simulated MCU ends with the page.
        }
        let snapshot = up.snapshot();
        let mark = snapshot.as_ref().map(|s| {
            let session = s.session();
            (
                session.state(),
                session.transfer_offset(),
                session.download_offset().map(|o| o >> 20),
            )
        });
        if mark == self.kept {
            return;
        }
        let was_kept = self.kept.is_some();
        self.kept = mark;
        match snapshot {
            Some(at) => resume::keep(
                c.storage(),
                &Saved {
                    usb: self.model.usb_id.get_untracked(),
                    serial: self.model.settings.get_untracked(),
                    center: c.settings().clone(),
                    at,
                    link: c.link_snapshot(),
                    at_ms: u64::try_from(self.now().as_millis()).unwrap_or(u64::MAX),
                },
            ),
            None if was_kept => resume::forget(c.storage()),
            None => {}
        }
    }

    /// The upgrade ended or was given up: nothing is left for a reload to continue.
    fn forget_kept(&mut self, center: Option<&CenterSession>) {
        self.kept = None;
        if let Some(c) = center {
            resume::forget(c.storage());
        }
    }

    /// The link went away mid-transfer: wait for the board to come back (or a cancel).
    /// True when it is back on a new port.
    async fn await_return(&mut self, why: &str) -> bool {
        let model = self.model;
        self.lost(why);
        model.log(
            "step",
            "plug the board back in (or press Connect device): the transfer continues from the last confirmed offset",
        );
        let since = clock::now();
        loop {
            match self.controls.next().await {
                Some(Control::Reconnect(port)) => {
                    self.port.close();
                    self.away += clock::now().saturating_sub(since);
                    model.log(
                        "step",
                        format!(
                            "reconnected after {:.1} s: {}; continuing",
                            clock::now().saturating_sub(since).as_secs_f64(),
                            port.label
                        ),
                    );
                    model.link.set(Link::Open {
                        label: port.label.clone(),
                        simulated: false,
                    });
                    self.port = port;
                    return true;
                }
                Some(Control::Cancel | Control::Disconnect) | None => return false,
                // Starting, the center and plan choices wait for the board.
                Some(_) => {}
            }
        }
    }

    async fn wait(
        &mut self,
        deadline: Option<Duration>,
        mut center: Option<&mut CenterSession>,
    ) -> Wake {
        if let Some(i) = self.port.try_recv() {
            return Wake::Port(Some(i));
        }
        if let Some(e) = center.as_mut().and_then(|c| c.try_recv()) {
            return Wake::Center(Some(e));
        }
        // One timer serves many waits: at high rates a new timer per wait costs more than
        // the bytes. It is replaced only when it fired or a nearer deadline came up.
        let target = deadline
            .unwrap_or(Duration::MAX)
            .min(self.now().saturating_add(TICK));
        if self.timer.as_ref().is_none_or(|(at, _)| *at > target) {
            let wait = target.saturating_sub(self.now());
            self.timer = Some((target, Box::pin(sleep(wait))));
        }
        let Some((_, timer)) = self.timer.as_mut() else {
            return Wake::Timer;
        };
        let port = self.port.recv().fuse();
        let control = self.controls.next().fuse();
        let from_center = async move {
            match center {
                Some(c) => c.recv().await,
                None => futures::future::pending().await,
            }
        }
        .fuse();
        let mut timer = timer.as_mut().fuse();
        pin_mut!(port, control, from_center);
        let woke = select! {
            i = port => Wake::Port(i),
            c = control => Wake::Control(c),
            e = from_center => Wake::Center(e),
            _ = timer => Wake::Timer,
        };
        if matches!(woke, Wake::Timer) {
            self.timer = None;
        }
        woke
    }

    fn transmit(&self, endpoint: &mut dyn Endpoint) {
        let mut out = Vec::new();
        endpoint.poll_transmit(&mut out);
        if !out.is_empty() {
            self.model.raw(true, &out);
            self.port.write(&out);
        }
    }

    fn lost(&self, why: &str) {
        self.model.link.set(Link::Lost(why.to_string()));
        self.model.log("error", format!("link lost: {why}"));
    }

    fn end(&self, ending: Ending) {
        let (kind, text) = match &ending {
            Ending::Succeeded(t) => ("step", format!("succeeded: {t}")),
            Ending::Failed(t) => ("error", format!("failed: {t}")),
            Ending::Cancelled(t) => ("step", format!("cancelled: {t}")),
        };
        self.model.log(kind, text);
        self.model.ending.set(Some(ending));
        // The result says what was installed; the offer is over either way.
        self.model.offers.set(Vec::new());
        self.model.offers_held.set(false);
        self.model.running.set(false);
        page::keep_awake(false);
        page::guard_unload(false);
    }

    /// Lets the center's last messages (the final status) reach the broker, then closes. While
    /// the center is unreachable they wait, and the MQTT client sends them when it is back,
    /// as long as the page stays open and the technician does not disconnect.
    async fn settle(&mut self, center: Option<CenterSession>) {
        let Some(mut c) = center else { return };
        c.flush(self.model);
        let mut until = clock::now() + Duration::from_secs(5);
        let mut waiting = false;
        while c.queued() > 0 {
            let lost = matches!(self.model.center.get_untracked(), CenterLinkState::Lost(_));
            if !lost && clock::now() >= until {
                break;
            }
            if lost && !waiting {
                waiting = true;
                page::guard_unload(true);
                self.model.log(
                    "center",
                    format!(
                        "{} report(s) wait for the center and are sent when it is back: keep this page open (they are kept in this browser too, and sent the next time this device connects to the center)",
                        c.queued()
                    ),
                );
            }
            let woke = {
                let event = c.recv().fuse();
                let control = self.controls.next().fuse();
                let tick = sleep(Duration::from_millis(100)).fuse();
                pin_mut!(event, control, tick);
                select! {
                    e = event => Wake::Center(e),
                    k = control => Wake::Control(k),
                    _ = tick => Wake::Timer,
                }
            };
            match woke {
                Wake::Center(None | Some(ClientEvent::Refused { .. }))
                | Wake::Control(None | Some(Control::Disconnect)) => break,
                Wake::Center(Some(ClientEvent::Connected)) => {
                    until = clock::now() + Duration::from_secs(5);
                    self.model.center.set(CenterLinkState::Connected);
                    self.model.log(
                        "center",
                        format!("reconnected; sending {} waiting report(s)", c.queued()),
                    );
                }
                Wake::Center(Some(ClientEvent::Lost { reason, .. })) => {
                    self.model.center.set(CenterLinkState::Lost(reason));
                }
                Wake::Center(Some(ClientEvent::Delivered(id))) => c.confirmed(id),
                _ => {}
            }
        }
        // Confirmations that arrived with the last one.
        while let Some(event) = c.try_recv() {
            if let ClientEvent::Delivered(id) = event {
                c.confirmed(id);
            }
        }
        page::guard_unload(false);
        if waiting && c.queued() == 0 {
            self.model
                .log("center", "the center confirmed the waiting report(s)");
        }
        if c.queued() > 0 {
            self.model.log(
                "error",
                format!(
                    "{} message(s) for the center were not confirmed before closing",
                    c.queued()
                ),
            );
        }
        self.model.center.set(CenterLinkState::Off);
        c.close();
    }

    /// Back to waiting for the technician, with no run going and nothing sent to the MCU.
    fn pause(&self) {
        self.model.running.set(false);
        page::keep_awake(false);
        page::guard_unload(false);
    }

    fn begin(&self) {
        self.model.ending.set(None);
        self.model.running.set(true);
        page::keep_awake(true);
        page::guard_unload(true);
    }

    /// Reads the whole file once through the digester: the check that gates the MCU.
    async fn check(&self, fw: &Firmware) -> Result<LocalFirmware, String> {
        let total = fw.file.size() as u64;
        if total == 0 {
            return Err(format!("{} is empty", fw.name));
        }
        let model = self.model;
        let mut tracker = sota_flow::Tracker::default();
        let mut digester = Digester::new();
        model.log("step", format!("checking {} ({total} bytes)", fw.name));
        for_each_chunk(&fw.file, |chunk, done| {
            digester.update(chunk);
            model
                .flow
                .set(tracker.update(Step::Verifying, done, total, clock::now()));
            true
        })
        .await
        .map_err(|e| e.to_string())?;
        let local = LocalFirmware {
            identity: fw.identity.clone(),
            target_version: fw.target_version.clone(),
            source_version: String::new(),
            url: fw.name.clone(),
            own: digester.finish(),
            expected: fw.expected.clone(),
        };
        local.check()?;
        model.log(
            "step",
            format!(
                "MD5 {}, CRC32 {}, SHA-256 {}: {}",
                local.own.md5,
                local.own.crc32,
                local.own.sha256,
                if local.expected == ExpectedDigests::default() {
                    "no expected digests given"
                } else {
                    "the expected digests match"
                }
            ),
        );
        Ok(local)
    }

    /// Takes up the upgrade a page before this one kept: the center session as it was, the
    /// image as far as browser storage holds it, the flow from its snapshot.
    async fn continued(&mut self, saved: Saved) -> Option<(AtUpgrade, CenterSession)> {
        let model = self.model;
        let summary = saved.summary()?;
        model.center.set(CenterLinkState::Connecting);
        let c = match CenterSession::reopen(saved.center.clone(), saved.link.clone()).await {
            Ok(c) => c,
            Err(e) => {
                model.log("error", format!("cannot use the center: {e}"));
                model.center.set(CenterLinkState::Refused(e.clone()));
                self.end(Ending::Failed(format!(
                    "the upgrade cannot be continued: {e}"
                )));
                return None;
            }
        };
        let mut stored = c.stored(&summary.component).await.unwrap_or(0);
        if let Some(received) = saved.at.session().download_offset() {
            if stored > received {
                // Written after the upgrade was last kept: the session never hashed those
                // bytes, and the store only appends, so the download starts over.
                c.discard(&summary.component).await;
                stored = 0;
            }
        }
        // Link time goes on from where the page before left it.
        let (now, was) = (clock::now(), Duration::from_millis(saved.at_ms));
        self.ahead = was.saturating_sub(now);
        self.away = now.saturating_sub(was);
        let up = AtUpgrade::restore(at_sota::Config::default(), saved.at, stored, self.now());
        self.begin();
        model.reported.set(None);
        model.log(
            "step",
            if summary.transferring {
                format!(
                    "continuing the upgrade of {} to {}: the MCU confirmed {} of {} bytes; the stored image is checked again first",
                    summary.component, summary.target, summary.done, summary.total
                )
            } else {
                format!(
                    "continuing the upgrade of {} to {}: downloading on from byte {stored} of {}",
                    summary.component, summary.target, summary.total
                )
            },
        );
        model.log("step", format!("connecting to the center at {}", c.url()));
        Some((up, c))
    }

    /// QuecThing AT: the page is the module from the moment the port opens.
    async fn at(&mut self, saved: Option<Saved>) {
        let config = EngineConfig {
            piece_size: AT_PIECE,
            ..EngineConfig::default()
        };
        let mut up = AtUpgrade::new(at_sota::Config::default(), Session::new(config, Vec::new()));
        let mut chosen: Option<(Firmware, LocalFirmware)> = None;
        let mut center: Option<CenterSession> = None;
        let mut plans_wanted = false;
        // The picked file is the store: the session verified it while reading; a file changed
        // on disk since then makes the browser's read fail, which fails the plan.
        let mut stored: u64 = 0;
        let model = self.model;
        if let Some(saved) = saved {
            let Some((restored, c)) = self.continued(saved).await else {
                return;
            };
            up = restored;
            center = Some(c);
        } else {
            model.log(
                "step",
                "waiting for the MCU to report its version (AT+QIOTMCUVER)",
            );
        }
        loop {
            self.transmit(&mut up);
            let file = chosen.as_ref().map(|c| c.0.file.clone());
            let mut finished = None;
            while let Some(io) = up.poll_io() {
                let t = self.now();
                if matches!(io, Io::NeedPlans { .. }) {
                    plans_wanted = true;
                }
                let io = match center.as_mut() {
                    Some(c) => match c.take(io) {
                        // The center's business: the link turned it into a message.
                        None => continue,
                        Some(io) => {
                            // A download takes many chunks: each is shown and reported
                            // as it lands, not all at once when the last one did.
                            let fetch = matches!(io, Io::Fetch { .. });
                            if fetch {
                                c.flush(model);
                                self.show(up.state());
                            }
                            c.carry_out(io, &mut up, || self.now()).await;
                            if fetch {
                                while let Some(notice) = up.poll_notice() {
                                    finished = self.at_notice(notice).or(finished);
                                }
                                self.show(up.state());
                            }
                            continue;
                        }
                    },
                    None => io,
                };
                match io {
                    Io::NeedPlans { components } => {
                        let list: Vec<String> = components
                            .iter()
                            .map(|c| format!("{} {}", c.identity, c.version))
                            .collect();
                        model.log(
                            "mcu",
                            format!("the MCU asks for a plan ({})", list.join(", ")),
                        );
                        plans_wanted = true;
                    }
                    Io::NeedFirmwareInfo { .. } => {
                        if let Some((_, local)) = &chosen {
                            if let Err(e) = up.provide_info(local.info(), t) {
                                model.log("error", format!("firmware info not taken: {e}"));
                            }
                        }
                    }
                    Io::Fetch { start, end, .. } => {
                        let read = match &file {
                            Some(f) => read_range(f, start, end).await.map_err(|e| e.to_string()),
                            None => Err("no firmware file is chosen".to_string()),
                        };
                        match read {
                            Ok(bytes) if bytes.len() as u64 == end - start => {
                                up.fetched(start, bytes, self.now())
                            }
                            Ok(_) => up
                                .fetch_failed("the file is shorter than before".into(), self.now()),
                            Err(e) => up.fetch_failed(e, self.now()),
                        }
                    }
                    Io::Store { offset, bytes, .. } => {
                        if offset == stored {
                            stored += bytes.len() as u64;
                        } else {
                            up.store_lost(t);
                        }
                    }
                    Io::Read { offset, len, .. } => {
                        let read = match (&file, offset + len <= stored) {
                            (Some(f), true) => read_range(f, offset, offset + len).await.ok(),
                            _ => None,
                        };
                        match read {
                            Some(bytes) if bytes.len() as u64 == len => {
                                up.read_done(offset, bytes, self.now())
                            }
                            _ => up.store_lost(self.now()),
                        }
                    }
                    Io::Discard { .. } => stored = 0,
                    Io::Report(r) => model.log(
                        "step",
                        format!("status {} ({}): {}", r.status, r.component, r.message),
                    ),
                }
            }
            if let Some(c) = center.as_mut() {
                c.flush(model);
            }
            if plans_wanted && chosen.is_none() && center.is_none() {
                model.mcu_waiting.set(true);
            }
            while let Some(notice) = up.poll_notice() {
                if let Some(ending) = self.at_notice(notice) {
                    finished = Some(ending);
                }
            }
            let active = chosen.is_some() || center.is_some();
            if active {
                self.show(up.state());
            }
            // I/O results (a piece read back) may have given the MCU something to read.
            self.transmit(&mut up);
            if let Some(ending) = finished {
                self.forget_kept(center.as_ref());
                self.end(ending);
                return self.settle(center).await;
            }
            self.keep(&up, center.as_ref());
            match self.wait(up.poll_timeout(), center.as_mut()).await {
                Wake::Center(Some(event)) => {
                    let refused = center
                        .as_mut()
                        .and_then(|c| c.on_event(event, &mut up, self.now(), model));
                    if refused.is_some() {
                        // Nothing went to the MCU: the technician corrects the settings and
                        // asks again on the same connection.
                        if let Some(c) = center.take() {
                            c.close();
                        }
                        self.pause();
                    }
                }
                Wake::Center(None) => {
                    model
                        .center
                        .set(CenterLinkState::Lost("the connection closed".into()));
                }
                Wake::Port(Some(Incoming::Bytes(b))) => {
                    model.raw(false, &b);
                    up.handle_input(self.now(), &b);
                }
                Wake::Port(Some(Incoming::Lost(why))) => {
                    // AT SOTA resumes: the MCU asks again for the bytes it has not read.
                    if !active {
                        return self.lost(&why);
                    }
                    if !self.await_return(&why).await {
                        self.forget_kept(center.as_ref());
                        up.cancel("cancelled by the technician while the link was lost");
                        return self.end(Ending::Cancelled(format!(
                            "the link was lost ({why}) and the upgrade was cancelled; the MCU keeps its current firmware"
                        )));
                    }
                }
                Wake::Port(None)
                | Wake::Control(None)
                | Wake::Control(Some(Control::Disconnect)) => return,
                Wake::Control(Some(Control::Cancel)) => {
                    if active {
                        self.forget_kept(center.as_ref());
                        up.cancel("cancelled by the technician");
                        self.transmit(&mut up);
                        self.end(Ending::Cancelled(
                            "the MCU was told the update failed (URC 10706) and keeps its current firmware".into(),
                        ));
                        return self.settle(center).await;
                    }
                }
                Wake::Control(Some(Control::Reconnect(_))) => {}
                Wake::Control(Some(Control::FromCenter(settings))) => {
                    if active {
                        continue;
                    }
                    model.center.set(CenterLinkState::Connecting);
                    match CenterSession::open(settings).await {
                        Ok(mut c) => {
                            self.begin();
                            model.log("step", format!("connecting to the center at {}", c.url()));
                            if plans_wanted {
                                // The MCU asked already: ask the center now.
                                let components = up.components();
                                let _ = c.take(Io::NeedPlans { components });
                                model.mcu_waiting.set(false);
                            }
                            center = Some(c);
                        }
                        Err(e) => {
                            model.log("error", format!("cannot use the center: {e}"));
                            model.center.set(CenterLinkState::Refused(e));
                        }
                    }
                }
                Wake::Control(Some(Control::Approve(note))) => {
                    if let Some(c) = center.as_mut() {
                        c.approve(&note, &mut up, self.now(), model);
                    }
                }
                Wake::Control(Some(Control::Refuse(reason))) => {
                    if let Some(c) = center.as_mut() {
                        c.refuse(&reason, &mut up, self.now(), model);
                        c.flush(model);
                        self.end(Ending::Cancelled(format!(
                            "the plan was refused ({reason}) and the center was told; the MCU keeps its current firmware"
                        )));
                        return self.settle(center).await;
                    }
                }
                Wake::Control(Some(Control::Start(fw))) => {
                    if active {
                        continue;
                    }
                    self.begin();
                    match self.check(&fw).await {
                        Ok(local) => {
                            model.log(
                                "step",
                                format!("plan: {} to {}", local.identity, local.target_version),
                            );
                            // Offered now whether or not the MCU asked, as a module does
                            // when the platform pushes a plan (URC 10700).
                            let plan = local.plan();
                            chosen = Some((fw, local));
                            model.mcu_waiting.set(false);
                            if !plans_wanted {
                                model.log("step", "offering the plan to the MCU (URC 10700)");
                            }
                            plans_wanted = false;
                            if let Err(e) = up.provide_plans(vec![plan], self.now()) {
                                return self.end(Ending::Failed(e.to_string()));
                            }
                        }
                        Err(e) => {
                            model.flow.set(sota_flow::FlowState {
                                step: Step::Failed,
                                ..sota_flow::FlowState::IDLE
                            });
                            self.end(Ending::Failed(e));
                        }
                    }
                }
                Wake::Timer => {}
            }
            let t = self.now();
            if up.poll_timeout().is_some_and(|d| d <= t) {
                up.handle_timeout(t);
            }
        }
    }

    /// Shows one AT notice; returns how the run ended when it did.
    fn at_notice(&self, notice: Notice) -> Option<Ending> {
        let model = self.model;
        match notice {
            Notice::Link(AtEvent::VersionReported { component, version }) => {
                model.log("mcu", format!("the MCU runs {component} {version}"));
                model.reported.set(Some((component, version)));
            }
            Notice::Link(AtEvent::Confirmed) => model.log("mcu", "the MCU accepted the plan"),
            Notice::Link(AtEvent::Refused { component }) => model.log(
                "mcu",
                format!("the MCU refused the plan for {component} (its battery, signal or free space is below the plan's minimum)"),
            ),
            Notice::Link(AtEvent::Updating) => {
                model.log("mcu", "the MCU is writing the new firmware and restarting")
            }
            Notice::Engine(UiEvent::Verified { digests, .. }) => model.log(
                "step",
                format!("verified before sending: MD5 {}, CRC32 {}, SHA-256 {}", digests.md5, digests.crc32, digests.sha256),
            ),
            Notice::Engine(UiEvent::State { component, state }) => {
                model.log("step", format!("{component}: {state}"))
            }
            Notice::Engine(UiEvent::Progress { stage, percent, .. }) => {
                model.log("step", format!("{stage:?}: {percent} %"))
            }
            Notice::Engine(UiEvent::DownloadRetry {
                component,
                failures,
                allowed,
                resume_at,
                reason,
            }) => model.log(
                "step",
                format!("{component}: the download broke off ({reason}); resuming at byte {resume_at} (failure {failures} of {allowed} allowed)"),
            ),
            Notice::Engine(UiEvent::Refused { reasons, .. }) => {
                for r in reasons {
                    model.log("error", format!("refused: {r}"));
                }
            }
            Notice::Engine(UiEvent::Finished(result)) => {
                return Some(match result.outcome {
                    Outcome::Succeeded => Ending::Succeeded(format!(
                        "the MCU now reports {} {}",
                        result.identity, result.target_version
                    )),
                    Outcome::Failed(f) => Ending::Failed(f.to_string()),
                });
            }
            Notice::Rejected(e) => model.log("step", format!("ignored: {e}")),
            _ => {}
        }
        None
    }

    /// YMODEM or the ROM bootloader: nothing happens until "Start upgrade".
    async fn bootloader(&mut self, protocol: Protocol) {
        let model = self.model;
        model.log(
            "step",
            match protocol {
                Protocol::Ymodem => "ready: put the board in its bootloader, then start",
                _ => "ready: set BOOT0 high and reset the board, then start",
            },
        );
        let fw = loop {
            match self.wait(None, None).await {
                Wake::Control(Some(Control::Start(fw))) => break fw,
                Wake::Port(Some(Incoming::Bytes(b))) => model.raw(false, &b),
                Wake::Port(Some(Incoming::Lost(why))) => return self.lost(&why),
                Wake::Port(None)
                | Wake::Control(None)
                | Wake::Control(Some(Control::Disconnect)) => return,
                _ => {}
            }
        };
        self.begin();
        let local = match self.check(&fw).await {
            Ok(l) => l,
            Err(e) => return self.end(Ending::Failed(e)),
        };
        // Whatever the board said before the start is stale.
        while self.port.try_recv().is_some() {}
        let made = match protocol {
            // YMODEM takes the file a window at a time, straight from the picked file.
            Protocol::Ymodem => {
                Flash::ymodem_streaming(&local, &fw.name, ymodem::Config::default(), self.now())
            }
            _ => {
                // The ROM bootloader plans its erase and read-back over the whole image; it is
                // at most the chip's flash.
                let size = local.own.size;
                if size > MAX_BOOTLOADER_IMAGE {
                    return self.end(Ending::Failed(format!(
                        "{} is {size} bytes; an STM32's flash holds at most {MAX_BOOTLOADER_IMAGE} bytes",
                        fw.name
                    )));
                }
                let image = match read_range(&fw.file, 0, size).await {
                    Ok(b) if b.len() as u64 == size => b,
                    Ok(_) => {
                        return self
                            .end(Ending::Failed("the file changed while it was read".into()))
                    }
                    Err(e) => return self.end(Ending::Failed(e.to_string())),
                };
                if Digester::digest(&image) != local.own {
                    return self.end(Ending::Failed(
                        "the file changed after it was checked; nothing was sent to the MCU".into(),
                    ));
                }
                let options = an3155::Options {
                    address: fw.address,
                    ..an3155::Options::default()
                };
                Flash::an3155(
                    &local,
                    &image,
                    options,
                    an3155::Config::default(),
                    self.now(),
                )
            }
        };
        let mut flash = match made {
            Ok(f) => f,
            Err(e) => return self.end(Ending::Failed(e)),
        };
        model.log("step", "sending");
        loop {
            if let Some((offset, len)) = flash.wants() {
                // A browser refuses to read a file changed on disk since it was picked.
                match read_range(&fw.file, offset, offset + len).await {
                    Ok(bytes) if bytes.len() as u64 == len => {
                        flash.provide(offset, bytes, self.now())
                    }
                    Ok(_) => {
                        return self
                            .end(Ending::Failed("the file changed while it was sent".into()))
                    }
                    Err(e) => return self.end(Ending::Failed(e.to_string())),
                }
            }
            self.transmit(&mut flash);
            self.show(flash.state());
            while let Some(n) = flash.poll_notice() {
                match n {
                    FlashNotice::Identified {
                        bootloader,
                        pid,
                        chip,
                    } => {
                        let text = format!(
                            "bootloader {}.{}, chip ID 0x{pid:03X} ({}), {} KiB flash in {} B pages",
                            bootloader >> 4,
                            bootloader & 0xF,
                            chip.name,
                            chip.flash_size / 1024,
                            chip.page_size
                        );
                        model.log("mcu", text.clone());
                        model.chip.set(Some(text));
                    }
                    FlashNotice::Finished { summary } => {
                        return self.end(Ending::Succeeded(summary));
                    }
                    FlashNotice::Failed(e) => return self.end(Ending::Failed(e)),
                }
            }
            match self.wait(flash.poll_timeout(), None).await {
                Wake::Port(Some(Incoming::Bytes(b))) => {
                    model.raw(false, &b);
                    flash.handle_input(self.now(), &b);
                }
                Wake::Port(Some(Incoming::Lost(why))) if protocol == Protocol::Ymodem => {
                    // A YMODEM receiver cancels after its own timeouts and cannot resume.
                    self.lost(&why);
                    return self.end(Ending::Failed(format!(
                        "the link was lost during the transfer ({why}). YMODEM cannot resume a transfer: reconnect, put the board back in its bootloader and start again"
                    )));
                }
                Wake::Port(Some(Incoming::Lost(why))) => {
                    // The ROM bootloader keeps its state: the flasher repeats the command it
                    // was in and goes on from the last confirmed block.
                    if !self.await_return(&why).await {
                        return self.end(Ending::Cancelled(
                            "the link was lost and flashing was cancelled; the chip stays in its ROM bootloader and can be flashed again".into(),
                        ));
                    }
                }
                Wake::Port(None)
                | Wake::Control(None)
                | Wake::Control(Some(Control::Disconnect)) => return,
                Wake::Control(Some(Control::Cancel)) => {
                    flash.cancel(self.now());
                    self.transmit(&mut flash);
                    let what = match protocol {
                        Protocol::Ymodem => "the transfer was cancelled (CAN CAN); the bootloader keeps waiting or runs the old image",
                        _ => "flashing stopped; the chip stays in its ROM bootloader and can be flashed again",
                    };
                    return self.end(Ending::Cancelled(what.into()));
                }
                Wake::Control(Some(_)) | Wake::Center(_) | Wake::Timer => {}
            }
            let t = self.now();
            if flash.poll_timeout().is_some_and(|d| d <= t) {
                flash.handle_timeout(t);
            }
        }
    }
}
