//! The figures of a run, and its AWS bill at list prices.

use std::time::Duration;

use deletion_core::model::Status;

use crate::limits::Limits;
use crate::scenario::Outcome;

/// What the README's table shows for one run.
#[derive(Debug, Clone)]
pub struct Figures {
    pub name: String,
    pub entries: u64,
    /// From the first grace's end to the last verification.
    pub wall: Option<Duration>,
    /// Deleted / (partitions holding entries in scope × their rate), over
    /// the whole run while entries were left.
    pub achieved_whole_run: Option<f64>,
    pub completed: usize,
    pub requests: usize,
    pub objects_per_s: f64,
    /// Deleted / (available partitions × their rate), after the first hour.
    pub achieved_over_limit: Option<f64>,
    pub peak_cursors: u64,
    pub mean_cursors: f64,
    pub peak_partitions: usize,
    pub s3_requests: u64,
    pub slow_down_rate: f64,
    pub failed_rate: f64,
    pub ddb_throttles: u64,
    pub wru_per_1000: f64,
    pub rru_per_1000: f64,
    pub peak_partition_wcu: f64,
    pub invocations: u64,
    pub timed_out: u64,
    pub gb_seconds: f64,
    /// Dollars per billion entries purged: Lambda, DynamoDB, S3, Scheduler.
    pub bill_per_billion: [f64; 4],
    pub left: u64,
    pub outside_touched: u64,
    /// The latest a tenant finished after its grace ended.
    pub slowest_tenant: Option<Duration>,
    /// Against their quotas: a ledger partition's write units in one
    /// second, schedules created and fired in one second, purge
    /// invocations running at once.
    pub peak_schedules_created: u64,
    pub peak_schedules_fired: u64,
    pub peak_running: u64,
}

impl Figures {
    pub fn of(o: &Outcome, limits: &Limits) -> Figures {
        let deleting: Vec<_> = o.samples.iter().take_while(|s| s.deleted < o.entries).collect();
        let after_hour: Vec<_> = o
            .samples
            .windows(2)
            .filter(|w| w[0].at >= Duration::from_secs(3600) && w[0].deleted < o.entries)
            .collect();
        let (got, could) = achieved(&after_hour);
        let whole: Vec<_> = o.samples.windows(2).filter(|w| w[0].deleted < o.entries).collect();
        let (whole_got, whole_could) = achieved(&whole);
        let wall = o.span;
        let slowest = o
            .finished_after
            .iter()
            .copied()
            .collect::<Option<Vec<_>>>()
            .and_then(|v| v.into_iter().max());
        let s3_requests = o.s3.list_requests + o.s3.delete_requests;
        let per_k = |x: f64| x * 1000.0 / o.entries.max(1) as f64;
        let lambda = o.lambda.gb_seconds * limits.price_lambda_gb_s
            + (o.lambda.invocations + o.lambda.sweeps) as f64 * limits.price_lambda_requests / 1e6;
        let ddb = o.ddb.write_units * limits.price_wru / 1e6 + o.ddb.read_units * limits.price_rru / 1e6;
        let s3 = o.s3.list_requests as f64 * limits.price_s3_list / 1000.0;
        let sched = o.schedules as f64 * limits.price_schedules / 1e6;
        let per_billion = |d: f64| d * 1e9 / o.entries.max(1) as f64;
        Figures {
            name: o.name.clone(),
            entries: o.entries,
            wall,
            completed: o.statuses.iter().filter(|s| **s == Status::Completed).count(),
            requests: o.statuses.len(),
            objects_per_s: wall.map_or(0.0, |w| o.entries as f64 / w.as_secs_f64().max(1.0)),
            achieved_over_limit: (could > 0.0).then(|| got / could),
            achieved_whole_run: (whole_could > 0.0).then(|| whole_got / whole_could),
            peak_cursors: o.samples.iter().map(|s| s.cursors).max().unwrap_or(0),
            mean_cursors: deleting.iter().map(|s| s.cursors as f64).sum::<f64>() / deleting.len().max(1) as f64,
            peak_partitions: o.samples.iter().map(|s| s.partitions).max().unwrap_or(0),
            s3_requests,
            slow_down_rate: o.s3.slow_downs as f64 / s3_requests.max(1) as f64,
            failed_rate: o.s3.failed as f64 / s3_requests.max(1) as f64,
            ddb_throttles: o.ddb.throttles,
            wru_per_1000: per_k(o.ddb.write_units),
            rru_per_1000: per_k(o.ddb.read_units),
            peak_partition_wcu: o.ddb.peak_partition_wcu,
            invocations: o.lambda.invocations,
            timed_out: o.lambda.timed_out,
            gb_seconds: o.lambda.gb_seconds,
            bill_per_billion: [
                per_billion(lambda),
                per_billion(ddb),
                per_billion(s3),
                per_billion(sched),
            ],
            left: o.left,
            outside_touched: o.s3.outside + o.outside_before.saturating_sub(o.outside_after),
            slowest_tenant: slowest,
            peak_schedules_created: o.schedule_peaks.0,
            peak_schedules_fired: o.schedule_peaks.1,
            peak_running: o.lambda.peak_running,
        }
    }

