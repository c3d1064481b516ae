//! Cutting a flat prefix (keys directly under it, no sub-prefixes to share)
//! into key ranges, by probing: one listing of one key after a midpoint
//! says whether anything lies above it.
//!
//! - Only a prefix with more than one page of keys is cut.
//! - The cut points are strings between keys, chosen by halving the key
//!   space between a known key and an upper end; a cut point with nothing
//!   above it (below the upper end) is not used, and the lower half is
//!   probed instead.
//! - Whatever the probes find, the ranges made of the cut points follow
//!   one another with both outer ends open (`claim::Cut`): every key under
//!   the prefix lies in exactly one; the probes only decide how even they
//!   are.

use super::claim::Cut;
use super::Purger;
use crate::error::StoreError;
use crate::ports::{start_after, Clock, Holds, Ledger, ObjectStore, Regulations, Timers};

/// Ranges a flat prefix is cut into, at most; at least `MIN_FLAT` are
/// sought (one per lane of the purge's workers, within these bounds).
pub(super) const MAX_FLAT: usize = 64;
pub(super) const MIN_FLAT: usize = 16;
/// The symbols cut points are made of: printable ASCII, so a cut point is
/// a valid `StartAfter` for every store.
const LOW: u8 = 0x20;
const HIGH: u8 = 0x7e;

impl<L: Ledger + Regulations + Holds, S: ObjectStore, T: Timers, C: Clock> Purger<L, S, T, C> {
    /// The ranges of a flat prefix, or `None` when one page lists it whole.
    pub(super) async fn cut_flat(&self, bucket: &str, prefix: &str) -> Result<Option<Vec<Cut>>, StoreError> {
        let first = self.store.list_page(bucket, prefix, None, 1000).await?;
        let Some(lowest) = first.entries.iter().map(|e| e.key.clone()).min() else {
            return Ok(None);
        };
        if first.next.is_none() {
            return Ok(None);
        }
        // The top of the key space (a key above it still falls in the
        // last range, whose upper end is open).
        let top = format!("{prefix}{}", HIGH as char);
        let mut points: Vec<String> = Vec::new();
        let mut spans = std::collections::VecDeque::from([(lowest, top)]);
        let lanes = self.config.workers.max(1) as usize * self.lanes() as usize;
        let want = lanes.clamp(MIN_FLAT, MAX_FLAT);
        // Probes (listings of one key) the cut may spend: some go on
        // finding where the keys lie in the key space at all.
        let mut probes = 0;
        while points.len() + 1 < want && probes < 4 * want {
            let Some((lo, hi)) = spans.pop_front() else { break };
            let Some(mid) = midpoint(&lo, &hi) else { continue };
            probes += 1;
            let above = self
                .store
                .list_page(bucket, prefix, Some(&start_after(&mid)), 1)
                .await?;
            match above.entries.first().map(|e| e.key.clone()) {
                Some(key) if key > mid && key < hi => {
                    spans.push_back((lo, mid.clone()));
                    spans.push_back((key, hi));
                    points.push(mid);
                }
                // Nothing between the midpoint and the upper end: halve the lower part.
                _ => spans.push_back((lo, mid)),
            }
        }
        points.sort();
        points.dedup();
        Ok(Some(cuts(prefix, &points)))
    }
}

/// The ranges between sorted cut points, outer ends open.
fn cuts(prefix: &str, points: &[String]) -> Vec<Cut> {
    let mut cuts = Vec::with_capacity(points.len() + 1);
    let mut after: Option<String> = None;
    for point in points {
        cuts.push(Cut {
            prefix: prefix.to_owned(),
            after: after.replace(point.clone()),
            upto: Some(point.clone()),
        });
    }
    cuts.push(Cut {
        prefix: prefix.to_owned(),
        after,
        upto: None,
    });
    cuts
}

/// A string strictly between `a` and `b` (`a < b`), about halfway in the
/// key space of printable ASCII, or `None` if none was found.
pub(super) fn midpoint(a: &str, b: &str) -> Option<String> {
    let base = u32::from(HIGH - LOW) + 1;
    let digit = |c: Option<&u8>| u32::from(c.copied().unwrap_or(LOW).clamp(LOW, HIGH) - LOW);
    for extra in 1..=4 {
        let len = a.len().max(b.len()) + extra;
        let (x, y) = (a.as_bytes(), b.as_bytes());
        // (a + b) / 2, digit by digit from the most significant.
        let sum: Vec<u32> = (0..len).map(|i| digit(x.get(i)) + digit(y.get(i))).collect();
        let mut mid = Vec::with_capacity(len);
        let mut carry = 0;
        for s in sum {
            let v = carry * base + s;
            mid.push(v / 2);
            carry = v % 2;
        }
        let mut text: String = mid.iter().map(|d| char::from(LOW + *d as u8)).collect();
        while text.ends_with(LOW as char) {
            text.pop();
        }
        if a < text.as_str() && text.as_str() < b {
            return Some(text);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_midpoint_lies_strictly_between_and_is_printable() {
        for (a, b) in [
            ("acme/0000", "acme/~"),
            ("acme/a", "acme/b"),
            ("acme/a", "acme/a0"),
            ("acme/2026-01-01T00:00:00Z-1", "acme/2026-01-01T00:00:00Z-2"),
        ] {
            let m = midpoint(a, b).unwrap_or_else(|| panic!("{a} .. {b}"));
            assert!(a < m.as_str() && m.as_str() < b, "{a} < {m} < {b}");
            assert!(m.bytes().all(|c| (LOW..=HIGH).contains(&c)), "{m:?}");
        }
        assert_eq!(midpoint("acme/a", "acme/a"), None);
        // Up to a key beyond printable ASCII: a printable point below it.
        assert_eq!(midpoint("acme/~", "acme/ä").as_deref(), Some("acme/~O"));
    }

    #[test]
    fn cut_points_make_ranges_that_follow_one_another() {
        let points = ["acme/3".to_owned(), "acme/7".to_owned()];
        let bounds: Vec<(Option<String>, Option<String>)> =
            cuts("acme/", &points).into_iter().map(|c| (c.after, c.upto)).collect();
        let p = |s: &str| Some(s.to_owned());
        assert_eq!(
            bounds,
            [(None, p("acme/3")), (p("acme/3"), p("acme/7")), (p("acme/7"), None)]
        );
    }
}
