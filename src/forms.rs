//! The engineer's forms as data: what the fields hold, the rules they are checked by before
//! anything is sent (`sota-api`'s, the same the center applies), and what is sent.

use sota_api::package::{check_files, ComponentType, PackageMeta, PackageType};
use sota_api::rules::check_key;
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
