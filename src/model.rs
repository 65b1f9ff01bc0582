//! What the pages render: one set of signals, written by the flow runner and by the
//! technician's inputs, read by the views. Nothing here decides what happens next.

use crate::adapters::serial::SerialSettings;
use crate::i18n::Lang;
use leptos::prelude::*;
use sota_flow::FlowState;
use std::collections::VecDeque;

/// Which protocol the board speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Protocol {
    /// QuecThing AT SOTA: an MCU built for a Quectel module.
    At,
    /// A bootloader that receives YMODEM-1K.
    Ymodem,
    /// The STM32 ROM bootloader (AN3155).
    An3155,
}

impl Protocol {
    /// Settings a board of this kind usually needs.
    pub fn default_settings(self) -> SerialSettings {
        match self {
            Protocol::An3155 => SerialSettings {
                parity: crate::adapters::serial::Parity::Even,
                ..SerialSettings::n81(115_200)
            },
            _ => SerialSettings::n81(115_200),
        }
    }

    /// Stable name for storage and element ids.
    pub fn key(self) -> &'static str {
        match self {
            Protocol::At => "at",
            Protocol::Ymodem => "ymodem",
            Protocol::An3155 => "an3155",
        }
    }
}

/// The link to the board.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    /// Nothing connected.
    None,
    /// Opening.
    Opening,
    /// Open.
    Open {
        /// What it is, e.g. "USB 0483:5740, 115200 8N1".
        label: String,
        /// A simulated MCU in the page.
        simulated: bool,
    },
    /// It went away.
    Lost(String),
}

/// The connection to the center (AT, plans from the center).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CenterLinkState {
    /// Not used.
    Off,
    /// Logging in.
    Connecting,
    /// Logged in.
    Connected,
    /// Lost; the client tries again.
    Lost(String),
    /// The center refused this device: what to check.
    Refused(String),
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Success, with what was checked.
    Succeeded(String),
    /// Failure, with why.
    Failed(String),
    /// The technician cancelled.
    Cancelled(String),
}

/// One log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// Time of day.
    pub time: String,
    /// "step", "mcu", "serial", "error".
    pub kind: &'static str,
    /// The text.
    pub text: String,
}

/// The most raw serial chunks kept for the hex view.
pub const RAW_KEPT: usize = 200;

/// A raw serial chunk for the hex view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawChunk {
    /// Milliseconds since the page loaded (cheap to take for every chunk).
    pub at_ms: u64,
    /// True: console to MCU.
    pub sent: bool,
    /// The first bytes.
    pub bytes: Vec<u8>,
    /// The chunk's full length.
    pub len: usize,
}

/// The console's state.
#[derive(Clone, Copy)]
pub struct Model {
    /// UI language.
    pub lang: RwSignal<Lang>,
    /// Protocol chosen.
    pub protocol: RwSignal<Protocol>,
    /// Serial settings.
    pub settings: RwSignal<SerialSettings>,
    /// The link.
    pub link: RwSignal<Link>,
    /// USB vendor and product id of the connected port.
    pub usb_id: RwSignal<Option<(u16, u16)>>,
    /// Component identity and version the MCU reported (AT).
    pub reported: RwSignal<Option<(String, String)>>,
    /// The ROM bootloader's version and chip.
    pub chip: RwSignal<Option<String>>,
    /// The flow's state.
    pub flow: RwSignal<FlowState>,
    /// A run is going.
    pub running: RwSignal<bool>,
    /// The AT MCU asked for a plan and waits for "Start upgrade".
    pub mcu_waiting: RwSignal<bool>,
    /// How the last run ended.
    pub ending: RwSignal<Option<Ending>>,
    /// The log.
    pub log: RwSignal<Vec<LogLine>>,
    /// Recent raw traffic.
    pub raw: RwSignal<VecDeque<RawChunk>>,
    /// The tab is hidden while a run is going.
    pub hidden_warning: RwSignal<bool>,
    /// The connection to the center.
    pub center: RwSignal<CenterLinkState>,
    /// Where the center is and who this device is (remembered in the page).
    pub center_settings: RwSignal<crate::center::CenterSettings>,
    /// The plans the center offered.
    pub offers: RwSignal<Vec<sota_protocol::PlanOffer>>,
    /// The offered plans wait for the technician's Accept or Refuse (manual mode).
    pub offers_held: RwSignal<bool>,
    /// An upgrade a page before this one left unfinished, offered to be continued.
    pub resumable: RwSignal<Option<crate::resume::Summary>>,
}

impl Model {
    /// A fresh model in `lang`.
    pub fn new(lang: Lang) -> Self {
        Model {
            lang: RwSignal::new(lang),
            protocol: RwSignal::new(Protocol::At),
            settings: RwSignal::new(Protocol::At.default_settings()),
            link: RwSignal::new(Link::None),
            usb_id: RwSignal::new(None),
            reported: RwSignal::new(None),
            chip: RwSignal::new(None),
            flow: RwSignal::new(FlowState::IDLE),
            running: RwSignal::new(false),
            mcu_waiting: RwSignal::new(false),
            ending: RwSignal::new(None),
            log: RwSignal::new(Vec::new()),
            raw: RwSignal::new(VecDeque::new()),
            hidden_warning: RwSignal::new(false),
            center: RwSignal::new(CenterLinkState::Off),
            center_settings: RwSignal::new(
                crate::adapters::page::recall(crate::center::SETTINGS_KEY).unwrap_or_default(),
            ),
            offers: RwSignal::new(Vec::new()),
            offers_held: RwSignal::new(false),
            resumable: RwSignal::new(None),
        }
    }

    /// Appends a log line stamped now.
    pub fn log(&self, kind: &'static str, text: impl Into<String>) {
        let line = LogLine {
            time: crate::adapters::clock::time_of_day(),
            kind,
            text: text.into(),
        };
        self.log.update(|l| l.push(line));
    }

    /// Keeps a raw chunk for the hex view.
    pub fn raw(&self, sent: bool, bytes: &[u8]) {
        let chunk = RawChunk {
            at_ms: crate::adapters::clock::now().as_millis() as u64,
            sent,
            bytes: bytes[..bytes.len().min(64)].to_vec(),
            len: bytes.len(),
        };
        self.raw.update(|r| {
            if r.len() == RAW_KEPT {
                r.pop_front();
            }
            r.push_back(chunk);
        });
    }

    /// The whole log as text, for "Download log".
    pub fn log_text(&self) -> String {
        self.log.with_untracked(|l| {
            l.iter()
                .map(|x| format!("{} [{}] {}\n", x.time, x.kind, x.text))
                .collect()
        })
    }
}
