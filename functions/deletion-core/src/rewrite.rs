//! The rewrite of one archive object: gzip-compressed JSON lines, one event
//! per line. Drops exactly the lines whose user-id field names a subject and
//! keeps every other line byte for byte (its line ending included).
//!
//! It works from a file to a file (the object is downloaded to the
//! function's temporary storage first) through a buffered reader, so memory
//! stays bounded whatever the object's size: at most one line of up to
//! `MAX_LINE_BYTES` is held; a longer line is passed through unread and
//! reported.
//!
//! A line the filter cannot read (not a JSON object: damaged, nested deeper
//! than the parser allows in the user-id field, over `MAX_LINE_BYTES`, or
//! with the user-id field twice and no subject in it) is kept untouched and
//! reported as malformed. It is also reported as *suspect* unless it
//! provably holds none of the subjects: none of their ids' bytes occurs in
//! it, nor a JSON escape that could spell one. A suspect line means the
//! object could not be cleaned (the caller reports its failure). A leading
//! byte-order mark is no reason to be unreadable: the line is judged
//! without it.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use aho_corasick::AhoCorasick;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use thiserror::Error;

/// Longest line that is inspected; longer ones are kept and reported.
pub const MAX_LINE_BYTES: usize = 8 * 1024 * 1024;
/// Line numbers of malformed lines kept per object, at most.
const MAX_SAMPLES: usize = 5;

#[derive(Debug, Error)]
pub enum RewriteError {
    /// Not gzip, or a damaged or truncated stream: nothing is written back.
    #[error("not a readable gzip stream of JSON lines: {0}")]
    Unreadable(String),
    /// The function's temporary storage failed.
    #[error("temporary file: {0}")]
    Io(String),
}

/// What the filter found in one object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterReport {
    pub lines: u64,
    /// Lines dropped: the subjects' events.
    pub removed: u64,
    /// Lines that are not JSON objects (or too long to read): kept.
    pub malformed: u64,
    /// 1-based numbers of the first malformed lines.
    pub malformed_at: Vec<u64>,
    /// Malformed lines that may hold a subject's event (a subject's id, or
    /// an escape that could spell one, occurs in them): the object is not
    /// clean.
    pub suspect: u64,
    /// 1-based numbers of the first suspect lines.
    pub suspect_at: Vec<u64>,
}

impl FilterReport {
    fn malformed_line(&mut self, suspect: bool) {
        self.malformed += 1;
        if self.malformed_at.len() < MAX_SAMPLES {
            self.malformed_at.push(self.lines);
        }
        if suspect {
            self.suspect += 1;
            if self.suspect_at.len() < MAX_SAMPLES {
                self.suspect_at.push(self.lines);
            }
        }
    }
}

/// One identity a filter looks for: where it sits in an event (paths of
/// object keys, dotted: `context.traits.email`) and which ids it drops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub paths: Vec<String>,
    pub ids: Vec<String>,
    /// Whether ids match whatever their case (e-mail addresses).
    pub fold_case: bool,
}

/// Which lines go: those where a value at one of an identity's paths (a
/// string, or a number by its JSON text) is one of its ids.
pub struct EventFilter {
    /// Per identity: its ids (lower-cased when it folds case), and whether it does.
    identities: Vec<(HashSet<String>, bool)>,
    /// The paths to read, as a tree of keys; a node names the identities
    /// whose path ends there.
    paths: PathNode,
    /// Finds, in a line it cannot read, what could name a subject: the
    /// exact ids, and (over the line lower-cased) the case-folded ones.
    suspects: Suspects,
    folded_suspects: Suspects,
    /// The longest of those patterns, in bytes.
    longest: usize,
}

#[derive(Default)]
struct PathNode {
    children: std::collections::BTreeMap<String, PathNode>,
    /// The identities whose path ends here.
    ends: Vec<usize>,
}

enum Verdict {
    Keep,
    Drop,
    Malformed,
}

/// The values found at the filter's paths (every one, should a key occur
/// more than once), and whether a key occurs twice in an object read.
#[derive(Default)]
struct Fields {
    values: Vec<(usize, Value)>,
    duplicates: bool,
}

