//! EventBridge Scheduler and Lambda, as the purge meets them, in the
//! simulation's time.
//!
//! - `VirtualClock`: the `Clock` port on tokio's (paused) clock, from a
//!   fixed start: a simulated day passes in however long the work takes.
//! - `SimTimers`: the `Timers` port. A one-shot schedule, named as the
//!   Scheduler adapter names it (so arming it again while it waits is a
//!   no-op), fires once at the start of the minute after its time and is
//!   deleted (`ActionAfterCompletion: DELETE`); disarming removes it.
//!   Reminders purge nothing and are not fired.
//! - `Lambda`: each fired schedule is an asynchronous invocation of the
//!   purge function: queued while the reserved concurrency is in use, run
//!   by a fresh `PurgeHandler` (one process's state, as a new container
//!   has), stopped at `lambda_timeout` however far it got, retried twice
//!   (after 1 and 2 minutes) when it returns an error, as Lambda retries
//!   asynchronous invocations. Billed by the millisecond.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use deletion_core::ids::RequestId;
use deletion_core::ports::{Clock, Timers, Wake};
use deletion_core::TimerError;
use purge::PurgeEvent;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The `Clock` on tokio's clock.
#[derive(Clone, Copy, Debug)]
pub struct VirtualClock {
    base: DateTime<Utc>,
    start: Instant,
}

impl VirtualClock {
    pub fn new(base: DateTime<Utc>) -> VirtualClock {
        VirtualClock {
            base,
            start: Instant::now(),
        }
    }

    /// The tokio instant of a time of this clock (now, if it is past).
    pub fn instant(&self, at: DateTime<Utc>) -> Instant {
        let since = (at - self.base).to_std().unwrap_or(Duration::ZERO);
        (self.start + since).max(Instant::now())
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(self.start)
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.elapsed()).unwrap_or_default();
        (self.base + elapsed).trunc_subsecs(3)
    }
}

/// A schedule that fired: the purge function's input.
#[derive(Debug, Clone)]
pub struct Fired {
    pub event: PurgeEvent,
    /// Lambda's delivery attempt (1: the first).
    pub attempt: u32,
}

/// Scheduler's one-shot schedules (clones share them).
#[derive(Clone)]
pub struct SimTimers {
    pending: Arc<Mutex<HashSet<String>>>,
    tx: mpsc::UnboundedSender<Fired>,
    clock: VirtualClock,
    created: Arc<Mutex<u64>>,
    rates: Arc<Mutex<Rates>>,
    /// Invocations a second Scheduler sends at most.
    fires_per_s: f64,
}

/// Schedules created and fired per second of the run, for their quotas.
#[derive(Debug, Default)]
struct Rates {
    created: (u64, u64),
    fired: (u64, u64),
    peak_created: u64,
    peak_fired: u64,
}

/// Counts one more in this second's `(second, count)`; the count.
fn count_in(slot: &mut (u64, u64), second: u64) -> u64 {
    if slot.0 != second {
        *slot = (second, 0);
    }
    slot.1 += 1;
    slot.1
}

impl SimTimers {
    pub fn new(clock: VirtualClock, fires_per_s: f64) -> (SimTimers, mpsc::UnboundedReceiver<Fired>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let timers = SimTimers {
            pending: Arc::default(),
            tx,
            clock,
            created: Arc::default(),
            rates: Arc::default(),
            fires_per_s,
        };
        (timers, rx)
    }

    /// The most schedules created, and fired, in one second.
    pub fn peaks(&self) -> (u64, u64) {
        let r = self.rates.lock().unwrap_or_else(|p| p.into_inner());
        (r.peak_created, r.peak_fired)
    }

    /// Schedules created so far (each fires once: the Scheduler bill).
    pub fn created(&self) -> u64 {
        *self.created.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends an invocation now (Lambda's own retry of a failed one).
    pub fn redeliver(&self, fired: Fired) {
        let _ = self.tx.send(fired);
    }

    fn schedule(&self, name: String, at: DateTime<Utc>, event: PurgeEvent) {
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            if !pending.insert(name.clone()) {
                return;
            }
        }
        *self.created.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        {
            let mut r = self.rates.lock().unwrap_or_else(|p| p.into_inner());
            let n = count_in(&mut r.created, self.clock.elapsed().as_secs());
            r.peak_created = r.peak_created.max(n);
        }
        // At the start of the minute after `at`.
        let minute = at.timestamp().div_euclid(60) * 60 + 60;
        let due = DateTime::from_timestamp(minute, 0).unwrap_or(at);
        let when = self.clock.instant(due);
        let (pending, tx, rates, clock) = (self.pending.clone(), self.tx.clone(), self.rates.clone(), self.clock);
        let most = self.fires_per_s.max(1.0) as u64;
        tokio::spawn(async move {
            tokio::time::sleep_until(when).await;
            // Beyond the invocations' rate, Scheduler sends it a second later.
            loop {
                let n = {
                    let mut r = rates.lock().unwrap_or_else(|p| p.into_inner());
                    let n = count_in(&mut r.fired, clock.elapsed().as_secs());
                    if n <= most {
                        r.peak_fired = r.peak_fired.max(n);
                    }
                    n
                };
                if n <= most {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let still = pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&name);
            if still {
                let _ = tx.send(Fired { event, attempt: 1 });
            }
        });
    }
}

fn event(id: &RequestId, retry: bool) -> PurgeEvent {
    PurgeEvent {
        request_id: id.to_string(),
        retry,
        remind: false,
    }
}

#[async_trait]
impl Timers for SimTimers {
    async fn arm(&self, id: &RequestId, at: DateTime<Utc>) -> Result<(), TimerError> {
        self.schedule(format!("grace-{id}"), at, event(id, false));
        Ok(())
    }

    async fn disarm(&self, id: &RequestId) -> Result<(), TimerError> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&format!("grace-{id}"));
        Ok(())
    }

