//! The technician's readings against a plan's strategy limits: pass or fail per limit, and
//! the remark an override sends with the accept. The engine's `strategy::check` decides; this
//! only parses what was typed and words the override.

use sota_engine::{strategy, Component, Readings, Refusal};
use sota_protocol::PlanOffer;

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

/// One line per typed reading: whether it meets `offer`'s limit, and in words.
pub fn verdicts(offer: &PlanOffer, typed: &Typed) -> Result<Vec<(bool, String)>, String> {
    let unmet = unmet(offer, typed)?;
    let failed =
        |pick: fn(&Refusal) -> bool| unmet.iter().find(|r| pick(r)).map(ToString::to_string);
    let mut lines = Vec::new();
    if !typed.battery.trim().is_empty() {
        lines.push(match failed(|r| matches!(r, Refusal::BatteryLow { .. })) {
            Some(why) => (false, why),
            None => (
                true,
                format!(
                    "battery {} % meets the minimum of {} %",
                    typed.battery.trim(),
                    offer.min_battery
                ),
            ),
        });
    }
    if !typed.signal.trim().is_empty() {
        lines.push(match failed(|r| matches!(r, Refusal::SignalWeak { .. })) {
            Some(why) => (false, why),
            None => (
                true,
                format!(
                    "signal {} dBm meets the minimum of {} dBm",
                    typed.signal.trim(),
                    offer.min_signal
                ),
            ),
        });
    }
    if !typed.free_kib.trim().is_empty() {
        lines.push(match failed(|r| matches!(r, Refusal::FlashShort { .. })) {
            Some(why) => (false, why),
            None => (
                true,
                format!(
                    "{} KiB of flash free meets the {} bytes needed",
                    typed.free_kib.trim(),
                    offer.use_space
                ),
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
        let lines = verdicts(&offer(), &typed("85", "-120", "")).unwrap();
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
}
