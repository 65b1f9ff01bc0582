//! The upgrade strategy check: does the device meet a plan's requirements right now?

use crate::plan::{Component, Plan};
use serde::{Deserialize, Serialize};

/// What the device measures now — from the MCU, or typed in by the technician.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readings {
    /// Battery level, percent.
    pub battery: u8,
    /// Signal strength, dBm.
    pub signal_dbm: i32,
    /// Free flash, bytes.
    pub free_flash: u64,
}

/// One reason a plan was refused. A refusal carries all reasons that apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// Battery below the plan's minimum.
    #[error("battery {have} % is below the plan's minimum of {need} % — charge the device")]
    BatteryLow {
        /// Measured, percent.
        have: u8,
        /// Required, percent.
        need: u8,
    },
    /// Signal weaker than the plan's minimum.
    #[error("signal {have} dBm is weaker than the plan's minimum of {need} dBm — move to better coverage")]
    SignalWeak {
        /// Measured, dBm.
        have: i32,
        /// Required, dBm.
        need: i32,
    },
    /// Not enough free flash.
    #[error("{have} bytes of flash free, the upgrade needs {need} — free some space")]
    FlashShort {
        /// Free, bytes.
        have: u64,
        /// Needed, bytes.
        need: u64,
    },
    /// A delta package whose source version is not what the device runs.
    #[error("delta package for version {need:?} but the device reports {}", have.as_deref().map_or("no version".to_string(), |v| format!("{v:?}")))]
    SourceMismatch {
        /// The device's current version of the component, if it reported one.
        have: Option<String>,
        /// The plan's source version.
        need: String,
    },
    /// The device side said no to the offered plan (an MCU's `AT+QIOTUPDATE=0`, or the
    /// technician's choice), for its own reasons.
    #[error("declined by {by}")]
    Declined {
        /// Who declined, e.g. "the MCU" or "the technician".
        by: String,
    },
    /// No readings arrived before the decision deadline.
    #[error("no battery/signal/flash readings within {waited_ms} ms — the plan was refused")]
    NoReadings {
        /// How long the session waited, milliseconds.
        waited_ms: u64,
    },
}

/// Checks a plan against the readings and the device's reported components.
///
/// Returns every reason that applies, so the technician sees all of them at once; an empty
/// list means the plan may be accepted.
pub fn check(plan: &Plan, readings: &Readings, components: &[Component]) -> Vec<Refusal> {
    let mut reasons = Vec::new();
    if readings.battery < plan.min_battery {
        reasons.push(Refusal::BatteryLow {
            have: readings.battery,
            need: plan.min_battery,
        });
    }
    if readings.signal_dbm < plan.min_signal_dbm {
        reasons.push(Refusal::SignalWeak {
            have: readings.signal_dbm,
            need: plan.min_signal_dbm,
        });
    }
    if readings.free_flash < plan.space_needed {
        reasons.push(Refusal::FlashShort {
            have: readings.free_flash,
            need: plan.space_needed,
        });
    }
    if !plan.is_full() {
        let have = components
            .iter()
            .find(|c| c.identity == plan.identity)
            .map(|c| c.version.clone());
        if have.as_deref() != Some(plan.source_version.as_str()) {
            reasons.push(Refusal::SourceMismatch {
                have,
                need: plan.source_version.clone(),
            });
        }
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ComponentType;

    fn plan(source: &str) -> Plan {
        Plan {
            identity: "STM32".into(),
            component_type: ComponentType::Mcu,
            source_version: source.into(),
            target_version: "2_0_0".into(),
            min_battery: 30,
            min_signal_dbm: -113,
            space_needed: 27_954,
            package_size: 27_954,
            download_retries: None,
        }
    }

    fn good() -> Readings {
        Readings {
            battery: 30,
            signal_dbm: -113,
            free_flash: 27_954,
        }
    }

    fn stm(v: &str) -> Vec<Component> {
        vec![Component {
            identity: "STM32".into(),
            version: v.into(),
        }]
    }

    #[test]
    fn readings_exactly_at_the_limits_pass() {
        assert_eq!(check(&plan(""), &good(), &[]), vec![]);
    }

    #[test]
    fn battery_low() {
        let r = Readings {
            battery: 29,
            ..good()
        };
        assert_eq!(
            check(&plan(""), &r, &[]),
            vec![Refusal::BatteryLow { have: 29, need: 30 }]
        );
    }

    #[test]
    fn signal_weak() {
        let r = Readings {
            signal_dbm: -114,
            ..good()
        };
        assert_eq!(
            check(&plan(""), &r, &[]),
            vec![Refusal::SignalWeak {
                have: -114,
                need: -113
            }]
        );
    }

    #[test]
    fn flash_short() {
        let r = Readings {
            free_flash: 27_953,
            ..good()
        };
        assert_eq!(
            check(&plan(""), &r, &[]),
            vec![Refusal::FlashShort {
                have: 27_953,
                need: 27_954
            }]
        );
    }

    #[test]
    fn delta_needs_the_source_version() {
        assert_eq!(check(&plan("1_0_0"), &good(), &stm("1_0_0")), vec![]);
        assert_eq!(
            check(&plan("1_0_0"), &good(), &stm("0_9_0")),
            vec![Refusal::SourceMismatch {
                have: Some("0_9_0".into()),
                need: "1_0_0".into()
            }]
        );
        let r = check(&plan("1_0_0"), &good(), &[]);
        assert_eq!(
            r,
            vec![Refusal::SourceMismatch {
                have: None,
                need: "1_0_0".into()
            }]
        );
        assert!(r[0].to_string().contains("no version"), "{}", r[0]);
    }

    #[test]
    fn all_reasons_at_once() {
        let r = Readings {
            battery: 5,
            signal_dbm: -120,
            free_flash: 0,
        };
        let reasons = check(&plan("1_0_0"), &r, &stm("0_1_0"));
        assert_eq!(reasons.len(), 4, "{reasons:?}");
    }
}
