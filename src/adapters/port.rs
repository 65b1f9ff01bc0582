//! One byte link to the MCU, whatever is behind it: a Web Serial port or a simulated MCU.
//! The flow loop writes bytes and waits for what arrives; it cannot tell the two apart.

use futures::channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures::StreamExt;
use std::rc::Rc;

/// What arrives from the MCU's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// Bytes, in order.
    Bytes(Vec<u8>),
    /// The link is gone (cable pulled, port closed); the text says what the browser said.
    Lost(String),
}

/// The sending half of a link, implemented by each kind of port.
pub trait Wire {
    /// Queues `bytes` for the MCU, in order; errors arrive as [`Incoming::Lost`].
    fn write(&self, bytes: &[u8]);
    /// Closes the link and releases the device.
    fn close(&self);
}

/// An open link: write with [`Port::write`], receive with [`Port::recv`].
pub struct Port {
    wire: Rc<dyn Wire>,
    rx: UnboundedReceiver<Incoming>,
    /// What the technician sees, e.g. "USB 0483:5740 at 115200 8N1".
    pub label: String,
}

/// The receiving end a [`Wire`] feeds.
pub type Inbox = UnboundedSender<Incoming>;

/// A new inbox and the receiver a [`Port`] reads from.
pub fn inbox() -> (Inbox, UnboundedReceiver<Incoming>) {
    unbounded()
}

impl Port {
    /// A port over `wire`, reading what the wire puts into the inbox behind `rx`.
    pub fn new(wire: Rc<dyn Wire>, rx: UnboundedReceiver<Incoming>, label: String) -> Self {
        Port { wire, rx, label }
    }

    /// Queues bytes for the MCU.
    pub fn write(&self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.wire.write(bytes);
        }
    }

    /// The next thing that arrives; `None` once the wire dropped its inbox.
    pub async fn recv(&mut self) -> Option<Incoming> {
        self.rx.next().await
    }

    /// Everything that already arrived, without waiting.
    pub fn try_recv(&mut self) -> Option<Incoming> {
        self.rx.try_recv().ok()
    }

    /// Closes the link.
    pub fn close(&self) {
        self.wire.close();
    }
}