    pub fn bill_total(&self) -> f64 {
        self.bill_per_billion.iter().sum()
    }
}

/// Entries deleted and what the limit allowed, over consecutive samples.
fn achieved(windows: &[&[crate::scenario::Sample]]) -> (f64, f64) {
    windows.iter().fold((0.0, 0.0), |(g, c), w| {
        let dt = (w[1].at - w[0].at).as_secs_f64();
        (g + (w[1].deleted - w[0].deleted) as f64, c + w[0].limit_per_s * dt)
    })
}

fn hours(d: Option<Duration>) -> String {
    d.map_or("not finished".into(), |d| format!("{:.2} h", d.as_secs_f64() / 3600.0))
}

/// The table, one row per run (Markdown).
pub fn table(rows: &[Figures]) -> String {
    let mut out = String::from(
        "| scenario | entries | done | first grace end → last COMPLETED | slowest request | objects/s | achieved/limit (whole run; after 1 h) | cursors peak/mean | partitions | S3 503 rate | failed after retries | DynamoDB throttles | WRU/1k | RRU/1k | invocations (timed out) | GB-s | $ per billion (λ/DDB/S3/sched = total) | left | outside touched |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|\n",
    );
    for f in rows {
        out.push_str(&format!(
            "| {} | {} | {}/{} | {} | {} | {:.0} | {}; {} | {}/{:.1} | {} | {:.2}% | {:.3}% | {} | {:.2} | {:.2} | {} ({}) | {:.0} | {:.2}/{:.2}/{:.2}/{:.2} = {:.2} | {} | {} |\n",
            f.name,
            f.entries,
            f.completed,
            f.requests,
            hours(f.wall),
            hours(f.slowest_tenant),
            f.objects_per_s,
            f.achieved_whole_run.map_or("n/a".into(), |r| format!("{r:.2}")),
            f.achieved_over_limit.map_or("n/a (under 1 h)".into(), |r| format!("{r:.2}")),
            f.peak_cursors,
            f.mean_cursors,
            f.peak_partitions,
            f.slow_down_rate * 100.0,
            f.failed_rate * 100.0,
            f.ddb_throttles,
            f.wru_per_1000,
            f.rru_per_1000,
            f.invocations,
            f.timed_out,
            f.gb_seconds,
            f.bill_per_billion[0],
            f.bill_per_billion[1],
            f.bill_per_billion[2],
            f.bill_per_billion[3],
            f.bill_total(),
            f.left,
            f.outside_touched,
        ));
    }
    out
}

/// The quotas each run came nearest (Markdown): the peak against the limit.
pub fn quotas(rows: &[Figures], limits: &Limits) -> String {
    let mut out = format!(
        "| scenario | ledger partition WCU/s (limit {:.0}) | CreateSchedule/s (limit {:.0}) | schedules fired/s (limit {:.0}) | purge invocations at once (reserved {}) |\n|---|---:|---:|---:|---:|\n",
        limits.ddb_wcu_per_partition,
        limits.scheduler_creates_per_s,
        limits.scheduler_invocations_per_s,
        limits.purge_reserved_concurrency
    );
    for f in rows {
        out.push_str(&format!(
            "| {} | {:.0} | {} | {} | {} |\n",
            f.name, f.peak_partition_wcu, f.peak_schedules_created, f.peak_schedules_fired, f.peak_running
        ));
    }
    out
}

/// The run minute by minute, as CSV: since the first grace ended (s),
/// entries deleted, entries a second over the minute, the physical limit
/// then (partitions holding entries × their rate), partitions, cursors at
/// work, purge invocations running.
pub fn timeline(o: &Outcome) -> String {
    let mut out = String::from("at_s,deleted,per_s,limit_per_s,partitions,cursors,invocations\n");
    let mut last: Option<&crate::scenario::Sample> = None;
    for s in &o.samples {
        let per_s = last.map_or(0.0, |l| {
            let dt = (s.at - l.at).as_secs_f64();
            if dt > 0.0 {
                (s.deleted - l.deleted) as f64 / dt
            } else {
                0.0
            }
        });
        out.push_str(&format!(
            "{},{},{:.0},{:.0},{},{},{}\n",
            s.at.as_secs(),
            s.deleted,
            per_s,
            s.limit_per_s,
            s.partitions,
            s.cursors,
            s.running
        ));
        last = Some(s);
    }
    out
}
