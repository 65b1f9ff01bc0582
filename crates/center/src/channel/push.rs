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
use std::time::Duration;

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

/// Where a claimed cycle got to: the last (product id, device id) whose push was handed on.
/// Devices are pushed in that order, so a cycle resumed after it skips exactly those.
pub type Cursor = (i64, i64);

/// Pushes handed on in one piece when no rate is set.
const BATCH: usize = 10_000;
/// A batch that has not left for the broker after this long stops the cycle (the broker is
/// gone): waiting on would hold this center's scheduler, and nobody adopts a live center's cycle.
const SENT_WITHIN: Duration = Duration::from_secs(60);

/// How a cycle's decided pushes leave, a product's at a time in device id order.
enum Delivery<'a> {
    /// All at once, nothing recorded: a manual push, the benchmark.
    Now(&'a mut (dyn FnMut(DeviceId, Bytes) + Send)),
    /// A claimed cycle: in batches (`--push-rate` devices a second, or [`BATCH`]), each recorded
    /// before it is sent, so a center taking the cycle over never sends it again; the next is
    /// recorded only once this one left, so a death loses at most the batch in flight.
    Claimed {
        tick: &'a str,
        instance: &'a str,
        send: &'a mut (dyn FnMut(DeviceId, Bytes) + Send),
        pace: Pace,
    },
}

/// `--push-rate`: how many pushes the next batch may hold, and when it may go. The rate's
/// second runs across products, so a product's last, short batch does not end it.
struct Pace {
    /// Devices a second (0: no limit, batches of [`BATCH`]).
    rate: u32,
    /// The current second: when it ends, and how many pushes it has left.
    second: Option<(tokio::time::Instant, usize)>,
}

impl Pace {
    /// The size of the next batch of at most `wanted` pushes, once it may go.
    async fn next_batch(&mut self, wanted: usize) -> usize {
        if self.rate == 0 {
            return wanted.min(BATCH);
        }
        let rate = self.rate as usize;
        let now = tokio::time::Instant::now();
        let (ends, left) = match self.second {
            Some((ends, left)) if left > 0 && now < ends => (ends, left),
            Some((ends, _)) => {
                tokio::time::sleep_until(ends).await;
                (
                    tokio::time::Instant::now().max(ends) + Duration::from_secs(1),
                    rate,
                )
            }
            None => (now + Duration::from_secs(1), rate),
        };
        let take = left.min(wanted);
        self.second = Some((ends, left - take));
        take
    }
}

/// Run one push cycle as at `at`: each message goes to `send` (the device
/// and the serialized `plans` message); returns what was decided.
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
    cycle_from(state, at, None, &mut Delivery::Now(send)).await
}

