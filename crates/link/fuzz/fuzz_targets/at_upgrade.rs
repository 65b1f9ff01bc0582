//! `sota_flow::AtUpgrade` (the AT module driven by the engine's session, two plans) survives
//! any sequence of MCU commands and raw bytes, with time passing, and no piece is ever read
//! for the MCU before the session verified the image (half the inputs announce a wrong
//! SHA-256, so that image never verifies).
#![no_main]

use core::time::Duration;
use libfuzzer_sys::fuzz_target;
use sota_engine::{
    ComponentType, Config as EngineConfig, Digester, DownloadMode, FirmwareInfo, Plan, Session,
    UiEvent,
};
use sota_flow::io::Driver;
use sota_flow::{AtUpgrade, Io, Notice};
use sota_link::at_sota::Config;
use sota_link::Endpoint;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let firmware: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
    let d = Digester::digest(&firmware);
    let plans = ["STM32", "BLE"].map(|c| Plan {
        identity: c.into(),
        component_type: ComponentType::Mcu,
        source_version: String::new(),
        target_version: "2".into(),
        min_battery: 0,
        min_signal_dbm: -113,
        space_needed: 0,
        package_size: 300,
        download_retries: None,
    });
    let infos = ["STM32", "BLE"].map(|c| FirmwareInfo {
        identity: c.into(),
        version: "2".into(),
        md5: d.md5.clone(),
        crc32: d.crc32.clone(),
        sha256: if mode & 1 == 1 {
            "0".repeat(64)
        } else {
            d.sha256.clone()
        },
        url: "file:///fw.bin".into(),
        size: 300,
        mode: DownloadMode::ConsoleDownloads,
    });
    let config = EngineConfig {
        piece_size: 128,
        ..EngineConfig::default()
    };
    let mut up = AtUpgrade::new(Config::default(), Session::new(config, Vec::new()));
    let mut store: Vec<u8> = Vec::new();
    let mut verified = false;
    let mut out = Vec::new();
    let mut now = Duration::ZERO;
    let mut reads = 0usize;
    let mut ops = data.iter();
    // Each byte picks a well-formed MCU command (so the session gets deep), a pause, or raw
    // bytes taken from the input.
    while let Some(&op) = ops.next() {
        let arg = ops.next().copied().unwrap_or(0);
        let line: Vec<u8> = match op % 12 {
            0 => b"ATE0\r".to_vec(),
            1 => b"AT+QIOTMCUVER=\"STM32\",\"1\"\r".to_vec(),
            2 => b"AT+QIOTMCUVER=\"BLE\",\"2\"\r".to_vec(),
            3 => b"AT+QIOTOTAREQ=1\r".to_vec(),
            4 => b"AT+QIOTUPDATE=1\r".to_vec(),
            5 => b"AT+QIOTUPDATE=0\r".to_vec(),
            6 => b"AT+QIOTUPDATE=2\r".to_vec(),
            7 => b"AT+QIOTUPDATE=3\r".to_vec(),
            8 | 9 => format!("AT+QIOTOTARD={},128\r", u32::from(arg) * 4).into_bytes(),
            10 => {
                now += Duration::from_secs(u64::from(arg) * 10);
                Vec::new()
            }
            _ => ops.by_ref().take(usize::from(arg % 32)).copied().collect(),
        };
        up.handle_input(now, &line);
        if up.poll_timeout().is_some_and(|t| t <= now) {
            up.handle_timeout(now);
        }
        loop {
            while let Some(notice) = up.poll_notice() {
                match notice {
                    Notice::Engine(UiEvent::Verified { .. }) => verified = true,
                    Notice::Engine(UiEvent::Finished(_)) => verified = false,
                    _ => {}
                }
            }
            let Some(io) = up.poll_io() else {
                break;
            };
            match io {
                Io::NeedPlans { .. } => {
                    let _ = up.provide_plans(plans.to_vec(), now);
                }
                Io::NeedFirmwareInfo { plan } => {
                    if let Some(info) = infos.iter().find(|i| i.identity == plan.identity) {
                        let _ = up.provide_info(info.clone(), now);
                    }
                }
                Io::Fetch { start, end, .. } => {
                    let bytes = firmware[start as usize..end as usize].to_vec();
                    up.fetched(start, bytes, now);
                }
                Io::Store { bytes, .. } => store.extend_from_slice(&bytes),
                Io::Discard { .. } => store.clear(),
                Io::Read { offset, len, .. } => {
                    // Nothing restores a session here, so every read is a piece for the MCU.
                    assert!(
                        verified,
                        "a piece was read for the MCU before the image was verified"
                    );
                    let piece = store[offset as usize..(offset + len) as usize].to_vec();
                    up.read_done(offset, piece, now);
                }
                Io::Report(_) => {}
            }
        }
        up.poll_transmit(&mut out);
        reads += 1;
    }
    assert!(out.len() <= reads * (300 + 1024), "unbounded output");
});
