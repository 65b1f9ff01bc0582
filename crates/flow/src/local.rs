//! A local firmware file as the center would describe it: the plan and firmware info that
//! `sota serve-at` and the console's "local file" mode hand to the session, with the
//! technician's expected digests (from the center or a release note) instead of the file's
//! own where they were given.

use sota_engine::{
    ComponentType, Digests, DownloadMode, ExpectedDigests, FirmwareInfo, Plan, Verdict,
};

/// A local image, its own digests and what the technician expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalFirmware {
    /// Component identity the plan is for (e.g. `STM32`).
    pub identity: String,
    /// Version the MCU must report afterwards.
    pub target_version: String,
    /// Version a delta applies to; empty for a full image.
    pub source_version: String,
    /// Where the adapter reads the image from (a path, a file name).
    pub url: String,
    /// The file's own digests, from one streaming pass.
    pub own: Digests,
    /// What the technician typed; empty fields are not checked.
    pub expected: ExpectedDigests,
}

impl LocalFirmware {
    /// The digests that do not match what was expected, as `(name, expected, got)`.
    pub fn mismatches(&self) -> Vec<(&'static str, String, String)> {
        let (md5, crc, sha) = self.expected.check(&self.own);
        let pairs = [
            ("MD5", md5, &self.expected.md5, &self.own.md5),
            ("CRC32", crc, &self.expected.crc32, &self.own.crc32),
            ("SHA-256", sha, &self.expected.sha256, &self.own.sha256),
        ];
        pairs
            .into_iter()
            .filter(|(_, v, _, _)| *v == Verdict::Mismatch)
            .map(|(name, _, exp, got)| (name, exp.clone().unwrap_or_default(), got.clone()))
            .collect()
    }

    /// The gate before any byte goes to the MCU: every given digest must match. The error
    /// names each mismatch for the technician.
    pub fn check(&self) -> Result<(), String> {
        let bad = self.mismatches();
        if bad.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = bad
            .iter()
            .map(|(name, exp, got)| format!("{name} is {got}, expected {exp}"))
            .collect();
        Err(format!(
            "the file does not match the expected digests ({}); nothing was sent to the MCU",
            list.join("; ")
        ))
    }

    /// The plan the session runs: no battery or signal minimum (a bench board on USB power),
    /// space = the image size.
    pub fn plan(&self) -> Plan {
        Plan {
            identity: self.identity.clone(),
            component_type: ComponentType::Mcu,
            source_version: self.source_version.clone(),
            target_version: self.target_version.clone(),
            min_battery: 0,
            min_signal_dbm: -113,
            space_needed: self.own.size,
            package_size: self.own.size,
            download_retries: None,
        }
    }

    /// The firmware info: the expected digests where given, else the file's own. The session
    /// checks the image against these while it reads it, so a file that differs from what the
    /// technician expected never reaches the MCU.
    pub fn info(&self) -> FirmwareInfo {
        let pick = |given: &Option<String>, own: &str| given.clone().unwrap_or_else(|| own.into());
        FirmwareInfo {
            identity: self.identity.clone(),
            version: self.target_version.clone(),
            md5: pick(&self.expected.md5, &self.own.md5),
            crc32: pick(&self.expected.crc32, &self.own.crc32),
            sha256: pick(&self.expected.sha256, &self.own.sha256),
            url: self.url.clone(),
            size: self.own.size,
            mode: DownloadMode::ConsoleDownloads,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sota_engine::Digester;

    fn local(expected: ExpectedDigests) -> LocalFirmware {
        LocalFirmware {
            identity: "STM32".into(),
            target_version: "2_0_0".into(),
            source_version: String::new(),
            url: "fw.bin".into(),
            own: Digester::digest(b"firmware"),
            expected,
        }
    }

    #[test]
    fn given_digests_replace_the_files_own_and_mismatches_are_named() {
        let own = Digester::digest(b"firmware");
        let expected = ExpectedDigests::parse("", "00000000", &own.sha256).unwrap();
        let l = local(expected);
        let info = l.info();
        assert_eq!(
            (info.md5.as_str(), info.crc32.as_str()),
            (own.md5.as_str(), "00000000")
        );
        let m = l.mismatches();
        assert_eq!(m, vec![("CRC32", "00000000".into(), own.crc32.clone())]);
        assert!(l.plan().is_full());
        assert_eq!(l.plan().package_size, 8);
    }

    #[test]
    fn a_local_plan_asks_for_no_battery_and_the_weakest_signal_the_module_reports() {
        let plan = local(ExpectedDigests::default()).plan();
        // 0 % and -113 dBm (the AT+CSQ floor): every bench board meets them.
        assert_eq!((plan.min_battery, plan.min_signal_dbm), (0, -113));
        assert_eq!(plan.space_needed, 8);
    }
}
