//! Group commit for the channel's writes.
//!
//! SQLite takes one writer at a time, and every commit waits for the disk
//! (`synchronous=FULL`): one transaction per device message caps the channel
//! at a few hundred messages a second however many lanes handle them, and
//! a connection that finds the database locked sleeps (1, 2, 5, 10 … ms)
//! before it tries again. So the device lanes (and the broker's login
//! hook) hand their writes to one writer task instead: it takes every write
//! waiting, runs them in order in one transaction (each in its own savepoint,
//! so one failing write leaves the others), commits once, and only then tells
//! each caller its result. Durability is the same as a transaction per write:
//! no caller hears "done" before its write is on disk.

use futures::future::BoxFuture;
use sqlx::{AnyConnection, AnyPool};
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;

/// Most writes in one transaction.
const BATCH: usize = 512;

/// Tells a caller its write's result once the commit's outcome is known.
type Deliver = Box<dyn FnOnce(Result<(), ApiError>) + Send>;
/// One write: runs on the writer's connection inside the batch's transaction;
/// says whether it succeeded, and how to deliver its result.
type Job = Box<dyn for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, (bool, Deliver)> + Send>;

/// The handle callers write through.
#[derive(Debug, Clone)]
pub struct Writes {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Writes {
    /// Start the writer task on `pool`.
    pub fn start(pool: AnyPool) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(writer(pool, rx));
        Self { jobs }
    }

    /// Run `write` in the next group commit; its result once committed.
    pub async fn run<T, F>(&self, write: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, ApiError>>
            + Send
            + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T, ApiError>>();
        self.queue(write, move |result| {
            let _ = tx.send(result);
        });
        rx.await.map_err(|_| {
            ApiError::internal(
                "the write was not done (the database refused the batch; see the center's log)",
            )
        })?
    }

    /// Queue `write` now, behind every write queued before it, without waiting:
    /// `done` hears its result once committed — or an error if it never runs.
    pub fn queue<T, F>(&self, write: F, done: impl FnOnce(Result<T, ApiError>) + Send + 'static)
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, ApiError>>
            + Send
            + 'static,
    {
        let done = Once(Some(done), std::marker::PhantomData);
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let result = write(conn).await;
                let ok = result.is_ok();
                let deliver: Deliver = Box::new(move |commit: Result<(), ApiError>| {
                    done.call(commit.and(result));
                });
                (ok, deliver)
            })
        });
        // A stopped writer drops the job, and with it `done`, which reports that.
        let _ = self.jobs.send(job);
    }
}

/// A result callback that is called exactly once: with the result, or with
/// "not done" when it is dropped uncalled (a write skipped or never run).
struct Once<T, F: FnOnce(Result<T, ApiError>)>(Option<F>, std::marker::PhantomData<fn(T)>);

impl<T, F: FnOnce(Result<T, ApiError>)> Once<T, F> {
    fn call(mut self, result: Result<T, ApiError>) {
        if let Some(f) = self.0.take() {
            f(result);
        }
    }
}

impl<T, F: FnOnce(Result<T, ApiError>)> Drop for Once<T, F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f(Err(ApiError::internal(
                "the write was not done (the database refused the batch, or the writer stopped; see the center's log)",
            )));
        }
    }
}

async fn exec(conn: &mut AnyConnection, sql: &str) -> Result<(), ApiError> {
    sqlx::query(sql).execute(&mut *conn).await?;
    Ok(())
}

/// Take what waits, write it in one transaction, tell everyone; until the senders are gone.
async fn writer(pool: AnyPool, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let mut conn = match pool.acquire().await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("{} channel writes not done: {e}", jobs.len());
                continue;
            }
        };
        let mut began = Ok(());
        for sql in crate::db::write_begin(&conn) {
            began = exec(&mut conn, sql).await;
            if began.is_err() {
                break;
            }
        }
        if let Err(e) = began {
            tracing::error!("{} channel writes not done: {}", jobs.len(), e.message);
            let _ = exec(&mut conn, "ROLLBACK").await;
            continue;
        }
        let mut delivers = Vec::with_capacity(jobs.len());
        let mut broken = None;
        for job in jobs {
            if broken.is_some() {
                delivers.push((false, skipped(job)));
                continue;
            }
            if let Err(e) = exec(&mut conn, "SAVEPOINT one").await {
                broken = Some(e);
                delivers.push((false, skipped(job)));
                continue;
            }
            let (ok, deliver) = job(&mut conn).await;
            let end = if ok {
                exec(&mut conn, "RELEASE one").await
            } else {
                match exec(&mut conn, "ROLLBACK TO one").await {
                    Ok(()) => exec(&mut conn, "RELEASE one").await,
                    Err(e) => Err(e),
                }
            };
            if let Err(e) = end {
                broken = Some(e);
            }
            delivers.push((ok, deliver));
        }
        let commit = match broken {
            None => exec(&mut conn, "COMMIT").await,
            Some(e) => {
                let _ = exec(&mut conn, "ROLLBACK").await;
                Err(e)
            }
        };
        if let Err(e) = &commit {
            tracing::error!(
                "a group commit of {} channel writes failed: {}",
                delivers.len(),
                e.message
            );
        }
        for (_, deliver) in delivers {
            deliver(commit.clone());
        }
    }
}

/// A job that cannot run, `e` logged: its caller hears the write did not happen.
fn skipped(job: Job) -> Deliver {
    drop(job);
    Box::new(|_| {})
}
