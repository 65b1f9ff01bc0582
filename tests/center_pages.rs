//! The engineer's pages' pieces in a real browser: the "Add a version package" and plan forms'
//! checks (the API's own rules, before anything is sent), what the forms send, device key
//! lists, the time zone picker's browser names and clock, each file's share of an upload's
//! progress, and the API client: the operator token kept in the browser, paths,
//! and every kind of refusal turned into its message. The client against the real center is
//! covered end to end by `tests/e2e/center-pages.mjs` (a wasm test page is on another origin
//! than the center, which allows no cross-origin requests).
#![cfg(target_arch = "wasm32")]

use sota_api::device::Paging;
use sota_api::package::{
    ComponentType, Package, PackageFile, PackageFilter, PackageMeta, PackageType, MAX_FILE_BYTES,
};
use sota_api::plan::{Plan, PlanComponent, PlanFilter, PushPeriod, Strategy, UpgradeMode};
use sota_api::product::{Product, ProductFilter};
use sota_console::adapters::page;
use sota_console::api::{self, ApiError};
use sota_console::forms::{
    file_progress, in_both, parse_keys, size_text, ComponentDraft, PackageDraft, PlanDraft,
    TextDraft,
};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn draft() -> PackageDraft {
    PackageDraft {
        product_key: "demo-product".into(),
        name: "Scent profiles".into(),
        target_version: "1_0_2".into(),
        ..PackageDraft::default()
    }
}

fn code(d: &PackageDraft, files: &[(&str, u64)]) -> &'static str {
    match d.check(files.iter().copied()) {
        Ok(_) => "ok",
        Err(r) => r.code,
    }
}

#[wasm_bindgen_test]
fn the_package_form_checks_every_field_as_the_api_does() {
    let one = [("fw.bin", 1000)];
    assert_eq!(code(&draft(), &one), "ok");
    let no_product = PackageDraft {
        product_key: String::new(),
        ..draft()
    };
    assert_eq!(code(&no_product, &one), "missing_field");
    let bad_product = PackageDraft {
        product_key: "has space".into(),
        ..draft()
    };
    assert_eq!(code(&bad_product, &one), "invalid_key");
    let blank = PackageDraft {
        name: "   ".into(),
        ..draft()
    };
    assert_eq!(code(&blank, &one), "invalid_name");
    let no_target = PackageDraft {
        target_version: String::new(),
        ..draft()
    };
    assert_eq!(code(&no_target, &one), "invalid_value");
    let long_remarks = PackageDraft {
        remarks: "x".repeat(1001),
        ..draft()
    };
    assert_eq!(code(&long_remarks, &one), "remarks_too_long");

    // Delta: the source version is required and differs from the target.
    let delta = PackageDraft {
        package_type: PackageType::Delta,
        ..draft()
    };
    assert_eq!(code(&delta, &one), "source_version_required");
    let same = PackageDraft {
        source_version: "1_0_2".into(),
        ..delta.clone()
    };
    assert_eq!(code(&same, &one), "source_equals_target");
    let from = PackageDraft {
        source_version: "1_0_1".into(),
        ..delta
    };
    assert_eq!(code(&from, &one), "ok");
    // A full package ignores a source version typed before switching back (the field hides).
    let full = PackageDraft {
        package_type: PackageType::Full,
        ..from.clone()
    };
    assert_eq!(code(&full, &one), "ok");
    assert_eq!(full.meta().source_version, None);
}

