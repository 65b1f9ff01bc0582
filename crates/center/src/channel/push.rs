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

use bytes::Bytes;
use jiff::Timestamp;
use serde::Serialize;
use sota_engine::Status;
use sota_protocol::{DeviceId, Down};
use sqlx::Row;
use utoipa::ToSchema;

use super::active::ActivePlan;
use super::scan::{self, Device};
use crate::api::AppState;
use crate::error::ApiError;
use crate::plan::{period, Plan};

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

/// Run one push cycle as at `at`: each message goes to `send` (the device
/// and the serialized `plans` message) as soon as it is decided; returns what
/// was decided.
///
/// Set-based, so a cycle over a million connected devices takes seconds: the
/// active plans come resolved from [`AppState::active_plans`]; per product with
/// a due plan and a connected device, one scan ([`super::scan`]) reads its
/// devices with their versions and where their upgrades of its active plans
/// stand; the connected ones are decided in memory ([`super::active::decide`],
/// as for a request); devices offered the same plans share one serialized
/// message. A push writes nothing: a pushed offer is recorded when the device
/// first answers it (see `messages`), as a request's offers are when answered.
pub async fn cycle(
    state: &AppState,
    at: Timestamp,
    send: &mut (dyn FnMut(DeviceId, Bytes) + Send),
) -> Result<PushReport, ApiError> {
    let pool = &state.pool;
    let mut products: BTreeMap<i64, (String, Vec<Arc<ActivePlan>>)> = BTreeMap::new();
    let mut active = HashSet::new();
    for row in sqlx::query(
        "SELECT plans.id, plans.product_id, products.product_key FROM plans
         JOIN products ON products.id = plans.product_id
         WHERE plans.state = 'active' ORDER BY plans.id",
    )
    .fetch_all(pool)
    .await?
    {
        let id: i64 = row.try_get(0)?;
        let plan = state.active_plans.get(pool, id).await?;
        active.insert(id);
        products
            .entry(row.try_get(1)?)
            .or_insert_with(|| (row.try_get(2).unwrap_or_default(), Vec::new()))
            .1
            .push(plan);
    }
    state.active_plans.retain(&active);
    let mut due_plans = Vec::new();
    let mut devices = Vec::new();
    for (product_id, (product_key, plans)) in &products {
        let due_now = plans
            .iter()
            .map(|p| due(&p.plan, at))
            .collect::<Result<Vec<bool>, _>>()?;
        due_plans.extend(
            plans
                .iter()
                .zip(&due_now)
                .filter(|(_, d)| **d)
                .map(|(p, _)| p.id()),
        );
        if !due_now.contains(&true) {
            continue;
        }
        if !state.presence.any_of(product_key) {
            continue;
        }
        let product = Product {
            id: *product_id,
            key: product_key,
            plans,
            due: &due_now,
        };
        push_product(state, &product, send, &mut devices).await?;
    }
    due_plans.sort_unstable();
    Ok(PushReport {
        at: at.to_string(),
        plans: due_plans,
        devices,
    })
}

/// One product with a due plan.
struct Product<'a> {
    id: i64,
    key: &'a str,
    /// Its active plans, oldest first.
    plans: &'a [Arc<ActivePlan>],
    /// Which of them are due now.
    due: &'a [bool],
}

async fn push_product(
    state: &AppState,
    product: &Product<'_>,
    send: &mut (dyn FnMut(DeviceId, Bytes) + Send),
    devices: &mut Vec<String>,
) -> Result<(), ApiError> {
    let plan_ids: Vec<i64> = product.plans.iter().map(|p| p.id()).collect();
    let mut picks = Vec::new();
    // Devices offered the same plans get the same bytes, serialized once.
    let mut messages = Messages::default();
    let mut visit = |device: &Device| {
        if state.presence.has(product.key, &device.key) {
            decide_one(product, device, &mut picks, &mut messages, send, devices);
        }
    };
    let native = state
        .native
        .get_or_try_init(|| crate::db::Native::connect(&state.pool))
        .await?;
    scan::devices(native, product.id, &plan_ids, &mut visit).await
}

/// The serialized `plans` messages of a cycle, by the offers they carry (a
/// handful: most devices are offered the same).
#[derive(Default)]
struct Messages(Vec<(Vec<(usize, usize)>, Bytes)>);

