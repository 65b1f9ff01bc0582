//! The technician's readings against a plan's strategy limits: pass or fail per limit, and
//! the remark an override sends with the accept. The engine's `strategy::check` decides; this
//! only parses what was typed, words the verdicts in the page's language (from the refusals'
//! fields) and the override in English (the center logs it).

use crate::i18n::{t, Lang};
use sota_engine::{strategy, Component, Readings, Refusal};
use sota_protocol::PlanOffer;
use std::fmt::Display;

/// What the technician typed; an empty field is "not measured here" (the MCU vouches for it
/// when it confirms the plan, as AT SOTA's `AT+QIOTUPDATE=1` does).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Typed {
    /// Battery, percent.
    pub battery: String,
    /// Signal, dBm.
    pub signal: String,
    /// Free flash, KiB.
    pub free_kib: String,
}

impl Typed {
    /// True when nothing was typed.
    pub fn is_empty(&self) -> bool {
        [&self.battery, &self.signal, &self.free_kib]
            .iter()
            .all(|f| f.trim().is_empty())
    }
}

fn field<T: std::str::FromStr>(text: &str, what: &str, range: &str) -> Result<Option<T>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| format!("{what}: enter {range}, not {text:?}"))
}

/// The limits `offer` sets that the typed readings miss (empty: all met, or nothing typed);
/// a field left empty counts as meeting its limit.
pub fn unmet(offer: &PlanOffer, typed: &Typed) -> Result<Vec<Refusal>, String> {
    let battery: Option<u8> = field(&typed.battery, "battery", "a percentage from 0 to 100")?;
    if battery.is_some_and(|b| b > 100) {
        return Err("battery: enter a percentage from 0 to 100".into());
    }
    let signal: Option<i32> = field(&typed.signal, "signal", "dBm as a whole number, e.g. -85")?;
    let free_kib: Option<u64> = field(&typed.free_kib, "free flash", "KiB as a whole number")?;
    let plan = offer.to_plan();
    let readings = Readings {
        battery: battery.unwrap_or(plan.min_battery),
        signal_dbm: signal.unwrap_or(plan.min_signal_dbm),
        free_flash: free_kib.map_or(plan.space_needed, |k| k.saturating_mul(1024)),
    };
    // The source version of a delta is the MCU's to report, not the technician's to type:
    // the session checks it against what the MCU reported.
    let source_known = [Component {
        identity: plan.identity.clone(),
        version: plan.source_version.clone(),
    }];
    Ok(strategy::check(&plan, &readings, &source_known))
}

