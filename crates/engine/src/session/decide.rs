//! From a plan list to an accepted plan with usable firmware info: strategy check, override,
//! firmware-info validation.

use super::phase::{Download, Hasher, Phase, Steps};
use super::{fetch, unreachable_state, Command, Failure, Outcome, Rejected, Session, UiEvent};
use crate::digest::{Digester, ExpectedDigests};
use crate::plan::{DownloadMode, FirmwareInfo, Plan, MAX_PLANS};
use crate::status::Status;
use crate::strategy::{self, Readings};
use crate::time::Timestamp;

impl Session {
    pub(super) fn on_plans(&mut self, plans: Vec<Plan>, now: Timestamp) -> Result<(), Rejected> {
        if !self.is_finished() {
            return Err(Rejected::Busy);
        }
        if plans.is_empty() {
            return Err(Rejected::NoPlans);
        }
        if plans.len() > MAX_PLANS {
            return Err(Rejected::TooManyPlans {
                count: plans.len(),
                max: MAX_PLANS,
            });
        }
        for (i, p) in plans.iter().enumerate() {
            if plans[..i].iter().any(|q| q.identity == p.identity) {
                return Err(Rejected::DuplicateComponent(p.identity.clone()));
            }
        }
        for p in &plans {
            let kind = if p.is_full() {
                "full".to_string()
            } else {
                format!("delta from {}", p.source_version)
            };
            self.report(
                Status::Plan,
                &p.identity,
                format!(
                    "plan to {} ({kind}, {} bytes)",
                    p.target_version, p.package_size
                ),
            );
        }
        self.queue = plans.into();
        self.next_plan(now);
        Ok(())
    }

    pub(super) fn on_readings(
        &mut self,
        readings: Readings,
        override_reason: Option<String>,
        now: Timestamp,
    ) -> Result<(), Rejected> {
        let Some(cur) = self.current.as_ref() else {
            unreachable_state()
        };
        let reasons = strategy::check(&cur.plan, &readings, &self.components);
        let component = cur.plan.identity.clone();
        if reasons.is_empty() {
            self.report(Status::Accepted, &component, "strategy check passed".into());
        } else if let Some(reason) = override_reason {
            let reason = reason.trim().to_string();
            if reason.is_empty() {
                return Err(Rejected::OverrideWithoutReason);
            }
            let unmet = reasons
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            self.report(
                Status::Accepted,
                &component,
                format!("accepted by technician override ({reason}) despite: {unmet}"),
            );
            self.events.push_back(UiEvent::OverrideLogged {
                component,
                reasons,
                reason,
            });
        } else {
            self.events.push_back(UiEvent::Refused {
                component,
                reasons: reasons.clone(),
            });
            self.finish(Outcome::Failed(Failure::Refused(reasons)), now);
            return Ok(());
        }
        let deadline = now.plus_millis(self.config.timeouts.firmware_info_ms);
        self.enter(Phase::AwaitingInfo { deadline });
        Ok(())
    }

    pub(super) fn on_info(&mut self, info: FirmwareInfo, now: Timestamp) -> Result<(), Rejected> {
        let Some(cur) = self.current.as_ref() else {
            unreachable_state()
        };
        if info.identity != cur.plan.identity {
            return Err(Rejected::WrongComponent {
                expected: cur.plan.identity.clone(),
                got: info.identity,
            });
        }
        let info = match validate(&cur.plan, info) {
            Ok(info) => info,
            Err(problem) => {
                self.finish(Outcome::Failed(Failure::BadFirmwareInfo { problem }), now);
                return Ok(());
            }
        };
        let t = self.config.timeouts;
        let component = info.identity.clone();
        match info.mode {
            DownloadMode::ConsoleDownloads => {
                self.report(
                    Status::DownloadStart,
                    &component,
                    format!("downloading {} bytes", info.size),
                );
                self.commands.push_back(fetch(&info, 0));
                let deadline = now.plus_millis(t.download_stall_ms);
                let d = Download {
                    info,
                    received: 0,
                    failures: 0,
                    progress: Steps::default(),
                    deadline,
                    hasher: Hasher::Live(Digester::new()),
                };
                self.enter(Phase::Downloading(Box::new(d)));
            }
            DownloadMode::McuDownloads => {
                self.report(
                    Status::DownloadStart,
                    &component,
                    "the MCU downloads the firmware itself".into(),
                );
                self.commands.push_back(Command::HandToMcu(info));
                self.enter(Phase::Updating {
                    deadline: now.plus_millis(t.updating_ms),
                    stored: false,
                });
            }
        }
        Ok(())
    }
}

/// Checks firmware info against its plan and normalizes the digests to lowercase hex.
fn validate(plan: &Plan, mut info: FirmwareInfo) -> Result<FirmwareInfo, String> {
    if info.version != plan.target_version {
        return Err(format!(
            "firmware version {:?} is not the plan's target {:?}",
            info.version, plan.target_version
        ));
    }
    if info.mode == DownloadMode::ConsoleDownloads {
        if info.size == 0 {
            return Err("firmware size is 0".into());
        }
        if info.url.trim().is_empty() {
            return Err("no download URL".into());
        }
    }
    let e =
        ExpectedDigests::parse(&info.md5, &info.crc32, &info.sha256).map_err(|e| e.to_string())?;
    let (Some(md5), Some(crc32), Some(sha256)) = (e.md5, e.crc32, e.sha256) else {
        return Err("MD5, CRC32 and SHA-256 are all required".into());
    };
    (info.md5, info.crc32, info.sha256) = (md5, crc32, sha256);
    Ok(info)
}
