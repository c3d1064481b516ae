//! A bucket's objects generated from a layout, not stored: key `i` of a
//! `Grid` is built from `i` in mixed radix over its levels (`ws-0003/`,
//! `src-00042/`, `day-07/`, `part-0099`), zero-padded so that index order
//! is key order. Ten million keys cost ten million bits of state (what is
//! deleted), not ten million strings.
//!
//! Every key has the same number of slots: its versions, newest first,
//! led by a delete marker on every `marker_every`-th key. A slot is live
//! until deleted; a listing walks live slots in key order, skipping a
//! whole word of deleted slots at a time.
//!
//! Invariants: `key(i) < key(j)` iff `i < j`; `lower_bound(k)` is the first
//! index whose key is `>= k`; a slot once deleted is never live again.

use deletion_core::ports::{Entry, EntryKind};

/// One level of the layout: `label` then the number, `width` digits.
#[derive(Debug, Clone)]
pub struct Level {
    pub label: &'static str,
    pub count: u64,
    pub width: usize,
    /// Whether a `/` follows (every level but a flat last one).
    pub slash: bool,
}

impl Level {
    pub fn new(label: &'static str, count: u64, width: usize) -> Level {
        Level {
            label,
            count,
            width,
            slash: true,
        }
    }

    /// The last level: the object's name, no `/` after it.
    pub fn leaf(label: &'static str, count: u64, width: usize) -> Level {
        Level {
            slash: false,
            ..Level::new(label, count, width)
        }
    }
}

/// The objects of a bucket, by layout.
#[derive(Debug, Clone)]
pub struct Grid {
    levels: Vec<Level>,
    /// Versions per key (1 in a bucket without versioning).
    pub versions: u32,
    /// Every n-th key's newest entry is a delete marker (0: none).
    pub marker_every: u64,
    pub versioned: bool,
    pub object_size: u64,
    deleted: Vec<u64>,
    keys: u64,
}

impl Grid {
    pub fn new(levels: Vec<Level>, versioned: bool, versions: u32, marker_every: u64) -> Grid {
        let keys = levels.iter().map(|l| l.count).product::<u64>();
        let mut grid = Grid {
            levels,
            versions: versions.max(1),
            marker_every,
            versioned,
            object_size: 4096,
            deleted: Vec::new(),
            keys,
        };
        let slots = keys * grid.slots();
        grid.deleted = vec![0; slots.div_ceil(64) as usize];
        // Slots past the end, and the marker slot of keys without one,
        // are not entries: mark them gone once.
        for bit in slots..(grid.deleted.len() as u64 * 64) {
            grid.set(bit);
        }
        if grid.marker_every > 0 {
            for k in 0..keys {
                if k % grid.marker_every != 0 {
                    grid.set(k * grid.slots());
                }
            }
        }
        grid
    }

    pub fn keys(&self) -> u64 {
        self.keys
    }

    /// Slots per key: the versions, and a marker slot if any key has one.
    pub fn slots(&self) -> u64 {
        u64::from(self.versions) + u64::from(self.marker_every > 0)
    }

    /// Entries (objects, versions and markers) in the bucket at the start.
    pub fn entries(&self) -> u64 {
        let markers = if self.marker_every > 0 {
            self.keys.div_ceil(self.marker_every)
        } else {
            0
        };
        self.keys * u64::from(self.versions) + markers
    }

    pub fn key(&self, mut i: u64) -> String {
        let mut parts = Vec::with_capacity(self.levels.len());
        for level in self.levels.iter().rev() {
            parts.push(i % level.count);
            i /= level.count;
        }
        let mut key = String::with_capacity(64);
        for (level, n) in self.levels.iter().zip(parts.iter().rev()) {
            key.push_str(level.label);
            key.push_str(&format!("{n:0w$}", w = level.width));
            if level.slash {
                key.push('/');
            }
        }
        key
    }

