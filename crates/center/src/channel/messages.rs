//! The center's side of the conversation: one device message in, at most one
//! answer out. Every refusal is an answer (`error`) and a log line naming the
//! device; nothing a device sends can stop the channel.

use sota_engine::Status;
use sota_protocol::{
    decode_up, status_name, ComponentVersion, DeviceId, Down, ErrorCode, Job, StatusReport, Up,
};
use sqlx::Row;

use super::credentials::{self, RegisterError};
use super::{offers, verify};
use crate::api::AppState;
use crate::device::{self, DeviceReport};
use crate::error::ApiError;
use crate::upgrade::{self, Advance, Key, Source, Step};

/// A device as the database knows it.
pub struct Known {
    /// Product row id.
    pub product_id: i64,
    /// Device row id.
    pub device_id: i64,
}

/// The device's row ids, if it is registered.
pub async fn lookup(state: &AppState, from: &DeviceId) -> Result<Option<Known>, ApiError> {
    let cached = state
        .known
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(from)
        .copied();
    if let Some((product_id, device_id)) = cached {
        return Ok(Some(Known {
            product_id,
            device_id,
        }));
    }
    let row = sqlx::query(
        "SELECT products.id AS product_id, devices.id AS device_id FROM devices
         JOIN products ON products.id = devices.product_id
         WHERE products.product_key = $1 AND devices.device_key = $2",
    )
    .bind(&from.product)
    .bind(&from.device)
    .fetch_optional(&state.pool)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let ids: (i64, i64) = (r.try_get("product_id")?, r.try_get("device_id")?);
    state
        .known
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(from.clone(), ids);
    Ok(Some(Known {
        product_id: ids.0,
        device_id: ids.1,
    }))
}

/// Record a device's reported versions (group-committed).
async fn register(
    state: &AppState,
    dev: &Known,
    device_key: &str,
    report: &DeviceReport,
) -> Result<(), ApiError> {
    let (product_id, device_key, report) = (dev.product_id, device_key.to_string(), report.clone());
    state
        .writes
        .run(move |conn| {
            Box::pin(
                async move { device::register_on(conn, product_id, &device_key, &report).await },
            )
        })
        .await
}

fn refuse(from: &DeviceId, code: ErrorCode, message: String) -> Option<Down> {
    tracing::warn!(device = %from, ?code, "channel message refused: {message}");
    Some(Down::error(code, message))
}

/// What is written once the answer is on its way: the device's next message
/// is handled only after it (its lane handles it), and a request's
/// answer does not wait for a disk flush.
#[derive(Debug, Default)]
pub enum After {
    /// Nothing.
    #[default]
    Nothing,
    /// Record these offers (a request's answer).
    Offered(Vec<Key>),
}

/// Handle one message from `from`'s `up` topic: the answer, if any, for its
/// `down` topic, and what to write once it is sent ([`finish`]).
pub async fn handle(state: &AppState, from: &DeviceId, payload: &[u8]) -> (Option<Down>, After) {
    let up = match decode_up(payload, from) {
        Ok(up) => up,
        Err(e) => return (refuse(from, e.code(), e.to_string()), After::Nothing),
    };
    let kind = up.kind();
    // These may move an upgrade or a verification job (see `channel::memory`).
    let moves = matches!(up, Up::Accept { .. } | Up::Refuse { .. } | Up::Status(_));
    let mut after = After::Nothing;
    let dispatched = dispatch(state, from, up, &mut after).await;
    if moves {
        state.memory.forget(from);
    }
    let answer = match dispatched {
        Ok(answer) => answer,
        Err(e) => {
            tracing::error!(device = %from, kind, "channel message failed: {}", e.message);
            Some(Down::error(
                ErrorCode::Internal,
                format!(
                    "the center could not handle the {kind:?} message: {}; retry later",
                    e.message
                ),
            ))
        }
    };
    (answer, after)
}

