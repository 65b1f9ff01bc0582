//! The external-broker mode against Debian's mosquitto, started by the test
//! on free loopback ports with the configuration `sota-center broker
//! mosquitto-config` writes: provisioned devices, the center as a client, the
//! ACL, and one case with mosquitto_pub / mosquitto_sub. Needs the mosquitto
//! and mosquitto-clients packages (`cargo xtask setup` installs them).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::mosquitto::{connect_provisioned, free_port, Mosquitto};
use common::mqtt::{plans, seed_plan, Dev, PRODUCT};
use common::Center;
use reqwest::StatusCode;
use sota_engine::Status;
use sota_protocol::{ComponentVersion, Down, Up};

fn run(args: &[&str], data: &Path) -> String {
    common::run_cli(args, data, common::database_for(data))
}

#[tokio::test]
async fn the_channel_runs_through_mosquitto() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("center");
    let files = dir.path().join("mosquitto");
    let (port, ws_port) = (free_port(), free_port());
    let conf = run(
        &[
            "broker",
            "mosquitto-config",
            "--dir",
            files.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--ws-listen",
            &format!("127.0.0.1:{ws_port}"),
        ],
        &data,
    );
    let mosquitto = Mosquitto::start(&conf, port);
    let addr = format!("127.0.0.1:{port}");
    let center = Center::start_in(&data, &["--no-demo", "--broker", &format!("mqtt://{addr}")]);
    assert!(
        center
            .startup
            .iter()
            .any(|l| l.contains("(external broker)")),
        "{:?}",
        center.startup
    );
    let seeded = seed_plan(&center, serde_json::json!({})).await;

    let provision = |device: &str| {
        run(
            &[
                "broker",
                "provision",
                "--dir",
                files.to_str().unwrap(),
                "--product",
                PRODUCT,
                "--device",
                device,
            ],
            &data,
        )
    };
    let (one_secret, two_secret) = (provision("one"), provision("two"));
    mosquitto.reload();
    let mut one = connect_provisioned(&addr, "one", &one_secret).await;
    let mut two = connect_provisioned(&addr, "two", &two_secret).await;

    // Wrong secrets and other devices' secrets are refused.
    assert!(Dev::connect(&addr, "one", "wrong").await.is_err());
    assert!(Dev::connect(&addr, "one", &two_secret).await.is_err());
    assert!(
        Dev::connect(&addr, "one", &seeded.product_secret)
            .await
            .is_err(),
        "no dynamic registration through mosquitto"
    );

    // A whole upgrade, the center answering through mosquitto.
    one.versions("1_0_0").await;
    let offered = plans(one.ask(&Up::Request).await);
    assert_eq!(
        offered.iter().map(|o| o.plan_id).collect::<Vec<_>>(),
        [seeded.plan_id]
    );
    let Down::Firmware(fw) = one.ask(&Up::accept(seeded.plan_id, "STM32")).await else {
        panic!("no firmware info")
    };
    assert_eq!(
        center
            .http
            .get(&fw.url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec(),
        seeded.image
    );
    one.status(seeded.plan_id, Status::Updating, None, None)
        .await;
    one.status(seeded.plan_id, Status::UpdateOk, None, Some("2_0_0"))
        .await;
    assert!(plans(one.sync().await).is_empty());
    let (s, devices) = center
        .get(&format!("/plans/{}/devices", seeded.plan_id))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        devices[0]["components"][0]["outcome"], "succeeded",
        "{devices}"
    );

    // The ACL: neither another device's topics nor the center's. mosquitto 2.0
    // grants such a SUBSCRIBE but delivers nothing the ACL denies: two's traffic
    // below must not reach one, whose next message is its own answer.
    for filter in [two.id.down(), "sota/+/+/up".to_string(), "#".to_string()] {
        let codes = one.subscribe(&filter).await;
        assert_eq!(codes.len(), 1, "{filter}");
    }
    two.versions("1_0_0").await;
    two.sync().await;
    let forged = Up::Versions {
        components: vec![ComponentVersion {
            comp_no: "STM32".into(),
            version: "9_9_9".into(),
        }],
    };
    one.publish_raw(&two.id.up(), forged.to_json()).await;
    one.publish_raw(
        &two.id.down(),
        Down::Registered {
            device_secret: "forged".into(),
        }
        .to_json(),
    )
    .await;
    one.sync().await;
    assert!(
        matches!(two.ask(&Up::Request).await, Down::Plans { .. }),
        "nothing forged reached two"
    );
    let (_, device) = center
        .get(&format!("/products/{PRODUCT}/devices/two"))
        .await;
    assert_eq!(device["components"]["STM32"], "1_0_0", "{device}");
    // With the mosquitto clients: mosquitto_sub as "two" receives a push,
    // mosquitto_pub as "one" reports a version.
    let (one_id, two_id) = (one.id.clone(), two.id.clone());
    drop(one);
    drop(two);
    let port_text = port.to_string();
    let sub = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port_text,
            "-u",
            &two_id.username(),
            "-P",
            &two_secret,
            "-t",
            &two_id.down(),
            "-C",
            "1",
            "-W",
            "10",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub (package mosquitto-clients)");
    // Until it has subscribed a push would be lost: wait for mosquitto to count it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (s, report) = center
        .post("/push", serde_json::json!({"at": "2026-01-01T10:00:00Z"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(
        report["devices"],
        serde_json::json!([two_id.to_string()]),
        "{report}"
    );
    let out = sub.wait_with_output().unwrap();
    let pushed = sota_protocol::decode_down(out.stdout.trim_ascii())
        .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(
        plans(pushed).iter().map(|o| o.plan_id).collect::<Vec<_>>(),
        [seeded.plan_id]
    );

    let report = Up::Versions {
        components: vec![ComponentVersion {
            comp_no: "STM32".into(),
            version: "3_0_0".into(),
        }],
    };
    let ok = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port_text,
            "-q",
            "1",
            "-u",
            &one_id.username(),
            "-P",
            &one_secret,
            "-t",
            &one_id.up(),
            "-m",
        ])
        .arg(String::from_utf8(report.to_json()).unwrap())
        .status()
        .expect("mosquitto_pub (package mosquitto-clients)");
    assert!(ok.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, device) = center
            .get(&format!("/products/{PRODUCT}/devices/one"))
            .await;
        if device["components"]["STM32"] == "3_0_0" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the version from mosquitto_pub never arrived: {device}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
