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

/// Everything wrong with a trail, file by file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct Findings(pub Vec<Finding>);

/// Checks every file of the trail in `dir`, oldest first. A file that fails
/// does not hide the others: the next is checked from its own header's word,
/// so one damaged line cannot cover tampering further on.
///
/// # Errors
/// Every finding; an unreadable file or directory is one.
pub fn verify_dir(dir: &Path, key: &ChainKey) -> Result<Vec<FileSummary>, Findings> {
    let finding = |file: &Path, line, what: String| Finding { file: file.to_path_buf(), line, what };
    let listed = files::list(dir).map_err(|e| Findings(vec![finding(dir, 0, e.to_string())]))?;
    let (mut summaries, mut findings) = (Vec::new(), Vec::new());
    // The tag the next file must follow, when the files so far vouch for it.
    let mut previous = Some(GENESIS);
    let mut expected = 1;
    let mut left_open = None;
    for (position, (sequence, path)) in listed.iter().enumerate() {
        if *sequence != expected {
            findings.push(finding(path, 0, format!("file {expected} is missing")));
            previous = None;
        }
        if let Some(open) = left_open.take() {
            findings.push(finding(path, 0, format!("file {open} was never closed, yet a later one exists")));
        }
        expected = sequence.saturating_add(1);
        let checked = std::fs::read(path).map_err(|e| (0, e.to_string())).and_then(|bytes| {
            let newest = position + 1 == listed.len();
            check_file(trimmed(&bytes, newest), key, previous.as_ref(), *sequence)
        });
        match checked {
            Ok((summary, tag)) => {
                left_open = (!summary.closed).then_some(summary.sequence);
                summaries.push(summary);
                previous = Some(tag);
            }
            Err((line, what)) => {
                findings.push(finding(path, line, what));
                previous = None;
            }
        }
    }
    if findings.is_empty() { Ok(summaries) } else { Err(Findings(findings)) }
}

/// The newest file may end in a line torn by a crash, which the region
/// drops when it next starts; until then it is not a finding.
fn trimmed(bytes: &[u8], newest: bool) -> &[u8] {
    match files::complete_lines(bytes) {
        complete if newest && !complete.is_empty() => complete,
        _ => bytes,
    }
}