    async fn wake(&self, id: &RequestId, why: Wake, at: DateTime<Utc>) -> Result<(), TimerError> {
        let (name, retry) = match why {
            Wake::Worker(n) => (format!("purge-{id}-w{n}"), false),
            Wake::HandOff(shard) => (format!("purge-{id}-h{shard}"), false),
            Wake::Sweep { retry } => (format!("purge-{id}-s"), retry),
            Wake::Reminder => return Ok(()),
        };
        self.schedule(name, at, event(id, retry));
        Ok(())
    }
}

/// What the invocations did, for the report.
#[derive(Debug, Clone, Default)]
pub struct LambdaTally {
    pub invocations: u64,
    pub sweeps: u64,
    /// Invocations stopped at the time limit.
    pub timed_out: u64,
    /// Invocations that returned an error (retried by Lambda).
    pub errors: u64,
    pub gb_seconds: f64,
    pub running: u64,
    pub peak_running: u64,
    /// Outcomes by name (`completed`, `busy`, `handed_off`...).
    pub outcomes: std::collections::BTreeMap<String, u64>,
}

pub type SharedTally = Arc<Mutex<LambdaTally>>;

pub fn lock(t: &SharedTally) -> std::sync::MutexGuard<'_, LambdaTally> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}

/// Bills one invocation of `elapsed` at `memory_mb`.
pub fn bill(tally: &SharedTally, elapsed: Duration, memory_mb: u32) {
    let ms = elapsed.as_millis().max(1) as f64;
    lock(tally).gb_seconds += ms / 1000.0 * f64::from(memory_mb) / 1024.0;
}

/// Runs one invocation's `work` as Lambda does: stopped at `timeout`
/// however far it got (`None`, counted as timed out), billed by the
/// millisecond at `memory_mb` either way.
pub async fn invocation<F: std::future::Future>(
    tally: &SharedTally,
    timeout: Duration,
    memory_mb: u32,
    work: F,
) -> Option<F::Output> {
    let start = Instant::now();
    let ran = tokio::time::timeout(timeout, work).await;
    bill(tally, start.elapsed(), memory_mb);
    if ran.is_err() {
        lock(tally).timed_out += 1;
    }
    ran.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Beyond Scheduler's invocation rate, schedules due together fire a
    /// second later, and later again: none is lost, none early.
    #[tokio::test(start_paused = true)]
    async fn schedules_due_together_fire_at_the_invocation_rate() {
        let base = DateTime::from_timestamp(1_764_547_200, 0).unwrap_or_default();
        let clock = VirtualClock::new(base);
        let (timers, mut fired) = SimTimers::new(clock, 2.0);
        for _ in 0..5 {
            let id = RequestId::new();
            timers.arm(&id, base).await.unwrap_or_else(|e| panic!("{e}"));
        }
        let mut at = Vec::new();
        for _ in 0..5 {
            if fired.recv().await.is_some() {
                at.push(clock.elapsed().as_secs());
            }
        }
        // Due at the start of the next minute: two, two, then one.
        assert_eq!(at, [60, 60, 61, 61, 62]);
        assert_eq!(timers.peaks(), (5, 2));
        assert_eq!(timers.created(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn an_invocation_is_stopped_at_fifteen_minutes_and_billed_for_them() {
        let tally = SharedTally::default();
        let fifteen = Duration::from_secs(15 * 60);
        let started = Instant::now();
        let overrun = invocation(&tally, fifteen, 1024, tokio::time::sleep(Duration::from_secs(20 * 60))).await;
        assert!(overrun.is_none());
        assert_eq!(started.elapsed(), fifteen, "stopped at the limit, not at its end");
        let quick = invocation(&tally, fifteen, 2048, async { 7 }).await;
        assert_eq!(quick, Some(7));
        let t = lock(&tally).clone();
        assert_eq!(t.timed_out, 1);
        // 900 s at 1 GB, and the quick one's millisecond at 2 GB.
        assert!((t.gb_seconds - 900.002).abs() < 1e-9, "{}", t.gb_seconds);
    }
}
