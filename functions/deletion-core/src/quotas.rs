//! Quotas of the regulations API: calls per minute per workspace, and
//! subjects named by regulations per UTC month per workspace.
//!
//! Invariants:
//! - A call over the minute's limit, or a regulation that would pass the
//!   month's, is refused with nothing written but the refusal itself (the
//!   minute's counter is not raised by a refused call; the month's is not
//!   raised at all).
//! - A regulation reserves its subjects before it is created and gives
//!   them back when no new regulation came of the create (the same one
//!   already under way, or a failure): the month counts what was created,
//!   or more when a create stopped between the two (never less).
//! - The quotas an operator set for a workspace hold; without them, the
//!   deployment's defaults.

use chrono::{DateTime, Duration, Utc};
use tracing::warn;

use crate::error::ServiceError;
use crate::ids::WorkspaceId;
use crate::model::quota::{minute_of, month_of, Limits, MonthUsage, Quota};
use crate::ports::QuotaLedger;
use crate::retry::retry_on_conflict;

/// A call let through: the minute's limit, what is left of it, and when it
/// renews.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    pub limit: u32,
    pub remaining: u32,
    pub reset_at: DateTime<Utc>,
}

/// What a workspace used, against its quotas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub limits: Limits,
    /// Whether an operator set them (else the deployment's defaults).
    pub custom: Option<Quota>,
    /// The UTC month (`2026-12`), and what it used.
    pub month: String,
    pub used: MonthUsage,
    pub month_resets_at: DateTime<Utc>,
    pub calls_this_minute: u32,
    pub minute_resets_at: DateTime<Utc>,
}

/// Whole seconds from `now` until `at`, rounded up (at least one): what
/// `Retry-After` and `RateLimit-Reset` say.
pub fn seconds_until(now: DateTime<Utc>, at: DateTime<Utc>) -> u64 {
    let millis = (at - now).num_milliseconds().max(0) as u64;
    millis.div_ceil(1000).max(1)
}

/// The quotas a workspace is held to.
pub async fn limits<Q: QuotaLedger + ?Sized>(
    ledger: &Q,
    defaults: Limits,
    workspace: &WorkspaceId,
) -> Result<(Limits, Option<Quota>), ServiceError> {
    let stored = ledger.quota(workspace).await?;
    Ok((stored.as_ref().map_or(defaults, |q| q.limits), stored))
}

/// Counts one call of the workspace, or refuses it (`RateLimited`).
pub async fn admit<Q: QuotaLedger + ?Sized>(
    ledger: &Q,
    defaults: Limits,
    workspace: &WorkspaceId,
    now: DateTime<Utc>,
) -> Result<Admitted, ServiceError> {
    let (limits, _) = limits(ledger, defaults, workspace).await?;
    let limit = limits.requests_per_minute;
    let minute = minute_of(now);
    let reset_at = minute + Duration::minutes(1);
    match ledger.count_call(workspace, minute, limit).await? {
        Some(count) => Ok(Admitted {
            limit,
            remaining: limit.saturating_sub(count),
            reset_at,
        }),
        None => Err(ServiceError::RateLimited {
            workspace: workspace.to_string(),
            limit,
            retry_after_s: seconds_until(now, reset_at),
        }),
    }
}

/// A month's reservation of subjects, to give back if no regulation came
/// of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub workspace: WorkspaceId,
    pub month: String,
    pub subjects: u64,
}

/// Reserves `subjects` of the workspace's month, or refuses the whole
/// regulation (`QuotaExceeded`).
pub async fn reserve<Q: QuotaLedger + ?Sized>(
    ledger: &Q,
    defaults: Limits,
    workspace: &WorkspaceId,
    subjects: u64,
    now: DateTime<Utc>,
) -> Result<Reservation, ServiceError> {
    let (limits, _) = limits(ledger, defaults, workspace).await?;
    let (month, next) = month_of(now);
    let limit = limits.subjects_per_month;
    match ledger.reserve_subjects(workspace, &month, subjects, limit).await? {
        Ok(_) => Ok(Reservation {
            workspace: workspace.clone(),
            month,
            subjects,
        }),
        Err(used) => Err(ServiceError::QuotaExceeded {
            workspace: workspace.to_string(),
            month,
            limit,
            used: used.subjects,
            asked: subjects,
            retry_after_s: seconds_until(now, next),
        }),
    }
}

/// Gives a reservation back (a failure is logged: the month then counts
/// more than was created, never less).
pub async fn release<Q: QuotaLedger + ?Sized>(ledger: &Q, reservation: &Reservation) {
    let Reservation {
        workspace,
        month,
        subjects,
    } = reservation;
    if let Err(e) = ledger.release_subjects(workspace, month, *subjects).await {
        warn!(%workspace, month, subjects, error = %e, "a reservation of subjects was not given back");
    }
}

