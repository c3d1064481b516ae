//! Every key of the ledger's items, and of its two indexes: the one place
//! that knows how the table is laid out. Nothing above the adapter sees
//! these strings (the domain names a listing with `Listing`, a request by
//! its id); tables already deployed hold exactly these formats, so none
//! may change.
//!
//! Items (pk / sk):
//! - `REQ#<id>` / `REQ`: a request; `gsi1pk` its listing (`WS#<workspace>`,
//!   `REGS#<workspace>` or `ACCOUNT#<account>`), `gsi1sk =
//!   <created_at>#<id>` (index `by-workspace`, newest first); while not
//!   final, `gsi2pk = ACTIVE`, `gsi2sk = <grace_ends_at>#<id>` (index
//!   `active`, for the sweep).
//! - `SHARDS#<id>#<gg>` / `SHARD#<nnnnnn>`: a purge shard with its
//!   checkpoint (and the pages in flight, as one key range), in group
//!   `gg = nnnnnn mod groups` of the plan's `groups` partitions, so that no
//!   request's checkpoints share one partition's throughput; while not done,
//!   `gsi3pk = OPEN#<id>`, `gsi3sk = <lease end, or 0>#<nnnnnn>` (index
//!   `open`, keys only: the free shards first; a checkpoint that keeps its
//!   lease does not change the index). Plans written before the shards were
//!   spread keep theirs beside the request: `REQ#<id>` / `SHARD#<nnnnnn>`.
//! - `REQ#<id>` / `SHARDS`: the plan: how many partitions its shards are
//!   spread over (`groups`, written before the first shard; absent: beside
//!   the request), its shard count (`total`) and the next shard number to
//!   hand out (`next`), written after the shards.
//! - `REQ#<id>` / `PAGE#<shard>#<seq>#<chunk>`: a regulation's older
//!   versions to delete, recorded before their delete.
//! - `REQ#<id>` / `RECEIPT#<write>#<nnnn>`: a chunk of a large receipt.
//! - `REQ#<id>` / `SUBJECTS#<nnnn>`: a chunk of a regulation's subject ids
//!   (deleted before the regulation completes).
//! - `SUBJ#<digest>` / `REG#<created_at>#<id>`: a regulation that named
//!   the subject of a keyed digest (never the raw id); read newest first.
//! - `REQ#<id>` / `CALLBACK`: where its status callbacks stand; `gsi2pk =
//!   CALLBACK_DUE`, `gsi2sk = <next attempt>#<id>` while a retry waits.
//! - `LOCK#<scope>` / `LOCK`: the one active request of a scope.
//! - `IDEM#<key>` / `IDEM`: the request an idempotency key created.
//! - `ACCOUNT#<account>` / `MEMBER#<workspace>`: a membership.
//! - `HOLD#<workspace>` / `HOLD`: a legal hold.
//! - `SUPP#<workspace>` / `U#<user id>`: a user's suppression state
//!   (`SRC#<source>#U#<user id>`: in one source's list);
//!   `gsi1pk = SUPPS#<workspace>`, `gsi1sk = <since>#<user id>` (listed
//!   newest first in `by-workspace`; entries written before that carry
//!   none and are not listed).
//! - `SWEEP` / `MARK`: where the last sweep stopped.
//! - `QUOTA#<workspace>` / `QUOTA`: an operator's quotas for a workspace.
//! - `USAGE#<workspace>` / `MINUTE#<minute>`: calls of the regulations API
//!   in that minute (TTL an hour on); `MONTH#<yyyy-mm>`: subjects and
//!   regulations of that UTC month (TTL 400 days on).
//! - `RETENTION` / `WS#<workspace>`: a workspace's retention policy, change
//!   in grace, history and last run (one partition: listed by the daily
//!   enforcement).

use chrono::{DateTime, SecondsFormat, Utc};
use deletion_core::ids::{AccountId, IdempotencyKey, RequestId, SourceId, WorkspaceId};
use deletion_core::model::{Listing, Scope};
use deletion_core::regulation::UserId;

