//! Version packages: 1 to 5 firmware files of one component type, full or
//! delta, with their digests; the upload form and its rules.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::rules::{check_name, check_token};
use crate::Refusal;

/// Most files in one package.
pub const MAX_FILES: usize = 5;
/// Largest file, in bytes (100 MiB).
pub const MAX_FILE_BYTES: u64 = 100 * 1024 * 1024;
/// Accepted file name endings (checked case-insensitively).
pub const EXTENSIONS: [&str; 12] = [
    ".bin", ".zip", ".rar", ".pack", ".mini_1", ".mini_2", ".py", ".tar", ".tar.gz", ".s19",
    ".bin_1", ".bin_2",
];

/// Which firmware a package upgrades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum ComponentType {
    /// Module firmware, written to the Quectel module.
    #[serde(rename = "FOTA")]
    Fota,
    /// MCU firmware, passed through the module to the external MCU.
    #[serde(rename = "SOTA")]
    Sota,
}

impl ComponentType {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentType::Fota => "FOTA",
            ComponentType::Sota => "SOTA",
        }
    }
    /// Parse the wire name.
    pub fn parse(s: &str) -> Result<Self, Refusal> {
        match s {
            "FOTA" => Ok(ComponentType::Fota),
            "SOTA" => Ok(ComponentType::Sota),
            _ => Err(Refusal::invalid(
                "invalid_component_type",
                format!("component_type {s:?} is not valid: use \"FOTA\" (module firmware) or \"SOTA\" (MCU firmware)"),
            )),
        }
    }
}

/// Full image or delta from one source version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PackageType {
    /// Installs on any version other than the target.
    Full,
    /// Installs only on the source version.
    Delta,
}

impl PackageType {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PackageType::Full => "full",
            PackageType::Delta => "delta",
        }
    }
    /// Parse the wire name.
    pub fn parse(s: &str) -> Result<Self, Refusal> {
        match s {
            "full" => Ok(PackageType::Full),
            "delta" => Ok(PackageType::Delta),
            _ => Err(Refusal::invalid(
                "invalid_package_type",
                format!("package_type {s:?} is not valid: use \"full\" or \"delta\""),
            )),
        }
    }
}

/// The descriptive part of a package, as uploaded in the form fields.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PackageMeta {
    /// Package name, 1–128 characters.
    pub name: String,
    /// `FOTA` or `SOTA`.
    pub component_type: ComponentType,
    /// `full` or `delta`.
    pub package_type: PackageType,
    /// Required for delta, absent for full.
    pub source_version: Option<String>,
    /// Version the device reports after the upgrade.
    pub target_version: String,
    /// Free text, up to 1000 characters.
    pub remarks: String,
}

impl PackageMeta {
    /// Check the package rules that do not involve files.
    pub fn check(&self) -> Result<(), Refusal> {
        check_name("package name", &self.name)?;
        check_token("target_version", &self.target_version)?;
        match (self.package_type, &self.source_version) {
            (PackageType::Delta, None) => {
                return Err(Refusal::invalid(
                    "source_version_required",
                    "a delta package needs source_version: the version it upgrades from",
                ))
            }
            (PackageType::Full, Some(_)) => {
                return Err(Refusal::invalid(
                    "source_version_forbidden",
                    "a full package has no source_version (it installs on any other version); remove it or use package_type \"delta\"",
                ))
            }
            (PackageType::Delta, Some(source)) => {
                check_token("source_version", source)?;
                if *source == self.target_version {
                    return Err(Refusal::invalid(
                        "source_equals_target",
                        "a delta package's source_version must differ from its target_version",
                    ));
                }
            }
            (PackageType::Full, None) => {}
        }
        if self.remarks.chars().count() > 1000 {
            return Err(Refusal::invalid(
                "remarks_too_long",
                "remarks are limited to 1000 characters",
            ));
        }
        Ok(())
    }
}

/// One stored file of a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PackageFile {
    /// 0-based position in the package.
    pub position: u32,
    /// Original file name.
    pub file_name: String,
    /// Size in bytes.
    pub size: u64,
    /// MD5, lowercase hex.
    pub md5: String,
    /// CRC32 (IEEE), lowercase hex.
    pub crc32: String,
    /// SHA-256, lowercase hex.
    pub sha256: String,
}

