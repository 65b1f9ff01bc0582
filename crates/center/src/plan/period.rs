//! The push period: a daily window in the plan's time zone, possibly crossing
//! midnight (e.g. 22:00–06:00).

use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;

/// A daily window, `HH:MM` start (inclusive) to `HH:MM` end (exclusive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushPeriod {
    /// Start, `HH:MM` in the plan's time zone.
    #[schema(example = "22:00")]
    pub start: String,
    /// End, `HH:MM`; earlier than start means the window crosses midnight.
    #[schema(example = "06:00")]
    pub end: String,
}

/// Look up an IANA time zone name, e.g. `Asia/Shanghai`.
pub fn time_zone(name: &str) -> Result<TimeZone, ApiError> {
    if name.is_empty() || name.len() > 64 {
        return Err(ApiError::invalid(
            "invalid_time_zone",
            "time_zone is required: an IANA name such as \"Asia/Shanghai\"",
        ));
    }
    TimeZone::get(name).map_err(|_| {
        ApiError::invalid(
            "invalid_time_zone",
            format!("time_zone {name:?} is not an IANA time zone name; use one like \"Asia/Shanghai\" or \"Europe/Berlin\""),
        )
    })
}

fn parse_hhmm(what: &str, s: &str) -> Result<Time, ApiError> {
    let bad = || {
        ApiError::invalid(
            "invalid_push_period",
            format!("push_period.{what} {s:?} is not a time: use HH:MM, 00:00 to 23:59"),
        )
    };
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: i8 = h.parse().map_err(|_| bad())?;
    let m: i8 = m.parse().map_err(|_| bad())?;
    Time::new(h, m, 0, 0).map_err(|_| bad())
}

impl PushPeriod {
    /// Check both ends parse and differ.
    pub fn check(&self) -> Result<(Time, Time), ApiError> {
        let start = parse_hhmm("start", &self.start)?;
        let end = parse_hhmm("end", &self.end)?;
        if start == end {
            return Err(ApiError::invalid(
                "invalid_push_period",
                "push_period start and end are equal; for pushing all day leave push_period out",
            ));
        }
        Ok((start, end))
    }

    /// Whether `now` falls in the window, seen in `tz`.
    pub fn contains(&self, tz: &TimeZone, now: Timestamp) -> Result<bool, ApiError> {
        let (start, end) = self.check()?;
        let t = now.to_zoned(tz.clone()).time();
        Ok(if start < end {
            start <= t && t < end
        } else {
            t >= start || t < end
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn window_crossing_midnight_in_its_zone() {
        let tz = time_zone("Asia/Shanghai").unwrap(); // UTC+8
        let p = PushPeriod {
            start: "22:00".into(),
            end: "06:00".into(),
        };
        assert!(p.contains(&tz, at("2026-01-01T14:30:00Z")).unwrap()); // 22:30 local
        assert!(p.contains(&tz, at("2026-01-01T21:59:00Z")).unwrap()); // 05:59 local
        assert!(!p.contains(&tz, at("2026-01-01T22:00:00Z")).unwrap()); // 06:00 local
        assert!(!p.contains(&tz, at("2026-01-01T04:00:00Z")).unwrap()); // 12:00 local
    }

    #[test]
    fn window_within_a_day() {
        let tz = time_zone("UTC").unwrap();
        let p = PushPeriod {
            start: "09:00".into(),
            end: "17:00".into(),
        };
        assert!(p.contains(&tz, at("2026-01-01T09:00:00Z")).unwrap());
        assert!(!p.contains(&tz, at("2026-01-01T17:00:00Z")).unwrap());
        assert!(!p.contains(&tz, at("2026-01-01T08:59:00Z")).unwrap());
    }

    #[test]
    fn rejects_bad_times_and_zones() {
        for (s, e) in [
            ("24:00", "01:00"),
            ("9:00", "10:00"),
            ("10:00", "10:00"),
            ("aa:bb", "01:00"),
        ] {
            let p = PushPeriod {
                start: s.into(),
                end: e.into(),
            };
            assert_eq!(
                p.check().unwrap_err().code,
                "invalid_push_period",
                "{s}-{e}"
            );
        }
        assert!(time_zone("Mars/Olympus").is_err());
        assert!(time_zone("").is_err());
    }
}
