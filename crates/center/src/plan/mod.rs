//! Upgrade plans: which devices of a product get which packages, when and how.
//!
//! Rules enforced here (each answered with its own error code): IANA time
//! zone, push period `HH:MM`–`HH:MM` (may cross midnight), unique component
//! identities whose type matches their package and whose package belongs to
//! the plan's product (checked again at activation), manual mode needs `zh` and
//! `en` texts, strategy bounds, and only drafts may be edited or deleted.
//! The plan's types and the rules that need no database are the API's
//! (`sota_api::plan`), so the console's form checks the same; this module adds
//! those that need the database and stores plans.

pub mod applicability;
pub mod period;
pub mod state;

use std::collections::{BTreeMap, HashSet};

use sqlx::{AnyPool, Row};

use crate::error::ApiError;
use crate::package::{self, ComponentType};
use crate::product::{self, check_name};
pub use applicability::{ComponentRule, PlanRules};
pub use period::PushPeriod;
pub use sota_api::plan::{
    check_texts, Plan, PlanComponent, PlanFilter, PlanInput, Strategy, UpgradeMode, MAX_LIST,
};
pub use state::{PlanState, Transition};

/// Check every rule of a plan's content; returns the product row id.
pub async fn check(pool: &AnyPool, input: &PlanInput) -> Result<i64, ApiError> {
    check_name("plan name", &input.name)?;
    let (product_id, _) = product::get(pool, &input.product_key).await.map_err(|e| {
        if e.status == axum::http::StatusCode::NOT_FOUND {
            ApiError::invalid(
                "unknown_product",
                format!(
                    "product_key {:?} names no product; create it first",
                    input.product_key
                ),
            )
        } else {
            e
        }
    })?;
    // The rules that need no database are the API's (`PlanInput::check` runs
    // them all, in this order, for a page).
    input.check_settings()?;
    let mut seen = HashSet::new();
    for c in &input.components {
        c.check(&mut seen)?;
        let pkg = package::get(pool, c.package_id).await.map_err(|e| {
            if e.status == axum::http::StatusCode::NOT_FOUND {
                ApiError::invalid(
                    "unknown_package",
                    format!(
                        "component {:?}: no version package with id {}",
                        c.identity, c.package_id
                    ),
                )
            } else {
                e
            }
        })?;
        if c.file_position as usize >= pkg.files.len() {
            return Err(ApiError::invalid(
                "invalid_file_position",
                format!(
                    "component {:?}: package {} has {} file(s), so file_position must be 0 to {}",
                    c.identity,
                    pkg.id,
                    pkg.files.len(),
                    pkg.files.len().saturating_sub(1)
                ),
            ));
        }
        if pkg.meta.component_type != c.component_type {
            return Err(ApiError::invalid(
                "component_type_mismatch",
                format!(
                    "component {:?} is {} but package {} is {}; pick a package of the same component type",
                    c.identity,
                    c.component_type.as_str(),
                    pkg.id,
                    pkg.meta.component_type.as_str()
                ),
            ));
        }
        package::check_product(
            &pkg,
            &input.product_key,
            &format!(
                "component {:?} of a plan for product {:?}",
                c.identity, input.product_key
            ),
        )?;
    }
    check_texts(&input.texts, input.upgrade_mode)?;
    Ok(product_id)
}

