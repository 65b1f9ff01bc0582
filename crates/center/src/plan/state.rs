//! The plan life cycle: draft → active → (paused ↔ active) → finished.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;

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

    /// Parse the stored name.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        Ok(match s {
            "draft" => PlanState::Draft,
            "active" => PlanState::Active,
            "paused" => PlanState::Paused,
            "finished" => PlanState::Finished,
            _ => {
                return Err(ApiError::internal(format!(
                    "unknown plan state {s:?} in the database"
                )))
            }
        })
    }

    /// Only a draft may be edited or deleted: activation freezes the plan.
    pub fn is_frozen(self) -> bool {
        self != PlanState::Draft
    }

    /// The state after `t`, or a 409 saying why not.
    pub fn apply(self, t: Transition) -> Result<PlanState, ApiError> {
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
                Err(ApiError::conflict(
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
    fn verb(self) -> &'static str {
        match self {
            Transition::Activate => "activate",
            Transition::Pause => "pause",
            Transition::Resume => "resume",
            Transition::Finish => "finish",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                    (Err(e), None) => assert_eq!(e.code, "invalid_transition"),
                    (got, want) => panic!("{s:?} {t:?}: got {got:?}, want {want:?}"),
                }
            }
        }
        assert!(
            !Draft.is_frozen() && Active.is_frozen() && Paused.is_frozen() && Finished.is_frozen()
        );
    }
}