#[wasm_bindgen_test]
fn the_package_form_checks_the_files_before_upload() {
    let d = draft();
    assert_eq!(code(&d, &[]), "no_files");
    let six: Vec<(&str, u64)> = (0..6).map(|_| ("fw.bin", 1)).collect();
    assert_eq!(code(&d, &six), "too_many_files");
    assert_eq!(code(&d, &six[..5]), "ok");
    let refusal = d.check([("firmware.exe", 10)]).unwrap_err();
    assert_eq!(refusal.code, "invalid_file_type");
    assert!(
        refusal.message.contains("firmware.exe") && refusal.message.contains(".tar.gz"),
        "{}",
        refusal.message
    );
    assert_eq!(code(&d, &[(".bin", 10)]), "invalid_file_type");
    for ok in ["a.BIN", "b.tar.gz", "c.s19", "d.bin_2", "e.mini_1"] {
        assert_eq!(code(&d, &[(ok, 10)]), "ok", "{ok}");
    }
    assert_eq!(code(&d, &[("fw.bin", 0)]), "empty_file");
    assert_eq!(code(&d, &[("fw.bin", MAX_FILE_BYTES)]), "ok");
    let big = d.check([("fw.bin", MAX_FILE_BYTES + 1)]).unwrap_err();
    assert_eq!((big.code, big.status), ("file_too_large", 413));
    assert_eq!(
        code(&d, &[("ok.bin", 1), ("dir/x.bin", 1)]),
        "invalid_file_name"
    );
}

#[wasm_bindgen_test]
fn the_form_sends_the_product_first_and_the_source_only_for_a_delta() {
    let full = PackageDraft {
        component_type: ComponentType::Fota,
        source_version: "typed then hidden".into(),
        remarks: "r".into(),
        ..draft()
    };
    let names = |d: &PackageDraft| d.fields().into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(
        names(&full),
        [
            "product_key",
            "name",
            "component_type",
            "package_type",
            "target_version",
            "remarks"
        ]
    );
    assert!(full.fields().contains(&("component_type", "FOTA".into())));
    assert!(full.fields().contains(&("package_type", "full".into())));
    let delta = PackageDraft {
        package_type: PackageType::Delta,
        source_version: "1_0_1".into(),
        ..draft()
    };
    assert_eq!(names(&delta)[0], "product_key");
    assert!(delta.fields().contains(&("source_version", "1_0_1".into())));
    assert!(delta.fields().contains(&("package_type", "delta".into())));
}

#[wasm_bindgen_test]
fn each_file_gets_its_share_of_the_upload_progress() {
    assert_eq!(file_progress(&[100, 300], 0.0), [0.0, 0.0]);
    assert_eq!(file_progress(&[100, 300], 50.0), [0.5, 0.0]);
    assert_eq!(file_progress(&[100, 300], 250.0), [1.0, 0.5]);
    assert_eq!(file_progress(&[100, 300], 1e9), [1.0, 1.0]);
    assert_eq!(size_text(512), "512 B");
    assert_eq!(size_text(30000), "29.3 KiB");
    assert_eq!(size_text(3 << 20), "3.0 MiB");
}