/// Write what a handled message left for after its answer; failures are logged
/// (a lost offer record is made again when the device answers the offer).
pub async fn finish(state: &AppState, from: &DeviceId, after: After) {
    let done = match &after {
        After::Nothing => return,
        After::Offered(keys) => {
            let written = keys.clone();
            let new = state
                .writes
                .run(move |conn| {
                    Box::pin(async move { upgrade::offered_all_on(conn, &written).await })
                })
                .await;
            // Committed: the plans' watchers hear of the new offers.
            if matches!(new, Ok(n) if n > 0) {
                for key in keys {
                    crate::events::upgrade_moved(state, key).await;
                }
            }
            new.map(|_| ())
        }
    };
    if let Err(e) = done {
        tracing::error!(device = %from, ?after, "recording after an answer failed: {}", e.message);
    }
}

async fn dispatch(
    state: &AppState,
    from: &DeviceId,
    up: Up,
    after: &mut After,
) -> Result<Option<Down>, ApiError> {
    if let Up::Register { product_secret } = &up {
        return Ok(
            match credentials::register(&state.pool, &state.writes, from, product_secret).await {
                Ok(device_secret) => {
                    tracing::info!(device = %from, "device registered");
                    Some(Down::Registered { device_secret })
                }
                Err(RegisterError::Api(e)) => return Err(e),
                Err(e) => refuse(from, ErrorCode::RegistrationRefused, e.to_string()),
            },
        );
    }
    let Some(dev) = lookup(state, from).await? else {
        return Ok(refuse(from, ErrorCode::UnknownDevice, format!("device {from} is not registered; send {{\"type\":\"register\",\"productSecret\":…}} first")));
    };
    if let Some(answer) = verification_job(state, from, &dev, &up).await? {
        return Ok(answer);
    }
    match up {
        Up::Register { .. } => Ok(None),
        Up::Versions { components } => {
            versions(state, from, &dev, &components).await?;
            Ok(None)
        }
        Up::Request => {
            let view = state
                .memory
                .view(state, from, dev.product_id, dev.device_id)
                .await?;
            // A verification job goes first: it is what the operator is waiting for.
            let mut plans = if view.verification_pending {
                verify::offers(state, dev.device_id).await?
            } else {
                Vec::new()
            };
            let jobs = plans.len();
            plans.extend(offers::for_device(state, dev.product_id, &from.device, &view).await?);
            plans.truncate(sota_engine::MAX_PLANS);
            // The offers are recorded once the answer is on its way.
            *after = After::Offered(
                plans[jobs.min(plans.len())..]
                    .iter()
                    .map(|o| Key {
                        plan_id: o.plan_id,
                        device_id: dev.device_id,
                        identity: o.comp_no.clone(),
                    })
                    .collect(),
            );
            Ok(Some(Down::Plans { plans }))
        }
        Up::Accept {
            plan_id,
            comp_no,
            message,
        } => {
            let key = Key {
                plan_id,
                device_id: dev.device_id,
                identity: comp_no.clone(),
            };
            let mut now = upgrade::current(&state.pool, &key).await?;
            if now.is_none() && pushed(state, from, &dev, &key).await? {
                now = upgrade::current(&state.pool, &key).await?;
            }
            let Some(now) = now else {
                return Ok(not_offered(from, plan_id, &comp_no));
            };
            if now.outcome != upgrade::Outcome::Pending {
                return Ok(refuse(
                    from,
                    ErrorCode::UnknownPlan,
                    format!(
                        "plan {plan_id} for {comp_no:?} has ended ({:?}); request plans again",
                        now.outcome
                    ),
                ));
            }
            let Some((firmware, expires)) =
                offers::firmware(state, plan_id, &from.device, &comp_no).await?
            else {
                return Ok(refuse(from, ErrorCode::UnknownPlan, format!("plan {plan_id} is not active now (paused or finished); request plans again later")));
            };
            let step = Step {
                status: Status::Accepted,
                percent: None,
                source: Source::Device,
                message: if message.is_empty() {
                    format!("accepted; firmware link expires {expires}")
                } else {
                    format!("accepted ({message}); firmware link expires {expires}")
                },
            };
            move_upgrade(state, &key, &step).await?;
            Ok(Some(Down::Firmware(firmware)))
        }
        Up::Refuse {
            plan_id,
            comp_no,
            message,
        } => {
            let key = Key {
                plan_id,
                device_id: dev.device_id,
                identity: comp_no.clone(),
            };
            let reason = if message.is_empty() {
                "refused (no reason given)".to_string()
            } else {
                format!("refused: {message}")
            };
            let step = Step {
                status: Status::Refused,
                percent: None,
                source: Source::Device,
                message: reason,
            };
            Ok(match advance(state, from, &dev, &key, &step).await? {
                None => not_offered(from, plan_id, &comp_no),
                Some(_) => None,
            })
        }
        Up::Status(report) => status(state, from, &dev, report).await,
    }
}

