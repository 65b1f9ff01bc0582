//! The device channel end to end: real MQTT clients (rumqttc) against the
//! center's embedded broker, the center's answers, and what monitoring shows
//! afterwards. Everything on 127.0.0.1; every wait is bounded.

mod common;

use common::mqtt::{connect_as, error_code, plans, seed_plan, Dev, PRODUCT, WAIT};
use common::Center;
use reqwest::StatusCode;
use rumqttc::SubscribeReasonCode;
use serde_json::{json, Value};
use sota_engine::Status;
use sota_protocol::{
    ComponentVersion, DeviceId, Down, ErrorCode, PackageType, StatusReport, Up, UpgradeMode,
};
use tokio::time::timeout;

struct Fixture {
    center: Center,
    package_id: i64,
    mqtt: String,
    product_secret: String,
    plan_id: i64,
    image: Vec<u8>,
}

async fn fixture() -> Fixture {
    fixture_with(json!({})).await
}

/// A center with one active full-package plan; `overrides` replace fields of the plan.
async fn fixture_with(overrides: Value) -> Fixture {
    let center = Center::start(&["--no-demo"]);
    let (mqtt, _) = center.broker();
    let s = seed_plan(&center, overrides).await;
    Fixture {
        mqtt,
        product_secret: s.product_secret,
        plan_id: s.plan_id,
        image: s.image,
        package_id: s.package_id,
        center,
    }
}

impl Fixture {
    /// Register a new device and connect it with its device secret; returns it and the secret.
    async fn registered(&self, device: &str) -> (Dev, String) {
        let mut dev = Dev::connect(&self.mqtt, device, &self.product_secret)
            .await
            .expect("product secret connects an unregistered device");
        let Down::Registered { device_secret } = dev
            .ask(&Up::Register {
                product_secret: self.product_secret.clone(),
            })
            .await
        else {
            panic!("no registration answer")
        };
        drop(dev);
        let dev = Dev::connect(&self.mqtt, device, &device_secret)
            .await
            .expect("device secret connects");
        (dev, device_secret)
    }

