//! Upgrade plans: which devices of a product get which packages, when and how;
//! their life cycle (draft → active → (paused ↔ active) → finished) and push
//! period, and the rules of a plan's content that need no database.
//!
//! The rules (each answered with its own error code): IANA time zone, push
//! period `HH:MM`–`HH:MM` (may cross midnight), unique component identities,
//! manual mode needs `zh` and `en` texts, strategy bounds. The center checks
//! besides that the product exists and that each component's package exists,
//! has the file, the component type and the plan's product.

use std::collections::{BTreeMap, HashSet};

use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::package::ComponentType;
use crate::rules::{check_key, check_name, check_token};
use crate::Refusal;

/// Most device keys in one list.
pub const MAX_LIST: usize = 1_000_000;

/// Silent: the device upgrades by itself. Manual: the user confirms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UpgradeMode {
    /// No user confirmation.
    Silent,
    /// The user confirms; needs `zh` and `en` texts.
    Manual,
}

impl UpgradeMode {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            UpgradeMode::Silent => "silent",
            UpgradeMode::Manual => "manual",
        }
    }
}

/// Conditions a device must meet before it accepts the upgrade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Strategy {
    /// Minimum battery level, 0–100 %.
    pub min_battery_percent: u8,
    /// Minimum signal strength, -150–0 dBm.
    pub min_signal_dbm: i16,
    /// Free space the device needs, in bytes.
    pub space_needed_bytes: u64,
    /// Download retries, 0–10.
    pub download_retries: u8,
}

impl Default for Strategy {
    fn default() -> Self {
        Self {
            min_battery_percent: 20,
            min_signal_dbm: -110,
            space_needed_bytes: 0,
            download_retries: 3,
        }
    }
}

impl Strategy {
    /// Check the bounds of every condition.
    pub fn check(&self) -> Result<(), Refusal> {
        if self.min_battery_percent > 100 {
            return Err(Refusal::invalid(
                "invalid_strategy",
                "strategy.min_battery_percent must be 0 to 100",
            ));
        }
        if !(-150..=0).contains(&self.min_signal_dbm) {
            return Err(Refusal::invalid(
                "invalid_strategy",
                "strategy.min_signal_dbm must be -150 to 0 (dBm)",
            ));
        }
        if self.download_retries > 10 {
            return Err(Refusal::invalid(
                "invalid_strategy",
                "strategy.download_retries must be 0 to 10",
            ));
        }
        if self.space_needed_bytes > i64::MAX as u64 {
            return Err(Refusal::invalid(
                "invalid_strategy",
                "strategy.space_needed_bytes is too large",
            ));
        }
        Ok(())
    }
}

/// One component of a plan: an identity upgraded with a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanComponent {
    /// Component identity on the device, e.g. `STM32`; unique in the plan.
    pub identity: String,
    /// Must equal the package's component type.
    pub component_type: ComponentType,
    /// The version package to install.
    pub package_id: i64,
    /// Which of the package's files this component delivers (0-based; default
    /// 0, the first). The other files stay downloadable by link.
    #[serde(default)]
    pub file_position: u32,
}

impl PlanComponent {
    /// Check the rules of a component that need no package: its identity is
    /// valid and not among `seen` (the identities before it, which it joins).
    pub fn check<'a>(&'a self, seen: &mut HashSet<&'a str>) -> Result<(), Refusal> {
        check_token("component identity", &self.identity)?;
        if !seen.insert(self.identity.as_str()) {
            return Err(Refusal::invalid(
                "duplicate_component",
                format!("component identity {:?} appears twice; each component identity must be unique in a plan", self.identity),
            ));
        }
        Ok(())
    }
}

/// The editable content of a plan (body of create and update).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanInput {
    /// Plan name, 1–128 characters.
    pub name: String,
    /// Product whose devices the plan upgrades.
    pub product_key: String,
    /// If non-empty, only these devices.
    #[serde(default)]
    pub whitelist: Vec<String>,
    /// Never these devices; wins over the whitelist.
    #[serde(default)]
    pub blacklist: Vec<String>,
    /// IANA time zone name, e.g. `Asia/Shanghai`.
    pub time_zone: String,
    /// Optional daily push window in that zone.
    #[serde(default)]
    pub push_period: Option<PushPeriod>,
    /// `silent` or `manual`.
    pub upgrade_mode: UpgradeMode,
    /// Upgrade conditions; defaults when absent.
    #[serde(default)]
    pub strategy: Strategy,
    /// 1 to 20 components (a device takes at most 20 plans at once).
    pub components: Vec<PlanComponent>,
    /// Upgrade texts by language code; manual mode needs `zh` and `en`.
    #[serde(default)]
    pub texts: BTreeMap<String, String>,
}

