//! The engineer's pages' pieces in a real browser: the "Add a version package" form's checks
//! (the API's own rules, before anything is sent), what the form sends, each file's share of
//! an upload's progress, and the API client: the operator token kept in the browser, paths,
//! and every kind of refusal turned into its message. The client against the real center is
//! covered end to end by `tests/e2e/center-pages.mjs` (a wasm test page is on another origin
//! than the center, which allows no cross-origin requests).
#![cfg(target_arch = "wasm32")]

use sota_api::device::Paging;
use sota_api::package::{ComponentType, PackageType, MAX_FILE_BYTES};
use sota_api::product::Product;
use sota_console::api::{self, ApiError};
use sota_console::forms::{file_progress, size_text, PackageDraft};
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