    async fn log_statuses(&self, device: &str) -> Vec<(u64, String)> {
        let (s, log) = self
            .center
            .get(&format!("/plans/{}/log", self.plan_id))
            .await;
        assert_eq!(s, StatusCode::OK, "{log}");
        log.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["device_key"] == device)
            .map(|e| {
                (
                    e["status"].as_u64().unwrap(),
                    e["source"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    async fn upgrade_of(&self, device: &str) -> Value {
        let (s, devices) = self
            .center
            .get(&format!("/plans/{}/devices", self.plan_id))
            .await;
        assert_eq!(s, StatusCode::OK, "{devices}");
        devices
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["device_key"] == device)
            .unwrap_or_else(|| panic!("{device} not in {devices}"))["components"][0]
            .clone()
    }
}

#[tokio::test]
async fn registration_request_accept_download_statuses_success_and_monitoring() {
    let f = fixture().await;
    let (mut dev, secret) = f.registered("dev-1").await;

    // Wrong secrets are refused; once the device secret was used, so is the product secret.
    let refused = Dev::connect(&f.mqtt, "dev-1", "not-the-secret")
        .await
        .err()
        .expect("a wrong secret is refused");
    assert!(refused.contains("BadUserNamePassword"), "{refused}");
    let refused = Dev::connect(&f.mqtt, "dev-1", &f.product_secret)
        .await
        .err()
        .expect("product secret after registration is refused");
    assert!(refused.contains("NotAuthorized"), "{refused}");
    assert_eq!(
        error_code(
            dev.ask(&Up::Register {
                product_secret: f.product_secret.clone()
            })
            .await
        ),
        ErrorCode::RegistrationRefused
    );

    dev.versions("1_0_0").await;
    let offers = plans(dev.ask(&Up::Request).await);
    assert_eq!(offers.len(), 1, "{offers:?}");
    let o = &offers[0];
    assert_eq!(
        (
            o.plan_id,
            o.comp_no.as_str(),
            o.package_type,
            o.src_ver.as_str(),
            o.tgt_ver.as_str()
        ),
        (f.plan_id, "STM32", PackageType::Full, "", "2_0_0")
    );
    assert_eq!(
        (
            o.size,
            o.download_retries,
            o.mode,
            o.min_battery,
            o.min_signal
        ),
        (3000, 3, UpgradeMode::Silent, 20, -110)
    );

    dev.status(f.plan_id, Status::Plan, None, None).await;
    // Accepted over a failed strategy check: the technician's reason goes into the log.
    let Down::Firmware(fw) = dev
        .ask(&Up::Accept {
            plan_id: f.plan_id,
            comp_no: "STM32".into(),
            message: "override: on mains power".into(),
        })
        .await
    else {
        panic!("no firmware info")
    };
    let digests = sota_engine::Digester::digest(&f.image);
    assert_eq!(
        (
            fw.version.as_str(),
            fw.size,
            fw.md5.as_str(),
            fw.crc.as_str(),
            fw.sha256.as_str()
        ),
        (
            "2_0_0",
            3000,
            digests.md5.as_str(),
            digests.crc32.as_str(),
            digests.sha256.as_str()
        )
    );
    let body = f.center.http.get(&fw.url).send().await.unwrap();
    assert_eq!(body.status(), StatusCode::OK);
    assert_eq!(
        body.bytes().await.unwrap().to_vec(),
        f.image,
        "the signed URL downloads the image"
    );

    dev.status(f.plan_id, Status::DownloadStart, None, None)
        .await;
    dev.status(f.plan_id, Status::Downloading, Some(10), None)
        .await;
    dev.status(f.plan_id, Status::Downloading, Some(50), None)
        .await;
    dev.status(f.plan_id, Status::Downloading, Some(50), None)
        .await; // duplicate
    dev.status(f.plan_id, Status::Downloading, Some(30), None)
        .await; // late
    dev.status(f.plan_id, Status::DownloadOk, None, None).await;
    dev.status(f.plan_id, Status::Plan, None, None).await; // late
    dev.sync().await;
    let mid = f.upgrade_of("dev-1").await;
    assert_eq!(
        (
            mid["status"].as_u64(),
            mid["outcome"].as_str(),
            mid["finished_at"].is_null()
        ),
        (Some(8), Some("pending"), true),
        "{mid}"
    );

    // Reconnect mid-upgrade: the plan is still offered and the upgrade goes on from its last status.
    drop(dev);
    let mut dev = Dev::connect(&f.mqtt, "dev-1", &secret).await.unwrap();
    assert_eq!(plans(dev.ask(&Up::Request).await).len(), 1);
    dev.status(f.plan_id, Status::Updating, None, None).await;
    dev.status(f.plan_id, Status::UpdateOk, None, Some("2_0_0"))
        .await;
    assert!(
        plans(dev.sync().await).is_empty(),
        "a finished upgrade is not offered again"
    );

    let done = f.upgrade_of("dev-1").await;
    assert_eq!(
        (done["status"].as_u64(), done["outcome"].as_str()),
        (Some(11), Some("succeeded")),
        "{done}"
    );
    assert!(
        done["finished_at"].is_string() && done["started_at"].is_string(),
        "{done}"
    );
    let steps: Vec<u64> = f
        .log_statuses("dev-1")
        .await
        .iter()
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(
        steps,
        [0, 1, 2, 4, 5, 5, 8, 9, 11],
        "duplicates and late reports add nothing"
    );
    let (_, log) = f.center.get(&format!("/plans/{}/log", f.plan_id)).await;
    let accepted = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["status"] == 2)
        .expect("an accepted entry");
    assert!(
        accepted["message"].as_str().is_some_and(
            |m| m.starts_with("accepted (override: on mains power); firmware link expires")
        ),
        "{accepted}"
    );
    let sources = f.log_statuses("dev-1").await;
    assert_eq!(
        (sources[0].1.as_str(), sources.last().unwrap().1.as_str()),
        ("center", "center"),
        "offer and success are the center's"
    );

    let (_, counts) = f.center.get(&format!("/plans/{}/counts", f.plan_id)).await;
    assert_eq!(counts["devices"], 1, "{counts}");
    assert_eq!(counts["by_outcome"]["succeeded"], 1, "{counts}");
    assert_eq!(counts["by_status"]["update_ok"], 1, "{counts}");
    let csv = f
        .center
        .http
        .get(f.center.api(&format!("/plans/{}/log.csv", f.plan_id)))
        .bearer_auth(&f.center.token)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    assert!(
        csv.starts_with(
            "id,at,plan_id,device_key,identity,source,status,status_name,percent,message\r\n"
        ),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 1 + steps.len(), "{csv}");
    let (_, history) = f
        .center
        .get(&format!("/products/{PRODUCT}/devices/dev-1/upgrades"))
        .await;
    assert_eq!(history["upgrades"][0]["outcome"], "succeeded", "{history}");
    assert_eq!(
        history["log"].as_array().unwrap().len(),
        steps.len(),
        "{history}"
    );
    let (_, device) = f
        .center
        .get(&format!("/products/{PRODUCT}/devices/dev-1"))
        .await;
    assert_eq!(device["components"]["STM32"], "2_0_0", "{device}");
}

#[tokio::test]
async fn success_and_failure_are_decided_by_the_reported_version() {
    let f = fixture().await;
    let (mut wrong, _) = f.registered("wrong").await;
    let (mut right, _) = f.registered("right").await;
    let (mut refuser, _) = f.registered("refuser").await;
    for dev in [&mut wrong, &mut right, &mut refuser] {
        dev.versions("1_0_0").await;
        assert_eq!(plans(dev.ask(&Up::Request).await).len(), 1);
    }
    for dev in [&mut wrong, &mut right] {
        assert!(matches!(
            dev.ask(&Up::accept(f.plan_id, "STM32")).await,
            Down::Firmware(_)
        ));
        dev.status(f.plan_id, Status::Updating, None, None).await;
    }
    // "update ok" while still on the old version is a failure.
    wrong
        .status(f.plan_id, Status::UpdateOk, None, Some("1_0_0"))
        .await;
    // The version report after updating decides success without an "update ok".
    right.versions("2_0_0").await;
    refuser
        .send(&Up::Refuse {
            plan_id: f.plan_id,
            comp_no: "STM32".into(),
            message: "battery 5 % < 20 %".into(),
        })
        .await;
    for dev in [&mut wrong, &mut right, &mut refuser] {
        assert!(
            plans(dev.sync().await).is_empty(),
            "an ended upgrade is not offered again"
        );
    }

    let w = f.upgrade_of("wrong").await;
    assert_eq!(
        (w["status"].as_u64(), w["outcome"].as_str()),
        (Some(12), Some("failed")),
        "{w}"
    );
    assert!(
        w["message"]
            .as_str()
            .unwrap()
            .contains("not the plan's target 2_0_0"),
        "{w}"
    );
    let r = f.upgrade_of("right").await;
    assert_eq!(
        (r["status"].as_u64(), r["outcome"].as_str()),
        (Some(11), Some("succeeded")),
        "{r}"
    );
    let x = f.upgrade_of("refuser").await;
    assert_eq!(
        (x["status"].as_u64(), x["outcome"].as_str()),
        (Some(3), Some("refused")),
        "{x}"
    );
    assert!(
        x["message"].as_str().unwrap().contains("battery 5 %"),
        "{x}"
    );
    let (_, counts) = f.center.get(&format!("/plans/{}/counts", f.plan_id)).await;
    assert_eq!(
        (
            counts["by_outcome"]["failed"].as_u64(),
            counts["by_outcome"]["succeeded"].as_u64(),
            counts["by_outcome"]["refused"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{counts}"
    );
}

#[tokio::test]
async fn hostile_messages_are_answered_with_errors_and_the_center_goes_on() {
    let f = fixture().await;
    let (mut dev, _) = f.registered("dev-1").await;
    let up = dev.id.up();
    let cases: Vec<(Vec<u8>, ErrorCode)> = vec![
        (b"not json".to_vec(), ErrorCode::BadJson),
        (br#"{"planId":1}"#.to_vec(), ErrorCode::MissingType),
        (br#"{"type":"reboot"}"#.to_vec(), ErrorCode::UnknownType),
        (
            br#"{"type":"request","deviceKey":"dev-2"}"#.to_vec(),
            ErrorCode::WrongDevice,
        ),
        (
            br#"{"type":"accept","planId":"one"}"#.to_vec(),
            ErrorCode::InvalidMessage,
        ),
        (
            format!(r#"{{"type":"request","pad":"{}"}}"#, "x".repeat(20_000)).into_bytes(),
            ErrorCode::TooLarge,
        ),
        (Up::accept(999, "STM32").to_json(), ErrorCode::UnknownPlan),
        (
            Up::Status(StatusReport {
                plan_id: f.plan_id,
                comp_no: "STM32".into(),
                status: Status::Updating,
                percent: None,
                version: None,
                message: String::new(),
            })
            .to_json(),
            ErrorCode::UnknownPlan,
        ),
    ];
    for (payload, code) in cases {
        dev.publish_raw(&up, payload.clone()).await;
        assert_eq!(
            error_code(dev.recv().await),
            code,
            "{}",
            String::from_utf8_lossy(&payload[..payload.len().min(80)])
        );
    }
    // A device logged in with the product secret but never registered.
    let mut stranger = Dev::connect(&f.mqtt, "stranger", &f.product_secret)
        .await
        .unwrap();
    assert_eq!(
        error_code(stranger.ask(&Up::Request).await),
        ErrorCode::UnknownDevice
    );
    assert_eq!(
        error_code(
            stranger
                .ask(&Up::Register {
                    product_secret: "wrong".into()
                })
                .await
        ),
        ErrorCode::RegistrationRefused
    );
    // And the center still answers.
    dev.versions("1_0_0").await;
    assert_eq!(plans(dev.ask(&Up::Request).await).len(), 1);
}

#[tokio::test]
async fn devices_reach_only_their_own_topics() {
    let f = fixture().await;
    let (mut one, _) = f.registered("one").await;
    let (mut two, _) = f.registered("two").await;
    two.versions("1_0_0").await;
    two.sync().await;

    for filter in [
        two.id.down(),
        "sota/#".into(),
        "sota/+/+/up".into(),
        two.id.up(),
        "#".into(),
    ] {
        assert_eq!(
            one.subscribe(&filter).await,
            [SubscribeReasonCode::Failure],
            "{filter}"
        );
    }
    // Writing on another device's topics reaches neither the center nor the device.
    one.publish_raw(
        &two.id.up(),
        Up::Versions {
            components: vec![ComponentVersion {
                comp_no: "STM32".into(),
                version: "9_9_9".into(),
            }],
        }
        .to_json(),
    )
    .await;
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
        "the forged message did not reach two"
    );
    let (_, device) = f
        .center
        .get(&format!("/products/{PRODUCT}/devices/two"))
        .await;
    assert_eq!(device["components"]["STM32"], "1_0_0", "{device}");

    // A device's client id must be its username, so it cannot take over another's session.
    let secret = f.product_secret.clone();
    let err = connect_as(
        &f.mqtt,
        &DeviceId::new(PRODUCT, "two").unwrap().username(),
        &DeviceId::new(PRODUCT, "new").unwrap().username(),
        &secret,
    )
    .await
    .err()
    .unwrap();
    assert!(err.contains("NotAuthorized"), "{err}");
    // Nobody logs in as the center without its secret.
    let err = connect_as(&f.mqtt, "sota-center", "sota-center", &secret)
        .await
        .err()
        .unwrap();
    assert!(err.contains("BadUserNamePassword"), "{err}");
}

#[tokio::test]
async fn the_websocket_listener_speaks_mqtt() {
    let f = fixture().await;
    let (_, ws) = f.center.broker();
    let user = DeviceId::new(PRODUCT, "web-1").unwrap().username();
    let broker = format!("http://{ws}");
    assert_eq!(
        connect_over_websocket(&broker, &user, "wrong").await,
        rumqttc::ConnectReturnCode::BadUserNamePassword
    );
    assert_eq!(
        connect_over_websocket(&broker, &user, &f.product_secret).await,
        rumqttc::ConnectReturnCode::Success
    );
}

#[tokio::test]
async fn pushes_on_ten_minute_boundaries_inside_the_push_period_only() {
    let f = fixture_with(json!({
        "time_zone": "Asia/Shanghai",
        "push_period": {"start": "22:00", "end": "06:00"},
        "upgrade_mode": "manual",
        "texts": {"zh": "升级固件？", "en": "Upgrade the firmware?", "de": "Firmware aktualisieren?"},
    }))
    .await;
    let (mut waiting, _) = f.registered("waiting").await;
    let (mut refuser, _) = f.registered("refuser").await;
    for dev in [&mut waiting, &mut refuser] {
        dev.versions("1_0_0").await;
    }
    // The refuser requests at once (answered whatever the period) and refuses.
    let offers = plans(refuser.ask(&Up::Request).await);
    assert_eq!(offers[0].mode, UpgradeMode::Manual);
    assert_eq!(offers[0].texts.len(), 3, "every language the plan has");
    refuser
        .send(&Up::Refuse {
            plan_id: f.plan_id,
            comp_no: "STM32".into(),
            message: "user said no".into(),
        })
        .await;
    refuser.sync().await;

    let push = |at: &'static str| {
        let c = &f.center;
        async move {
            let (s, report) = c.post("/push", json!({ "at": at })).await;
            assert_eq!(s, StatusCode::OK, "{report}");
            report
        }
    };
    // 12:10 in Shanghai: outside 22:00–06:00.
    let r = push("2026-01-01T04:10:00Z").await;
    assert_eq!(
        (
            r["plans"].as_array().unwrap().len(),
            r["devices"].as_array().unwrap().len()
        ),
        (0, 0),
        "{r}"
    );
    // 03:15: inside, but not on a 10-minute boundary.
    let r = push("2026-01-01T19:15:00Z").await;
    assert_eq!(r["plans"].as_array().unwrap().len(), 0, "{r}");
    // 03:10: due; only the device that has not refused gets it.
    let r = push("2026-01-01T19:10:30Z").await;
    assert_eq!(r["at"], "2026-01-01T19:10:00Z", "{r}");
    assert_eq!(r["plans"], json!([f.plan_id]), "{r}");
    assert_eq!(r["devices"], json!([format!("{PRODUCT}/waiting")]), "{r}");
    let pushed = plans(waiting.recv().await);
    assert_eq!((pushed.len(), pushed[0].plan_id), (1, f.plan_id));
    // Nothing else arrived for the refuser: its next message is the answer to this probe.
    refuser.publish_raw(&refuser.id.up(), b"{}".to_vec()).await;
    assert_eq!(error_code(refuser.recv().await), ErrorCode::MissingType);

    // Once accepted, the upgrade goes on by itself: no more pushes.
    assert!(matches!(
        waiting.ask(&Up::accept(f.plan_id, "STM32")).await,
        Down::Firmware(_)
    ));
    let r = push("2026-01-01T19:20:00Z").await;
    assert_eq!(
        (
            r["plans"].as_array().unwrap().len(),
            r["devices"].as_array().unwrap().len()
        ),
        (1, 0),
        "{r}"
    );

    let (s, bad) = f.center.post("/push", json!({ "at": "yesterday" })).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
}

#[tokio::test]
async fn verification_jobs_run_over_the_channel_and_end_by_version() {
    let f = fixture().await;
    let (mut good, _) = f.registered("good").await;
    let (mut bad, _) = f.registered("bad").await;
    for dev in [&mut good, &mut bad] {
        dev.versions("1_0_0").await;
        dev.sync().await;
    }
    let mut jobs = Vec::new();
    for dev in [&mut good, &mut bad] {
        let body = json!({"product_key": PRODUCT, "device_key": dev.id.device, "component_identity": "STM32"});
        let (s, job) = f
            .center
            .post(&format!("/packages/{}/verifications", f.package_id), body)
            .await;
        assert_eq!(s, StatusCode::CREATED, "{job}");
        let job_id = job["id"].as_i64().unwrap();
        // Offered at once to the connected device, as a plan with the negative job id.
        let offered = plans(dev.recv().await);
        assert_eq!(
            (
                offered.len(),
                offered[0].plan_id,
                offered[0].tgt_ver.as_str()
            ),
            (1, -job_id, "2_0_0")
        );
        let Down::Firmware(fw) = dev.ask(&Up::accept(-job_id, "STM32")).await else {
            panic!("no firmware for the job")
        };
        assert_eq!(fw.plan_id, -job_id);
        let image = f
            .center
            .http
            .get(&fw.url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(image.to_vec(), f.image);
        for (status, percent) in [
            (Status::DownloadStart, None),
            (Status::Downloading, Some(50)),
            (Status::Downloading, Some(50)),
            (Status::DownloadOk, None),
            (Status::Updating, None),
        ] {
            dev.status(-job_id, status, percent, None).await;
        }
        jobs.push(job_id);
    }
    good.status(-jobs[0], Status::UpdateOk, None, Some("2_0_0"))
        .await;
    bad.status(-jobs[1], Status::UpdateOk, None, Some("1_0_0"))
        .await;
    for dev in [&mut good, &mut bad] {
        dev.sync().await;
    }

    let (_, job) = f.center.get(&format!("/verifications/{}", jobs[0])).await;
    assert_eq!(job["outcome"], "succeeded", "{job}");
    let lines: Vec<&str> = job["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        lines.iter().filter(|l| l.contains("downloading")).count(),
        1,
        "a duplicate report adds no line: {lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("device: accepted")),
        "{lines:?}"
    );
    assert!(
        lines
            .last()
            .unwrap()
            .contains("2_0_0, the package's target"),
        "{lines:?}"
    );
    let (_, job) = f.center.get(&format!("/verifications/{}", jobs[1])).await;
    assert_eq!(job["outcome"], "failed", "{job}");
    let last = job["log"].as_array().unwrap().last().unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        last.contains("its version is 1_0_0, not the package's target 2_0_0"),
        "{last}"
    );
    // An ended job is not offered again; the plan still is.
    let offered = plans(bad.ask(&Up::Request).await);
    assert_eq!(
        offered.iter().map(|o| o.plan_id).collect::<Vec<_>>(),
        [f.plan_id]
    );
}

/// MQTT CONNECT over the center's own `/mqtt` WebSocket; the broker's CONNACK code.
async fn connect_over_websocket(
    http_url: &str,
    username: &str,
    secret: &str,
) -> rumqttc::ConnectReturnCode {
    use futures::{SinkExt, StreamExt};
    use rumqttc::mqttbytes::v4::{Connect, Packet};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    let mut request = format!("{}/mqtt", http_url.replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "mqtt".parse().unwrap());
    let (mut ws, response) = timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "mqtt");
    let mut connect = Connect::new(username);
    connect.set_login(username, secret);
    let mut bytes = bytes::BytesMut::new();
    connect.write(&mut bytes).unwrap();
    ws.send(Message::Binary(bytes.freeze())).await.unwrap();
    let mut got = bytes::BytesMut::new();
    loop {
        match timeout(WAIT, ws.next()).await.expect("no CONNACK in time") {
            Some(Ok(Message::Binary(b))) => got.extend_from_slice(&b),
            other => panic!("unexpected {other:?}"),
        }
        match Packet::read(&mut got, 1 << 20) {
            Ok(Packet::ConnAck(ack)) => return ack.code,
            Ok(other) => panic!("unexpected packet {other:?}"),
            Err(_) => continue, // partial: read more
        }
    }
}

#[tokio::test]
async fn one_origin_serves_the_console_the_api_and_mqtt_over_websocket() {
    let dist = tempfile::tempdir().unwrap();
    std::fs::write(
        dist.path().join("index.html"),
        "<!doctype html><title>console</title>",
    )
    .unwrap();
    std::fs::write(dist.path().join("app.js"), "console.log(1)").unwrap();
    let c = Center::start(&["--no-demo", "--console-dir", dist.path().to_str().unwrap()]);
    let page = |path: &str| {
        let url = format!("{}{path}", c.url);
        async move {
            let r = reqwest::get(url).await.unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    assert_eq!(
        page("/").await,
        (
            StatusCode::OK,
            "<!doctype html><title>console</title>".into()
        )
    );
    assert_eq!(
        page("/app.js").await,
        (StatusCode::OK, "console.log(1)".into())
    );
    assert_eq!(
        page("/plans/7").await.1,
        "<!doctype html><title>console</title>",
        "the page's own routes get the index"
    );
    let (s, body) = page("/api/v1/nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(body.contains("\"error\":\"not_found\""), "{body}");

    let (_, product) = c
        .post(
            "/products",
            json!({"product_key": PRODUCT, "name": "Aroma"}),
        )
        .await;
    let secret = product["product_secret"].as_str().unwrap();
    let user = DeviceId::new(PRODUCT, "web-1").unwrap().username();
    assert_eq!(
        connect_over_websocket(&c.url, &user, "wrong").await,
        rumqttc::ConnectReturnCode::BadUserNamePassword
    );
    assert_eq!(
        connect_over_websocket(&c.url, &user, secret).await,
        rumqttc::ConnectReturnCode::Success
    );
}

#[tokio::test]
async fn of_two_active_plans_for_one_component_only_the_older_reaches_a_device() {
    let f = fixture().await;
    let newer = json!({
        "name": "also STM32", "product_key": PRODUCT, "time_zone": "UTC", "upgrade_mode": "silent",
        "components": [{"identity": "STM32", "component_type": "SOTA", "package_id": f.package_id}],
    });
    let (s, newer) = f.center.post("/plans", newer).await;
    assert_eq!(s, StatusCode::CREATED, "{newer}");
    let newer = newer["id"].as_i64().unwrap();
    assert_eq!(
        f.center
            .post(&format!("/plans/{newer}/activate"), json!({}))
            .await
            .0,
        StatusCode::OK
    );
    let (mut dev, _) = f.registered("dev-1").await;
    dev.versions("1_0_0").await;
    let ids = |offers: Vec<sota_protocol::PlanOffer>| {
        offers.iter().map(|o| o.plan_id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(plans(dev.ask(&Up::Request).await)),
        [f.plan_id],
        "the older plan wins"
    );
    assert_eq!(
        ids(plans(dev.ask(&Up::Request).await)),
        [f.plan_id],
        "every time"
    );
    // Paused, the older one steps aside.
    assert_eq!(
        f.center
            .post(&format!("/plans/{}/pause", f.plan_id), json!({}))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(ids(plans(dev.ask(&Up::Request).await)), [newer]);
}

#[tokio::test]
async fn a_plan_component_delivers_the_file_it_names() {
    let f = fixture().await;
    let (first, second) = (vec![1u8; 100], vec![2u8; 250]);
    let fields = [
        ("product_key", PRODUCT),
        ("name", "MODULE 3"),
        ("component_type", "FOTA"),
        ("package_type", "full"),
        ("target_version", "3_0_0"),
        ("remarks", ""),
    ];
    let (s, pkg) = f
        .center
        .upload(&fields, &[("a.bin", first), ("b.bin", second.clone())])
        .await;
    assert_eq!(s, StatusCode::CREATED, "{pkg}");
    let plan = |position: u32| {
        json!({
            "name": "module", "product_key": PRODUCT, "time_zone": "UTC", "upgrade_mode": "silent",
            "components": [{"identity": "MOD", "component_type": "FOTA", "package_id": pkg["id"], "file_position": position}],
        })
    };
    let (s, bad) = f.center.post("/plans", plan(2)).await;
    assert_eq!(
        (s, bad["error"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("invalid_file_position")
        ),
        "{bad}"
    );
    let (s, p) = f.center.post("/plans", plan(1)).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    assert_eq!(p["components"][0]["file_position"], 1, "{p}");
    let plan_id = p["id"].as_i64().unwrap();
    f.center
        .post(&format!("/plans/{plan_id}/activate"), json!({}))
        .await;

    let (mut dev, _) = f.registered("dev-1").await;
    dev.send(&Up::Versions {
        components: vec![ComponentVersion {
            comp_no: "MOD".into(),
            version: "2_0_0".into(),
        }],
    })
    .await;
    let offered = plans(dev.ask(&Up::Request).await);
    let module = offered
        .iter()
        .find(|o| o.plan_id == plan_id)
        .expect("the module plan");
    assert_eq!(
        (module.comp_type, module.size),
        (sota_protocol::CompType::Module, 250)
    );
    let Down::Firmware(fw) = dev.ask(&Up::accept(plan_id, "MOD")).await else {
        panic!("no firmware")
    };
    assert_eq!(fw.size, 250);
    assert_eq!(
        f.center
            .http
            .get(&fw.url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec(),
        second
    );
}