impl PlanInput {
    /// Every rule of the content that needs no database, in the order the
    /// center checks them (it looks the product up after the name, and each
    /// component's package after the component's own rules).
    pub fn check(&self) -> Result<(), Refusal> {
        check_name("plan name", &self.name)?;
        self.check_settings()?;
        let mut seen = HashSet::new();
        for c in &self.components {
            c.check(&mut seen)?;
        }
        check_texts(&self.texts, self.upgrade_mode)
    }

    /// The device lists, time zone, push period, strategy and number of components.
    pub fn check_settings(&self) -> Result<(), Refusal> {
        check_list("whitelist", &self.whitelist)?;
        check_list("blacklist", &self.blacklist)?;
        time_zone(&self.time_zone)?;
        if let Some(p) = &self.push_period {
            p.check()?;
        }
        self.strategy.check()?;
        // A device takes at most MAX_PLANS plans at once (the engine's, QuecThing's
        // multi-plan limit): every component of a plan fits in one plans message.
        if self.components.is_empty() || self.components.len() > sota_engine::MAX_PLANS {
            return Err(Refusal::invalid(
                "invalid_components",
                format!(
                    "a plan needs 1 to {} components (a device takes at most {} plans at once), each an identity with a package",
                    sota_engine::MAX_PLANS,
                    sota_engine::MAX_PLANS
                ),
            ));
        }
        Ok(())
    }
}

/// A plan as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Plan {
    /// Plan id.
    pub id: i64,
    /// Life-cycle state.
    pub state: PlanState,
    // The content, as in `PlanInput` (spelled out rather than flattened so the
    // schema of a response is not bound by the input's `deny_unknown_fields`).
    /// Plan name.
    pub name: String,
    /// Product whose devices the plan upgrades.
    pub product_key: String,
    /// If non-empty, only these devices.
    pub whitelist: Vec<String>,
    /// Never these devices; wins over the whitelist.
    pub blacklist: Vec<String>,
    /// IANA time zone name.
    pub time_zone: String,
    /// Daily push window in that zone, if any.
    pub push_period: Option<PushPeriod>,
    /// `silent` or `manual`.
    pub upgrade_mode: UpgradeMode,
    /// Upgrade conditions.
    pub strategy: Strategy,
    /// The components.
    pub components: Vec<PlanComponent>,
    /// Upgrade texts by language code.
    pub texts: BTreeMap<String, String>,
    /// True for the demo data seeded on first start.
    pub demo: bool,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

/// Which plans to list, and which page of them (newest first).
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlanFilter {
    /// Only the plans of the product with this key (404 if there is none).
    pub product: Option<String>,
    /// Number of plans to skip.
    pub offset: Option<u32>,
    /// At most this many plans (1 to 1000); without it, every one from `offset` on.
    pub limit: Option<u32>,
    /// Only plans whose name contains this text (ignoring ASCII case).
    pub q: Option<String>,
}

/// Whether `code` is a language code such as `zh`, `en` or `pt-BR`.
pub fn check_language(code: &str) -> bool {
    let mut parts = code.split('-');
    let first = parts.next().unwrap_or("");
    (2..=3).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Check a device list (`what` is `whitelist` or `blacklist`): at most
/// [`MAX_LIST`] keys, each a valid device key.
pub fn check_list(what: &str, keys: &[String]) -> Result<(), Refusal> {
    if keys.len() > MAX_LIST {
        return Err(Refusal::invalid(
            "list_too_long",
            format!(
                "the {what} has {} keys; at most {MAX_LIST} are accepted",
                keys.len()
            ),
        ));
    }
    for k in keys {
        check_key(&format!("{what} device key"), k)?;
    }
    Ok(())
}

/// Check the upgrade texts: language codes, 1–2000 characters each, and
/// `zh` and `en` present in manual mode.
pub fn check_texts(texts: &BTreeMap<String, String>, mode: UpgradeMode) -> Result<(), Refusal> {
    for (lang, text) in texts {
        if !check_language(lang) {
            return Err(Refusal::invalid("invalid_language", format!("text language {lang:?} is not a language code such as \"zh\", \"en\" or \"pt-BR\"")));
        }
        if text.trim().is_empty() || text.chars().count() > 2000 {
            return Err(Refusal::invalid(
                "invalid_text",
                format!("the {lang:?} upgrade text must have 1 to 2000 characters"),
            ));
        }
    }
    if mode == UpgradeMode::Manual {
        for lang in ["zh", "en"] {
            if !texts.contains_key(lang) {
                return Err(Refusal::invalid(
                    "manual_needs_texts",
                    format!("manual upgrade mode needs upgrade texts in Chinese (zh) and English (en); add texts.{lang}"),
                ));
            }
        }
    }
    Ok(())
}

/// Where a plan is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlanState {
    /// Being prepared: editable and deletable, pushes nothing.
    Draft,
    /// Pushed to matching devices; frozen.
    Active,
    /// Temporarily not pushed; frozen.
    Paused,
    /// Done for good; frozen.
    Finished,
}

