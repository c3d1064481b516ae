//! The data map: which buckets and key layouts hold a workspace's data.
//!
//! It is configuration, loaded and validated once at start-up, so a bad map
//! stops a function at init with a clear message, never at purge time.
//!
//! ```json
//! {"stores": [
//!   {"name": "archive",  "bucket": "cdp-archive",  "layout": "{workspace}/{source}/{day}/"},
//!   {"name": "profiles", "bucket": "cdp-profiles", "layout": "{workspace}/spaces/{space}/"}
//! ]}
//! ```
//!
//! A store whose objects are gzip-compressed JSON lines of events declares
//! it with `"user_records": {"format": "gzip-jsonl", "user_id_field": "userId"}`:
//! regulations rewrite those stores to delete an end user's events. A store
//! whose layout names `{day}` is an archive (`DELETE_ARCHIVE_ONLY`).
//!
//! A store whose layout names `{user}` (e.g.
//! `{workspace}/users/{user}/`) keeps each end user's data under a prefix
//! of their own: a regulation deletes everything under the subjects'
//! prefixes, every version and delete marker, and nothing else (the key
//! must match the layout's literals up to `{user}`, and the part exactly).
//! The part holds `USER_ID`s unless the store says `"user_type"`. Such a
//! store declares no `user_records`.
//!
//! A layout is a list of segments, each ending with `/`: a literal, or
//! exactly one named part. A scope expands to one prefix per store that
//! holds its parts, ending at a delimiter, so `acme/` never reaches
//! `acme-corp/`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::model::Scope;
use crate::regulation::SubjectType;

/// How a store keeps per-user records, for regulations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRecords {
    /// Only `gzip-jsonl`: gzip-compressed JSON lines, one event per line.
    pub format: String,
    /// The field of an event that holds the end user's id.
    #[serde(default = "default_user_id_field")]
    pub user_id_field: String,
    /// Where the events hold other identities, by subject type (and
    /// `USER_ID` or `ANONYMOUS_ID` declared anew): `ANONYMOUS_ID` is in
    /// `anonymousId` unless declared; other types only where declared.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub identities: BTreeMap<String, IdentityPaths>,
}

/// Where a store's events hold one identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityPaths {
    /// Dotted paths of object keys (`traits.email`, `context.traits.email`).
    pub paths: Vec<String>,
    /// Whether ids match whatever their case (e-mail addresses).
    #[serde(default)]
    pub case_insensitive: bool,
}

/// Most identities a store declares, paths per identity, bytes per path.
const MAX_IDENTITIES: usize = 16;
const MAX_PATHS: usize = 8;
const MAX_PATH_BYTES: usize = 256;

fn default_user_id_field() -> String {
    "userId".to_owned()
}

impl UserRecords {
    /// Where the records hold ids of `subject`, and whether case is folded;
    /// `None` if they hold none.
    pub fn identity(&self, subject: &SubjectType) -> Option<(Vec<String>, bool)> {
        if let Some(declared) = self.identities.get(subject.as_str()) {
            return Some((declared.paths.clone(), declared.case_insensitive));
        }
        match subject.as_str() {
            SubjectType::USER_ID => Some((vec![self.user_id_field.clone()], false)),
            SubjectType::ANONYMOUS_ID => Some((vec!["anonymousId".to_owned()], false)),
            _ => None,
        }
    }