/// The index of the listings, newest first.
pub const INDEX_BY_WORKSPACE: &str = "by-workspace";
/// Sparse index of the requests not in a final state (for the sweep) and
/// of the callbacks waiting for a retry.
pub const INDEX_ACTIVE: &str = "active";

/// Sparse index of the shards not done, by lease end (keys only).
pub const INDEX_OPEN: &str = "open";

/// The attributes of a `by-workspace` cursor: table key, then index key.
pub const LISTING_KEYS: [&str; 4] = ["pk", "sk", "gsi1pk", "gsi1sk"];
/// The attributes of an `active` cursor: table key, then index key.
pub const ACTIVE_KEYS: [&str; 4] = ["pk", "sk", "gsi2pk", "gsi2sk"];

const REQUEST_PREFIX: &str = "REQ#";
/// The sort key of a request item.
pub const REQUEST_SK: &str = "REQ";
/// The sort key of a request's callback state (beside the request).
pub const CALLBACK_SK: &str = "CALLBACK";
pub const LOCK_SK: &str = "LOCK";
pub const IDEM_SK: &str = "IDEM";
pub const HOLD_SK: &str = "HOLD";
pub const SWEEP_PK: &str = "SWEEP";
pub const SWEEP_SK: &str = "MARK";
/// The `active` partition of the requests not in a final state.
pub const ACTIVE_PARTITION: &str = "ACTIVE";
/// The `active` partition of callback states waiting for a retry, sorted
/// by when it is due.
pub const CALLBACK_DUE: &str = "CALLBACK_DUE";
pub const SHARD_PREFIX: &str = "SHARD#";
pub const SUBJECTS_PREFIX: &str = "SUBJECTS#";
pub const MEMBER_PREFIX: &str = "MEMBER#";

fn millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The partition of a request and of everything kept beside it.
pub fn request_pk(id: &RequestId) -> String {
    format!("{REQUEST_PREFIX}{id}")
}

/// The request a partition key names, if it is a request's partition.
pub fn request_of_pk(pk: &str) -> Option<RequestId> {
    RequestId::parse(pk.strip_prefix(REQUEST_PREFIX)?).ok()
}

/// The request an item's key names, if it is a request item (not a shard,
/// page or other item beside it).
pub fn request_of(pk: &str, sk: &str) -> Option<RequestId> {
    (sk == REQUEST_SK).then(|| request_of_pk(pk)).flatten()
}

/// The `by-workspace` partition of a listing.
pub fn listing_pk(listing: &Listing) -> String {
    match listing {
        Listing::Workspace(workspace) => format!("WS#{workspace}"),
        Listing::Account(account) => format!("ACCOUNT#{account}"),
        Listing::Regulations(workspace) => format!("REGS#{workspace}"),
    }
}

/// A request's place in its listing: newest last (read backwards).
pub fn listing_sk(created_at: DateTime<Utc>, id: &RequestId) -> String {
    format!("{}#{id}", millis(created_at))
}

/// A request's place in the `active` partition: by the end of its grace.
pub fn active_sk(grace_ends_at: DateTime<Utc>, id: &RequestId) -> String {
    format!("{}#{id}", millis(grace_ends_at))
}

/// A waiting callback's place in `CALLBACK_DUE`: by its next attempt.
pub fn callback_due_sk(at: DateTime<Utc>, id: &RequestId) -> String {
    format!("{}#{id}", millis(at))
}

/// The bound below which every `CALLBACK_DUE` entry is due by `now`
/// (everything sorting before the first id at `now`).
pub fn callback_due_until(now: DateTime<Utc>) -> String {
    format!("{}$", millis(now))
}

/// The sort key of a request's shard plan (count and counter).
pub const SHARD_PLAN_SK: &str = "SHARDS";

