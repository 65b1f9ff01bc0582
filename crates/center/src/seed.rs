//! Demo data seeded into an empty database on first start, so a newcomer sees
//! a product, devices, a package and an active plan at once: the product
//! first, then its devices, its package and its plan. Every seeded record has
//! `demo: true` and "(demo data)" in its name.

use std::collections::BTreeMap;

use sqlx::AnyPool;

use crate::device::{self, DeviceReport};
use crate::error::ApiError;
use crate::package::{self, ComponentType, FileWriter, PackageMeta, PackageType};
use crate::plan::{self, PlanComponent, PlanInput, Strategy, Transition, UpgradeMode};
use crate::product::{self, NewProduct};
use crate::store::FirmwareStore;

/// Key of the demo product.
pub const DEMO_PRODUCT: &str = "demo-product";
/// The demo device the start-up message prints a download link for.
pub const DEMO_DEVICE: &str = "demo-device-1";

/// What was seeded.
#[derive(Debug, Clone)]
pub struct Seeded {
    /// Demo package id.
    pub package_id: i64,
    /// Demo plan id.
    pub plan_id: i64,
}

/// Seed once: only into a database that never held a product and was never seeded.
pub async fn seed_if_first_start(
    pool: &AnyPool,
    store: &FirmwareStore,
    instance: &crate::instance::Instance,
) -> Result<Option<Seeded>, ApiError> {
    let seeded: Option<(String,)> =
        sqlx::query_as("SELECT value FROM settings WHERE name = 'demo_seeded'")
            .fetch_optional(pool)
            .await?;
    let products: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM products")
        .fetch_one(pool)
        .await?;
    if seeded.is_some() || products.0 > 0 {
        return Ok(None);
    }
    let new = NewProduct {
        product_key: DEMO_PRODUCT.into(),
        name: "Smart aroma diffuser (demo data)".into(),
    };
    let (pid, _) = match product::create(pool, &new, true).await {
        Ok(_) => product::get(pool, DEMO_PRODUCT).await?,
        Err(e) => return Err(e),
    };
    for (key, version) in [
        (DEMO_DEVICE, "1_0_0"),
        ("demo-device-2", "1_0_0"),
        ("demo-device-3", "1_0_1"),
    ] {
        let report = DeviceReport {
            components: BTreeMap::from([("STM32".to_string(), version.to_string())]),
        };
        device::register(pool, pid, key, &report).await?;
    }
    // A recognisable, deterministic 64 KiB image.
    let image: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut w = FileWriter::start(
        pool,
        store,
        instance,
        "demo-mcu-1_0_1.bin",
        package::MAX_FILE_BYTES,
    )
    .await?;
    w.write(&image).await?;
    let file = w.finish(0).await?;
    let meta = PackageMeta {
        name: "Demo MCU firmware 1_0_1 (demo data)".into(),
        component_type: ComponentType::Sota,
        package_type: PackageType::Full,
        source_version: None,
        target_version: "1_0_1".into(),
        remarks: "Demo data seeded on first start; safe to ignore.".into(),
    };
    // The package belongs to the demo product (created above), as its plan must.
    let pkg = package::commit(pool, DEMO_PRODUCT, &meta, vec![file], true).await?;
    let input = PlanInput {
        name: "Demo plan: STM32 to 1_0_1 (demo data)".into(),
        product_key: DEMO_PRODUCT.into(),
        whitelist: vec![],
        blacklist: vec!["demo-device-2".into()],
        time_zone: "Asia/Shanghai".into(),
        push_period: None,
        upgrade_mode: UpgradeMode::Silent,
        strategy: Strategy::default(),
        components: vec![PlanComponent {
            identity: "STM32".into(),
            component_type: ComponentType::Sota,
            package_id: pkg.id,
            file_position: 0,
        }],
        texts: BTreeMap::from([
            ("zh".to_string(), "演示固件升级（演示数据）".to_string()),
            (
                "en".to_string(),
                "Demo firmware upgrade (demo data)".to_string(),
            ),
        ]),
    };
    let plan = plan::create(pool, &input, true).await?;
    plan::transition(pool, plan.id, Transition::Activate).await?;
    sqlx::query("INSERT INTO settings (name, value) VALUES ('demo_seeded', $1)")
        .bind(crate::now_text())
        .execute(pool)
        .await?;
    Ok(Some(Seeded {
        package_id: pkg.id,
        plan_id: plan.id,
    }))
}

/// The demo package, if the demo data is present (to print its link at every start).
pub async fn demo_package(pool: &AnyPool) -> Result<Option<i64>, ApiError> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT pf.package_id FROM package_files pf JOIN packages p ON p.id = pf.package_id
         JOIN products pr ON pr.id = p.product_id
         WHERE p.demo = 1 AND pf.position = 0 AND pr.product_key = $1 AND EXISTS (
            SELECT 1 FROM devices d WHERE d.product_id = pr.id AND d.device_key = $2)
         ORDER BY p.id LIMIT 1",
    )
    .bind(DEMO_PRODUCT)
    .bind(DEMO_DEVICE)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| r.0))
}
