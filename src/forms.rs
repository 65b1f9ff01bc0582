//! The engineer's forms as data: what the fields hold, the rules they are checked by before
//! anything is sent (`sota-api`'s, the same the center applies), and what is sent.

use std::collections::BTreeMap;

use sota_api::package::{check_files, ComponentType, Package, PackageMeta, PackageType};
use sota_api::plan::{
    check_list, Plan, PlanComponent, PlanInput, PushPeriod, Strategy, UpgradeMode,
};
use sota_api::rules::{check_key, check_name};
use sota_api::Refusal;

/// "Add a version package", as typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageDraft {
    /// The product the package belongs to.
    pub product_key: String,
    /// Package name.
    pub name: String,
    /// FOTA (module) or SOTA (MCU).
    pub component_type: ComponentType,
    /// Full or delta.
    pub package_type: PackageType,
    /// The delta's source version; ignored for a full package (the field is hidden then).
    pub source_version: String,
    /// The version after the upgrade.
    pub target_version: String,
    /// Free text.
    pub remarks: String,
}

impl Default for PackageDraft {
    fn default() -> Self {
        PackageDraft {
            product_key: String::new(),
            name: String::new(),
            component_type: ComponentType::Sota,
            package_type: PackageType::Full,
            source_version: String::new(),
            target_version: String::new(),
            remarks: String::new(),
        }
    }
}

impl PackageDraft {
    /// The descriptive fields as the center stores them.
    pub fn meta(&self) -> PackageMeta {
        PackageMeta {
            name: self.name.clone(),
            component_type: self.component_type,
            package_type: self.package_type,
            source_version: match self.package_type {
                PackageType::Full => None,
                // Left empty, it is missing (as the center reads an empty form field).
                PackageType::Delta => Some(self.source_version.clone()).filter(|s| !s.is_empty()),
            },
            target_version: self.target_version.clone(),
            remarks: self.remarks.clone(),
        }
    }

    /// The draft with its files (name, size) checked by the API's rules: the first refusal.
    pub fn check<'a>(
        &self,
        files: impl IntoIterator<Item = (&'a str, u64)>,
    ) -> Result<PackageMeta, Refusal> {
        if self.product_key.is_empty() {
            return Err(Refusal::invalid(
                "missing_field",
                "pick the product the package belongs to",
            ));
        }
        check_key("product_key", &self.product_key)?;
        let meta = self.meta();
        meta.check()?;
        check_files(files)?;
        Ok(meta)
    }

    /// The multipart form's text fields, in the order the center reads them: the product
    /// first, so an unknown product is refused before any file is sent.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let meta = self.meta();
        let mut fields = vec![
            ("product_key", self.product_key.clone()),
            ("name", meta.name),
            ("component_type", meta.component_type.as_str().to_string()),
            ("package_type", meta.package_type.as_str().to_string()),
            ("target_version", meta.target_version),
            ("remarks", meta.remarks),
        ];
        if let Some(source) = meta.source_version {
            fields.push(("source_version", source));
        }
        fields
    }
}

/// Each file's share of an upload that has sent `loaded` bytes, from 0 to 1: the files go
/// out one after the other, in order, behind a few small text fields.
pub fn file_progress(sizes: &[u64], loaded: f64) -> Vec<f64> {
    let mut before = 0.0;
    sizes
        .iter()
        .map(|&size| {
            let size = size as f64;
            let share = if size > 0.0 {
                ((loaded - before) / size).clamp(0.0, 1.0)
            } else {
                1.0
            };
            before += size;
            share
        })
        .collect()
}

/// A size for people: bytes, KiB or MiB.
pub fn size_text(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    } else if bytes >= 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

/// A list of device keys as pasted or read from a text or CSV file: entries separated by new
/// lines, commas, semicolons or white space, each trimmed of CSV quotes, duplicates dropped
/// (the first kept, in order). Every entry that is not a device key is named in the refusal
/// (`sota-api`'s key rule words it); then the list's own rule (its length) applies. `what` is
/// `whitelist` or `blacklist`.
pub fn parse_keys(what: &str, text: &str) -> Result<Vec<String>, Refusal> {
    let mut seen = std::collections::HashSet::new();
    let mut keys = Vec::new();
    let mut bad: Vec<(String, Refusal)> = Vec::new();
    let entries = text
        .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .map(|e| e.trim_matches('"'))
        .filter(|e| !e.is_empty());
    for entry in entries {
        if !seen.insert(entry) {
            continue;
        }
        match check_key(&format!("{what} device key"), entry) {
            Ok(()) => keys.push(entry.to_string()),
            Err(r) => bad.push((entry.to_string(), r)),
        }
    }
    if let Some((_, first)) = bad.first() {
        // The first refusal in the API's words, then every other entry by name.
        let mut message = first.message.clone();
        if bad.len() > 1 {
            const NAMED: usize = 20;
            let others: Vec<String> = bad[1..]
                .iter()
                .take(NAMED)
                .map(|(e, _)| format!("{e:?}"))
                .collect();
            message.push_str(&format!(
                " — not valid either: {}{}",
                others.join(", "),
                if bad.len() - 1 > NAMED {
                    format!(" and {} more", bad.len() - 1 - NAMED)
                } else {
                    String::new()
                }
            ));
        }
        return Err(Refusal::invalid(first.code, message));
    }
    check_list(what, &keys)?;
    Ok(keys)
}

