//! Software MCUs and a serial link model, for tests, benchmarks and the console's demo mode.
//!
//! Each MCU is a sans-IO [`sota_link::Endpoint`] like the protocols it talks to, so a test joins
//! a protocol and an MCU with the [`line::Line`] model (bytes paced at a baud rate, latency,
//! bit flips, dropped bytes, a disconnect) and runs minutes of link time in milliseconds; the
//! CLI puts the same MCUs behind a pseudo-terminal for real peers. This crate is *not* a
//! cycle-accurate emulator: it follows the protocols' documents, not any one chip's timing.
//!
//! - [`ymodem_receiver`]: a YMODEM receiver (an IAP bootloader).
//! - [`bootloader`]: the STM32 ROM bootloader (AN3155) with a [`flash`] memory model.
//! - [`at_mcu`]: an MCU that upgrades itself through a QuecThing module with AT commands.
#![deny(missing_docs)]

pub mod at_mcu;
pub mod bootloader;
pub mod flash;
pub mod line;
mod rng;
pub mod ymodem_receiver;

/// `len` bytes of reproducible test data for images and files: the same `(len, seed)` always
/// gives the same bytes, different seeds give unrelated ones, and every byte value occurs (no
/// runs of 0xFF or 0x00 that a protocol might skip or compress).
///
/// The tests of this crate, the CLI's peer tests and the link benchmark all use it, so a
/// failure seen in one can be reproduced in another from its length and seed. It is xorshift64
/// (Marsaglia), hand-written because it is six lines; it is not random enough for anything
/// but test data.
pub fn test_image(len: usize, seed: u64) -> Vec<u8> {
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

#[cfg(test)]
mod tests {
    use super::test_image;

    #[test]
    fn test_images_are_reproducible_and_varied() {
        let a = test_image(64 * 1024, 1);
        assert_eq!(a.len(), 64 * 1024);
        assert_eq!(a, test_image(64 * 1024, 1));
        assert_eq!(
            &test_image(100, 1)[..],
            &a[..100],
            "a prefix of a longer image"
        );
        let b = test_image(64 * 1024, 2);
        let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
        assert!(same < 1024, "seeds 1 and 2 agree on {same} bytes");
        let mut seen = [0u32; 256];
        for &byte in &a {
            seen[byte as usize] += 1;
        }
        // 256 bytes per value on average: none missing, none dominating.
        assert!(seen.iter().all(|&n| (128..512).contains(&n)), "{seen:?}");
        assert!(test_image(0, 5).is_empty());
    }
}
