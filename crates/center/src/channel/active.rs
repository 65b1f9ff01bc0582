//! The active plans as offers are made from them, and the one decision of
//! what a device is offered — used by a device's request and by pushes alike.
//!
//! Activation freezes a plan (an active, paused or finished plan is never
//! edited, and a package in use is never deleted), so a plan's rules and its
//! offers are resolved once, the first time it is seen active, and kept by id;
//! only which plans are active now is read each time.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use sota_engine::MAX_PLANS;
use sota_protocol::PlanOffer;
use sqlx::AnyPool;

use super::offers;
use crate::error::ApiError;
use crate::package::Package;
use crate::plan::{self, Plan, PlanRules};

/// An active plan as the decision needs it.
#[derive(Debug)]
pub struct ActivePlan {
    /// The plan (its time zone and push period decide when it is pushed).
    pub plan: Plan,
    /// Its rules (lists, per component the version rule).
    pub rules: PlanRules,
    /// The offer of each component, in the order of `plan.components`; the
    /// same for every device.
    pub offers: Vec<PlanOffer>,
    /// The package of each component, in the same order.
    pub packages: Vec<Package>,
}

impl ActivePlan {
    async fn load(pool: &AnyPool, id: i64) -> Result<Self, ApiError> {
        let plan = plan::get(pool, id).await?;
        let product_id = crate::product::get(pool, &plan.product_key).await?.0;
        let (rules, packages) = plan::rules(pool, &plan, product_id).await?;
        let offers = plan
            .components
            .iter()
            .zip(&packages)
            .map(|(c, pkg)| {
                let engine =
                    offers::engine_plan(&plan.strategy, &c.identity, pkg, c.file_position)?;
                Ok(PlanOffer::new(plan.id, &engine, offers::delivery(&plan)))
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        Ok(Self {
            plan,
            rules,
            offers,
            packages,
        })
    }

    /// The plan's id.
    pub fn id(&self) -> i64 {
        self.plan.id
    }
}

/// Active plans by id, resolved once.
#[derive(Debug, Default)]
pub struct ActivePlans(Mutex<HashMap<i64, Arc<ActivePlan>>>);

impl ActivePlans {
    fn cached(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<ActivePlan>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Plan `id`, which the caller has just seen active (so frozen).
    pub async fn get(&self, pool: &AnyPool, id: i64) -> Result<Arc<ActivePlan>, ApiError> {
        if let Some(p) = self.cached().get(&id) {
            return Ok(p.clone());
        }
        let loaded = Arc::new(ActivePlan::load(pool, id).await?);
        Ok(self.cached().entry(id).or_insert(loaded).clone())
    }

    /// Forget the plans that are no longer active.
    pub fn retain(&self, active: &HashSet<i64>) {
        self.cached().retain(|id, _| active.contains(id));
    }
}

/// What a device is offered now: `(plan index, component index)` pairs into
/// `plans` (a product's active plans, oldest first). Per component identity
/// only the oldest plan that applies, never an upgrade the device ended,
/// at most [`MAX_PLANS`]. `current` gives the device's version of a component,
/// `ended(plan id, identity)` whether it ended that upgrade. Appends to `out`
/// (cleared first), so one buffer serves a whole fleet.
pub fn decide<'a>(
    plans: &[Arc<ActivePlan>],
    product_id: i64,
    device_key: &str,
    current: impl Fn(&str) -> Option<&'a str>,
    ended: impl Fn(i64, &str) -> bool,
    out: &mut Vec<(usize, usize)>,
) {
    out.clear();
    for (p, plan) in plans.iter().enumerate() {
        if !plan.rules.targets(product_id, device_key) {
            continue;
        }
        for (c, rule) in plan.rules.components.iter().enumerate() {
            if !rule.applies_to(current(&rule.identity)) || ended(plan.id(), &rule.identity) {
                continue;
            }
            let taken = out
                .iter()
                .any(|&(q, d)| plans[q].rules.components[d].identity == rule.identity);
            if taken {
                continue;
            }
            if out.len() == MAX_PLANS {
                return;
            }
            out.push((p, c));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::PackageType;
    use crate::plan::{ComponentRule, PlanState, Strategy, UpgradeMode};

    fn active(id: i64, components: &[(&str, &str)], blacklist: &[&str]) -> Arc<ActivePlan> {
        Arc::new(ActivePlan {
            plan: Plan {
                id,
                state: PlanState::Active,
                name: "p".into(),
                product_key: "k".into(),
                whitelist: vec![],
                blacklist: blacklist.iter().map(|s| s.to_string()).collect(),
                time_zone: "UTC".into(),
                push_period: None,
                upgrade_mode: UpgradeMode::Silent,
                strategy: Strategy::default(),
                components: vec![],
                texts: Default::default(),
                demo: false,
                created_at: String::new(),
                updated_at: String::new(),
            },
            rules: PlanRules {
                product_id: 1,
                whitelist: HashSet::new(),
                blacklist: blacklist.iter().map(|s| s.to_string()).collect(),
                components: components
                    .iter()
                    .map(|(identity, target)| ComponentRule {
                        identity: identity.to_string(),
                        package_type: PackageType::Full,
                        source_version: None,
                        target_version: target.to_string(),
                    })
                    .collect(),
            },
            offers: vec![],
            packages: vec![],
        })
    }

    fn decided(
        plans: &[Arc<ActivePlan>],
        device: &str,
        ended: &[(i64, &str)],
    ) -> Vec<(i64, String)> {
        let mut out = Vec::new();
        decide(
            plans,
            1,
            device,
            |_| Some("1"),
            |p, i| ended.contains(&(p, i)),
            &mut out,
        );
        out.iter()
            .map(|&(p, c)| (plans[p].id(), plans[p].rules.components[c].identity.clone()))
            .collect()
    }

    #[test]
    fn the_oldest_applicable_plan_wins_each_component() {
        let plans = [
            active(1, &[("MCU", "2")], &[]),
            active(2, &[("MCU", "3"), ("MOD", "3")], &[]),
        ];
        assert_eq!(
            decided(&plans, "d", &[]),
            [(1, "MCU".to_string()), (2, "MOD".to_string())]
        );
        // An upgrade the device ended is not offered again; the next plan may take it.
        assert_eq!(
            decided(&plans, "d", &[(1, "MCU")]),
            [(2, "MCU".to_string()), (2, "MOD".to_string())]
        );
        // A plan that does not target the device takes nothing.
        let plans = [
            active(1, &[("MCU", "2")], &["d"]),
            active(2, &[("MCU", "3")], &[]),
        ];
        assert_eq!(decided(&plans, "d", &[]), [(2, "MCU".to_string())]);
    }

    #[test]
    fn at_most_the_engines_plan_limit() {
        let names: Vec<String> = (0..30).map(|i| format!("C{i}")).collect();
        let plans = [
            active(
                1,
                &names[..15]
                    .iter()
                    .map(|n| (n.as_str(), "2"))
                    .collect::<Vec<_>>(),
                &[],
            ),
            active(
                2,
                &names[15..]
                    .iter()
                    .map(|n| (n.as_str(), "2"))
                    .collect::<Vec<_>>(),
                &[],
            ),
        ];
        assert_eq!(decided(&plans, "d", &[]).len(), MAX_PLANS);
    }
}