#[wasm_bindgen_test]
fn the_client_turns_every_refusal_into_its_message() {
    let e = ApiError::from_response(
        409,
        r#"{"error":"package_in_use","message":"package 1 is used by plan 1"}"#,
    );
    assert_eq!(
        e,
        ApiError {
            status: 409,
            code: "package_in_use".into(),
            message: "package 1 is used by plan 1".into()
        }
    );
    assert!(!e.signed_out());
    let e = ApiError::from_response(
        401,
        r#"{"error":"unauthorized","message":"this operator token is unknown"}"#,
    );
    assert!(e.signed_out());
    assert_eq!(e.to_string(), "this operator token is unknown");
    assert!(ApiError::from_response(403, "").signed_out());
    let e = ApiError::from_response(502, "<html>Bad Gateway</html>");
    assert_eq!((e.status, e.code.as_str()), (502, "http"));
    assert!(
        e.message.contains("502") && e.message.contains("Bad Gateway"),
        "{}",
        e.message
    );
    assert!(ApiError::from_response(500, "").message.contains("500"));

    let products: Vec<Product> = api::decode(
        200,
        r#"[{"product_key":"p","name":"P","product_secret":"s","demo":true,"created_at":"t"}]"#,
    )
    .unwrap();
    assert_eq!(products[0].product_key, "p");
    let e = api::decode::<Vec<Product>>(200, r#"{"not":"a list"}"#).unwrap_err();
    assert_eq!(e.code, "bad_body");
    let e =
        api::decode::<Vec<Product>>(404, r#"{"error":"not_found","message":"no such product"}"#)
            .unwrap_err();
    assert_eq!(e.message, "no such product");
}

#[wasm_bindgen_test]
fn the_client_builds_paths_with_paging_and_search() {
    let all = Paging {
        offset: None,
        limit: None,
        q: None,
    };
    assert_eq!(
        api::devices_path("demo-product", &all),
        "/products/demo-product/devices"
    );
    let page = Paging {
        offset: Some(20),
        limit: Some(21),
        q: Some("field 1/&".into()),
    };
    assert_eq!(
        api::devices_path("p x", &page),
        "/products/p%20x/devices?offset=20&limit=21&q=field%201%2F%26"
    );
    let empty_q = Paging {
        q: Some(String::new()),
        ..all
    };
    assert_eq!(api::devices_path("p", &empty_q), "/products/p/devices");
}

#[wasm_bindgen_test]
async fn the_token_is_kept_in_the_browser_and_sent() {
    api::sign_out();
    assert_eq!(api::token(), None);
    api::sign_in("  abc123  ");
    assert_eq!(api::token().as_deref(), Some("abc123"));
    // This test page's server has no API: the client reports its answer, it does not fail
    // on the way (a real fetch, with the token, same origin).
    let e = api::products().await.unwrap_err();
    assert!(e.status >= 400, "{e:?}");
    assert!(!e.message.is_empty());
    api::sign_out();
    assert_eq!(api::token(), None);
}

fn package(id: i64, component_type: ComponentType, files: u32) -> Package {
    Package {
        id,
        product_key: Some("demo-product".into()),
        meta: PackageMeta {
            name: format!("package {id}"),
            component_type,
            package_type: PackageType::Full,
            source_version: None,
            target_version: "1_0_2".into(),
            remarks: String::new(),
        },
        files: (0..files)
            .map(|position| PackageFile {
                position,
                file_name: format!("f{position}.bin"),
                size: 1,
                md5: String::new(),
                crc32: String::new(),
                sha256: String::new(),
            })
            .collect(),
        demo: false,
        created_at: "t".into(),
    }
}

/// A manual plan with a whitelist and a blacklist that the API accepts.
fn plan_draft() -> PlanDraft {
    PlanDraft {
        name: "Spring rollout".into(),
        product_key: "demo-product".into(),
        whitelist: "field-1\nfield-2, field-3".into(),
        blacklist: "field-3".into(),
        time_zone: "Asia/Shanghai".into(),
        upgrade_mode: UpgradeMode::Manual,
        components: vec![ComponentDraft {
            identity: " STM32 ".into(),
            package_id: Some(7),
            file_position: 1,
        }],
        texts: vec![
            TextDraft {
                language: "zh".into(),
                text: "升级".into(),
            },
            TextDraft {
                language: "en".into(),
                text: "Upgrade".into(),
            },
            TextDraft {
                language: "de".into(),
                text: "  ".into(),
            },
        ],
        ..PlanDraft::default()
    }
}

fn plan_code(d: &PlanDraft) -> &'static str {
    match d.check(&[
        package(7, ComponentType::Sota, 2),
        package(8, ComponentType::Fota, 1),
    ]) {
        Ok(_) => "ok",
        Err(r) => r.code,
    }
}

#[wasm_bindgen_test]
fn key_lists_are_read_from_lines_commas_and_spaces() {
    let keys = parse_keys(
        "whitelist",
        "dev-1\r\ndev-2, dev-3;dev-4\tdev-5   \n\n\"dev-6\",dev-1\n dev-2 ",
    )
    .unwrap();
    assert_eq!(keys, ["dev-1", "dev-2", "dev-3", "dev-4", "dev-5", "dev-6"]);
    assert_eq!(
        parse_keys("blacklist", "  \n , ").unwrap(),
        Vec::<String>::new()
    );
    // Every entry that is not a key is named, in the API's words for the first.
    let e = parse_keys("whitelist", "ok-1\ndev#2\nok-2, 设备3, dev#2, a/b").unwrap_err();
    assert_eq!((e.status, e.code), (422, "invalid_key"));
    assert!(
        e.message
            .starts_with("whitelist device key \"dev#2\" is not valid"),
        "{}",
        e.message
    );
    assert!(
        e.message.contains("\"设备3\"") && e.message.contains("\"a/b\""),
        "{}",
        e.message
    );
    let many: String = (0..30).map(|i| format!("bad#{i}\n")).collect();
    let e = parse_keys("blacklist", &many).unwrap_err();
    assert!(e.message.contains("and 9 more"), "{}", e.message);
    let long = "k".repeat(65);
    assert_eq!(
        parse_keys("whitelist", &long).unwrap_err().code,
        "invalid_key"
    );
    assert_eq!(
        in_both(
            &["a".into(), "b".into(), "c".into()],
            &["c".into(), "a".into(), "z".into()]
        ),
        ["a", "c"]
    );
}

#[wasm_bindgen_test]
fn the_plan_form_sends_every_field_of_the_plan() {
    let input = plan_draft()
        .check(&[package(7, ComponentType::Sota, 2)])
        .unwrap();
    assert_eq!(input.name, "Spring rollout");
    assert_eq!(input.whitelist, ["field-1", "field-2", "field-3"]);
    assert_eq!(input.blacklist, ["field-3"]);
    assert_eq!(input.time_zone, "Asia/Shanghai");
    assert_eq!(input.push_period, None);
    assert_eq!(input.upgrade_mode, UpgradeMode::Manual);
    assert_eq!(input.strategy, Strategy::default());
    // The identity is trimmed; the type is the package's; the picked file is kept.
    assert_eq!(
        input.components,
        [PlanComponent {
            identity: "STM32".into(),
            component_type: ComponentType::Sota,
            package_id: 7,
            file_position: 1
        }]
    );
    // A blank row is not sent.
    assert_eq!(input.texts.keys().collect::<Vec<_>>(), ["en", "zh"]);

    let windowed = PlanDraft {
        push_period: true,
        push_start: "22:00".into(),
        push_end: "06:00".into(),
        min_battery_percent: "55".into(),
        min_signal_dbm: "-90".into(),
        space_needed_bytes: "1048576".into(),
        download_retries: "0".into(),
        ..plan_draft()
    };
    let input = windowed
        .check(&[package(7, ComponentType::Sota, 1)])
        .unwrap();
    assert_eq!(
        input.push_period,
        Some(PushPeriod {
            start: "22:00".into(),
            end: "06:00".into()
        })
    );
    assert_eq!(
        input.strategy,
        Strategy {
            min_battery_percent: 55,
            min_signal_dbm: -90,
            space_needed_bytes: 1 << 20,
            download_retries: 0
        }
    );
}

#[wasm_bindgen_test]
fn the_plan_form_checks_every_field_as_the_api_does() {
    assert_eq!(plan_code(&plan_draft()), "ok");
    type Change = fn(&mut PlanDraft);
    let cases: [(Change, &str); 17] = [
        (|d| d.product_key.clear(), "missing_field"),
        (|d| d.product_key = "a b".into(), "invalid_key"),
        (|d| d.name = "  ".into(), "invalid_name"),
        (|d| d.blacklist = "ok, no/way".into(), "invalid_key"),
        (|d| d.time_zone = "Mars/Olympus".into(), "invalid_time_zone"),
        (|d| d.time_zone = String::new(), "invalid_time_zone"),
        (
            |d| {
                d.push_period = true;
                d.push_end = d.push_start.clone()
            },
            "invalid_push_period",
        ),
        (
            |d| {
                d.push_period = true;
                d.push_start = "25:00".into()
            },
            "invalid_push_period",
        ),
        (|d| d.min_battery_percent = "101".into(), "invalid_strategy"),
        (|d| d.min_battery_percent = "-1".into(), "invalid_strategy"),
        (|d| d.min_signal_dbm = "ten".into(), "invalid_strategy"),
        (|d| d.download_retries = "11".into(), "invalid_strategy"),
        (|d| d.components.clear(), "invalid_components"),
        (|d| d.components[0].package_id = None, "missing_field"),
        (
            |d| {
                let again = d.components[0].clone();
                d.components.push(ComponentDraft {
                    package_id: Some(8),
                    ..again
                })
            },
            "duplicate_component",
        ),
        (|d| d.texts[2].language = "zh".into(), "ok"),
        (
            |d| {
                d.texts[2] = TextDraft {
                    language: "zh".into(),
                    text: "again".into(),
                }
            },
            "duplicate_language",
        ),
    ];
    for (i, (change, code)) in cases.into_iter().enumerate() {
        let mut d = plan_draft();
        change(&mut d);
        assert_eq!(plan_code(&d), code, "case {i}: {d:?}");
    }
    // The strategy's refusal is the API's words even for a number beyond its type.
    let far = PlanDraft {
        min_battery_percent: "300".into(),
        ..plan_draft()
    };
    let e = far
        .check(&[package(7, ComponentType::Sota, 2)])
        .unwrap_err();
    assert_eq!(e.message, "strategy.min_battery_percent must be 0 to 100");
    // A package not among the product's (the product changed) is picked again.
    let e = plan_draft()
        .check(&[package(9, ComponentType::Sota, 1)])
        .unwrap_err();
    assert!(
        e.message.contains("pick the version package"),
        "{}",
        e.message
    );
}

#[wasm_bindgen_test]
fn a_manual_plan_says_which_text_is_missing() {
    let mut no_zh = plan_draft();
    no_zh.texts[0].text = " ".into();
    let e = no_zh
        .check(&[package(7, ComponentType::Sota, 2)])
        .unwrap_err();
    assert_eq!(e.code, "manual_needs_texts");
    assert!(e.message.contains("texts.zh"), "{}", e.message);
    let mut no_en = plan_draft();
    no_en.texts.remove(1);
    let e = no_en
        .check(&[package(7, ComponentType::Sota, 2)])
        .unwrap_err();
    assert!(e.message.contains("texts.en"), "{}", e.message);
    // Silent needs none.
    let silent = PlanDraft {
        upgrade_mode: UpgradeMode::Silent,
        texts: Vec::new(),
        ..plan_draft()
    };
    assert_eq!(plan_code(&silent), "ok");
    let bad_language = PlanDraft {
        texts: vec![TextDraft {
            language: "English".into(),
            text: "x".into(),
        }],
        ..silent
    };
    assert_eq!(plan_code(&bad_language), "invalid_language");
}

#[wasm_bindgen_test]
fn a_stored_draft_fills_the_form_again() {
    let input = plan_draft()
        .check(&[package(7, ComponentType::Sota, 2)])
        .unwrap();
    let stored: Plan = serde_json::from_value(serde_json::json!({
        "id": 3, "state": "draft", "demo": false, "created_at": "t", "updated_at": "t",
        "name": input.name, "product_key": input.product_key, "whitelist": input.whitelist,
        "blacklist": input.blacklist, "time_zone": input.time_zone,
        "push_period": {"start": "01:00", "end": "02:00"}, "upgrade_mode": "silent",
        "strategy": input.strategy, "components": input.components, "texts": {"en": "Upgrade"},
    }))
    .unwrap();
    let form = PlanDraft::from_plan(&stored);
    // zh is offered to be filled in, en kept.
    assert_eq!(form.texts[0].language, "zh");
    assert!(form
        .texts
        .iter()
        .any(|t| t.language == "en" && t.text == "Upgrade"));
    assert!(form.push_period && form.push_start == "01:00" && form.push_end == "02:00");
    let again = form.check(&[package(7, ComponentType::Sota, 2)]).unwrap();
    assert_eq!(again.whitelist, stored.whitelist);
    assert_eq!(again.blacklist, stored.blacklist);
    assert_eq!(again.components, stored.components);
    assert_eq!(again.strategy, stored.strategy);
    assert_eq!(again.texts, stored.texts);
    assert_eq!(again.push_period, stored.push_period);
}

#[wasm_bindgen_test]
fn the_client_pages_products_packages_and_plans() {
    assert_eq!(api::products_path(&ProductFilter::default()), "/products");
    assert_eq!(
        api::products_path(&ProductFilter {
            offset: Some(20),
            limit: Some(21),
            q: Some("aroma diffuser".into())
        }),
        "/products?offset=20&limit=21&q=aroma%20diffuser"
    );
    assert_eq!(
        api::packages_path(&PackageFilter {
            product: Some("demo-product".into()),
            offset: Some(0),
            limit: Some(21),
            q: Some(String::new()),
        }),
        "/packages?product=demo-product&offset=0&limit=21"
    );
    assert_eq!(
        api::plans_path(&PlanFilter {
            product: None,
            offset: Some(40),
            limit: Some(21),
            q: Some("spring & co".into()),
        }),
        "/plans?offset=40&limit=21&q=spring%20%26%20co"
    );
}

#[wasm_bindgen_test]
fn the_time_zone_picker_uses_the_browsers_names_and_clock() {
    let zones = page::time_zones();
    assert!(zones.len() > 300, "{}", zones.len());
    for z in ["Asia/Shanghai", "Europe/Berlin", "America/New_York"] {
        assert!(zones.iter().any(|n| n == z), "{z} missing");
    }
    // Every name the browser offers is one the API accepts (or the form would offer a refusal).
    let refused: Vec<&String> = zones
        .iter()
        .filter(|z| sota_api::plan::time_zone(z).is_err())
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
    let now = page::time_in("Asia/Shanghai", "en").unwrap();
    assert!(now.contains(':'), "{now}");
    assert_eq!(page::time_in("Mars/Olympus", "en"), None);
    assert!(page::own_time_zone().is_some_and(|z| !z.is_empty()));
}

// Verify firmware and upgrade monitoring.

#[wasm_bindgen_test]
fn the_verification_form_checks_its_picks_as_the_api_does() {
    use sota_console::forms::VerificationDraft;
    let code = |d: &VerificationDraft| match d.check() {
        Ok(_) => "ok",
        Err(r) => r.code,
    };
    let ready = VerificationDraft {
        package_id: Some(7),
        product_key: "demo-product".into(),
        device_key: "field-1".into(),
        component_identity: "STM32".into(),
    };
    let (package, job) = ready.check().unwrap();
    assert_eq!(
        (
            package,
            job.device_key.as_str(),
            job.component_identity.as_str()
        ),
        (7, "field-1", "STM32")
    );
    let no_package = VerificationDraft {
        package_id: None,
        ..ready.clone()
    };
    assert_eq!(code(&no_package), "missing_field");
    let no_device = VerificationDraft {
        device_key: String::new(),
        ..ready.clone()
    };
    let refusal = no_device.check().unwrap_err();
    assert!(refusal.message.contains("device"), "{}", refusal.message);
    let no_component = VerificationDraft {
        component_identity: String::new(),
        ..ready.clone()
    };
    assert_eq!(code(&no_component), "missing_field");
    // sota-api's NewVerification rules, the same the center applies.
    let bad_key = VerificationDraft {
        device_key: "field 1".into(),
        ..ready.clone()
    };
    assert_eq!(code(&bad_key), "invalid_key");
    let bad_identity = VerificationDraft {
        component_identity: "ST M32".into(),
        ..ready
    };
    assert_eq!(code(&bad_identity), "invalid_value");
}

fn upgrade(device: &str, identity: &str, status: u8) -> sota_api::monitoring::UpgradeView {
    sota_api::monitoring::UpgradeView {
        plan_id: 1,
        device_key: device.into(),
        identity: identity.into(),
        status,
        status_name: String::new(),
        percent: None,
        outcome: sota_api::monitoring::Outcome::Pending,
        message: String::new(),
        started_at: String::new(),
        updated_at: String::new(),
        finished_at: None,
    }
}

fn keys(devices: &[sota_api::monitoring::PlanDevice]) -> Vec<String> {
    devices.iter().map(|d| d.device_key.clone()).collect()
}

#[wasm_bindgen_test]
fn a_moved_upgrade_lands_where_the_servers_order_puts_it() {
    use sota_console::pages::monitoring::apply_upgrade;
    let mut page = Vec::new();
    // An empty only page takes the first device; later ones go in key order.
    for k in ["d-5", "d-2", "d-9"] {
        assert!(!apply_upgrade(
            &mut page,
            upgrade(k, "STM32", 0),
            true,
            true,
            3
        ));
    }
    assert_eq!(keys(&page), ["d-2", "d-5", "d-9"]);
    // A known device's component is replaced; another component is added in identity order.
    apply_upgrade(&mut page, upgrade("d-5", "STM32", 11), true, true, 3);
    apply_upgrade(&mut page, upgrade("d-5", "BLE", 4), true, true, 3);
    let d5: Vec<(String, u8)> = page[1]
        .components
        .iter()
        .map(|c| (c.identity.clone(), c.status))
        .collect();
    assert_eq!(d5, [("BLE".to_string(), 4), ("STM32".to_string(), 11)]);
    // A full page: a device inside it pushes the last one to the next page.
    assert!(apply_upgrade(
        &mut page,
        upgrade("d-3", "STM32", 0),
        true,
        true,
        3
    ));
    assert_eq!(keys(&page), ["d-2", "d-3", "d-5"]);
    // A device after the last one shown belongs to a later page when more follow…
    assert!(!apply_upgrade(
        &mut page,
        upgrade("d-7", "STM32", 0),
        true,
        false,
        5
    ));
    // …and one before the first shown to an earlier page, when this is not the first.
    assert!(!apply_upgrade(
        &mut page,
        upgrade("d-1", "STM32", 0),
        false,
        true,
        5
    ));
    assert_eq!(keys(&page), ["d-2", "d-3", "d-5"]);
}

#[wasm_bindgen_test]
fn monitoring_paths_statuses_and_progress() {
    use sota_api::monitoring::Window;
    use sota_console::i18n::Lang;
    use sota_console::pages::monitoring::{progress, status_text};
    assert_eq!(
        api::window_path(
            "/plans/3/devices".into(),
            &Window {
                offset: Some(50),
                limit: Some(51)
            }
        ),
        "/plans/3/devices?offset=50&limit=51"
    );
    assert_eq!(
        api::window_path(
            "/plans/3/log".into(),
            &Window {
                offset: None,
                limit: None
            }
        ),
        "/plans/3/log"
    );
    assert_eq!(status_text(Lang::En, "update_ok"), "update ok");
    assert_eq!(status_text(Lang::Zh, "update_ok"), "升级成功");
    assert_eq!(status_text(Lang::En, "from_the_future"), "from_the_future");
    assert_eq!(progress(5, Some(40)), Some(40));
    assert_eq!(progress(9, None), Some(100));
    assert_eq!(progress(4, None), None);
    assert_eq!(progress(77, Some(3)), None);
}

#[wasm_bindgen_test]
fn a_log_line_shows_only_what_its_message_adds() {
    use sota_console::pages::monitoring::said;
    let line =
        |status_name: &str, percent: Option<u8>, message: &str| sota_api::monitoring::LogEntry {
            id: 1,
            at: String::new(),
            plan_id: 1,
            device_key: "d".into(),
            identity: "STM32".into(),
            source: "device".into(),
            status: 0,
            status_name: status_name.into(),
            percent,
            message: message.into(),
        };
    assert_eq!(said(&line("plan", None, "plan")), None);
    assert_eq!(
        said(&line("downloading", Some(40), "downloading: 40 %")),
        None
    );
    assert_eq!(
        said(&line("downloading", Some(40), "downloading: slow link")),
        Some("slow link")
    );
    assert_eq!(
        said(&line(
            "accepted",
            None,
            "accepted; firmware link expires soon"
        )),
        Some("accepted; firmware link expires soon")
    );
    assert_eq!(
        said(&line("update_ok", None, "succeeded: version 2")),
        Some("succeeded: version 2")
    );
}