/// A pushed offer is recorded when the device first answers it (a push over a
/// whole fleet writes nothing): true when `key` is what the device is offered
/// now, as a request would answer — and it is now recorded as offered.
async fn pushed(
    state: &AppState,
    from: &DeviceId,
    dev: &Known,
    key: &Key,
) -> Result<bool, ApiError> {
    let view = state
        .memory
        .view(state, from, dev.product_id, dev.device_id)
        .await?;
    let (plans, picks) = offers::decided(state, dev.product_id, &from.device, &view).await?;
    let offered = picks.iter().any(|&(p, c)| {
        plans[p].id() == key.plan_id && plans[p].rules.components[c].identity == key.identity
    });
    if offered {
        let key = key.clone();
        state
            .writes
            .run(move |conn| {
                Box::pin(
                    async move { upgrade::offered_all_on(conn, std::slice::from_ref(&key)).await },
                )
            })
            .await?;
    }
    Ok(offered)
}

/// [`upgrade::advance`], recording a pushed offer first if the device answers one.
async fn advance(
    state: &AppState,
    from: &DeviceId,
    dev: &Known,
    key: &Key,
    step: &Step,
) -> Result<Option<Advance>, ApiError> {
    match move_upgrade(state, key, step).await? {
        None if pushed(state, from, dev, key).await? => move_upgrade(state, key, step).await,
        moved => Ok(moved),
    }
}

/// [`upgrade::advance`], group-committed.
async fn move_upgrade(
    state: &AppState,
    key: &Key,
    step: &Step,
) -> Result<Option<Advance>, ApiError> {
    let (written, step) = (key.clone(), step.clone());
    let moved = state
        .writes
        .run(move |conn| Box::pin(async move { upgrade::advance_on(conn, &written, &step).await }))
        .await;
    // Committed: the plan's watchers hear of it.
    if let Ok(Some(Advance::Moved)) = moved {
        crate::events::upgrade_moved(state, key).await;
    }
    moved
}

fn not_offered(from: &DeviceId, plan_id: i64, comp_no: &str) -> Option<Down> {
    refuse(from, ErrorCode::UnknownPlan, format!("plan {plan_id} was never offered to {from} for component {comp_no:?}; send a request and use the planId and compNo of its answer"))
}

async fn versions(
    state: &AppState,
    from: &DeviceId,
    dev: &Known,
    components: &[ComponentVersion],
) -> Result<(), ApiError> {
    let report = DeviceReport {
        components: components
            .iter()
            .map(|c| (c.comp_no.clone(), c.version.clone()))
            .collect(),
    };
    // Not awaited: a request right behind sees the versions through `reported`.
    let generation = state.reported.hold(dev.device_id, &report.components);
    state.memory.versions(from, &report.components);
    let (product_id, device_id, device_key) = (dev.product_id, dev.device_id, from.device.clone());
    let (reported, memory, who) = (state.reported.clone(), state.memory.clone(), from.clone());
    state.writes.queue(
        move |conn| {
            Box::pin(async move { device::register_on(conn, product_id, &device_key, &report).await })
        },
        move |result| {
            reported.settled(device_id, generation);
            if let Err(e) = result {
                memory.forget(&who);
                tracing::error!(device = %who, "reported versions not recorded (the device reports them again when it reconnects): {}", e.message);
            }
        },
    );
    // QuecThing's rule: an upgrade succeeds when the device then reports the target version.
    // With the memory on, the view read here (once per connection) answers the request
    // that follows and says whether anything is updating; off, the checks below read.
    let kept = state
        .memory
        .view_if_on(state, from, dev.product_id, dev.device_id)
        .await?;
    for c in components {
        // Nothing updating: this version can end nothing.
        if kept
            .as_ref()
            .is_some_and(|v| !v.updating.contains(&c.comp_no))
        {
            continue;
        }
        // What follows may end an upgrade or a job: read the view again next time.
        state.memory.forget(from);
        verify::versions(state, dev.device_id, &c.comp_no, &c.version).await?;
        for plan_id in upgrade::updating(&state.pool, dev.device_id, &c.comp_no).await? {
            if offers::target_version(state, plan_id, &c.comp_no)
                .await?
                .as_deref()
                == Some(c.version.as_str())
            {
                let key = Key {
                    plan_id,
                    device_id: dev.device_id,
                    identity: c.comp_no.clone(),
                };
                let message = format!(
                    "succeeded: the device reports version {} (the plan's target)",
                    c.version
                );
                let step = Step {
                    status: Status::UpdateOk,
                    percent: None,
                    source: Source::Center,
                    message,
                };
                move_upgrade(state, &key, &step).await?;
            }
        }
    }
    Ok(())
}

