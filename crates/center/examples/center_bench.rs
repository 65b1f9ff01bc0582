//! Load generator behind `cargo xtask bench center`.
//!
//! - `prepare <api-url> <token> <file>`: create a product, a device and a
//!   package of that product holding `<file>`; print `link <url>` (a per-device download link).
//! - `download <url> <clients> <seconds>`: `clients` concurrent clients
//!   download `<url>` whole, over and over, for about `seconds`; print `mbps <n>`.
//! - `applicability <devices> <list>`: decide which of 3 active plans apply to
//!   each of `devices` synthetic devices (one plan with a whitelist and a
//!   blacklist of `list` keys each); print `seconds <n>` and `matches <n>`.
//! - `bucket <endpoint> <bucket>`: create a bucket on an S3-compatible test
//!   server that takes unsigned requests (moto).
//! - `object-url <endpoint> <bucket>`: print `url <u>`, the address of the
//!   bucket's one object on that server (to download it without the center).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use sota_center::package::PackageType;
use sota_center::plan::{ComponentRule, PlanRules};

type Result<T = ()> = std::result::Result<T, String>;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("prepare") if args.len() == 4 => prepare(&args[1], &args[2], &args[3]).await,
        Some("download") if args.len() == 4 => download(&args[1], parse(&args[2]), parse(&args[3])).await,
        Some("applicability") if args.len() == 3 => {
            applicability(parse(&args[1]), parse(&args[2]));
            Ok(())
        }
        Some("bucket") if args.len() == 3 => bucket(&args[1], &args[2]).await,
        Some("object-url") if args.len() == 3 => object_url(&args[1], &args[2]).await,
        _ => Err("usage: center_bench prepare <api> <token> <file> | download <url> <clients> <seconds> | applicability <devices> <list> | bucket <endpoint> <bucket> | object-url <endpoint> <bucket>".into()),
    };
    if let Err(e) = r {
        eprintln!("center_bench: {e}");
        std::process::exit(1);
    }
}

fn parse(s: &str) -> usize {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s}"))
}

async fn prepare(api: &str, token: &str, file: &str) -> Result {
    let http = reqwest::Client::new();
    let send = |r: reqwest::RequestBuilder| async move {
        let r = r
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let s = r.status();
        let v: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
        if s.is_success() {
            Ok(v)
        } else {
            Err(format!("{s}: {v}"))
        }
    };
    send(
        http.post(format!("{api}/products"))
            .json(&serde_json::json!({"product_key": "bench", "name": "bench"})),
    )
    .await?;
    send(
        http.put(format!("{api}/products/bench/devices/bench-1"))
            .json(&serde_json::json!({"components": {"MCU": "1"}})),
    )
    .await?;
    let bytes = tokio::fs::read(file)
        .await
        .map_err(|e| format!("{file}: {e}"))?;
    let form = reqwest::multipart::Form::new()
        .text("product_key", "bench")
        .text("name", "bench")
        .text("component_type", "SOTA")
        .text("package_type", "full")
        .text("target_version", "2")
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name("bench.bin"),
        );
    let t = Instant::now();
    let pkg = send(http.post(format!("{api}/packages")).multipart(form)).await?;
    eprintln!(
        "upload + digest of {file}: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let id = pkg["id"].as_i64().ok_or("no package id")?;
    let link = send(
        http.post(format!("{api}/packages/{id}/files/0/links"))
            .json(&serde_json::json!({"product_key": "bench", "device_key": "bench-1"})),
    )
    .await?;
    println!("link {}", link["url"].as_str().ok_or("no url")?);
    Ok(())
}

async fn bucket(endpoint: &str, bucket: &str) -> Result {
    let r = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .map_err(|e| format!("{endpoint}: {e}"))?;
    if !r.status().is_success() {
        return Err(format!(
            "creating bucket {bucket} on {endpoint}: {}",
            r.status()
        ));
    }
    Ok(())
}

async fn object_url(endpoint: &str, bucket: &str) -> Result {
    let listing = reqwest::get(format!("{endpoint}/{bucket}?list-type=2"))
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("listing {bucket} on {endpoint}: {e}"))?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    let keys: Vec<&str> = listing
        .split("<Key>")
        .skip(1)
        .filter_map(|s| s.split_once("</Key>").map(|(k, _)| k))
        .collect();
    match keys[..] {
        [key] => {
            println!("url {endpoint}/{bucket}/{key}");
            Ok(())
        }
        _ => Err(format!(
            "bucket {bucket} should hold one object, not {keys:?}"
        )),
    }
}

async fn download(url: &str, clients: usize, seconds: usize) -> Result {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .map_err(|e| e.to_string())?;
    let total = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds as u64);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, url, total) = (http.clone(), url.to_string(), total.clone());
        tasks.push(tokio::spawn(async move {
            // Every client finishes at least one whole download.
            loop {
                let r = http.get(&url).send().await.map_err(|e| e.to_string())?;
                if !r.status().is_success() {
                    return Err(format!("{url}: {}", r.status()));
                }
                let mut body = r.bytes_stream();
                while let Some(chunk) = body.next().await {
                    total.fetch_add(
                        chunk.map_err(|e| e.to_string())?.len() as u64,
                        Ordering::Relaxed,
                    );
                }
                if Instant::now() >= deadline {
                    return Ok::<(), String>(());
                }
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    let secs = start.elapsed().as_secs_f64();
    let bytes = total.load(Ordering::Relaxed) as f64;
    println!("mbps {:.1}", bytes / secs / 1e6);
    eprintln!("{:.0} MB in {secs:.2} s by {clients} clients", bytes / 1e6);
    Ok(())
}

fn applicability(devices: usize, list: usize) {
    // Synthetic fleet: keys dev-0000000.., MCU versions 1..4, module versions A0..A2.
    let keys: Vec<String> = (0..devices).map(|i| format!("dev-{i:07}")).collect();
    let versions: Vec<[(String, String); 2]> = (0..devices)
        .map(|i| {
            [
                ("MCU".to_string(), format!("{}", 1 + i % 4)),
                ("MOD".to_string(), format!("A{}", i % 3)),
            ]
        })
        .collect();
    let step = devices.max(1) / list.max(1);
    let whitelist: HashSet<String> = (0..list)
        .map(|i| keys[(i * step) % devices].clone())
        .collect();
    let blacklist: HashSet<String> = (0..list)
        .map(|i| keys[(i * step + step / 2) % devices].clone())
        .collect();
    let full = ComponentRule {
        identity: "MCU".into(),
        package_type: PackageType::Full,
        source_version: None,
        target_version: "4".into(),
    };
    let delta = ComponentRule {
        identity: "MOD".into(),
        package_type: PackageType::Delta,
        source_version: Some("A1".into()),
        target_version: "A2".into(),
    };
    let plans = [
        PlanRules {
            product_id: 1,
            whitelist,
            blacklist: blacklist.clone(),
            components: vec![full.clone()],
        },
        PlanRules {
            product_id: 1,
            whitelist: HashSet::new(),
            blacklist: HashSet::new(),
            components: vec![delta],
        },
        PlanRules {
            product_id: 1,
            whitelist: HashSet::new(),
            blacklist,
            components: vec![full],
        },
    ];
    let t = Instant::now();
    let mut matches = 0u64;
    for (key, comps) in keys.iter().zip(&versions) {
        let current = |id: &str| comps.iter().find(|(i, _)| i == id).map(|(_, v)| v.as_str());
        for p in &plans {
            if p.applies(1, key, current) {
                matches += 1;
            }
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!("seconds {secs:.3}");
    println!("matches {matches}");
}
