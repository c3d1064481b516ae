//! The timers' unit tests: `at()` expressions, and (against canned
//! Scheduler answers, `aws-smithy-mocks`) the schedules as built and the
//! mapping of Scheduler's errors.

use std::sync::{Arc, Mutex};

use aws_sdk_scheduler::operation::create_schedule::{CreateScheduleError, CreateScheduleInput, CreateScheduleOutput};
use aws_sdk_scheduler::operation::delete_schedule::{DeleteScheduleError, DeleteScheduleInput, DeleteScheduleOutput};
use aws_sdk_scheduler::operation::get_schedule::{GetScheduleError, GetScheduleOutput};
use aws_sdk_scheduler::operation::list_schedules::{ListSchedulesError, ListSchedulesOutput};
use aws_sdk_scheduler::types::ScheduleSummary;
use aws_smithy_mocks::{mock, Rule, RuleBuilder};

use super::*;

#[test]
fn at_rounds_up_and_round_trips() {
    let t = DateTime::parse_from_rfc3339("2026-11-27T15:40:00.250Z")
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(at_expression(t), "at(2026-11-27T15:40:01)");
    let whole = DateTime::parse_from_rfc3339("2026-11-27T15:40:00Z")
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(at_expression(whole), "at(2026-11-27T15:40:00)");
    assert_eq!(parse_at(&at_expression(whole)), Some(whole));
    assert_eq!(parse_at("rate(5 minutes)"), None);
    let id = RequestId::new();
    assert!(schedule_name(&id).len() <= 64);
    // A hand-off per shard: two shards handed back at once are two timers.
    assert_ne!(
        wake_schedule_name(&id, Wake::HandOff(0)),
        wake_schedule_name(&id, Wake::HandOff(1))
    );
    assert!(wake_schedule_name(&id, Wake::HandOff(u32::MAX)).len() <= 64);
}

const GROUP: &str = "deletion-timers";
const TARGET: &str = "arn:aws:lambda:us-east-1:123456789012:function:purge";
const ROLE: &str = "arn:aws:iam::123456789012:role/scheduler-invokes-purge";

/// Timers whose client answers with `rules`, in order, and never retries
/// (the SDK's own retries are not under test).
fn timers(rules: &[&Rule]) -> SchedulerTimers {
    let config = mocked_config!(aws_sdk_scheduler, rules);
    SchedulerTimers::new(Client::from_conf(config), GROUP, TARGET, ROLE)
}

/// A modeled Scheduler error, `Error::Variant`, with a message naming it.
macro_rules! exception {
    ($error:ident :: $variant:ident) => {
        $error::$variant(
            aws_sdk_scheduler::types::error::$variant::builder()
                .message(concat!(stringify!($variant), " from the mock"))
                .build()
                .unwrap(),
        )
    };
}

fn created() -> CreateScheduleOutput {
    CreateScheduleOutput::builder()
        .schedule_arn("arn:aws:scheduler:us-east-1:123456789012:schedule/deletion-timers/x")
        .build()
        .unwrap()
}

/// A CreateSchedule that succeeds and keeps what it was sent.
fn recording(seen: &Arc<Mutex<Vec<CreateScheduleInput>>>) -> Rule {
    let seen = seen.clone();
    mock!(Client::create_schedule).then_compute_output(move |input| {
        seen.lock().unwrap().push(input.clone());
        created()
    })
}

fn time(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().with_timezone(&Utc)
}

#[tokio::test]
async fn arming_sends_the_one_shot_schedule_the_purge_expects() {
    let seen = Arc::default();
    let rule = recording(&seen);
    let id = RequestId::new();
    timers(&[&rule])
        .arm(&id, time("2026-12-07T09:30:00.001Z"))
        .await
        .unwrap();
    let sent = seen.lock().unwrap();
    let [input] = sent.as_slice() else {
        panic!("{} schedules sent", sent.len())
    };
    assert_eq!(input.name(), Some(format!("purge-{id}").as_str()));
    assert_eq!(input.group_name(), Some(GROUP));
    assert_eq!(
        input.schedule_expression(),
        Some("at(2026-12-07T09:30:01)"),
        "rounded up"
    );
    assert_eq!(input.schedule_expression_timezone(), Some("UTC"));
    assert_eq!(
        input.flexible_time_window().map(|w| w.mode()),
        Some(&FlexibleTimeWindowMode::Off)
    );
    assert_eq!(input.action_after_completion(), Some(&ActionAfterCompletion::Delete));
    let target = input.target().expect("a target");
    assert_eq!(target.arn(), TARGET);
    assert_eq!(target.role_arn(), ROLE);
    let payload: serde_json::Value = serde_json::from_str(target.input().expect("an input")).unwrap();
    assert_eq!(payload, serde_json::json!({ "request_id": id.as_str() }));
}

