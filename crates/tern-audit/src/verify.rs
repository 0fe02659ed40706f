//! `tern audit verify`: checks a region's trail line by line against its
//! chain, file by file against their headers and digests. Files are
//! untrusted input here (anyone with write access may have edited them),
//! so every malformation is a finding, never a panic (fuzzed).

use std::path::{Path, PathBuf};

use crate::chain::{ChainKey, GENESIS, Tag};
use crate::files::{self, Line};

/// What a sound file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSummary {
    pub sequence: u64,
    pub records: u64,
    /// Ended by its digest (every file but the newest must be).
    pub closed: bool,
}

/// Where a trail stops being trustworthy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {what}", file.display())]
pub struct Finding {
    pub file: PathBuf,
    /// 1-based; 0 for the file as a whole.
    pub line: usize,
    pub what: String,
}

/// Checks one file's `bytes`: it must be numbered `sequence`, begin after
/// `previous` (`None` when the file before it is gone or unknown: then its
/// header's word is taken), and be unchanged line by line. Returns its
/// summary and the tag the next file must follow. Errors are (line, what).
///
/// # Errors
/// The first line that is malformed, out of place or not the one sealed.
pub fn check_file(
    bytes: &[u8],
    key: &ChainKey,
    previous: Option<&Tag>,
    sequence: u64,
) -> Result<(FileSummary, Tag), (usize, String)> {
    let Some(body) = bytes.strip_suffix(b"\n") else {
        return Err((0, "the file does not end with a complete line".to_owned()));
    };
    let mut summary = FileSummary { sequence, records: 0, closed: false };
    let mut tag = GENESIS;
    for (index, line) in body.split(|b| *b == b'\n').enumerate() {
        let number = index + 1;
        let fail = |what: &str| Err((number, what.to_owned()));
        if summary.closed {
            return fail("a line follows the file's digest");
        }
        let Some(kind) = Line::classify(line) else { return fail("not an audit record") };
        match (&kind, number) {
            (Line::Header(header), 1) => {
                if header.sequence != sequence {
                    return fail(&format!("the header says file {}, the name says {sequence}", header.sequence));
                }
                let mut claimed = GENESIS;
                hex::decode_to_slice(&header.previous, &mut claimed)
                    .map_err(|_| (number, "the header's previous tag is malformed".to_owned()))?;
                match previous {
                    Some(previous) if *previous != claimed => {
                        return fail("the file does not follow the one before it (a file was removed or replaced)");
                    }
                    _ => tag = claimed,
                }
            }
            (_, 1) => return fail("the file does not begin with its header"),
            (Line::Header(_), _) => return fail("a second header"),
            (Line::Digest(digest), _) => {
                if digest.sequence != sequence || digest.records != summary.records {
                    return fail(&format!(
                        "the digest counts {} records, the file holds {} (records were removed or added)",
                        digest.records, summary.records
                    ));
                }
                summary.closed = true;
            }
            (Line::Record, _) => summary.records += 1,
        }
        let Some(next) = key.open(&tag, line) else {
            return fail("the line is not the one sealed here (changed, moved, or sealed under another key)");
        };
        tag = next;
    }
    Ok((summary, tag))
}

/// Checks every file of the trail in `dir`, oldest first.
///
/// # Errors
/// The first finding; an unreadable file is one.
pub fn verify_dir(dir: &Path, key: &ChainKey) -> Result<Vec<FileSummary>, Finding> {
    let finding = |file: &Path, line, what: String| Finding { file: file.to_path_buf(), line, what };
    let listed = files::list(dir).map_err(|e| finding(dir, 0, e.to_string()))?;
    let mut summaries: Vec<FileSummary> = Vec::new();
    let mut previous = GENESIS;
    for (position, (sequence, path)) in listed.iter().enumerate() {
        let expected = summaries.last().map_or(1, |s| s.sequence.saturating_add(1));
        if *sequence != expected {
            return Err(finding(path, 0, format!("file {expected} is missing")));
        }
        if let Some(open) = summaries.last().filter(|s| !s.closed) {
            return Err(finding(path, 0, format!("file {} was never closed, yet a later one exists", open.sequence)));
        }
        let bytes = std::fs::read(path).map_err(|e| finding(path, 0, e.to_string()))?;
        let newest = position + 1 == listed.len();
        let (summary, tag) = check_file(trimmed(&bytes, newest), key, Some(&previous), *sequence)
            .map_err(|(line, what)| finding(path, line, what))?;
        summaries.push(summary);
        previous = tag;
    }
    Ok(summaries)
}

/// The newest file may end in a line torn by a crash, which the region
/// drops when it next starts; until then it is not a finding.
fn trimmed(bytes: &[u8], newest: bool) -> &[u8] {
    match bytes.iter().rposition(|b| *b == b'\n') {
        Some(end) if newest => &bytes[..=end],
        _ => bytes,
    }
}
