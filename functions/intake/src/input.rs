//! The bodies the API accepts, and the checks on their fields that the
//! domain's types do not make themselves (reasons, days).
//!
//! Invariant: every body refuses fields it does not know; a check names
//! the field and what to send instead.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

use deletion_core::ids::{SourceId, WorkspaceId};
use deletion_core::model::retention::Policy;
use deletion_core::model::Scope;
use deletion_core::ports::Role;

use crate::problem::Problem;
use crate::schemas as s;

/// Longest accepted `reason`.
pub const MAX_REASON_CHARS: usize = 1000;
/// Longest accepted range of a source's days.
pub const MAX_DAYS: i64 = 3660;

/// A deletion's reason and callback URL (both optional; so is the body).
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateDeletion)]
pub struct CreateBody {
    /// Why (at most 1,000 characters, no control characters).
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub reason: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<s::CallbackUrl>)]
    pub callback_url: Option<String>,
}

/// A source's archive by whole days, `from` to `to` inclusive.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateSourceDaysDeletion)]
pub struct SourceDaysBody {
    #[schema(value_type = s::Day)]
    pub from: String,
    #[schema(value_type = s::Day)]
    pub to: String,
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub reason: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<s::CallbackUrl>)]
    pub callback_url: Option<String>,
}

/// A complete purge of a workspace (its key in the data map).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreatePurge)]
pub struct PurgeBody {
    #[schema(value_type = s::Id)]
    pub workspace: String,
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub reason: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<s::CallbackUrl>)]
    pub callback_url: Option<String>,
}

/// A membership's role.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PutMember)]
pub struct MemberBody {
    #[schema(value_type = s::Role)]
    pub role: Role,
}

/// A regulation: what to do about which end users.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateRegulation)]
pub struct RegulationBody {
    #[serde(rename = "type")]
    #[schema(value_type = s::RegulationType)]
    pub regulation: String,
    /// `USER_ID` (events' `userId`), `ANONYMOUS_ID` (`anonymousId`), or an identifier a store of the
    /// data map declares in its `user_records` (e.g. `EMAIL`). Suppressing types take `USER_ID` only.
    #[schema(pattern = "^[A-Z][A-Z0-9_]{0,31}$", example = "USER_ID")]
    pub subject_type: String,
    /// 1 to 5,000 ids (duplicates count once).
    #[schema(value_type = Vec<s::UserId>, min_items = 1, max_items = 5000)]
    pub subject_ids: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Option<s::CallbackUrl>)]
    pub callback_url: Option<String>,
    /// When the subject made the request (RFC 3339, not in the future; OpenDSR's `submitted_time`):
    /// the 30-day deadline counts from it. Absent: from now.
    #[serde(default)]
    #[schema(value_type = Option<s::Timestamp>)]
    pub submitted_at: Option<String>,
}

/// A workspace's quotas.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SetQuotas)]
pub struct QuotaBody {
    /// Calls of the regulations API a minute (1 to 1,000,000).
    #[schema(minimum = 1, maximum = 1000000)]
    pub requests_per_minute: u32,
    /// Subjects named by regulations a UTC month (1 to 1,000,000,000).
    #[schema(minimum = 1, maximum = 1000000000)]
    pub subjects_per_month: u64,
}

/// A legal hold's reason.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PlaceHold)]
pub struct HoldBody {
    #[schema(min_length = 1, max_length = 1000)]
    pub reason: String,
}

/// End users to check against the suppression list.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CheckSuppressions)]
pub struct CheckBody {
    /// 1 to 1,000 ids.
    #[schema(value_type = Vec<s::UserId>, min_items = 1, max_items = 1000)]
    pub user_ids: Vec<String>,
    /// Check against this source's list too (either list blocks); absent: the workspace's only.
    #[serde(default)]
    #[schema(value_type = Option<s::Id>)]
    pub source: Option<String>,
}

/// A reason of at most `MAX_REASON_CHARS` without control characters; a
/// blank one is none.
pub fn check_reason(reason: Option<String>) -> Result<Option<String>, Problem> {
    match reason {
        Some(r) if r.chars().count() > MAX_REASON_CHARS => Err(Problem::bad_request(format!(
            "reason has {} characters; at most {MAX_REASON_CHARS} are accepted",
            r.chars().count()
        ))),
        Some(r) if r.chars().any(char::is_control) => {
            Err(Problem::bad_request("reason must not contain control characters"))
        }
        other => Ok(other.filter(|r| !r.trim().is_empty())),
    }
}

/// A whole day, `YYYY-MM-DD`. Anything finer is refused.
fn parse_day(field: &str, value: &str) -> Result<NaiveDate, Problem> {
    let shaped = value.len() == 10
        && value.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shaped {
        let finer = value.contains('T') || value.contains(':') || value.contains(' ');
        return Err(Problem::bad_request(if finer {
            format!(
                "{field} is {value:?}: deletions of a source's archive go by whole days only; give {field} as YYYY-MM-DD, without a time"
            )
        } else {
            format!("{field} is {value:?}: give a day as YYYY-MM-DD")
        }));
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| Problem::bad_request(format!("{field} is {value:?}: no such day")))
}

/// The scope of a source's days: only whole days fully in the past (UTC),
/// at most `MAX_DAYS` of them.
pub fn source_days(
    workspace: WorkspaceId,
    source: SourceId,
    body: &SourceDaysBody,
    now: DateTime<Utc>,
) -> Result<Scope, Problem> {
    let from = parse_day("from", &body.from)?;
    let to = parse_day("to", &body.to)?;
    if to < from {
        return Err(Problem::bad_request(format!("to ({to}) is before from ({from})")));
    }
    // Today's archive is still being written: a purge of it could never
    // be verified empty.
    let today = now.date_naive();
    if to >= today {
        let when = if to > today { "is in the future" } else { "is today" };
        return Err(Problem::bad_request(format!(
            "to ({to}) {when} (today is {today} UTC): only days fully in the past can be deleted, up to yesterday"
        )));
    }
    let days = (to - from).num_days() + 1;
    if days > MAX_DAYS {
        return Err(Problem::bad_request(format!(
            "the range has {days} days; at most {MAX_DAYS} are accepted in one request"
        )));
    }
    Ok(Scope::SourceDays {
        workspace,
        source,
        from,
        to,
    })
}

/// A workspace's retention policy: whole days kept by every source
/// (`default_days`) and by named sources (`sources`); `null` keeps
/// everything.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SetRetention)]
pub struct RetentionBody {
    /// Days every source not named in `sources` keeps: 1 to 3,660, or null (or absent) for unlimited.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3660)]
    pub default_days: Option<u32>,
    /// Days a named source keeps: 1 to 3,660, or null for unlimited; at most 500 sources.
    #[serde(default)]
    #[schema(value_type = s::Windows)]
    pub sources: std::collections::BTreeMap<String, Option<u32>>,
}

impl RetentionBody {
    /// The policy, validated (ids, whole days within bounds, at most 500 sources).
    pub fn policy(self) -> Result<Policy, Problem> {
        let mut sources = std::collections::BTreeMap::new();
        for (source, days) in self.sources {
            let id = SourceId::parse(&source).map_err(|e| Problem::bad_request(format!("sources: {e}")))?;
            sources.insert(id, days);
        }
        Policy::new(self.default_days, sources).map_err(|e| Problem::bad_request(e.to_string()))
    }
}
