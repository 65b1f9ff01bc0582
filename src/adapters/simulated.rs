//! A simulated MCU in this page, from `sota-sim`, behind the same [`Port`] as Web Serial: a
//! newcomer sees the whole flow with no board, and tests run it without hardware.
//!
//! Bytes are paced as on a UART at the chosen baud rate (10 bits a byte, 11 with parity) in
//! both directions, so progress, rate and time left look as they will on a real board.

use super::clock::{now, sleep};
use super::port::{inbox, Inbox, Incoming, Port, Wire};
use core::time::Duration;
use sota_link::Endpoint;
use sota_sim::at_mcu::{AtMcu, McuComponent, McuConfig};
use sota_sim::bootloader::{Bootloader, BootloaderConfig};
use sota_sim::ymodem_receiver::{Receiver, ReceiverConfig};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen_futures::spawn_local;

/// Which MCU to simulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimMcu {
    /// An MCU built for a Quectel module: speaks QuecThing AT SOTA, runs `STM32` 1_0_0.
    At,
    /// An IAP bootloader that receives YMODEM-1K.
    Ymodem,
    /// The STM32F103 ROM bootloader (AN3155), 128 KiB of flash.
    An3155,
}

/// The identity and version the simulated AT MCU reports.
pub const SIM_COMPONENT: (&str, &str) = ("STM32", "1_0_0");

struct SimWire {
    mcu: RefCell<Box<dyn Endpoint>>,
    inbox: Inbox,
    /// Seconds per byte on the simulated line; zero for no pacing.
    byte_time: f64,
    /// When the line in each direction is free again.
    to_mcu_free: Cell<Duration>,
    from_mcu_free: Cell<Duration>,
    closed: Cell<bool>,
}

impl SimWire {
    fn slot(&self, free: &Cell<Duration>, len: usize) -> Duration {
        let start = free.get().max(now());
        let end = start + Duration::from_secs_f64(self.byte_time * len as f64);
        free.set(end);
        end
    }

    /// Sends what the MCU has to say, paced.
    fn flush(self: &Rc<Self>) {
        let mut out = Vec::new();
        self.mcu.borrow_mut().poll_transmit(&mut out);
        if out.is_empty() || self.closed.get() {
            return;
        }
        let at = self.slot(&self.from_mcu_free, out.len());
        let inbox = self.inbox.clone();
        spawn_local(async move {
            sleep(at.saturating_sub(now())).await;
            let _ = inbox.unbounded_send(Incoming::Bytes(out));
        });
    }
}

/// The `Wire` is the `Rc` so that writes can schedule work on the same device.
struct SimHandle(Rc<SimWire>);

impl Wire for SimHandle {
    fn write(&self, bytes: &[u8]) {
        let wire = Rc::clone(&self.0);
        let at = wire.slot(&wire.to_mcu_free, bytes.len());
        let bytes = bytes.to_vec();
        spawn_local(async move {
            sleep(at.saturating_sub(now())).await;
            if wire.closed.get() {
                return;
            }
            wire.mcu.borrow_mut().handle_input(now(), &bytes);
            wire.flush();
        });
    }

    fn close(&self) {
        self.0.closed.set(true);
    }
}

/// Starts a simulated MCU of kind `mcu` on a line of `baud` (0: no pacing).
pub fn open(mcu: SimMcu, baud: u32) -> Port {
    let t = now();
    let (device, parity): (Box<dyn Endpoint>, bool) = match mcu {
        SimMcu::At => {
            let config = McuConfig {
                components: vec![McuComponent::new(SIM_COMPONENT.0, SIM_COMPONENT.1)],
                ..McuConfig::default()
            };
            (Box::new(AtMcu::new(config, t)), false)
        }
        SimMcu::Ymodem => (Box::new(Receiver::new(ReceiverConfig::default(), t)), false),
        SimMcu::An3155 => (Box::new(Bootloader::new(BootloaderConfig::default())), true),
    };
    let bits = if parity { 11.0 } else { 10.0 };
    let byte_time = if baud == 0 {
        0.0
    } else {
        bits / f64::from(baud)
    };
    let (tx, rx) = inbox();
    let wire = Rc::new(SimWire {
        mcu: RefCell::new(device),
        inbox: tx,
        byte_time,
        to_mcu_free: Cell::new(t),
        from_mcu_free: Cell::new(t),
        closed: Cell::new(false),
    });
    // The MCU's own timers (retries, its start-up messages).
    let ticking = Rc::clone(&wire);
    spawn_local(async move {
        ticking.flush();
        while !ticking.closed.get() {
            let wait = ticking
                .mcu
                .borrow()
                .poll_timeout()
                .map_or(Duration::from_millis(100), |d| d.saturating_sub(now()))
                .clamp(Duration::from_millis(1), Duration::from_millis(100));
            sleep(wait).await;
            let due = ticking
                .mcu
                .borrow()
                .poll_timeout()
                .is_some_and(|d| d <= now());
            if due {
                ticking.mcu.borrow_mut().handle_timeout(now());
                ticking.flush();
            }
        }
    });
    let label = match mcu {
        SimMcu::At => "simulated MCU (QuecThing AT)",
        SimMcu::Ymodem => "simulated YMODEM bootloader",
        SimMcu::An3155 => "simulated STM32 ROM bootloader",
    };
    let label = if baud == 0 {
        label.to_string()
    } else {
        format!("{label}, {baud} baud")
    };
    Port::new(Rc::new(SimHandle(wire)), rx, label)
}
