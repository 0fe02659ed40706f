//! The demo's findings as text: one table of the three models in both
//! regions, then the permissions each model needed where.

use std::fmt::Write as _;

use super::model::{Model, READER, Regions, describe};
use super::observe::Row;
use super::setup::Built;

const HEADERS: [&str; 8] =
    ["model", "region", "object", "encryption", "key", "replication", "S3 saw plaintext", "reader decrypts"];

/// Columns padded to their widest cell; a model's name only on its first row.
pub fn render(rows: &[Row]) -> String {
    let cells: Vec<[&str; 8]> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let model = if i > 0 && rows[i - 1].model == r.model { "" } else { r.model };
            [
                model,
                &r.region,
                &r.object,
                &r.encryption,
                &r.key,
                &r.replication,
                &r.s3_saw_plaintext,
                &r.reader_decrypts,
            ]
        })
        .collect();
    let mut widths = HEADERS.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |row: &[&str; 8]| {
        let padded: Vec<String> = row.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        padded.join("  ").trim_end().to_owned() + "\n"
    };
    let mut out = line(&HEADERS);
    out += &line(&widths.map(|w| "─".repeat(w)).each_ref().map(String::as_str));
    for (i, row) in cells.iter().enumerate() {
        if i > 0 && !row[0].is_empty() {
            out.push('\n');
        }
        out += &line(row);
    }
    out
}

/// What each model's replication role may do in each region, and what the
/// reader needed there.
pub fn permissions(regions: &Regions, built: &Built) -> String {
    let mut out = String::from("\npermissions, least privilege, as granted:\n");
    for model in Model::ALL {
        let keys = &built.keys[&model];
        let _ = writeln!(out, "{}\n  replication role {}", model.title(), built.roles[&model]);
        for (region, statements) in model.role_statements(regions, keys) {
            for statement in statements {
                let _ = writeln!(out, "    {region:<10} {}", describe(&statement));
            }
        }
        let _ = writeln!(out, "  reader {READER}");
        for (region, key) in [(&regions.source, &keys.source), (&regions.destination, &keys.destination)] {
            for statement in model.reader_statements(region, key) {
                let _ = writeln!(out, "    {region:<10} {}", describe(&statement));
            }
        }
    }
    out
}
