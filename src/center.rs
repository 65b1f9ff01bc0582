//! The console as a device of the center: the MQTT connection ([`crate::adapters::mqtt`]),
//! the flow's requests that the center answers ([`sota_flow::CenterLink`] translates them),
//! firmware over HTTP into browser storage. Like [`crate::run`], it carries out and shows;
//! `CenterLink`, the engine and the MQTT client decide.

use crate::adapters::storage::{Appender, Storage};
use crate::adapters::{http, mqtt};
use crate::model::{CenterLinkState, Model};
use core::time::Duration;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use sota_flow::io::Driver;
use sota_flow::{CenterLink, CenterNotice, CenterSnapshot, Io};
use sota_protocol::client::{ClientEvent, MessageId, Options};
use sota_protocol::{decode_down, DeviceId, ErrorCode, Up};

/// What the technician enters to reach the center (remembered in the page).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CenterSettings {
    /// The center's MQTT-over-WebSocket address; empty: the center that served this page.
    pub address: String,
    /// Product key.
    pub product: String,
    /// Device key (e.g. from the board's label).
    pub device: String,
    /// The device secret the center issued; empty while the device is not registered.
    pub device_secret: String,
    /// The product secret, used once to register the device.
    pub product_secret: String,
}

/// The key the settings used last are remembered under (the default for a new board).
pub const SETTINGS_KEY: &str = "sota-console.center";

/// Where a board's settings are remembered: per USB device kind (vendor:product), the only
/// identity Web Serial gives a port. Boards of one kind share it, so the device key stays in
/// plain view to be checked.
fn port_settings_key(usb: (u16, u16)) -> String {
    format!("{SETTINGS_KEY}.{:04x}:{:04x}", usb.0, usb.1)
}

/// Remembers `settings` as the last used and, with a USB identity, for that board.
pub fn remember_settings(usb: Option<(u16, u16)>, settings: &CenterSettings) {
    crate::adapters::page::remember(SETTINGS_KEY, settings);
    if let Some(usb) = usb {
        crate::adapters::page::remember(&port_settings_key(usb), settings);
    }
}

/// The settings remembered for this board, if any.
pub fn recall_settings(usb: (u16, u16)) -> Option<CenterSettings> {
    crate::adapters::page::recall(&port_settings_key(usb))
}

impl CenterSettings {
    /// The device's identity, or what is wrong with the keys.
    pub fn id(&self) -> Result<DeviceId, String> {
        DeviceId::new(self.product.trim(), self.device.trim()).ok_or_else(|| {
            "product and device keys are 1 to 64 of A-Z a-z 0-9 _ - . (check both fields)".into()
        })
    }
}

/// A connection to the center for one upgrade.
pub struct CenterSession {
    mqtt: mqtt::Mqtt,
    link: CenterLink,
    storage: Storage,
    id: DeviceId,
    settings: CenterSettings,
    registering: bool,
    connected_once: bool,
    /// The download in progress (one response read chunk by chunk).
    download: http::Download,
    /// Downloaded bytes on their way into storage.
    appender: Option<Appender>,
    /// Reports published and not yet confirmed by the broker, oldest first, as JSON; kept
    /// in browser storage too, so a reload or a crash does not lose them.
    unconfirmed: Vec<(MessageId, String)>,
}

/// The storage record of a device's unconfirmed reports.
fn outbox_record(id: &DeviceId) -> String {
    format!("outbox/{id}")
}

/// The storage key of a component's image: one per device and component.
pub fn image_key(id: &DeviceId, component: &str) -> String {
    format!("{id}/{component}")
}

impl CenterSession {
    /// Opens storage and starts the MQTT connection (its result arrives as an event).
    pub async fn open(settings: CenterSettings) -> Result<CenterSession, String> {
        Self::open_with(settings, None).await
    }

    /// The same for an upgrade a page before this one started: the link goes on reporting on
    /// the plans it was given (see [`crate::resume`]).
    pub async fn reopen(
        settings: CenterSettings,
        link: CenterSnapshot,
    ) -> Result<CenterSession, String> {
        Self::open_with(settings, Some(link)).await
    }

