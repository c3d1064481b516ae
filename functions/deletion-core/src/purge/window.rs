//! How many DeleteObjects calls a worker keeps in flight: additive
//! increase, multiplicative decrease on S3's `SlowDown`.
//!
//! - The SDK's adaptive retry slows whole requests S3 throttles (503) but
//!   hides them until its last attempt; the store counts them as they come
//!   (`ObjectStore::slow_downs`). A DeleteObjects answer can also refuse
//!   single keys with `SlowDown`. A page that saw either halves the window
//!   (never below one); each page deleted without one adds one, up to
//!   `DELETES_IN_FLIGHT`.
//! - While the window is below its top the worker starts no more workers:
//!   S3 asks for less, not more. S3 asking for less with the window at one
//!   already makes one lane stop (`step_down`), its shard handed back, if
//!   others still work on the request: the workers shrink to what S3 takes
//!   and grow again by the top-up once pages are clean.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// The code S3 gives a key it refuses for load.
pub(super) const SLOW_DOWN: &str = "SlowDown";

#[derive(Debug)]
pub(super) struct Window {
    now: AtomicUsize,
    top: usize,
    /// The store's count of slow-downs when last looked at.
    seen: AtomicU64,
    /// S3 asked for less with the window at one already: a lane should
    /// stop (taken by the first lane that looks).
    crowded: AtomicBool,
}

impl Window {
    pub(super) fn new(top: usize) -> Window {
        let top = top.max(1);
        Window {
            now: AtomicUsize::new(top),
            top,
            seen: AtomicU64::new(0),
            crowded: AtomicBool::new(false),
        }
    }

    /// Deletes that may be in flight now.
    pub(super) fn size(&self) -> usize {
        self.now.load(Ordering::Relaxed)
    }

    /// Whether S3 asked for less lately (the window is below its top).
    pub(super) fn backing_off(&self) -> bool {
        self.size() < self.top
    }

    /// S3 asked for less (keys refused with `SlowDown`, a 503 heard, or a
    /// call throttled past the SDK's retries): halve.
    pub(super) fn slowed(&self) {
        let was = self
            .now
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some((n / 2).max(1)));
        if was.is_ok_and(|n| n <= 1) {
            self.crowded.store(true, Ordering::Relaxed);
        }
    }

    /// Whether this lane should stop because S3 kept asking for less with
    /// one delete in flight: true for one lane per such answer.
    pub(super) fn step_down(&self) -> bool {
        self.crowded.swap(false, Ordering::Relaxed)
    }

    /// Whether the store's count of slow-downs (`ObjectStore::slow_downs`:
    /// S3's 503s, retried by the SDK or not) grew since anyone looked:
    /// once per growth, however many lanes look.
    pub(super) fn heard(&self, slow_downs: u64) -> bool {
        self.seen.fetch_max(slow_downs, Ordering::Relaxed) < slow_downs
    }

    /// A page deleted without `SlowDown`: one more, up to the top.
    pub(super) fn cleared(&self) {
        let top = self.top;
        let _ = self
            .now
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some((n + 1).min(top)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_halves_on_slow_down_and_grows_back_by_one() {
        let w = Window::new(8);
        assert_eq!((w.size(), w.backing_off()), (8, false));
        w.slowed();
        w.slowed();
        assert_eq!((w.size(), w.backing_off()), (2, true));
        w.slowed();
        w.slowed();
        assert_eq!(w.size(), 1, "never below one");
        for _ in 0..3 {
            w.cleared();
        }
        assert_eq!(w.size(), 4);
        for _ in 0..10 {
            w.cleared();
        }
        assert_eq!((w.size(), w.backing_off()), (8, false), "never above the top");
        assert_eq!(Window::new(0).size(), 1);
    }

    #[test]
    fn a_slow_down_at_one_in_flight_asks_one_lane_to_step_down() {
        let w = Window::new(2);
        w.slowed();
        assert!(!w.step_down(), "halved to one: no lane stops yet");
        w.slowed();
        assert!(w.step_down(), "asked for less at one");
        assert!(!w.step_down(), "one lane per answer");
        assert!(w.heard(3) && !w.heard(3) && !w.heard(2) && w.heard(4));
    }
}
