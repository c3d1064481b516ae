//! The deletion request and the records kept beside it in the ledger.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, RequestId, SourceId, SpaceId, WorkspaceId};
use crate::regulation::{RegulationType, RewriteCounts, SubjectType};
pub use crate::status::Status;

pub mod callbacks;
pub mod keys;
pub mod ledger;
pub mod opendsr;
pub mod quota;
pub mod regulation;
pub mod retention;
pub mod store;

/// What a request deletes. Each scope expands, through the data map, to the
/// exact prefixes to purge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scope {
    /// Everything the workspace owns, in every store of the data map.
    Workspace { workspace: WorkspaceId },
    /// One space of a workspace: its profiles, computed traits, audiences
    /// and journeys (the stores whose layout names `{space}`).
    Space { workspace: WorkspaceId, space: SpaceId },
    /// A source's archive for whole days, `from` to `to` inclusive.
    SourceDays {
        workspace: WorkspaceId,
        source: SourceId,
        from: NaiveDate,
        to: NaiveDate,
    },
    /// Every workspace in which the account is an admin: a parent request
    /// whose children are workspace deletions. It holds no data itself.
    Account { account: AccountId },
    /// The complete data purge of a workspace deleted long ago, asked by an
    /// operator: the same prefixes as a workspace deletion.
    WorkspacePurge { workspace: WorkspaceId },
    /// A regulation about end users of a workspace: its subject ids are
    /// kept beside the request (`digest` names the set), and its shards
    /// rewrite the objects of the stores with user records.
    Regulation {
        workspace: WorkspaceId,
        regulation: RegulationType,
        subject_count: usize,
        digest: String,
        /// What kind of ids the subjects are (absent: `USER_ID`, as every
        /// regulation was before there were others).
        #[serde(default, skip_serializing_if = "SubjectType::is_user_id")]
        subject_type: SubjectType,
        /// Only this source's data (its archive, its suppression list);
        /// absent: the whole workspace.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<SourceId>,
    },
}

/// A list of requests the ledger keeps, newest first. Every request is in
/// exactly one (`Scope::listing`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Listing {
    /// A workspace's deletions (workspace, space, source days, complete
    /// purge): every kind but regulations.
    Workspace(WorkspaceId),
    /// An account's own requests (account deletions).
    Account(AccountId),
    /// A workspace's regulations, apart from its deletions.
    Regulations(WorkspaceId),
}