    async fn open_with(
        settings: CenterSettings,
        restored: Option<CenterSnapshot>,
    ) -> Result<CenterSession, String> {
        let id = settings.id()?;
        let (secret, registering) = if !settings.device_secret.trim().is_empty() {
            (settings.device_secret.trim().to_string(), false)
        } else if !settings.product_secret.trim().is_empty() {
            (settings.product_secret.trim().to_string(), true)
        } else {
            return Err(
                "enter the device secret, or the product secret to register this device".into(),
            );
        };
        let storage = Storage::open().await?;
        let earlier: Vec<String> = match storage.record(&outbox_record(&id)).await {
            Ok(Some(text)) => serde_json::from_str(&text).unwrap_or_default(),
            _ => Vec::new(),
        };
        let mut options = Options::device(&id, secret);
        // Chrome wakes a hidden tab's timers about once a minute: a longer keep-alive keeps
        // the broker from dropping a console left in the background.
        options.keep_alive = Duration::from_secs(90);
        let url = mqtt::resolve(&settings.address)?;
        let mqtt = mqtt::Mqtt::connect(&url, options)?;
        // Reports an earlier page could not deliver go first, in their order.
        let mut unconfirmed = Vec::with_capacity(earlier.len());
        for json in earlier {
            if let Ok(message) = mqtt.publish(&id.up(), json.clone()) {
                unconfirmed.push((message, json));
            }
        }
        let mut link = match restored {
            Some(snapshot) => CenterLink::restored(snapshot),
            None => CenterLink::asking_for_manual_plans(),
        };
        if registering {
            link.register(settings.product_secret.trim());
        }
        Ok(CenterSession {
            mqtt,
            link,
            storage,
            id,
            settings,
            registering,
            connected_once: false,
            download: Default::default(),
            appender: None,
            unconfirmed,
        })
    }

    /// The settings it logged in with (with the device secret once registered).
    pub fn settings(&self) -> &CenterSettings {
        &self.settings
    }

    /// What a reloaded page needs to go on reporting (see [`crate::resume`]).
    pub fn link_snapshot(&self) -> CenterSnapshot {
        self.link.snapshot()
    }

    /// The browser storage the image is in.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Bytes of the component's image in browser storage.
    pub async fn stored(&self, component: &str) -> Result<u64, String> {
        self.storage.stored(&image_key(&self.id, component)).await
    }

    /// Drops the component's image from browser storage.
    pub async fn discard(&self, component: &str) {
        let _ = self.storage.discard(&image_key(&self.id, component)).await;
    }

    /// Where it connects.
    pub fn url(&self) -> &str {
        &self.mqtt.url
    }

    /// The flow's request, if it is not the center's.
    pub fn take(&mut self, io: Io) -> Option<Io> {
        self.link.take(io)
    }

    /// Carries out download and storage work for `up`.
    pub async fn carry_out<D: Driver + ?Sized>(
        &mut self,
        io: Io,
        up: &mut D,
        now: impl Fn() -> Duration,
    ) {
        match io {
            Io::Fetch {
                url, start, end, ..
            } => match self.download.range(&url, start, end).await {
                Ok(bytes) if bytes.len() as u64 == end - start => up.fetched(start, bytes, now()),
                Ok(bytes) => up.fetch_failed(
                    format!(
                        "the download ended at byte {} of {end}",
                        start + bytes.len() as u64
                    ),
                    now(),
                ),
                Err(e) => up.fetch_failed(e, now()),
            },
            Io::Store {
                component,
                offset,
                bytes,
            } => {
                let key = image_key(&self.id, &component);
                let follows = self
                    .appender
                    .as_ref()
                    .is_some_and(|a| a.image() == key && a.end() == offset);
                if !follows {
                    if self.write_held().await.is_err() {
                        return up.store_lost(now());
                    }
                    if offset == 0 {
                        // A new download: whatever an older one left is stale.
                        let _ = self.storage.discard(&key).await;
                    }
                    self.appender = Some(Appender::new(self.storage.clone(), &key, offset));
                }
                let pushed = match self.appender.as_mut() {
                    Some(a) => a.push(&bytes).await,
                    None => Err("no image is open".into()),
                };
                if pushed.is_err() {
                    self.appender = None;
                    up.store_lost(now());
                }
            }
            Io::Read {
                component,
                offset,
                len,
            } => {
                if self.write_held().await.is_err() {
                    return up.store_lost(now());
                }
                match self
                    .storage
                    .read(&image_key(&self.id, &component), offset, len)
                    .await
                {
                    Ok(bytes) => up.read_done(offset, bytes, now()),
                    Err(_) => up.store_lost(now()),
                }
            }
            Io::Discard { component } => {
                self.appender = None;
                let _ = self.storage.discard(&image_key(&self.id, &component)).await;
            }
            // The center's requests never reach here (`take` keeps them).
            Io::NeedPlans { .. } | Io::NeedFirmwareInfo { .. } | Io::Report(_) => {}
        }
    }