#[tokio::test]
async fn each_wake_up_has_a_name_and_payload_of_its_own() {
    let id = RequestId::new();
    let cases = [
        (Wake::Worker(3), "-w3", serde_json::json!({ "request_id": id.as_str() })),
        (
            Wake::HandOff(7),
            "-h7",
            serde_json::json!({ "request_id": id.as_str() }),
        ),
        (
            Wake::Sweep { retry: false },
            "-s",
            serde_json::json!({ "request_id": id.as_str() }),
        ),
        (
            Wake::Sweep { retry: true },
            "-s",
            serde_json::json!({ "request_id": id.as_str(), "retry": true }),
        ),
        (
            Wake::Reminder,
            "-r",
            serde_json::json!({ "request_id": id.as_str(), "remind": true }),
        ),
    ];
    for (why, suffix, payload) in cases {
        let seen = Arc::default();
        let rule = recording(&seen);
        timers(&[&rule])
            .wake(&id, why, time("2026-12-07T09:30:00Z"))
            .await
            .unwrap();
        let sent = seen.lock().unwrap();
        assert_eq!(sent[0].name(), Some(format!("purge-{id}{suffix}").as_str()), "{why:?}");
        assert_eq!(sent[0].schedule_expression(), Some("at(2026-12-07T09:30:00)"));
        let input: serde_json::Value = serde_json::from_str(sent[0].target().unwrap().input().unwrap()).unwrap();
        assert_eq!(input, payload, "{why:?}");
    }
}

#[tokio::test]
async fn arming_a_schedule_that_exists_already_is_success() {
    let rule = mock!(Client::create_schedule).then_error(|| exception!(CreateScheduleError::ConflictException));
    let id = RequestId::new();
    let at = time("2026-12-07T09:30:00Z");
    timers(&[&rule]).arm(&id, at).await.unwrap();
    assert_eq!(rule.num_calls(), 1);
    let again = mock!(Client::create_schedule).then_error(|| exception!(CreateScheduleError::ConflictException));
    timers(&[&again]).wake(&id, Wake::HandOff(0), at).await.unwrap();
}