impl Scope {
    pub fn kind(&self) -> &'static str {
        match self {
            Scope::Workspace { .. } => "workspace",
            Scope::Space { .. } => "space",
            Scope::SourceDays { .. } => "source_days",
            Scope::Account { .. } => "account",
            Scope::WorkspacePurge { .. } => "workspace_purge",
            Scope::Regulation { .. } => "regulation",
        }
    }

    /// The workspace whose data the scope reaches (none for an account).
    pub fn workspace(&self) -> Option<&WorkspaceId> {
        match self {
            Scope::Workspace { workspace }
            | Scope::Space { workspace, .. }
            | Scope::SourceDays { workspace, .. }
            | Scope::WorkspacePurge { workspace }
            | Scope::Regulation { workspace, .. } => Some(workspace),
            Scope::Account { .. } => None,
        }
    }

    /// Whether the request purges data itself (an account request only
    /// groups its children).
    pub fn holds_data(&self) -> bool {
        !matches!(self, Scope::Account { .. })
    }

    /// The key under which at most one active request may hold this scope.
    pub fn lock_key(&self) -> String {
        match self {
            Scope::Workspace { workspace } => format!("workspace#{workspace}"),
            Scope::Space { workspace, space } => format!("space#{workspace}#{space}"),
            Scope::SourceDays {
                workspace,
                source,
                from,
                to,
            } => format!("source_days#{workspace}#{source}#{from}#{to}"),
            Scope::Account { account } => format!("account#{account}"),
            Scope::WorkspacePurge { workspace } => format!("workspace_purge#{workspace}"),
            // The same ids asked again while one is under way find it.
            // A source's: its own key (a type is upper case, never `source:`).
            Scope::Regulation {
                workspace,
                regulation,
                digest,
                subject_type,
                source: Some(source),
                ..
            } => format!("regulation#{workspace}#source:{source}#{regulation}#{subject_type}#{digest}"),
            Scope::Regulation {
                workspace,
                regulation,
                digest,
                subject_type,
                ..
            } if subject_type.is_user_id() => format!("regulation#{workspace}#{regulation}#{digest}"),
            Scope::Regulation {
                workspace,
                regulation,
                digest,
                subject_type,
                ..
            } => format!("regulation#{workspace}#{regulation}#{subject_type}#{digest}"),
        }
    }

    /// The listing the ledger shows the request in: its workspace's
    /// regulations or deletions, or its account's requests.
    pub fn listing(&self) -> Listing {
        match self {
            Scope::Regulation { workspace, .. } => Listing::Regulations(workspace.clone()),
            Scope::Workspace { workspace }
            | Scope::Space { workspace, .. }
            | Scope::SourceDays { workspace, .. }
            | Scope::WorkspacePurge { workspace } => Listing::Workspace(workspace.clone()),
            Scope::Account { account } => Listing::Account(account.clone()),
        }
    }

    /// A human description, for messages.
    pub fn describe(&self) -> String {
        match self {
            Scope::Workspace { workspace } => format!("workspace {workspace}"),
            Scope::Space { workspace, space } => format!("space {space} of workspace {workspace}"),
            Scope::SourceDays {
                workspace,
                source,
                from,
                to,
            } => format!("source {source} of workspace {workspace}, days {from} to {to}"),
            Scope::Account { account } => format!("account {account}"),
            Scope::WorkspacePurge { workspace } => {
                format!("complete purge of workspace {workspace}")
            }
            Scope::Regulation {
                workspace,
                regulation,
                subject_count,
                subject_type,
                source,
                ..
            } => {
                let whom = if subject_type.is_user_id() {
                    "user(s)".to_owned()
                } else {
                    format!("{subject_type}(s)")
                };
                match source {
                    Some(source) => format!(
                        "regulation {regulation} of {subject_count} {whom} of source {source} of workspace {workspace}"
                    ),
                    None => format!("regulation {regulation} of {subject_count} {whom} of workspace {workspace}"),
                }
            }
        }
    }

    /// The sets of named parts this scope fixes in data-map layouts: one set
    /// per prefix family (one per day for source days).
    pub fn bindings(&self) -> Vec<BTreeMap<&'static str, String>> {
        let ws = |w: &WorkspaceId| ("workspace", w.as_str().to_owned());
        match self {
            Scope::Workspace { workspace } | Scope::WorkspacePurge { workspace } => {
                vec![BTreeMap::from([ws(workspace)])]
            }
            Scope::Space { workspace, space } => {
                vec![BTreeMap::from([ws(workspace), ("space", space.as_str().to_owned())])]
            }
            Scope::SourceDays {
                workspace,
                source,
                from,
                to,
            } => from
                .iter_days()
                .take_while(|d| d <= to)
                .map(|day| {
                    BTreeMap::from([
                        ws(workspace),
                        ("source", source.as_str().to_owned()),
                        ("day", day.format("%Y-%m-%d").to_string()),
                    ])
                })
                .collect(),
            // A source's reaches only the stores whose layout names sources.
            Scope::Regulation {
                workspace,
                regulation,
                source: Some(source),
                ..
            } if regulation.deletes() => vec![BTreeMap::from([ws(workspace), ("source", source.as_str().to_owned())])],
            Scope::Regulation {
                workspace, regulation, ..
            } if regulation.deletes() => vec![BTreeMap::from([ws(workspace)])],
            Scope::Regulation { .. } | Scope::Account { .. } => Vec::new(),
        }
    }

    /// The regulation, for a regulation's scope.
    pub fn regulation(&self) -> Option<RegulationType> {
        match self {
            Scope::Regulation { regulation, .. } => Some(*regulation),
            _ => None,
        }
    }

    /// How many subjects a regulation names.
    pub fn subject_count(&self) -> Option<usize> {
        match self {
            Scope::Regulation { subject_count, .. } => Some(*subject_count),
            _ => None,
        }
    }

    /// A source-scoped regulation's source.
    pub fn regulation_source(&self) -> Option<&SourceId> {
        match self {
            Scope::Regulation { source, .. } => source.as_ref(),
            _ => None,
        }
    }

    /// A regulation's subject type.
    pub fn subject_type(&self) -> Option<&SubjectType> {
        match self {
            Scope::Regulation { subject_type, .. } => Some(subject_type),
            _ => None,
        }
    }
}

/// One entry of a request's status history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub status: Status,
    pub at: DateTime<Utc>,
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Who is purging a request, and until when nobody else may.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub owner: String,
    pub until: DateTime<Utc>,
}

/// Counts of what a purge removed (or, in a plan, found).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Current objects (the latest, non-marker version of a key, or the
    /// object itself in an unversioned bucket).
    pub objects: u64,
    /// Noncurrent versions.
    pub versions: u64,
    pub delete_markers: u64,
    pub uploads_aborted: u64,
    pub bytes: u64,
}

