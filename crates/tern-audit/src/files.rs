//! The files of a region's trail: `audit-<sequence>.jsonl` in the region's
//! `audit/` directory, each opened by a header line and, once closed, ended
//! by a digest line; every line in between is one record.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::chain::Tag;

const PREFIX: &str = "audit-";
const SUFFIX: &str = ".jsonl";
/// The version of the file format a header announces.
pub const FORMAT_VERSION: u32 = 1;

/// The name of the file numbered `sequence`.
#[must_use]
pub fn file_name(sequence: u64) -> String {
    format!("{PREFIX}{sequence:08}{SUFFIX}")
}

fn sequence_of(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The trail's files in `dir`, oldest first; none when `dir` does not exist.
///
/// # Errors
/// If `dir` cannot be listed.
pub fn list(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        if let Some(sequence) = entry.file_name().to_str().and_then(sequence_of) {
            files.push((sequence, entry.path()));
        }
    }
    files.sort_unstable_by_key(|(sequence, _)| *sequence);
    Ok(files)
}

/// The complete lines of a file's `bytes`: all of it up to its last
/// newline. What follows is a line torn by a crash (or appended by hand),
/// never a record.
#[must_use]
pub fn complete_lines(bytes: &[u8]) -> &[u8] {
    &bytes[..bytes.iter().rposition(|b| *b == b'\n').map_or(0, |at| at + 1)]
}

/// The first line of a file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub version: u32,
    pub region: String,
    pub sequence: u64,
    /// The tag of the last line of the file before, in hex (all zeros for
    /// the first file), so each file can also be checked on its own.
    pub previous: String,
    pub opened: String,
}

/// Why a file was closed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Closing {
    /// It reached its size.
    Rollover,
    /// The region stopped.
    Shutdown,
    /// The region had stopped without closing it, and closed it on its next start.
    Recovered,
}

/// The last line of a closed file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Digest {
    pub sequence: u64,
    pub records: u64,
    pub closed: String,
    pub reason: Closing,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Control {
    TernAuditFile(Header),
    TernAuditDigest(Digest),
}

/// What one stored line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Header(Header),
    Digest(Digest),
    Record,
}

impl Line {
    /// Reads a line's JSON object (its chain member already removed or not:
    /// control lines are recognised by their one other member).
    #[must_use]
    pub fn classify(object: &[u8]) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_slice(object).ok()?;
        let members = value.as_object()?;
        if members.contains_key("eventVersion") && members.contains_key("eventName") {
            return Some(Self::Record);
        }
        let mut control = members.clone();
        control.remove("ternChain");
        match serde_json::from_value(serde_json::Value::Object(control)).ok()? {
            Control::TernAuditFile(header) => Some(Self::Header(header)),
            Control::TernAuditDigest(digest) => Some(Self::Digest(digest)),
        }
    }
}

/// The JSON object of a header line.
#[must_use]
pub fn header_object(region: &str, sequence: u64, previous: &Tag) -> Vec<u8> {
    let header = Header {
        version: FORMAT_VERSION,
        region: region.to_owned(),
        sequence,
        previous: hex::encode(previous),
        opened: crate::now(),
    };
    serde_json::to_vec(&Control::TernAuditFile(header)).expect("a header serializes")
}

/// The JSON object of a digest line.
#[must_use]
pub fn digest_object(sequence: u64, records: u64, reason: Closing) -> Vec<u8> {
    let digest = Digest { sequence, records, closed: crate::now(), reason };
    serde_json::to_vec(&Control::TernAuditDigest(digest)).expect("a digest serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_lines_read_back() {
        assert_eq!(file_name(7), "audit-00000007.jsonl");
        assert_eq!(sequence_of(&file_name(7)), Some(7));
        assert_eq!(sequence_of("audit-.jsonl"), None);
        assert_eq!(sequence_of("audit-+1.jsonl"), None);
        let header = header_object("us-east-1", 3, &[1; 32]);
        let Some(Line::Header(read)) = Line::classify(&header) else { panic!("not a header") };
        assert_eq!((read.sequence, read.region.as_str()), (3, "us-east-1"));
        let digest = digest_object(3, 10, Closing::Rollover);
        assert!(matches!(Line::classify(&digest), Some(Line::Digest(Digest { records: 10, .. }))));
        assert_eq!(Line::classify(br#"{"eventVersion":"1.09","eventName":"Decrypt"}"#), Some(Line::Record));
        assert_eq!(Line::classify(br#"{"other":1}"#), None);
        assert_eq!(Line::classify(b"not json"), None);
    }
}
