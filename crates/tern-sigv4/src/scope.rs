//! Reads the `SigV4` credential scope (`<key>/<date>/<region>/<service>/aws4_request`)
//! of a request without verifying anything: the outer layer uses it only to
//! pick the service handler and check the region. Verification happens in
//! the handler. This parses untrusted bytes, so it is small and fuzzed.

/// The region and service a request was signed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialScope {
    pub region: String,
    pub service: String,
}

/// The scope from an `Authorization: AWS4-HMAC-SHA256 Credential=…` header.
#[must_use]
pub fn from_authorization(header: &str) -> Option<CredentialScope> {
    let rest = header.strip_prefix("AWS4-HMAC-SHA256")?;
    let credential = rest.split(',').map(str::trim).find_map(|part| part.strip_prefix("Credential="))?;
    parse_credential(credential)
}

/// The scope from a presigned URL's `X-Amz-Credential` query parameter.
#[must_use]
pub fn from_query(query: &str) -> Option<CredentialScope> {
    let value = query.split('&').find_map(|pair| pair.strip_prefix("X-Amz-Credential="))?;
    parse_credential(&urlencoding::decode(value).ok()?)
}

fn parse_credential(credential: &str) -> Option<CredentialScope> {
    let mut parts = credential.rsplitn(5, '/');
    let terminator = parts.next()?;
    let service = parts.next()?;
    let region = parts.next()?;
    let _date = parts.next()?;
    let _access_key = parts.next()?;
    let well_formed = terminator == "aws4_request" && !service.is_empty() && !region.is_empty();
    well_formed.then(|| CredentialScope { region: region.to_owned(), service: service.to_owned() })
}

/// The scope of a request, from its `Authorization` header if it has one,
/// else from its query string.
#[must_use]
pub fn of_request(authorization: Option<&str>, query: Option<&str>) -> Option<CredentialScope> {
    match authorization {
        Some(auth) => from_authorization(auth),
        None => query.and_then(from_query),
    }
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
    fn query_scope() {
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261127%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=x";
        assert_eq!(from_query(q).unwrap().region, "us-east-1");
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
        assert_eq!(from_query("X-Amz-Credential=%ZZ"), None);
    }
}