/// The `open` partition of a request's shards not done.
pub fn open_pk(id: &RequestId) -> String {
    format!("OPEN#{id}")
}

/// A shard's place in `open`: by when its lease ends (`0`, before every
/// time: no lease), then by number.
pub fn open_sk(lease_until: Option<DateTime<Utc>>, index: u32) -> String {
    match lease_until {
        Some(until) => format!("{}#{index:06}", millis(until)),
        None => format!("0#{index:06}"),
    }
}

/// A shard's lease end and number from its place in `open`.
pub fn parse_open_sk(sk: &str) -> Option<(Option<DateTime<Utc>>, u32)> {
    let (until, index) = sk.rsplit_once('#')?;
    let index = index.parse().ok()?;
    if until == "0" {
        return Some((None, index));
    }
    let until = DateTime::parse_from_rfc3339(until).ok()?.with_timezone(&Utc);
    Some((Some(until), index))
}

/// How many partitions a new plan's shards are spread over.
pub const SHARD_GROUPS: u32 = 16;

/// The partition of a group of a plan's shards.
pub fn shard_group_pk(id: &RequestId, group: u32) -> String {
    format!("SHARDS#{id}#{group:02}")
}

pub fn shard_sk(index: u32) -> String {
    format!("{SHARD_PREFIX}{index:06}")
}

pub fn page_sk(shard: u32, seq: u64, chunk: usize) -> String {
    format!("PAGE#{shard:06}#{seq:012}#{chunk:04}")
}

/// The prefix of every page of a shard.
pub fn shard_pages_prefix(shard: u32) -> String {
    format!("PAGE#{shard:06}#")
}

/// The prefix of the chunks of one page.
pub fn page_chunks_prefix(shard: u32, seq: u64) -> String {
    format!("PAGE#{shard:06}#{seq:012}#")
}

/// A chunk of a receipt written by one write (`write` is the write's own
/// name, so a lost race leaves an inert chunk set).
pub fn receipt_sk(write: &str, chunk: usize) -> String {
    format!("RECEIPT#{write}#{chunk:04}")
}

pub fn subjects_sk(chunk: usize) -> String {
    format!("{SUBJECTS_PREFIX}{chunk:04}")
}

/// The partition of one subject's records: its keyed digest, never its id.
pub fn subject_pk(digest: &str) -> String {
    format!("SUBJ#{digest}")
}

pub const SUBJECT_REF_PREFIX: &str = "REG#";

/// A regulation's record under its subject: by creation, then id.
pub fn subject_ref_sk(created_at: DateTime<Utc>, id: &RequestId) -> String {
    format!("{SUBJECT_REF_PREFIX}{}#{id}", millis(created_at))
}

/// The regulation a subject record's sort key names.
pub fn regulation_of_subject_ref(sk: &str) -> Option<RequestId> {
    let (_, id) = sk.strip_prefix(SUBJECT_REF_PREFIX)?.rsplit_once('#')?;
    RequestId::parse(id).ok()
}

/// An operator's quotas for a workspace.
pub fn quota_pk(workspace: &WorkspaceId) -> String {
    format!("QUOTA#{workspace}")
}

pub const QUOTA_SK: &str = "QUOTA";

/// The partition of a workspace's use counters.
pub fn usage_pk(workspace: &WorkspaceId) -> String {
    format!("USAGE#{workspace}")
}

/// The calls of one minute.
pub fn minute_sk(minute: DateTime<Utc>) -> String {
    format!("MINUTE#{}", millis(minute))
}

/// The use of one UTC month (`2026-12`).
pub fn month_sk(month: &str) -> String {
    format!("MONTH#{month}")
}

/// The lock of a scope: `scope.lock_key()` is the scope's identity.
pub fn lock_pk(scope: &Scope) -> String {
    format!("LOCK#{}", scope.lock_key())
}

pub fn idem_pk(key: &IdempotencyKey) -> String {
    format!("IDEM#{}", key.as_str())
}

