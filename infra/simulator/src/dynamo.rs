//! The ledger on DynamoDB, under its documented limits: the in-memory
//! ledger (`MemoryLedger`, the adapter's conditional writes) answers, and
//! every call is first charged what the DynamoDB adapter's items for it
//! cost (`deletion_aws::dynamodb::cost`: the same keys and item sizes) to
//! the partitions it touches. A partition key allows
//! `ddb_wcu_per_partition` / `ddb_rcu_per_partition` units a second, the
//! table `ddb_*_per_table`; a call beyond them is throttled
//! (`ProvisionedThroughputExceeded`), retried by the SDK with backoff and,
//! after the last attempt, answered `Unavailable` as the adapter maps it.
//!
//! Invariants: a throttled write writes nothing; a write is charged
//! whether its condition holds or not (DynamoDB charges both); an item
//! over 400 KB is refused before anything is charged or written.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deletion_aws::dynamodb::cost::{charges, Call, Charge};
use deletion_aws::dynamodb::keys;
use deletion_core::ids::{IdempotencyKey, RequestId, SourceId, WorkspaceId};
use deletion_core::model::{DeletionRequest, Listing, Scope, Shard};
use deletion_core::ports::{
    Hold, Holds, Ledger, OpenShard, PendingPage, Regulations, RequestPage, SubjectRecord, Suppression, SweepMark,
    SweepMarks,
};
use deletion_core::regulation::{Subjects, UserId};
use deletion_core::testing::MemoryLedger;
use deletion_core::LedgerError;
use tokio::time::Instant;

use crate::limits::{backoff, Bucket, Limits};

/// What the ledger consumed, for the report.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub calls: u64,
    pub write_units: f64,
    pub read_units: f64,
    pub throttles: u64,
    /// Calls that still failed after the SDK's last attempt.
    pub failed: u64,
    /// The most write units one partition key took in one second.
    pub peak_partition_wcu: f64,
}

struct State {
    partitions: HashMap<String, (Bucket, Bucket)>,
    table: (Bucket, Bucket),
    tally: Tally,
    rng: fastrand::Rng,
    /// Write units per (partition, second), for the peak.
    second: (u64, HashMap<String, f64>),
}

/// The simulated ledger (clones share it).
#[derive(Clone)]
pub struct SimDynamo {
    inner: MemoryLedger,
    state: Arc<Mutex<State>>,
    limits: Arc<Limits>,
    start: Instant,
}

impl SimDynamo {
    pub fn new(limits: Arc<Limits>, seed: u64) -> SimDynamo {
        let now = Instant::now();
        SimDynamo {
            inner: MemoryLedger::new(),
            state: Arc::new(Mutex::new(State {
                partitions: HashMap::new(),
                table: (
                    Bucket::new(limits.ddb_wcu_per_table, now),
                    Bucket::new(limits.ddb_rcu_per_table, now),
                ),
                tally: Tally::default(),
                rng: fastrand::Rng::with_seed(seed ^ 0x5eed),
                second: (0, HashMap::new()),
            })),
            limits,
            start: now,
        }
    }

    /// The ledger's state as it is (what a test or the report reads).
    pub fn memory(&self) -> &MemoryLedger {
        &self.inner
    }

