//! Several centers on one database and one store: the sweep of pending uploads removes only what
//! centers that are gone left, never an upload another running center is still writing.
//!
//! Two instances live in this one test process, each with its own liveness lock (a locked file
//! of its own for SQLite, an advisory lock on a connection of its own for PostgreSQL): they
//! conflict as two processes' would. Dropping an instance is its death. On SQLite, or on
//! PostgreSQL with `SOTA_TEST_DATABASE=postgres`.

mod common;

use sota_center::instance::Instance;
use sota_center::package::{self, FileWriter};
use sota_center::store::FirmwareStore;
use sqlx::Row;

async fn pending(pool: &sota_center::db::Pool) -> Vec<(String, Option<String>)> {
    sqlx::query("SELECT object_key, owner FROM pending_uploads ORDER BY object_key")
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("object_key"), r.get("owner")))
        .collect()
}

#[tokio::test]
async fn a_running_centers_upload_survives_the_sweep_until_that_center_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let pool = common::open_db(dir.path()).await;
    let root = dir.path().join("firmware");
    let store = FirmwareStore::open(root.to_str().unwrap()).unwrap();
    let a = Instance::start(&pool).await.unwrap();
    let b = Instance::start(&pool).await.unwrap();
    assert_ne!(a.id(), b.id());

    // A row of a version before owners were recorded, and its leftover object.
    let old = "packages/00112233445566778899aabbccddeeff/0badc0de";
    std::fs::create_dir_all(root.join(old).parent().unwrap()).unwrap();
    std::fs::write(root.join(old), b"left by an older center").unwrap();
    sqlx::query("INSERT INTO pending_uploads (object_key, created_at) VALUES ($1, $2)")
        .bind(old)
        .bind(sota_center::now_text())
        .execute(&pool)
        .await
        .unwrap();
    // A writes an upload, and so does B.
    let mut wa = FileWriter::start(&pool, &store, &a, "a.bin", 1 << 20)
        .await
        .unwrap();
    wa.write(&[1u8; 1000]).await.unwrap();
    let mut wb = FileWriter::start(&pool, &store, &b, "b.bin", 1 << 20)
        .await
        .unwrap();
    wb.write(&[2u8; 1000]).await.unwrap();
    let in_progress = common::files_under(&root);
    assert_eq!(in_progress.len(), 3, "{in_progress:?}");
    let rows = pending(&pool).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.contains(&(old.to_string(), None)));
    assert_eq!(
        rows.iter()
            .filter(|(_, o)| o.as_deref() == Some(a.id()))
            .count(),
        1
    );

    // B sweeps while A runs: only the ownerless leftovers go.
    let removed = package::sweep_pending(&pool, &store, &b).await.unwrap();
    assert_eq!(removed, 1);
    assert!(!root.join(old).exists());
    let a_rows: Vec<_> = pending(&pool)
        .await
        .into_iter()
        .filter(|(_, o)| o.as_deref() == Some(a.id()))
        .collect();
    assert_eq!(a_rows.len(), 1, "A's row stays");
    let left = common::files_under(&root);
    assert_eq!(
        left.len(),
        2,
        "A's and B's uploads in progress stay: {left:?}"
    );

    // A sweeps too: B's upload stays as well.
    assert_eq!(package::sweep_pending(&pool, &store, &a).await.unwrap(), 0);
    assert_eq!(common::files_under(&root), left);
    assert_eq!(pending(&pool).await.len(), 2);

    // A dies mid-upload (nothing of its upload is cleaned up by A).
    std::mem::forget(wa);
    let a_id = a.id().to_string();
    drop(a);

    // Its lock is gone with it: at once for a file, once the server has seen the connection
    // close for PostgreSQL (milliseconds).
    let mut removed = 0;
    for _ in 0..50 {
        removed = package::sweep_pending(&pool, &store, &b).await.unwrap();
        if removed > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(removed, 1, "A's staged bytes");
    let rows = pending(&pool).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].1.as_deref(), Some(b.id()), "only B's row is left");
    assert!(!rows
        .iter()
        .any(|(_, o)| o.as_deref() == Some(a_id.as_str())));
    assert_eq!(common::files_under(&root).len(), 1, "B's upload goes on");

    // B's upload completes and commits untouched.
    let file = wb.finish(0).await.unwrap();
    assert!(root.join(&file.object_key).exists());
}
