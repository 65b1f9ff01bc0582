//! What a plan request needs to know about a device, read in one statement.
//!
//! A request is the channel's hot path: answering it with four queries (the
//! device's components, the upgrades it ended, its pending verification jobs,
//! its product's active plans) cost four pool round trips, each a chance to
//! queue behind the others. One `UNION ALL` reads the same rows in one round
//! trip, and reads them from one snapshot. Nothing is cached here, so several
//! centers on one database see the same answer.

use std::collections::{BTreeMap, HashSet};

use sqlx::Row;

use crate::api::AppState;
use crate::error::ApiError;

/// One device's state as a plan request sees it.
#[derive(Clone, Debug, Default)]
pub struct RequestView {
    /// Component identity → version the device reported.
    pub components: BTreeMap<String, String>,
    /// `(plan id, identity)` of every upgrade the device ended.
    pub ended: HashSet<(i64, String)>,
    /// Whether a verification job is pending for the device.
    pub verification_pending: bool,
    /// The product's active plan ids, oldest first.
    pub active_plans: Vec<i64>,
    /// Component identities with an upgrade or a verification job updating
    /// (the device's next version report may end it).
    pub updating: HashSet<String>,
}

// The kind tag comes first so each row says which set it belongs to.
const QUERY: &str = "
    SELECT 'c' AS kind, identity AS name, version AS value, 0 AS id
      FROM device_components WHERE device_id = $1
    UNION ALL
    SELECT 'e', identity, NULL, plan_id
      FROM upgrades WHERE device_id = $1 AND outcome != 'pending'
    UNION ALL
    SELECT 'v', NULL, NULL, id
      FROM verifications WHERE device_id = $1 AND outcome = 'pending'
    UNION ALL
    SELECT 'p', NULL, NULL, id
      FROM plans WHERE product_id = $2 AND state = 'active'
    UNION ALL
    SELECT 'u', identity, NULL, plan_id
      FROM upgrades WHERE device_id = $1 AND outcome = 'pending' AND status = $3
    UNION ALL
    SELECT 'w', component_identity, NULL, id
      FROM verifications WHERE device_id = $1 AND outcome = 'pending' AND status = $3
    ORDER BY kind, id";

/// Read `device_id`'s view (the device belongs to `product_id`), with the
/// versions it reported that are not on disk yet ([`super::reported`]).
pub async fn read(
    state: &AppState,
    product_id: i64,
    device_id: i64,
) -> Result<RequestView, ApiError> {
    // The versions in flight are taken *before* the read: a write that commits between the
    // two is then in the read, and one that has not is in `held` (taken after, a commit
    // between read and take would be in neither).
    let held = state.reported.held(device_id);
    let rows = sqlx::query(QUERY)
        .bind(device_id)
        .bind(product_id)
        .bind(i64::from(sota_engine::Status::Updating.code()))
        .fetch_all(&state.pool)
        .await?;
    let mut view = RequestView::default();
    for r in &rows {
        let kind: String = r.try_get("kind")?;
        match kind.as_str() {
            "c" => {
                view.components
                    .insert(r.try_get("name")?, r.try_get("value")?);
            }
            "e" => {
                view.ended.insert((r.try_get("id")?, r.try_get("name")?));
            }
            "v" => view.verification_pending = true,
            "p" => view.active_plans.push(r.try_get("id")?),
            "u" | "w" => {
                view.updating.insert(r.try_get("name")?);
            }
            other => {
                return Err(ApiError::internal(format!(
                    "the request view read a row of unknown kind {other:?}"
                )))
            }
        }
    }
    view.components.extend(held);
    Ok(view)
}
