//! Storage limitation: each workspace's retention policy, changed through
//! the API, and its enforcement, run by a recurring schedule.
//!
//! Invariants:
//! - Every change is a conditional write of the workspace's one record
//!   (read, pure transition from `retention_rules`, write over the version
//!   read).
//! - Enforcement finds days from the archive's own layout (a delimiter
//!   listing of each source's day prefixes), never by guessing, and hands
//!   each day out of its window to a source-day deletion request of that
//!   one day: the same ledger, purge, verification and receipt as one asked
//!   through the API. A day already under way is found by its scope's lock
//!   (not created twice); a purged day is no longer listed (not deleted
//!   twice); a missed run leaves its days listed for the next one.
//! - A workspace is enforced at most once a day (`Retention::run_due`); a
//!   run stopped by its budget leaves the rest for the next invocation.
//! - A legal hold pauses the requests (as any purge), not their creation.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;
use tracing::warn;

use crate::datamap::DataMap;
use crate::error::{ServiceError, StoreError};
use crate::ids::{RequestId, SourceId, WorkspaceId};
use crate::model::retention::{out_of_window, Policy, Retention, RetentionRun, Window, MAX_RUN_REQUESTS};
use crate::model::Scope;
use crate::plan::{Plan, Planner};
use crate::ports::{Clock, Directory, Holds, Ledger, ObjectStore, Regulations, RetentionLedger};
use crate::requests::Requests;
use crate::retry::retry_on_conflict;

/// The actor of the requests enforcement creates.
pub const RETENTION_ACTOR: &str = "retention";
/// Most sources, and most days of one source, one listing reads.
const MAX_CHILDREN: usize = 10_000;
/// Records read per page of the enforcement's listing.
const PAGE: u32 = 50;

/// One day of a source out of its window.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct DayOut {
    pub source: SourceId,
    pub day: NaiveDate,
    /// The window it fell out of, in days.
    pub window: u32,
}

impl DayOut {
    pub fn scope(&self, workspace: &WorkspaceId) -> Scope {
        Scope::SourceDays {
            workspace: workspace.clone(),
            source: self.source.clone(),
            from: self.day,
            to: self.day,
        }
    }
}

/// Reads, changes (if `change` says so) and conditionally writes a
/// workspace's record; a lost race is judged again from a fresh read.
/// Returns the record as it stands and whether this call wrote it.
async fn change<L, F>(ledger: &L, workspace: &WorkspaceId, change: F) -> Result<(Retention, bool), ServiceError>
where
    L: RetentionLedger,
    F: Fn(&Retention) -> Result<Option<Retention>, ServiceError>,
{
    retry_on_conflict(workspace, || async {
        let current = ledger
            .retention(workspace)
            .await?
            .unwrap_or_else(|| Retention::empty(workspace.clone()));
        match change(&current)? {
            Some(next) => {
                ledger.put_retention(&next).await?;
                Ok((next, true))
            }
            None => Ok((current, false)),
        }
    })
    .await
}

/// A workspace's retention as it stands at `now` (a change whose grace
/// ended shown in force; nothing written).
pub async fn current<L: RetentionLedger>(
    ledger: &L,
    workspace: &WorkspaceId,
    now: DateTime<Utc>,
) -> Result<Retention, ServiceError> {
    let stored = ledger
        .retention(workspace)
        .await?
        .unwrap_or_else(|| Retention::empty(workspace.clone()));
    Ok(stored.settle(now).unwrap_or(stored))
}

/// Sets a policy: in force at once, or (the flag) in grace for `grace`.
/// Asked again, the same policy is answered as it stands.
pub async fn set_policy<L: RetentionLedger>(
    ledger: &L,
    workspace: &WorkspaceId,
    policy: Policy,
    by: &str,
    now: DateTime<Utc>,
    grace: Duration,
) -> Result<(Retention, bool), ServiceError> {
    // The same policy asked again changes nothing (a grace under way is
    // not restarted, the history gets no new entry).
    let (next, _) = change(ledger, workspace, |c| {
        Ok((!c.already_asked(&policy, now)).then(|| c.propose(policy.clone(), now, by, grace).0))
    })
    .await?;
    let next = next.settle(now).unwrap_or(next);
    let pending = next.pending.is_some();
    Ok((next, pending))
}