/// A version package as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Package {
    /// Package id.
    pub id: i64,
    /// The product the package belongs to: only that product's plans and
    /// devices can use it. `null` only for a package uploaded before packages
    /// belonged to products whose product could not be inferred; no plan or
    /// verification accepts such a package.
    pub product_key: Option<String>,
    /// Descriptive fields.
    #[serde(flatten)]
    pub meta: PackageMeta,
    /// The files, in upload order.
    pub files: Vec<PackageFile>,
    /// True for the demo data seeded on first start.
    pub demo: bool,
    /// Creation time (RFC 3339).
    pub created_at: String,
}

/// Check a file name: a plain name with an accepted ending.
pub fn check_file_name(name: &str) -> Result<(), Refusal> {
    if name.is_empty()
        || name.len() > 255
        || name.contains(['/', '\\'])
        || name.chars().any(char::is_control)
    {
        return Err(Refusal::invalid(
            "invalid_file_name",
            format!(
                "file name {name:?} is not valid: send a plain file name of 1 to 255 characters"
            ),
        ));
    }
    let lower = name.to_ascii_lowercase();
    if !EXTENSIONS
        .iter()
        .any(|ext| lower.len() > ext.len() && lower.ends_with(ext))
    {
        return Err(Refusal::invalid(
            "invalid_file_type",
            format!(
                "file {name:?} has an unaccepted type; its name must end in one of {}",
                EXTENSIONS.join(" ")
            ),
        ));
    }
    Ok(())
}

/// Check a file before it is sent: its name ([`check_file_name`]), not empty, at most
/// [`MAX_FILE_BYTES`]. The center checks the same while the file streams in (with its own,
/// configurable, limit), under the same codes.
pub fn check_file(name: &str, size: u64) -> Result<(), Refusal> {
    check_file_name(name)?;
    if size == 0 {
        return Err(Refusal::invalid(
            "empty_file",
            format!("file {name:?} is empty; send the firmware bytes"),
        ));
    }
    if size > MAX_FILE_BYTES {
        return Err(Refusal {
            status: 413,
            code: "file_too_large",
            message: format!(
                "file {name:?} is larger than the {MAX_FILE_BYTES} byte limit per file; split or shrink it"
            ),
        });
    }
    Ok(())
}

/// Check the files of an upload: 1 to [`MAX_FILES`], each by [`check_file`].
pub fn check_files<'a>(files: impl IntoIterator<Item = (&'a str, u64)>) -> Result<(), Refusal> {
    let mut count = 0;
    for (name, size) in files {
        count += 1;
        if count > MAX_FILES {
            return Err(Refusal::invalid(
                "too_many_files",
                format!("a package holds at most {MAX_FILES} files"),
            ));
        }
        check_file(name, size)?;
    }
    if count == 0 {
        return Err(Refusal::invalid(
            "no_files",
            "a package needs 1 to 5 files: add `file` parts to the form",
        ));
    }
    Ok(())
}

/// The multipart form of an upload (for the OpenAPI document).
#[derive(Debug, ToSchema)]
pub struct PackageUpload {
    /// Key of the product the package belongs to (required; the product must
    /// exist). Only that product's plans and devices can use the package.
    /// Send it before the files: an unknown product is then refused before
    /// any file is streamed.
    pub product_key: String,
    /// Package name.
    pub name: String,
    /// `FOTA` or `SOTA`.
    pub component_type: ComponentType,
    /// `full` or `delta`.
    pub package_type: PackageType,
    /// Required for delta, absent for full.
    pub source_version: Option<String>,
    /// Target version.
    pub target_version: String,
    /// Remarks.
    pub remarks: Option<String>,
    /// 1 to 5 files (repeat the `file` part), each ≤ 100 MiB with an accepted ending.
    #[schema(value_type = Vec<String>, format = Binary)]
    pub file: Vec<Vec<u8>>,
}

/// Which packages to list, and which page of them (newest first).
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PackageFilter {
    /// Only the packages of the product with this key (404 if there is none).
    pub product: Option<String>,
    /// Number of packages to skip.
    pub offset: Option<u32>,
    /// At most this many packages (1 to 1000); without it, every one from `offset` on.
    pub limit: Option<u32>,
    /// Only packages whose name contains this text (ignoring ASCII case).
    pub q: Option<String>,
}

/// Body of a link request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// Product of the device.
    pub product_key: String,
    /// The device the link is for.
    pub device_key: String,
}

/// A per-device download link.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Link {
    /// The URL (no authentication needed until it expires).
    pub url: String,
    /// Expiry (RFC 3339).
    pub expires_at: String,
}