    /// The index of a key of this grid (`None`: not one of its keys).
    pub fn index_of(&self, key: &str) -> Option<u64> {
        let mut rest = key;
        let mut i = 0u64;
        for level in &self.levels {
            rest = rest.strip_prefix(level.label)?;
            let digits = rest.get(..level.width)?;
            let n: u64 = digits.parse().ok()?;
            if n >= level.count || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            rest = &rest[level.width..];
            if level.slash {
                rest = rest.strip_prefix('/')?;
            }
            i = i * level.count + n;
        }
        rest.is_empty().then_some(i)
    }

    /// The first key index whose key is `>= k`.
    pub fn lower_bound(&self, k: &str) -> u64 {
        let (mut lo, mut hi) = (0, self.keys);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.key(mid).as_str() < k {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The key indexes under `prefix`: `[lo, hi)`.
    pub fn range(&self, prefix: &str) -> (u64, u64) {
        let lo = self.lower_bound(prefix);
        // Every key under the prefix sorts before the prefix followed by
        // the highest character a key uses.
        let hi = self.lower_bound(&format!("{prefix}\u{7f}"));
        (lo, hi.max(lo))
    }

    /// How many levels a prefix covers whole, if it ends at a level's `/`.
    pub fn depth_of(&self, prefix: &str) -> Option<usize> {
        if prefix.is_empty() {
            return Some(0);
        }
        let mut len = 0;
        for (d, level) in self.levels.iter().enumerate() {
            if !level.slash {
                return None;
            }
            len += level.label.len() + level.width + 1;
            if len == prefix.len() {
                return Some(d + 1);
            }
        }
        None
    }

    pub fn level(&self, depth: usize) -> Option<&Level> {
        self.levels.get(depth)
    }

    /// Keys per value of the level at `depth`.
    pub fn block(&self, depth: usize) -> u64 {
        self.levels.iter().skip(depth + 1).map(|l| l.count).product()
    }

    fn set(&mut self, bit: u64) {
        self.deleted[(bit / 64) as usize] |= 1 << (bit % 64);
    }

    fn is_deleted(&self, bit: u64) -> bool {
        self.deleted[(bit / 64) as usize] & (1 << (bit % 64)) != 0
    }

    /// The slot bit of (key, slot).
    pub fn bit(&self, key: u64, slot: u64) -> u64 {
        key * self.slots() + slot
    }

    /// The first live slot at or after `bit` and before `end`.
    pub fn next_live(&self, mut bit: u64, end: u64) -> Option<u64> {
        while bit < end {
            let word = self.deleted[(bit / 64) as usize];
            if word == u64::MAX {
                bit = (bit / 64 + 1) * 64;
                continue;
            }
            if word & (1 << (bit % 64)) == 0 {
                return Some(bit);
            }
            bit += 1;
        }
        None
    }

    /// Whether any slot of keys `[lo, hi)` is live.
    pub fn any_live(&self, lo: u64, hi: u64) -> bool {
        self.next_live(self.bit(lo, 0), self.bit(hi, 0)).is_some()
    }

    /// Live slots in keys `[lo, hi)`.
    pub fn live_in(&self, lo: u64, hi: u64) -> u64 {
        let (mut bit, end) = (self.bit(lo, 0), self.bit(hi, 0));
        let mut n = 0;
        while let Some(b) = self.next_live(bit, end) {
            n += 1;
            bit = b + 1;
        }
        n
    }

    /// The entry a live slot bit stands for.
    pub fn entry(&self, bit: u64) -> Entry {
        let (key, slot) = (bit / self.slots(), bit % self.slots());
        let marker = self.marker_every > 0 && slot == 0;
        let key_has_marker = self.marker_every > 0 && key % self.marker_every == 0;
        let kind = if marker {
            EntryKind::DeleteMarker
        } else if slot == self.newest_version_slot() && !key_has_marker {
            EntryKind::Current
        } else {
            EntryKind::Noncurrent
        };
        Entry {
            key: self.key(key),
            version_id: self.versioned.then(|| self.version_id(slot)),
            kind,
            size: if marker { 0 } else { self.object_size },
        }
    }

    fn newest_version_slot(&self) -> u64 {
        u64::from(self.marker_every > 0)
    }

    /// A slot's version id (`m` the marker, `v<n>` the n-th newest).
    pub fn version_id(&self, slot: u64) -> String {
        if self.marker_every > 0 {
            if slot == 0 {
                return "m".into();
            }
            return format!("v{}", slot - 1);
        }
        format!("v{slot}")
    }

    /// The slot of a version id, if it is one of this grid's.
    pub fn slot_of(&self, version_id: Option<&str>) -> Option<u64> {
        let Some(v) = version_id else {
            return (!self.versioned).then_some(0);
        };
        let marker = u64::from(self.marker_every > 0);
        if v == "m" {
            return (marker == 1).then_some(0);
        }
        let n: u64 = v.strip_prefix('v')?.parse().ok()?;
        (n < u64::from(self.versions)).then_some(n + marker)
    }

    /// Deletes a slot; whether it was live.
    pub fn delete(&mut self, bit: u64) -> bool {
        if self.is_deleted(bit) {
            return false;
        }
        self.set(bit);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Grid {
        Grid::new(
            vec![
                Level::new("ws-", 3, 2),
                Level::new("src-", 4, 3),
                Level::leaf("part-", 5, 2),
            ],
            true,
            2,
            3,
        )
    }

    #[test]
    fn keys_sort_in_index_order_and_prefixes_map_to_their_range() {
        let g = grid();
        assert_eq!(g.keys(), 60);
        assert_eq!(g.key(0), "ws-00/src-000/part-00");
        assert_eq!(g.key(27), "ws-01/src-001/part-02");
        assert!((1..g.keys()).all(|i| g.key(i - 1) < g.key(i)));
        assert_eq!(g.range("ws-01/"), (20, 40));
        assert_eq!(g.range("ws-01/src-003/"), (35, 40));
        assert_eq!(g.range("ws-0"), (0, 60));
        assert_eq!(g.lower_bound("ws-01/src-001/part-02x"), 28);
        assert_eq!(g.depth_of("ws-01/"), Some(1));
        assert_eq!(g.depth_of("ws-01/src-003/"), Some(2));
        assert_eq!(g.depth_of("ws-0"), None);
        assert_eq!(g.index_of("ws-01/src-001/part-02"), Some(27));
        assert_eq!(g.index_of("ws-01/src-001/part-0"), None);
        assert_eq!(g.index_of("ws-01/src-004/part-02"), None);
    }

    #[test]
    fn every_third_key_leads_with_a_delete_marker_and_only_others_have_a_current_version() {
        let g = grid();
        assert_eq!(g.entries(), 60 * 2 + 20);
        let first: Vec<Entry> = (0..3).filter_map(|s| g.next_live(s, 3).map(|b| g.entry(b))).collect();
        assert_eq!(first[0].kind, EntryKind::DeleteMarker);
        assert_eq!(first[1].kind, EntryKind::Noncurrent);
        // Key 1 has no marker: its marker slot is not an entry, its newest is current.
        let b = g.next_live(g.bit(1, 0), g.bit(2, 0)).unwrap();
        assert_eq!(b, g.bit(1, 1));
        assert_eq!(g.entry(b).kind, EntryKind::Current);
        assert_eq!(g.entry(b).version_id.as_deref(), Some("v0"));
        assert_eq!(g.slot_of(Some("v1")), Some(2));
        assert_eq!(g.live_in(0, 60), g.entries());
    }

    #[test]
    fn a_deleted_slot_is_skipped_and_stays_deleted() {
        let mut g = grid();
        let all = g.live_in(0, 60);
        assert!(g.delete(g.bit(4, 1)));
        assert!(!g.delete(g.bit(4, 1)));
        assert_eq!(g.live_in(0, 60), all - 1);
        for k in 0..60 {
            for s in 0..g.slots() {
                g.delete(g.bit(k, s));
            }
        }
        assert!(!g.any_live(0, 60));
    }
}
