//! What the object store's port hands back: listed entries (versions and
//! delete markers), open multipart uploads, child prefixes, refused
//! deletes and downloaded objects.
//!
//! Plain values: the `ObjectStore` trait is in `ports`.

/// What a listing entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EntryKind {
    /// The current version (or the object in an unversioned bucket).
    Current,
    Noncurrent,
    DeleteMarker,
}
/// One object version, delete marker or unversioned object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub key: String,
    /// `None` in a bucket that never had versioning.
    pub version_id: Option<String>,
    pub kind: EntryKind,
    pub size: u64,
}
/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntryPage {
    pub entries: Vec<Entry>,
    /// Opaque cursor for the next page; `None` at the end.
    pub next: Option<String>,
    /// The listing goes by key order (ListObjectsV2: a cursor is a place
    /// among keys), so an end it reports after a cursor is the end even
    /// when entries before the cursor were deleted since. `false` where a
    /// store may list nothing after a deleted entry (moto after a deleted
    /// version's marker): such an end is confirmed from the start.
    pub key_ordered: bool,
}
/// An unfinished multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub key: String,
    pub upload_id: String,
}
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UploadPage {
    pub uploads: Vec<Upload>,
    pub next: Option<String>,
}
/// What sits directly under a prefix, one level down.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Children {
    /// Sub-prefixes (each ending with `/`), versions and markers included.
    pub prefixes: Vec<String>,
    /// Whether any key sits directly under the prefix, outside them.
    pub direct_entries: bool,
    /// Whether the listing stopped at the cap.
    pub truncated: bool,
}
/// A key a DeleteObjects call did not delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteFailure {
    pub key: String,
    pub version_id: Option<String>,
    pub code: String,
    pub message: String,
}
/// An object version read into a local file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    pub etag: String,
    /// `None` in a bucket that never had versioning.
    pub version_id: Option<String>,
    pub size: u64,
    /// What the store needs to write the object back as it was (content
    /// type and encoding, user metadata, storage class, encryption), in the
    /// store's own terms.
    pub attributes: std::collections::BTreeMap<String, String>,
}