/// Reads one value at a node of the path tree: an object is walked for
/// the node's children; anything else is skipped.
struct PathSeed<'a, 'b> {
    node: &'a PathNode,
    fields: &'b mut Fields,
}

impl<'de> de::DeserializeSeed<'de> for PathSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PathSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            match self.node.children.get(&key) {
                Some(child) if !child.ends.is_empty() => {
                    let value = map.next_value::<Value>()?;
                    child.collect(&value, self.fields);
                }
                Some(child) => map.next_value_seed(PathSeed {
                    node: child,
                    fields: &mut *self.fields,
                })?,
                // Skipped without recursion: any depth is readable here.
                None => map.next_value::<IgnoredAny>().map(|_| ())?,
            }
            self.fields.duplicates |= !seen.insert(key);
        }
        Ok(())
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// The line itself: a JSON object, walked from the root of the tree.
struct RootSeed<'a, 'b>(PathSeed<'a, 'b>);

impl<'de> de::DeserializeSeed<'de> for RootSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self.0)
    }
}

/// What could name a subject in bytes the filter cannot read.
enum Suspects {
    /// No ids to look for.
    Nothing,
    Patterns(AhoCorasick),
    /// The patterns could not be built (only a pathological set): every
    /// unreadable line is suspect.
    Everything,
}

impl Suspects {
    fn of(patterns: &[String]) -> Suspects {
        if patterns.is_empty() {
            return Suspects::Nothing;
        }
        AhoCorasick::new(patterns).map_or(Suspects::Everything, Suspects::Patterns)
    }

    fn in_bytes(&self, bytes: &[u8]) -> bool {
        match self {
            Suspects::Nothing => false,
            Suspects::Patterns(a) => a.is_match(bytes),
            Suspects::Everything => true,
        }
    }
}

impl PathNode {
    fn insert(&mut self, path: &str, identity: usize) {
        let node = path
            .split('.')
            .fold(self, |node, key| node.children.entry(key.to_owned()).or_default());
        node.ends.push(identity);
    }

    /// The values of an already-read subtree at this node and below.
    fn collect(&self, value: &Value, fields: &mut Fields) {
        for identity in &self.ends {
            fields.values.push((*identity, value.clone()));
        }
        if let Value::Object(map) = value {
            for (key, child) in &self.children {
                if let Some(v) = map.get(key) {
                    child.collect(v, fields);
                }
            }
        }
    }
}

/// A leading UTF-8 byte-order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";
/// Bytes kept between the chunks of an overlong line, so a pattern that
/// spans two chunks is still found.
fn carry_len(longest: usize) -> usize {
    longest.saturating_sub(1)
}

/// The patterns that could name one of `ids` in raw JSON text: each id as
/// it stands, or any escape that could spell one (`\u` spells anything;
/// the others only their character).
fn suspect_patterns<'a>(ids: impl Iterator<Item = &'a String> + Clone) -> Vec<String> {
    let mut patterns: Vec<String> = ids.clone().filter(|s| !s.is_empty()).cloned().collect();
    if patterns.is_empty() {
        return patterns;
    }
    patterns.push("\\u".to_owned());
    for (c, escape) in [('/', "\\/"), ('"', "\\\""), ('\\', "\\\\")] {
        if ids.clone().any(|s| s.contains(c)) {
            patterns.push(escape.to_owned());
        }
    }
    patterns
}

