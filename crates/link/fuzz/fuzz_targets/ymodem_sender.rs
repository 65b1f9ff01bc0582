//! The YMODEM sender's receive path survives any replies and timeouts, and only reports success
//! after the receiver acknowledged every data block.
#![no_main]

use core::time::Duration;
use libfuzzer_sys::fuzz_target;
use sota_link::ymodem::{Config, Event, Sender};
use sota_link::Endpoint;

fuzz_target!(|data: &[u8]| {
    let file = vec![0x5A; 2500];
    let Ok(mut sender) = Sender::new("fw.bin", file, Config::default(), Duration::ZERO) else {
        return;
    };
    let mut now = Duration::ZERO;
    let mut out = Vec::new();
    for chunk in data.chunks(3) {
        if chunk[0] == 0xFF {
            now += Duration::from_secs(11);
            sender.handle_timeout(now);
        } else {
            sender.handle_input(now, chunk);
        }
        sender.poll_transmit(&mut out);
    }
    let acks = data
        .iter()
        .filter(|&&b| b == sota_link::ymodem::ACK)
        .count();
    while let Some(event) = sender.poll_event() {
        if event == Event::Finished {
            // block 0, 3 data blocks and the EOT each need an ACK; the end-of-batch block's
            // ACK may be missing (the receiver closed the file when it acknowledged the EOT)
            assert!(acks >= 5, "finished after {acks} ACKs");
        }
    }
});