/// Removes the policy (everything is kept from now on).
pub async fn remove_policy<L: RetentionLedger>(
    ledger: &L,
    workspace: &WorkspaceId,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Retention, ServiceError> {
    Ok(change(ledger, workspace, |c| c.remove(now, by).map(Some)).await?.0)
}

/// Revokes the change in grace.
pub async fn revoke_change<L: RetentionLedger>(
    ledger: &L,
    workspace: &WorkspaceId,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Retention, ServiceError> {
    Ok(change(ledger, workspace, |c| c.revoke_pending(now, by).map(Some))
        .await?
        .0)
}

/// The days of a workspace's archives out of the window `window` gives
/// each source, on `today`, from the stores' own listings (the days of at
/// most `max_sources` sources); and whether that is all of them (no
/// listing stopped at `MAX_CHILDREN`, no source left unlisted).
pub async fn days_out<S: ObjectStore>(
    store: &S,
    map: &DataMap,
    workspace: &WorkspaceId,
    window: impl Fn(&SourceId) -> Window,
    today: NaiveDate,
    max_sources: usize,
) -> Result<(Vec<DayOut>, bool), StoreError> {
    let mut found = BTreeSet::new();
    let (mut complete, mut listed_sources) = (true, 0usize);
    for archive in map.stores().iter().filter(|s| s.is_archive()) {
        let mut bound = BTreeMap::from([("workspace", workspace.to_string())]);
        let Some(sources_at) = archive.prefix_before(&bound, "source") else {
            continue;
        };
        let sources = store.list_children(&archive.bucket, &sources_at, MAX_CHILDREN).await?;
        complete &= !sources.truncated;
        for child in &sources.prefixes {
            let Some(source) = last_segment(child, &sources_at).and_then(|s| SourceId::parse(s).ok()) else {
                continue;
            };
            let Some(days) = window(&source) else { continue };
            if listed_sources == max_sources {
                complete = false;
                break;
            }
            listed_sources += 1;
            bound.insert("source", source.to_string());
            let Some(days_at) = archive.prefix_before(&bound, "day") else {
                continue;
            };
            let listed = store.list_children(&archive.bucket, &days_at, MAX_CHILDREN).await?;
            complete &= !listed.truncated;
            for child in &listed.prefixes {
                let Some(day) = last_segment(child, &days_at).and_then(parse_day) else {
                    continue;
                };
                if out_of_window(day, days, today) {
                    found.insert(DayOut {
                        source: source.clone(),
                        day,
                        window: days,
                    });
                }
            }
        }
    }
    Ok((found.into_iter().collect(), complete))
}

/// A day segment as the layout writes it (`YYYY-MM-DD`, nothing else).
fn parse_day(segment: &str) -> Option<NaiveDate> {
    let day = NaiveDate::parse_from_str(segment, "%Y-%m-%d").ok()?;
    (day.format("%Y-%m-%d").to_string() == segment).then_some(day)
}

/// The segment a child prefix adds under `parent` (`acme/web/` under
/// `acme/`: `web`).
fn last_segment<'a>(child: &'a str, parent: &str) -> Option<&'a str> {
    child
        .strip_prefix(parent)?
        .strip_suffix('/')
        .filter(|s| !s.contains('/'))
}

/// What a policy would delete were it in force now: the days, and the plan
/// (per store: prefixes, objects, bytes) of their deletion.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    pub days: Vec<DayOut>,
    pub plan: Plan,
    /// False when a listing stopped at its cap or a count at its budget.
    pub complete: bool,
}

/// Most sources whose days a preview lists (it answers within the
/// intake's timeout; past it the preview says it is not complete).
pub const PREVIEW_SOURCES: usize = 100;

/// Previews `policy` for a workspace (nothing written).
pub async fn preview<S: ObjectStore>(
    planner: &Planner<S>,
    workspace: &WorkspaceId,
    policy: Option<&Policy>,
    now: DateTime<Utc>,
) -> Result<Preview, ServiceError> {
    let window = |s: &SourceId| policy.and_then(|p| p.window(s));
    let today = now.date_naive();
    let (days, listed) = days_out(
        planner.store(),
        planner.map(),
        workspace,
        window,
        today,
        PREVIEW_SOURCES,
    )
    .await?;
    let scopes: Vec<Scope> = days.iter().map(|d| d.scope(workspace)).collect();
    let plan = planner.plan(&scopes).await?;
    let complete = listed && plan.complete;
    Ok(Preview { days, plan, complete })
}

