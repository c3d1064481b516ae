use deletion_aws::dynamodb::DynamoLedger;
use deletion_aws::s3::S3Store;
use deletion_aws::scheduler::SchedulerTimers;
use deletion_aws::Clients;
use deletion_core::config;
use deletion_core::datamap::DataMap;
use deletion_core::plan::Planner;
use deletion_core::ports::SystemClock;
use deletion_core::requests::Requests;
use deletion_core::retention::Enforcer;
use grace_timer::{GraceTimer, Invocation, RetentionTimer};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let table = config::required("LEDGER_TABLE")?;
    let group = config::required("SCHEDULE_GROUP")?;
    let target = config::required("PURGE_FUNCTION_ARN")?;
    let role = config::required("SCHEDULER_ROLE_ARN")?;
    // A time already past is armed this far ahead (AWS may not run an at()
    // in the past).
    let lead = config::seconds("TIMER_MIN_LEAD_SECONDS", 60, 0, 3600)?;
    // How long before a grace ends its reminder fires; 0: no reminders.
    let reminder = config::seconds("REMINDER_SECONDS", 86_400, 0, 30 * 86_400)?;
    // One sweep's (or retention run's) run time, below the function's 60 s
    // timeout (the invocation's own deadline bounds it too).
    let budget = config::seconds("SWEEP_BUDGET_SECONDS", 40, 1, 840)?;
    let clients = Clients::from_env().await;
    let ledger = DynamoLedger::new(clients.dynamodb.clone(), table);
    let reminder = (reminder > chrono::Duration::zero()).then_some(reminder);
    let timer = GraceTimer::new(
        ledger.clone(),
        SchedulerTimers::new(clients.scheduler.clone(), group, target, role),
        SystemClock,
    )
    .with_min_lead(lead)
    .with_reminder(reminder)
    .with_sweep_budget(budget);
    let mut enforcer = Enforcer::new(
        Requests::new(ledger, SystemClock, config::periods_from_env()?),
        Planner::new(S3Store::new(clients.s3.clone()), DataMap::from_env()?),
    );
    enforcer.reminder = reminder;
    let mut retention = RetentionTimer::new(enforcer);
    retention.budget = budget;
    let (timer, retention) = (&timer, &retention);
    run(service_fn(move |event: LambdaEvent<Invocation>| async move {
        let deadline = i64::try_from(event.context.deadline)
            .ok()
            .and_then(chrono::DateTime::from_timestamp_millis);
        Ok::<_, Error>(match event.payload {
            Invocation::Retention(_) => serde_json::to_value(retention.run_until(deadline).await?)?,
            Invocation::Timer(event) => timer.handle_event_until(event, deadline).await?,
        })
    }))
    .await
}
