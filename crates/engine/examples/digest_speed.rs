//! Native half of `cargo xtask bench digest`: MB/s of the combined MD5+CRC32+SHA-256 pass.
//! Usage: digest_speed <MiB> <runs>; prints one `mbps <value>` line per run.

use sota_engine::Digester;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let mib = args.next().and_then(Result::ok).unwrap_or(64);
    let runs = args.next().and_then(Result::ok).unwrap_or(5);
    // The same bytes as the browser half (byte i = i % 251), fed in the same 1 MiB chunks.
    let data: Vec<u8> = (0..mib << 20).map(|i| (i % 251) as u8).collect();
    for _ in 0..runs {
        let t = Instant::now();
        let mut d = Digester::new();
        data.chunks(1 << 20).for_each(|c| d.update(c));
        std::hint::black_box(d.finish());
        println!(
            "mbps {:.1}",
            data.len() as f64 / 1e6 / t.elapsed().as_secs_f64()
        );
    }
}
