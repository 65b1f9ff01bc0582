//! The storage adapter in a real browser (IndexedDB): images appended in chunks read back
//! across chunk boundaries, kept across a reopen (a reload), refused out of order, discarded;
//! named records.
#![cfg(target_arch = "wasm32")]

use sota_console::adapters::storage::{Storage, MAX_CHUNK};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[wasm_bindgen_test]
async fn an_image_appended_in_chunks_reads_back_across_boundaries_and_survives_a_reopen() {
    let image = "test-image-a";
    let whole = bytes(200_000, 3);
    {
        let s = Storage::open().await.unwrap();
        s.discard(image).await.unwrap();
        assert_eq!(s.stored(image).await.unwrap(), 0);
        let mut at = 0;
        for len in [65_536usize, 1, 70_000, 64_463] {
            s.append(image, at as u64, &whole[at..at + len])
                .await
                .unwrap();
            at += len;
        }
        assert_eq!(at, whole.len());
        // Out of order: refused, and nothing changes.
        let e = s.append(image, 5, b"xyz").await.unwrap_err();
        assert!(e.contains("append at 5, but 200000 bytes"), "{e}");
    }
    // A new connection (what a reload opens) sees the same image.
    let s = Storage::open().await.unwrap();
    assert_eq!(s.stored(image).await.unwrap(), whole.len() as u64);
    for (offset, len) in [
        (0u64, 10u64),
        (65_530, 12),
        (65_536, 1),
        (65_537, 70_000),
        (199_990, 10),
        (0, 200_000),
    ] {
        let got = s.read(image, offset, len).await.unwrap();
        assert!(
            got == whole[offset as usize..(offset + len) as usize],
            "bytes {offset}+{len} differ"
        );
    }
    let e = s.read(image, 199_999, 2).await.unwrap_err();
    assert!(e.contains("200000 stored"), "{e}");
    let e = s
        .append(image, 200_000, &vec![0; MAX_CHUNK as usize + 1])
        .await
        .unwrap_err();
    assert!(e.contains("limit"), "{e}");
    s.discard(image).await.unwrap();
    assert_eq!(s.stored(image).await.unwrap(), 0);
    assert!(s.read(image, 0, 1).await.is_err());
}

#[wasm_bindgen_test]
async fn images_are_kept_apart_and_records_round_trip() {
    let s = Storage::open().await.unwrap();
    for name in ["img-x", "img-y"] {
        s.discard(name).await.unwrap();
    }
    s.append("img-x", 0, b"xxxx").await.unwrap();
    s.append("img-y", 0, b"yy").await.unwrap();
    assert_eq!(s.read("img-x", 0, 4).await.unwrap(), b"xxxx");
    assert_eq!(s.read("img-y", 0, 2).await.unwrap(), b"yy");
    s.discard("img-x").await.unwrap();
    assert_eq!(s.read("img-y", 0, 2).await.unwrap(), b"yy");

    s.delete_record("session").await.unwrap();
    assert_eq!(s.record("session").await.unwrap(), None);
    s.put_record("session", "{\"a\":1}").await.unwrap();
    assert_eq!(
        s.record("session").await.unwrap().as_deref(),
        Some("{\"a\":1}")
    );
    s.delete_record("session").await.unwrap();
    assert_eq!(s.record("session").await.unwrap(), None);
}

#[wasm_bindgen_test]
async fn an_appender_writes_whole_pieces_and_the_rest_on_flush() {
    use sota_console::adapters::storage::Appender;
    let image = "test-image-appender";
    let whole = bytes(3 * MAX_CHUNK as usize + 5_000, 9);
    let s = Storage::open().await.unwrap();
    s.discard(image).await.unwrap();
    let mut a = Appender::new(s.clone(), image, 0);
    for piece in whole.chunks(65_536) {
        a.push(piece).await.unwrap();
    }
    assert_eq!(a.end(), whole.len() as u64);
    // Whole pieces are written as they fill, one at a time while the next one fills: before
    // the flush the last full piece may still be on its way; the tail waits for the flush.
    let before = s.stored(image).await.unwrap();
    assert!(
        before == 2 * MAX_CHUNK || before == 3 * MAX_CHUNK,
        "{before} written before the flush"
    );
    a.flush().await.unwrap();
    assert_eq!(s.stored(image).await.unwrap(), whole.len() as u64);
    assert!(s.read(image, 0, whole.len() as u64).await.unwrap() == whole);
    // A chunk of a full piece or more goes straight through, after what is held.
    let mut b = Appender::new(s.clone(), image, whole.len() as u64);
    b.push(&[1, 2, 3]).await.unwrap();
    b.push(&bytes(MAX_CHUNK as usize, 4)).await.unwrap();
    b.flush().await.unwrap();
    assert_eq!(
        s.stored(image).await.unwrap(),
        whole.len() as u64 + 3 + MAX_CHUNK
    );
    // A write that fails (here: not at the stored end) is reported by the next flush.
    let mut c = Appender::new(s.clone(), image, 7);
    c.push(&bytes(MAX_CHUNK as usize, 5)).await.unwrap();
    let e = c.flush().await.unwrap_err();
    assert!(e.contains("append at 7"), "{e}");
    s.discard(image).await.unwrap();
}