/// The keys on both lists: the blacklist wins, so these devices never get the plan.
pub fn in_both(whitelist: &[String], blacklist: &[String]) -> Vec<String> {
    let black: std::collections::HashSet<&str> = blacklist.iter().map(String::as_str).collect();
    whitelist
        .iter()
        .filter(|k| black.contains(k.as_str()))
        .cloned()
        .collect()
}

/// One component row of the plan form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ComponentDraft {
    /// Component identity on the device, e.g. `STM32`.
    pub identity: String,
    /// The version package picked for it (one of the plan's product).
    pub package_id: Option<i64>,
    /// Which of the package's files it delivers.
    pub file_position: u32,
}

/// One upgrade text row of the plan form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TextDraft {
    /// Language code, e.g. `zh`.
    pub language: String,
    /// What the user reads before a manual upgrade.
    pub text: String,
}

/// "Create a plan" and "Edit the draft", as typed. Numbers and lists stay text until they
/// are checked, so what the engineer typed is never lost to a parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanDraft {
    /// Plan name.
    pub name: String,
    /// The product whose devices the plan upgrades.
    pub product_key: String,
    /// Device keys, as pasted or read from a file ([`parse_keys`]).
    pub whitelist: String,
    /// Device keys that never get the plan, even when whitelisted.
    pub blacklist: String,
    /// IANA time zone name.
    pub time_zone: String,
    /// Whether pushes are limited to a daily window.
    pub push_period: bool,
    /// The window's start, `HH:MM`.
    pub push_start: String,
    /// The window's end, `HH:MM`.
    pub push_end: String,
    /// Silent or manual.
    pub upgrade_mode: UpgradeMode,
    /// Minimum battery, %.
    pub min_battery_percent: String,
    /// Minimum signal, dBm.
    pub min_signal_dbm: String,
    /// Free space needed, bytes.
    pub space_needed_bytes: String,
    /// Download retries.
    pub download_retries: String,
    /// The components, each with its package.
    pub components: Vec<ComponentDraft>,
    /// Upgrade texts; rows with a blank text are left out.
    pub texts: Vec<TextDraft>,
}

impl Default for PlanDraft {
    fn default() -> Self {
        let s = Strategy::default();
        PlanDraft {
            name: String::new(),
            product_key: String::new(),
            whitelist: String::new(),
            blacklist: String::new(),
            time_zone: "UTC".into(),
            push_period: false,
            push_start: "22:00".into(),
            push_end: "06:00".into(),
            upgrade_mode: UpgradeMode::Silent,
            min_battery_percent: s.min_battery_percent.to_string(),
            min_signal_dbm: s.min_signal_dbm.to_string(),
            space_needed_bytes: s.space_needed_bytes.to_string(),
            download_retries: s.download_retries.to_string(),
            components: vec![ComponentDraft::default()],
            // Chinese and English are offered first: a manual plan needs both.
            texts: ["zh", "en"]
                .map(|l| TextDraft {
                    language: l.into(),
                    text: String::new(),
                })
                .into(),
        }
    }
}

/// A whole number typed into a strategy field, as `T`. A number outside `T` becomes `too_far`,
/// a value the strategy's own bounds refuse, so the refusal is the API's words for the field.
fn number<T: TryFrom<i128>>(
    field: &str,
    label: &str,
    typed: &str,
    too_far: T,
) -> Result<T, Refusal> {
    let n: i128 = typed.trim().parse().map_err(|_| {
        Refusal::invalid(
            "invalid_strategy",
            format!("strategy.{field} ({label}) {typed:?} is not a whole number"),
        )
    })?;
    Ok(T::try_from(n).unwrap_or(too_far))
}

impl PlanDraft {
    /// The form filled with a stored plan, to edit it.
    pub fn from_plan(plan: &Plan) -> PlanDraft {
        let mut texts: Vec<TextDraft> = plan
            .texts
            .iter()
            .map(|(language, text)| TextDraft {
                language: language.clone(),
                text: text.clone(),
            })
            .collect();
        for lang in ["en", "zh"] {
            if !plan.texts.contains_key(lang) {
                texts.insert(
                    0,
                    TextDraft {
                        language: lang.into(),
                        text: String::new(),
                    },
                );
            }
        }
        let default = PlanDraft::default();
        PlanDraft {
            name: plan.name.clone(),
            product_key: plan.product_key.clone(),
            whitelist: plan.whitelist.join("\n"),
            blacklist: plan.blacklist.join("\n"),
            time_zone: plan.time_zone.clone(),
            push_period: plan.push_period.is_some(),
            push_start: plan
                .push_period
                .as_ref()
                .map_or(default.push_start, |p| p.start.clone()),
            push_end: plan
                .push_period
                .as_ref()
                .map_or(default.push_end, |p| p.end.clone()),
            upgrade_mode: plan.upgrade_mode,
            min_battery_percent: plan.strategy.min_battery_percent.to_string(),
            min_signal_dbm: plan.strategy.min_signal_dbm.to_string(),
            space_needed_bytes: plan.strategy.space_needed_bytes.to_string(),
            download_retries: plan.strategy.download_retries.to_string(),
            components: plan
                .components
                .iter()
                .map(|c| ComponentDraft {
                    identity: c.identity.clone(),
                    package_id: Some(c.package_id),
                    file_position: c.file_position,
                })
                .collect(),
            texts,
        }
    }

