//! Shared helpers of the link tests.
#![allow(dead_code)]

use core::time::Duration;
use sota_sim::line::{Disconnect, Faults};

pub use sota_sim::test_image as image;

/// The faults the issue asks for: bit flips at 1e-4, dropped bytes, one disconnect.
pub fn field_faults(seed: u64, disconnect_after: u64) -> Faults {
    Faults {
        bit_flip_rate: 1e-4,
        drop_rate: 1e-4,
        disconnect: Some(Disconnect {
            after_bytes: disconnect_after,
            duration: Duration::from_millis(1500),
        }),
        seed,
    }
}

/// Only a disconnect and reconnect.
pub fn disconnect_only(after_bytes: u64) -> Faults {
    Faults {
        disconnect: Some(Disconnect {
            after_bytes,
            duration: Duration::from_millis(1500),
        }),
        ..Faults::default()
    }
}