impl Counts {
    pub fn add(&mut self, other: &Counts) {
        self.objects += other.objects;
        self.versions += other.versions;
        self.delete_markers += other.delete_markers;
        self.uploads_aborted += other.uploads_aborted;
        self.bytes += other.bytes;
    }

    /// Takes `other` away (never below zero).
    pub fn sub(&mut self, other: &Counts) {
        self.objects = self.objects.saturating_sub(other.objects);
        self.versions = self.versions.saturating_sub(other.versions);
        self.delete_markers = self.delete_markers.saturating_sub(other.delete_markers);
        self.uploads_aborted = self.uploads_aborted.saturating_sub(other.uploads_aborted);
        self.bytes = self.bytes.saturating_sub(other.bytes);
    }
}

/// A unit of purge work: one prefix in one bucket, with its checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub request_id: RequestId,
    pub index: u32,
    pub store: String,
    pub bucket: String,
    pub prefix: String,
    /// The data-map prefix the shard was split from (its own prefix when
    /// not split); receipts and verification go by it.
    #[serde(default)]
    pub root: String,
    /// The shard's key range within its prefix: the keys after `after`
    /// (exclusive) up to `upto` (inclusive); `None` leaves that side open.
    /// The ranges of a prefix's shards follow one another without a gap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upto: Option<String>,
    pub done: bool,
    /// Where the object listing resumes (opaque to the domain).
    #[serde(default)]
    pub cursor: Option<String>,
    /// Whether every unfinished multipart upload was aborted.
    #[serde(default)]
    pub uploads_done: bool,
    #[serde(default)]
    pub counts: Counts,
    /// The worker purging the shard now, and until when.
    #[serde(default)]
    pub lease: Option<Lease>,
    /// Pages deleted and counted in this checkpoint.
    #[serde(default)]
    pub pages_done: u64,
    /// What a regulation's rewrite did in this shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<RewriteCounts>,
    /// The pages listed and sent to delete after the checkpoint, not yet
    /// counted: the write-ahead record a successor recovers from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingRange>,
    pub version: u64,
}

/// Pages in flight, as one key range: everything the shard lists after
/// its checkpoint up to `last_key`, and of `last_key` only the versions
/// these pages listed (the next page may hold more of them). A few hundred
/// bytes whatever the page size, not the list of keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRange {
    /// The last key the newest page in flight listed.
    pub last_key: String,
    /// The versions of `last_key` the pages listed (`None`: an entry of a
    /// listing without versions).
    pub last_versions: Vec<Option<String>>,
    /// What the pages listed: counted once their delete is confirmed, or
    /// whole by the successor that recovers the range.
    pub counts: Counts,
    /// Pages in flight.
    pub pages: u32,
}

impl PendingRange {
    /// Whether a listed entry lies in the range (the shard's checkpoint
    /// is its lower bound: everything before it is gone).
    pub fn holds(&self, key: &str, version_id: Option<&str>) -> bool {
        match key.cmp(self.last_key.as_str()) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Equal => self.last_versions.iter().any(|v| v.as_deref() == version_id),
            std::cmp::Ordering::Greater => false,
        }
    }

    /// Whether a listed entry lies past the range: nothing after it can
    /// be in it.
    pub fn is_past(&self, key: &str) -> bool {
        key > self.last_key.as_str()
    }
}

impl Shard {
    /// Whether `key` is this shard's: under its prefix and in its range.
    pub fn holds_key(&self, key: &str) -> bool {
        key.starts_with(&self.prefix)
            && self.after.as_deref().is_none_or(|a| key > a)
            && self.upto.as_deref().is_none_or(|u| key <= u)
    }

    /// Whether `key` (under the prefix) lies past the shard's range.
    pub fn is_past(&self, key: &str) -> bool {
        self.upto.as_deref().is_some_and(|u| key > u)
    }

    /// The data-map prefix the shard belongs to.
    pub fn root(&self) -> &str {
        if self.root.is_empty() {
            &self.prefix
        } else {
            &self.root
        }
    }
}

/// Progress of a request, derived from its shards.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Data-map prefixes, and those whose every shard is done.
    pub prefixes_total: u64,
    pub prefixes_done: u64,
    /// The units the prefixes were cut into, and those done.
    #[serde(default)]
    pub shards_total: u64,
    #[serde(default)]
    pub shards_done: u64,
    #[serde(flatten)]
    pub deleted: Counts,
    /// The same, per store of the data map, in the plan's order.
    #[serde(default)]
    pub stores: Vec<StoreProgress>,
}

/// One store's part of a request's progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreProgress {
    pub store: String,
    pub shards_total: u64,
    pub shards_done: u64,
    #[serde(flatten)]
    pub deleted: Counts,
}