pub fn member_pk(account: &AccountId) -> String {
    format!("ACCOUNT#{account}")
}

pub fn member_sk(workspace: &WorkspaceId) -> String {
    format!("{MEMBER_PREFIX}{workspace}")
}

pub fn hold_pk(workspace: &WorkspaceId) -> String {
    format!("HOLD#{workspace}")
}

/// The one partition of every workspace's retention record.
pub const RETENTION_PK: &str = "RETENTION";

pub fn retention_sk(workspace: &WorkspaceId) -> String {
    format!("WS#{workspace}")
}

/// The workspace a retention record's sort key names.
pub fn workspace_of_retention_sk(sk: &str) -> Option<&str> {
    sk.strip_prefix("WS#")
}

pub fn suppression_pk(workspace: &WorkspaceId) -> String {
    format!("SUPP#{workspace}")
}

pub fn suppression_sk(user: &UserId) -> String {
    format!("U#{}", user.as_str())
}

/// A user's entry in one source's list (a source id holds no `#`).
pub fn source_suppression_sk(source: &SourceId, user: &UserId) -> String {
    format!("SRC#{source}#U#{}", user.as_str())
}

/// The entry of `user` in the workspace's list, or in `source`'s.
pub fn entry_sk(source: Option<&SourceId>, user: &UserId) -> String {
    match source {
        Some(source) => source_suppression_sk(source, user),
        None => suppression_sk(user),
    }
}

/// The list and user a suppression entry's sort key names.
pub fn parse_entry_sk(sk: &str) -> Option<(Option<SourceId>, UserId)> {
    if let Some(user) = sk.strip_prefix("U#") {
        return Some((None, UserId::parse(user).ok()?));
    }
    let (source, user) = sk.strip_prefix("SRC#")?.split_once("#U#")?;
    Some((Some(SourceId::parse(source).ok()?), UserId::parse(user).ok()?))
}

/// The `by-workspace` partition of a workspace's suppression entries
/// (newest first, beside its listings of requests).
pub fn suppression_listing_pk(workspace: &WorkspaceId) -> String {
    format!("SUPPS#{workspace}")
}

