//! Live changes as server-sent events, end to end: a real device (rumqttc)
//! reports to the center's embedded broker, and the plan's and the
//! verification job's event streams (read over HTTP, split by
//! `sota_api::events::EventStream`) carry each change; sign-in and 404 as the
//! other operator endpoints; an open stream does not hold the shutdown.

mod common;

use std::time::Duration;

use common::events::Events;
use common::mqtt::{plans, seed_plan, Dev, PRODUCT};
use common::Center;
use serde_json::json;
use sota_api::events::PlanEvent;
use sota_api::monitoring::Outcome;
use sota_api::verification::Outcome as JobOutcome;
use sota_engine::Status;
use sota_protocol::{Down, Up};

/// The next `upgrade` event of `events`: its status, percent and outcome, and its log line's
/// status.
async fn upgrade(events: &mut Events) -> (Status, Option<u8>, Outcome, Option<u8>) {
    match events.plan_event().await {
        PlanEvent::Upgrade { upgrade, log } => {
            assert_eq!(
                (upgrade.device_key.as_str(), upgrade.identity.as_str()),
                ("dev-1", "STM32")
            );
            (
                Status::from_code(upgrade.status).expect("an OTA status"),
                upgrade.percent,
                upgrade.outcome,
                log.map(|l| l.status),
            )
        }
        other => panic!("expected an upgrade event, got {other:?}"),
    }
}

async fn registered(center: &Center, secret: &str, device: &str) -> Dev {
    let (mqtt, _) = center.broker();
    let mut dev = Dev::connect(&mqtt, device, secret).await.unwrap();
    let Down::Registered { device_secret } = dev
        .ask(&Up::Register {
            product_secret: secret.to_string(),
        })
        .await
    else {
        panic!("not registered")
    };
    drop(dev);
    Dev::connect(&mqtt, device, &device_secret).await.unwrap()
}

#[tokio::test]
async fn a_devices_reports_reach_the_plans_event_stream() {
    let center = Center::start(&["--no-demo"]);
    let seeded = seed_plan(&center, json!({})).await;
    let plan = seeded.plan_id;

    // Signed in and checked like every operator endpoint.
    let anonymous = center
        .http
        .get(center.api(&format!("/plans/{plan}/events")))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let missing = center.get("/plans/999/events").await;
    common::assert_error(&missing, 404, "not_found");

    let mut events = Events::open(&center, &format!("/plans/{plan}/events")).await;
    assert!(matches!(events.plan_event().await, PlanEvent::Open));
    // A second watcher of the same plan gets the same changes.
    let mut other = Events::open(&center, &format!("/plans/{plan}/events")).await;
    assert!(matches!(other.plan_event().await, PlanEvent::Open));

    let mut dev = registered(&center, &seeded.product_secret, "dev-1").await;
    dev.versions("1_0_0").await;
    let offered = plans(dev.ask(&Up::Request).await);
    assert_eq!(offered[0].plan_id, plan);
    assert_eq!(
        upgrade(&mut events).await,
        (Status::None, None, Outcome::Pending, Some(0)),
        "the offer"
    );

    dev.status(plan, Status::Plan, None, None).await;
    assert_eq!(
        upgrade(&mut events).await,
        (Status::Plan, None, Outcome::Pending, Some(1))
    );
    let Down::Firmware(_) = dev.ask(&Up::accept(plan, "STM32")).await else {
        panic!("no firmware")
    };
    assert_eq!(upgrade(&mut events).await.0, Status::Accepted);
    dev.status(plan, Status::DownloadStart, None, None).await;
    dev.status(plan, Status::Downloading, Some(40), None).await;
    // A duplicate moves nothing, so it sends nothing.
    dev.status(plan, Status::Downloading, Some(40), None).await;
    dev.status(plan, Status::Downloading, Some(90), None).await;
    assert_eq!(upgrade(&mut events).await.0, Status::DownloadStart);
    assert_eq!(
        upgrade(&mut events).await,
        (Status::Downloading, Some(40), Outcome::Pending, Some(5))
    );
    assert_eq!(
        upgrade(&mut events).await,
        (Status::Downloading, Some(90), Outcome::Pending, Some(5))
    );
    for status in [Status::DownloadOk, Status::Updating] {
        dev.status(plan, status, None, None).await;
        assert_eq!(upgrade(&mut events).await.0, status);
    }
    // Success is the center's decision by the reported version: one event with the outcome.
    dev.versions("2_0_0").await;
    assert_eq!(
        upgrade(&mut events).await,
        (Status::UpdateOk, None, Outcome::Succeeded, Some(11))
    );

    // The other watcher got the same sequence.
    let mut seen = Vec::new();
    for _ in 0..9 {
        seen.push(upgrade(&mut other).await.0.code());
    }
    assert_eq!(seen, [0, 1, 2, 4, 5, 5, 8, 9, 11]);
}