/// The workspace's use of this month and minute, against its quotas.
pub async fn usage<Q: QuotaLedger + ?Sized>(
    ledger: &Q,
    defaults: Limits,
    workspace: &WorkspaceId,
    now: DateTime<Utc>,
) -> Result<Usage, ServiceError> {
    let (limits, custom) = limits(ledger, defaults, workspace).await?;
    let (month, month_resets_at) = month_of(now);
    let minute = minute_of(now);
    Ok(Usage {
        limits,
        custom,
        used: ledger.month_usage(workspace, &month).await?,
        month,
        month_resets_at,
        calls_this_minute: ledger.calls(workspace, minute).await?,
        minute_resets_at: minute + Duration::minutes(1),
    })
}

/// Sets the workspace's quotas (an operator's), conditionally.
pub async fn set<Q: QuotaLedger + ?Sized>(
    ledger: &Q,
    workspace: &WorkspaceId,
    limits: Limits,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Quota, ServiceError> {
    let limits = limits.checked()?;
    retry_on_conflict(workspace, || async {
        let version = ledger.quota(workspace).await?.map_or(0, |q| q.version);
        let next = Quota {
            workspace: workspace.clone(),
            limits,
            set_by: by.to_owned(),
            set_at: now,
            version: version + 1,
        };
        ledger.put_quota(&next).await?;
        Ok(next)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemoryLedger;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn small() -> Limits {
        Limits {
            requests_per_minute: 2,
            subjects_per_month: 10,
        }
    }

    #[tokio::test]
    async fn calls_over_the_minute_s_limit_are_refused_until_the_next_minute() {
        let (ledger, ws) = (MemoryLedger::new(), WorkspaceId::parse("acme").unwrap());
        let now = at("2026-12-04T19:03:20Z");
        let first = admit(&ledger, small(), &ws, now).await.unwrap();
        assert_eq!(
            (first.limit, first.remaining, first.reset_at),
            (2, 1, at("2026-12-04T19:04:00Z"))
        );
        assert_eq!(admit(&ledger, small(), &ws, now).await.unwrap().remaining, 0);
        let refused = admit(&ledger, small(), &ws, now).await.unwrap_err();
        assert!(
            matches!(
                refused,
                ServiceError::RateLimited {
                    limit: 2,
                    retry_after_s: 40,
                    ..
                }
            ),
            "{refused:?}"
        );
        assert_eq!(
            QuotaLedger::calls(&ledger, &ws, minute_of(now)).await.unwrap(),
            2,
            "a refused call is not counted"
        );
        let other = WorkspaceId::parse("acme-corp").unwrap();
        assert!(admit(&ledger, small(), &other, now).await.is_ok(), "per workspace");
        assert!(
            admit(&ledger, small(), &ws, at("2026-12-04T19:04:00Z")).await.is_ok(),
            "a new minute"
        );
    }

    #[tokio::test]
    async fn a_regulation_that_would_pass_the_month_is_refused_whole_and_a_release_gives_back() {
        let (ledger, ws) = (MemoryLedger::new(), WorkspaceId::parse("acme").unwrap());
        let now = at("2026-12-31T23:59:00Z");
        let r = reserve(&ledger, small(), &ws, 6, now).await.unwrap();
        let refused = reserve(&ledger, small(), &ws, 5, now).await.unwrap_err();
        assert!(
            matches!(
                refused,
                ServiceError::QuotaExceeded {
                    used: 6,
                    asked: 5,
                    limit: 10,
                    retry_after_s: 60,
                    ..
                }
            ),
            "{refused:?}"
        );
        assert!(
            reserve(&ledger, small(), &ws, 4, now).await.is_ok(),
            "exactly the quota"
        );
        release(&ledger, &r).await;
        let u = usage(&ledger, small(), &ws, now).await.unwrap();
        assert_eq!(
            (u.month.as_str(), u.used.subjects, u.used.regulations),
            ("2026-12", 4, 1)
        );
        assert!(
            reserve(&ledger, small(), &ws, 6, at("2027-01-01T00:00:00Z"))
                .await
                .is_ok(),
            "a new month"
        );
    }

    #[tokio::test]
    async fn an_operator_s_quotas_hold_over_the_defaults() {
        let (ledger, ws) = (MemoryLedger::new(), WorkspaceId::parse("acme").unwrap());
        let now = at("2026-12-04T19:03:20Z");
        let bad = Limits {
            requests_per_minute: 0,
            ..small()
        };
        assert!(matches!(
            set(&ledger, &ws, bad, "ops", now).await,
            Err(ServiceError::Input(_))
        ));
        let q = set(
            &ledger,
            &ws,
            Limits {
                requests_per_minute: 1,
                subjects_per_month: 3,
            },
            "ops",
            now,
        )
        .await
        .unwrap();
        assert_eq!(q.version, 1);
        assert!(admit(&ledger, small(), &ws, now).await.is_ok());
        assert!(admit(&ledger, small(), &ws, now).await.is_err(), "its own limit of one");
        assert!(
            reserve(&ledger, small(), &ws, 4, now).await.is_err(),
            "its own quota of three"
        );
        let again = set(&ledger, &ws, small(), "ops", now).await.unwrap();
        assert_eq!(again.version, 2);
        assert!(usage(&ledger, small(), &ws, now).await.unwrap().custom.is_some());
    }
}