/// `template` with each `{name}` replaced by its value, in one pass: a value that happens to
/// contain a placeholder (a version string, say) is copied as it is.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let name = &after[..close];
            values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v, close))
        });
        match value {
            Some((v, close)) => {
                out.push_str(v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The text for `key` in `lang` with its `{have}` and `{need}`.
fn have_need(lang: Lang, key: &str, have: impl Display, need: impl Display) -> String {
    fill(
        t(lang, key),
        &[("have", &have.to_string()), ("need", &need.to_string())],
    )
}

/// A strategy refusal in `lang`, worded from its fields (for the technician). In English it
/// reads as the engine's own text, which stays the record for logs and the override note.
pub fn refusal_text(refusal: &Refusal, lang: Lang) -> String {
    match refusal {
        Refusal::BatteryLow { have, need } => have_need(lang, "v.battery_low", have, need),
        Refusal::SignalWeak { have, need } => have_need(lang, "v.signal_weak", have, need),
        Refusal::FlashShort { have, need } => have_need(lang, "v.flash_short", have, need),
        Refusal::SourceMismatch {
            have: Some(have),
            need,
        } => have_need(
            lang,
            "v.source_mismatch",
            format_args!("{have:?}"),
            format_args!("{need:?}"),
        ),
        Refusal::SourceMismatch { have: None, need } => fill(
            t(lang, "v.source_unknown"),
            &[("need", &format!("{need:?}"))],
        ),
        // Not a limit the readings check: the engine's words.
        other => other.to_string(),
    }
}

/// One line per typed reading: whether it meets `offer`'s limit, and in words, in `lang`.
pub fn verdicts(
    offer: &PlanOffer,
    typed: &Typed,
    lang: Lang,
) -> Result<Vec<(bool, String)>, String> {
    let unmet = unmet(offer, typed)?;
    let failed = |pick: fn(&Refusal) -> bool| {
        unmet
            .iter()
            .find(|r| pick(r))
            .map(|r| refusal_text(r, lang))
    };
    let mut lines = Vec::new();
    if !typed.battery.trim().is_empty() {
        lines.push(match failed(|r| matches!(r, Refusal::BatteryLow { .. })) {
            Some(why) => (false, why),
            None => (
                true,
                have_need(
                    lang,
                    "v.battery_ok",
                    typed.battery.trim(),
                    offer.min_battery,
                ),
            ),
        });
    }
    if !typed.signal.trim().is_empty() {
        lines.push(match failed(|r| matches!(r, Refusal::SignalWeak { .. })) {
            Some(why) => (false, why),
            None => (
                true,
                have_need(lang, "v.signal_ok", typed.signal.trim(), offer.min_signal),
            ),
        });
    }
    if !typed.free_kib.trim().is_empty() {
        lines.push(match failed(|r| matches!(r, Refusal::FlashShort { .. })) {
            Some(why) => (false, why),
            None => (
                true,
                have_need(lang, "v.flash_ok", typed.free_kib.trim(), offer.use_space),
            ),
        });
    }
    Ok(lines)
}

/// The remark an accept carries when the technician goes ahead despite `unmet`.
pub fn override_note(unmet: &[Refusal], reason: &str) -> String {
    let unmet: Vec<String> = unmet.iter().map(ToString::to_string).collect();
    format!(
        "strategy check overridden by the technician ({}): {}",
        unmet.join("; "),
        reason.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use sota_protocol::{Delivery, UpgradeMode};
    use wasm_bindgen_test::wasm_bindgen_test;

    fn offer() -> PlanOffer {
        let plan = sota_engine::Plan {
            identity: "STM32".into(),
            component_type: sota_engine::ComponentType::Mcu,
            source_version: String::new(),
            target_version: "2_0_0".into(),
            min_battery: 20,
            min_signal_dbm: -110,
            space_needed: 64 * 1024,
            package_size: 60 * 1024,
            download_retries: None,
        };
        PlanOffer::new(
            7,
            &plan,
            Delivery {
                mode: UpgradeMode::Manual,
                texts: Default::default(),
            },
        )
    }

    fn typed(b: &str, s: &str, f: &str) -> Typed {
        Typed {
            battery: b.into(),
            signal: s.into(),
            free_kib: f.into(),
        }
    }

    #[wasm_bindgen_test]
    fn each_limit_passes_or_fails_on_its_own_and_empty_fields_pass() {
        let o = offer();
        assert_eq!(unmet(&o, &typed("", "", "")), Ok(vec![]));
        assert_eq!(
            unmet(&o, &typed("20", "-110", "64")),
            Ok(vec![]),
            "limits are minimums"
        );
        assert_eq!(
            unmet(&o, &typed("19", "", "")),
            Ok(vec![Refusal::BatteryLow { have: 19, need: 20 }])
        );
        assert_eq!(
            unmet(&o, &typed("", "-111", "63")),
            Ok(vec![
                Refusal::SignalWeak {
                    have: -111,
                    need: -110
                },
                Refusal::FlashShort {
                    have: 63 * 1024,
                    need: 64 * 1024
                }
            ])
        );
    }

    #[wasm_bindgen_test]
    fn a_line_per_typed_reading() {
        let lines = verdicts(&offer(), &typed("85", "-120", ""), Lang::En).unwrap();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(
            lines[0],
            (true, "battery 85 % meets the minimum of 20 %".to_string())
        );
        assert!(!lines[1].0 && lines[1].1.contains("-120 dBm"), "{lines:?}");
    }

    #[wasm_bindgen_test]
    fn bad_input_is_named_and_the_note_says_what_was_overridden_and_why() {
        let o = offer();
        assert!(unmet(&o, &typed("101", "", ""))
            .unwrap_err()
            .contains("0 to 100"));
        assert!(unmet(&o, &typed("", "strong", ""))
            .unwrap_err()
            .contains("signal"));
        assert!(unmet(&o, &typed("", "", "-1"))
            .unwrap_err()
            .contains("free flash"));
        let low = unmet(&o, &typed("15", "", "")).unwrap();
        let note = override_note(&low, "  on mains power ");
        assert!(
            note.starts_with("strategy check overridden by the technician (battery 15 %"),
            "{note}"
        );
        assert!(note.ends_with("): on mains power"), "{note}");
    }
    #[wasm_bindgen_test]
    fn english_lines_are_unchanged_and_the_engines_words() {
        let o = offer();
        let en = |b, s, f| verdicts(&o, &typed(b, s, f), Lang::En).unwrap();
        assert_eq!(
            en("85", "-80", " 64 "),
            vec![
                (true, "battery 85 % meets the minimum of 20 %".to_string()),
                (
                    true,
                    "signal -80 dBm meets the minimum of -110 dBm".to_string()
                ),
                (
                    true,
                    "64 KiB of flash free meets the 65536 bytes needed".to_string()
                ),
            ]
        );
        let failed = en("15", "-120", "63");
        assert_eq!(
            failed,
            vec![
                (
                    false,
                    "battery 15 % is below the plan's minimum of 20 % — charge the device"
                        .to_string()
                ),
                (
                    false,
                    "signal -120 dBm is weaker than the plan's minimum of -110 dBm — move to \
                     better coverage"
                        .to_string()
                ),
                (
                    false,
                    "64512 bytes of flash free, the upgrade needs 65536 — free some space"
                        .to_string()
                ),
            ]
        );
        // Word for word the engine's `Display`, which the override note and the logs keep.
        let missed = unmet(&o, &typed("15", "-120", "63")).unwrap();
        let engine: Vec<String> = missed.iter().map(ToString::to_string).collect();
        let lines: Vec<String> = failed.into_iter().map(|(_, l)| l).collect();
        assert_eq!(lines, engine);
        for r in [
            Refusal::SourceMismatch {
                have: Some("0_9_0".into()),
                need: "1_0_0".into(),
            },
            Refusal::SourceMismatch {
                have: None,
                need: "1_0_0".into(),
            },
            Refusal::Declined {
                by: "the MCU".into(),
            },
        ] {
            assert_eq!(refusal_text(&r, Lang::En), r.to_string());
        }
        assert_eq!(
            refusal_text(
                &Refusal::SourceMismatch {
                    have: Some("0_9_0".into()),
                    need: "1_0_0".into(),
                },
                Lang::En
            ),
            "delta package for version \"1_0_0\" but the device reports \"0_9_0\""
        );
    }

    #[wasm_bindgen_test]
    fn chinese_lines_for_each_limit_and_the_note_stays_english() {
        let o = offer();
        let zh = |b, s, f| verdicts(&o, &typed(b, s, f), Lang::Zh).unwrap();
        assert_eq!(
            zh("15", "-120", "63"),
            vec![
                (
                    false,
                    "电量 15 % 低于计划要求的 20 % — 请先充电".to_string()
                ),
                (
                    false,
                    "信号 -120 dBm 弱于计划要求的 -110 dBm — 请移到信号更好的位置".to_string()
                ),
                (
                    false,
                    "可用闪存 64512 字节，升级需要 65536 字节 — 请先清理空间".to_string()
                ),
            ]
        );
        assert_eq!(
            zh("85", "-80", "64"),
            vec![
                (true, "电量 85 % 满足计划要求的最低 20 %".to_string()),
                (true, "信号 -80 dBm 满足计划要求的最低 -110 dBm".to_string()),
                (
                    true,
                    "可用闪存 64 KiB，满足升级所需的 65536 字节".to_string()
                ),
            ]
        );
        assert_eq!(
            refusal_text(
                &Refusal::SourceMismatch {
                    have: Some("0_9_0".into()),
                    need: "1_0_0".into(),
                },
                Lang::Zh
            ),
            "差分包要求源版本 \"1_0_0\"，但设备上报的版本是 \"0_9_0\""
        );
        assert_eq!(
            refusal_text(
                &Refusal::SourceMismatch {
                    have: None,
                    need: "1_0_0".into(),
                },
                Lang::Zh
            ),
            "差分包要求源版本 \"1_0_0\"，但设备未上报版本"
        );
        // The center's log reads English whatever the page's language.
        let low = unmet(&o, &typed("15", "", "")).unwrap();
        assert_eq!(
            override_note(&low, "mains"),
            "strategy check overridden by the technician (battery 15 % is below the plan's \
             minimum of 20 % — charge the device): mains"
        );
    }

    #[wasm_bindgen_test]
    fn a_value_is_never_read_as_a_placeholder() {
        assert_eq!(
            fill(
                "{need} vs {have} {other} {",
                &[("have", "{need}"), ("need", "1")]
            ),
            "1 vs {need} {other} {"
        );
    }
}
