//! Shared helpers of the link tests.
#![allow(dead_code)]

use core::time::Duration;
use sota_sim::line::{Disconnect, Faults};

/// Reproducible test data.
pub fn image(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

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
