//! Web Serial: ask for a port, open it with the technician's settings, and move bytes.
//! Needs Chrome or Edge on a secure origin (https, or http://127.0.0.1 / localhost).

use super::port::{inbox, Incoming, Port, Wire};
use js_sys::Uint8Array;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{
    FlowControlType, ParityType, ReadableStreamDefaultReader, ReadableStreamReadResult,
    SerialOptions, SerialPort, WritableStreamDefaultWriter,
};

/// Parity bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Parity {
    /// No parity bit.
    None,
    /// Even parity (the STM32 ROM bootloader needs it).
    Even,
    /// Odd parity.
    Odd,
}

/// Flow control.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Flow {
    /// None.
    None,
    /// RTS/CTS.
    Hardware,
}

/// How to open the port; remembered per USB vendor and product id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SerialSettings {
    /// Baud rate.
    pub baud: u32,
    /// Data bits, 7 or 8.
    pub data_bits: u8,
    /// Parity.
    pub parity: Parity,
    /// Stop bits, 1 or 2.
    pub stop_bits: u8,
    /// Flow control.
    pub flow: Flow,
}

impl SerialSettings {
    /// 8N1 at `baud`.
    pub fn n81(baud: u32) -> Self {
        SerialSettings {
            baud,
            data_bits: 8,
            parity: Parity::None,
            stop_bits: 1,
            flow: Flow::None,
        }
    }

    /// Short form, e.g. "115200 8E1".
    pub fn short(&self) -> String {
        let p = match self.parity {
            Parity::None => 'N',
            Parity::Even => 'E',
            Parity::Odd => 'O',
        };
        let flow = if self.flow == Flow::Hardware {
            " RTS/CTS"
        } else {
            ""
        };
        format!(
            "{} {}{}{}{flow}",
            self.baud, self.data_bits, p, self.stop_bits
        )
    }
}

/// Why Web Serial cannot be used here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// The page is not a secure context (plain http on another host).
    NotSecure,
    /// The browser has no `navigator.serial` (Firefox, Safari, or a policy turned it off).
    NoApi,
}

/// Whether Web Serial is usable on this page.
pub fn availability() -> Result<(), Unavailable> {
    let Some(window) = web_sys::window() else {
        return Err(Unavailable::NoApi);
    };
    let has =
        js_sys::Reflect::has(&window.navigator(), &JsValue::from_str("serial")).unwrap_or(false);
    if has {
        Ok(())
    } else if !window.is_secure_context() {
        Err(Unavailable::NotSecure)
    } else {
        Err(Unavailable::NoApi)
    }
}