    pub fn tally(&self) -> Tally {
        self.lock().tally.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes every charge of one call, or none (throttled, retried).
    async fn charge(&self, charges: Vec<Charge>) -> Result<(), LedgerError> {
        for attempt in 1..=self.limits.sdk_max_attempts {
            if self.admit(&charges) {
                tokio::time::sleep(self.limits.ddb_latency).await;
                return Ok(());
            }
            tokio::time::sleep(self.limits.ddb_latency).await;
            if attempt < self.limits.sdk_max_attempts {
                let pause = backoff(&self.limits, attempt, &mut self.lock().rng);
                tokio::time::sleep(pause).await;
            }
        }
        self.lock().tally.failed += 1;
        Err(LedgerError::Unavailable(format!(
            "ProvisionedThroughputExceeded: throughput exceeds the limit of a partition (after {} attempts)",
            self.limits.sdk_max_attempts
        )))
    }

    fn admit(&self, charges: &[Charge]) -> bool {
        let now = Instant::now();
        let mut s = self.lock();
        let s = &mut *s;
        s.tally.calls += 1;
        let (w, r) = charges
            .iter()
            .fold((0.0, 0.0), |(w, r), c| (w + c.write_units, r + c.read_units));
        let mut ok = s.table.0.has(w, now) && s.table.1.has(r, now);
        for c in charges {
            let limits = &self.limits;
            let (wb, rb) = s.partitions.entry(c.partition.clone()).or_insert_with(|| {
                (
                    Bucket::new(limits.ddb_wcu_per_partition, now),
                    Bucket::new(limits.ddb_rcu_per_partition, now),
                )
            });
            ok &= wb.has(c.write_units, now) && rb.has(c.read_units, now);
        }
        if !ok {
            s.tally.throttles += 1;
            return false;
        }
        s.table.0.take(w, now);
        s.table.1.take(r, now);
        let second = now.saturating_duration_since(self.start).as_secs();
        if s.second.0 != second {
            s.second = (second, HashMap::new());
        }
        for c in charges {
            if let Some((wb, rb)) = s.partitions.get_mut(&c.partition) {
                wb.take(c.write_units, now);
                rb.take(c.read_units, now);
            }
            if c.write_units > 0.0 {
                let used = s.second.1.entry(c.partition.clone()).or_default();
                *used += c.write_units;
                s.tally.peak_partition_wcu = s.tally.peak_partition_wcu.max(*used);
            }
        }
        s.tally.write_units += w;
        s.tally.read_units += r;
        true
    }

    async fn small_read(&self, partition: String) -> Result<(), LedgerError> {
        self.charge(charges(Call::ReadSmall { partition: &partition })?).await
    }

    async fn small_write(&self, partition: String, units: f64) -> Result<(), LedgerError> {
        self.charge(vec![Charge {
            partition,
            read_units: 0.0,
            write_units: units,
        }])
        .await
    }
}

#[async_trait]
impl Ledger for SimDynamo {
    async fn insert(&self, request: &DeletionRequest, key: Option<&IdempotencyKey>) -> Result<(), LedgerError> {
        // One transaction: the request and its lock, each charged twice.
        let mut cost = charges(Call::PutRequest {
            prev: None,
            next: request,
        })?;
        cost.iter_mut().for_each(|c| c.write_units *= 2.0);
        cost.push(Charge {
            partition: keys::lock_pk(&request.scope),
            read_units: 0.0,
            write_units: 2.0,
        });
        self.charge(cost).await?;
        self.inner.insert(request, key).await
    }

    async fn get(&self, id: &RequestId) -> Result<Option<DeletionRequest>, LedgerError> {
        let found = self.inner.get(id).await?;
        self.charge(charges(Call::GetRequest {
            id,
            found: found.as_ref(),
        })?)
        .await?;
        Ok(found)
    }

    async fn update(&self, next: &DeletionRequest) -> Result<(), LedgerError> {
        let prev = self.inner.get(&next.id).await?;
        self.charge(charges(Call::PutRequest {
            prev: prev.as_ref(),
            next,
        })?)
        .await?;
        self.inner.update(next).await
    }

    async fn active_for(&self, scope: &Scope) -> Result<Option<RequestId>, LedgerError> {
        self.small_read(keys::lock_pk(scope)).await?;
        self.inner.active_for(scope).await
    }