impl Messages {
    fn get(&mut self, product: &Product<'_>, picks: &[(usize, usize)]) -> Bytes {
        if let Some((_, m)) = self.0.iter().find(|(p, _)| p == picks) {
            return m.clone();
        }
        let plans = picks
            .iter()
            .map(|&(p, c)| product.plans[p].offers[c].clone())
            .collect();
        let m = Bytes::from(Down::Plans { plans }.to_json());
        self.0.push((picks.to_vec(), m.clone()));
        m
    }
}

/// Decide for one connected device: the due plans' offers it has not taken up yet.
fn decide_one(
    product: &Product<'_>,
    device: &Device,
    picks: &mut Vec<(usize, usize)>,
    messages: &mut Messages,
    send: &mut (dyn FnMut(DeviceId, Bytes) + Send),
    devices: &mut Vec<String>,
) {
    let of = |plan_id: i64, identity: &str| {
        device
            .standing
            .iter()
            .find(|s| s.plan_id == plan_id && s.identity == identity)
    };
    super::active::decide(
        product.plans,
        product.id,
        &device.key,
        |identity| {
            device
                .components
                .iter()
                .find(|(i, _)| i == identity)
                .map(|(_, v)| v.as_str())
        },
        |plan_id, identity| of(plan_id, identity).is_some_and(|s| s.ended),
        picks,
    );
    // Only what the device has not taken up yet; accepted upgrades go on by themselves.
    picks.retain(|&(p, c)| {
        let plan = &product.plans[p];
        product.due[p]
            && of(plan.id(), &plan.rules.components[c].identity)
                .is_none_or(|s| matches!(s.status, Status::None | Status::Plan))
    });
    if picks.is_empty() {
        return;
    }
    let Some(id) = DeviceId::new(product.key, &device.key) else {
        return;
    };
    let message = messages.get(product, picks);
    devices.push(id.to_string());
    send(id, message);
}

/// Run a cycle as at `at` and queue its messages (after any waiting answers).
pub async fn push(state: &AppState, at: Timestamp) -> Result<PushReport, ApiError> {
    let outbox = state.outbox.get();
    let mut send = |id: DeviceId, message: Bytes| match outbox {
        Some(o) => o.push_bytes(&id, message),
        None => tracing::error!(device = %id, "no MQTT client yet; push dropped"),
    };
    let report = cycle(state, at, &mut send).await?;
    if !report.devices.is_empty() {
        tracing::info!(at = %report.at, plans = ?report.plans, devices = report.devices.len(), "pushed plans");
    }
    Ok(report)
}

/// Claims kept this long, then deleted (a claim matters only during its cycle).
const CLAIMS_KEPT: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// Claim the cycle at `tick` for `instance`: true for the one center among those sharing the
/// database that inserted its row first. A row per cycle rather than a lease held across cycles:
/// nothing needs renewing, and when the center that ran a cycle dies, the next cycle is free.
pub async fn claim(
    pool: &sqlx::AnyPool,
    tick: Timestamp,
    instance: &str,
) -> Result<bool, ApiError> {
    let tick = tick.to_string();
    let claimed = sqlx::query(
        "INSERT INTO push_cycles (tick, instance, claimed_at) VALUES ($1, $2, $3) ON CONFLICT (tick) DO NOTHING",
    )
    .bind(&tick)
    .bind(instance)
    .bind(crate::now_text())
    .execute(pool)
    .await?
    .rows_affected()
        == 1;
    if claimed {
        let before = Timestamp::now()
            .checked_sub(CLAIMS_KEPT)
            .unwrap_or(Timestamp::UNIX_EPOCH);
        // Both sides are the same RFC 3339 UTC form, so text order is time order.
        sqlx::query("DELETE FROM push_cycles WHERE claimed_at < $1")
            .bind(before.to_string())
            .execute(pool)
            .await?;
    }
    Ok(claimed)
}

/// The scheduler: wake at each tick and push the cycles this center claims, until the process ends.
pub async fn run(state: Arc<AppState>) {
    // Any name unique among the centers sharing the database.
    let instance = crate::random_hex(8).unwrap_or_else(|_| format!("pid-{}", std::process::id()));
    loop {
        let now = Timestamp::now();
        let tick = next_tick(now);
        let wait = tick.duration_since(now).unsigned_abs();
        tokio::time::sleep(wait).await;
        match claim(&state.pool, tick, &instance).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!(%tick, "another center runs this push cycle");
                continue;
            }
            Err(e) => {
                tracing::error!("push cycle at {tick} not claimed: {}", e.message);
                continue;
            }
        }
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
