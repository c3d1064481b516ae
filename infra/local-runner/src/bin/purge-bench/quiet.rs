//! Waiting for the servers to go quiet before a timed run: a population
//! just written (or a run just finished) leaves Garage with background
//! work (its metadata trees, table GC) that would otherwise fall on the
//! next run, whichever tool it is. The servers' processes are named by
//! `SERVER_PIDS` (comma-separated; `infra/bench.sh` sets it); without
//! them nothing is waited for.

use std::time::{Duration, Instant};

/// Quiet: the servers together used less than this share of one core
/// over `WINDOW`.
const QUIET_SHARE: f64 = 0.05;
const WINDOW: Duration = Duration::from_secs(2);
/// Never wait longer than this (the run goes on, and says so).
const MOST: Duration = Duration::from_secs(180);

/// The processes `SERVER_PIDS` names.
pub fn server_pids() -> Vec<u32> {
    std::env::var("SERVER_PIDS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|p| p.trim().parse().ok())
        .collect()
}

/// CPU seconds (user and system) `pid` used so far; `None` once it is gone.
fn cpu_of(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may hold spaces), from field 3 on.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf reads a constant of the system.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / per_second.max(1.0))
}

fn cpu_of_all(pids: &[u32]) -> f64 {
    pids.iter().filter_map(|&p| cpu_of(p)).sum()
}

/// Waits until the servers are quiet (or `MOST` passed); returns how long
/// it waited and whether they went quiet.
pub async fn settle(pids: &[u32]) -> (Duration, bool) {
    let start = Instant::now();
    if pids.is_empty() {
        return (Duration::ZERO, true);
    }
    loop {
        let before = cpu_of_all(pids);
        tokio::time::sleep(WINDOW).await;
        let used = cpu_of_all(pids) - before;
        if used < QUIET_SHARE * WINDOW.as_secs_f64() {
            return (start.elapsed(), true);
        }
        if start.elapsed() >= MOST {
            return (start.elapsed(), false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CPU seconds this process used, as the kernel's rusage tells them.
    fn rusage_seconds() -> f64 {
        // SAFETY: getrusage fills the zeroed struct it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) }, 0);
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        secs(usage.ru_utime) + secs(usage.ru_stime)
    }

    #[test]
    fn a_process_cpu_time_is_the_one_its_rusage_tells_and_a_gone_one_has_none() {
        // Some work, so that there is CPU time to read (no clock involved).
        let mut x = 0u64;
        for _ in 0..20_000_000 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
        }
        let (stat, usage) = (cpu_of(std::process::id()).expect("own stat"), rusage_seconds());
        // Both count the same ticks (of 10 ms), read a moment apart.
        assert!(stat > 0.0 && (stat - usage).abs() < 0.05, "stat {stat}, rusage {usage}");
        assert_eq!(cpu_of(u32::MAX), None);
    }

    #[tokio::test]
    async fn nothing_to_wait_for_without_servers() {
        assert_eq!(settle(&[]).await, (Duration::ZERO, true));
    }
}
