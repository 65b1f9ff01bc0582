//! The AT command parser never panics, and what it accepts it understood.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sota_link::at_sota::{parse, Command};

fuzz_target!(|line: &[u8]| {
    if let Command::Read { max_len, .. } = parse(line) {
        assert!(max_len > 0);
    }
});
