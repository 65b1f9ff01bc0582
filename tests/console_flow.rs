//! The console's adapters and flow runner in a real browser:
//! - the Web Serial adapter against a fake `navigator.serial` whose port has real
//!   `ReadableStream`/`WritableStream` objects (the same fake the end-to-end tests use);
//! - the runner driving each simulated MCU in the page to a result, with no UI.
#![cfg(target_arch = "wasm32")]

use core::time::Duration;
use leptos::prelude::*;
use sota_console::adapters::port::Incoming;
use sota_console::adapters::serial::{self, Parity, SerialSettings};
use sota_console::adapters::simulated::{self, SimMcu};
use sota_console::adapters::{clock, file};
use sota_console::i18n::Lang;
use sota_console::model::{Ending, Model, Protocol};
use sota_console::run::{self, Control, Firmware};
use sota_engine::{Digester, ExpectedDigests};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;
use web_sys::Blob;

wasm_bindgen_test_configure!(run_in_browser);

/// The fake: `requestPort` gives a port that records `open`'s options and every write, and
/// lets the test push bytes or fail the stream.
const FAKE: &str = r#"
(() => {
  const state = { opened: null, written: [], push: null, fail: null };
  window.__fake = state;
  class FakePort {
    getInfo() { return { usbVendorId: 0x0483, usbProductId: 0x5740 }; }
    async open(o) {
      state.opened = { baudRate: o.baudRate, dataBits: o.dataBits, stopBits: o.stopBits, parity: o.parity, flowControl: o.flowControl, bufferSize: o.bufferSize };
      this.readable = new ReadableStream({ start(c) { state.push = (b) => c.enqueue(new Uint8Array(b)); state.fail = () => c.error(new DOMException('The device has been lost.', 'NetworkError')); } });
      this.writable = new WritableStream({ write(chunk) { state.written.push(...chunk); } });
    }
    async close() {}
  }
  const serial = { requestPort: async () => new FakePort(), getPorts: async () => [] };
  Object.defineProperty(Navigator.prototype, 'serial', { get: () => serial, configurable: true });
})()
"#;

fn eval(js: &str) -> JsValue {
    js_sys::eval(js).unwrap()
}

