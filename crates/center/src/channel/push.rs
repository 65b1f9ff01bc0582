//! Pushes: every 10 minutes on the wall clock of each plan's time zone
//! (hh:00, hh:10, …), the active plans whose push period holds that moment go
//! to the connected devices they apply to and that have not yet accepted,
//! finished or refused them. A device's own request is answered at once,
//! whatever the period (see `messages`).
//!
//! The scheduler wakes at every UTC 5-minute boundary: zone offsets are
//! multiples of 15 minutes, so every zone's 10-minute boundary is one of them.
//! Time is an input ([`due`], [`next_tick`], [`cycle`]); only [`run`] reads the clock.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use jiff::Timestamp;
use serde::Serialize;
use sota_engine::Status;
use sota_protocol::{DeviceId, Down};
use sqlx::Row;
use utoipa::ToSchema;

use super::offers;
use crate::api::AppState;
use crate::error::ApiError;
use crate::plan::{self, period, Plan};
use crate::upgrade::{self, Key};

/// Minutes between pushes on a plan's wall clock.
pub const EVERY_MINUTES: i8 = 10;
/// Seconds between scheduler wake-ups (UTC).
const TICK_SECONDS: i64 = 300;

/// What one push cycle did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PushReport {
    /// The moment the cycle ran as (RFC 3339, on the minute).
    pub at: String,
    /// Active plans due at that moment.
    pub plans: Vec<i64>,
    /// Devices that were sent plans.
    pub devices: Vec<String>,
}

/// Whether `plan` is pushed at `at`: on a 10-minute boundary of its zone's
/// wall clock and inside its push period (all day without one).
pub fn due(plan: &Plan, at: Timestamp) -> Result<bool, ApiError> {
    let tz = period::time_zone(&plan.time_zone)?;
    let local = at.to_zoned(tz.clone());
    if local.minute() % EVERY_MINUTES != 0 || local.second() != 0 || local.subsec_nanosecond() != 0
    {
        return Ok(false);
    }
    match &plan.push_period {
        Some(p) => p.contains(&tz, at),
        None => Ok(true),
    }
}

/// The first scheduler wake-up after `now`.
pub fn next_tick(now: Timestamp) -> Timestamp {
    let next = (now.as_second().div_euclid(TICK_SECONDS) + 1) * TICK_SECONDS;
    Timestamp::from_second(next).unwrap_or(Timestamp::MAX)
}

/// `at` cut to its minute.
pub fn on_the_minute(at: Timestamp) -> Timestamp {
    Timestamp::from_second(at.as_second().div_euclid(60) * 60).unwrap_or(at)
}

/// Run one push cycle as at `at`: the messages to send, and what was decided.
pub async fn cycle(
    state: &AppState,
    at: Timestamp,
) -> Result<(PushReport, Vec<(DeviceId, Down)>), ApiError> {
    let pool = &state.pool;
    let mut due_by_product: BTreeMap<i64, HashSet<i64>> = BTreeMap::new();
    let mut due_plans = Vec::new();
    for row in sqlx::query("SELECT id, product_id FROM plans WHERE state = 'active' ORDER BY id")
        .fetch_all(pool)
        .await?
    {
        let (id, product_id): (i64, i64) = (row.try_get("id")?, row.try_get("product_id")?);
        if due(&plan::get(pool, id).await?, at)? {
            due_by_product.entry(product_id).or_default().insert(id);
            due_plans.push(id);
        }
    }
    let mut out = Vec::new();
    if !due_plans.is_empty() {
        for id in state.presence.devices() {
            let Some(found) = super::messages::lookup(state, &id).await? else {
                continue;
            };
            let Some(only) = due_by_product.get(&found.product_id) else {
                continue;
            };
            let (_, d) =
                crate::device::get(pool, found.product_id, &id.product, &id.device).await?;
            let mut plans = offers::for_device(
                state,
                found.product_id,
                found.device_id,
                &id.device,
                &d.components,
                Some(only),
            )
            .await?;
            // Only what the device has not taken up yet; accepted upgrades go on by themselves.
            let mut waiting = Vec::with_capacity(plans.len());
            for p in plans.drain(..) {
                let key = Key {
                    plan_id: p.plan_id,
                    device_id: found.device_id,
                    identity: p.comp_no.clone(),
                };
                let now = upgrade::current(pool, &key).await?;
                if now.is_none_or(|c| matches!(c.status, Status::None | Status::Plan)) {
                    waiting.push(p);
                }
            }
            if !waiting.is_empty() {
                out.push((id, Down::Plans { plans: waiting }));
            }
        }
    }
    let report = PushReport {
        at: at.to_string(),
        plans: due_plans,
        devices: out.iter().map(|(id, _)| id.to_string()).collect(),
    };
    Ok((report, out))
}

