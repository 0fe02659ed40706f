//! Reads the `SigV4` credential scope (`<key>/<date>/<region>/<service>/aws4_request`)
//! of a request without verifying anything: the outer layer uses it only to
//! pick the service handler and check the region. Verification happens in
//! the handler. This parses untrusted bytes, so it is small and fuzzed.

use crate::query::Query;

/// The region and service a request was signed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialScope {
    pub region: String,
    pub service: String,
}

/// A credential: `<access key>/<date>/<region>/<service>/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential<'a> {
    pub access_key: &'a str,
    pub date: &'a str,
    pub scope: CredentialScope,
}

/// The value of field `name` (`Credential`, `SignedHeaders`, `Signature`) of an
/// `Authorization: AWS4-HMAC-SHA256 …` header.
#[must_use]
pub fn authorization_field<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    let rest = header.strip_prefix("AWS4-HMAC-SHA256")?;
    rest.split(',').map(str::trim).find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
}

/// The scope from an `Authorization: AWS4-HMAC-SHA256 Credential=…` header.
#[must_use]
pub fn from_authorization(header: &str) -> Option<CredentialScope> {
    parse_credential(authorization_field(header, "Credential")?).map(|c| c.scope)
}

/// The scope from a presigned URL's `X-Amz-Credential` query parameter.
#[must_use]
pub fn from_query(query: &Query) -> Option<CredentialScope> {
    parse_credential(query.unique("X-Amz-Credential")?).map(|c| c.scope)
}

/// Parses a credential from the right, so an access key can never shift its fields.
#[must_use]
pub fn parse_credential(credential: &str) -> Option<Credential<'_>> {
    let mut parts = credential.rsplitn(5, '/');
    let terminator = parts.next()?;
    let service = parts.next()?;
    let region = parts.next()?;
    let date = parts.next()?;
    let access_key = parts.next()?;
    let well_formed = terminator == "aws4_request" && !service.is_empty() && !region.is_empty();
    well_formed.then(|| Credential {
        access_key,
        date,
        scope: CredentialScope { region: region.to_owned(), service: service.to_owned() },
    })
}

/// The scope of a request, from its `Authorization` header if it has one,
/// else from its query string.
#[must_use]
pub fn of_request(authorization: Option<&str>, query: &Query) -> Option<CredentialScope> {
    match authorization {
        Some(auth) => from_authorization(auth),
        None => from_query(query),
    }
}

/// The access key id a request is signed with (header or presigned query).
#[must_use]
pub fn access_key_of(authorization: Option<&str>, query: &Query) -> Option<String> {
    let credential = match authorization {
        Some(auth) => authorization_field(auth, "Credential")?,
        None => query.unique("X-Amz-Credential")?,
    };
    parse_credential(credential).map(|c| c.access_key.to_owned())
}

/// The STS session token a request carries: the `x-amz-security-token`
/// header (`header`), else a presigned URL's `X-Amz-Security-Token`.
#[must_use]
pub fn session_token<'a>(header: Option<&'a str>, query: &'a Query) -> Option<&'a str> {
    header.or_else(|| query.unique("X-Amz-Security-Token")).or_else(|| query.unique("x-amz-security-token"))
}

/// AWS's longest presigned URL lifetime (`X-Amz-Expires`, and `SigV2`'s `Expires`).
pub const MAX_PRESIGNED_SECONDS: u32 = 7 * 24 * 60 * 60;

/// Whether a presigned `SigV4` URL asks to live longer than AWS allows.
#[must_use]
pub fn presigned_too_long(query: &Query) -> bool {
    query
        .unique("X-Amz-Expires")
        .is_some_and(|v| v.parse::<u64>().map_or(true, |s| s > u64::from(MAX_PRESIGNED_SECONDS)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_scope() {
        let h = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261127/eu-west-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";
        assert_eq!(from_authorization(h), Some(CredentialScope { region: "eu-west-1".into(), service: "s3".into() }));
        // Access keys may not contain '/', but we parse from the right anyway.
        assert_eq!(
            from_authorization("AWS4-HMAC-SHA256 Credential=a/b/20261127/us-east-1/kms/aws4_request").unwrap().service,
            "kms"
        );
    }

    #[test]
    fn access_keys_of_signed_requests() {
        let h = "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20261127/eu-west-1/s3/aws4_request, Signature=abc";
        assert_eq!(access_key_of(Some(h), &Query::default()).as_deref(), Some("ASIAEXAMPLE"));
        let q = Query::parse("X-Amz-Credential=AKID%2F20261127%2Fus-east-1%2Fs3%2Faws4_request").unwrap();
        assert_eq!(access_key_of(None, &q).as_deref(), Some("AKID"));
        assert_eq!(access_key_of(None, &Query::default()), None);
    }

    #[test]
    fn query_scope() {
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261127%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=x";
        assert_eq!(from_query(&Query::parse(q).unwrap()).unwrap().region, "us-east-1");
        // Encoded parameter names are read as s3s reads them.
        let encoded = "X-Amz-%43redential=AKID%2F20261127%2Feu-west-1%2Fs3%2Faws4_request";
        assert_eq!(from_query(&Query::parse(encoded).unwrap()).unwrap().region, "eu-west-1");
    }

    #[test]
    fn garbage_yields_nothing() {
        for h in [
            "",
            "AWS4-HMAC-SHA256",
            "AWS4-HMAC-SHA256 Credential=",
            "AWS4-HMAC-SHA256 Credential=a/b/c/d/e",
            "Basic xyz",
            "AWS4-HMAC-SHA256 Credential=k/d//s3/aws4_request",
        ] {
            assert_eq!(from_authorization(h), None, "{h}");
        }
        assert_eq!(from_query(&Query::parse("X-Amz-Credential=%ZZ").unwrap()), None);
    }

    #[test]
    fn presigned_urls_live_at_most_a_week() {
        let expires = |v: &str| presigned_too_long(&Query::parse(&format!("X-Amz-Expires={v}")).unwrap());
        assert!(!expires("604800") && !expires("60"));
        assert!(expires("604801") && expires("315360000") && expires("-1") && expires("x"));
        assert!(!presigned_too_long(&Query::default()));
    }
}
