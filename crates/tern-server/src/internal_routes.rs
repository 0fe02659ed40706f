//! Tern's own routes between regions on the KMS and IAM front door, apart
//! from the public APIs: only the deployment's root may call them, and no
//! public request can reach them (a public IAM action or KMS target never
//! names them). The client side (`iam_peer`, `kms_peers`) and the serving
//! side (`other_services`) share these names.

/// Internal KMS operations (`x-amz-target: TernInternal.<operation>`).
pub const KMS: &str = "/_tern/kms";
/// The target prefix of internal KMS operations.
pub const KMS_TARGET_PREFIX: &str = "TernInternal.";
/// Whether a principal may take an S3 action here (another region's check).
pub const ACCESS_CHECK: &str = "/_tern/check-access";
/// A copy's source, read here for a caller of another region.
pub const COPY_SOURCE: &str = "/_tern/copy-source";
/// An IAM query-API call a follower forwards for the caller it authenticated.
pub const IAM_FORWARD: &str = "/_tern/iam/forward";
/// A follower's request for the authority's directory.
pub const IAM_SNAPSHOT: &str = "/_tern/iam/snapshot";
/// On a forwarded IAM call: the caller's ARN, and its session's ARN.
pub const CALLER_HEADER: &str = "x-tern-caller";
pub const CALLER_SESSION_HEADER: &str = "x-tern-caller-session";
/// On a forwarded IAM call: where the caller's request came from, and
/// whether over TLS (signed, like every header of a root-signed call).
pub const CALLER_IP_HEADER: &str = "x-tern-caller-ip";
pub const CALLER_TLS_HEADER: &str = "x-tern-caller-tls";
/// On a call made for an S3 caller: how its request was signed
/// (`s3:signatureversion` and `s3:authType`, space-separated).
pub const CALLER_SIGNATURE_HEADER: &str = "x-tern-caller-signature";
/// On a forwarded IAM call: the caller's `aws:userid`.
pub const CALLER_USERID_HEADER: &str = "x-tern-caller-userid";
/// On a forwarded IAM call: the region that forwarded it (for the
/// authority's audit record of it).
pub const FORWARDED_BY_HEADER: &str = "x-tern-forwarded-by";

/// Whether `path` is a route only regions call each other on: the bucket
/// registry, replica delivery, and the internal KMS and IAM routes (not the
/// replication admin API, which operators call). With mutual TLS these
/// need the deployment's peer certificate.
#[must_use]
pub fn is_between_regions(path: &str) -> bool {
    path == KMS
        || path == ACCESS_CHECK
        || path == COPY_SOURCE
        || path.starts_with("/_tern/iam/")
        || path == crate::registry::ROUTE
        || path.starts_with(crate::registry::PREFIX)
        || tern_replication_model::protocol::Route::of(path).is_some()
}

/// The headers that name `caller` on a call made for it (signed, like
/// every header of a root-signed call).
#[must_use]
pub fn caller_headers(caller: &tern_iam::policy::Principal) -> Vec<(&'static str, String)> {
    let mut headers =
        vec![(CALLER_HEADER, caller.arn.clone()), (CALLER_TLS_HEADER, caller.origin.secure_transport.to_string())];
    let optional = [
        (CALLER_SESSION_HEADER, caller.session_arn.clone()),
        (CALLER_IP_HEADER, caller.origin.source_ip.map(|ip| ip.to_string())),
        (CALLER_USERID_HEADER, caller.user_id.clone()),
        (CALLER_SIGNATURE_HEADER, caller.origin.signature.map(|(version, kind)| format!("{version} {kind}"))),
    ];
    headers.extend(optional.into_iter().filter_map(|(name, value)| Some((name, value?))));
    headers
}

/// The caller a call made for it names, if it names one and every `x-tern-`
/// header is signed.
#[must_use]
pub fn caller_of(headers: &http::HeaderMap, account: &str) -> Option<tern_iam::policy::Principal> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let arn = header(CALLER_HEADER).filter(|_| tern_headers_signed(headers))?;
    let origin = tern_iam::policy::Origin {
        secure_transport: header(CALLER_TLS_HEADER).is_some_and(|v| v == "true"),
        source_ip: header(CALLER_IP_HEADER).and_then(|ip| ip.parse().ok()),
        signature: header(CALLER_SIGNATURE_HEADER).as_deref().and_then(signature_of),
    };
    Some(tern_iam::policy::Principal {
        session_arn: header(CALLER_SESSION_HEADER),
        user_id: header(CALLER_USERID_HEADER),
        origin,
        ..tern_iam::policy::Principal::of_arn(account, arn)
    })
}

/// The `s3:signatureversion` and `s3:authType` a caller header names, from
/// the values Tern sets (policy keys take `'static` text).
fn signature_of(text: &str) -> Option<(&'static str, &'static str)> {
    let (version, kind) = text.split_once(' ')?;
    let version = ["AWS4-HMAC-SHA256", "AWS"].into_iter().find(|v| *v == version)?;
    let kind = ["REST-HEADER", "REST-QUERY-STRING", "POST"].into_iter().find(|k| *k == kind)?;
    Some((version, kind))
}

/// Whether every `x-tern-` header of a root-signed call is among its signed headers.
#[must_use]
pub fn tern_headers_signed(headers: &http::HeaderMap) -> bool {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let signed: Vec<&str> = tern_sigv4::scope::authorization_field(authorization, "SignedHeaders")
        .map(|list| list.split(';').collect())
        .unwrap_or_default();
    headers.keys().filter(|name| name.as_str().starts_with("x-tern-")).all(|name| signed.contains(&name.as_str()))
}

/// Whether a route's caller signed as the deployment's root (s3s has
/// checked the signature): Tern's own routes serve no one else.
pub fn root_only(req: &s3s::S3Request<s3s::Body>, root_access_key: &str) -> s3s::S3Result<()> {
    match &req.credentials {
        Some(c) if c.access_key == root_access_key => Ok(()),
        _ => Err(s3s::s3_error!(AccessDenied, "Access Denied")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_crosses_with_how_it_signed_and_only_signed() {
        let origin = tern_iam::policy::Origin {
            secure_transport: true,
            source_ip: Some([10, 0, 0, 9].into()),
            signature: Some(("AWS4-HMAC-SHA256", "REST-QUERY-STRING")),
        };
        let caller = tern_iam::policy::Principal {
            origin,
            ..tern_iam::policy::Principal::of_arn("000000000000", "arn:aws:iam::000000000000:user/u".into())
        };
        let named = caller_headers(&caller);
        let mut headers = http::HeaderMap::new();
        for (name, value) in &named {
            headers.insert(*name, value.parse().unwrap());
        }
        let signed: Vec<&str> = named.iter().map(|(name, _)| *name).collect();
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/s3/aws4_request, SignedHeaders={}, Signature=00",
            signed.join(";")
        );
        headers.insert("authorization", authorization.parse().unwrap());
        let back = caller_of(&headers, "000000000000").unwrap();
        assert_eq!((back.arn, back.origin), (caller.arn, caller.origin));
        headers.insert("x-tern-unsigned", "1".parse().unwrap());
        assert!(caller_of(&headers, "000000000000").is_none(), "an unsigned x-tern- header spoils the call");
    }
}