async fn status(
    state: &AppState,
    from: &DeviceId,
    dev: &Known,
    r: StatusReport,
) -> Result<Option<Down>, ApiError> {
    let key = Key {
        plan_id: r.plan_id,
        device_id: dev.device_id,
        identity: r.comp_no.clone(),
    };
    let name = status_name(r.status);
    let said = if r.message.is_empty() {
        name.to_string()
    } else {
        format!("{name}: {}", r.message)
    };
    let step = if r.status == Status::UpdateOk {
        // "update ok" is a claim; the center decides by the version.
        let (_, d) = device::get(&state.pool, dev.product_id, &from.product, &from.device).await?;
        let version = r
            .version
            .clone()
            .or_else(|| d.components.get(&r.comp_no).cloned());
        if let Some(v) = &r.version {
            let report = DeviceReport {
                components: [(r.comp_no.clone(), v.clone())].into(),
            };
            register(state, dev, &from.device, &report).await?;
        }
        let target = offers::target_version(state, r.plan_id, &r.comp_no).await?;
        match (version, target) {
            (_, None) => return Ok(not_offered(from, r.plan_id, &r.comp_no)),
            (Some(v), Some(t)) if v == t => Step { status: Status::UpdateOk, percent: None, source: Source::Center, message: format!("succeeded: {said}; the device reports version {v}, the plan's target") },
            (v, Some(t)) => Step {
                status: Status::UpdateError,
                percent: None,
                source: Source::Center,
                message: format!("failed: the device reported update ok but its version is {}, not the plan's target {t}", v.as_deref().unwrap_or("unknown")),
            },
        }
    } else {
        Step {
            status: r.status,
            percent: r.percent,
            source: Source::Device,
            message: said,
        }
    };
    Ok(match advance(state, from, dev, &key, &step).await? {
        None => not_offered(from, r.plan_id, &r.comp_no),
        Some(Advance::Moved | Advance::Ignored) => None,
    })
}

/// Messages about a verification job (a negative `planId`): `Some(answer)` when handled here.
async fn verification_job(
    state: &AppState,
    from: &DeviceId,
    dev: &Known,
    up: &Up,
) -> Result<Option<Option<Down>>, ApiError> {
    let (plan_id, comp_no) = match up {
        Up::Accept {
            plan_id, comp_no, ..
        }
        | Up::Refuse {
            plan_id, comp_no, ..
        } => (*plan_id, comp_no),
        Up::Status(r) => (r.plan_id, &r.comp_no),
        _ => return Ok(None),
    };
    let Some(Job::Verification(id)) = Job::from_plan_id(plan_id) else {
        return Ok(None);
    };
    let answer = match up {
        Up::Accept { .. } => verify::accept(state, from, dev.device_id, id, comp_no).await?,
        Up::Refuse { message, .. } => {
            verify::refuse(state, from, dev.device_id, id, comp_no, message).await?
        }
        Up::Status(r) => {
            let (_, d) =
                device::get(&state.pool, dev.product_id, &from.product, &from.device).await?;
            if let Some(v) = &r.version {
                let report = DeviceReport {
                    components: [(r.comp_no.clone(), v.clone())].into(),
                };
                register(state, dev, &from.device, &report).await?;
            }
            verify::status(
                state,
                from,
                dev.device_id,
                id,
                r,
                d.components.get(&r.comp_no).cloned(),
            )
            .await?
        }
        _ => None,
    };
    Ok(Some(answer))
}