fn message(e: JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

/// Asks the technician to pick a port (Chrome's chooser).
pub async fn request() -> Result<SerialPort, String> {
    let window = web_sys::window().ok_or("no window")?;
    let serial = window.navigator().serial();
    let port = JsFuture::from(serial.request_port()).await.map_err(|e| {
        let m = message(e);
        if m.contains("No port selected") {
            "no port was chosen".to_string()
        } else {
            m
        }
    })?;
    Ok(port.unchecked_into())
}

/// The ports this page was allowed before (no chooser; they need no click to open).
pub async fn granted() -> Vec<SerialPort> {
    let Some(window) = web_sys::window() else {
        return Vec::new();
    };
    if availability().is_err() {
        return Vec::new();
    }
    match JsFuture::from(window.navigator().serial().get_ports()).await {
        Ok(list) => js_sys::Array::from(&list)
            .iter()
            .map(|p| p.unchecked_into())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The port's USB vendor and product id, when it is a USB device.
pub fn usb_id(port: &SerialPort) -> Option<(u16, u16)> {
    let info = port.get_info();
    Some((info.get_usb_vendor_id()?, info.get_usb_product_id()?))
}

/// Calls `f` with each serial port the browser sees plugged in (one this page was allowed
/// before). Registered once for the page's life.
pub fn on_connect(f: impl Fn(SerialPort) + 'static) {
    let Some(window) = web_sys::window() else {
        return;
    };
    if availability().is_err() {
        return;
    }
    let serial = window.navigator().serial();
    let listener =
        wasm_bindgen::closure::Closure::<dyn Fn(web_sys::Event)>::new(move |e: web_sys::Event| {
            if let Some(target) = e.target() {
                f(target.unchecked_into());
            }
        });
    let target: &web_sys::EventTarget = serial.unchecked_ref();
    let _ = target.add_event_listener_with_callback("connect", listener.as_ref().unchecked_ref());
    listener.forget();
}

/// The read buffer asked for: the default 255 bytes drops data at high rates.
const BUFFER_SIZE: u32 = 64 * 1024;

struct SerialWire {
    port: SerialPort,
    writer: WritableStreamDefaultWriter,
    reader: ReadableStreamDefaultReader,
    closed: RefCell<bool>,
    /// One handler for every write's failure: a task per write would cost more than the
    /// write itself at high rates.
    on_write_error: wasm_bindgen::closure::Closure<dyn FnMut(JsValue)>,
}

impl Wire for SerialWire {
    fn write(&self, bytes: &[u8]) {
        // Writes queue in order in the stream; a failure reports the loss.
        let promise = self
            .writer
            .write_with_chunk(&Uint8Array::from(bytes).into());
        let _ = promise.catch(&self.on_write_error);
    }

    fn close(&self) {
        if self.closed.replace(true) {
            return;
        }
        let (port, reader, writer) = (self.port.clone(), self.reader.clone(), self.writer.clone());
        spawn_local(async move {
            let _ = JsFuture::from(reader.cancel()).await;
            reader.release_lock();
            let _ = JsFuture::from(writer.close()).await;
            writer.release_lock();
            let _ = JsFuture::from(port.close()).await;
        });
    }
}

/// Opens `port` with `settings` and starts reading.
pub async fn open(port: SerialPort, settings: &SerialSettings) -> Result<Port, String> {
    let options = SerialOptions::new(settings.baud);
    options.set_data_bits(settings.data_bits);
    options.set_stop_bits(settings.stop_bits);
    options.set_parity(match settings.parity {
        Parity::None => ParityType::None,
        Parity::Even => ParityType::Even,
        Parity::Odd => ParityType::Odd,
    });
    options.set_flow_control(match settings.flow {
        Flow::None => FlowControlType::None,
        Flow::Hardware => FlowControlType::Hardware,
    });
    options.set_buffer_size(BUFFER_SIZE);
    JsFuture::from(port.open(&options)).await.map_err(|e| {
        format!(
            "the port could not be opened: {} (is another program or tab using it?)",
            message(e)
        )
    })?;
    let writer: WritableStreamDefaultWriter = port
        .writable()
        .get_writer()
        .map_err(|e| format!("the port cannot be written: {}", message(e)))?;
    let reader: ReadableStreamDefaultReader = port.readable().get_reader().unchecked_into();
    let (tx, rx) = inbox();
    let label = match usb_id(&port) {
        Some((v, p)) => format!("USB {v:04x}:{p:04x}, {}", settings.short()),
        None => format!("serial port, {}", settings.short()),
    };
    let failed = tx.clone();
    let on_write_error = wasm_bindgen::closure::Closure::<dyn FnMut(JsValue)>::new(move |e| {
        let _ = failed.unbounded_send(Incoming::Lost(format!(
            "writing to the port failed: {}",
            message(e)
        )));
    });
    let wire = Rc::new(SerialWire {
        port,
        writer,
        reader: reader.clone(),
        closed: RefCell::new(false),
        on_write_error,
    });
    let closed = Rc::clone(&wire);
    spawn_local(async move {
        loop {
            let result = match JsFuture::from(reader.read()).await {
                Ok(r) => r.unchecked_into::<ReadableStreamReadResult>(),
                Err(e) => {
                    let _ = tx.unbounded_send(Incoming::Lost(format!(
                        "the device stopped answering: {} (cable pulled?)",
                        message(e)
                    )));
                    return;
                }
            };
            if result.get_done().unwrap_or(false) {
                if !*closed.closed.borrow() {
                    let _ = tx.unbounded_send(Incoming::Lost("the port was closed".into()));
                }
                return;
            }
            let value = result.get_value();
            if let Some(chunk) = value.dyn_ref::<Uint8Array>() {
                if tx.unbounded_send(Incoming::Bytes(chunk.to_vec())).is_err() {
                    return;
                }
            }
        }
    });
    Ok(Port::new(wire, rx, label))
}
