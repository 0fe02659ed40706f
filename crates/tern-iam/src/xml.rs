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

/// The text of the first `<name>…</name>` leaf of `xml`, as [`leaf`] wrote
/// it: reads back this module's own output (a forwarded answer, for the
/// audit trail), not XML at large.
#[must_use]
pub fn leaf_text(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    Some(unescape(&xml[start..end]))
}

/// The inverse of [`escape`].
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let entity = [("&amp;", '&'), ("&lt;", '<'), ("&gt;", '>'), ("&quot;", '"'), ("&apos;", '\'')]
            .into_iter()
            .find(|(name, _)| rest.starts_with(name));
        if let Some((name, c)) = entity {
            out.push(c);
            rest = &rest[name.len()..];
        } else {
            out.push('&');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_read_back_as_written() {
        let mut out = String::new();
        element(&mut out, "User", |out| leaf(out, "UserName", "a&b <'c'> \"d\" &amp;"));
        assert_eq!(leaf_text(&out, "UserName").as_deref(), Some("a&b <'c'> \"d\" &amp;"));
        assert_eq!(leaf_text(&out, "Arn"), None);
        assert_eq!(leaf_text("<A>x", "A"), None);
    }
}