/// What one enforcement run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    /// Workspaces with a retention record seen.
    pub workspaces: u64,
    /// Workspaces enforced (their day's run recorded).
    pub enforced: u64,
    /// Days found out of their windows.
    pub days: u64,
    /// Deletion requests created (the rest were under way already).
    pub created: u64,
    /// Changes whose grace ended, put in force.
    pub applied: Vec<WorkspaceId>,
    /// Changes whose reminder fired.
    pub reminded: Vec<WorkspaceId>,
    /// Workspaces that failed (tried again on the next run), with why.
    pub failed: Vec<(WorkspaceId, String)>,
    /// Whether the run stopped at its budget before the end.
    pub stopped_early: bool,
}

/// The daily enforcement.
pub struct Enforcer<L, S, C> {
    requests: Requests<L, C>,
    planner: Planner<S>,
    /// A reminder this long before a change's grace ends (none: no reminders).
    pub reminder: Option<Duration>,
}

impl<L, S, C> Enforcer<L, S, C>
where
    L: Ledger + Directory + Regulations + Holds + RetentionLedger,
    S: ObjectStore,
    C: Clock,
{
    pub fn new(requests: Requests<L, C>, planner: Planner<S>) -> Self {
        Enforcer {
            requests,
            planner,
            reminder: Some(Duration::days(1)),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.requests.clock().now()
    }

    /// Runs over every workspace's record until done or `stop_at`.
    pub async fn run_until(&self, stop_at: DateTime<Utc>) -> Result<RetentionReport, ServiceError> {
        let mut report = RetentionReport::default();
        let mut cursor: Option<String> = None;
        loop {
            let (page, next) = self.requests.ledger().retention_page(PAGE, cursor.as_deref()).await?;
            for record in page {
                if self.now() >= stop_at {
                    report.stopped_early = true;
                    return Ok(report);
                }
                report.workspaces += 1;
                let workspace = record.workspace.clone();
                if let Err(e) = self.enforce(record, &mut report, stop_at).await {
                    warn!(workspace = %workspace, error = %e, "retention run failed; the next run tries again");
                    report.failed.push((workspace, e.to_string()));
                }
            }
            cursor = next;
            if cursor.is_none() {
                return Ok(report);
            }
        }
    }

    /// One workspace: its change in grace applied or reminded, then (once
    /// a day) its days out of window handed to deletion requests.
    async fn enforce(
        &self,
        record: Retention,
        report: &mut RetentionReport,
        stop_at: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        let ledger = self.requests.ledger();
        let (workspace, now) = (record.workspace.clone(), self.now());
        let mut record = record;
        if record.settle(now).is_some() {
            let (stored, wrote) = change(ledger, &workspace, |c| Ok(c.settle(now))).await?;
            if wrote {
                report.applied.push(workspace.clone());
            }
            record = stored;
        }
        if let Some(lead) = self.reminder.filter(|lead| record.remind(now, *lead).is_some()) {
            let (stored, wrote) = change(ledger, &workspace, |c| Ok(c.remind(now, lead))).await?;
            if let (true, Some(p)) = (wrote, stored.pending.as_ref()) {
                warn!(
                    workspace = %workspace, effective_at = %p.effective_at, requested_by = %p.requested_by,
                    "a retention change that deletes data takes effect soon; revoke it with DELETE \
                     /v1/workspaces/{workspace}/retention/pending if it was not meant"
                );
                report.reminded.push(workspace.clone());
            }
            record = stored;
        }
        let today = now.date_naive();
        if !record.run_due(today) || !record.limits_anything(now) {
            return Ok(());
        }
        let window = |s: &SourceId| record.window(s, now);
        let (days, _) = days_out(
            self.planner.store(),
            self.planner.map(),
            &workspace,
            window,
            today,
            usize::MAX,
        )
        .await?;
        let Some(requests) = self.hand_out(&workspace, &days, report, stop_at).await? else {
            // Out of time: the next invocation goes on (what was created
            // is found under way then).
            report.stopped_early = true;
            return Ok(());
        };
        report.days += days.len() as u64;
        let run = RetentionRun {
            at: now,
            day: today,
            days: days.len() as u64,
            request_count: requests.len() as u64,
            requests: requests.into_iter().take(MAX_RUN_REQUESTS).collect(),
        };
        let (_, wrote) = change(ledger, &workspace, |c| {
            Ok(c.run_due(today).then(|| c.record_run(run.clone())))
        })
        .await?;
        report.enforced += u64::from(wrote);
        Ok(())
    }

    /// A one-day source deletion for each day, oldest first (one already
    /// under way is found by its scope's lock: one read); `None` if
    /// `stop_at` came first.
    async fn hand_out(
        &self,
        workspace: &WorkspaceId,
        days: &[DayOut],
        report: &mut RetentionReport,
        stop_at: DateTime<Utc>,
    ) -> Result<Option<Vec<RequestId>>, ServiceError> {
        let mut requests = Vec::with_capacity(days.len());
        for day in days {
            if self.now() >= stop_at {
                return Ok(None);
            }
            let scope = day.scope(workspace);
            if let Some(id) = self.requests.ledger().active_for(&scope).await? {
                requests.push(id);
                continue;
            }
            let reason = format!("retention: source {} keeps {} days", day.source, day.window);
            let created = self
                .requests
                .create(scope, RETENTION_ACTOR, Some(reason), None, None)
                .await?;
            report.created += u64::from(created.created);
            requests.push(created.request.id);
        }
        Ok(Some(requests))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::Periods;
    use crate::model::Listing;
    use crate::model::Status;
    use crate::ports::{Clock, ManualClock};
    use crate::testing::{MemoryLedger, MemoryStore};

    const MAP: &str = r#"{"stores": [
        {"name": "archive", "bucket": "arch", "layout": "{workspace}/{source}/{day}/"},
        {"name": "profiles", "bucket": "prof", "layout": "{workspace}/spaces/{space}/"}
    ]}"#;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-10T01:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn ws(w: &str) -> WorkspaceId {
        WorkspaceId::parse(w).unwrap()
    }

    fn policy(default: Window, sources: &[(&str, Window)]) -> Policy {
        Policy::new(
            default,
            sources.iter().map(|(s, d)| (SourceId::parse(s).unwrap(), *d)).collect(),
        )
        .unwrap()
    }

    struct World {
        ledger: MemoryLedger,
        store: MemoryStore,
        clock: ManualClock,
        enforcer: Enforcer<MemoryLedger, MemoryStore, ManualClock>,
    }

    /// Five days (the 6th to the 10th of March) of `web` and `ios` in acme,
    /// and the same of `web` in acme-corp.
    fn world() -> World {
        let (ledger, store, clock) = (MemoryLedger::default(), MemoryStore::new(), ManualClock::new(t0()));
        store.create_bucket("arch", false);
        store.create_bucket("prof", false);
        for w in ["acme", "acme-corp"] {
            for source in ["web", "ios"] {
                for d in 6..=10 {
                    let key = format!("{w}/{source}/2026-03-{d:02}/e.json.gz");
                    store.put("arch", &key, b"x").unwrap();
                }
            }
        }
        store.put("arch", "acme/web/not-a-day/e.json.gz", b"x").unwrap();
        store.put("arch", "acme/web/2026-3-1/e.json.gz", b"x").unwrap();
        let map = DataMap::from_json(MAP).unwrap();
        let requests = Requests::new(ledger.clone(), clock.clone(), Periods::default());
        let enforcer = Enforcer::new(requests, Planner::new(store.clone(), map));
        World {
            ledger,
            store,
            clock,
            enforcer,
        }
    }

    async fn in_force(w: &World, workspace: &str, p: Policy) {
        let (_, pending) = set_policy(&w.ledger, &ws(workspace), p, "ann", w.clock.now(), Duration::zero())
            .await
            .unwrap();
        assert!(!pending, "no grace asked");
    }

    async fn days_requested(w: &World, workspace: &str) -> Vec<String> {
        let page = w
            .ledger
            .list(&Listing::Workspace(ws(workspace)), 100, None)
            .await
            .unwrap();
        let mut days: Vec<String> = page
            .items
            .iter()
            .map(|r| match &r.scope {
                Scope::SourceDays { source, from, to, .. } => {
                    assert_eq!(from, to, "one day per request");
                    assert_eq!(r.requested_by, RETENTION_ACTOR);
                    format!("{source}/{from}")
                }
                other => panic!("not a source's day: {other:?}"),
            })
            .collect();
        days.sort();
        days
    }

    #[tokio::test]
    async fn each_source_loses_exactly_the_days_out_of_its_window_and_nothing_of_others() {
        let w = world();
        in_force(&w, "acme", policy(Some(2), &[("ios", None)])).await;
        let report = w.enforcer.run_until(t0() + Duration::hours(1)).await.unwrap();
        assert_eq!((report.enforced, report.days, report.created), (1, 2, 2), "{report:?}");
        assert_eq!(
            days_requested(&w, "acme").await,
            ["web/2026-03-06", "web/2026-03-07"],
            "ios is unlimited; today and the two days before stay; malformed days are not days"
        );
        assert!(days_requested(&w, "acme-corp").await.is_empty(), "no policy there");
        assert_eq!(w.store.keys("arch").len(), 22, "enforcement itself deletes nothing");
        let r = current(&w.ledger, &ws("acme"), w.clock.now()).await.unwrap();
        let run = r.last_run.unwrap();
        assert_eq!((run.days, run.request_count, run.requests.len()), (2, 2, 2));
    }

    #[tokio::test]
    async fn a_repeated_run_creates_nothing_and_a_later_day_catches_what_was_missed() {
        let w = world();
        in_force(&w, "acme", policy(Some(3), &[])).await;
        let first = w.enforcer.run_until(t0() + Duration::hours(1)).await.unwrap();
        assert_eq!(first.created, 2, "the 6th of both sources: {first:?}");
        let again = w.enforcer.run_until(t0() + Duration::hours(1)).await.unwrap();
        assert_eq!((again.enforced, again.created), (0, 0), "once a day");
        // Two days later (a day missed), the days still listed are found
        // under way, and the two that fell out since are added.
        w.clock.advance(Duration::days(2));
        let later = w.enforcer.run_until(w.clock.now() + Duration::hours(1)).await.unwrap();
        assert_eq!((later.enforced, later.days, later.created), (1, 6, 4), "{later:?}");
        assert_eq!(days_requested(&w, "acme").await.len(), 6);
    }

    #[tokio::test]
    async fn a_first_window_waits_its_grace_is_reminded_and_may_be_revoked() {
        let w = world();
        let grace = Duration::days(5);
        let (_, pending) = set_policy(&w.ledger, &ws("acme"), policy(Some(2), &[]), "ann", t0(), grace)
            .await
            .unwrap();
        assert!(pending);
        let report = w.enforcer.run_until(t0() + Duration::hours(1)).await.unwrap();
        assert_eq!((report.days, report.reminded.len()), (0, 0), "in grace: nothing");
        w.clock.advance(Duration::days(4) + Duration::hours(1));
        let report = w.enforcer.run_until(w.clock.now() + Duration::hours(1)).await.unwrap();
        assert_eq!((report.days, report.reminded.len()), (0, 1), "{report:?}");
        let report = w.enforcer.run_until(w.clock.now() + Duration::hours(1)).await.unwrap();
        assert!(report.reminded.is_empty(), "reminded once");
        w.clock.advance(Duration::hours(23));
        let report = w.enforcer.run_until(w.clock.now() + Duration::hours(1)).await.unwrap();
        assert_eq!(report.applied, [ws("acme")]);
        assert_eq!(
            report.created, 10,
            "the 6th to the 10th of both sources: before the 13th"
        );
        // Another workspace's change, revoked in its grace, deletes nothing.
        let now = w.clock.now();
        set_policy(&w.ledger, &ws("acme-corp"), policy(Some(1), &[]), "cy", now, grace)
            .await
            .unwrap();
        revoke_change(&w.ledger, &ws("acme-corp"), "cy", now).await.unwrap();
        w.clock.advance(Duration::days(6));
        let report = w.enforcer.run_until(w.clock.now() + Duration::hours(1)).await.unwrap();
        assert!(days_requested(&w, "acme-corp").await.is_empty(), "{report:?}");
    }

    #[tokio::test]
    async fn a_run_stops_at_its_budget_and_the_next_one_goes_on() {
        let w = world();
        in_force(&w, "acme", policy(Some(2), &[])).await;
        in_force(&w, "acme-corp", policy(Some(2), &[])).await;
        let report = w.enforcer.run_until(t0()).await.unwrap();
        assert!(report.stopped_early && report.enforced == 0, "{report:?}");
        let report = w.enforcer.run_until(t0() + Duration::hours(1)).await.unwrap();
        assert_eq!(report.enforced, 2, "{report:?}");
    }

    #[tokio::test]
    async fn a_preview_counts_what_a_policy_would_delete_and_writes_nothing() {
        let w = world();
        let planner = Planner::new(w.store.clone(), DataMap::from_json(MAP).unwrap());
        let p = policy(None, &[("web", Some(3))]);
        let preview = preview(&planner, &ws("acme"), Some(&p), t0()).await.unwrap();
        let days: Vec<String> = preview.days.iter().map(|d| d.day.to_string()).collect();
        assert_eq!(days, ["2026-03-06"]);
        assert_eq!(preview.plan.totals.objects, 1);
        assert_eq!(preview.plan.prefixes[0].prefix, "acme/web/2026-03-06/");
        assert!(preview.complete);
        assert!(w.ledger.retention(&ws("acme")).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_held_workspace_gets_its_requests_which_wait_for_the_release() {
        let w = world();
        in_force(&w, "acme", policy(Some(3), &[])).await;
        w.enforcer
            .requests
            .place_hold(ws("acme"), "litigation".into(), "ops")
            .await
            .unwrap();
        let report = w.enforcer.run_until(t0() + Duration::hours(1)).await.unwrap();
        assert_eq!(report.created, 2);
        let page = w.ledger.list(&Listing::Workspace(ws("acme")), 10, None).await.unwrap();
        assert!(page
            .items
            .iter()
            .all(|r| r.status == Status::Scheduled || r.status == Status::OnHold));
    }

    /// A clock that moves a second each time it is read.
    #[derive(Clone)]
    struct Ticking(ManualClock);

    impl Clock for Ticking {
        fn now(&self) -> DateTime<Utc> {
            self.0.advance(Duration::seconds(1));
            self.0.now()
        }
    }

    #[tokio::test]
    async fn a_workspace_cut_short_by_the_budget_is_finished_by_the_next_run_and_nothing_twice() {
        let w = world();
        in_force(&w, "acme", policy(Some(1), &[])).await;
        let clock = Ticking(w.clock.clone());
        let map = DataMap::from_json(MAP).unwrap();
        let requests = Requests::new(w.ledger.clone(), clock.clone(), Periods::default());
        let enforcer = Enforcer::new(requests, Planner::new(w.store.clone(), map));
        let first = enforcer.run_until(clock.0.now() + Duration::seconds(6)).await.unwrap();
        assert!(first.stopped_early && first.enforced == 0, "{first:?}");
        assert!(first.created > 0 && first.created < 6, "{first:?}");
        let second = enforcer.run_until(clock.0.now() + Duration::hours(1)).await.unwrap();
        assert_eq!(second.enforced, 1, "{second:?}");
        assert_eq!(
            first.created + second.created,
            6,
            "the 6th to the 8th of both sources, once each"
        );
        assert_eq!(days_requested(&w, "acme").await.len(), 6);
    }

    #[tokio::test]
    async fn the_same_policy_put_again_changes_nothing() {
        let w = world();
        let grace = Duration::days(5);
        let (first, _) = set_policy(&w.ledger, &ws("acme"), policy(Some(2), &[]), "ann", t0(), grace)
            .await
            .unwrap();
        let later = t0() + Duration::days(2);
        let (again, pending) = set_policy(&w.ledger, &ws("acme"), policy(Some(2), &[]), "bob", later, grace)
            .await
            .unwrap();
        assert!(pending);
        assert_eq!(again, first, "the grace is not restarted, no change recorded");
    }

    #[tokio::test]
    async fn a_preview_lists_a_bounded_number_of_sources_and_says_so() {
        let w = world();
        for n in 0..PREVIEW_SOURCES {
            w.store
                .put("arch", &format!("big/s{n:03}/2026-03-01/e.json.gz"), b"x")
                .unwrap();
        }
        let planner = Planner::new(w.store.clone(), DataMap::from_json(MAP).unwrap());
        let p = policy(Some(1), &[]);
        let all = preview(&planner, &ws("big"), Some(&p), t0()).await.unwrap();
        assert_eq!((all.days.len(), all.complete), (PREVIEW_SOURCES, true));
        w.store.put("arch", "big/zzz/2026-03-01/e.json.gz", b"x").unwrap();
        let more = preview(&planner, &ws("big"), Some(&p), t0()).await.unwrap();
        assert_eq!((more.days.len(), more.complete), (PREVIEW_SOURCES, false));
    }
}