#[tokio::test]
async fn a_verification_jobs_stream_follows_it_to_its_outcome_and_ends() {
    let center = Center::start(&["--no-demo"]);
    let seeded = seed_plan(&center, json!({})).await;
    let mut dev = registered(&center, &seeded.product_secret, "bench-1").await;
    dev.versions("1_0_0").await;
    dev.sync().await;
    let body =
        json!({"product_key": PRODUCT, "device_key": "bench-1", "component_identity": "STM32"});
    let (s, job) = center
        .post(
            &format!("/packages/{}/verifications", seeded.package_id),
            body,
        )
        .await;
    assert_eq!(s, 201, "{job}");
    let id = job["id"].as_i64().unwrap();
    let offered = plans(dev.recv().await);
    assert_eq!(offered[0].plan_id, -id);

    let mut events = Events::open(&center, &format!("/verifications/{id}/events")).await;
    let now = events.job().await.expect("the job as it is now");
    assert_eq!(
        (now.id, now.outcome, now.status_name.as_str()),
        (id, JobOutcome::Pending, "none")
    );

    let Down::Firmware(_) = dev.ask(&Up::accept(-id, "STM32")).await else {
        panic!("no firmware for the job")
    };
    let accepted = events.job().await.unwrap();
    assert_eq!(accepted.status_name, "accepted");
    assert!(accepted.log.last().unwrap().message.contains("accepted"));
    dev.status(-id, Status::Downloading, Some(30), None).await;
    let downloading = events.job().await.unwrap();
    assert_eq!(
        (downloading.status, downloading.percent),
        (Status::Downloading.code(), Some(30))
    );
    for status in [Status::DownloadOk, Status::Updating] {
        dev.status(-id, status, None, None).await;
        assert_eq!(events.job().await.unwrap().status, status.code());
    }
    dev.status(-id, Status::UpdateOk, None, Some("2_0_0")).await;
    // The report's line, then the outcome; the stream ends with it.
    let mut last = events.job().await.unwrap();
    while last.outcome == JobOutcome::Pending {
        last = events
            .job()
            .await
            .expect("the stream ended before the outcome");
    }
    assert_eq!(last.outcome, JobOutcome::Succeeded);
    assert!(last.finished_at.is_some());
    assert!(
        events.job().await.is_none(),
        "the stream ends with the outcome"
    );

    // An ended job's stream is its last state, then the end.
    let mut again = Events::open(&center, &format!("/verifications/{id}/events")).await;
    assert_eq!(again.job().await.unwrap().outcome, JobOutcome::Succeeded);
    assert!(again.job().await.is_none());
    let missing = center.get("/verifications/999/events").await;
    common::assert_error(&missing, 404, "not_found");
}

#[tokio::test]
async fn an_open_stream_does_not_hold_the_shutdown() {
    let mut center = Center::start(&["--no-demo"]);
    let seeded = seed_plan(&center, json!({})).await;
    let mut events = Events::open(&center, &format!("/plans/{}/events", seeded.plan_id)).await;
    assert!(matches!(events.plan_event().await, PlanEvent::Open));
    let pid = center.child.id().to_string();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(term.success());
    // The stream ends, and the center exits, well before the stream's keep-alive.
    assert!(events.next().await.is_none(), "the stream ends on shutdown");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = center.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the center did not exit within 10 s of SIGTERM with a stream open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
