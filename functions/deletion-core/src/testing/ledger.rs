//! The ledger in memory, with the DynamoDB adapter's conditions
//! (`deletion-aws/src/dynamodb`):
//!
//! - `insert` stores a request, takes its scope lock and its idempotency
//!   key at once, only if no request has its id, the scope is free, the key
//!   unused and (for a child) the parent exists and is not final. Refused,
//!   it says why as the adapter does: the key's other holder
//!   (`IdempotencyKeyUsed`), else the scope's holder (`ScopeBusy` with
//!   `scope.lock_key()`), else `Conflict`.
//! - `update` writes only over version `next.version - 1` (else
//!   `Conflict`); a version that `releases_scope()` frees the lock in the
//!   same write, and is refused (`Conflict`) if another request holds it.
//!   An idempotency key is never released; it expires
//!   `IDEMPOTENCY_KEY_LIFETIME` after its request's creation (then it is
//!   free, as the adapter's TTL and conditions make it).
//! - Shards: `insert_shards` keeps a stored shard as it is; `update_shard`
//!   is conditional on the version. Pages are put and dropped blindly.
//! - Listings: newest first by creation (then id), at most 100 a page;
//!   `active` lists every request not in a final state (a failed one given
//!   up included) by grace end (then id), at most 1,000 a page. A full page
//!   has a cursor even when nothing follows (as DynamoDB's
//!   `LastEvaluatedKey`): the next page is then empty. A cursor is accepted
//!   only by the listing that made it (else `InvalidCursor`).
//! - Holds, suppressions, callback states and the sweep's mark as their
//!   modules in the adapter: a standing hold is kept and returned, a later
//!   regulation's suppression stands, versions 0 and 1 of a callback state
//!   or mark are written only where none is stored; a retention record
//!   only over its version (version 1 where none is stored), listed by
//!   workspace, the cursor the last workspace of a full page.
//!
//! Simplified: an item that does not decode (`put_undecodable`) is seen
//! only by `get` (`Corrupt`) and `active` (reported in `undecodable`);
//! the adapter's item size limit is not modelled.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, Utc};

use super::{lock, Faults, MakeError};
use crate::error::LedgerError;
use crate::ids::{AccountId, IdempotencyKey, RequestId, SourceId, WorkspaceId};
use crate::model::callbacks::CallbackState;
use crate::model::ledger::IDEMPOTENCY_KEY_LIFETIME;
use crate::model::quota::{MonthUsage, Quota};
use crate::model::retention::Retention;
use crate::model::{DeletionRequest, Listing, Scope, Shard};
use crate::ports::{
    CallbackLedger, Directory, Hold, Holds, Ledger, Membership, OpenShard, PendingPage, QuotaLedger, Regulations,
    RequestPage, RetentionLedger, Role, SubjectRecord, Suppression, SweepMark, SweepMarks, Undecodable,
};
use crate::regulation::{Subjects, UserId};

/// The ledger's operations, to plan faults on and count calls of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LedgerOp {
    Insert,
    Get,
    Update,
    ActiveFor,
    ByIdempotencyKey,
    List,
    Active,
    InsertShards,
    Shards,
    ShardsPlanned,
    NextUnstarted,
    Shard,
    OpenShards,
    LatestLease,
    UpdateShard,
    PutPage,
    Pages,
    DropPage,
    Directory,
    Holds,
    Regulations,
    Callbacks,
    SweepMark,
    PutSweepMark,
    Retention,
    Quotas,
}

/// A stored request, or an item in its place that does not decode.
#[derive(Clone)]
enum Slot {
    Request(Box<DeletionRequest>),
    Undecodable {
        grace_ends_at: DateTime<Utc>,
        reason: String,
    },
}

#[derive(Default)]
struct State {
    requests: HashMap<RequestId, Slot>,
    locks: HashMap<String, RequestId>,
    /// Each key's request and when the key expires.
    keys: HashMap<String, (RequestId, DateTime<Utc>)>,
    shards: BTreeMap<(RequestId, u32), Shard>,
    /// A complete plan's shard count, and the next number to hand out.
    plans: HashMap<RequestId, (u32, u32)>,
    pages: BTreeMap<(RequestId, u32, u64), PendingPage>,
    members: BTreeMap<(AccountId, WorkspaceId), Role>,
    holds: HashMap<WorkspaceId, Hold>,
    subjects: HashMap<RequestId, Subjects>,
    /// Per subject digest: (created_at in ms, regulation) of each
    /// regulation that named it.
    subject_refs: BTreeMap<String, Vec<(Place, Option<SourceId>)>>,
    /// Per workspace, list (`None`: the workspace's; or a source's) and user.
    suppressions: BTreeMap<(WorkspaceId, Option<SourceId>, UserId), Suppression>,
    callbacks: HashMap<RequestId, CallbackState>,
    mark: Option<SweepMark>,
    retention: BTreeMap<WorkspaceId, Retention>,
    quotas: BTreeMap<WorkspaceId, Quota>,
    /// Calls per workspace and minute.
    calls: BTreeMap<(WorkspaceId, DateTime<Utc>), u32>,
    /// Use per workspace and month.
    months: BTreeMap<(WorkspaceId, String), MonthUsage>,
    /// Shards marked to expire (`expire_work`), and when.
    expiring: BTreeMap<(RequestId, u32), DateTime<Utc>>,
    faults: Faults<LedgerOp, LedgerError>,
    /// Requests every update of which is refused, with the error.
    refused: HashMap<RequestId, MakeError<LedgerError>>,
}

