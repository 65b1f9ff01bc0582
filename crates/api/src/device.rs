//! Devices: one product's units, each with its components' reported versions,
//! and the upgrades offered to one device.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::package::{ComponentType, PackageFile, PackageType};
use crate::plan::{Strategy, UpgradeMode};

/// A device and its components.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Device {
    /// Product the device belongs to.
    pub product_key: String,
    /// Device key, unique within the product.
    pub device_key: String,
    /// Component identity → reported version (e.g. `STM32` → `1_0_0`).
    pub components: BTreeMap<String, String>,
    /// First registration (RFC 3339).
    pub registered_at: String,
    /// Last report (RFC 3339).
    pub last_seen_at: String,
}

/// Body of a registration / version report.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceReport {
    /// Component identity → current version. Reported components replace
    /// earlier reports of the same identity; others are kept.
    #[serde(default)]
    pub components: BTreeMap<String, String>,
}

/// Paging of device lists.
#[derive(Debug, Clone, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Number of devices to skip.
    pub offset: Option<u32>,
    /// At most this many devices (default 100, max 1000).
    pub limit: Option<u32>,
    /// Only devices whose key starts with this text (case-sensitive).
    pub q: Option<String>,
}

impl Paging {
    /// The half-open range of device keys that start with `q`, or `None` for all keys.
    /// Keys are ASCII below `0x7f` ([`crate::rules::check_key`]), so every key starting with
    /// `q` lies in `[q, q + "\u{7f}")` and a lookup uses the (product, key) index.
    pub fn key_range(&self) -> Option<(String, String)> {
        let q = self.q.as_deref().filter(|q| !q.is_empty())?;
        Some((q.to_string(), format!("{q}\u{7f}")))
    }
}

/// A firmware file offered to one device, with its per-device link.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OfferedFile {
    /// The file and its digests.
    #[serde(flatten)]
    pub file: PackageFile,
    /// Download link for this device; expires at `url_expires_at`.
    pub url: String,
    /// Link expiry (RFC 3339).
    pub url_expires_at: String,
}

/// One component upgrade offered to a device.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OfferedComponent {
    /// Component identity.
    pub identity: String,
    /// FOTA or SOTA.
    pub component_type: ComponentType,
    /// Full or delta.
    pub package_type: PackageType,
    /// The delta's source version; empty for a full package (as QuecThing sends it).
    pub source_version: String,
    /// The version after upgrade.
    pub target_version: String,
    /// Package id.
    pub package_id: i64,
    /// The package's files.
    pub files: Vec<OfferedFile>,
}

/// An active plan that applies to a device.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Offer {
    /// Plan id.
    pub plan_id: i64,
    /// Plan name.
    pub plan_name: String,
    /// Silent or manual.
    pub upgrade_mode: UpgradeMode,
    /// Whether now is inside the plan's push period (always true without one).
    pub in_push_period: bool,
    /// Upgrade conditions.
    pub strategy: Strategy,
    /// Upgrade texts by language.
    pub texts: BTreeMap<String, String>,
    /// The components that apply.
    pub components: Vec<OfferedComponent>,
}