    /// The strategy as typed, each number within its type (the bounds are checked with the plan).
    pub fn strategy(&self) -> Result<Strategy, Refusal> {
        Ok(Strategy {
            min_battery_percent: number(
                "min_battery_percent",
                "minimum battery, %",
                &self.min_battery_percent,
                u8::MAX,
            )?,
            min_signal_dbm: number(
                "min_signal_dbm",
                "minimum signal, dBm",
                &self.min_signal_dbm,
                i16::MAX,
            )?,
            space_needed_bytes: number(
                "space_needed_bytes",
                "free space needed, bytes",
                &self.space_needed_bytes,
                u64::MAX,
            )?,
            download_retries: number(
                "download_retries",
                "download retries",
                &self.download_retries,
                u8::MAX,
            )?,
        })
    }

    /// The upgrade texts by language; rows left blank are not sent.
    pub fn texts(&self) -> Result<BTreeMap<String, String>, Refusal> {
        let mut texts = BTreeMap::new();
        for row in self.texts.iter().filter(|r| !r.text.trim().is_empty()) {
            let language = row.language.trim().to_string();
            if texts.insert(language.clone(), row.text.clone()).is_some() {
                return Err(Refusal::invalid(
                    "duplicate_language",
                    format!("the upgrade text in {language:?} is given twice; keep one"),
                ));
            }
        }
        Ok(texts)
    }

    /// The draft checked by the API's rules, in the center's order after what only the form
    /// can say (a product picked, the lists readable, numbers typed, a package per component):
    /// the plan to send, or the first refusal. `packages` are the product's version packages
    /// the form offers; a component's type is its package's.
    pub fn check(&self, packages: &[Package]) -> Result<PlanInput, Refusal> {
        if self.product_key.is_empty() {
            return Err(Refusal::invalid(
                "missing_field",
                "pick the product whose devices the plan upgrades",
            ));
        }
        check_key("product_key", &self.product_key)?;
        check_name("plan name", &self.name)?;
        let whitelist = parse_keys("whitelist", &self.whitelist)?;
        let blacklist = parse_keys("blacklist", &self.blacklist)?;
        let strategy = self.strategy()?;
        let mut components = Vec::with_capacity(self.components.len());
        for (i, c) in self.components.iter().enumerate() {
            let identity = c.identity.trim().to_string();
            let package = c
                .package_id
                .and_then(|id| packages.iter().find(|p| p.id == id))
                .ok_or_else(|| {
                    Refusal::invalid(
                        "missing_field",
                        format!(
                            "component {} {identity:?}: pick the version package it is upgraded with",
                            i + 1
                        ),
                    )
                })?;
            components.push(PlanComponent {
                identity,
                component_type: package.meta.component_type,
                package_id: package.id,
                file_position: c.file_position,
            });
        }
        let input = PlanInput {
            name: self.name.clone(),
            product_key: self.product_key.clone(),
            whitelist,
            blacklist,
            time_zone: self.time_zone.trim().to_string(),
            push_period: self.push_period.then(|| PushPeriod {
                start: self.push_start.clone(),
                end: self.push_end.clone(),
            }),
            upgrade_mode: self.upgrade_mode,
            strategy,
            components,
            texts: self.texts()?,
        };
        input.check()?;
        Ok(input)
    }
}

/// "Verify firmware", as picked: a package, one of its product's devices, a component.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerificationDraft {
    /// The package to try, if picked.
    pub package_id: Option<i64>,
    /// The package's product (the device must belong to it).
    pub product_key: String,
    /// The device to try it on.
    pub device_key: String,
    /// The device's component to upgrade.
    pub component_identity: String,
}

impl VerificationDraft {
    /// The package and the job to send, checked by the API's rules; the first refusal.
    pub fn check(&self) -> Result<(i64, sota_api::verification::NewVerification), Refusal> {
        let Some(package) = self.package_id else {
            return Err(Refusal::invalid(
                "missing_field",
                "pick the version package to verify",
            ));
        };
        if self.device_key.is_empty() {
            return Err(Refusal::invalid(
                "missing_field",
                "pick the device to verify the package on: search its key and choose it",
            ));
        }
        if self.component_identity.is_empty() {
            return Err(Refusal::invalid(
                "missing_field",
                "pick the device's component to upgrade",
            ));
        }
        let job = sota_api::verification::NewVerification {
            product_key: self.product_key.clone(),
            device_key: self.device_key.clone(),
            component_identity: self.component_identity.clone(),
        };
        job.check()?;
        Ok((package, job))
    }
}