/// The ledger in memory (see the module's invariants). Clones share it.
#[derive(Clone, Default)]
pub struct MemoryLedger(Arc<Mutex<State>>);

/// Where a listing is: its sort key (time in milliseconds, then id).
type Place = (i64, RequestId);

fn place(at: DateTime<Utc>, id: &RequestId) -> Place {
    (at.timestamp_millis(), id.clone())
}

fn listing_name(listing: &Listing) -> String {
    match listing {
        Listing::Workspace(w) => format!("workspace:{w}"),
        Listing::Account(a) => format!("account:{a}"),
        Listing::Regulations(w) => format!("regulations:{w}"),
    }
}

fn encode_cursor(partition: &str, at: &Place) -> String {
    let text = format!("{partition}\n{}\n{}", at.0, at.1);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

fn decode_cursor(partition: &str, cursor: &str) -> Result<Place, LedgerError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| LedgerError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| LedgerError::InvalidCursor)?;
    let mut parts = text.split('\n');
    if parts.next() != Some(partition) {
        return Err(LedgerError::InvalidCursor);
    }
    let at = parts.next().and_then(|t| t.parse().ok());
    let id = parts.next().and_then(|i| RequestId::parse(i).ok());
    match (at, id, parts.next()) {
        (Some(at), Some(id), None) => Ok((at, id)),
        _ => Err(LedgerError::InvalidCursor),
    }
}

fn corrupt_key(id: &RequestId) -> String {
    format!("request {id}")
}

/// The first `limit` of `sorted` after `cursor`, and the cursor of a full page.
fn page_of<T>(sorted: Vec<(Place, T)>, limit: u32, partition: &str) -> (Vec<T>, Option<String>) {
    let limit = limit as usize;
    let full = sorted.len() >= limit;
    let mut last = None;
    let mut items = Vec::new();
    for (at, item) in sorted.into_iter().take(limit) {
        last = Some(at);
        items.push(item);
    }
    let next = last.filter(|_| full).map(|at| encode_cursor(partition, &at));
    (items, next)
}