/// An operator's request to move a plan along its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// draft → active.
    Activate,
    /// active → paused.
    Pause,
    /// paused → active.
    Resume,
    /// active or paused → finished.
    Finish,
}

impl PlanState {
    /// Stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PlanState::Draft => "draft",
            PlanState::Active => "active",
            PlanState::Paused => "paused",
            PlanState::Finished => "finished",
        }
    }

    /// The state of a stored or wire name, if it names one.
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "draft" => PlanState::Draft,
            "active" => PlanState::Active,
            "paused" => PlanState::Paused,
            "finished" => PlanState::Finished,
            _ => return None,
        })
    }

    /// Only a draft may be edited or deleted: activation freezes the plan.
    pub fn is_frozen(self) -> bool {
        self != PlanState::Draft
    }

    /// The state after `t`, or a 409 saying why not.
    pub fn apply(self, t: Transition) -> Result<PlanState, Refusal> {
        use PlanState::*;
        match (self, t) {
            (Draft, Transition::Activate) => Ok(Active),
            (Active, Transition::Pause) => Ok(Paused),
            (Paused, Transition::Resume) => Ok(Active),
            (Active | Paused, Transition::Finish) => Ok(Finished),
            (from, t) => {
                let hint = match from {
                    Draft => "a draft can only be activated",
                    Active => "an active plan can be paused or finished",
                    Paused => "a paused plan can be resumed or finished",
                    Finished => "a finished plan is final",
                };
                Err(Refusal::conflict(
                    "invalid_transition",
                    format!(
                        "cannot {} a plan that is {}: {hint}",
                        t.verb(),
                        from.as_str()
                    ),
                ))
            }
        }
    }
}

impl Transition {
    /// The operator's word for it, e.g. `activate` (also the last segment of its path).
    pub fn verb(self) -> &'static str {
        match self {
            Transition::Activate => "activate",
            Transition::Pause => "pause",
            Transition::Resume => "resume",
            Transition::Finish => "finish",
        }
    }
}

/// A daily window, `HH:MM` start (inclusive) to `HH:MM` end (exclusive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushPeriod {
    /// Start, `HH:MM` in the plan's time zone.
    #[schema(example = "22:00")]
    pub start: String,
    /// End, `HH:MM`; earlier than start means the window crosses midnight.
    #[schema(example = "06:00")]
    pub end: String,
}

/// Look up an IANA time zone name, e.g. `Asia/Shanghai`.
pub fn time_zone(name: &str) -> Result<TimeZone, Refusal> {
    if name.is_empty() || name.len() > 64 {
        return Err(Refusal::invalid(
            "invalid_time_zone",
            "time_zone is required: an IANA name such as \"Asia/Shanghai\"",
        ));
    }
    TimeZone::get(name).map_err(|_| {
        Refusal::invalid(
            "invalid_time_zone",
            format!("time_zone {name:?} is not an IANA time zone name; use one like \"Asia/Shanghai\" or \"Europe/Berlin\""),
        )
    })
}

fn parse_hhmm(what: &str, s: &str) -> Result<Time, Refusal> {
    let bad = || {
        Refusal::invalid(
            "invalid_push_period",
            format!("push_period.{what} {s:?} is not a time: use HH:MM, 00:00 to 23:59"),
        )
    };
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: i8 = h.parse().map_err(|_| bad())?;
    let m: i8 = m.parse().map_err(|_| bad())?;
    Time::new(h, m, 0, 0).map_err(|_| bad())
}

impl PushPeriod {
    /// Check both ends parse and differ.
    pub fn check(&self) -> Result<(Time, Time), Refusal> {
        let start = parse_hhmm("start", &self.start)?;
        let end = parse_hhmm("end", &self.end)?;
        if start == end {
            return Err(Refusal::invalid(
                "invalid_push_period",
                "push_period start and end are equal; for pushing all day leave push_period out",
            ));
        }
        Ok((start, end))
    }