impl EventFilter {
    /// Drops the events whose top-level `field` names one of `subjects`.
    pub fn new<'a>(subjects: impl IntoIterator<Item = &'a str>, field: &str) -> Self {
        EventFilter::of(&[Identity {
            paths: vec![field.to_owned()],
            ids: subjects.into_iter().map(str::to_owned).collect(),
            fold_case: false,
        }])
    }

    /// Drops the events that name one of any identity's ids at one of its paths.
    pub fn of(identities: &[Identity]) -> Self {
        let mut paths = PathNode::default();
        let mut sets = Vec::with_capacity(identities.len());
        for (n, identity) in identities.iter().enumerate() {
            for path in &identity.paths {
                paths.insert(path, n);
            }
            let fold = |id: &String| {
                if identity.fold_case {
                    id.to_lowercase()
                } else {
                    id.clone()
                }
            };
            sets.push((
                identity.ids.iter().map(fold).collect::<HashSet<String>>(),
                identity.fold_case,
            ));
        }
        let exact = suspect_patterns(sets.iter().filter(|(_, f)| !*f).flat_map(|(ids, _)| ids.iter()));
        let folded = suspect_patterns(sets.iter().filter(|(_, f)| *f).flat_map(|(ids, _)| ids.iter()));
        let longest = exact.iter().chain(&folded).map(String::len).max().unwrap_or(0);
        EventFilter {
            identities: sets,
            paths,
            suspects: Suspects::of(&exact),
            folded_suspects: Suspects::of(&folded),
            longest,
        }
    }

    fn names_subject(&self, identity: usize, value: &Value) -> bool {
        let Some((ids, fold)) = self.identities.get(identity) else {
            return false;
        };
        let text = match value {
            Value::String(id) => id.clone(),
            Value::Number(n) => n.to_string(),
            _ => return false,
        };
        if *fold {
            ids.contains(&text.to_lowercase())
        } else {
            ids.contains(&text)
        }
    }

    fn judge(&self, line: &[u8]) -> Verdict {
        let text = line.trim_ascii();
        let text = text.strip_prefix(BOM).unwrap_or(text).trim_ascii();
        if text.is_empty() {
            return Verdict::Keep;
        }
        let mut de = serde_json::Deserializer::from_slice(text);
        let mut fields = Fields::default();
        let seed = RootSeed(PathSeed {
            node: &self.paths,
            fields: &mut fields,
        });
        if de::DeserializeSeed::deserialize(seed, &mut de)
            .and_then(|()| de.end())
            .is_err()
        {
            return Verdict::Malformed;
        }
        if fields.values.iter().any(|(i, v)| self.names_subject(*i, v)) {
            Verdict::Drop
        } else if fields.duplicates {
            // Which value a reader takes is not ours to guess.
            Verdict::Malformed
        } else {
            Verdict::Keep
        }
    }

    /// Whether bytes of a line the filter cannot read could name a subject.
    fn suspect(&self, bytes: &[u8]) -> bool {
        self.suspects.in_bytes(bytes)
            || (!matches!(self.folded_suspects, Suspects::Nothing)
                && self
                    .folded_suspects
                    .in_bytes(String::from_utf8_lossy(bytes).to_lowercase().as_bytes()))
    }

    /// Reads the gzip JSON lines at `input` and, when `output` is given,
    /// writes the kept lines there, gzip-compressed. The report says what
    /// was dropped; a damaged input is an error, and then `output` must not
    /// be used.
    pub fn filter_file(&self, input: &Path, output: Option<&Path>) -> Result<FilterReport, RewriteError> {
        let file = File::open(input).map_err(|e| RewriteError::Io(e.to_string()))?;
        let reader = BufReader::with_capacity(256 * 1024, MultiGzDecoder::new(BufReader::new(file)));
        match output {
            Some(path) => {
                let out = File::create(path).map_err(|e| RewriteError::Io(e.to_string()))?;
                let mut encoder = GzEncoder::new(BufWriter::new(out), Compression::default());
                let report = self.filter(reader, &mut encoder)?;
                let mut inner = encoder.finish().map_err(|e| RewriteError::Io(e.to_string()))?;
                inner.flush().map_err(|e| RewriteError::Io(e.to_string()))?;
                Ok(report)
            }
            None => self.filter(reader, &mut io::sink()),
        }
    }

    /// The filter over any decompressed reader and writer.
    pub fn filter<R: BufRead, W: Write>(&self, mut reader: R, out: &mut W) -> Result<FilterReport, RewriteError> {
        let mut report = FilterReport::default();
        let mut line = Vec::new();
        let write_err = |e: io::Error| RewriteError::Io(e.to_string());
        loop {
            line.clear();
            let n = (&mut reader)
                .take(MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut line)
                .map_err(|e| RewriteError::Unreadable(e.to_string()))?;
            if n == 0 {
                break;
            }
            report.lines += 1;
            if line.last() != Some(&b'\n') && line.len() > MAX_LINE_BYTES {
                let suspect = self.pass_overlong(&mut reader, &mut line, out)?;
                report.malformed_line(suspect);
                continue;
            }
            match self.judge(&line) {
                Verdict::Drop => report.removed += 1,
                Verdict::Keep => out.write_all(&line).map_err(write_err)?,
                Verdict::Malformed => {
                    report.malformed_line(self.suspect(&line));
                    out.write_all(&line).map_err(write_err)?;
                }
            }
        }
        Ok(report)
    }

    /// Passes a line too long to inspect through to its end, unread (its
    /// first `line` read already), and tells whether it is suspect. Only a
    /// chunk and the few bytes carried over from the one before are held.
    fn pass_overlong<R: BufRead, W: Write>(
        &self,
        reader: &mut R,
        line: &mut Vec<u8>,
        out: &mut W,
    ) -> Result<bool, RewriteError> {
        let write_err = |e: io::Error| RewriteError::Io(e.to_string());
        let carry = carry_len(self.longest);
        let mut suspect = self.suspect(line);
        let mut tail: Vec<u8> = line[line.len().saturating_sub(carry)..].to_vec();
        out.write_all(line).map_err(write_err)?;
        loop {
            line.clear();
            line.extend_from_slice(&tail);
            let m = (&mut *reader)
                .take(MAX_LINE_BYTES as u64)
                .read_until(b'\n', line)
                .map_err(|e| RewriteError::Unreadable(e.to_string()))?;
            suspect = suspect || self.suspect(line);
            out.write_all(&line[tail.len()..]).map_err(write_err)?;
            if m == 0 || line.last() == Some(&b'\n') {
                return Ok(suspect);
            }
            tail = line[line.len().saturating_sub(carry)..].to_vec();
        }
    }
}

