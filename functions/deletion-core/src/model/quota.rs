//! A workspace's quotas (calls of the regulations API a minute, subjects
//! named by regulations a month) and what it used, as the ledger keeps
//! them.
//!
//! Invariants: a window is named by its start (the minute, the UTC month),
//! so a counter of an earlier window never counts for a later one; a
//! quota is whole and positive, bounded so a counter never overflows.

use chrono::{DateTime, Datelike, Duration, DurationRound, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::ids::WorkspaceId;

/// Segment's: 600 calls a minute per workspace.
pub const DEFAULT_REQUESTS_PER_MINUTE: u32 = 600;
/// Segment's: 110,000 subjects a month per workspace.
pub const DEFAULT_SUBJECTS_PER_MONTH: u64 = 110_000;
/// The largest quotas one may set.
pub const MAX_REQUESTS_PER_MINUTE: u32 = 1_000_000;
pub const MAX_SUBJECTS_PER_MONTH: u64 = 1_000_000_000;

/// The limits a workspace is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub requests_per_minute: u32,
    pub subjects_per_month: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            requests_per_minute: DEFAULT_REQUESTS_PER_MINUTE,
            subjects_per_month: DEFAULT_SUBJECTS_PER_MONTH,
        }
    }
}

impl Limits {
    /// Checks both are within 1 and their maximum.
    pub fn checked(self) -> Result<Limits, InputError> {
        if !(1..=MAX_REQUESTS_PER_MINUTE).contains(&self.requests_per_minute) {
            return Err(InputError::InvalidBody(format!(
                "requests_per_minute must be from 1 to {MAX_REQUESTS_PER_MINUTE} (got {})",
                self.requests_per_minute
            )));
        }
        if !(1..=MAX_SUBJECTS_PER_MONTH).contains(&self.subjects_per_month) {
            return Err(InputError::InvalidBody(format!(
                "subjects_per_month must be from 1 to {MAX_SUBJECTS_PER_MONTH} (got {})",
                self.subjects_per_month
            )));
        }
        Ok(self)
    }
}

/// An operator's quotas for one workspace (the defaults hold without one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    pub workspace: WorkspaceId,
    pub limits: Limits,
    pub set_by: String,
    pub set_at: DateTime<Utc>,
    /// Bumped by every write; every write is conditional on it.
    pub version: u64,
}

/// A workspace's use of one month.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonthUsage {
    pub regulations: u64,
    pub subjects: u64,
}

/// The minute `now` is in.
pub fn minute_of(now: DateTime<Utc>) -> DateTime<Utc> {
    now.duration_trunc(Duration::minutes(1)).unwrap_or(now)
}

/// The UTC month `now` is in (`2026-12`), and when the next one starts.
pub fn month_of(now: DateTime<Utc>) -> (String, DateTime<Utc>) {
    let (year, month) = (now.year(), now.month());
    let (next_year, next_month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    let next = Utc
        .with_ymd_and_hms(next_year, next_month, 1, 0, 0, 0)
        .single()
        .unwrap_or(now);
    (format!("{year:04}-{month:02}"), next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn windows_are_named_by_their_start() {
        assert_eq!(minute_of(at("2026-12-04T19:03:59.999Z")), at("2026-12-04T19:03:00Z"));
        assert_eq!(
            month_of(at("2026-12-31T23:59:59Z")),
            ("2026-12".into(), at("2027-01-01T00:00:00Z"))
        );
        assert_eq!(
            month_of(at("2026-02-01T00:00:00Z")),
            ("2026-02".into(), at("2026-03-01T00:00:00Z"))
        );
    }

    #[test]
    fn limits_are_bounded() {
        assert!(Limits::default().checked().is_ok());
        let zero = Limits {
            requests_per_minute: 0,
            ..Limits::default()
        };
        assert!(zero.checked().unwrap_err().to_string().contains("requests_per_minute"));
        let huge = Limits {
            subjects_per_month: MAX_SUBJECTS_PER_MONTH + 1,
            ..Limits::default()
        };
        assert!(huge.checked().unwrap_err().to_string().contains("subjects_per_month"));
    }
}
