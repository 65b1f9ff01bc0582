//! The AN3155 flasher's receive path survives any replies and timeouts.
#![no_main]

use core::time::Duration;
use libfuzzer_sys::fuzz_target;
use sota_link::an3155::{Config, Flasher, Options};
use sota_link::Endpoint;

fuzz_target!(|data: &[u8]| {
    let image = vec![0x11; 600];
    let Ok(mut flasher) = Flasher::new(
        &image,
        Options::default(),
        Config::default(),
        Duration::ZERO,
    ) else {
        return;
    };
    let mut now = Duration::ZERO;
    let mut out = Vec::new();
    for chunk in data.chunks(5) {
        if chunk[0] == 0xEE {
            now += Duration::from_secs(2);
            flasher.handle_timeout(now);
        } else {
            flasher.handle_input(now, chunk);
        }
        flasher.poll_transmit(&mut out);
        while flasher.poll_event().is_some() {}
    }
});