/// A cycle resumed after `from` (from the start when `None`).
async fn cycle_from(
    state: &AppState,
    at: Timestamp,
    from: Option<Cursor>,
    delivery: &mut Delivery<'_>,
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
        let after = match from {
            Some((p, _)) if *product_id < p => continue,
            Some((p, d)) if *product_id == p => d,
            _ => i64::MIN,
        };
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
        let decided = decide_product(state, &product, after).await?;
        deliver(state, &product, decided, delivery, &mut devices).await?;
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

/// A push decided for one device: its row id, key and message.
struct Decided {
    id: i64,
    key: String,
    message: Bytes,
}

/// The pushes for `product`'s connected devices with an id above `after`, in id order.
async fn decide_product(
    state: &AppState,
    product: &Product<'_>,
    after: i64,
) -> Result<Vec<Decided>, ApiError> {
    let plan_ids: Vec<i64> = product.plans.iter().map(|p| p.id()).collect();
    let mut picks = Vec::new();
    // Devices offered the same plans get the same bytes, serialized once.
    let mut messages = Messages::default();
    let mut decided = Vec::new();
    let mut visit = |device: &Device| {
        if device.id > after && state.presence.has(product.key, &device.key) {
            if let Some(message) = decide_one(product, device, &mut picks, &mut messages) {
                decided.push(Decided {
                    id: device.id,
                    key: device.key.clone(),
                    message,
                });
            }
        }
    };
    let native = state
        .native
        .get_or_try_init(|| crate::db::Native::connect(&state.pool))
        .await?;
    scan::devices(native, product.id, &plan_ids, &mut visit).await?;
    decided.sort_unstable_by_key(|d| d.id);
    Ok(decided)
}

/// Hand `decided` on as `delivery` says, naming each device pushed in `devices`.
async fn deliver(
    state: &AppState,
    product: &Product<'_>,
    decided: Vec<Decided>,
    delivery: &mut Delivery<'_>,
    devices: &mut Vec<String>,
) -> Result<(), ApiError> {
    let mut hand_on = |send: &mut (dyn FnMut(DeviceId, Bytes) + Send), batch: &[Decided]| {
        for d in batch {
            if let Some(id) = DeviceId::new(product.key, &d.key) {
                devices.push(id.to_string());
                send(id, d.message.clone());
            }
        }
    };
    match delivery {
        Delivery::Now(send) => hand_on(*send, &decided),
        Delivery::Claimed {
            tick,
            instance,
            send,
            pace,
        } => {
            let mut rest = &decided[..];
            while !rest.is_empty() {
                let take = pace.next_batch(rest.len()).await;
                let (batch, after) = rest.split_at(take);
                let last = batch.last().map_or(i64::MIN, |d| d.id);
                record(&state.pool, tick, instance, (product.id, last)).await?;
                hand_on(*send, batch);
                if let Some(outbox) = state.outbox.get() {
                    if tokio::time::timeout(SENT_WITHIN, outbox.pushes_sent())
                        .await
                        .is_err()
                    {
                        return Err(ApiError::internal(format!(
                            "the broker took no pushes for {SENT_WITHIN:?}; the push cycle at {tick} stopped"
                        )));
                    }
                }
                rest = after;
            }
        }
    }
    Ok(())
}

/// Record that `instance` handed on the pushes of its cycle at `tick` up to `cursor`; refused
/// when the cycle is no longer its own (another center took it over, believing it dead).
async fn record(
    pool: &sqlx::AnyPool,
    tick: &str,
    instance: &str,
    cursor: Cursor,
) -> Result<(), ApiError> {
    let updated = sqlx::query(
        "UPDATE push_cycles SET pushed_product = $1, pushed_device = $2, pushed_at = $3
         WHERE tick = $4 AND instance = $5 AND done = 0",
    )
    .bind(cursor.0)
    .bind(cursor.1)
    .bind(crate::now_text())
    .bind(tick)
    .bind(instance)
    .execute(pool)
    .await?
    .rows_affected();
    if updated == 1 {
        Ok(())
    } else {
        Err(ApiError::conflict(
            "cycle_taken_over",
            format!("the push cycle at {tick} is no longer this center's; stopped"),
        ))
    }
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

/// Decide for one connected device: the message with the due plans' offers it has not taken up
/// yet, if any.
fn decide_one(
    product: &Product<'_>,
    device: &Device,
    picks: &mut Vec<(usize, usize)>,
    messages: &mut Messages,
) -> Option<Bytes> {
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
    (!picks.is_empty()).then(|| messages.get(product, picks))
}

/// Queue a message for the outbox's pushes (after any waiting answers).
fn outbox_send(state: &AppState) -> impl FnMut(DeviceId, Bytes) + Send + '_ {
    let outbox = state.outbox.get();
    move |id: DeviceId, message: Bytes| match outbox {
        Some(o) => o.push_bytes(&id, message),
        None => tracing::error!(device = %id, "no MQTT client yet; push dropped"),
    }
}

/// Run a cycle as at `at` and queue its messages, unclaimed (an operator's push now).
pub async fn push(state: &AppState, at: Timestamp) -> Result<PushReport, ApiError> {
    let mut send = outbox_send(state);
    let report = cycle(state, at, &mut send).await?;
    if !report.devices.is_empty() {
        tracing::info!(at = %report.at, plans = ?report.plans, devices = report.devices.len(), "pushed plans");
    }
    Ok(report)
}

/// The scheduler's cycle at `tick`, run once among the centers sharing the database: claimed
/// first, refused with `cycle_claimed` when another center claimed it.
pub async fn scheduled(state: &AppState, tick: Timestamp) -> Result<PushReport, ApiError> {
    if !claim(&state.pool, tick, state.instance.id()).await? {
        return Err(ApiError::conflict(
            "cycle_claimed",
            format!("the push cycle at {tick} was claimed by another center (or ran already): each cycle runs once"),
        ));
    }
    run_claimed(state, tick, None).await
}

/// Run the cycle at `tick` that this center holds, after `from`, and mark it done.
async fn run_claimed(
    state: &AppState,
    tick: Timestamp,
    from: Option<Cursor>,
) -> Result<PushReport, ApiError> {
    let tick_text = tick.to_string();
    let mut send = outbox_send(state);
    let mut delivery = Delivery::Claimed {
        tick: &tick_text,
        instance: state.instance.id(),
        send: &mut send,
        pace: Pace {
            rate: state.push_rate,
            second: None,
        },
    };
    let started = Timestamp::now();
    let result = cycle_from(state, tick, from, &mut delivery).await;
    if result.as_ref().is_err_and(|e| e.code == "cycle_taken_over") {
        return result;
    }
    // Over, or failed: either way not to be taken over (a failure is logged by the caller).
    sqlx::query("UPDATE push_cycles SET done = 1 WHERE tick = $1 AND instance = $2")
        .bind(&tick_text)
        .bind(state.instance.id())
        .execute(&state.pool)
        .await?;
    if let Ok(report) = &result {
        let took = Timestamp::now().duration_since(started);
        tracing::info!(at = %report.at, plans = ?report.plans, devices = report.devices.len(), ?took, "push cycle done");
        if took.as_secs() > TICK_SECONDS {
            tracing::warn!(
                "the push cycle at {tick} took {took:#}, longer than the {TICK_SECONDS} s between \
                 cycles: raise --push-rate (now {}) so that a cycle's devices fit",
                state.push_rate
            );
        }
    }
    result
}

/// Claims kept this long, then deleted (a claim matters only during its cycle).
const CLAIMS_KEPT: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// Claim the cycle at `tick` for `instance`: true for the one center among those sharing the
/// database that inserted its row first. A row per cycle rather than a lease held across cycles:
/// nothing needs renewing, and when the center that runs a cycle dies, another finishes it
/// ([`adopt`]) and the next is free.
pub async fn claim(
    pool: &sqlx::AnyPool,
    tick: Timestamp,
    instance: &str,
) -> Result<bool, ApiError> {
    let tick = tick.to_string();
    let claimed = sqlx::query(
        "INSERT INTO push_cycles (tick, instance, claimed_at, done) VALUES ($1, $2, $3, 0)
         ON CONFLICT (tick) DO NOTHING",
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

/// How often centers look for a cycle whose holder died.
const ADOPT_EVERY: Duration = Duration::from_secs(1);
/// An unfinished cycle whose holder pushed nothing for this long (since the cycle's moment or
/// its last batch) is abandoned rather than finished: its pushes would come after the next
/// cycle's.
const ADOPT_WITHIN: jiff::SignedDuration = jiff::SignedDuration::from_mins(10);

/// Finish the cycles whose holder died: each one found is taken over with a compare-and-set on
/// its holder (one center wins) and resumed after its recorded cursor.
pub async fn adopt(state: &AppState, now: Timestamp) -> Result<Vec<PushReport>, ApiError> {
    let rows = sqlx::query("SELECT tick, instance, pushed_at FROM push_cycles WHERE done = 0")
        .fetch_all(&state.pool)
        .await?;
    let mut reports = Vec::new();
    for row in rows {
        let (tick_text, holder): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        if holder == state.instance.id()
            || state.instance.is_alive(&state.pool, Some(&holder)).await?
        {
            continue;
        }
        let Ok(tick) = tick_text.parse::<Timestamp>() else {
            continue;
        };
        // Measured from the holder's last batch: a long, rate-limited cycle is still finished.
        let pushed_at = row.try_get::<Option<String>, _>(2)?;
        let last = pushed_at
            .and_then(|t| t.parse::<Timestamp>().ok())
            .map_or(tick, |t| t.max(tick));
        let stale = now.duration_since(last) > ADOPT_WITHIN;
        let taken = sqlx::query(
            "UPDATE push_cycles SET instance = $1, done = $2 WHERE tick = $3 AND instance = $4 AND done = 0",
        )
        .bind(state.instance.id())
        .bind(i64::from(stale))
        .bind(&tick_text)
        .bind(&holder)
        .execute(&state.pool)
        .await?
        .rows_affected()
            == 1;
        if !taken {
            continue;
        }
        if stale {
            tracing::warn!(%tick, %holder, "the center running the push cycle at {tick} died; too late to finish it");
            continue;
        }
        // Read once the cycle is this center's: a holder that was only cut off (not dead) may
        // record a batch until the take-over, and none after it.
        let row =
            sqlx::query("SELECT pushed_product, pushed_device FROM push_cycles WHERE tick = $1")
                .bind(&tick_text)
                .fetch_one(&state.pool)
                .await?;
        let cursor = match (
            row.try_get::<Option<i64>, _>(0)?,
            row.try_get::<Option<i64>, _>(1)?,
        ) {
            (Some(p), Some(d)) => Some((p, d)),
            _ => None,
        };
        tracing::warn!(%tick, %holder, ?cursor, "the center running the push cycle at {tick} died; finishing it");
        reports.push(run_claimed(state, tick, cursor).await?);
    }
    Ok(reports)
}

/// The scheduler: wake at each tick and push the cycles this center claims, and finish those
/// whose holder died, until the process ends.
pub async fn run(state: Arc<AppState>) {
    let adopter = state.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(ADOPT_EVERY).await;
            if let Err(e) = adopt(&adopter, Timestamp::now()).await {
                tracing::error!("cannot finish a dead center's push cycle: {}", e.message);
            }
        }
    });
    loop {
        let now = Timestamp::now();
        let tick = next_tick(now);
        let wait = tick.duration_since(now).unsigned_abs();
        tokio::time::sleep(wait).await;
        match scheduled(&state, tick).await {
            Ok(_) => {}
            Err(e) if e.code == "cycle_claimed" => {
                tracing::debug!(%tick, "another center runs this push cycle");
            }
            Err(e) => tracing::error!("push cycle at {tick} failed: {}", e.message),
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