    async fn by_idempotency_key(
        &self,
        key: &IdempotencyKey,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<RequestId>, LedgerError> {
        self.small_read(keys::idem_pk(key)).await?;
        self.inner.by_idempotency_key(key, now).await
    }

    async fn list(&self, listing: &Listing, limit: u32, cursor: Option<&str>) -> Result<RequestPage, LedgerError> {
        let page = self.inner.list(listing, limit, cursor).await?;
        self.index_read(
            format!("{}/{}", keys::INDEX_BY_WORKSPACE, keys::listing_pk(listing)),
            &page,
        )
        .await?;
        Ok(page)
    }

    async fn active(&self, limit: u32, cursor: Option<&str>) -> Result<RequestPage, LedgerError> {
        let page = self.inner.active(limit, cursor).await?;
        self.index_read(format!("{}/{}", keys::INDEX_ACTIVE, keys::ACTIVE_PARTITION), &page)
            .await?;
        Ok(page)
    }

    async fn insert_shards(&self, shards: &[Shard]) -> Result<(), LedgerError> {
        self.charge(charges(Call::InsertShards { shards })?).await?;
        self.inner.insert_shards(shards).await
    }

    async fn shards(&self, id: &RequestId) -> Result<Vec<Shard>, LedgerError> {
        let shards = self.inner.shards(id).await?;
        self.charge(charges(Call::ReadShards { id, shards: &shards })?).await?;
        Ok(shards)
    }

    async fn shards_planned(&self, id: &RequestId) -> Result<Option<u32>, LedgerError> {
        self.charge(charges(Call::PlanCount { id })?).await?;
        self.inner.shards_planned(id).await
    }

    async fn next_unstarted(&self, id: &RequestId) -> Result<Option<u32>, LedgerError> {
        self.charge(charges(Call::TakeUnstarted { id })?).await?;
        self.inner.next_unstarted(id).await
    }

    async fn shard(&self, id: &RequestId, index: u32) -> Result<Option<Shard>, LedgerError> {
        let found = self.inner.shard(id, index).await?;
        self.charge(charges(Call::ReadShard {
            id,
            index,
            found: found.as_ref(),
        })?)
        .await?;
        Ok(found)
    }

    async fn open_shards(&self, id: &RequestId, limit: u32) -> Result<Vec<OpenShard>, LedgerError> {
        let open = self.inner.open_shards(id, limit).await?;
        self.charge(charges(Call::ReadOpen {
            id,
            entries: open.len(),
        })?)
        .await?;
        Ok(open)
    }

    async fn latest_leases(&self, id: &RequestId, limit: u32) -> Result<Vec<OpenShard>, LedgerError> {
        let latest = self.inner.latest_leases(id, limit).await?;
        self.charge(charges(Call::ReadOpen {
            id,
            entries: latest.len(),
        })?)
        .await?;
        Ok(latest)
    }

    async fn update_shard(&self, next: &Shard) -> Result<(), LedgerError> {
        let prev = self.inner.shard(&next.request_id, next.index).await?;
        self.charge(charges(Call::PutShard {
            prev: prev.as_ref(),
            next,
        })?)
        .await?;
        self.inner.update_shard(next).await
    }

    async fn split_shard(&self, mine: &Shard, new: &Shard) -> Result<(), LedgerError> {
        let prev = self.inner.shard(&mine.request_id, mine.index).await?;
        self.charge(charges(Call::Split {
            prev: prev.as_ref(),
            mine,
            new,
        })?)
        .await?;
        self.inner.split_shard(mine, new).await
    }

    async fn put_page(&self, page: &PendingPage) -> Result<(), LedgerError> {
        let bytes = serde_json::to_vec(page).map_or(1024, |b| b.len());
        let units = deletion_aws::dynamodb::cost::write_units(bytes);
        self.small_write(keys::request_pk(&page.request_id), units).await?;
        self.inner.put_page(page).await
    }

    async fn pages(&self, id: &RequestId, shard: u32) -> Result<Vec<PendingPage>, LedgerError> {
        self.small_read(keys::request_pk(id)).await?;
        self.inner.pages(id, shard).await
    }

    /// One UpdateItem per shard (a shard item is under 1 KB: 1 WRU) and
    /// one for the plan, sent together (the adapter sends 16 at a time).
    async fn expire_work(
        &self,
        id: &RequestId,
        indexes: &[u32],
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), LedgerError> {
        let mut charges: Vec<Charge> = indexes
            .iter()
            .map(|i| Charge {
                partition: keys::shard_group_pk(id, i % keys::SHARD_GROUPS),
                read_units: 0.0,
                write_units: 1.0,
            })
            .collect();
        charges.push(Charge {
            partition: keys::request_pk(id),
            read_units: 0.5,
            write_units: 1.0,
        });
        self.charge(charges).await?;
        self.inner.expire_work(id, indexes, at).await
    }

    async fn drop_page(&self, id: &RequestId, shard: u32, seq: u64) -> Result<(), LedgerError> {
        self.small_write(keys::request_pk(id), 1.0).await?;
        self.inner.drop_page(id, shard, seq).await
    }
}

impl SimDynamo {
    /// A page of an index projecting whole requests, read eventually
    /// consistently.
    async fn index_read(&self, partition: String, page: &RequestPage) -> Result<(), LedgerError> {
        let mut bytes = 0;
        for r in &page.items {
            let got = charges(Call::GetRequest {
                id: &r.id,
                found: Some(r),
            })?;
            bytes += got.iter().map(|c| c.read_units as usize * 4096).sum::<usize>();
        }
        let units = deletion_aws::dynamodb::cost::read_units(bytes, false);
        self.charge(vec![Charge {
            partition,
            read_units: units,
            write_units: 0.0,
        }])
        .await
    }
}

#[async_trait]
impl Holds for SimDynamo {
    async fn place_hold(&self, hold: &Hold) -> Result<Hold, LedgerError> {
        self.small_write(format!("HOLD#{}", hold.workspace), 1.0).await?;
        self.inner.place_hold(hold).await
    }
    async fn hold(&self, workspace: &WorkspaceId) -> Result<Option<Hold>, LedgerError> {
        self.small_read(format!("HOLD#{workspace}")).await?;
        self.inner.hold(workspace).await
    }
    async fn release_hold(&self, workspace: &WorkspaceId) -> Result<Option<Hold>, LedgerError> {
        self.small_write(format!("HOLD#{workspace}"), 1.0).await?;
        self.inner.release_hold(workspace).await
    }
}

#[async_trait]
impl Regulations for SimDynamo {
    async fn put_subjects(&self, id: &RequestId, subjects: &Subjects) -> Result<(), LedgerError> {
        self.small_write(keys::request_pk(id), 1.0).await?;
        self.inner.put_subjects(id, subjects).await
    }
    async fn subjects(&self, id: &RequestId) -> Result<Subjects, LedgerError> {
        self.small_read(keys::request_pk(id)).await?;
        self.inner.subjects(id).await
    }
    async fn forget_subjects(&self, id: &RequestId) -> Result<(), LedgerError> {
        self.small_write(keys::request_pk(id), 1.0).await?;
        self.inner.forget_subjects(id).await
    }
    async fn put_subject_refs(
        &self,
        regulation: &RequestId,
        created_at: DateTime<Utc>,
        source: Option<&SourceId>,
        digests: &[String],
    ) -> Result<(), LedgerError> {
        for digest in digests {
            self.small_write(keys::subject_pk(digest), 1.0).await?;
        }
        self.inner
            .put_subject_refs(regulation, created_at, source, digests)
            .await
    }
    async fn remove_subject_refs(
        &self,
        regulation: &RequestId,
        created_at: DateTime<Utc>,
        digests: &[String],
    ) -> Result<(), LedgerError> {
        for digest in digests {
            self.small_write(keys::subject_pk(digest), 1.0).await?;
        }
        self.inner.remove_subject_refs(regulation, created_at, digests).await
    }
    async fn subject_record(
        &self,
        digest: &str,
        suppression_of: Option<(&WorkspaceId, &UserId)>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<SubjectRecord, LedgerError> {
        self.small_read(keys::subject_pk(digest)).await?;
        self.inner.subject_record(digest, suppression_of, limit, cursor).await
    }
    async fn set_suppressed(
        &self,
        workspace: &WorkspaceId,
        source: Option<&SourceId>,
        ids: &[UserId],
        suppressed: bool,
        regulation: &RequestId,
        since: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.small_write(format!("SUPP#{workspace}"), ids.len().max(1) as f64)
            .await?;
        self.inner
            .set_suppressed(workspace, source, ids, suppressed, regulation, since)
            .await
    }
    async fn lift_suppressions(
        &self,
        workspace: &WorkspaceId,
        source: Option<&SourceId>,
        ids: &[UserId],
        regulation: &RequestId,
    ) -> Result<(), LedgerError> {
        self.small_write(format!("SUPP#{workspace}"), ids.len().max(1) as f64)
            .await?;
        self.inner.lift_suppressions(workspace, source, ids, regulation).await
    }
    async fn suppression(&self, workspace: &WorkspaceId, id: &UserId) -> Result<Option<Suppression>, LedgerError> {
        self.small_read(format!("SUPP#{workspace}")).await?;
        self.inner.suppression(workspace, id).await
    }
    async fn suppressions(
        &self,
        workspace: &WorkspaceId,
        source: Option<&SourceId>,
        ids: &[UserId],
    ) -> Result<Vec<Suppression>, LedgerError> {
        self.small_read(format!("SUPP#{workspace}")).await?;
        self.inner.suppressions(workspace, source, ids).await
    }
    async fn suppression_page(
        &self,
        workspace: &WorkspaceId,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<(Vec<Suppression>, Option<String>), LedgerError> {
        self.small_read(format!("SUPPS#{workspace}")).await?;
        self.inner.suppression_page(workspace, limit, cursor).await
    }
}

#[async_trait]
impl SweepMarks for SimDynamo {
    async fn sweep_mark(&self) -> Result<SweepMark, LedgerError> {
        self.small_read(keys::SWEEP_PK.to_owned()).await?;
        self.inner.sweep_mark().await
    }
    async fn put_sweep_mark(&self, next: &SweepMark) -> Result<(), LedgerError> {
        self.small_write(keys::SWEEP_PK.to_owned(), 1.0).await?;
        self.inner.put_sweep_mark(next).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deletion_core::lifecycle::Periods;
    use std::time::Duration;

    async fn request(ledger: &SimDynamo) -> DeletionRequest {
        let scope = Scope::Workspace {
            workspace: WorkspaceId::parse("ws-0000").unwrap_or_else(|e| panic!("{e}")),
        };
        let r = DeletionRequest::new(scope, "sim", None, Utc::now(), Periods::default());
        ledger.insert(&r, None).await.unwrap_or_else(|e| panic!("{e}"));
        r
    }

    #[tokio::test(start_paused = true)]
    async fn writes_beyond_a_partitions_units_are_throttled_and_write_nothing() {
        let ledger = SimDynamo::new(
            Arc::new(Limits {
                ddb_wcu_per_partition: 2.0,
                sdk_max_attempts: 1,
                ..Limits::default()
            }),
            7,
        );
        let r = request(&ledger).await;
        // Each write of the request item costs at least one unit: two
        // updates in the same second spend the partition's two units.
        let mut current = r.clone();
        let mut throttled = None;
        for _ in 0..3 {
            let mut next = current.clone();
            next.version += 1;
            match ledger.update(&next).await {
                Ok(()) => current = next,
                Err(e) => {
                    throttled = Some(e);
                    break;
                }
            }
        }
        assert!(
            matches!(throttled, Some(LedgerError::Unavailable(ref m)) if m.contains("ProvisionedThroughputExceeded")),
            "{throttled:?}"
        );
        assert!(ledger.tally().throttles >= 1);
        let stored = ledger.memory().request(&r.id).map(|s| s.version);
        assert_eq!(stored, Some(current.version), "the throttled write wrote nothing");
        // A second later the units are back.
        tokio::time::advance(Duration::from_secs(1)).await;
        let mut next = current.clone();
        next.version += 1;
        assert!(ledger.update(&next).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn an_item_over_400_kb_is_refused_before_anything_is_charged_or_written() {
        let ledger = SimDynamo::new(Arc::new(Limits::default()), 7);
        let r = request(&ledger).await;
        let shard = Shard::planned(&r.id, 0, "archive", "b", "ws-0000/", "ws-0000/");
        ledger
            .insert_shards(std::slice::from_ref(&shard))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let before = ledger.tally();
        let mut huge = shard.clone();
        huge.cursor = Some("k".repeat(410 * 1024));
        let refused = ledger.update_shard(&huge).await;
        assert!(matches!(refused, Err(LedgerError::Refused(_))), "{refused:?}");
        assert_eq!(ledger.tally().write_units, before.write_units, "nothing charged");
        let stored = ledger.memory().shard(&r.id, 0).await.ok().flatten();
        assert_eq!(stored.and_then(|s| s.cursor), None, "nothing written");
    }
}
