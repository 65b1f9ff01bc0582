//! The push period: a daily window in the plan's time zone, possibly crossing
//! midnight (e.g. 22:00–06:00). Its type and rules are the API's (`sota-api`).

pub use sota_api::plan::{time_zone, PushPeriod};
