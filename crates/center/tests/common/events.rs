//! A center's server-sent event streams as a test reads them (`events.rs`, `instances.rs`).

use std::collections::VecDeque;

use futures::StreamExt;
use sota_api::events::{EventStream, PlanEvent};
use sota_api::verification::Verification;
use tokio::time::timeout;

use super::mqtt::WAIT;
use super::Center;

/// An open event stream: its events' data, in order.
pub struct Events {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    split: EventStream,
    ready: VecDeque<String>,
}

impl Events {
    /// `GET path` on `center` with its token: a 200 `text/event-stream`.
    pub async fn open(center: &Center, path: &str) -> Events {
        let response = center
            .http
            .get(center.api(path))
            .bearer_auth(&center.token)
            .send()
            .await
            .expect("GET the event stream");
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "{path}"
        );
        Events {
            body: response.bytes_stream().boxed(),
            split: EventStream::default(),
            ready: Default::default(),
        }
    }

    /// The next event's data; `None` when the stream ended.
    pub async fn next(&mut self) -> Option<String> {
        loop {
            if let Some(data) = self.ready.pop_front() {
                return Some(data);
            }
            let chunk = timeout(WAIT, self.body.next())
                .await
                .expect("no event within the wait")?
                .expect("the stream broke");
            self.ready
                .extend(self.split.push(&chunk).expect("a well-formed stream"));
        }
    }

    /// The next event of a plan's stream.
    pub async fn plan_event(&mut self) -> PlanEvent {
        let data = self.next().await.expect("the plan's stream ended");
        serde_json::from_str(&data).unwrap_or_else(|e| panic!("not a PlanEvent ({e}): {data}"))
    }

    /// The next event of a verification job's stream; `None` when it ended.
    pub async fn job(&mut self) -> Option<Verification> {
        let data = self.next().await?;
        Some(
            serde_json::from_str(&data)
                .unwrap_or_else(|e| panic!("not a Verification ({e}): {data}")),
        )
    }
}
