//! The module side of AT SOTA survives any byte stream from the MCU, split anywhere, with time
//! passing, and never sends a read reply longer than it announced.
#![no_main]

use core::time::Duration;
use libfuzzer_sys::fuzz_target;
use sota_link::at_sota::{Config, FileServer, FirmwareInfo, Module, Plan};
use sota_link::Endpoint;

fuzz_target!(|data: &[u8]| {
    let firmware: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    let info = FirmwareInfo {
        size: 3000,
        md5: "0".repeat(32),
        crc32: 1,
        sha256: "0".repeat(64),
    };
    let plan = Plan {
        component: "STM32".into(),
        source_version: String::new(),
        target_version: "2".into(),
        min_battery: 0,
        min_signal: -113,
        use_space: 0,
    };
    let mut server = FileServer::new(Module::new(Config::default()), plan, info, firmware, 1024);
    let mut out = Vec::new();
    // The first byte of each chunk says how long it is and how much time passes.
    let mut now = Duration::ZERO;
    let mut rest = data;
    while let Some((&head, tail)) = rest.split_first() {
        let len = (head as usize % 64).min(tail.len());
        server.handle_input(now, &tail[..len]);
        rest = &tail[len..];
        now += Duration::from_millis(head as u64 * 300);
        server.handle_timeout(now);
        server.poll_transmit(&mut out);
        while server.poll_event().is_some() {}
    }
    assert!(
        out.len() <= data.len() * 2 + 64 * 1024 * 4,
        "unbounded output"
    );
});
