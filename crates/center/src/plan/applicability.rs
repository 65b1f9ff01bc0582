//! Which plan applies to a device: product, lists, then per component the
//! version rule (delta: current == source; full: current != target).
//!
//! Pure and allocation-free per device so it can decide for a million devices
//! in a few seconds (see `cargo xtask bench center`).

use std::collections::HashSet;

use crate::package::PackageType;

/// One component of a plan, reduced to what the decision needs.
#[derive(Debug, Clone)]
pub struct ComponentRule {
    /// Component identity, e.g. `STM32`.
    pub identity: String,
    /// Full or delta.
    pub package_type: PackageType,
    /// The delta's source version.
    pub source_version: Option<String>,
    /// The version after upgrade.
    pub target_version: String,
}

/// A plan reduced to what the decision needs.
#[derive(Debug, Clone, Default)]
pub struct PlanRules {
    /// Product row id the plan targets.
    pub product_id: i64,
    /// If non-empty, only these device keys.
    pub whitelist: HashSet<String>,
    /// Never these device keys (wins over the whitelist).
    pub blacklist: HashSet<String>,
    /// The plan's components.
    pub components: Vec<ComponentRule>,
}

impl ComponentRule {
    /// Whether a device whose component is at `current` needs this package.
    pub fn applies_to(&self, current: Option<&str>) -> bool {
        let Some(current) = current else { return false };
        match self.package_type {
            PackageType::Delta => self.source_version.as_deref() == Some(current),
            PackageType::Full => current != self.target_version,
        }
    }
}

impl PlanRules {
    /// Whether the plan targets this device at all (product and lists).
    pub fn targets(&self, product_id: i64, device_key: &str) -> bool {
        product_id == self.product_id
            && !self.blacklist.contains(device_key)
            && (self.whitelist.is_empty() || self.whitelist.contains(device_key))
    }

    /// Indices of the components that apply to the device, given a lookup of
    /// its current version per identity; empty when the plan does not apply.
    pub fn applicable_components<'a, F>(
        &self,
        product_id: i64,
        device_key: &str,
        current: F,
    ) -> Vec<usize>
    where
        F: Fn(&str) -> Option<&'a str>,
    {
        if !self.targets(product_id, device_key) {
            return Vec::new();
        }
        (0..self.components.len())
            .filter(|&i| self.components[i].applies_to(current(&self.components[i].identity)))
            .collect()
    }

    /// Whether any component applies (no allocation).
    pub fn applies<'a, F>(&self, product_id: i64, device_key: &str, current: F) -> bool
    where
        F: Fn(&str) -> Option<&'a str>,
    {
        self.targets(product_id, device_key)
            && self
                .components
                .iter()
                .any(|c| c.applies_to(current(&c.identity)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> PlanRules {
        PlanRules {
            product_id: 1,
            whitelist: HashSet::new(),
            blacklist: HashSet::new(),
            components: vec![
                ComponentRule {
                    identity: "MCU".into(),
                    package_type: PackageType::Delta,
                    source_version: Some("1.0".into()),
                    target_version: "1.1".into(),
                },
                ComponentRule {
                    identity: "MOD".into(),
                    package_type: PackageType::Full,
                    source_version: None,
                    target_version: "2.0".into(),
                },
            ],
        }
    }

    fn versions<'a>(
        mcu: Option<&'a str>,
        module: Option<&'a str>,
    ) -> impl Fn(&str) -> Option<&'a str> {
        move |id| match id {
            "MCU" => mcu,
            "MOD" => module,
            _ => None,
        }
    }

    #[test]
    fn version_rules() {
        let r = rules();
        assert_eq!(
            r.applicable_components(1, "d", versions(Some("1.0"), Some("1.9"))),
            vec![0, 1]
        );
        assert_eq!(
            r.applicable_components(1, "d", versions(Some("0.9"), Some("2.0"))),
            Vec::<usize>::new()
        );
        assert_eq!(
            r.applicable_components(1, "d", versions(Some("1.1"), Some("anything"))),
            vec![1]
        );
        assert_eq!(
            r.applicable_components(1, "d", versions(None, None)),
            Vec::<usize>::new()
        );
        assert!(
            !r.applies(2, "d", versions(Some("1.0"), None)),
            "other product"
        );
    }

    #[test]
    fn lists_blacklist_wins() {
        let mut r = rules();
        let v = versions(Some("1.0"), None);
        assert!(r.applies(1, "a", &v));
        r.whitelist = ["a".to_string(), "b".to_string()].into();
        assert!(r.applies(1, "a", &v) && !r.applies(1, "c", &v));
        r.blacklist = ["a".to_string()].into();
        assert!(!r.applies(1, "a", &v) && r.applies(1, "b", &v));
        r.whitelist.clear();
        assert!(!r.applies(1, "a", &v) && r.applies(1, "c", &v));
    }
}
