//! The rewrite of one archive object: gzip-compressed JSON lines, one event
//! per line. Drops exactly the lines whose user-id field names a subject and
//! keeps every other line byte for byte (its line ending included).
//!
//! It works from a file to a file (the object is downloaded to the
//! function's temporary storage first) through a buffered reader, so memory
//! stays bounded whatever the object's size: at most one line of up to
//! `MAX_LINE_BYTES` is held; a longer line is passed through unread and
//! reported.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{Map, Value};
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
}

/// Which lines go: those whose `field` (a string, or a number by its JSON
/// text) is one of the subjects.
pub struct EventFilter {
    subjects: HashSet<String>,
    field: String,
}

enum Verdict {
    Keep,
    Drop,
    Malformed,
}

impl EventFilter {
    pub fn new<'a>(subjects: impl IntoIterator<Item = &'a str>, field: &str) -> Self {
        EventFilter {
            subjects: subjects.into_iter().map(str::to_owned).collect(),
            field: field.to_owned(),
        }
    }

    fn judge(&self, line: &[u8]) -> Verdict {
        let text = line.trim_ascii();
        if text.is_empty() {
            return Verdict::Keep;
        }
        let Ok(event) = serde_json::from_slice::<Map<String, Value>>(text) else {
            return Verdict::Malformed;
        };
        let matched = match event.get(&self.field) {
            Some(Value::String(id)) => self.subjects.contains(id),
            Some(Value::Number(n)) => self.subjects.contains(&n.to_string()),
            _ => false,
        };
        if matched {
            Verdict::Drop
        } else {
            Verdict::Keep
        }
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
                // Too long to inspect: pass it through to its end, unread.
                out.write_all(&line).map_err(write_err)?;
                loop {
                    line.clear();
                    let m = (&mut reader)
                        .take(MAX_LINE_BYTES as u64)
                        .read_until(b'\n', &mut line)
                        .map_err(|e| RewriteError::Unreadable(e.to_string()))?;
                    out.write_all(&line).map_err(write_err)?;
                    if m == 0 || line.last() == Some(&b'\n') {
                        break;
                    }
                }
                report.malformed += 1;
                if report.malformed_at.len() < MAX_SAMPLES {
                    report.malformed_at.push(report.lines);
                }
                continue;
            }
            match self.judge(&line) {
                Verdict::Drop => report.removed += 1,
                Verdict::Keep => out.write_all(&line).map_err(write_err)?,
                Verdict::Malformed => {
                    report.malformed += 1;
                    if report.malformed_at.len() < MAX_SAMPLES {
                        report.malformed_at.push(report.lines);
                    }
                    out.write_all(&line).map_err(write_err)?;
                }
            }
        }
        Ok(report)
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
}