    fn check(&self) -> Result<(), String> {
        if self.identities.len() > MAX_IDENTITIES {
            return Err(format!("user_records declares more than {MAX_IDENTITIES} identities"));
        }
        for (name, declared) in &self.identities {
            SubjectType::parse(name).map_err(|e| format!("user_records identities: {e}"))?;
            if declared.paths.is_empty() || declared.paths.len() > MAX_PATHS {
                return Err(format!("user_records identity {name}: 1 to {MAX_PATHS} paths"));
            }
            for path in &declared.paths {
                if path.is_empty() || path.len() > MAX_PATH_BYTES || path.split('.').any(str::is_empty) {
                    return Err(format!(
                        "user_records identity {name}: path {path:?} must be 1 to {MAX_PATH_BYTES} bytes of \
                         dot-separated keys, none empty"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The one record format regulations rewrite.
pub const GZIP_JSONL: &str = "gzip-jsonl";

/// The named parts a layout may use.
pub const PARTS: [&str; 5] = ["workspace", "source", "day", "space", "user"];

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DataMapError {
    #[error("data map is not valid JSON: {0}")]
    Json(String),
    #[error("data map has no stores")]
    Empty,
    #[error("data map: store {store:?}: {reason}")]
    Store { store: String, reason: String },
    #[error("data map: stores {a:?} and {b:?} share bucket {bucket:?} with layouts that can overlap")]
    Overlap { a: String, b: String, bucket: String },
    #[error("data map: cannot read {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("data map: set DATA_MAP (JSON) or DATA_MAP_FILE (a path to JSON)")]
    Missing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Part(&'static str),
}

/// One store: a bucket and a key layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    pub name: String,
    pub bucket: String,
    pub layout: String,
    /// Whether (and how) the store keeps per-user event records.
    pub user_records: Option<UserRecords>,
    /// The subject type the layout's `{user}` part holds (`None`: the
    /// layout has none).
    pub user_type: Option<SubjectType>,
    /// Whether the `{user}` part matches ids whatever their case (e-mail
    /// addresses): then no subject's own prefix can be listed alone.
    pub user_case_insensitive: bool,
    segments: Vec<Segment>,
}

impl Store {
    /// An archive: a store of events by day.
    pub fn is_archive(&self) -> bool {
        self.segments.contains(&Segment::Part("day"))
    }

    /// Whether this store holds data of subjects of this type, for a
    /// regulation: in its event records, or under per-user prefixes.
    pub fn holds(&self, subject: &SubjectType) -> bool {
        self.user_type.as_ref() == Some(subject)
            || self
                .user_records
                .as_ref()
                .is_some_and(|r| r.identity(subject).is_some())
    }

    /// Whether a key lies under the prefix of one of `ids` (as
    /// `user_of` finds it, case folded where the store says so).
    pub fn is_subjects(&self, key: &str, ids: &BTreeSet<String>) -> bool {
        self.user_of(key).is_some_and(|user| {
            if self.user_case_insensitive {
                ids.contains(&user.to_lowercase())
            } else {
                ids.contains(user)
            }
        })
    }

    /// The ids a regulation's subjects are matched as (lower case where
    /// the store folds case).
    pub fn subject_ids<'a>(&self, ids: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
        ids.map(|id| {
            if self.user_case_insensitive {
                id.to_lowercase()
            } else {
                id.to_owned()
            }
        })
        .collect()
    }

    /// A key with its `{user}` segment replaced by `{user}`: what a note
    /// about it may say, since notes outlive the subjects' ids.
    pub fn without_user(&self, key: &str) -> String {
        let parts: Vec<&str> = key.split('/').collect();
        match self.segments.iter().position(|s| *s == Segment::Part("user")) {
            // Only a whole segment (one a '/' follows) is an id.
            Some(at) if at + 1 < parts.len() => parts
                .iter()
                .enumerate()
                .map(|(i, part)| if i == at { "{user}" } else { part })
                .collect::<Vec<_>>()
                .join("/"),
            _ => key.to_owned(),
        }
    }

    /// The end user a key belongs to in a store with a `{user}` part: the
    /// key's segment at that part, if every segment before it matches the
    /// layout (literals exactly, other parts any non-empty segment) and a
    /// `/` follows it. `None` for keys outside the layout.
    pub fn user_of<'k>(&self, key: &'k str) -> Option<&'k str> {
        let mut rest = key;
        for seg in &self.segments {
            let (head, tail) = rest.split_once('/')?;
            match seg {
                Segment::Literal(l) if head != l => return None,
                Segment::Part("user") => return (!head.is_empty()).then_some(head),
                Segment::Part(_) if head.is_empty() => return None,
                _ => {}
            }
            rest = tail;
        }
        None
    }
}

/// A validated data map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataMap {
    stores: Vec<Store>,
}

/// One exact prefix to purge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedPrefix {
    pub store: String,
    pub bucket: String,
    pub prefix: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMap {
    stores: Vec<RawStore>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    name: String,
    bucket: String,
    layout: String,
    #[serde(default)]
    user_records: Option<UserRecords>,
    #[serde(default)]
    user_type: Option<String>,
    #[serde(default)]
    case_insensitive: bool,
}

fn store_err(store: &str, reason: impl Into<String>) -> DataMapError {
    DataMapError::Store {
        store: store.to_owned(),
        reason: reason.into(),
    }
}

fn valid_bucket(bucket: &str) -> bool {
    (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && bucket.as_bytes()[0].is_ascii_alphanumeric()
        && bucket.as_bytes()[bucket.len() - 1].is_ascii_alphanumeric()
        && !bucket.contains("..")
}

fn parse_layout(store: &str, layout: &str) -> Result<Vec<Segment>, DataMapError> {
    if !layout.ends_with('/') {
        return Err(store_err(store, format!("layout {layout:?} must end with '/'")));
    }
    if layout.starts_with('/') {
        return Err(store_err(store, format!("layout {layout:?} must not start with '/'")));
    }
    let mut seen = BTreeSet::new();
    let mut segments = Vec::new();
    for seg in layout[..layout.len() - 1].split('/') {
        if seg.is_empty() {
            return Err(store_err(store, format!("layout {layout:?} has an empty segment")));
        }
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let Some(part) = PARTS.iter().find(|p| **p == name) else {
                return Err(store_err(
                    store,
                    format!("unknown part {{{name}}} (known: {{workspace}}, {{source}}, {{day}}, {{space}}, {{user}})"),
                ));
            };
            if !seen.insert(*part) {
                return Err(store_err(store, format!("part {{{name}}} appears twice")));
            }
            segments.push(Segment::Part(part));
        } else if seg.contains('{') || seg.contains('}') {
            return Err(store_err(
                store,
                format!("segment {seg:?} mixes a part with text: a part must fill its segment, bounded by '/'"),
            ));
        } else if seg == "."
            || seg == ".."
            || !seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='))
        {
            return Err(store_err(store, format!("literal segment {seg:?} is not allowed")));
        } else {
            segments.push(Segment::Literal(seg.to_owned()));
        }
    }
    if !seen.contains("workspace") {
        return Err(store_err(
            store,
            "layout must contain {workspace}: every store's data belongs to a workspace",
        ));
    }
    // Scopes bind `workspace` first: no other part may come before it, or a
    // workspace's data would not sit under one prefix.
    for seg in &segments {
        match seg {
            Segment::Part("workspace") => break,
            Segment::Part(other) => {
                return Err(store_err(
                    store,
                    format!("{{{other}}} comes before {{workspace}}: a workspace's data must sit under one prefix"),
                ))
            }
            Segment::Literal(_) => {}
        }
    }
    Ok(segments)
}

/// Whether two layouts in one bucket can name the same key.
fn can_overlap(a: &[Segment], b: &[Segment]) -> bool {
    for (x, y) in a.iter().zip(b.iter()) {
        match (x, y) {
            (Segment::Literal(l), Segment::Literal(r)) if l != r => return false,
            (Segment::Literal(_), Segment::Literal(_)) => {}
            (Segment::Part(l), Segment::Part(r)) if l == r => {}
            // A part against a literal or another part: some id can match both.
            _ => return true,
        }
    }
    // One layout is a prefix of the other.
    true
}

/// The subject type a store's `{user}` part holds, checked against the
/// rest of its declaration.
fn user_type(s: &RawStore, segments: &[Segment]) -> Result<Option<SubjectType>, DataMapError> {
    let has_user = segments.contains(&Segment::Part("user"));
    match (&s.user_type, has_user) {
        (Some(_), false) => Err(store_err(&s.name, "user_type needs a {user} part in the layout")),
        (_, true) if s.user_records.is_some() => Err(store_err(
            &s.name,
            "a layout with {user} keeps each user's data under a prefix of its own; it declares no user_records",
        )),
        (None, true) => Ok(Some(SubjectType::user_id())),
        (Some(t), true) => SubjectType::parse(t)
            .map(Some)
            .map_err(|e| store_err(&s.name, format!("user_type: {e}"))),
        (None, false) => Ok(None),
    }
}

impl DataMap {
    pub fn from_json(json: &str) -> Result<DataMap, DataMapError> {
        let raw: RawMap = serde_json::from_str(json).map_err(|e| DataMapError::Json(e.to_string()))?;
        if raw.stores.is_empty() {
            return Err(DataMapError::Empty);
        }
        let mut stores: Vec<Store> = Vec::new();
        for s in raw.stores {
            if crate::ids::WorkspaceId::parse(&s.name).is_err() {
                return Err(store_err(&s.name, "name must be a slug (letters, digits, '-', '_')"));
            }
            if stores.iter().any(|o| o.name == s.name) {
                return Err(store_err(&s.name, "name is used twice"));
            }
            if !valid_bucket(&s.bucket) {
                return Err(store_err(
                    &s.name,
                    format!("bucket {:?} is not a valid S3 bucket name", s.bucket),
                ));
            }
            let segments = parse_layout(&s.name, &s.layout)?;
            let user_type = user_type(&s, &segments)?;
            if s.case_insensitive && user_type.is_none() {
                return Err(store_err(
                    &s.name,
                    "case_insensitive is about a {user} part: the layout has none",
                ));
            }
            if let Some(records) = &s.user_records {
                if records.format != GZIP_JSONL {
                    return Err(store_err(
                        &s.name,
                        format!(
                            "user_records format {:?} is not supported (only {GZIP_JSONL:?})",
                            records.format
                        ),
                    ));
                }
                if records.user_id_field.is_empty() || records.user_id_field.len() > 128 {
                    return Err(store_err(
                        &s.name,
                        "user_records user_id_field must be 1 to 128 characters",
                    ));
                }
                records.check().map_err(|reason| store_err(&s.name, reason))?;
            }
            if let Some(other) = stores
                .iter()
                .find(|o| o.bucket == s.bucket && can_overlap(&o.segments, &segments))
            {
                return Err(DataMapError::Overlap {
                    a: other.name.clone(),
                    b: s.name.clone(),
                    bucket: s.bucket.clone(),
                });
            }
            stores.push(Store {
                name: s.name,
                bucket: s.bucket,
                layout: s.layout,
                user_records: s.user_records,
                user_type,
                user_case_insensitive: s.case_insensitive,
                segments,
            });
        }
        Ok(DataMap { stores })
    }

    /// Reads `DATA_MAP` (inline JSON) or else `DATA_MAP_FILE` (a path).
    pub fn from_env() -> Result<DataMap, DataMapError> {
        if let Ok(json) = std::env::var("DATA_MAP") {
            return DataMap::from_json(&json);
        }
        let path = std::env::var("DATA_MAP_FILE").map_err(|_| DataMapError::Missing)?;
        let json = std::fs::read_to_string(&path).map_err(|e| DataMapError::Unreadable {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        DataMap::from_json(&json)
    }

    pub fn stores(&self) -> &[Store] {
        &self.stores
    }

    pub fn store(&self, name: &str) -> Option<&Store> {
        self.stores.iter().find(|s| s.name == name)
    }

    /// Every bucket the map names, once.
    pub fn buckets(&self) -> Vec<String> {
        let set: BTreeSet<&str> = self.stores.iter().map(|s| s.bucket.as_str()).collect();
        set.into_iter().map(str::to_owned).collect()
    }

    /// The subject types some store's records hold (`USER_ID` and
    /// `ANONYMOUS_ID` wherever a store has user records, and the declared).
    pub fn subject_types(&self) -> BTreeSet<SubjectType> {
        let mut types = BTreeSet::new();
        for records in self.stores.iter().filter_map(|s| s.user_records.as_ref()) {
            types.insert(SubjectType::user_id());
            types.extend(SubjectType::parse(SubjectType::ANONYMOUS_ID).ok());
            types.extend(records.identities.keys().filter_map(|k| SubjectType::parse(k).ok()));
        }
        types.extend(self.stores.iter().filter_map(|s| s.user_type.clone()));
        types
    }

    /// The exact prefixes a scope reaches: per store that holds it, one per
    /// binding set (one per day for a source's days).
    pub fn expand(&self, scope: &Scope) -> Vec<PlannedPrefix> {
        let sets = scope.bindings();
        let regulation = scope.regulation();
        let subject = scope.subject_type();
        self.stores
            .iter()
            // A regulation reaches only the stores that hold its subject
            // type (the archives only, for DELETE_ARCHIVE_ONLY).
            .filter(move |store| match (regulation, subject) {
                (Some(t), Some(subject)) => store.holds(subject) && (!t.archive_only() || store.is_archive()),
                _ => true,
            })
            // A regulation reads only its store's keys: its prefix runs on
            // through the literals after the bound parts.
            .flat_map(|store| {
                sets.iter()
                    .filter_map(move |b| expand_store(store, b, regulation.is_some()))
            })
            // Two stores of one bucket can share the prefix of a scope
            // (`{workspace}/spaces/{space}/` and `{workspace}/users/{user}/`
            // both at `acme/` for a workspace): it is purged once.
            .scan(BTreeSet::new(), |seen, p| {
                Some(seen.insert((p.bucket.clone(), p.prefix.clone())).then_some(p))
            })
            .flatten()
            .collect()
    }

    /// Whether some store holds data of this kind of scope.
    pub fn reaches(&self, scope: &Scope) -> bool {
        match scope.regulation() {
            // Suppression alone touches no store.
            Some(t) if !t.deletes() => true,
            _ => !scope.holds_data() || !self.expand(scope).is_empty(),
        }
    }
}

impl Store {
    /// The prefix under which the `next` part of the layout varies, with
    /// `bound` filling the parts before it: for `{workspace}/{source}/{day}/`
    /// with the workspace bound and `next = "source"`, `acme/` (its children
    /// are the sources). `None` if the layout does not have `next` right
    /// after the bound parts (and literals).
    pub fn prefix_before(&self, bound: &BTreeMap<&'static str, String>, next: &str) -> Option<String> {
        let mut prefix = String::new();
        for seg in &self.segments {
            match seg {
                Segment::Literal(l) => prefix.push_str(l),
                Segment::Part(p) => match bound.get(p) {
                    Some(value) => prefix.push_str(value),
                    None if *p == next => return Some(prefix),
                    None => return None,
                },
            }
            prefix.push('/');
        }
        None
    }
}

/// The exact prefix of one binding set in a store. With `through_literals`
/// (a regulation's), the literals that follow the bound parts are kept
/// too: `acme/users/` for `{workspace}/users/{user}/`, so the listing
/// reads only that store's keys (and a rewrite never another store's).
fn expand_store(
    store: &Store,
    bindings: &BTreeMap<&'static str, String>,
    through_literals: bool,
) -> Option<PlannedPrefix> {
    let parts_in_layout: BTreeSet<&str> = store
        .segments
        .iter()
        .filter_map(|s| match s {
            Segment::Part(p) => Some(*p),
            Segment::Literal(_) => None,
        })
        .collect();
    // The store holds this scope only if the layout names every bound part.
    if !bindings.keys().all(|k| parts_in_layout.contains(k)) {
        return None;
    }
    let mut prefix = String::new();
    let mut bound = 0;
    for seg in &store.segments {
        if bound == bindings.len() && !(through_literals && matches!(seg, Segment::Literal(_))) {
            break;
        }
        match seg {
            Segment::Literal(l) => prefix.push_str(l),
            Segment::Part(p) => match bindings.get(p) {
                Some(value) => {
                    prefix.push_str(value);
                    bound += 1;
                }
                // A bound part after an unbound one: no single prefix.
                None => return None,
            },
        }
        prefix.push('/');
    }
    Some(PlannedPrefix {
        store: store.name.clone(),
        bucket: store.bucket.clone(),
        prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::WorkspaceId;

    const EXAMPLE: &str = r#"{"stores": [
        {"name": "archive", "bucket": "cdp-archive", "layout": "{workspace}/{source}/{day}/"},
        {"name": "profiles", "bucket": "cdp-profiles", "layout": "{workspace}/spaces/{space}/"},
        {"name": "exports", "bucket": "cdp-exports", "layout": "exports/{workspace}/"}
    ]}"#;

    fn ws(id: &str) -> Scope {
        Scope::Workspace {
            workspace: WorkspaceId::parse(id).unwrap(),
        }
    }

    #[test]
    fn workspace_scope_reaches_every_store_and_ends_at_a_delimiter() {
        let map = DataMap::from_json(EXAMPLE).unwrap();
        let plan = map.expand(&ws("acme"));
        let got: Vec<(&str, &str)> = plan.iter().map(|p| (p.bucket.as_str(), p.prefix.as_str())).collect();
        assert_eq!(
            got,
            vec![
                ("cdp-archive", "acme/"),
                ("cdp-profiles", "acme/"),
                ("cdp-exports", "exports/acme/")
            ]
        );
        assert!(plan.iter().all(|p| p.prefix.ends_with('/')));
        assert!(!"acme-corp/x".starts_with(&plan[0].prefix));
        assert_eq!(map.buckets(), vec!["cdp-archive", "cdp-exports", "cdp-profiles"]);
    }

    #[test]
    fn space_and_source_days_reach_only_their_stores_and_days() {
        use crate::ids::{SourceId, SpaceId};
        use chrono::NaiveDate;
        let map = DataMap::from_json(EXAMPLE).unwrap();
        let space = Scope::Space {
            workspace: WorkspaceId::parse("acme").unwrap(),
            space: SpaceId::parse("main").unwrap(),
        };
        let got: Vec<String> = map
            .expand(&space)
            .into_iter()
            .map(|p| format!("{}:{}", p.store, p.prefix))
            .collect();
        assert_eq!(got, ["profiles:acme/spaces/main/"]);
        let days = Scope::SourceDays {
            workspace: WorkspaceId::parse("acme").unwrap(),
            source: SourceId::parse("web").unwrap(),
            from: NaiveDate::from_ymd_opt(2024, 1, 31).unwrap(),
            to: NaiveDate::from_ymd_opt(2024, 2, 1).unwrap(),
        };
        let got: Vec<String> = map
            .expand(&days)
            .into_iter()
            .map(|p| format!("{}:{}", p.store, p.prefix))
            .collect();
        assert_eq!(got, ["archive:acme/web/2024-01-31/", "archive:acme/web/2024-02-01/"]);
    }

    #[test]
    fn bad_maps_are_refused_with_a_reason() {
        let cases = [
            (r#"{"stores": []}"#, "no stores"),
            (
                r#"{"stores": [{"name":"a","bucket":"b-b-b","layout":"{workspace}"}]}"#,
                "end with '/'",
            ),
            (
                r#"{"stores": [{"name":"a","bucket":"b-b-b","layout":"ws-{workspace}/"}]}"#,
                "mixes a part",
            ),
            (
                r#"{"stores": [{"name":"a","bucket":"b-b-b","layout":"{source}/{workspace}/"}]}"#,
                "before {workspace}",
            ),
            (
                r#"{"stores": [{"name":"a","bucket":"b-b-b","layout":"data/"}]}"#,
                "must contain {workspace}",
            ),
            (
                r#"{"stores": [{"name":"a","bucket":"b-b-b","layout":"{tenant}/"}]}"#,
                "unknown part",
            ),
            (
                r#"{"stores": [{"name":"a","bucket":"b-b-b","layout":"../{workspace}/"}]}"#,
                "not allowed",
            ),
            (
                r#"{"stores": [{"name":"a","bucket":"B_B","layout":"{workspace}/"}]}"#,
                "not a valid S3 bucket",
            ),
            (
                r#"{"stores": [{"name":"a","bucket":"b-b-b","layout":"{workspace}/"},{"name":"c","bucket":"b-b-b","layout":"{workspace}/x/"}]}"#,
                "can overlap",
            ),
            (
                r#"{"stores": [{"name":"a","bucket":"b-b-b","layout":"x/{workspace}/"},{"name":"c","bucket":"b-b-b","layout":"{workspace}/"}]}"#,
                "can overlap",
            ),
            // A workspace named "exports" would collide with the second store.
            (
                r#"{"stores": [{"name":"a","bucket":"b-b-b","layout":"{workspace}/{source}/"},{"name":"c","bucket":"b-b-b","layout":"exports/{workspace}/"}]}"#,
                "can overlap",
            ),
            (
                r#"{"stores": [{"name":"a","bucket":"b-b-b","layout":"{workspace}/","extra":1}]}"#,
                "unknown field",
            ),
            ("not json", "not valid JSON"),
        ];
        for (json, needle) in cases {
            let err = DataMap::from_json(json).expect_err(json).to_string();
            assert!(err.contains(needle), "{json}: {err} should mention {needle}");
        }
    }

    #[test]
    fn stores_in_one_bucket_with_distinct_literals_are_fine() {
        let json = r#"{"stores": [
            {"name":"a","bucket":"b-b-b","layout":"events/{workspace}/"},
            {"name":"c","bucket":"b-b-b","layout":"profiles/{workspace}/"}]}"#;
        let map = DataMap::from_json(json).unwrap();
        assert_eq!(map.expand(&ws("w")).len(), 2);
    }

    const PER_USER: &str = r#"{"stores": [
        {"name": "archive", "bucket": "cdp-archive", "layout": "{workspace}/{source}/{day}/",
         "user_records": {"format": "gzip-jsonl"}},
        {"name": "profiles", "bucket": "cdp-profiles", "layout": "{workspace}/spaces/{space}/"},
        {"name": "users", "bucket": "cdp-profiles", "layout": "{workspace}/users/{user}/"},
        {"name": "visitors", "bucket": "cdp-visitors", "layout": "{workspace}/{space}/{user}/",
         "user_type": "ANONYMOUS_ID"}
    ]}"#;

    fn regulation_of(subject_type: &str) -> Scope {
        Scope::Regulation {
            workspace: WorkspaceId::parse("acme").unwrap(),
            regulation: crate::regulation::RegulationType::DeleteOnly,
            subject_count: 1,
            digest: "d".into(),
            subject_type: SubjectType::parse(subject_type).unwrap(),
            source: None,
        }
    }

    fn reached(map: &DataMap, scope: &Scope) -> Vec<(String, String, String)> {
        map.expand(scope)
            .into_iter()
            .map(|p| (p.store, p.bucket, p.prefix))
            .collect()
    }

    #[test]
    fn a_per_user_layout_is_reached_by_regulations_of_its_subject_type_only() {
        let map = DataMap::from_json(PER_USER).unwrap();
        let t = |s: &str| s.to_owned();
        assert_eq!(map.store("users").unwrap().user_type, Some(SubjectType::user_id()));
        assert_eq!(
            reached(&map, &regulation_of("USER_ID")),
            vec![
                (t("archive"), t("cdp-archive"), t("acme/")),
                // Through the literal after the workspace: only that store's keys are listed.
                (t("users"), t("cdp-profiles"), t("acme/users/")),
            ]
        );
        assert_eq!(
            reached(&map, &regulation_of("ANONYMOUS_ID")),
            vec![
                (t("archive"), t("cdp-archive"), t("acme/")),
                (t("visitors"), t("cdp-visitors"), t("acme/")),
            ]
        );
        assert!(map
            .subject_types()
            .contains(&SubjectType::parse("ANONYMOUS_ID").unwrap()));
        // A workspace's deletion: the two stores of cdp-profiles share
        // `acme/`, purged once.
        let workspace = Scope::Workspace {
            workspace: WorkspaceId::parse("acme").unwrap(),
        };
        assert_eq!(
            reached(&map, &workspace),
            vec![
                (t("archive"), t("cdp-archive"), t("acme/")),
                (t("profiles"), t("cdp-profiles"), t("acme/")),
                (t("visitors"), t("cdp-visitors"), t("acme/")),
            ]
        );
    }

    #[test]
    fn a_key_belongs_to_a_user_only_where_it_matches_the_layout_up_to_the_part() {
        let map = DataMap::from_json(PER_USER).unwrap();
        let users = map.store("users").unwrap();
        assert_eq!(users.user_of("acme/users/bob/profile.json"), Some("bob"));
        assert_eq!(users.user_of("acme/users/bob/"), Some("bob"), "its folder marker");
        assert_eq!(users.user_of("acme/users/bobby/profile.json"), Some("bobby"));
        assert_eq!(users.user_of("acme/users/bob"), None, "not under bob/");
        assert_eq!(
            users.user_of("acme/spaces/bob/x"),
            None,
            "another literal: a space named bob"
        );
        assert_eq!(users.user_of("acme/users//x"), None);
        assert_eq!(users.user_of("acme/users"), None);
        assert_eq!(
            users.without_user("acme/users/bob/profile.json"),
            "acme/users/{user}/profile.json"
        );
        assert_eq!(users.without_user("acme/users/bob/"), "acme/users/{user}/");
        assert_eq!(users.without_user("acme/users/"), "acme/users/", "no id in it");
        let folded = DataMap::from_json(
            r#"{"stores": [{"name": "u", "bucket": "cdp-u", "layout": "{workspace}/{user}/", "user_type": "EMAIL", "case_insensitive": true}]}"#,
        )
        .unwrap();
        let u = folded.store("u").unwrap();
        let ids = u.subject_ids(["Ann@Example.com"].into_iter());
        assert!(u.is_subjects("acme/ann@example.COM/p.json", &ids));
        assert!(!u.is_subjects("acme/anna@example.com/p.json", &ids));
        assert!(
            !users.is_subjects("acme/users/Bob/p", &users.subject_ids(["bob"].into_iter())),
            "case kept"
        );
        let visitors = map.store("visitors").unwrap();
        assert_eq!(visitors.user_of("acme/main/a1/p.json"), Some("a1"));
        assert_eq!(visitors.user_of("acme//a1/p.json"), None, "an empty part");
    }

    #[test]
    fn bad_per_user_declarations_are_refused_at_start_up() {
        for (store, says) in [
            (
                r#"{"name": "u", "bucket": "cdp-u", "layout": "{workspace}/{user}/", "user_records": {"format": "gzip-jsonl"}}"#,
                "declares no user_records",
            ),
            (
                r#"{"name": "u", "bucket": "cdp-u", "layout": "{workspace}/", "user_type": "USER_ID"}"#,
                "needs a {user} part",
            ),
            (
                r#"{"name": "u", "bucket": "cdp-u", "layout": "{workspace}/{user}/", "user_type": "user id"}"#,
                "user_type",
            ),
            (
                r#"{"name": "u", "bucket": "cdp-u", "layout": "{user}/{workspace}/"}"#,
                "comes before {workspace}",
            ),
            (
                r#"{"name": "u", "bucket": "cdp-u", "layout": "{workspace}/{user}/{user}/"}"#,
                "appears twice",
            ),
            (
                r#"{"name": "u", "bucket": "cdp-u", "layout": "{workspace}/", "case_insensitive": true}"#,
                "has none",
            ),
        ] {
            let err = DataMap::from_json(&format!(r#"{{"stores": [{store}]}}"#))
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{store}: {err}");
        }
    }

    #[test]
    fn regulations_reach_only_stores_with_user_records() {
        use crate::ids::WorkspaceId;
        use crate::regulation::RegulationType;
        let map = DataMap::from_json(
            r#"{"stores": [
                {"name": "archive", "bucket": "cdp-archive", "layout": "{workspace}/{source}/{day}/",
                 "user_records": {"format": "gzip-jsonl"}},
                {"name": "events", "bucket": "cdp-events", "layout": "{workspace}/",
                 "user_records": {"format": "gzip-jsonl", "user_id_field": "uid"}},
                {"name": "profiles", "bucket": "cdp-profiles", "layout": "{workspace}/spaces/{space}/"}
            ]}"#,
        )
        .unwrap();
        let scope = |regulation| Scope::Regulation {
            workspace: WorkspaceId::parse("acme").unwrap(),
            regulation,
            subject_count: 1,
            digest: "d".into(),
            subject_type: SubjectType::user_id(),
            source: None,
        };
        let stores = |t| {
            map.expand(&scope(t))
                .into_iter()
                .map(|p| (p.store, p.prefix))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            stores(RegulationType::DeleteOnly),
            vec![
                ("archive".to_owned(), "acme/".to_owned()),
                ("events".to_owned(), "acme/".to_owned())
            ]
        );
        assert_eq!(
            stores(RegulationType::DeleteArchiveOnly),
            vec![("archive".to_owned(), "acme/".to_owned())]
        );
        assert!(stores(RegulationType::SuppressOnly).is_empty());
        assert!(map.reaches(&scope(RegulationType::SuppressOnly)));
        // A source's regulation: only the stores whose layout names sources.
        let mut of_web = scope(RegulationType::DeleteOnly);
        if let Scope::Regulation { source, .. } = &mut of_web {
            *source = Some(crate::ids::SourceId::parse("web").unwrap());
        }
        let reached: Vec<_> = map.expand(&of_web).into_iter().map(|p| (p.store, p.prefix)).collect();
        assert_eq!(reached, [("archive".to_owned(), "acme/web/".to_owned())]);
        assert_ne!(of_web.lock_key(), scope(RegulationType::DeleteOnly).lock_key());
        assert_eq!(
            map.store("events")
                .unwrap()
                .user_records
                .as_ref()
                .unwrap()
                .user_id_field,
            "uid"
        );
        assert_eq!(
            map.store("archive")
                .unwrap()
                .user_records
                .as_ref()
                .unwrap()
                .user_id_field,
            "userId"
        );

        let none =
            DataMap::from_json(r#"{"stores": [{"name": "p", "bucket": "cdp-p", "layout": "{workspace}/"}]}"#).unwrap();
        assert!(!none.reaches(&scope(RegulationType::DeleteOnly)));
        let bad = DataMap::from_json(
            r#"{"stores": [{"name": "a", "bucket": "cdp-a", "layout": "{workspace}/", "user_records": {"format": "csv"}}]}"#,
        );
        assert!(bad.unwrap_err().to_string().contains("not supported"));
    }

    #[test]
    fn stores_declare_the_identities_their_events_hold_and_regulations_reach_only_those() {
        use crate::ids::WorkspaceId;
        use crate::regulation::RegulationType;
        let map = DataMap::from_json(
            r#"{"stores": [
                {"name": "archive", "bucket": "cdp-archive", "layout": "{workspace}/{source}/{day}/",
                 "user_records": {"format": "gzip-jsonl", "identities": {
                    "EMAIL": {"paths": ["traits.email", "context.traits.email"], "case_insensitive": true}}}},
                {"name": "events", "bucket": "cdp-events", "layout": "{workspace}/",
                 "user_records": {"format": "gzip-jsonl"}}
            ]}"#,
        )
        .unwrap();
        let t = |s: &str| SubjectType::parse(s).unwrap();
        let types: Vec<String> = map.subject_types().into_iter().map(String::from).collect();
        assert_eq!(types, ["ANONYMOUS_ID", "EMAIL", "USER_ID"]);
        let archive = map.store("archive").unwrap().user_records.clone().unwrap();
        assert_eq!(
            archive.identity(&t("USER_ID")),
            Some((vec!["userId".to_owned()], false))
        );
        assert_eq!(
            archive.identity(&t("ANONYMOUS_ID")),
            Some((vec!["anonymousId".to_owned()], false))
        );
        assert_eq!(
            archive.identity(&t("EMAIL")),
            Some((vec!["traits.email".to_owned(), "context.traits.email".to_owned()], true))
        );
        assert_eq!(archive.identity(&t("PHONE")), None);
        let scope = |subject_type| Scope::Regulation {
            workspace: WorkspaceId::parse("acme").unwrap(),
            regulation: RegulationType::DeleteOnly,
            subject_count: 1,
            digest: "d".into(),
            subject_type,
            source: None,
        };
        let stores = |s| map.expand(&scope(s)).into_iter().map(|p| p.store).collect::<Vec<_>>();
        assert_eq!(
            stores(t("EMAIL")),
            ["archive"],
            "only the store that holds e-mail addresses"
        );
        assert_eq!(stores(t("ANONYMOUS_ID")), ["archive", "events"]);
        assert!(!map.reaches(&scope(t("PHONE"))));
        for bad in [
            r#"{"lower": {"paths": ["a"]}}"#,
            r#"{"EMAIL": {"paths": []}}"#,
            r#"{"EMAIL": {"paths": ["a..b"]}}"#,
            r#"{"EMAIL": {"paths": ["a"], "fold": true}}"#,
        ] {
            let json = format!(
                r#"{{"stores": [{{"name": "a", "bucket": "cdp-a", "layout": "{{workspace}}/",
                   "user_records": {{"format": "gzip-jsonl", "identities": {bad}}}}}]}}"#
            );
            assert!(DataMap::from_json(&json).is_err(), "{bad}");
        }
    }
}