#[wasm_bindgen_test]
async fn web_serial_adapter_opens_with_the_settings_and_moves_bytes_both_ways() {
    eval(FAKE);
    assert_eq!(serial::availability(), Ok(()));
    let port = serial::request().await.expect("a port");
    assert_eq!(serial::usb_id(&port), Some((0x0483, 0x5740)));
    let settings = SerialSettings {
        parity: Parity::Even,
        stop_bits: 2,
        ..SerialSettings::n81(57_600)
    };
    let mut link = serial::open(port, &settings).await.expect("opens");
    assert_eq!(link.label, "USB 0483:5740, 57600 8E2");
    let opened = eval("JSON.stringify(window.__fake.opened)")
        .as_string()
        .unwrap();
    assert_eq!(
        opened,
        r#"{"baudRate":57600,"dataBits":8,"stopBits":2,"parity":"even","flowControl":"none","bufferSize":65536}"#
    );

    link.write(b"AT\r");
    link.write(&[0, 255, 7]);
    clock::sleep(Duration::from_millis(20)).await;
    let written = eval("JSON.stringify(window.__fake.written)")
        .as_string()
        .unwrap();
    assert_eq!(written, "[65,84,13,0,255,7]", "in order, binary-safe");

    eval("window.__fake.push([1,2,3]); window.__fake.push([4])");
    let mut got = Vec::new();
    while got.len() < 4 {
        match link.recv().await {
            Some(Incoming::Bytes(b)) => got.extend(b),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, [1, 2, 3, 4]);

    eval("window.__fake.fail()");
    match link.recv().await {
        Some(Incoming::Lost(why)) => assert!(why.contains("device"), "{why}"),
        other => panic!("expected the loss, got {other:?}"),
    }
}

fn blob(bytes: &[u8]) -> Blob {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    Blob::new_with_u8_array_sequence(&parts).unwrap()
}

/// Runs one upgrade through the runner against an unpaced simulated MCU; returns the ending
/// and the model.
async fn upgrade(protocol: Protocol, image: &[u8], expected: ExpectedDigests) -> (Ending, Model) {
    // The model outlives this function (the caller reads it), so its owner must too.
    let owner = Owner::new();
    owner.set();
    std::mem::forget(owner);
    let model = Model::new(Lang::En);
    let mcu = match protocol {
        Protocol::At => SimMcu::At,
        Protocol::Ymodem => SimMcu::Ymodem,
        Protocol::An3155 => SimMcu::An3155,
    };
    let port = simulated::open(mcu, 0);
    let controls = run::start(model, port, protocol);
    if protocol == Protocol::At {
        // The module learns the MCU's identity before anything is chosen.
        for _ in 0..200 {
            if model.reported.get_untracked().is_some() {
                break;
            }
            clock::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            model.reported.get_untracked(),
            Some(("STM32".to_string(), "1_0_0".to_string()))
        );
    }
    controls
        .unbounded_send(Control::Start(Firmware {
            file: blob(image),
            name: "fw.bin".into(),
            identity: "STM32".into(),
            target_version: "2_0_0".into(),
            expected,
            address: 0x0800_0000,
        }))
        .unwrap();
    for _ in 0..3000 {
        if let Some(e) = model.ending.get_untracked() {
            return (e, model);
        }
        clock::sleep(Duration::from_millis(10)).await;
    }
    panic!("no result after 30 s; log: {}", model.log_text());
}

#[wasm_bindgen_test]
async fn the_runner_upgrades_the_simulated_at_mcu_and_reports_each_step() {
    let image = sota_sim::test_image(100 * 1024 + 3, 1);
    let (ending, model) = upgrade(Protocol::At, &image, ExpectedDigests::default()).await;
    assert_eq!(
        ending,
        Ending::Succeeded("the MCU now reports STM32 2_0_0".into())
    );
    let log = model.log_text();
    for step in [
        "status 1",
        "status 2",
        "status 4",
        "status 8",
        "status 9",
        "status 11",
    ] {
        assert!(log.contains(step), "{step} missing from the log:\n{log}");
    }
    let flow = model.flow.get_untracked();
    assert_eq!(flow.step, sota_flow::Step::Done);
}

#[wasm_bindgen_test]
async fn the_runner_flashes_over_ymodem_and_the_rom_bootloader() {
    let image = sota_sim::test_image(9 * 1024 + 5, 2);
    let (ending, _) = upgrade(Protocol::Ymodem, &image, ExpectedDigests::default()).await;
    assert_eq!(
        ending,
        Ending::Succeeded(format!(
            "the bootloader acknowledged all {} bytes over YMODEM",
            image.len()
        ))
    );
    let (ending, model) = upgrade(Protocol::An3155, &image, ExpectedDigests::default()).await;
    assert!(
        matches!(&ending, Ending::Succeeded(s) if s.contains("read back identical")),
        "{ending:?}"
    );
    let chip = model.chip.get_untracked().unwrap();
    assert!(chip.contains("0x410"), "{chip}");
}

#[wasm_bindgen_test]
async fn a_digest_mismatch_stops_before_the_mcu_gets_a_byte() {
    let image = sota_sim::test_image(4096, 3);
    let own = Digester::digest(&image);
    let wrong = ExpectedDigests::parse(&own.md5, "00000000", "").unwrap();
    for protocol in [Protocol::At, Protocol::Ymodem] {
        let (ending, model) = upgrade(protocol, &image, wrong.clone()).await;
        match ending {
            Ending::Failed(why) => assert!(why.contains("CRC32"), "{why}"),
            other => panic!("{protocol:?}: expected a failure, got {other:?}"),
        }
        let sent: usize = model
            .raw
            .get_untracked()
            .iter()
            .filter(|c| c.sent && c.len > 64)
            .count();
        assert_eq!(sent, 0, "{protocol:?}: no firmware-sized write may happen");
    }
}

#[wasm_bindgen_test]
async fn a_file_reads_back_in_ranges() {
    let bytes = sota_sim::test_image(3000, 4);
    let b = blob(&bytes);
    assert_eq!(
        file::read_range(&b, 10, 2000).await.unwrap(),
        bytes[10..2000]
    );
    assert_eq!(
        file::read_range(&b, 2990, 4000).await.unwrap(),
        bytes[2990..]
    );
}
