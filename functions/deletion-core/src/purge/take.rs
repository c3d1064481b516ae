//! Finding a free shard in a constant number of reads, whatever the
//! number of shards: a counter hands out each shard once on the first
//! pass; after it, the ledger's index of open shards (by lease end) names
//! the free ones: handed back, or whose worker's lease ran out.
//!
//! - The index may lag the shards by a moment: a shard is taken only as
//!   its own consistent read shows it, and "every shard is done" is
//!   believed only from one consistent read of them all (once, when the
//!   worker would stop), so the last shard's worker always goes on to
//!   verify.
//! - Reads per call: one counter write and one shard read on the first
//!   pass; one index query of at most twice the lanes' number of entries
//!   (workers times lanes) and as many shard reads after it.

use chrono::{DateTime, Utc};

use super::Purger;
use crate::error::LedgerError;
use crate::ids::RequestId;
use crate::model::Shard;
use crate::ports::{Clock, Holds, Ledger, ObjectStore, Regulations, Timers};

/// What a worker finds when it looks for a shard.
#[derive(Debug)]
pub enum Next {
    Free(Box<Shard>),
    /// Other workers hold the open shards.
    Busy,
    /// Every shard is done.
    AllDone,
}

impl<L: Ledger + Regulations + Holds, S: ObjectStore, T: Timers, C: Clock> Purger<L, S, T, C> {
    /// A shard this worker may take now, or why there is none.
    /// `first_pass` is the worker's own: false once the counter ran out.
    pub(super) async fn next_free(&self, id: &RequestId, first_pass: &mut bool) -> Result<Next, LedgerError> {
        let holders = self.config.workers.max(1) * self.lanes();
        next_free(&self.ledger, id, holders, self.clock.now(), first_pass).await
    }
}

/// A shard of request `id` free at `now`, or why there is none, for a
/// purge whose shards are held by at most `holders` lanes at once (workers
/// times lanes); `first_pass` is the caller's own (false once the counter
/// ran out). Public so that the benchmark measures the
/// reads of this very path.
pub async fn next_free<L: Ledger>(
    ledger: &L,
    id: &RequestId,
    holders: u32,
    now: DateTime<Utc>,
    first_pass: &mut bool,
) -> Result<Next, LedgerError> {
    while *first_pass {
        match ledger.next_unstarted(id).await? {
            Some(index) => match ledger.shard(id, index).await? {
                Some(shard) if shard.is_free(now) => return Ok(Next::Free(Box::new(shard))),
                _ => continue, // taken from the index already, or done
            },
            None => *first_pass = false,
        }
    }
    let open = ledger.open_shards(id, holders.max(1) * 2).await?;
    let mut held = false;
    // The ones the index shows free first (it sorts them first).
    for entry in &open {
        match ledger.shard(id, entry.index).await? {
            Some(shard) if shard.is_free(now) => return Ok(Next::Free(Box::new(shard))),
            Some(shard) if !shard.done => held = true,
            _ => {} // done meanwhile: the index lags
        }
    }
    if held {
        return Ok(Next::Busy);
    }
    // The index shows nothing open: every shard, read consistently, says.
    let shards = ledger.shards(id).await?;
    Ok(match shards.iter().find(|s| s.is_free(now)) {
        Some(shard) => Next::Free(Box::new(shard.clone())),
        None if shards.iter().all(|s| s.done) => Next::AllDone,
        None => Next::Busy,
    })
}