impl Progress {
    pub fn from_shards(shards: &[Shard]) -> Progress {
        let mut p = Progress {
            shards_total: shards.len() as u64,
            ..Progress::default()
        };
        let mut roots: Vec<(&str, &str, bool)> = Vec::new();
        for s in shards {
            if s.done {
                p.shards_done += 1;
            }
            p.deleted.add(&s.counts);
            let store = match p.stores.iter().position(|x| x.store == s.store) {
                Some(i) => &mut p.stores[i],
                None => {
                    p.stores.push(StoreProgress {
                        store: s.store.clone(),
                        ..StoreProgress::default()
                    });
                    let last = p.stores.len() - 1;
                    &mut p.stores[last]
                }
            };
            store.shards_total += 1;
            store.shards_done += u64::from(s.done);
            store.deleted.add(&s.counts);
            match roots.iter_mut().find(|(b, r, _)| *b == s.bucket && *r == s.root()) {
                Some(root) => root.2 &= s.done,
                None => roots.push((&s.bucket, s.root(), s.done)),
            }
        }
        p.prefixes_total = roots.len() as u64;
        p.prefixes_done = roots.iter().filter(|r| r.2).count() as u64;
        p
    }
}

/// What was purged under one prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixReceipt {
    pub store: String,
    pub bucket: String,
    pub prefix: String,
    pub deleted: Counts,
    /// For a regulation: what its rewrite did under the prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewritten: Option<RewriteCounts>,
}

/// A receipt's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptSignature {
    pub algorithm: String,
    /// Which key signed: a KMS key id, or `local:<name>`.
    pub key_id: String,
    /// The MAC, base64.
    pub value: String,
}

/// Proof of a finished purge, stored on the request when it completes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub request_id: RequestId,
    pub scope: Scope,
    pub prefixes: Vec<PrefixReceipt>,
    pub totals: Counts,
    pub purge_started_at: DateTime<Utc>,
    pub purge_finished_at: DateTime<Utc>,
    pub verified_at: DateTime<Utc>,
    /// What the verification listing found: always "nothing left" on a
    /// completed request.
    pub verification: String,
    /// The signature over the rest of the receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<ReceiptSignature>,
}

/// A deletion request: the ledger's unit of truth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionRequest {
    pub id: RequestId,
    pub scope: Scope,
    pub status: Status,
    /// Bumped by every write; every write is conditional on it.
    pub version: u64,
    pub requested_by: String,
    #[serde(default)]
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub grace_ends_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub history: Vec<Transition>,
    #[serde(default)]
    pub lease: Option<Lease>,
    #[serde(default)]
    pub purge_started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub failure: Option<String>,
    #[serde(default)]
    pub receipt: Option<Receipt>,
    /// When the sweep found the request unfinished past its deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_missed_at: Option<DateTime<Utc>>,
    /// The account request this request belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<RequestId>,
    /// The workspace requests of an account request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<RequestId>,
    /// For a regulation that suppresses or unsuppresses: when its
    /// suppression list change was written in full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppression_applied_at: Option<DateTime<Utc>>,
    /// While `ON_HOLD`: since when (the deadline is moved on by the time
    /// held when the hold is released).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_since: Option<DateTime<Utc>>,
    /// Where each status change is POSTed, if the requester asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<callbacks::CallbackUrl>,
    /// When a `FAILED` request that used up its attempts was given up: it
    /// is never retried again and no longer holds its scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_up_at: Option<DateTime<Utc>>,
    /// How many of the oldest transitions were dropped from `history` to
    /// keep it bounded (the first, the creation, is always kept).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub history_elided: u64,
    /// A completed request's progress, kept with it: its shards are then
    /// no longer needed, and expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_progress: Option<Progress>,
    /// For a regulation: when the subject made the request, if the caller
    /// said (the deadline counts from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<DateTime<Utc>>,
    /// For a regulation: when its raw subject ids left the ledger (only
    /// their keyed digests stay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subjects_forgotten_at: Option<DateTime<Utc>>,
    /// For a regulation made by an OpenDSR request: what it keeps of it
    /// (its id is the request's `subject_request_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opendsr: Option<opendsr::OpenDsr>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl DeletionRequest {
    /// Whether this version of the request gives up its scope lock: a
    /// final state, or a failed request given up. Once it has, the request
    /// is never written again.
    pub fn releases_scope(&self) -> bool {
        self.status.is_terminal() || (self.status == Status::Failed && self.given_up_at.is_some())
    }

    /// Whether the sweep may still retry it (a `FAILED` request not given up).
    pub fn retryable(&self) -> bool {
        self.status == Status::Failed && self.given_up_at.is_none()
    }
}
