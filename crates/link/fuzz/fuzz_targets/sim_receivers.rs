//! The simulated MCUs' receive paths (YMODEM receiver, AN3155 bootloader, AT MCU) survive any
//! byte stream.
#![no_main]

use core::time::Duration;
use libfuzzer_sys::fuzz_target;
use sota_link::Endpoint;
use sota_sim::at_mcu::{AtMcu, McuConfig};
use sota_sim::bootloader::{Bootloader, BootloaderConfig};
use sota_sim::ymodem_receiver::{Receiver, ReceiverConfig};

fuzz_target!(|data: &[u8]| {
    let mut receiver = Receiver::new(ReceiverConfig::default(), Duration::ZERO);
    let mut boot = Bootloader::new(BootloaderConfig {
        extended_erase: data.first() == Some(&0x44),
        ..BootloaderConfig::default()
    });
    let mut mcu = AtMcu::new(McuConfig::default(), Duration::ZERO);
    let endpoints: [&mut dyn Endpoint; 3] = [&mut receiver, &mut boot, &mut mcu];
    let mut out = Vec::new();
    for endpoint in endpoints {
        let mut now = Duration::ZERO;
        for chunk in data.chunks(97) {
            endpoint.handle_input(now, chunk);
            now += Duration::from_millis(chunk[0] as u64 * 10);
            endpoint.handle_timeout(now);
            endpoint.poll_transmit(&mut out);
            out.clear();
        }
    }
});