async fn write_children(
    tx: &mut sqlx::AnyConnection,
    id: i64,
    input: &PlanInput,
) -> Result<(), ApiError> {
    for (list, keys) in [("white", &input.whitelist), ("black", &input.blacklist)] {
        // Multi-row inserts: a 100k-key list stays well under a second.
        for chunk in keys.chunks(300) {
            let sql = format!(
                "INSERT INTO plan_device_lists (plan_id, list, device_key) VALUES {} ON CONFLICT DO NOTHING",
                crate::db::values(chunk.len(), "(?, ?, ?)")
            );
            let mut q = sqlx::query(&sql);
            for key in chunk {
                q = q.bind(id).bind(list).bind(key);
            }
            q.execute(&mut *tx).await?;
        }
    }
    for c in &input.components {
        sqlx::query("INSERT INTO plan_components (plan_id, identity, component_type, package_id, file_position) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(&c.identity)
            .bind(c.component_type.as_str())
            .bind(c.package_id)
            .bind(i64::from(c.file_position))
            .execute(&mut *tx)
            .await?;
    }
    for (lang, text) in &input.texts {
        sqlx::query("INSERT INTO plan_texts (plan_id, language, text) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(lang)
            .bind(text)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// The columns a plan's input sets, in the order [`bind_columns`] binds them;
/// create and update both build their SQL from this list so the two cannot drift.
const COLUMNS: [&str; 10] = [
    "name",
    "product_id",
    "time_zone",
    "push_start",
    "push_end",
    "upgrade_mode",
    "min_battery_percent",
    "min_signal_dbm",
    "space_needed_bytes",
    "download_retries",
];

/// Bind the values of [`COLUMNS`], in order.
fn bind_columns<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    input: &'q PlanInput,
    product_id: i64,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(&input.name)
        .bind(product_id)
        .bind(&input.time_zone)
        .bind(input.push_period.as_ref().map(|p| &p.start))
        .bind(input.push_period.as_ref().map(|p| &p.end))
        .bind(input.upgrade_mode.as_str())
        .bind(i64::from(input.strategy.min_battery_percent))
        .bind(i64::from(input.strategy.min_signal_dbm))
        .bind(input.strategy.space_needed_bytes as i64)
        .bind(i64::from(input.strategy.download_retries))
}

/// Create a draft plan.
pub async fn create(pool: &AnyPool, input: &PlanInput, demo: bool) -> Result<Plan, ApiError> {
    let product_id = check(pool, input).await?;
    let now = crate::now_text();
    let mut tx = pool.begin().await?;
    let sql = format!(
        "INSERT INTO plans ({}, state, demo, created_at, updated_at)
         VALUES ({}, 'draft', ${}, ${}, ${}) RETURNING id",
        COLUMNS.join(", "),
        (1..=COLUMNS.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", "),
        COLUMNS.len() + 1,
        COLUMNS.len() + 2,
        COLUMNS.len() + 3,
    );
    let id: i64 = bind_columns(sqlx::query(&sql), input, product_id)
        .bind(i64::from(demo))
        .bind(&now)
        .bind(&now)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
    write_children(&mut tx, id, input).await?;
    tx.commit().await?;
    get(pool, id).await
}

fn frozen(id: i64, state: PlanState, verb: &str) -> ApiError {
    ApiError::conflict(
        "plan_frozen",
        format!(
            "plan {id} is {} and cannot be {verb}: activation freezes a plan; create a new plan instead (and finish this one if it should stop)",
            state.as_str()
        ),
    )
}

/// Replace a draft's content.
pub async fn update(pool: &AnyPool, id: i64, input: &PlanInput) -> Result<Plan, ApiError> {
    let current = get(pool, id).await?;
    if current.state.is_frozen() {
        return Err(frozen(id, current.state, "edited"));
    }
    let product_id = check(pool, input).await?;
    let mut tx = pool.begin().await?;
    // The state check is repeated inside the transaction: a concurrent activation wins.
    let sql = format!(
        "UPDATE plans SET {}, updated_at = ${} WHERE id = ${} AND state = 'draft'",
        COLUMNS
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = ${}", i + 1))
            .collect::<Vec<_>>()
            .join(", "),
        COLUMNS.len() + 1,
        COLUMNS.len() + 2,
    );
    let done = bind_columns(sqlx::query(&sql), input, product_id)
        .bind(crate::now_text())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(frozen(id, PlanState::Active, "edited"));
    }
    for table in ["plan_device_lists", "plan_components", "plan_texts"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE plan_id = $1"))
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    write_children(&mut tx, id, input).await?;
    tx.commit().await?;
    get(pool, id).await
}

/// Delete a draft.
pub async fn delete(pool: &AnyPool, id: i64) -> Result<(), ApiError> {
    let current = get(pool, id).await?;
    if current.state.is_frozen() {
        return Err(frozen(id, current.state, "deleted"));
    }
    let done = sqlx::query("DELETE FROM plans WHERE id = $1 AND state = 'draft'")
        .bind(id)
        .execute(pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(frozen(id, PlanState::Active, "deleted"));
    }
    Ok(())
}

/// Move a plan along its life cycle. Activating (or resuming) checks again
/// that every package belongs to the plan's product: a package may have been
/// assigned to another product by the migration that gave packages products.
pub async fn transition(pool: &AnyPool, id: i64, t: Transition) -> Result<Plan, ApiError> {
    let current = get(pool, id).await?;
    let next = current.state.apply(t)?;
    if next == PlanState::Active {
        for c in &current.components {
            let pkg = package::get(pool, c.package_id).await?;
            package::check_product(
                &pkg,
                &current.product_key,
                &format!(
                    "plan {id} cannot become active: component {:?} of a plan for product {:?}",
                    c.identity, current.product_key
                ),
            )?;
        }
    }
    let done =
        sqlx::query("UPDATE plans SET state = $1, updated_at = $2 WHERE id = $3 AND state = $4")
            .bind(next.as_str())
            .bind(crate::now_text())
            .bind(id)
            .bind(current.state.as_str())
            .execute(pool)
            .await?;
    if done.rows_affected() == 0 {
        return Err(ApiError::conflict(
            "concurrent_change",
            format!("plan {id} changed state meanwhile; reload it and retry"),
        ));
    }
    get(pool, id).await
}

/// One plan, or 404.
pub async fn get(pool: &AnyPool, id: i64) -> Result<Plan, ApiError> {
    let row = sqlx::query("SELECT plans.*, products.product_key FROM plans JOIN products ON products.id = plans.product_id WHERE plans.id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no upgrade plan with id {id}; list them with GET /api/v1/plans")))?;
    let mut whitelist = Vec::new();
    let mut blacklist = Vec::new();
    for r in sqlx::query(
        "SELECT list, device_key FROM plan_device_lists WHERE plan_id = $1 ORDER BY device_key",
    )
    .bind(id)
    .fetch_all(pool)
    .await?
    {
        let list: String = r.try_get("list")?;
        let key: String = r.try_get("device_key")?;
        if list == "white" {
            whitelist.push(key)
        } else {
            blacklist.push(key)
        }
    }
    let mut components = Vec::new();
    for r in sqlx::query("SELECT * FROM plan_components WHERE plan_id = $1 ORDER BY identity")
        .bind(id)
        .fetch_all(pool)
        .await?
    {
        let ct: String = r.try_get("component_type")?;
        components.push(PlanComponent {
            identity: r.try_get("identity")?,
            component_type: ComponentType::parse(&ct)?,
            package_id: r.try_get("package_id")?,
            file_position: u32::try_from(r.try_get::<i64, _>("file_position")?).unwrap_or(0),
        });
    }
    let mut texts = BTreeMap::new();
    for r in sqlx::query("SELECT language, text FROM plan_texts WHERE plan_id = $1")
        .bind(id)
        .fetch_all(pool)
        .await?
    {
        texts.insert(r.try_get("language")?, r.try_get("text")?);
    }
    let push_start: Option<String> = row.try_get("push_start")?;
    let push_end: Option<String> = row.try_get("push_end")?;
    let mode: String = row.try_get("upgrade_mode")?;
    let state: String = row.try_get("state")?;
    let int = |name: &str| -> Result<i64, ApiError> { Ok(row.try_get::<i64, _>(name)?) };
    Ok(Plan {
        id,
        state: state::parse(&state)?,
        name: row.try_get("name")?,
        product_key: row.try_get("product_key")?,
        whitelist,
        blacklist,
        time_zone: row.try_get("time_zone")?,
        push_period: push_start
            .zip(push_end)
            .map(|(start, end)| PushPeriod { start, end }),
        upgrade_mode: if mode == "manual" {
            UpgradeMode::Manual
        } else {
            UpgradeMode::Silent
        },
        strategy: Strategy {
            min_battery_percent: int("min_battery_percent")? as u8,
            min_signal_dbm: int("min_signal_dbm")? as i16,
            space_needed_bytes: int("space_needed_bytes")? as u64,
            download_retries: int("download_retries")? as u8,
        },
        components,
        texts,
        demo: row.try_get::<i64, _>("demo")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// A page of the plans, newest first; with `product`, only that product's (404 if no product
/// has that key); with `q`, only those whose name contains it.
pub async fn list(pool: &AnyPool, filter: &PlanFilter) -> Result<Vec<Plan>, ApiError> {
    let product_id = match &filter.product {
        Some(key) => Some(product::get(pool, key).await?.0),
        None => None,
    };
    let (limit, offset) = crate::db::window(filter.offset, filter.limit);
    let ids = sqlx::query(
        "SELECT id FROM plans WHERE ($1 IS NULL OR product_id = $1)
         AND ($2 IS NULL OR lower(name) LIKE lower($2) ESCAPE '\\')
         ORDER BY id DESC LIMIT $3 OFFSET $4",
    )
    .bind(product_id)
    .bind(crate::db::search(&filter.q))
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(ids.len());
    for r in ids {
        out.push(get(pool, r.try_get("id")?).await?);
    }
    Ok(out)
}

/// Ids of a product's active plans, oldest first (the order they are offered in).
pub async fn active_ids(pool: &AnyPool, product_id: i64) -> Result<Vec<i64>, ApiError> {
    let rows =
        sqlx::query("SELECT id FROM plans WHERE product_id = $1 AND state = 'active' ORDER BY id")
            .bind(product_id)
            .fetch_all(pool)
            .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?)
}

/// The decision rules of a plan (its packages resolved).
pub async fn rules(
    pool: &AnyPool,
    plan: &Plan,
    product_id: i64,
) -> Result<(PlanRules, Vec<package::Package>), ApiError> {
    let mut components = Vec::new();
    let mut packages = Vec::new();
    for c in &plan.components {
        let p = package::get(pool, c.package_id).await?;
        components.push(ComponentRule {
            identity: c.identity.clone(),
            package_type: p.meta.package_type,
            source_version: p.meta.source_version.clone(),
            target_version: p.meta.target_version.clone(),
        });
        packages.push(p);
    }
    Ok((
        PlanRules {
            product_id,
            whitelist: plan.whitelist.iter().cloned().collect(),
            blacklist: plan.blacklist.iter().cloned().collect(),
            components,
        },
        packages,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::{PackageFile, PackageMeta, PackageType, StoredFile};
    use crate::product::NewProduct;

    /// A database with products `p` and `q`, a package of `p` and a draft plan
    /// of `p` that uses it.
    async fn draft() -> (tempfile::TempDir, AnyPool, i64) {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open(&crate::db::Database::Sqlite(dir.path().join("db.sqlite3")))
            .await
            .unwrap();
        for key in ["p", "q"] {
            let new = NewProduct {
                product_key: key.into(),
                name: key.into(),
            };
            product::create(&pool, &new, false).await.unwrap();
        }
        let meta = PackageMeta {
            name: "n".into(),
            component_type: ComponentType::Sota,
            package_type: PackageType::Full,
            source_version: None,
            target_version: "2".into(),
            remarks: String::new(),
        };
        let file = StoredFile {
            file: PackageFile {
                position: 0,
                file_name: "a.bin".into(),
                size: 1,
                md5: "0".into(),
                crc32: "0".into(),
                sha256: "0".into(),
            },
            object_key: "packages/test/a".into(),
        };
        let pkg = package::commit(&pool, "p", &meta, vec![file], false)
            .await
            .unwrap();
        let input = PlanInput {
            name: "plan".into(),
            product_key: "p".into(),
            whitelist: vec![],
            blacklist: vec![],
            time_zone: "UTC".into(),
            push_period: None,
            upgrade_mode: UpgradeMode::Silent,
            strategy: Strategy::default(),
            components: vec![PlanComponent {
                identity: "STM32".into(),
                component_type: ComponentType::Sota,
                package_id: pkg.id,
                file_position: 0,
            }],
            texts: BTreeMap::new(),
        };
        let plan = create(&pool, &input, false).await.unwrap();
        (dir, pool, plan.id)
    }

    /// Packages given products by the migration may disagree with a plan made
    /// before; activation (and resuming) refuses such a plan.
    #[tokio::test]
    async fn activation_refuses_a_package_of_another_product() {
        let (_dir, pool, id) = draft().await;
        sqlx::query(
            "UPDATE packages SET product_id = (SELECT id FROM products WHERE product_key = 'q')",
        )
        .execute(&pool)
        .await
        .unwrap();

        let e = transition(&pool, id, Transition::Activate)
            .await
            .unwrap_err();

        assert_eq!(e.code, "package_product_mismatch", "{e}");
        assert!(
            e.message
                .contains("belongs to product \"q\", not to product \"p\""),
            "{e}"
        );
        assert_eq!(get(&pool, id).await.unwrap().state, PlanState::Draft);

        sqlx::query("UPDATE packages SET product_id = NULL")
            .execute(&pool)
            .await
            .unwrap();
        let e = transition(&pool, id, Transition::Activate)
            .await
            .unwrap_err();
        assert!(e.message.contains("belongs to no product"), "{e}");
    }

    #[tokio::test]
    async fn resuming_checks_the_packages_again() {
        let (_dir, pool, id) = draft().await;
        transition(&pool, id, Transition::Activate).await.unwrap();
        transition(&pool, id, Transition::Pause).await.unwrap();
        sqlx::query(
            "UPDATE packages SET product_id = (SELECT id FROM products WHERE product_key = 'q')",
        )
        .execute(&pool)
        .await
        .unwrap();

        let e = transition(&pool, id, Transition::Resume).await.unwrap_err();

        assert_eq!(e.code, "package_product_mismatch", "{e}");
        // Finishing a plan needs no check.
        transition(&pool, id, Transition::Finish).await.unwrap();
    }
}