/// A file in the function's temporary storage, removed when dropped.
pub struct TempFile(PathBuf);

impl TempFile {
    pub fn new(tag: &str) -> TempFile {
        TempFile(std::env::temp_dir().join(format!("rewrite-{tag}-{}", uuid::Uuid::new_v4().simple())))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;

    fn gz(text: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(text).unwrap();
        e.finish().unwrap()
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        MultiGzDecoder::new(bytes).read_to_end(&mut out).unwrap();
        out
    }

    fn run(filter: &EventFilter, input: &[u8]) -> (FilterReport, Vec<u8>) {
        let dir = std::env::temp_dir();
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let (i, o) = (dir.join(format!("in-{tag}")), dir.join(format!("out-{tag}")));
        std::fs::write(&i, input).unwrap();
        let report = filter.filter_file(&i, Some(&o)).unwrap();
        let out = std::fs::read(&o).unwrap();
        let _ = (std::fs::remove_file(&i), std::fs::remove_file(&o));
        (report, gunzip(&out))
    }

    #[test]
    fn drops_exactly_the_subjects_events_and_keeps_the_rest_byte_for_byte() {
        let f = EventFilter::new(["bob", "42"], "userId");
        let text = concat!(
            "{\"userId\":\"ann\",\"event\":\"a\"}\n",
            "{\"userId\":\"bob\",\"event\":\"b\"}\n",
            "{ \"event\" : \"c\",   \"userId\" : \"ann\" }\r\n",
            "not json at all\n",
            "\n",
            "{\"userId\":42}\n",
            "{\"userId\":\"bobby\"}\n",
            "{\"anonymousId\":\"bob\"}\n",
            "[\"userId\",\"bob\"]\n",
            "{\"userId\":\"bob\",\"last\":true}"
        );
        let (report, out) = run(&f, &gz(text.as_bytes()));
        let expected = concat!(
            "{\"userId\":\"ann\",\"event\":\"a\"}\n",
            "{ \"event\" : \"c\",   \"userId\" : \"ann\" }\r\n",
            "not json at all\n",
            "\n",
            "{\"userId\":\"bobby\"}\n",
            "{\"anonymousId\":\"bob\"}\n",
            "[\"userId\",\"bob\"]\n",
        );
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        assert_eq!(report.lines, 10);
        assert_eq!(report.removed, 3);
        assert_eq!(report.malformed, 2);
        assert_eq!(report.malformed_at, vec![4, 9]);
    }

    #[test]
    fn reads_multi_member_gzip() {
        let mut bytes = gz(b"{\"userId\":\"a\"}\n");
        bytes.extend(gz(b"{\"userId\":\"b\"}\n"));
        let f = EventFilter::new(["a"], "userId");
        let (report, out) = run(&f, &bytes);
        assert_eq!(report.removed, 1);
        assert_eq!(out, b"{\"userId\":\"b\"}\n");
    }

    #[test]
    fn damaged_or_truncated_input_is_an_error_not_a_shorter_object() {
        let f = EventFilter::new(["a"], "userId");
        let dir = std::env::temp_dir();
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let i = dir.join(format!("bad-{tag}"));
        std::fs::write(&i, b"plain text, not gzip\n").unwrap();
        assert!(matches!(f.filter_file(&i, None), Err(RewriteError::Unreadable(_))));
        let whole = gz("{\"userId\":\"b\"}\n".repeat(1000).as_bytes());
        std::fs::write(&i, &whole[..whole.len() / 2]).unwrap();
        assert!(matches!(f.filter_file(&i, None), Err(RewriteError::Unreadable(_))));
        let _ = std::fs::remove_file(&i);
    }

    #[test]
    fn scanning_without_output_reports_the_same_as_rewriting() {
        let f = EventFilter::new(["a"], "userId");
        let text = b"{\"userId\":\"a\"}\n{\"userId\":\"b\"}\nnope\n";
        let scanned = f
            .filter(BufReader::new(GzDecoder::new(&gz(text)[..])), &mut io::sink())
            .unwrap();
        let (rewritten, _) = run(&f, &gz(text));
        assert_eq!(scanned, rewritten);
        assert_eq!(scanned.removed, 1);
        assert_eq!(scanned.malformed, 1);
    }

    #[test]
    fn an_overlong_line_is_kept_unread_and_reported() {
        let f = EventFilter::new(["a"], "userId");
        let mut text = Vec::new();
        text.extend_from_slice(b"{\"userId\":\"a\"}\n");
        text.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 10));
        text.push(b'\n');
        text.extend_from_slice(b"{\"userId\":\"b\"}\n");
        let mut out = Vec::new();
        let report = f.filter(BufReader::new(&text[..]), &mut out).unwrap();
        assert_eq!(report.removed, 1);
        assert_eq!(report.malformed, 1);
        assert_eq!(report.lines, 3);
        assert_eq!(out.len(), text.len() - b"{\"userId\":\"a\"}\n".len());
        assert!(out.ends_with(b"x\n{\"userId\":\"b\"}\n"));
    }

    #[test]
    fn unreadable_lines_are_suspect_only_if_a_subject_could_be_in_them() {
        let f = EventFilter::new(["bob", "a/b"], "userId");
        let text = concat!(
            "\u{feff}{\"userId\":\"bob\"}\n",            // 1: a BOM is no reason not to read it
            "{\"userId\":\"ann\",\"userId\":\"bob\"}\n", // 2: either value: dropped
            "{\"userId\":\"ann\",\"userId\":\"amy\"}\n", // 3: ambiguous, no subject
            "{\"userId\":\"bob\",\n",                    // 4: cut off, names bob
            "{\"userId\":\"\\u0062ob\",\n",              // 5: cut off, an escape could spell bob
            "{\"userId\":\"a\\/b\",\n",                  // 6: cut off, `\/` could spell a/b
            "{\"userId\":\"ann\",\n",                    // 7: cut off, no subject
        );
        let mut deep = String::from("{\"userId\":\"bob\",\"p\":");
        deep.push_str(&"[".repeat(1000));
        deep.push_str(&"]".repeat(1000));
        deep.push_str("}\n"); // 8: deeper than serde's limit, yet read
        let input = format!("{text}{deep}");
        let mut out = Vec::new();
        let report = f.filter(BufReader::new(input.as_bytes()), &mut out).unwrap();
        assert_eq!(report.removed, 3);
        assert_eq!(report.malformed_at, vec![3, 4, 5, 6, 7]);
        assert_eq!(report.suspect_at, vec![4, 5, 6]);
        assert_eq!(report.suspect, 3);
    }

    #[test]
    fn an_overlong_line_is_suspect_if_a_subject_spans_two_of_its_chunks() {
        let f = EventFilter::new(["bob"], "userId");
        for (at, subject) in [(MAX_LINE_BYTES, true), (MAX_LINE_BYTES + 5, true), (0, false)] {
            let mut text = vec![b'x'; 2 * MAX_LINE_BYTES + 10];
            if subject {
                text[at..at + 3].copy_from_slice(b"bob");
            }
            text.push(b'\n');
            text.extend_from_slice(b"{\"userId\":\"bob\"}\n");
            let mut out = Vec::new();
            let report = f.filter(BufReader::new(&text[..]), &mut out).unwrap();
            assert_eq!((report.malformed, report.removed), (1, 1));
            assert_eq!(report.suspect, u64::from(subject), "bob at {at}");
            assert_eq!(
                &out[..],
                &text[..2 * MAX_LINE_BYTES + 11],
                "passed through byte for byte"
            );
        }
    }

    fn identity(paths: &[&str], ids: &[&str], fold_case: bool) -> Identity {
        Identity {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            ids: ids.iter().map(|i| (*i).to_owned()).collect(),
            fold_case,
        }
    }

    #[test]
    fn every_identity_is_matched_at_each_of_its_paths_nested_or_not() {
        let f = EventFilter::of(&[
            identity(&["userId"], &["u1"], false),
            identity(&["anonymousId"], &["a1"], false),
            identity(&["traits.email", "context.traits.email"], &["Ann@Example.com"], true),
        ]);
        let text = concat!(
            "{\"userId\":\"u1\"}\n",                                                     // dropped: user id
            "{\"anonymousId\":\"a1\",\"userId\":\"u2\"}\n",                              // dropped: anonymous id
            "{\"traits\":{\"email\":\"ann@example.COM\"}}\n",                            // dropped: e-mail, any case
            "{\"context\":{\"ip\":\"x\",\"traits\":{\"email\":\"ANN@example.com\"}}}\n", // dropped: nested twice
            "{\"context\":{\"traits\":\"not an object\"}}\n",                            // kept: nothing there
            "{\"traits\":[{\"email\":\"ann@example.com\"}]}\n", // kept: an array is not the path
            "{\"email\":\"ann@example.com\",\"userId\":\"U1\"}\n", // kept: not a declared path; ids are exact
            "{\"properties\":{\"anonymousId\":\"a1\"}}\n",      // kept: a top-level path only
            "{\"traits\":{\"email\":\"ann@example.org\"}}\n",   // kept: another address
        );
        let mut out = Vec::new();
        let report = f.filter(BufReader::new(text.as_bytes()), &mut out).unwrap();
        assert_eq!(report.removed, 4, "{}", String::from_utf8_lossy(&out));
        assert_eq!(report.malformed, 0);
        let kept = String::from_utf8(out).unwrap();
        assert_eq!(kept.lines().count(), 5);
        assert!(kept.starts_with("{\"context\":{\"traits\":\"not an object\"}}\n"));
    }

    #[test]
    fn a_key_twice_on_a_path_is_ambiguous_and_case_folded_ids_are_suspect_in_any_case() {
        let f = EventFilter::of(&[identity(&["traits.email"], &["ann@example.com"], true)]);
        let text = concat!(
            "{\"traits\":{\"email\":\"x@y\",\"email\":\"z@y\"}}\n", // 1: ambiguous
            "{\"traits\":{\"email\":\"x@y\",\"email\":\"ANN@example.com\"}}\n", // 2: either value: dropped
            "{\"traits\":{\"email\":\"ANN@EXAMPLE.COM\",\n",        // 3: cut off: suspect whatever the case
            "{\"traits\":{\"email\":\"bob@example.com\",\n",        // 4: cut off: another address
        );
        let mut out = Vec::new();
        let report = f.filter(BufReader::new(text.as_bytes()), &mut out).unwrap();
        assert_eq!(report.removed, 1);
        assert_eq!(report.malformed_at, vec![1, 3, 4]);
        assert_eq!(report.suspect_at, vec![3]);
    }
}
