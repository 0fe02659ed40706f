//! Query strings decoded exactly as s3s decodes them (form decoding of names
//! and values, `+` as space), so the outer layer never decides on a
//! different reading of a request than the service that answers it: a
//! parameter spelled `X-Amz-%45xpires` is `X-Amz-Expires` to both.

/// A decoded query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

/// The query string is not valid form encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the query string is not valid URL encoding")]
pub struct MalformedQuery;

impl Query {
    /// Decodes `query` (without the `?`).
    pub fn parse(query: &str) -> Result<Self, MalformedQuery> {
        serde_urlencoded::from_str(query).map(|pairs| Self { pairs }).map_err(|_| MalformedQuery)
    }

    /// Decodes the query of a request, if it has one.
    pub fn of(query: Option<&str>) -> Result<Self, MalformedQuery> {
        query.map_or_else(|| Ok(Self::default()), Self::parse)
    }

    /// Whether `name` is present (with or without a value).
    #[must_use]
    pub fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }

    /// The value of `name` if it appears exactly once, as s3s reads it.
    #[must_use]
    pub fn unique(&self, name: &str) -> Option<&str> {
        let mut values = self.pairs.iter().filter(|(k, _)| k == name);
        let (_, first) = values.next()?;
        values.next().is_none().then_some(first.as_str())
    }

    /// Every pair, in the order sent.
    #[must_use]
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_are_decoded_and_duplicates_are_not_unique() {
        let q = Query::parse("X-Amz-%45xpires=60&a+b=c%2Bd&k=1&k=2&flag").unwrap();
        assert_eq!(q.unique("X-Amz-Expires"), Some("60"));
        assert_eq!(q.unique("a b"), Some("c+d"));
        assert_eq!(q.unique("k"), None);
        assert!(q.has("k") && q.has("flag"));
        assert_eq!(q.unique("flag"), Some(""));
        // Invalid escapes stay literal, as s3s reads them.
        assert_eq!(Query::parse("%ZZ=1").unwrap().unique("%ZZ"), Some("1"));
    }
}
