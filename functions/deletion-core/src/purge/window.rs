//! How many DeleteObjects calls a worker keeps in flight: additive
//! increase, multiplicative decrease on S3's `SlowDown`.
//!
//! - The SDK's adaptive retry already slows whole requests S3 throttles
//!   (503); a DeleteObjects answer can also refuse single keys with
//!   `SlowDown`. Each such answer halves the window (never below one); each
//!   page deleted without one adds one, up to `DELETES_IN_FLIGHT`.
//! - While the window is below its top the worker starts no more workers:
//!   S3 asks for less, not more.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The code S3 gives a key it refuses for load.
pub(super) const SLOW_DOWN: &str = "SlowDown";

#[derive(Debug)]
pub(super) struct Window {
    now: AtomicUsize,
    top: usize,
}

impl Window {
    pub(super) fn new(top: usize) -> Window {
        let top = top.max(1);
        Window {
            now: AtomicUsize::new(top),
            top,
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

    /// A DeleteObjects answer refused keys with `SlowDown`: halve.
    pub(super) fn slowed(&self) {
        let _ = self
            .now
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some((n / 2).max(1)));
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
}