#[tokio::test]
async fn a_schedule_refused_as_invalid_is_rejected_anything_else_unavailable() {
    let at = time("2026-12-07T09:30:00Z");
    let invalid = mock!(Client::create_schedule).then_error(|| exception!(CreateScheduleError::ValidationException));
    match timers(&[&invalid]).arm(&RequestId::new(), at).await {
        Err(TimerError::Rejected(m)) => assert!(m.contains("ValidationException from the mock"), "{m}"),
        other => panic!("{other:?}"),
    }
    let unavailable: [(&str, Rule); 4] = [
        (
            "ThrottlingException",
            mock!(Client::create_schedule).then_error(|| exception!(CreateScheduleError::ThrottlingException)),
        ),
        (
            "InternalServerException",
            mock!(Client::create_schedule).then_error(|| exception!(CreateScheduleError::InternalServerException)),
        ),
        (
            "ServiceQuotaExceededException",
            mock!(Client::create_schedule)
                .then_error(|| exception!(CreateScheduleError::ServiceQuotaExceededException)),
        ),
        // The schedule group is missing: a deployment's fault, not the
        // schedule's.
        (
            "ResourceNotFoundException",
            mock!(Client::create_schedule).then_error(|| exception!(CreateScheduleError::ResourceNotFoundException)),
        ),
    ];
    for (name, rule) in unavailable {
        match timers(&[&rule]).arm(&RequestId::new(), at).await {
            Err(TimerError::Unavailable(m)) => assert!(m.contains(name), "{name}: {m}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}

/// DeleteSchedule of `name` in the group.
fn delete_of(name: String) -> RuleBuilder<DeleteScheduleInput, DeleteScheduleOutput, DeleteScheduleError> {
    mock!(Client::delete_schedule)
        .match_requests(move |req| req.name() == Some(name.as_str()) && req.group_name() == Some(GROUP))
}

fn deleted(name: String) -> Rule {
    delete_of(name).then_output(|| DeleteScheduleOutput::builder().build())
}

fn not_deleted(name: String, error: fn() -> DeleteScheduleError) -> Rule {
    delete_of(name).then_error(error)
}

#[tokio::test]
async fn disarming_removes_the_timer_and_its_reminder_and_a_missing_one_is_success() {
    let id = RequestId::new();
    let missing = || exception!(DeleteScheduleError::ResourceNotFoundException);
    let fired = not_deleted(schedule_name(&id), missing);
    let reminder = deleted(wake_schedule_name(&id, Wake::Reminder));
    timers(&[&fired, &reminder]).disarm(&id).await.unwrap();
    assert_eq!((fired.num_calls(), reminder.num_calls()), (1, 1));
    // Both gone already.
    let fired = not_deleted(schedule_name(&id), missing);
    let reminder = not_deleted(wake_schedule_name(&id, Wake::Reminder), missing);
    timers(&[&fired, &reminder]).disarm(&id).await.unwrap();
    assert_eq!(reminder.num_calls(), 1);
}

#[tokio::test]
async fn a_disarm_the_scheduler_refuses_is_unavailable_not_success() {
    let id = RequestId::new();
    let throttled = not_deleted(schedule_name(&id), || {
        exception!(DeleteScheduleError::ThrottlingException)
    });
    match timers(&[&throttled]).disarm(&id).await {
        Err(TimerError::Unavailable(m)) => assert!(m.contains("ThrottlingException"), "{m}"),
        other => panic!("{other:?}"),
    }
    // The timer gone, its reminder's removal refused: not disarmed yet.
    let gone = deleted(schedule_name(&id));
    let reminder = not_deleted(wake_schedule_name(&id, Wake::Reminder), || {
        exception!(DeleteScheduleError::ConflictException)
    });
    assert!(matches!(
        timers(&[&gone, &reminder]).disarm(&id).await,
        Err(TimerError::Unavailable(_))
    ));
}

#[tokio::test]
async fn armed_at_reads_the_schedules_time_and_a_missing_one_is_none() {
    let id = RequestId::new();
    let name = schedule_name(&id);
    let armed = mock!(Client::get_schedule)
        .match_requests(move |req| req.name() == Some(name.as_str()) && req.group_name() == Some(GROUP))
        .then_output(|| {
            GetScheduleOutput::builder()
                .schedule_expression("at(2026-12-07T09:30:01)")
                .build()
        });
    let missing = mock!(Client::get_schedule).then_error(|| exception!(GetScheduleError::ResourceNotFoundException));
    let throttled = mock!(Client::get_schedule).then_error(|| exception!(GetScheduleError::ThrottlingException));
    let timers = timers(&[&armed, &missing, &throttled]);
    assert_eq!(timers.armed_at(&id).await.unwrap(), Some(time("2026-12-07T09:30:01Z")));
    assert_eq!(timers.armed_at(&id).await.unwrap(), None);
    assert!(matches!(timers.armed_at(&id).await, Err(TimerError::Unavailable(_))));
}

fn listed(names: &[&str], next: Option<&str>) -> ListSchedulesOutput {
    let summaries = names
        .iter()
        .map(|n| ScheduleSummary::builder().name(*n).build())
        .collect();
    ListSchedulesOutput::builder()
        .set_schedules(Some(summaries))
        .set_next_token(next.map(str::to_owned))
        .build()
        .unwrap()
}

fn schedule(expression: &'static str, input: &'static str) -> Rule {
    mock!(Client::get_schedule).then_output(move || {
        GetScheduleOutput::builder()
            .schedule_expression(expression)
            .target(
                Target::builder()
                    .arn(TARGET)
                    .role_arn(ROLE)
                    .input(input)
                    .build()
                    .unwrap(),
            )
            .build()
    })
}

#[tokio::test]
async fn due_pages_through_the_group_and_skips_a_schedule_gone_in_between() {
    let first = mock!(Client::list_schedules)
        .match_requests(|req| req.group_name() == Some(GROUP) && req.next_token().is_none())
        .then_output(|| listed(&["late", "gone"], Some("page-2")));
    let late = schedule("at(2026-12-07T09:00:00)", r#"{"request_id":"b"}"#);
    let gone = mock!(Client::get_schedule).then_error(|| exception!(GetScheduleError::ResourceNotFoundException));
    let second = mock!(Client::list_schedules)
        .match_requests(|req| req.next_token() == Some("page-2"))
        .then_output(|| listed(&["early", "future"], None));
    let early = schedule("at(2026-12-07T08:00:00)", r#"{"request_id":"a"}"#);
    let future = schedule("at(2026-12-08T00:00:00)", r#"{"request_id":"c"}"#);
    let due = timers(&[&first, &late, &gone, &second, &early, &future])
        .due(time("2026-12-07T09:00:00Z"))
        .await
        .unwrap();
    let names: Vec<(&str, &str)> = due.iter().map(|d| (d.name.as_str(), d.input.as_str())).collect();
    assert_eq!(
        names,
        [("early", r#"{"request_id":"a"}"#), ("late", r#"{"request_id":"b"}"#)],
        "due ones, soonest first"
    );
    assert_eq!(second.num_calls(), 1, "the next token followed");
    let throttled = mock!(Client::list_schedules).then_error(|| exception!(ListSchedulesError::ThrottlingException));
    assert!(matches!(
        timers(&[&throttled]).due(Utc::now()).await,
        Err(TimerError::Unavailable(_))
    ));
}