    /// Sends what the link wants to say and shows what it noticed.
    pub fn flush(&mut self, model: Model) {
        let mut reports = false;
        while let Some(message) = self.link.poll_up() {
            model.log("center", format!("→ {}", message.summary()));
            match self.mqtt.publish_up(&message) {
                // Reports are kept until confirmed; a request or versions is asked anew.
                Ok(id) if matches!(message, Up::Status(_) | Up::Refuse { .. }) => {
                    let json = String::from_utf8(message.to_json()).unwrap_or_default();
                    self.unconfirmed.push((id, json));
                    reports = true;
                }
                Ok(_) => {}
                Err(e) => model.log(
                    "error",
                    format!("a message for the center was dropped: {e:?}"),
                ),
            }
        }
        if reports {
            self.keep_unconfirmed();
            if model.center.get_untracked() != CenterLinkState::Connected {
                model.log(
                    "center",
                    format!(
                        "{} report(s) wait for the center, kept in this browser",
                        self.unconfirmed.len()
                    ),
                );
            }
        }
        while let Some(notice) = self.link.poll_notice() {
            match notice {
                CenterNotice::Plans(plans) => {
                    if plans.is_empty() {
                        model.log("step", "the center has no plan for this device now");
                    }
                    model.offers.set(plans);
                    model.offers_held.set(!self.link.held().is_empty());
                }
                CenterNotice::Registered { device_secret } => {
                    self.settings.device_secret = device_secret;
                    self.settings.product_secret.clear();
                    remember_settings(model.usb_id.get_untracked(), &self.settings);
                    model.center_settings.set(self.settings.clone());
                    model.log(
                        "step",
                        "registered: the center issued this device's secret (kept in this browser)",
                    );
                }
                CenterNotice::Error { code, message } => {
                    model.log(
                        "error",
                        format!("the center refused a message ({code:?}): {message}"),
                    );
                    if matches!(
                        code,
                        ErrorCode::UnknownDevice | ErrorCode::RegistrationRefused
                    ) {
                        model.center.set(CenterLinkState::Refused(message));
                    }
                }
                CenterNotice::Ignored(what) => model.log("center", format!("ignored: {what}")),
            }
        }
    }

    /// Writes the downloaded bytes still held; after an error the image is not appended to.
    async fn write_held(&mut self) -> Result<(), String> {
        match self.appender.as_mut() {
            Some(a) => {
                let written = a.flush().await;
                if written.is_err() {
                    self.appender = None;
                }
                written
            }
            None => Ok(()),
        }
    }

    /// The broker confirmed message `id`: a report it was is no longer kept.
    pub fn confirmed(&mut self, id: MessageId) {
        let before = self.unconfirmed.len();
        self.unconfirmed.retain(|(m, _)| *m != id);
        if self.unconfirmed.len() != before {
            self.keep_unconfirmed();
        }
    }

    /// Writes the unconfirmed reports to browser storage (in the background; IndexedDB runs
    /// write transactions on one store in the order they were opened).
    fn keep_unconfirmed(&self) {
        let storage = self.storage.clone();
        let name = outbox_record(&self.id);
        let kept: Vec<&str> = self.unconfirmed.iter().map(|(_, j)| j.as_str()).collect();
        let text = serde_json::to_string(&kept).unwrap_or_else(|_| "[]".into());
        leptos::task::spawn_local(async move {
            let written = if text == "[]" {
                storage.delete_record(&name).await
            } else {
                storage.put_record(&name, &text).await
            };
            if let Err(e) = written {
                web_sys::console::warn_1(&format!("unconfirmed reports not kept: {e}").into());
            }
        });
    }

    /// The next MQTT event.
    pub async fn recv(&mut self) -> Option<ClientEvent> {
        self.mqtt.recv().await
    }

    /// Messages published and not yet confirmed by the broker.
    pub fn queued(&self) -> usize {
        self.mqtt.queued()
    }

    /// An MQTT event that already arrived.
    pub fn try_recv(&mut self) -> Option<ClientEvent> {
        self.mqtt.try_recv()
    }

