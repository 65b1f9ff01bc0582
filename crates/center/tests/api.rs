//! Every rule and rejection of the center, through its HTTP API, against the
//! real binary on a random loopback port with a real SQLite file — or, with
//! `SOTA_TEST_DATABASE=postgres`, a real PostgreSQL database (see `common`).

mod common;

use common::{assert_error, Center};
use reqwest::{header, StatusCode};
use serde_json::{json, Value};

/// Form fields and files of an upload case.
type Fields<'a> = Vec<(&'a str, &'a str)>;
type Files<'a> = Vec<(&'a str, Vec<u8>)>;

fn plan_body(product: &str, package_id: i64) -> Value {
    json!({
        "name": "plan A",
        "product_key": product,
        "time_zone": "Asia/Shanghai",
        "upgrade_mode": "silent",
        "components": [{"identity": "STM32", "component_type": "SOTA", "package_id": package_id}],
    })
}

#[tokio::test]
async fn products_create_list_get_and_rejections() {
    let c = Center::start(&["--no-demo"]);
    let (s, b) = c
        .post(
            "/products",
            json!({"product_key": "p1", "name": "Diffuser"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(b["product_key"], "p1");
    assert_eq!(b["product_secret"].as_str().unwrap().len(), 32);
    assert_eq!(b["demo"], false);
    assert_error(
        &c.post("/products", json!({"product_key": "p1", "name": "again"}))
            .await,
        409,
        "product_exists",
    );
    assert_error(
        &c.post("/products", json!({"product_key": "bad key!", "name": "x"}))
            .await,
        422,
        "invalid_key",
    );
    assert_error(
        &c.post("/products", json!({"product_key": "p2", "name": "   "}))
            .await,
        422,
        "invalid_name",
    );
    assert_error(
        &c.post("/products", json!({"product_key": "p2"})).await,
        422,
        "invalid_body",
    );
    assert_error(
        &c.post(
            "/products",
            json!({"product_key": "p2", "name": "n", "extra": 1}),
        )
        .await,
        422,
        "invalid_body",
    );
    let (s, list) = c.get("/products").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(c.get("/products/p1").await.1["name"], "Diffuser");
    assert_error(&c.get("/products/nope").await, 404, "not_found");

    // Malformed bodies are JSON 4xx too.
    let raw = c
        .http
        .post(c.api("/products"))
        .bearer_auth(&c.token)
        .header(header::CONTENT_TYPE, "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    assert_eq!(raw.json::<Value>().await.unwrap()["error"], "bad_request");
    let raw = c
        .http
        .post(c.api("/products"))
        .bearer_auth(&c.token)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 415);
    assert_eq!(
        raw.json::<Value>().await.unwrap()["error"],
        "unsupported_media_type"
    );
}

#[tokio::test]
async fn operators_need_a_valid_token_and_errors_are_json() {
    let c = Center::start(&["--no-demo"]);
    let r = c.http.get(c.api("/products")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "unauthorized");
    let r = c
        .http
        .get(c.api("/products"))
        .bearer_auth("sc_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The token is stored only as a hash.
    if common::on_postgres() {
        let pool = common::open_db(&c.data_dir).await;
        let rows = sqlx::query("SELECT name, token_hash FROM operator_tokens")
            .fetch_all(&pool)
            .await
            .unwrap();
        for r in &rows {
            for column in ["name", "token_hash"] {
                let value: String = sqlx::Row::get(r, column);
                assert!(!value.contains(&c.token));
            }
        }
    } else {
        let db = std::fs::read(c.data_dir.join("center.sqlite3")).unwrap();
        let wal = std::fs::read(c.data_dir.join("center.sqlite3-wal")).unwrap_or_default();
        let needle = c.token.as_bytes();
        assert!(
            !db.windows(needle.len()).any(|w| w == needle)
                && !wal.windows(needle.len()).any(|w| w == needle)
        );
    }

    let r = c.http.get(c.api("/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert!(doc["paths"]["/api/v1/plans/{id}/activate"]["post"].is_object());
    assert!(doc["components"]["schemas"]["PlanInput"].is_object());

    assert_error(&c.get("/no/such/path").await, 404, "not_found");
    assert_error(
        &c.call(reqwest::Method::PATCH, "/products", None).await,
        405,
        "method_not_allowed",
    );
    assert_error(&c.get("/packages/abc").await, 400, "bad_request");
    assert_error(
        &c.get("/packages/99999999999999999999").await,
        400,
        "bad_request",
    );
    assert_error(&c.get("/devices?limit=x").await, 404, "not_found");
    c.product("p").await;
    assert_error(
        &c.get("/products/p/devices?limit=-1").await,
        400,
        "bad_request",
    );
}

#[tokio::test]
async fn devices_register_list_lookup() {
    let c = Center::start(&["--no-demo"]);
    c.product("p").await;
    c.device("p", "d2", json!({"STM32": "1_0_0"})).await;
    c.device("p", "d1", json!({"STM32": "1_0_0", "MOD": "A"}))
        .await;
    // A later report updates one component and keeps the other.
    c.device("p", "d1", json!({"STM32": "1_0_1"})).await;
    let (_, d) = c.get("/products/p/devices/d1").await;
    assert_eq!(d["components"], json!({"MOD": "A", "STM32": "1_0_1"}));
    let (_, list) = c.get("/products/p/devices?limit=1").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["device_key"], "d1");
    let (_, list) = c.get("/products/p/devices?offset=1").await;
    assert_eq!(list[0]["device_key"], "d2");
    assert_error(&c.get("/products/p/devices/zz").await, 404, "not_found");
    assert_error(&c.get("/products/q/devices").await, 404, "not_found");
    assert_error(
        &c.put(
            "/products/p/devices/d3",
            json!({"components": {"STM32": "has space"}}),
        )
        .await,
        422,
        "invalid_value",
    );
}

/// The `name` (or `product_key`) of each element of a list answer.
fn names(v: &Value, field: &str) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| x[field].as_str().unwrap().to_string())
        .collect()
}

/// Products, version packages and plans page and search on the server as devices do: the
/// console's lists ask for one page (`offset`, `limit`), a product's and a name's matches.
#[tokio::test]
async fn products_packages_and_plans_page_and_search_on_the_server() {
    let c = Center::start(&["--no-demo"]);
    for key in ["alpha", "beta", "gamma"] {
        c.product(key).await;
    }
    let (_, all) = c.get("/products").await;
    assert_eq!(
        names(&all, "product_key"),
        ["alpha", "beta", "gamma"],
        "without paging, every product"
    );
    let (_, page) = c.get("/products?offset=1&limit=1").await;
    assert_eq!(names(&page, "product_key"), ["beta"]);
    let (_, page) = c.get("/products?offset=2&limit=5").await;
    assert_eq!(names(&page, "product_key"), ["gamma"]);
    // The key or the name ("Product gamma"), ignoring case.
    let (_, found) = c.get("/products?q=AMM").await;
    assert_eq!(names(&found, "product_key"), ["gamma"]);
    let (_, found) = c.get("/products?q=product%20B").await;
    assert_eq!(names(&found, "product_key"), ["beta"]);
    let (_, found) = c.get("/products?q=&limit=1").await;
    assert_eq!(
        names(&found, "product_key"),
        ["alpha"],
        "an empty q is no filter"
    );
    let (_, none) = c.get("/products?q=zzz").await;
    assert_eq!(none, json!([]));
    // A limit of 0 still answers a page (of one); a huge one at most 1000.
    let (_, one) = c.get("/products?limit=0").await;
    assert_eq!(names(&one, "product_key"), ["alpha"]);
    assert_error(&c.get("/products?limit=-1").await, 400, "bad_request");
    assert_error(&c.get("/products?offset=x").await, 400, "bad_request");

    // Packages: newest first, by product, by name.
    let mut ids = Vec::new();
    for (product, name) in [
        ("alpha", "Scent profiles"),
        ("alpha", "Motor driver"),
        ("beta", "Scent fix"),
    ] {
        let fields = vec![
            ("product_key", product),
            ("name", name),
            ("component_type", "SOTA"),
            ("package_type", "full"),
            ("target_version", "2"),
        ];
        let (s, b) = c.upload(&fields, &[("fw.bin", vec![1u8; 10])]).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        ids.push(b["id"].as_i64().unwrap());
    }
    let (_, all) = c.get("/packages").await;
    assert_eq!(
        names(&all, "name"),
        ["Scent fix", "Motor driver", "Scent profiles"]
    );
    let (_, page) = c.get("/packages?limit=2").await;
    assert_eq!(names(&page, "name"), ["Scent fix", "Motor driver"]);
    let (_, page) = c.get("/packages?limit=2&offset=2").await;
    assert_eq!(names(&page, "name"), ["Scent profiles"]);
    let (_, found) = c.get("/packages?product=alpha&q=scent").await;
    assert_eq!(names(&found, "name"), ["Scent profiles"]);
    let (_, found) = c.get("/packages?q=SCENT").await;
    assert_eq!(names(&found, "name"), ["Scent fix", "Scent profiles"]);
    let (_, found) = c.get("/packages?product=beta&offset=1").await;
    assert_eq!(found, json!([]));
    assert_error(&c.get("/packages?product=nobody").await, 404, "not_found");

    // Plans: newest first, by product, by name.
    for (name, product, pkg) in [
        ("Spring rollout", "alpha", ids[0]),
        ("Hotfix", "alpha", ids[1]),
        ("Spring fix", "beta", ids[2]),
    ] {
        let mut body = plan_body(product, pkg);
        body["name"] = json!(name);
        let (s, b) = c.post("/plans", body).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let (_, all) = c.get("/plans").await;
    assert_eq!(
        names(&all, "name"),
        ["Spring fix", "Hotfix", "Spring rollout"]
    );
    let (_, page) = c.get("/plans?offset=1&limit=1").await;
    assert_eq!(names(&page, "name"), ["Hotfix"]);
    let (_, found) = c.get("/plans?q=spring").await;
    assert_eq!(names(&found, "name"), ["Spring fix", "Spring rollout"]);
    let (_, found) = c.get("/plans?product=alpha&q=spring").await;
    assert_eq!(names(&found, "name"), ["Spring rollout"]);
    assert_eq!(found[0]["components"][0]["package_id"], ids[0]);
    let (_, found) = c.get("/plans?product=gamma").await;
    assert_eq!(found, json!([]));
    assert_error(&c.get("/plans?product=nobody").await, 404, "not_found");
    assert_error(&c.get("/plans?limit=many").await, 400, "bad_request");

    // The OpenAPI document names the new parameters.
    let (_, doc) = c.get("/openapi.json").await;
    for path in ["/api/v1/products", "/api/v1/packages", "/api/v1/plans"] {
        let params: Vec<&str> = doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{path} has no parameters"))
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for want in ["offset", "limit", "q"] {
            assert!(params.contains(&want), "{path}: {params:?}");
        }
    }
}

#[tokio::test]
async fn devices_search_by_key_prefix_on_the_server_among_100000() {
    let c = Center::start(&["--no-demo"]);
    c.product("p").await;
    c.product("other").await;
    c.device("p", "field-1", json!({"STM32": "1_0_0"})).await;
    c.device("other", "dev-000007", json!({})).await;
    // 100,000 devices written straight into the center's database.
    let pool = common::open_db(&c.data_dir).await;
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99999)
         INSERT INTO devices (product_id, device_key, registered_at, last_seen_at)
         SELECT (SELECT id FROM products WHERE product_key = 'p'),
                'dev-' || substr(CAST(1000000 + i AS TEXT), 2), 't', 't' FROM n",
    )
    .execute(&pool)
    .await
    .unwrap();
    let keys = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|d| d["device_key"].as_str().unwrap().to_string())
            .collect()
    };
    let (s, list) = c.get("/products/p/devices?q=dev-01234&limit=5").await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(
        keys(&list),
        [
            "dev-012340",
            "dev-012341",
            "dev-012342",
            "dev-012343",
            "dev-012344"
        ]
    );
    let (_, list) = c.get("/products/p/devices?q=dev-01234&offset=8").await;
    assert_eq!(
        keys(&list),
        ["dev-012348", "dev-012349"],
        "paged within the matches"
    );
    let (_, list) = c.get("/products/p/devices?q=field").await;
    assert_eq!(keys(&list), ["field-1"]);
    assert_eq!(list[0]["components"], json!({"STM32": "1_0_0"}));
    let (_, list) = c.get("/products/p/devices?q=dev-0000071").await;
    assert!(
        keys(&list).is_empty(),
        "another product's device is not found"
    );
    let (_, list) = c.get("/products/p/devices?q=DEV").await;
    assert!(
        keys(&list).is_empty(),
        "the prefix is case-sensitive: {list}"
    );
    let (_, list) = c.get("/products/p/devices?q=&limit=2").await;
    assert_eq!(
        keys(&list),
        ["dev-000000", "dev-000001"],
        "an empty q is no filter"
    );
    // The lookup (the center's own statement) walks the (product, key) index rather than
    // scanning the product's devices: what keeps it fast at 100,000 devices.
    if common::on_postgres() {
        sqlx::query("ANALYZE devices").execute(&pool).await.unwrap();
        let plan: Vec<String> = sqlx::query(
            "EXPLAIN SELECT * FROM devices WHERE product_id = 1 AND device_key >= 'a'
             AND device_key < 'b' ORDER BY device_key LIMIT 20 OFFSET 0",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| sqlx::Row::get::<String, _>(r, 0))
        .collect();
        assert!(
            plan.iter()
                .any(|d| d.contains("Index") && d.contains("device_key >=")),
            "{plan:?}"
        );
        pool.close().await;
        return;
    }
    let plan: Vec<String> = sqlx::query(
        "EXPLAIN QUERY PLAN SELECT * FROM devices WHERE product_id = 1 AND device_key >= 'a'
         AND device_key < 'b' ORDER BY device_key LIMIT 20 OFFSET 0",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| sqlx::Row::get::<String, _>(r, "detail"))
    .collect();
    assert!(
        plan.iter()
            .any(|d| d.contains("INDEX") && d.contains("device_key>?")),
        "{plan:?}"
    );
    pool.close().await;
}

#[tokio::test]
async fn the_console_pages_survive_a_reload() {
    let dist = tempfile::tempdir().unwrap();
    let index = "<!doctype html><title>console</title>";
    std::fs::write(dist.path().join("index.html"), index).unwrap();
    std::fs::write(dist.path().join("app.css"), "body{}").unwrap();
    let c = Center::start(&["--no-demo", "--console-dir", dist.path().to_str().unwrap()]);
    for path in [
        "/center",
        "/center/",
        "/center/products",
        "/center/products/demo-product/devices/field-1",
        "/center/packages/new",
    ] {
        let r = reqwest::get(format!("{}{path}", c.url)).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.text().await.unwrap(), index, "{path} gets the console");
    }
    let r = reqwest::get(format!("{}/app.css", c.url)).await.unwrap();
    assert_eq!(r.text().await.unwrap(), "body{}", "assets are files");
    // The API under the same origin stays JSON, with or without a token.
    let r = reqwest::get(format!("{}/api/v1/products", c.url))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_error(&c.get("/center/products").await, 404, "not_found");
}

#[tokio::test]
async fn package_upload_digests_and_every_rejection_leaves_nothing() {
    let c = Center::start(&["--no-demo", "--max-file-bytes", "4096"]);
    c.product("p").await;
    let data: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    let expected = sota_engine::Digester::digest(&data);
    let full = [
        ("product_key", "p"),
        ("name", "MCU 1.1"),
        ("component_type", "SOTA"),
        ("package_type", "full"),
        ("target_version", "1.1"),
        ("remarks", "r"),
    ];
    let (s, b) = c
        .upload(
            &full,
            &[("a.bin", data.clone()), ("b.tar.gz", vec![1, 2, 3])],
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let f = &b["files"][0];
    assert_eq!(f["file_name"], "a.bin");
    assert_eq!(f["size"], expected.size);
    assert_eq!(f["md5"], expected.md5);
    assert_eq!(f["crc32"], expected.crc32);
    assert_eq!(f["sha256"], expected.sha256);
    assert_eq!(b["files"][1]["file_name"], "b.tar.gz");
    assert_eq!(b["source_version"], Value::Null);
    assert_eq!(b["product_key"], "p");
    let id = b["id"].as_i64().unwrap();
    assert_eq!(
        c.get(&format!("/packages/{id}")).await.1["files"][0]["sha256"],
        expected.sha256
    );
    let stored_before = c.stored_files();
    assert_eq!(stored_before.len(), 2);

    let delta = [
        ("product_key", "p"),
        ("name", "d"),
        ("component_type", "SOTA"),
        ("package_type", "delta"),
        ("target_version", "1.1"),
    ];
    let one = || vec![("x.bin", vec![1u8; 10])];
    let cases: Vec<(Fields, Files, u16, &str)> = vec![
        (
            full.to_vec(),
            vec![("x.exe", vec![1u8; 10])],
            422,
            "invalid_file_type",
        ),
        (
            full.to_vec(),
            vec![("bin", vec![1u8; 10])],
            422,
            "invalid_file_type",
        ),
        (
            full.to_vec(),
            (0..6).map(|_| ("x.bin", vec![1u8; 10])).collect(),
            422,
            "too_many_files",
        ),
        (
            full.to_vec(),
            vec![("ok.bin", vec![1u8; 10]), ("big.bin", vec![0u8; 4097])],
            413,
            "file_too_large",
        ),
        (
            full.to_vec(),
            vec![("empty.bin", vec![])],
            422,
            "empty_file",
        ),
        (full.to_vec(), vec![], 422, "no_files"),
        (delta.to_vec(), one(), 422, "source_version_required"),
        (
            [&full[..], &[("source_version", "1.0")]].concat(),
            one(),
            422,
            "source_version_forbidden",
        ),
        (
            [&delta[..], &[("source_version", "1.1")]].concat(),
            one(),
            422,
            "source_equals_target",
        ),
        (
            vec![
                ("product_key", "p"),
                ("name", "n"),
                ("component_type", "MCU"),
                ("package_type", "full"),
                ("target_version", "1"),
            ],
            one(),
            422,
            "invalid_component_type",
        ),
        (
            vec![
                ("product_key", "p"),
                ("name", "n"),
                ("component_type", "SOTA"),
                ("package_type", "patch"),
                ("target_version", "1"),
            ],
            one(),
            422,
            "invalid_package_type",
        ),
        (
            vec![
                ("product_key", "p"),
                ("component_type", "SOTA"),
                ("package_type", "full"),
                ("target_version", "1"),
            ],
            one(),
            422,
            "missing_field",
        ),
        // A package belongs to a product: none, an unknown one, a malformed key.
        (full[1..].to_vec(), one(), 422, "missing_field"),
        (
            [&[("product_key", "nope")], &full[1..]].concat(),
            one(),
            422,
            "unknown_product",
        ),
        (
            [&[("product_key", "bad key!")], &full[1..]].concat(),
            one(),
            422,
            "invalid_key",
        ),
        (
            [&full[..], &[("color", "red")]].concat(),
            one(),
            422,
            "unknown_field",
        ),
    ];
    for (fields, files, status, code) in cases {
        let got = c.upload(&fields, &files).await;
        assert_error(&got, status, code);
        assert_eq!(
            c.get("/packages").await.1.as_array().unwrap().len(),
            1,
            "{code}: a rejected upload left a package"
        );
        assert_eq!(
            c.stored_files(),
            stored_before,
            "{code}: a rejected upload left a file in the store"
        );
    }
    // The product's refusals say what to do.
    let (_, b) = c.upload(&full[1..], &one()).await;
    let message = b["message"].as_str().unwrap();
    assert!(
        message.contains("product_key") && message.contains("belongs to a product"),
        "{b}"
    );
    let (_, b) = c
        .upload(&[&[("product_key", "nope")], &full[1..]].concat(), &one())
        .await;
    let message = b["message"].as_str().unwrap();
    assert!(
        message.contains("\"nope\"") && message.contains("create it first"),
        "{b}"
    );
    // Not multipart at all.
    assert_error(
        &c.post("/packages", json!({})).await,
        415,
        "unsupported_media_type",
    );

    // Delete: rows and object go.
    let (s, _) = c.delete(&format!("/packages/{id}")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(c.stored_files().is_empty());
    assert_error(&c.get(&format!("/packages/{id}")).await, 404, "not_found");
}

#[tokio::test]
async fn plan_rules_and_rejections() {
    let c = Center::start(&["--no-demo"]);
    c.product("p").await;
    let sota = c.package("p", "SOTA", "full", None, "2.0").await;
    let fota = c.package("p", "FOTA", "full", None, "9").await;
    let ok = plan_body("p", sota);
    let (s, b) = c.post("/plans", ok.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["state"], "draft");
    assert_eq!(b["strategy"]["download_retries"], 3, "defaults apply");

    let with = |patch: Value| {
        let mut v = ok.clone();
        for (k, val) in patch.as_object().unwrap() {
            v[k] = val.clone();
        }
        v
    };
    let rejections = [
        (json!({"time_zone": "Mars/Base"}), 422, "invalid_time_zone"),
        (json!({"time_zone": ""}), 422, "invalid_time_zone"),
        (
            json!({"push_period": {"start": "25:00", "end": "01:00"}}),
            422,
            "invalid_push_period",
        ),
        (
            json!({"push_period": {"start": "08:00", "end": "08:00"}}),
            422,
            "invalid_push_period",
        ),
        (json!({"upgrade_mode": "manual"}), 422, "manual_needs_texts"),
        (
            json!({"upgrade_mode": "manual", "texts": {"zh": "升级"}}),
            422,
            "manual_needs_texts",
        ),
        (json!({"texts": {"english": "x"}}), 422, "invalid_language"),
        (json!({"texts": {"en": " "}}), 422, "invalid_text"),
        (json!({"components": []}), 422, "invalid_components"),
        (
            json!({"components": (0..21).map(|i| json!({"identity": format!("C{i}"), "component_type": "SOTA", "package_id": sota})).collect::<Vec<_>>()}),
            422,
            "invalid_components",
        ),
        (
            json!({"components": [{"identity": "A", "component_type": "SOTA", "package_id": sota}, {"identity": "A", "component_type": "SOTA", "package_id": sota}]}),
            422,
            "duplicate_component",
        ),
        (
            json!({"components": [{"identity": "A", "component_type": "SOTA", "package_id": fota}]}),
            422,
            "component_type_mismatch",
        ),
        (
            json!({"components": [{"identity": "A", "component_type": "SOTA", "package_id": 424242}]}),
            422,
            "unknown_package",
        ),
        (json!({"product_key": "nope"}), 422, "unknown_product"),
        (
            json!({"strategy": {"min_battery_percent": 101, "min_signal_dbm": -100, "space_needed_bytes": 0, "download_retries": 1}}),
            422,
            "invalid_strategy",
        ),
        (
            json!({"strategy": {"min_battery_percent": 10, "min_signal_dbm": 5, "space_needed_bytes": 0, "download_retries": 1}}),
            422,
            "invalid_strategy",
        ),
        (
            json!({"strategy": {"min_battery_percent": 10, "min_signal_dbm": -90, "space_needed_bytes": 0, "download_retries": 11}}),
            422,
            "invalid_strategy",
        ),
        (json!({"whitelist": ["ok", "not ok"]}), 422, "invalid_key"),
        (json!({"upgrade_mode": "loud"}), 422, "invalid_body"),
        (json!({"name": ""}), 422, "invalid_name"),
    ];
    for (patch, status, code) in rejections {
        assert_error(&c.post("/plans", with(patch.clone())).await, status, code);
    }
    assert_eq!(
        c.get("/plans").await.1.as_array().unwrap().len(),
        1,
        "rejected plans are not stored"
    );

    // Accepted variants: window across midnight, manual with zh+en plus an optional language, both lists.
    let (s, b) = c
        .post(
            "/plans",
            with(json!({
                "push_period": {"start": "22:00", "end": "06:00"},
                "upgrade_mode": "manual",
                "texts": {"zh": "升级", "en": "Upgrade", "pt-BR": "Atualizar"},
                "whitelist": ["d1", "d2"], "blacklist": ["d2"],
                "strategy": {"min_battery_percent": 30, "min_signal_dbm": -100, "space_needed_bytes": 65536, "download_retries": 5},
            })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["push_period"], json!({"start": "22:00", "end": "06:00"}));
    assert_eq!(b["texts"]["pt-BR"], "Atualizar");
    assert_eq!(b["whitelist"], json!(["d1", "d2"]));
    assert_eq!(b["blacklist"], json!(["d2"]));
    assert_eq!(b["strategy"]["space_needed_bytes"], 65536);
}

#[tokio::test]
async fn plan_life_cycle_and_freezing() {
    let c = Center::start(&["--no-demo"]);
    c.product("p").await;
    let pkg = c.package("p", "SOTA", "full", None, "2.0").await;
    let (_, b) = c.post("/plans", plan_body("p", pkg)).await;
    let id = b["id"].as_i64().unwrap();
    let plan = |s: &str| format!("/plans/{id}{s}");

    // A draft can be edited, every column of it (another product too).
    c.product("q").await;
    let pkg_q = c.package("q", "SOTA", "full", None, "2.0").await;
    let mut edited = plan_body("q", pkg_q);
    edited["name"] = json!("renamed");
    edited["time_zone"] = json!("Europe/Berlin");
    edited["push_period"] = json!({"start": "01:15", "end": "04:45"});
    edited["upgrade_mode"] = json!("manual");
    edited["texts"] = json!({"zh": "升级", "en": "Upgrade"});
    let strategy = json!({"min_battery_percent": 42, "min_signal_dbm": -77, "space_needed_bytes": 123456, "download_retries": 7});
    edited["strategy"] = strategy.clone();
    let (s, b) = c.put(&plan(""), edited.clone()).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, stored) = c.get(&plan("")).await;
    for (field, want) in [
        ("name", json!("renamed")),
        ("product_key", json!("q")),
        ("time_zone", json!("Europe/Berlin")),
        ("push_period", json!({"start": "01:15", "end": "04:45"})),
        ("upgrade_mode", json!("manual")),
        ("strategy", strategy),
    ] {
        assert_eq!(stored[field], want, "{field} after the edit: {stored}");
    }
    // An edit that breaks a rule is refused and changes nothing.
    let mut bad = edited.clone();
    bad["time_zone"] = json!("Nowhere/Void");
    assert_error(&c.put(&plan(""), bad).await, 422, "invalid_time_zone");
    assert_eq!(c.get(&plan("")).await.1["time_zone"], "Europe/Berlin");

    assert_error(
        &c.post(&plan("/pause"), json!({})).await,
        409,
        "invalid_transition",
    );
    assert_error(
        &c.post(&plan("/finish"), json!({})).await,
        409,
        "invalid_transition",
    );
    assert_eq!(
        c.post(&plan("/activate"), json!({})).await.1["state"],
        "active"
    );
    assert_error(
        &c.post(&plan("/activate"), json!({})).await,
        409,
        "invalid_transition",
    );
    assert_error(&c.put(&plan(""), edited.clone()).await, 409, "plan_frozen");
    assert_error(&c.delete(&plan("")).await, 409, "plan_frozen");
    assert_error(
        &c.delete(&format!("/packages/{pkg_q}")).await,
        409,
        "package_in_use",
    );
    assert_eq!(
        c.post(&plan("/pause"), json!({})).await.1["state"],
        "paused"
    );
    assert_error(&c.put(&plan(""), edited.clone()).await, 409, "plan_frozen");
    assert_error(
        &c.post(&plan("/pause"), json!({})).await,
        409,
        "invalid_transition",
    );
    assert_eq!(
        c.post(&plan("/resume"), json!({})).await.1["state"],
        "active"
    );
    assert_eq!(
        c.post(&plan("/pause"), json!({})).await.1["state"],
        "paused"
    );
    assert_eq!(
        c.post(&plan("/finish"), json!({})).await.1["state"],
        "finished"
    );
    for t in ["/activate", "/pause", "/resume", "/finish"] {
        assert_error(
            &c.post(&plan(t), json!({})).await,
            409,
            "invalid_transition",
        );
    }
    assert_error(&c.put(&plan(""), edited).await, 409, "plan_frozen");
    assert_error(&c.delete(&plan("")).await, 409, "plan_frozen");
    assert_eq!(c.get(&plan("")).await.1["name"], "renamed");

    // A draft can be deleted.
    let (_, b) = c.post("/plans", plan_body("p", pkg)).await;
    let draft = b["id"].as_i64().unwrap();
    assert_eq!(
        c.delete(&format!("/plans/{draft}")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_error(&c.get(&format!("/plans/{draft}")).await, 404, "not_found");
    assert_error(
        &c.post("/plans/77777/activate", json!({})).await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn packages_belong_to_their_product() {
    let c = Center::start(&["--no-demo"]);
    c.product("p").await;
    c.product("q").await;
    let pkg_p = c.package("p", "SOTA", "full", None, "2.0").await;
    let pkg_q = c.package("q", "SOTA", "full", None, "2.0").await;
    let stored = c.stored_files();

    // The product field may follow the files; an unknown one still leaves nothing.
    let upload = |product: &'static str| {
        let form = reqwest::multipart::Form::new()
            .text("name", "late product")
            .text("component_type", "SOTA")
            .text("package_type", "full")
            .text("target_version", "3")
            .part(
                "file",
                reqwest::multipart::Part::bytes(vec![5u8; 100]).file_name("fw.bin"),
            )
            .text("product_key", product);
        c.http
            .post(c.api("/packages"))
            .bearer_auth(&c.token)
            .multipart(form)
            .send()
    };
    let r = upload("nope").await.unwrap();
    let got = (r.status(), r.json::<Value>().await.unwrap());
    assert_error(&got, 422, "unknown_product");
    assert_eq!(c.stored_files(), stored, "a refused upload left a file");
    let r = upload("q").await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let late = r.json::<Value>().await.unwrap();
    assert_eq!(late["product_key"], "q", "{late}");
    let late = late["id"].as_i64().unwrap();

    // Listing by product.
    let ids = |v: Value| -> Vec<i64> {
        v.as_array()
            .unwrap_or_else(|| panic!("not a list: {v}"))
            .iter()
            .map(|p| p["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(ids(c.get("/packages?product=p").await.1), [pkg_p]);
    assert_eq!(ids(c.get("/packages?product=q").await.1), [late, pkg_q]);
    assert_eq!(ids(c.get("/packages").await.1), [late, pkg_q, pkg_p]);
    assert_eq!(c.get("/packages?product=q").await.1[0]["product_key"], "q");
    assert_error(&c.get("/packages?product=nope").await, 404, "not_found");

    // A plan uses only its product's packages: on create and on edit.
    let refused = c.post("/plans", plan_body("q", pkg_p)).await;
    assert_error(&refused, 422, "package_product_mismatch");
    let message = refused.1["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("package {pkg_p} belongs to product \"p\""))
            && message.contains("not to product \"q\""),
        "{message}"
    );
    let mut two = plan_body("q", pkg_q);
    two["components"] = json!([
        {"identity": "STM32", "component_type": "SOTA", "package_id": pkg_q},
        {"identity": "GD32", "component_type": "SOTA", "package_id": pkg_p},
    ]);
    assert_error(
        &c.post("/plans", two).await,
        422,
        "package_product_mismatch",
    );
    let (s, draft) = c.post("/plans", plan_body("p", pkg_p)).await;
    assert_eq!(s, StatusCode::CREATED, "{draft}");
    let draft = draft["id"].as_i64().unwrap();
    let moved = c
        .put(&format!("/plans/{draft}"), plan_body("q", pkg_p))
        .await;
    assert_error(&moved, 422, "package_product_mismatch");
    assert_eq!(
        c.get(&format!("/plans/{draft}")).await.1["product_key"],
        "p"
    );
    let (s, b) = c
        .put(&format!("/plans/{draft}"), plan_body("q", pkg_q))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = c.post(&format!("/plans/{draft}/activate"), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        c.get("/plans").await.1.as_array().unwrap().len(),
        1,
        "refused plans are not stored"
    );

    // A verification job uses only a package of its device's product.
    c.device("q", "d1", json!({"STM32": "1.0"})).await;
    let job = json!({"product_key": "q", "device_key": "d1", "component_identity": "STM32"});
    let refused = c
        .post(&format!("/packages/{pkg_p}/verifications"), job.clone())
        .await;
    assert_error(&refused, 422, "package_product_mismatch");
    let message = refused.1["message"].as_str().unwrap();
    assert!(
        message.contains("\"p\"") && message.contains("\"q\"") && message.contains("\"d1\""),
        "{message}"
    );
    let (s, b) = c
        .post(&format!("/packages/{pkg_q}/verifications"), job)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

async fn offered(c: &Center, device: &str) -> Vec<(i64, String)> {
    let (s, b) = c.get(&format!("/products/p/devices/{device}/offers")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b.as_array()
        .unwrap()
        .iter()
        .flat_map(|o| {
            o["components"]
                .as_array()
                .unwrap()
                .iter()
                .map(|comp| {
                    (
                        o["plan_id"].as_i64().unwrap(),
                        comp["identity"].as_str().unwrap().to_string(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn which_plan_applies_to_which_device() {
    let c = Center::start(&["--no-demo"]);
    c.product("p").await;
    c.product("other").await;
    let full = c.package("p", "SOTA", "full", None, "2.0").await;
    let delta = c.package("p", "FOTA", "delta", Some("A1"), "A2").await;
    for (key, mcu, module) in [
        ("d1", "1.0", "A1"),
        ("d2", "2.0", "A1"),
        ("d3", "1.5", "A0"),
        ("d4", "1.0", "A1"),
        ("d5", "1.0", "A1"),
    ] {
        c.device("p", key, json!({"STM32": mcu, "MOD": module}))
            .await;
    }
    c.device("other", "d1", json!({"STM32": "1.0"})).await;
    let mut body = plan_body("p", full);
    body["components"] = json!([
        {"identity": "STM32", "component_type": "SOTA", "package_id": full},
        {"identity": "MOD", "component_type": "FOTA", "package_id": delta},
    ]);
    body["whitelist"] = json!(["d1", "d2", "d3", "d4"]);
    body["blacklist"] = json!(["d4"]);
    let (_, b) = c.post("/plans", body).await;
    let id = b["id"].as_i64().unwrap();
    assert!(offered(&c, "d1").await.is_empty(), "a draft is not offered");
    c.post(&format!("/plans/{id}/activate"), json!({})).await;

    // Full: any version but the target. Delta: only the source.
    assert_eq!(
        offered(&c, "d1").await,
        vec![(id, "MOD".to_string()), (id, "STM32".to_string())]
    );
    assert_eq!(
        offered(&c, "d2").await,
        vec![(id, "MOD".to_string())],
        "STM32 already at target"
    );
    assert_eq!(
        offered(&c, "d3").await,
        vec![(id, "STM32".to_string())],
        "MOD not at the delta source"
    );
    assert!(
        offered(&c, "d4").await.is_empty(),
        "blacklist wins over whitelist"
    );
    assert!(offered(&c, "d5").await.is_empty(), "not in the whitelist");
    let (_, o) = c.get("/products/other/devices/d1/offers").await;
    assert_eq!(o, json!([]), "another product's device");

    c.post(&format!("/plans/{id}/pause"), json!({})).await;
    assert!(
        offered(&c, "d1").await.is_empty(),
        "a paused plan is not offered"
    );
    c.post(&format!("/plans/{id}/resume"), json!({})).await;
    assert_eq!(offered(&c, "d2").await.len(), 1);
    let (_, o) = c.get("/products/p/devices/d2/offers").await;
    assert_eq!(o[0]["in_push_period"], true, "no push period means always");
    assert_eq!(o[0]["components"][0]["source_version"], "A1");
    assert_eq!(o[0]["components"][0]["package_type"], "delta");
    let (_, full) = c.get("/products/p/devices/d3/offers").await;
    assert_eq!(
        (
            &full[0]["components"][0]["package_type"],
            &full[0]["components"][0]["source_version"]
        ),
        (&json!("full"), &json!("")),
        "a full package has no source version: {full}"
    );
    assert_eq!(o[0]["components"][0]["target_version"], "A2");
    assert!(o[0]["components"][0]["files"][0]["url"]
        .as_str()
        .unwrap()
        .contains("/api/v1/firmware/"));
}

#[tokio::test]
async fn firmware_download_with_range_etag_and_expiry() {
    let c = Center::start(&["--no-demo", "--download-ttl", "2"]);
    c.product("p").await;
    c.device("p", "d1", json!({"STM32": "1"})).await;
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let digests = sota_engine::Digester::digest(&data);
    let (_, b) = c
        .upload(
            &[
                ("product_key", "p"),
                ("name", "n"),
                ("component_type", "SOTA"),
                ("package_type", "full"),
                ("target_version", "2"),
            ],
            &[("fw.bin", data.clone())],
        )
        .await;
    let id = b["id"].as_i64().unwrap();
    let (s, link) = c
        .post(
            &format!("/packages/{id}/files/0/links"),
            json!({"product_key": "p", "device_key": "d1"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{link}");
    let url = link["url"].as_str().unwrap().to_string();
    assert_error(
        &c.post(
            &format!("/packages/{id}/files/3/links"),
            json!({"product_key": "p", "device_key": "d1"}),
        )
        .await,
        404,
        "not_found",
    );
    assert_error(
        &c.post(
            &format!("/packages/{id}/files/0/links"),
            json!({"product_key": "p", "device_key": "ghost"}),
        )
        .await,
        404,
        "not_found",
    );
    // A device of another product gets no link to this product's package.
    c.product("q").await;
    c.device("q", "d9", json!({"STM32": "1"})).await;
    assert_error(
        &c.post(
            &format!("/packages/{id}/files/0/links"),
            json!({"product_key": "q", "device_key": "d9"}),
        )
        .await,
        422,
        "package_product_mismatch",
    );

    // No operator token needed: the link is the credential.
    let r = c.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let etag = r.headers()[header::ETAG].to_str().unwrap().to_string();
    assert_eq!(etag, format!("\"{}\"", digests.sha256));
    assert_eq!(r.headers()[header::CONTENT_LENGTH], "200000");
    assert_eq!(r.headers()[header::ACCEPT_RANGES], "bytes");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[..]);

    let r = c
        .http
        .get(&url)
        .header(header::RANGE, "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()[header::CONTENT_RANGE], "bytes 1000-1999/200000");
    assert_eq!(r.headers()[header::CONTENT_LENGTH], "1000");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[1000..2000]);

    // Resume from an offset with the matching If-Range.
    let r = c
        .http
        .get(&url)
        .header(header::RANGE, "bytes=150000-")
        .header(header::IF_RANGE, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &data[150000..]);
    // A stale If-Range gets the whole file.
    let r = c
        .http
        .get(&url)
        .header(header::RANGE, "bytes=150000-")
        .header(header::IF_RANGE, "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .http
        .get(&url)
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = c
        .http
        .get(&url)
        .header(header::RANGE, "bytes=300000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()[header::CONTENT_RANGE], "bytes */200000");
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "range_not_satisfiable"
    );

    // Tampered and expired links.
    let tampered = url.replace(
        &format!("/firmware/{id}."),
        &format!("/firmware/{}.", id + 1),
    );
    let r = c.http.get(&tampered).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_link");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = c.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 410);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "link_expired");
}

#[tokio::test]
async fn verification_jobs() {
    let c = Center::start(&["--no-demo"]);
    c.product("p").await;
    c.device("p", "d1", json!({"STM32": "1.0"})).await;
    let delta = c.package("p", "SOTA", "delta", Some("0.9"), "1.1").await;
    let full = c.package("p", "SOTA", "full", None, "1.1").await;
    let req = |dev: &str, comp: &str| json!({"product_key": "p", "device_key": dev, "component_identity": comp});
    let path = format!("/packages/{full}/verifications");
    assert_error(
        &c.post(&path, req("ghost", "STM32")).await,
        422,
        "unknown_device",
    );
    assert_error(
        &c.post(&path, req("d1", "ESP32")).await,
        422,
        "unknown_component",
    );
    assert_error(
        &c.post(
            &format!("/packages/{delta}/verifications"),
            req("d1", "STM32"),
        )
        .await,
        422,
        "version_mismatch",
    );
    assert_error(
        &c.post("/packages/999/verifications", req("d1", "STM32"))
            .await,
        404,
        "not_found",
    );

    let (s, v) = c.post(&path, req("d1", "STM32")).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["outcome"], "pending");
    let vid = v["id"].as_i64().unwrap();
    c.post(
        &format!("/verifications/{vid}/log"),
        json!({"message": "downloaded 100%"}),
    )
    .await;
    let (s, v) = c
        .post(
            &format!("/verifications/{vid}/outcome"),
            json!({"outcome": "succeeded", "message": "reported 1.1"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["outcome"], "succeeded");
    assert!(v["finished_at"].is_string());
    assert_error(
        &c.post(
            &format!("/verifications/{vid}/outcome"),
            json!({"outcome": "failed", "message": "x"}),
        )
        .await,
        409,
        "verification_finished",
    );
    assert_error(
        &c.post(
            &format!("/verifications/{vid}/log"),
            json!({"message": "late"}),
        )
        .await,
        409,
        "verification_finished",
    );
    assert_error(
        &c.post(
            &format!("/verifications/{vid}/outcome"),
            json!({"outcome": "pending", "message": "x"}),
        )
        .await,
        422,
        "invalid_outcome",
    );

    let (_, details) = c.get(&path).await;
    let log: Vec<&str> = details[0]["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(log.len(), 3);
    assert!(log[0].contains("1.0") && log[1] == "downloaded 100%" && log[2].contains("succeeded"));
}

#[tokio::test]
async fn demo_data_seeded_once_and_downloadable() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Center::start_in(dir.path(), &[]);
    let banner = c.startup.join("\n");
    assert!(banner.contains("DEMO DATA"), "{banner}");
    let line = banner
        .lines()
        .find(|l| l.contains("/firmware/"))
        .expect("demo link in the banner");
    let url = line[line.find("http://").expect("url")..]
        .trim()
        .to_string();
    let (_, products) = c.get("/products").await;
    assert_eq!(products[0]["product_key"], "demo-product");
    assert_eq!(products[0]["demo"], true);
    let (_, plans) = c.get("/plans").await;
    assert_eq!(plans[0]["state"], "active");
    assert_eq!(plans[0]["demo"], true);
    assert!(plans[0]["name"].as_str().unwrap().contains("demo data"));
    let (_, pkgs) = c.get("/packages").await;
    assert_eq!(pkgs[0]["product_key"], "demo-product", "{pkgs}");
    assert_eq!(c.get("/packages?product=demo-product").await.1, pkgs);
    let r = c.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.bytes().await.unwrap();
    assert_eq!(
        sota_engine::Digester::digest(&body).sha256,
        pkgs[0]["files"][0]["sha256"].as_str().unwrap()
    );
    assert_eq!(offered_demo(&c, "demo-device-1").await, 1);
    assert_eq!(offered_demo(&c, "demo-device-2").await, 0, "blacklisted");
    assert_eq!(
        offered_demo(&c, "demo-device-3").await,
        0,
        "already at target"
    );
    c.kill();

    let c2 = Center::start_in(dir.path(), &[]);
    assert!(
        !c2.startup.join("\n").contains("DEMO DATA"),
        "seeded only on first start"
    );
    assert!(
        c2.startup.join("\n").contains("/firmware/"),
        "the demo link is printed at every start"
    );
    assert_eq!(c2.get("/plans").await.1.as_array().unwrap().len(), 1);
}

async fn offered_demo(c: &Center, device: &str) -> usize {
    c.get(&format!("/products/demo-product/devices/{device}/offers"))
        .await
        .1
        .as_array()
        .unwrap()
        .len()
}