impl MemoryLedger {
    pub fn new() -> Self {
        MemoryLedger::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.0)
    }

    /// Counts a call; a planned fault's error if one is due.
    fn call(&self, op: LedgerOp) -> Result<std::sync::MutexGuard<'_, State>, LedgerError> {
        let mut state = self.state();
        state.faults.call(op)?;
        Ok(state)
    }

    /// When each of a request's shards expires (those `expire_work` marked).
    pub fn expiring(&self, id: &RequestId) -> Vec<(u32, DateTime<Utc>)> {
        self.state()
            .expiring
            .iter()
            .filter(|((r, _), _)| r == id)
            .map(|((_, i), at)| (*i, *at))
            .collect()
    }

    /// The next `times` calls of `op` fail with `error()`.
    pub fn fail(&self, op: LedgerOp, times: usize, error: impl Fn() -> LedgerError + Send + Sync + 'static) {
        self.fail_after(op, 0, times, error);
    }

    /// After `skip` calls of `op` succeed, the next `times` fail.
    pub fn fail_after(
        &self,
        op: LedgerOp,
        skip: usize,
        times: usize,
        error: impl Fn() -> LedgerError + Send + Sync + 'static,
    ) {
        self.state().faults.plan(op, skip, times, Arc::new(error));
    }

    /// The next `n` updates of requests lose a race (`Conflict`).
    pub fn fail_next_updates(&self, n: usize) {
        self.fail(LedgerOp::Update, n, || LedgerError::Conflict);
    }

    /// Every update of request `id` fails with `error()` (a refused write).
    pub fn refuse_updates_of(&self, id: &RequestId, error: impl Fn() -> LedgerError + Send + Sync + 'static) {
        self.state().refused.insert(id.clone(), Arc::new(error));
    }

    /// How many times `op` was called.
    pub fn calls(&self, op: LedgerOp) -> usize {
        self.state().faults.calls(op)
    }

    /// Stores a request as it is (no condition), with its scope lock unless
    /// it `releases_scope()`: to set up a test.
    pub fn put_request(&self, request: DeletionRequest) {
        let mut s = self.state();
        if !request.releases_scope() {
            s.locks.insert(request.scope.lock_key(), request.id.clone());
        }
        s.requests.insert(request.id.clone(), Slot::Request(Box::new(request)));
    }

    /// Stores, under `id`, an item that does not decode, in the `active`
    /// listing at `grace_ends_at`.
    pub fn put_undecodable(&self, id: &RequestId, grace_ends_at: DateTime<Utc>, reason: &str) {
        let slot = Slot::Undecodable {
            grace_ends_at,
            reason: reason.to_owned(),
        };
        self.state().requests.insert(id.clone(), slot);
    }

    /// The stored request (none for an undecodable item).
    pub fn request(&self, id: &RequestId) -> Option<DeletionRequest> {
        match self.state().requests.get(id) {
            Some(Slot::Request(r)) => Some((**r).clone()),
            _ => None,
        }
    }

    /// Every stored request, by id.
    pub fn requests(&self) -> Vec<DeletionRequest> {
        let s = self.state();
        let mut all: Vec<DeletionRequest> = s
            .requests
            .values()
            .filter_map(|slot| match slot {
                Slot::Request(r) => Some((**r).clone()),
                Slot::Undecodable { .. } => None,
            })
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Which request holds each scope lock (lock key → holder).
    pub fn locks(&self) -> BTreeMap<String, RequestId> {
        self.state().locks.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// The pages recorded for a request's shard, in order.
    pub fn recorded_pages(&self, id: &RequestId) -> Vec<PendingPage> {
        let s = self.state();
        s.pages
            .iter()
            .filter(|((r, _, _), _)| r == id)
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// The `active` cursor that resumes just after `request` (as a page
    /// ending with it would have handed out).
    pub fn active_cursor_after(&self, request: &DeletionRequest) -> String {
        encode_cursor(ACTIVE, &place(request.grace_ends_at, &request.id))
    }
}

/// The partition name of the `active` listing's cursors.
const ACTIVE: &str = "active";

impl State {
    /// Why an insert is refused, as the adapter reads it back.
    fn why_not_inserted(&self, request: &DeletionRequest, key: Option<&IdempotencyKey>) -> LedgerError {
        let live = key.and_then(|k| self.live_key(k, request.created_at));
        if let Some(holder) = live {
            if holder != &request.id {
                return LedgerError::IdempotencyKeyUsed {
                    holder: holder.to_string(),
                };
            }
        }
        match self.locks.get(&request.scope.lock_key()) {
            Some(holder) => LedgerError::ScopeBusy {
                scope: request.scope.lock_key(),
                holder: holder.to_string(),
            },
            None => LedgerError::Conflict,
        }
    }

    /// The request a key names, unless it expired by `now`.
    fn live_key(&self, key: &IdempotencyKey, now: DateTime<Utc>) -> Option<&RequestId> {
        self.keys
            .get(key.as_str())
            .filter(|(_, expires)| *expires > now)
            .map(|(id, _)| id)
    }

    fn insertable(&self, request: &DeletionRequest, key: Option<&IdempotencyKey>) -> bool {
        let parent_open = match &request.parent {
            Some(parent) => matches!(self.requests.get(parent), Some(Slot::Request(p)) if !p.status.is_terminal()),
            None => true,
        };
        !self.requests.contains_key(&request.id)
            && !self.locks.contains_key(&request.scope.lock_key())
            && key.is_none_or(|k| self.live_key(k, request.created_at).is_none())
            && parent_open
    }

    fn update(&mut self, next: &DeletionRequest) -> Result<(), LedgerError> {
        if let Some(error) = self.refused.get(&next.id) {
            return Err(error());
        }
        let prev = next.version.checked_sub(1).ok_or(LedgerError::Conflict)?;
        match self.requests.get(&next.id) {
            Some(Slot::Request(current)) if current.version == prev => {}
            _ => return Err(LedgerError::Conflict),
        }
        if next.releases_scope() {
            let lock = next.scope.lock_key();
            match self.locks.get(&lock) {
                Some(holder) if holder != &next.id => return Err(LedgerError::Conflict),
                Some(_) => {
                    self.locks.remove(&lock);
                }
                None => {}
            }
        }
        self.requests
            .insert(next.id.clone(), Slot::Request(Box::new(next.clone())));
        Ok(())
    }

    fn list(&self, listing: &Listing, limit: u32, cursor: Option<&str>) -> Result<RequestPage, LedgerError> {
        let partition = listing_name(listing);
        let after = cursor.map(|c| decode_cursor(&partition, c)).transpose()?;
        let mut sorted: Vec<(Place, DeletionRequest)> = self
            .requests
            .values()
            .filter_map(|slot| match slot {
                Slot::Request(r) if &r.scope.listing() == listing => Some((place(r.created_at, &r.id), (**r).clone())),
                _ => None,
            })
            .filter(|(at, _)| after.as_ref().is_none_or(|a| at < a))
            .collect();
        sorted.sort_by(|a, b| b.0.cmp(&a.0));
        let (items, next) = page_of(sorted, limit.clamp(1, 100), &partition);
        Ok(RequestPage {
            items,
            next,
            undecodable: Vec::new(),
        })
    }

    fn active(&self, limit: u32, cursor: Option<&str>) -> Result<RequestPage, LedgerError> {
        let after = cursor.map(|c| decode_cursor(ACTIVE, c)).transpose()?;
        let mut sorted: Vec<(Place, Result<DeletionRequest, Undecodable>)> = self
            .requests
            .iter()
            .filter_map(|(id, slot)| match slot {
                Slot::Request(r) if !r.status.is_terminal() => Some((place(r.grace_ends_at, id), Ok((**r).clone()))),
                Slot::Request(_) => None,
                Slot::Undecodable { grace_ends_at, reason } => Some((
                    place(*grace_ends_at, id),
                    Err(Undecodable {
                        key: corrupt_key(id),
                        request_id: Some(id.clone()),
                        reason: reason.clone(),
                    }),
                )),
            })
            .filter(|(at, _)| after.as_ref().is_none_or(|a| at > a))
            .collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let (slots, next) = page_of(sorted, limit.clamp(1, 1000), ACTIVE);
        let mut page = RequestPage {
            next,
            ..RequestPage::default()
        };
        for slot in slots {
            match slot {
                Ok(r) => page.items.push(r),
                Err(u) => page.undecodable.push(u),
            }
        }
        Ok(page)
    }
}

#[async_trait]
impl Ledger for MemoryLedger {
    async fn insert(&self, request: &DeletionRequest, key: Option<&IdempotencyKey>) -> Result<(), LedgerError> {
        let mut s = self.call(LedgerOp::Insert)?;
        if !s.insertable(request, key) {
            return Err(s.why_not_inserted(request, key));
        }
        s.locks.insert(request.scope.lock_key(), request.id.clone());
        if let Some(key) = key {
            let expires = request.created_at + IDEMPOTENCY_KEY_LIFETIME;
            s.keys.insert(key.as_str().to_owned(), (request.id.clone(), expires));
        }
        s.requests
            .insert(request.id.clone(), Slot::Request(Box::new(request.clone())));
        Ok(())
    }

    async fn get(&self, id: &RequestId) -> Result<Option<DeletionRequest>, LedgerError> {
        let s = self.call(LedgerOp::Get)?;
        match s.requests.get(id) {
            Some(Slot::Request(r)) => Ok(Some((**r).clone())),
            Some(Slot::Undecodable { reason, .. }) => Err(LedgerError::Corrupt {
                key: corrupt_key(id),
                reason: reason.clone(),
            }),
            None => Ok(None),
        }
    }

    async fn update(&self, next: &DeletionRequest) -> Result<(), LedgerError> {
        self.call(LedgerOp::Update)?.update(next)
    }

    async fn active_for(&self, scope: &Scope) -> Result<Option<RequestId>, LedgerError> {
        Ok(self.call(LedgerOp::ActiveFor)?.locks.get(&scope.lock_key()).cloned())
    }

    async fn expire_work(&self, id: &RequestId, indexes: &[u32], at: DateTime<Utc>) -> Result<(), LedgerError> {
        let mut s = self.call(LedgerOp::Shards)?;
        for index in indexes {
            if s.shards.contains_key(&(id.clone(), *index)) {
                s.expiring.insert((id.clone(), *index), at);
            }
        }
        Ok(())
    }

    async fn by_idempotency_key(
        &self,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Option<RequestId>, LedgerError> {
        Ok(self.call(LedgerOp::ByIdempotencyKey)?.live_key(key, now).cloned())
    }

    async fn list(&self, listing: &Listing, limit: u32, cursor: Option<&str>) -> Result<RequestPage, LedgerError> {
        self.call(LedgerOp::List)?.list(listing, limit, cursor)
    }

    async fn active(&self, limit: u32, cursor: Option<&str>) -> Result<RequestPage, LedgerError> {
        self.call(LedgerOp::Active)?.active(limit, cursor)
    }

    async fn insert_shards(&self, shards: &[Shard]) -> Result<(), LedgerError> {
        let mut s = self.call(LedgerOp::InsertShards)?;
        for shard in shards {
            let key = (shard.request_id.clone(), shard.index);
            s.shards.entry(key).or_insert_with(|| shard.clone());
        }
        // The plan counts every shard up to the highest number stored.
        if let Some(top) = shards.iter().map(|sh| sh.index + 1).max() {
            let plan = s.plans.entry(shards[0].request_id.clone()).or_insert((0, 0));
            plan.0 = plan.0.max(top);
        }
        Ok(())
    }

    async fn shards_planned(&self, id: &RequestId) -> Result<Option<u32>, LedgerError> {
        Ok(self
            .call(LedgerOp::ShardsPlanned)?
            .plans
            .get(id)
            .map(|(count, _)| *count))
    }

    async fn next_unstarted(&self, id: &RequestId) -> Result<Option<u32>, LedgerError> {
        let mut s = self.call(LedgerOp::NextUnstarted)?;
        match s.plans.get_mut(id) {
            Some((count, next)) if *next < *count => {
                *next += 1;
                Ok(Some(*next - 1))
            }
            _ => Ok(None),
        }
    }

    async fn shard(&self, id: &RequestId, index: u32) -> Result<Option<Shard>, LedgerError> {
        let s = self.call(LedgerOp::Shard)?;
        Ok(s.shards.get(&(id.clone(), index)).cloned())
    }

    async fn open_shards(&self, id: &RequestId, limit: u32) -> Result<Vec<OpenShard>, LedgerError> {
        let s = self.call(LedgerOp::OpenShards)?;
        let mut open: Vec<OpenShard> = s
            .shards
            .iter()
            .filter(|((r, _), shard)| r == id && !shard.done)
            .map(|(_, shard)| OpenShard {
                index: shard.index,
                lease_until: shard.lease.as_ref().map(|l| l.until),
            })
            .collect();
        open.sort_by_key(|o| (o.lease_until, o.index));
        open.truncate(limit as usize);
        Ok(open)
    }

    async fn latest_leases(&self, id: &RequestId, limit: u32) -> Result<Vec<OpenShard>, LedgerError> {
        let s = self.call(LedgerOp::LatestLease)?;
        let mut open: Vec<OpenShard> = s
            .shards
            .iter()
            .filter(|((r, _), shard)| r == id && !shard.done)
            .map(|(_, shard)| OpenShard {
                index: shard.index,
                lease_until: shard.lease.as_ref().map(|l| l.until),
            })
            .collect();
        open.sort_by_key(|o| std::cmp::Reverse((o.lease_until, o.index)));
        open.truncate(limit as usize);
        Ok(open)
    }

    async fn shards(&self, id: &RequestId) -> Result<Vec<Shard>, LedgerError> {
        let s = self.call(LedgerOp::Shards)?;
        Ok(s.shards
            .iter()
            .filter(|((r, _), _)| r == id)
            .map(|(_, shard)| shard.clone())
            .collect())
    }

    async fn update_shard(&self, next: &Shard) -> Result<(), LedgerError> {
        let mut s = self.call(LedgerOp::UpdateShard)?;
        let prev = next.version.checked_sub(1).ok_or(LedgerError::Conflict)?;
        let key = (next.request_id.clone(), next.index);
        match s.shards.get(&key) {
            Some(stored) if stored.version == prev => {
                s.shards.insert(key, next.clone());
                Ok(())
            }
            _ => Err(LedgerError::Conflict),
        }
    }

    async fn split_shard(&self, mine: &Shard, new: &Shard) -> Result<(), LedgerError> {
        let mut s = self.call(LedgerOp::UpdateShard)?;
        let prev = mine.version.checked_sub(1).ok_or(LedgerError::Conflict)?;
        let mine_key = (mine.request_id.clone(), mine.index);
        let new_key = (new.request_id.clone(), new.index);
        let counted = s.plans.get(&new.request_id).map(|(count, _)| *count);
        let stored = s.shards.get(&mine_key).map(|sh| sh.version);
        if stored != Some(prev) || s.shards.contains_key(&new_key) || counted != Some(new.index) {
            return Err(LedgerError::Conflict);
        }
        s.shards.insert(mine_key, mine.clone());
        s.shards.insert(new_key, new.clone());
        if let Some(plan) = s.plans.get_mut(&new.request_id) {
            plan.0 = new.index + 1;
        }
        Ok(())
    }

    async fn put_page(&self, page: &PendingPage) -> Result<(), LedgerError> {
        let mut s = self.call(LedgerOp::PutPage)?;
        let key = (page.request_id.clone(), page.shard, page.seq);
        s.pages.insert(key, page.clone());
        Ok(())
    }

    async fn pages(&self, id: &RequestId, shard: u32) -> Result<Vec<PendingPage>, LedgerError> {
        let s = self.call(LedgerOp::Pages)?;
        Ok(s.pages
            .iter()
            .filter(|((r, n, _), _)| r == id && *n == shard)
            .map(|(_, p)| p.clone())
            .collect())
    }

    async fn drop_page(&self, id: &RequestId, shard: u32, seq: u64) -> Result<(), LedgerError> {
        self.call(LedgerOp::DropPage)?.pages.remove(&(id.clone(), shard, seq));
        Ok(())
    }
}

#[async_trait]
impl Directory for MemoryLedger {
    async fn put_member(&self, workspace: &WorkspaceId, account: &AccountId, role: Role) -> Result<(), LedgerError> {
        let mut s = self.call(LedgerOp::Directory)?;
        s.members.insert((account.clone(), workspace.clone()), role);
        Ok(())
    }

    async fn remove_member(&self, workspace: &WorkspaceId, account: &AccountId) -> Result<bool, LedgerError> {
        let mut s = self.call(LedgerOp::Directory)?;
        Ok(s.members.remove(&(account.clone(), workspace.clone())).is_some())
    }

    async fn memberships(&self, account: &AccountId) -> Result<Vec<Membership>, LedgerError> {
        let s = self.call(LedgerOp::Directory)?;
        Ok(s.members
            .iter()
            .filter(|((a, _), _)| a == account)
            .map(|((_, workspace), role)| Membership {
                workspace: workspace.clone(),
                role: *role,
            })
            .collect())
    }
}

#[async_trait]
impl Holds for MemoryLedger {
    async fn place_hold(&self, hold: &Hold) -> Result<Hold, LedgerError> {
        let mut s = self.call(LedgerOp::Holds)?;
        Ok(s.holds
            .entry(hold.workspace.clone())
            .or_insert_with(|| hold.clone())
            .clone())
    }

    async fn hold(&self, workspace: &WorkspaceId) -> Result<Option<Hold>, LedgerError> {
        Ok(self.call(LedgerOp::Holds)?.holds.get(workspace).cloned())
    }

    async fn release_hold(&self, workspace: &WorkspaceId) -> Result<Option<Hold>, LedgerError> {
        Ok(self.call(LedgerOp::Holds)?.holds.remove(workspace))
    }
}

/// Which of two regulations' writes is later: its creation, then its id.
fn stamp(s: &Suppression) -> (i64, &RequestId) {
    (s.since.timestamp_millis(), &s.regulation)
}

#[async_trait]
impl Regulations for MemoryLedger {
    async fn put_subjects(&self, id: &RequestId, subjects: &Subjects) -> Result<(), LedgerError> {
        self.call(LedgerOp::Regulations)?
            .subjects
            .insert(id.clone(), subjects.clone());
        Ok(())
    }

    async fn subjects(&self, id: &RequestId) -> Result<Subjects, LedgerError> {
        let s = self.call(LedgerOp::Regulations)?;
        Ok(s.subjects
            .get(id)
            .cloned()
            .unwrap_or_else(|| Subjects::from_ids(Vec::new())))
    }

    async fn forget_subjects(&self, id: &RequestId) -> Result<(), LedgerError> {
        self.call(LedgerOp::Regulations)?.subjects.remove(id);
        Ok(())
    }

    async fn put_subject_refs(
        &self,
        regulation: &RequestId,
        created_at: DateTime<Utc>,
        source: Option<&SourceId>,
        digests: &[String],
    ) -> Result<(), LedgerError> {
        let mut s = self.call(LedgerOp::Regulations)?;
        for digest in digests {
            let refs = s.subject_refs.entry(digest.clone()).or_default();
            let at = (place(created_at, regulation), source.cloned());
            if !refs.contains(&at) {
                refs.push(at);
            }
        }
        Ok(())
    }

    async fn remove_subject_refs(
        &self,
        regulation: &RequestId,
        created_at: DateTime<Utc>,
        digests: &[String],
    ) -> Result<(), LedgerError> {
        let mut s = self.call(LedgerOp::Regulations)?;
        let at = place(created_at, regulation);
        for digest in digests {
            if let Some(refs) = s.subject_refs.get_mut(digest) {
                refs.retain(|(p, _)| p != &at);
            }
        }
        Ok(())
    }

    async fn subject_record(
        &self,
        digest: &str,
        suppression_of: Option<(&WorkspaceId, &UserId)>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<SubjectRecord, LedgerError> {
        let s = self.call(LedgerOp::Regulations)?;
        let after = cursor
            .map(|c| {
                let text = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or(LedgerError::InvalidCursor)?;
                let (at, id) = text.split_once('\n').ok_or(LedgerError::InvalidCursor)?;
                let at = at.parse::<i64>().map_err(|_| LedgerError::InvalidCursor)?;
                let id = RequestId::parse(id).map_err(|_| LedgerError::InvalidCursor)?;
                Ok((at, id))
            })
            .transpose()?;
        let mut refs = s.subject_refs.get(digest).cloned().unwrap_or_default();
        refs.sort_by(|a, b| b.0.cmp(&a.0));
        let limit = limit.clamp(1, 100) as usize;
        let page: Vec<(Place, Option<SourceId>)> = refs
            .into_iter()
            .filter(|(p, _)| after.as_ref().is_none_or(|a| p < a))
            .take(limit)
            .collect();
        let next = (page.len() == limit).then(|| {
            let ((at, id), _) = &page[limit - 1];
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{at}\n{id}"))
        });
        let regulations = page
            .iter()
            .filter_map(|((_, id), _)| match s.requests.get(id) {
                Some(Slot::Request(r)) => Some((**r).clone()),
                _ => None,
            })
            .collect();
        let entry = |w: &WorkspaceId, source: Option<&SourceId>, u: &UserId| {
            s.suppressions.get(&(w.clone(), source.cloned(), u.clone())).cloned()
        };
        let (suppression, source_suppressions) = match suppression_of {
            None => (None, Vec::new()),
            Some((w, u)) => {
                let mut sources: Vec<&SourceId> = page.iter().filter_map(|(_, src)| src.as_ref()).collect();
                sources.sort();
                sources.dedup();
                let of_sources = sources.into_iter().filter_map(|src| entry(w, Some(src), u)).collect();
                (entry(w, None, u), of_sources)
            }
        };
        Ok(SubjectRecord {
            suppression,
            source_suppressions,
            regulations,
            next,
        })
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
        let mut s = self.call(LedgerOp::Regulations)?;
        for id in ids {
            let entry = Suppression {
                user_id: id.clone(),
                source: source.cloned(),
                suppressed,
                since,
                regulation: regulation.clone(),
            };
            let key = (workspace.clone(), source.cloned(), id.clone());
            // A later regulation's state stands.
            if s.suppressions.get(&key).is_none_or(|old| stamp(old) <= stamp(&entry)) {
                s.suppressions.insert(key, entry);
            }
        }
        Ok(())
    }

    async fn lift_suppressions(
        &self,
        workspace: &WorkspaceId,
        source: Option<&SourceId>,
        ids: &[UserId],
        regulation: &RequestId,
    ) -> Result<(), LedgerError> {
        let mut s = self.call(LedgerOp::Regulations)?;
        for id in ids {
            if let Some(entry) = s
                .suppressions
                .get_mut(&(workspace.clone(), source.cloned(), id.clone()))
            {
                if &entry.regulation == regulation {
                    entry.suppressed = false;
                }
            }
        }
        Ok(())
    }

    async fn suppression(&self, workspace: &WorkspaceId, id: &UserId) -> Result<Option<Suppression>, LedgerError> {
        let s = self.call(LedgerOp::Regulations)?;
        Ok(s.suppressions.get(&(workspace.clone(), None, id.clone())).cloned())
    }

    async fn suppression_page(
        &self,
        workspace: &WorkspaceId,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<(Vec<Suppression>, Option<String>), LedgerError> {
        let s = self.call(LedgerOp::Regulations)?;
        let place = |e: &Suppression| {
            (
                e.since.timestamp_millis(),
                e.user_id.as_str().to_owned(),
                e.source.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            )
        };
        let after = cursor
            .map(|c| {
                let text = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or(LedgerError::InvalidCursor)?;
                let mut parts = text.split('\n');
                let (Some(at), Some(id), Some(source), None) = (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return Err(LedgerError::InvalidCursor);
                };
                Ok((
                    at.parse::<i64>().map_err(|_| LedgerError::InvalidCursor)?,
                    id.to_owned(),
                    source.to_owned(),
                ))
            })
            .transpose()?;
        let mut entries: Vec<&Suppression> = s
            .suppressions
            .iter()
            .filter(|((w, _, _), _)| w == workspace)
            .map(|(_, e)| e)
            .collect();
        entries.sort_by_key(|e| std::cmp::Reverse(place(e)));
        let limit = limit.clamp(1, 100) as usize;
        let page: Vec<Suppression> = entries
            .into_iter()
            .filter(|e| after.as_ref().is_none_or(|a| &place(e) < a))
            .take(limit)
            .cloned()
            .collect();
        let next = (page.len() == limit).then(|| {
            let (at, id, source) = place(&page[limit - 1]);
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{at}\n{id}\n{source}"))
        });
        Ok((page, next))
    }

    async fn suppressions(
        &self,
        workspace: &WorkspaceId,
        source: Option<&SourceId>,
        ids: &[UserId],
    ) -> Result<Vec<Suppression>, LedgerError> {
        let s = self.call(LedgerOp::Regulations)?;
        let mut found: Vec<Suppression> = Vec::new();
        let lists = [None, source.cloned()];
        for id in ids {
            for list in lists.iter().take(if source.is_some() { 2 } else { 1 }) {
                if let Some(entry) = s.suppressions.get(&(workspace.clone(), list.clone(), id.clone())) {
                    if !found.iter().any(|f| &f.user_id == id && f.source == entry.source) {
                        found.push(entry.clone());
                    }
                }
            }
        }
        Ok(found)
    }
}

/// Whether a write of `version` may land over `stored` (versions 0 and 1
/// only where nothing is stored, as the adapter's `put_if`).
fn versioned_write(stored: Option<u64>, version: u64) -> Result<(), LedgerError> {
    match (version.checked_sub(1).filter(|v| *v > 0), stored) {
        (None, None) => Ok(()),
        (Some(prev), Some(stored)) if prev == stored => Ok(()),
        _ => Err(LedgerError::Conflict),
    }
}

#[async_trait]
impl CallbackLedger for MemoryLedger {
    async fn callback_state(&self, id: &RequestId) -> Result<Option<CallbackState>, LedgerError> {
        Ok(self.call(LedgerOp::Callbacks)?.callbacks.get(id).cloned())
    }

    async fn put_callback_state(&self, next: &CallbackState) -> Result<(), LedgerError> {
        let mut s = self.call(LedgerOp::Callbacks)?;
        versioned_write(s.callbacks.get(&next.request_id).map(|c| c.version), next.version)?;
        s.callbacks.insert(next.request_id.clone(), next.clone());
        Ok(())
    }

    async fn due_callbacks(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<RequestId>, LedgerError> {
        let s = self.call(LedgerOp::Callbacks)?;
        let now = now.timestamp_millis();
        let mut due: Vec<Place> = s
            .callbacks
            .values()
            .filter_map(|c| c.next_attempt_at.map(|at| place(at, &c.request_id)))
            .filter(|(at, _)| *at <= now)
            .collect();
        due.sort();
        Ok(due.into_iter().take(limit as usize).map(|(_, id)| id).collect())
    }
}

#[async_trait]
impl SweepMarks for MemoryLedger {
    async fn sweep_mark(&self) -> Result<SweepMark, LedgerError> {
        Ok(self.call(LedgerOp::SweepMark)?.mark.clone().unwrap_or_default())
    }

    async fn put_sweep_mark(&self, next: &SweepMark) -> Result<(), LedgerError> {
        let mut s = self.call(LedgerOp::PutSweepMark)?;
        versioned_write(s.mark.as_ref().map(|m| m.version), next.version)?;
        s.mark = Some(next.clone());
        Ok(())
    }
}

#[async_trait]
impl RetentionLedger for MemoryLedger {
    async fn retention(&self, workspace: &WorkspaceId) -> Result<Option<Retention>, LedgerError> {
        Ok(self.call(LedgerOp::Retention)?.retention.get(workspace).cloned())
    }

    async fn put_retention(&self, next: &Retention) -> Result<(), LedgerError> {
        let mut s = self.call(LedgerOp::Retention)?;
        let stored = s.retention.get(&next.workspace).map_or(0, |r| r.version);
        if next.version != stored + 1 {
            return Err(LedgerError::Conflict);
        }
        s.retention.insert(next.workspace.clone(), next.clone());
        Ok(())
    }

    async fn retention_page(
        &self,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<(Vec<Retention>, Option<String>), LedgerError> {
        let s = self.call(LedgerOp::Retention)?;
        let after = cursor
            .map(|c| WorkspaceId::parse(c).map_err(|_| LedgerError::InvalidCursor))
            .transpose()?;
        let limit = limit.clamp(1, 100) as usize;
        let items: Vec<Retention> = s
            .retention
            .values()
            .filter(|r| after.as_ref().is_none_or(|a| &r.workspace > a))
            .take(limit)
            .cloned()
            .collect();
        let next = (items.len() == limit).then(|| items[limit - 1].workspace.to_string());
        Ok((items, next))
    }
}

#[async_trait]
impl QuotaLedger for MemoryLedger {
    async fn quota(&self, workspace: &WorkspaceId) -> Result<Option<Quota>, LedgerError> {
        Ok(self.call(LedgerOp::Quotas)?.quotas.get(workspace).cloned())
    }

    async fn put_quota(&self, next: &Quota) -> Result<(), LedgerError> {
        let mut s = self.call(LedgerOp::Quotas)?;
        let stored = s.quotas.get(&next.workspace).map_or(0, |q| q.version);
        if next.version != stored + 1 {
            return Err(LedgerError::Conflict);
        }
        s.quotas.insert(next.workspace.clone(), next.clone());
        Ok(())
    }

    async fn count_call(
        &self,
        workspace: &WorkspaceId,
        minute: DateTime<Utc>,
        limit: u32,
    ) -> Result<Option<u32>, LedgerError> {
        let mut s = self.call(LedgerOp::Quotas)?;
        let count = s.calls.entry((workspace.clone(), minute)).or_default();
        if *count >= limit {
            return Ok(None);
        }
        *count += 1;
        Ok(Some(*count))
    }

    async fn calls(&self, workspace: &WorkspaceId, minute: DateTime<Utc>) -> Result<u32, LedgerError> {
        let s = self.call(LedgerOp::Quotas)?;
        Ok(s.calls.get(&(workspace.clone(), minute)).copied().unwrap_or_default())
    }

    async fn reserve_subjects(
        &self,
        workspace: &WorkspaceId,
        month: &str,
        subjects: u64,
        limit: u64,
    ) -> Result<Result<MonthUsage, MonthUsage>, LedgerError> {
        let mut s = self.call(LedgerOp::Quotas)?;
        let used = s.months.entry((workspace.clone(), month.to_owned())).or_default();
        if used.subjects + subjects > limit {
            return Ok(Err(used.clone()));
        }
        used.subjects += subjects;
        used.regulations += 1;
        Ok(Ok(used.clone()))
    }

    async fn release_subjects(&self, workspace: &WorkspaceId, month: &str, subjects: u64) -> Result<(), LedgerError> {
        let mut s = self.call(LedgerOp::Quotas)?;
        let used = s.months.entry((workspace.clone(), month.to_owned())).or_default();
        used.subjects = used.subjects.saturating_sub(subjects);
        used.regulations = used.regulations.saturating_sub(1);
        Ok(())
    }

    async fn month_usage(&self, workspace: &WorkspaceId, month: &str) -> Result<MonthUsage, LedgerError> {
        let s = self.call(LedgerOp::Quotas)?;
        Ok(s.months
            .get(&(workspace.clone(), month.to_owned()))
            .cloned()
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::lifecycle::Periods;
    use crate::model::Status;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn request(workspace: &str, at: DateTime<Utc>) -> DeletionRequest {
        let scope = Scope::Workspace {
            workspace: WorkspaceId::parse(workspace).unwrap(),
        };
        DeletionRequest::new(scope, "ann", None, at, Periods::default())
    }

    #[tokio::test]
    async fn an_insert_is_refused_as_the_adapter_refuses_it() {
        let (ledger, at) = (MemoryLedger::new(), t0());
        let key = IdempotencyKey::parse("k1").unwrap();
        let first = request("acme", at);
        ledger.insert(&first, Some(&key)).await.unwrap();
        let busy = ledger.insert(&request("acme", at), None).await;
        assert!(matches!(busy, Err(LedgerError::ScopeBusy { scope, holder })
            if scope == first.scope.lock_key() && holder == first.id.as_str()));
        let used = ledger.insert(&request("globex", at), Some(&key)).await;
        assert!(matches!(used, Err(LedgerError::IdempotencyKeyUsed { holder }) if holder == first.id.as_str()));
        assert_eq!(
            ledger.active_for(&request("globex", at).scope).await.unwrap(),
            None,
            "nothing written"
        );
        // A version out of turn is a conflict; a final one frees the scope.
        let mut skipped = first.clone();
        skipped.version += 2;
        assert!(matches!(ledger.update(&skipped).await, Err(LedgerError::Conflict)));
        let revoked = first.revoke(at, "ann").unwrap();
        ledger.update(&revoked).await.unwrap();
        assert_eq!(ledger.active_for(&first.scope).await.unwrap(), None);
        assert_eq!(
            ledger.by_idempotency_key(&key, at).await.unwrap(),
            Some(first.id.clone())
        );
        assert_eq!(ledger.request(&first.id).unwrap().status, Status::Revoked);
        // A day on, the key is free: it names nothing and may be used again.
        let later = at + IDEMPOTENCY_KEY_LIFETIME;
        assert_eq!(ledger.by_idempotency_key(&key, later).await.unwrap(), None);
        ledger.insert(&request("globex", later), Some(&key)).await.unwrap();
    }

    #[tokio::test]
    async fn listings_page_newest_first_and_refuse_each_others_cursors() {
        let (ledger, at) = (MemoryLedger::new(), t0());
        let mut made = Vec::new();
        for n in 0..3 {
            let mut r = request("acme", at + Duration::seconds(n));
            r.scope = Scope::Space {
                workspace: WorkspaceId::parse("acme").unwrap(),
                space: crate::ids::SpaceId::parse(&format!("s{n}")).unwrap(),
            };
            ledger.insert(&r, None).await.unwrap();
            made.push(r.id);
        }
        let listing = Listing::Workspace(WorkspaceId::parse("acme").unwrap());
        let first = ledger.list(&listing, 2, None).await.unwrap();
        assert_eq!(
            first.items.iter().map(|r| &r.id).collect::<Vec<_>>(),
            [&made[2], &made[1]]
        );
        let cursor = first.next.expect("a full page has a cursor");
        let second = ledger.list(&listing, 2, Some(&cursor)).await.unwrap();
        assert_eq!(second.items.iter().map(|r| &r.id).collect::<Vec<_>>(), [&made[0]]);
        assert_eq!(second.next, None);
        let other = Listing::Workspace(WorkspaceId::parse("globex").unwrap());
        assert!(matches!(
            ledger.list(&other, 2, Some(&cursor)).await,
            Err(LedgerError::InvalidCursor)
        ));
        assert!(matches!(
            ledger.active(2, Some(&cursor)).await,
            Err(LedgerError::InvalidCursor)
        ));
    }
}
