//! Centers sharing one database push each 10-minute cycle once: two connection pools on one
//! database stand for two `sota-center serve` processes.

mod common;

use jiff::Timestamp;
use sota_center::channel::push::claim;

#[tokio::test]
async fn each_cycle_is_claimed_by_one_center_and_the_next_is_free_again() {
    let dir = tempfile::tempdir().unwrap();
    let a = common::open_db(dir.path()).await;
    let b = common::open_db(dir.path()).await;
    let tick: Timestamp = "2026-11-27T10:00:00Z".parse().unwrap();

    // Both race for the same cycle, several times over: one wins, once.
    let mut racers = Vec::new();
    for i in 0..8 {
        let pool = if i % 2 == 0 { a.clone() } else { b.clone() };
        racers.push(tokio::spawn(async move {
            claim(&pool, tick, &format!("center-{}", i % 2))
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for r in racers {
        won += usize::from(r.await.unwrap());
    }
    assert_eq!(won, 1, "exactly one claim of a cycle succeeds");

    // The center that ran it "dies" (its pool closes): the next cycle is claimed by the other.
    a.close().await;
    let next: Timestamp = "2026-11-27T10:10:00Z".parse().unwrap();
    assert!(claim(&b, next, "center-1").await.unwrap());
    assert!(!claim(&b, next, "center-1").await.unwrap(), "and only once");
}

#[tokio::test]
async fn claims_older_than_a_day_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let pool = common::open_db(dir.path()).await;
    sqlx::query("INSERT INTO push_cycles (tick, instance, claimed_at) VALUES ('2020-01-01T00:00:00Z', 'old', '2020-01-01T00:00:01Z')")
        .execute(&pool)
        .await
        .unwrap();
    let now = Timestamp::now();
    assert!(claim(&pool, now, "new").await.unwrap());
    let left: Vec<(String,)> = sqlx::query_as("SELECT instance FROM push_cycles")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(left, [("new".to_string(),)]);
}