/// An entry's place in that listing: by when its state was set, then id.
pub fn suppression_listing_sk(since: DateTime<Utc>, user: &UserId) -> String {
    format!("{}#{}", millis(since), user.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The formats of tables already deployed: a change here strands
    /// every item written before it.
    #[test]
    fn the_key_formats_are_those_of_deployed_tables() {
        let id = RequestId::parse("01a203ff-de33-7582-8458-9ba563005834").unwrap();
        let ws = WorkspaceId::parse("acme").unwrap();
        let account = AccountId::parse("ann").unwrap();
        let at = DateTime::parse_from_rfc3339("2026-11-22T16:03:49.939Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(request_pk(&id), "REQ#01a203ff-de33-7582-8458-9ba563005834");
        assert_eq!(listing_pk(&Listing::Workspace(ws.clone())), "WS#acme");
        assert_eq!(listing_pk(&Listing::Regulations(ws.clone())), "REGS#acme");
        assert_eq!(listing_pk(&Listing::Account(account.clone())), "ACCOUNT#ann");
        assert_eq!(
            listing_sk(at, &id),
            "2026-11-22T16:03:49.939Z#01a203ff-de33-7582-8458-9ba563005834"
        );
        assert_eq!(callback_due_until(at), "2026-11-22T16:03:49.939Z$");
        assert_eq!(shard_sk(7), "SHARD#000007");
        assert_eq!(shard_group_pk(&id, 3), "SHARDS#01a203ff-de33-7582-8458-9ba563005834#03");
        assert_eq!(
            request_of_pk(&shard_group_pk(&id, 3)),
            None,
            "not a request's partition"
        );
        assert_eq!(page_sk(7, 12, 3), "PAGE#000007#000000000012#0003");
        let at = DateTime::parse_from_rfc3339("2026-03-01T12:00:00.250Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(open_sk(Some(at), 7), "2026-03-01T12:00:00.250Z#000007");
        assert_eq!(parse_open_sk(&open_sk(Some(at), 7)), Some((Some(at), 7)));
        assert_eq!(parse_open_sk(&open_sk(None, 12)), Some((None, 12)));
        assert!(open_sk(None, 999_999) < open_sk(Some(at), 0), "the free first");
        assert!(page_sk(7, 12, 3).starts_with(&page_chunks_prefix(7, 12)));
        assert!(page_sk(7, 12, 3).starts_with(&shard_pages_prefix(7)));
        assert_eq!(receipt_sk("w", 2), "RECEIPT#w#0002");
        assert_eq!(subjects_sk(1), "SUBJECTS#0001");
        assert_eq!(subject_pk("ab12"), "SUBJ#ab12");
        assert_eq!((quota_pk(&ws), QUOTA_SK), ("QUOTA#acme".to_owned(), "QUOTA"));
        assert_eq!(usage_pk(&ws), "USAGE#acme");
        assert_eq!(minute_sk(at), "MINUTE#2026-03-01T12:00:00.250Z");
        assert_eq!(month_sk("2026-12"), "MONTH#2026-12");
        assert_eq!(
            subject_ref_sk(at, &id),
            "REG#2026-03-01T12:00:00.250Z#01a203ff-de33-7582-8458-9ba563005834"
        );
        assert_eq!(regulation_of_subject_ref(&subject_ref_sk(at, &id)), Some(id.clone()));
        assert_eq!(regulation_of_subject_ref("REG#x#not-an-id"), None);
        let scope = Scope::Workspace { workspace: ws.clone() };
        assert_eq!(lock_pk(&scope), "LOCK#workspace#acme");
        assert_eq!(idem_pk(&IdempotencyKey::parse("v2.ab").unwrap()), "IDEM#v2.ab");
        assert_eq!(member_pk(&account), "ACCOUNT#ann");
        assert_eq!(member_sk(&ws), "MEMBER#acme");
        assert_eq!(hold_pk(&ws), "HOLD#acme");
        assert_eq!(suppression_pk(&ws), "SUPP#acme");
        assert_eq!((RETENTION_PK, retention_sk(&ws).as_str()), ("RETENTION", "WS#acme"));
        assert_eq!(workspace_of_retention_sk(&retention_sk(&ws)), Some("acme"));
        assert_eq!(suppression_sk(&UserId::parse("bob").unwrap()), "U#bob");
        let web = SourceId::parse("web").unwrap();
        let odd = UserId::parse("a#U#b").unwrap();
        assert_eq!(source_suppression_sk(&web, &odd), "SRC#web#U#a#U#b");
        assert_eq!(
            parse_entry_sk("SRC#web#U#a#U#b"),
            Some((Some(web.clone()), odd.clone()))
        );
        assert_eq!(parse_entry_sk("U#a#U#b"), Some((None, odd)));
        assert_eq!(parse_entry_sk("SRC#we/b#U#x"), None);
        assert_eq!(suppression_listing_pk(&ws), "SUPPS#acme");
        assert_eq!(
            suppression_listing_sk(at, &UserId::parse("bob").unwrap()),
            "2026-03-01T12:00:00.250Z#bob"
        );
    }

    #[test]
    fn only_a_request_item_names_a_request() {
        let id = RequestId::new();
        assert_eq!(request_of(&request_pk(&id), REQUEST_SK), Some(id.clone()));
        assert_eq!(request_of(&request_pk(&id), &shard_sk(0)), None);
        assert_eq!(request_of("LOCK#workspace#acme", REQUEST_SK), None);
        assert_eq!(request_of("REQ#not-an-id", REQUEST_SK), None);
        assert_eq!(request_of_pk(&request_pk(&id)), Some(id));
    }
}