    /// Handles an MQTT event; why, when the center refused this device's login (the session
    /// is of no more use; the technician can correct the settings and try again).
    pub fn on_event<D: Driver + ?Sized>(
        &mut self,
        event: ClientEvent,
        up: &mut D,
        now: Duration,
        model: Model,
    ) -> Option<String> {
        match event {
            ClientEvent::Connected => {
                model.center.set(CenterLinkState::Connected);
                if self.connected_once {
                    model.log(
                        "center",
                        "reconnected; repeating what the center has not answered",
                    );
                    self.link.reconnected();
                } else {
                    model.log(
                        "center",
                        format!(
                            "connected to the center at {} as {}",
                            self.mqtt.url, self.id
                        ),
                    );
                    if !self.unconfirmed.is_empty() {
                        model.log(
                            "center",
                            format!(
                                "{} report(s) an earlier page could not deliver are sent first",
                                self.unconfirmed.len()
                            ),
                        );
                    }
                }
                self.connected_once = true;
            }
            ClientEvent::Message { payload, .. } => match decode_down(&payload) {
                Ok(down) => {
                    model.log("center", format!("← {}", down.summary()));
                    self.link.handle_down(down, up, now);
                }
                Err(e) => model.log(
                    "error",
                    format!("the center sent a message this console cannot read: {e}"),
                ),
            },
            ClientEvent::Refused { code, text } => {
                let why = match (code, self.registering) {
                    (4, true) => "the product secret is wrong: check it and the product key".to_string(),
                    (4, false) => "the device secret is wrong: check it, the product key and the device key".to_string(),
                    (5, true) => "this device is registered already: enter its device secret instead of the product secret".to_string(),
                    _ => text,
                };
                let why = format!("the center refused the login of {}: {why}", self.id);
                model.log("error", why.clone());
                model.center.set(CenterLinkState::Refused(why.clone()));
                return Some(why);
            }
            ClientEvent::Lost { reason, retry_in } => {
                model.center.set(CenterLinkState::Lost(reason.clone()));
                model.log(
                    "center",
                    format!(
                        "lost the center ({reason}); trying again in {} s — the upgrade goes on and reports are sent when it is back",
                        retry_in.as_secs()
                    ),
                );
            }
            ClientEvent::SubscriptionRefused { topic } => {
                model.log(
                    "error",
                    format!("the center refused the subscription to {topic}"),
                );
            }
            ClientEvent::Delivered(id) => self.confirmed(id),
            ClientEvent::Reconnect => {}
        }
        None
    }

    /// The technician accepts the held plans; `note` (why a failed strategy check is
    /// overridden, or empty) goes with each accept into the center's log.
    pub fn approve<D: Driver + ?Sized>(
        &mut self,
        note: &str,
        up: &mut D,
        now: Duration,
        model: Model,
    ) {
        self.link.approve_noting(note, up, now);
        model.offers_held.set(false);
        if note.is_empty() {
            model.log("step", "plan accepted by the technician");
        } else {
            model.log("step", format!("plan accepted: {note}"));
        }
    }

    /// The technician refuses the held plans.
    pub fn refuse<D: Driver + ?Sized>(
        &mut self,
        reason: &str,
        up: &mut D,
        now: Duration,
        model: Model,
    ) {
        self.link.refuse_held(reason, up, now);
        model.offers_held.set(false);
        model.log("step", format!("plan refused by the technician: {reason}"));
    }

    /// Sends what is queued and closes the connection.
    pub fn close(self) {
        self.mqtt.close();
    }
}

/// The reports an earlier page kept for `settings`' device, not confirmed by the broker before
/// it closed, go to the center in the background when a page opens — as that device, with the
/// settings remembered for it — rather than waiting until the device connects again. Gives up
/// after a minute (they stay kept, and are sent with the device's next connection).
pub async fn deliver_kept(settings: CenterSettings, model: Model) {
    if settings.device_secret.trim().is_empty() {
        return; // Not registered: it never sent a report.
    }
    let Ok(id) = settings.id() else { return };
    let Ok(storage) = Storage::open().await else {
        return;
    };
    let kept = match storage.record(&outbox_record(&id)).await {
        Ok(Some(text)) => serde_json::from_str::<Vec<String>>(&text).map_or(0, |v| v.len()),
        _ => 0,
    };
    if kept == 0 {
        return;
    }
    model.log(
        "center",
        format!("{kept} report(s) of {id} that an earlier page could not deliver: sending them to the center"),
    );
    let Ok(mut c) = CenterSession::open(settings).await else {
        return;
    };
    let until = crate::adapters::clock::now() + Duration::from_secs(60);
    while !c.unconfirmed.is_empty() && crate::adapters::clock::now() < until {
        if model.running.get_untracked() {
            // The technician started a run: its own connection sends what is left.
            return c.close();
        }
        let event = {
            use futures::{pin_mut, select, FutureExt};
            let event = c.recv().fuse();
            let tick = crate::adapters::clock::sleep(Duration::from_millis(250)).fuse();
            pin_mut!(event, tick);
            select! {
                e = event => e,
                _ = tick => continue,
            }
        };
        match event {
            Some(ClientEvent::Delivered(message)) => c.confirmed(message),
            Some(ClientEvent::Refused { text, .. }) => {
                model.log(
                    "error",
                    format!("the center refused the login of {id} ({text}): the kept reports wait for its next connection"),
                );
                return c.close();
            }
            Some(_) => {}
            None => break,
        }
    }
    if c.unconfirmed.is_empty() {
        model.log(
            "center",
            format!("the center confirmed the {kept} kept report(s) of {id}"),
        );
    } else {
        model.log(
            "center",
            format!(
                "the center is unreachable: {} kept report(s) of {id} wait for the device's next connection",
                c.unconfirmed.len()
            ),
        );
    }
    c.close();
}
