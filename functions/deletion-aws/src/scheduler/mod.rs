//! Grace timers as EventBridge Scheduler one-shot `at()` schedules.
//!
//! The schedule name derives from the request id, so arming twice is
//! harmless (an existing schedule is success) and so is removing a
//! schedule that already fired (a missing one is success).

use async_trait::async_trait;
use aws_sdk_scheduler::error::SdkError;
use aws_sdk_scheduler::types::{ActionAfterCompletion, FlexibleTimeWindow, FlexibleTimeWindowMode, Target};
use aws_sdk_scheduler::Client;
use chrono::{DateTime, NaiveDateTime, Timelike, Utc};
use deletion_core::ids::RequestId;
use deletion_core::ports::{Timers, Wake};
use deletion_core::TimerError;

use crate::describe;

/// Where the schedules go and what they invoke.
#[derive(Clone, Debug)]
pub struct SchedulerTimers {
    client: Client,
    group: String,
    target_arn: String,
    role_arn: String,
}

/// The schedule name of a request: `purge-<request id>` (42 characters).
pub fn schedule_name(id: &RequestId) -> String {
    format!("purge-{id}")
}

/// The schedule name of another wake-up of the purge:
/// `purge-<id>-w<n>` (a fan-out worker), `purge-<id>-h<shard>` (a hand-off
/// of that shard; at most 59 characters),
/// `purge-<id>-s` (the sweep).
pub fn wake_schedule_name(id: &RequestId, why: Wake) -> String {
    match why {
        Wake::Worker(n) => format!("purge-{id}-w{n}"),
        Wake::HandOff(shard) => format!("purge-{id}-h{shard}"),
        Wake::Sweep { .. } => format!("purge-{id}-s"),
        Wake::Reminder => format!("purge-{id}-r"),
    }
}

/// `at(yyyy-mm-ddThh:mm:ss)` in UTC, rounded *up* to the second so the
/// timer never fires before the grace ends.
pub fn at_expression(at: DateTime<Utc>) -> String {
    let rounded = if at.nanosecond() > 0 {
        at.with_nanosecond(0).unwrap_or(at) + chrono::Duration::seconds(1)
    } else {
        at
    };
    format!("at({})", rounded.format("%Y-%m-%dT%H:%M:%S"))
}

/// The time of an `at()` expression.
pub fn parse_at(expression: &str) -> Option<DateTime<Utc>> {
    let inner = expression.strip_prefix("at(")?.strip_suffix(')')?;
    NaiveDateTime::parse_from_str(inner, "%Y-%m-%dT%H:%M:%S")
        .ok()
        .map(|t| t.and_utc())
}

/// A schedule whose time has come, as the local runner fires it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueSchedule {
    pub name: String,
    pub at: DateTime<Utc>,
    /// The target's input: the JSON the purge function receives.
    pub input: String,
}

impl SchedulerTimers {
    pub fn new(
        client: Client,
        group: impl Into<String>,
        target_arn: impl Into<String>,
        role_arn: impl Into<String>,
    ) -> Self {
        SchedulerTimers {
            client,
            group: group.into(),
            target_arn: target_arn.into(),
            role_arn: role_arn.into(),
        }
    }

    /// The `at()` time of a request's schedule, if one exists.
    pub async fn armed_at(&self, id: &RequestId) -> Result<Option<DateTime<Utc>>, TimerError> {
        match self
            .client
            .get_schedule()
            .group_name(&self.group)
            .name(schedule_name(id))
            .send()
            .await
        {
            Ok(out) => Ok(out.schedule_expression().and_then(parse_at)),
            Err(SdkError::ServiceError(e)) if e.err().is_resource_not_found_exception() => Ok(None),
            Err(e) => Err(TimerError::Unavailable(describe(&e))),
        }
    }

    /// Every schedule of the group whose time is at or before `now`.
    /// moto stores schedules but never fires them; the local runner does.
    pub async fn due(&self, now: DateTime<Utc>) -> Result<Vec<DueSchedule>, TimerError> {
        let mut due = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .client
                .list_schedules()
                .group_name(&self.group)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| TimerError::Unavailable(describe(&e)))?;
            for summary in out.schedules() {
                let Some(name) = summary.name() else { continue };
                let got = match self
                    .client
                    .get_schedule()
                    .group_name(&self.group)
                    .name(name)
                    .send()
                    .await
                {
                    Ok(got) => got,
                    Err(SdkError::ServiceError(e)) if e.err().is_resource_not_found_exception() => continue,
                    Err(e) => return Err(TimerError::Unavailable(describe(&e))),
                };
                let Some(at) = got.schedule_expression().and_then(parse_at) else {
                    continue;
                };
                if at <= now {
                    due.push(DueSchedule {
                        name: name.to_owned(),
                        at,
                        input: got.target().and_then(|t| t.input()).unwrap_or("{}").to_owned(),
                    });
                }
            }
            token = out.next_token;
            if token.is_none() {
                break;
            }
        }
        due.sort_by_key(|d| d.at);
        Ok(due)
    }

    /// Removes a fired schedule, as `ActionAfterCompletion: DELETE` does.
    pub async fn delete_by_name(&self, name: &str) -> Result<(), TimerError> {
        match self
            .client
            .delete_schedule()
            .group_name(&self.group)
            .name(name)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_resource_not_found_exception() => Ok(()),
            Err(e) => Err(TimerError::Unavailable(describe(&e))),
        }
    }
}

#[async_trait]
impl Timers for SchedulerTimers {
    async fn arm(&self, id: &RequestId, at: DateTime<Utc>) -> Result<(), TimerError> {
        self.create(
            schedule_name(id),
            id,
            at,
            serde_json::json!({ "request_id": id.as_str() }),
        )
        .await
    }

    /// Removes the grace timer and its reminder: a request out of grace
    /// keeps no live timer of its grace.
    async fn disarm(&self, id: &RequestId) -> Result<(), TimerError> {
        self.delete_by_name(&schedule_name(id)).await?;
        self.delete_by_name(&wake_schedule_name(id, Wake::Reminder)).await
    }

    async fn wake(&self, id: &RequestId, why: Wake, at: DateTime<Utc>) -> Result<(), TimerError> {
        let input = match why {
            Wake::Sweep { retry: true } => serde_json::json!({ "request_id": id.as_str(), "retry": true }),
            Wake::Reminder => serde_json::json!({ "request_id": id.as_str(), "remind": true }),
            _ => serde_json::json!({ "request_id": id.as_str() }),
        };
        self.create(wake_schedule_name(id, why), id, at, input).await
    }
}

impl SchedulerTimers {
    async fn create(
        &self,
        name: String,
        id: &RequestId,
        at: DateTime<Utc>,
        input: serde_json::Value,
    ) -> Result<(), TimerError> {
        let input = input.to_string();
        let target = Target::builder()
            .arn(&self.target_arn)
            .role_arn(&self.role_arn)
            .input(input)
            .build()
            .map_err(|e| TimerError::Rejected(describe(&e)))?;
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|e| TimerError::Rejected(describe(&e)))?;
        let result = self
            .client
            .create_schedule()
            .group_name(&self.group)
            .name(&name)
            .description(format!("Purge of deletion request {id}"))
            .schedule_expression(at_expression(at))
            .schedule_expression_timezone("UTC")
            .flexible_time_window(window)
            .action_after_completion(ActionAfterCompletion::Delete)
            .target(target)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conflict_exception() => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_validation_exception() => {
                Err(TimerError::Rejected(describe(e.err())))
            }
            Err(e) => Err(TimerError::Unavailable(describe(&e))),
        }
    }
}

#[cfg(test)]
mod tests;
