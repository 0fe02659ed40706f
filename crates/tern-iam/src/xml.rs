//! The query protocol's XML responses, written by hand: a handful of flat
//! shapes, for which an XML serializer crate would add more than it saves.

use std::fmt::Write as _;

#[must_use]
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Appends `<name>text</name>`.
pub fn leaf(out: &mut String, name: &str, text: &str) {
    let _ = write!(out, "<{name}>{}</{name}>", escape(text));
}

/// Appends `<name>…</name>` around what `inner` writes.
pub fn element(out: &mut String, name: &str, inner: impl FnOnce(&mut String)) {
    let _ = write!(out, "<{name}>");
    inner(out);
    let _ = write!(out, "</{name}>");
}

/// Appends an untruncated list: `<name><member>…</member>…</name><IsTruncated>false</IsTruncated>`.
pub fn members<'a, T: 'a>(
    out: &mut String,
    name: &str,
    items: impl IntoIterator<Item = &'a T>,
    write: impl Fn(&mut String, &T),
) {
    element(out, name, |out| {
        for item in items {
            element(out, "member", |out| write(out, item));
        }
    });
    leaf(out, "IsTruncated", "false");
}

/// A whole response: `<{action}Response>` with an optional result body.
#[must_use]
pub fn response(action: &str, namespace: &str, result: Option<&str>) -> String {
    let request_id = uuid::Uuid::new_v4();
    let result = result.map_or_else(String::new, |r| format!("<{action}Result>{r}</{action}Result>"));
    format!(
        "<{action}Response xmlns=\"{namespace}\">{result}<ResponseMetadata><RequestId>{request_id}</RequestId>\
         </ResponseMetadata></{action}Response>"
    )
}

/// An error response in the query protocol's shape.
#[must_use]
pub fn error(namespace: &str, code: &str, message: &str, sender: bool) -> String {
    let kind = if sender { "Sender" } else { "Receiver" };
    format!(
        "<ErrorResponse xmlns=\"{namespace}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error>\
         <RequestId>{}</RequestId></ErrorResponse>",
        escape(code),
        escape(message),
        uuid::Uuid::new_v4()
    )
}

/// ISO 8601 as IAM and STS write times.
#[must_use]
pub fn iso8601(unix_seconds: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(unix_seconds).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}