/// Run a cycle as at `at` and publish its messages.
pub async fn push(state: &AppState, at: Timestamp) -> Result<PushReport, ApiError> {
    let (report, messages) = cycle(state, at).await?;
    for (id, down) in messages {
        super::client::send(state, &id, &down).await;
    }
    if !report.devices.is_empty() {
        tracing::info!(at = %report.at, plans = ?report.plans, devices = report.devices.len(), "pushed plans");
    }
    Ok(report)
}

/// The scheduler: wake at each tick and push, until the process ends.
pub async fn run(state: Arc<AppState>) {
    loop {
        let now = Timestamp::now();
        let tick = next_tick(now);
        let wait = tick.duration_since(now).unsigned_abs();
        tokio::time::sleep(wait).await;
        if let Err(e) = push(&state, tick).await {
            tracing::error!("push cycle at {tick} failed: {}", e.message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{PlanState, PushPeriod, Strategy, UpgradeMode};

    fn plan(zone: &str, period: Option<(&str, &str)>) -> Plan {
        Plan {
            id: 1,
            state: PlanState::Active,
            name: "p".into(),
            product_key: "k".into(),
            whitelist: vec![],
            blacklist: vec![],
            time_zone: zone.into(),
            push_period: period.map(|(s, e)| PushPeriod {
                start: s.into(),
                end: e.into(),
            }),
            upgrade_mode: UpgradeMode::Silent,
            strategy: Strategy::default(),
            components: vec![],
            texts: Default::default(),
            demo: false,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn ten_minute_boundaries_of_the_plans_own_clock() {
        let utc = plan("UTC", None);
        assert!(due(&utc, t("2026-01-01T10:10:00Z")).unwrap());
        assert!(!due(&utc, t("2026-01-01T10:15:00Z")).unwrap());
        assert!(!due(&utc, t("2026-01-01T10:10:01Z")).unwrap());
        // +05:45: local 10:00 is 04:15 UTC.
        let kathmandu = plan("Asia/Kathmandu", None);
        assert!(due(&kathmandu, t("2026-01-01T04:15:00Z")).unwrap());
        assert!(!due(&kathmandu, t("2026-01-01T04:10:00Z")).unwrap());
    }

    #[test]
    fn windows_across_midnight() {
        let night = plan("Asia/Shanghai", Some(("22:00", "06:00")));
        assert!(
            due(&night, t("2026-01-01T14:00:00Z")).unwrap(),
            "22:00 local, the start"
        );
        assert!(
            due(&night, t("2026-01-01T19:10:00Z")).unwrap(),
            "03:10 local"
        );
        assert!(
            !due(&night, t("2026-01-01T22:00:00Z")).unwrap(),
            "06:00 local, the end"
        );
        assert!(
            !due(&night, t("2026-01-01T04:10:00Z")).unwrap(),
            "12:10 local"
        );
    }

    #[test]
    fn daylight_saving_changes() {
        // New York springs forward on 2026-03-08 at 02:00 EST → 03:00 EDT.
        let early = plan("America/New_York", Some(("01:00", "03:00")));
        assert!(due(&early, t("2026-03-08T06:50:00Z")).unwrap(), "01:50 EST");
        assert!(
            !due(&early, t("2026-03-08T07:00:00Z")).unwrap(),
            "03:00 EDT: the window is over"
        );
        assert!(
            due(&early, t("2026-03-09T06:00:00Z")).unwrap(),
            "02:00 EDT next day"
        );
        // Falls back on 2026-11-01 at 02:00 EDT → 01:00 EST: 01:xx happens twice, both inside.
        assert!(due(&early, t("2026-11-01T05:30:00Z")).unwrap(), "01:30 EDT");
        assert!(due(&early, t("2026-11-01T06:30:00Z")).unwrap(), "01:30 EST");
    }

    #[test]
    fn ticks_fall_on_utc_five_minute_boundaries() {
        assert_eq!(
            next_tick(t("2026-01-01T10:00:00Z")),
            t("2026-01-01T10:05:00Z")
        );
        assert_eq!(
            next_tick(t("2026-01-01T10:04:59.9Z")),
            t("2026-01-01T10:05:00Z")
        );
        assert_eq!(
            on_the_minute(t("2026-01-01T10:04:59.9Z")),
            t("2026-01-01T10:04:00Z")
        );
    }
}