    /// Whether `now` falls in the window, seen in `tz`. Generic in its error
    /// so that a caller's own error type (the center's) comes straight out.
    pub fn contains<E: From<Refusal>>(&self, tz: &TimeZone, now: Timestamp) -> Result<bool, E> {
        let (start, end) = self.check()?;
        let t = now.to_zoned(tz.clone()).time();
        Ok(if start < end {
            start <= t && t < end
        } else {
            t >= start || t < end
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn window_crossing_midnight_in_its_zone() {
        let tz = time_zone("Asia/Shanghai").unwrap(); // UTC+8
        let p = PushPeriod {
            start: "22:00".into(),
            end: "06:00".into(),
        };
        let inside = |s| p.contains::<Refusal>(&tz, at(s)).unwrap();
        assert!(inside("2026-01-01T14:30:00Z")); // 22:30 local
        assert!(inside("2026-01-01T21:59:00Z")); // 05:59 local
        assert!(!inside("2026-01-01T22:00:00Z")); // 06:00 local
        assert!(!inside("2026-01-01T04:00:00Z")); // 12:00 local
    }

    #[test]
    fn window_within_a_day() {
        let tz = time_zone("UTC").unwrap();
        let p = PushPeriod {
            start: "09:00".into(),
            end: "17:00".into(),
        };
        let inside = |s| p.contains::<Refusal>(&tz, at(s)).unwrap();
        assert!(inside("2026-01-01T09:00:00Z"));
        assert!(!inside("2026-01-01T17:00:00Z"));
        assert!(!inside("2026-01-01T08:59:00Z"));
    }

    #[test]
    fn rejects_bad_times_and_zones() {
        for (s, e) in [
            ("24:00", "01:00"),
            ("9:00", "10:00"),
            ("10:00", "10:00"),
            ("aa:bb", "01:00"),
        ] {
            let p = PushPeriod {
                start: s.into(),
                end: e.into(),
            };
            assert_eq!(
                p.check().unwrap_err().code,
                "invalid_push_period",
                "{s}-{e}"
            );
        }
        assert!(time_zone("Mars/Olympus").is_err());
        assert!(time_zone("").is_err());
    }

    #[test]
    fn every_transition_from_every_state() {
        use PlanState::*;
        use Transition::*;
        let states = [Draft, Active, Paused, Finished];
        let allowed = [
            (Draft, Activate, Active),
            (Active, Pause, Paused),
            (Paused, Resume, Active),
            (Active, Finish, Finished),
            (Paused, Finish, Finished),
        ];
        for s in states {
            for t in [Activate, Pause, Resume, Finish] {
                let expected = allowed
                    .iter()
                    .find(|(f, tr, _)| *f == s && *tr == t)
                    .map(|a| a.2);
                match (s.apply(t), expected) {
                    (Ok(got), Some(want)) => assert_eq!(got, want),
                    (Err(e), None) => assert_eq!((e.status, e.code), (409, "invalid_transition")),
                    (got, want) => panic!("{s:?} {t:?}: got {got:?}, want {want:?}"),
                }
            }
            assert_eq!(PlanState::from_name(s.as_str()), Some(s));
        }
        assert!(
            !Draft.is_frozen() && Active.is_frozen() && Paused.is_frozen() && Finished.is_frozen()
        );
        assert_eq!(PlanState::from_name("gone"), None);
    }

    fn input() -> PlanInput {
        PlanInput {
            name: "plan".into(),
            product_key: "p".into(),
            whitelist: vec!["a".into()],
            blacklist: vec![],
            time_zone: "Asia/Shanghai".into(),
            push_period: None,
            upgrade_mode: UpgradeMode::Manual,
            strategy: Strategy::default(),
            components: vec![PlanComponent {
                identity: "STM32".into(),
                component_type: ComponentType::Sota,
                package_id: 1,
                file_position: 0,
            }],
            texts: [("zh", "升级"), ("en", "Upgrade")]
                .map(|(l, t)| (l.to_string(), t.to_string()))
                .into(),
        }
    }

    /// Each rule answers with its own code; a page shows the same refusal the center would.
    #[test]
    fn a_plans_content_is_checked_rule_by_rule() {
        assert_eq!(input().check(), Ok(()));
        type Change = fn(&mut PlanInput);
        let cases: [(Change, &str); 10] = [
            (|i| i.name = " ".into(), "invalid_name"),
            (|i| i.blacklist = vec!["a b".into()], "invalid_key"),
            (|i| i.time_zone = "Mars/Olympus".into(), "invalid_time_zone"),
            (
                |i| i.push_period = Some(period("22:00", "22:00")),
                "invalid_push_period",
            ),
            (|i| i.strategy.min_signal_dbm = 5, "invalid_strategy"),
            (|i| i.components.clear(), "invalid_components"),
            (
                |i| i.components.push(i.components[0].clone()),
                "duplicate_component",
            ),
            (|i| drop(i.texts.remove("en")), "manual_needs_texts"),
            (
                |i| drop(i.texts.insert("EN".into(), "x".into())),
                "invalid_language",
            ),
            (
                |i| drop(i.texts.insert("de".into(), " ".into())),
                "invalid_text",
            ),
        ];
        for (change, code) in cases {
            let mut i = input();
            change(&mut i);
            let e = i.check().unwrap_err();
            assert_eq!((e.status, e.code), (422, code), "{e}");
        }
    }

    fn period(start: &str, end: &str) -> PushPeriod {
        PushPeriod {
            start: start.into(),
            end: end.into(),
        }
    }
}
