//! The one place the wire messages meet the engine's types.
//!
//! The center builds an engine [`Plan`] and [`FirmwareInfo`] and converts them
//! here into the messages; a device converts the messages back into what its
//! session takes, and its session's [`Report`]s into status messages.

use std::collections::BTreeMap;

use sota_engine::{ComponentType, DownloadMode as EngineDownloadMode, FirmwareInfo, Plan, Report};

use crate::message::{
    CompType, DownloadMode, Firmware, PackageType, PlanOffer, StatusReport, UpgradeMode,
};

impl From<ComponentType> for CompType {
    fn from(t: ComponentType) -> Self {
        match t {
            ComponentType::Module => CompType::Module,
            ComponentType::Mcu => CompType::Mcu,
        }
    }
}

impl From<CompType> for ComponentType {
    fn from(t: CompType) -> Self {
        match t {
            CompType::Module => ComponentType::Module,
            CompType::Mcu => ComponentType::Mcu,
        }
    }
}

impl From<EngineDownloadMode> for DownloadMode {
    fn from(m: EngineDownloadMode) -> Self {
        match m {
            EngineDownloadMode::ConsoleDownloads => DownloadMode::Module,
            EngineDownloadMode::McuDownloads => DownloadMode::Mcu,
        }
    }
}

impl From<DownloadMode> for EngineDownloadMode {
    fn from(m: DownloadMode) -> Self {
        match m {
            DownloadMode::Module => EngineDownloadMode::ConsoleDownloads,
            DownloadMode::Mcu => EngineDownloadMode::McuDownloads,
        }
    }
}

/// What a plan offer carries beyond the engine's [`Plan`]: how the plan is delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Silent or manual.
    pub mode: UpgradeMode,
    /// Manual mode's texts by language.
    pub texts: BTreeMap<String, String>,
}

impl PlanOffer {
    /// The offer of plan `plan_id` for one component. A full package (empty
    /// source version) is offered with an empty `srcVer`, as QuecThing does.
    pub fn new(plan_id: i64, plan: &Plan, delivery: Delivery) -> Self {
        PlanOffer {
            plan_id,
            comp_no: plan.identity.clone(),
            comp_type: plan.component_type.into(),
            package_type: if plan.is_full() {
                PackageType::Full
            } else {
                PackageType::Delta
            },
            src_ver: plan.source_version.clone(),
            tgt_ver: plan.target_version.clone(),
            min_battery: plan.min_battery,
            min_signal: plan.min_signal_dbm,
            use_space: plan.space_needed,
            size: plan.package_size,
            // The engine's default when the plan leaves it open (a local plan).
            download_retries: plan
                .download_retries
                .unwrap_or(sota_engine::Config::default().download_retries),
            mode: delivery.mode,
            texts: delivery.texts,
        }
    }

    /// The engine's plan for this offer.
    pub fn to_plan(&self) -> Plan {
        Plan {
            identity: self.comp_no.clone(),
            component_type: self.comp_type.into(),
            source_version: match self.package_type {
                PackageType::Full => String::new(),
                PackageType::Delta => self.src_ver.clone(),
            },
            target_version: self.tgt_ver.clone(),
            min_battery: self.min_battery,
            min_signal_dbm: self.min_signal,
            space_needed: self.use_space,
            package_size: self.size,
            download_retries: Some(self.download_retries),
        }
    }

    /// How the plan is delivered.
    pub fn delivery(&self) -> Delivery {
        Delivery {
            mode: self.mode,
            texts: self.texts.clone(),
        }
    }
}

impl Firmware {
    /// The firmware message of plan `plan_id` for the engine's firmware info.
    pub fn new(plan_id: i64, info: &FirmwareInfo) -> Self {
        Firmware {
            plan_id,
            comp_no: info.identity.clone(),
            version: info.version.clone(),
            md5: info.md5.clone(),
            crc: info.crc32.clone(),
            sha256: info.sha256.clone(),
            url: info.url.clone(),
            size: info.size,
            download_mode: info.mode.into(),
        }
    }

    /// The engine's firmware info for this message.
    pub fn to_info(&self) -> FirmwareInfo {
        FirmwareInfo {
            identity: self.comp_no.clone(),
            version: self.version.clone(),
            md5: self.md5.clone(),
            crc32: self.crc.clone(),
            sha256: self.sha256.clone(),
            url: self.url.clone(),
            size: self.size,
            mode: self.download_mode.into(),
        }
    }
}

impl StatusReport {
    /// The status message of plan `plan_id` for an engine report (its percent with a
    /// downloading report, its version with an update-ok one).
    pub fn new(plan_id: i64, report: &Report) -> Self {
        StatusReport {
            plan_id,
            comp_no: report.component.clone(),
            status: report.status,
            percent: report.percent,
            version: report.version.clone(),
            message: report.message.clone(),
        }
    }

    /// The engine's report for this message.
    pub fn to_report(&self) -> Report {
        Report {
            status: self.status,
            component: self.comp_no.clone(),
            message: self.message.clone(),
            percent: self.percent,
            version: self.version.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sota_engine::Status;

    fn plan(source: &str) -> Plan {
        Plan {
            identity: "STM32".into(),
            component_type: ComponentType::Mcu,
            source_version: source.into(),
            target_version: "2_0_0".into(),
            min_battery: 30,
            min_signal_dbm: -113,
            space_needed: 27954,
            package_size: 65536,
            download_retries: Some(3),
        }
    }

    fn delivery() -> Delivery {
        Delivery {
            mode: UpgradeMode::Silent,
            texts: BTreeMap::new(),
        }
    }

    #[test]
    fn plans_round_trip_and_full_has_no_source() {
        for source in ["", "1_0_0"] {
            let offer = PlanOffer::new(7, &plan(source), delivery());
            assert_eq!(offer.to_plan(), plan(source));
            assert_eq!(offer.delivery(), delivery());
            assert_eq!(offer.package_type == PackageType::Full, source.is_empty());
        }
    }

    #[test]
    fn firmware_and_reports_round_trip() {
        let info = FirmwareInfo {
            identity: "STM32".into(),
            version: "2_0_0".into(),
            md5: "0".repeat(32),
            crc32: "0badf00d".into(),
            sha256: "1".repeat(64),
            url: "http://127.0.0.1/x".into(),
            size: 9,
            mode: EngineDownloadMode::McuDownloads,
        };
        assert_eq!(Firmware::new(3, &info).to_info(), info);
        let report = Report {
            status: Status::Downloading,
            component: "STM32".into(),
            message: "40 %".into(),
            percent: Some(40),
            version: None,
        };
        let s = StatusReport::new(3, &report);
        assert_eq!(s.to_report(), report);
        assert_eq!(s.percent, Some(40));
    }
}
