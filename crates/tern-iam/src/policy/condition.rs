//! Condition blocks: operators, the `IfExists` suffix and the
//! `ForAnyValue:`/`ForAllValues:` qualifiers, evaluated as AWS documents.

use std::collections::BTreeMap;

use super::document::PolicyError;
use super::matching::glob;

/// The condition keys of one request and their values. Keys compare
/// case-insensitively, as AWS's do; values are case-sensitive.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    values: BTreeMap<String, Vec<String>>,
}

impl RequestContext {
    /// The global keys every request carries, for `principal` and where
    /// its request came from. `aws:SecureTransport` is false unless the
    /// request came over TLS: a policy that requires TLS fails closed.
    #[must_use]
    pub fn of(principal: &super::Principal) -> Self {
        let mut cx = Self::default();
        cx.secure_transport(principal.origin.secure_transport);
        if let Some(ip) = principal.origin.source_ip {
            cx.set("aws:SourceIp", ip.to_string());
        }
        if let Some(id) = &principal.user_id {
            cx.set("aws:userid", id.clone());
        }
        if let Some((version, auth_type)) = principal.origin.signature {
            cx.set("s3:signatureversion", version);
            cx.set("s3:authType", auth_type);
        }
        if principal.is_anonymous() {
            cx.set("aws:PrincipalType", "Anonymous");
            return cx;
        }
        cx.set("aws:PrincipalArn", principal.arn.clone());
        cx.set("aws:PrincipalAccount", principal.account.clone());
        let kind = if principal.is_root() {
            "Account"
        } else if principal.session_arn.is_some() {
            "AssumedRole"
        } else {
            "User"
        };
        cx.set("aws:PrincipalType", kind);
        if let Some((_, name)) = principal.arn.split_once(":user/") {
            cx.set("aws:username", name);
        }
        cx
    }

    /// Whether the request came over TLS (`aws:SecureTransport`).
    fn secure_transport(&mut self, secure: bool) {
        self.set("aws:SecureTransport", secure.to_string());
    }

    /// Sets a single-valued key.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.values.insert(key.to_lowercase(), vec![value.into()]);
    }

    /// Sets a multivalued key (e.g. `kms:EncryptionContextKeys`).
    pub fn set_all(&mut self, key: &str, values: Vec<String>) {
        self.values.insert(key.to_lowercase(), values);
    }

    fn get(&self, key: &str) -> Option<&[String]> {
        self.values.get(key).map(Vec::as_slice)
    }

    /// The (first) value of a key the request carries.
    #[must_use]
    pub fn value(&self, key: &str) -> Option<&str> {
        self.get(&key.to_lowercase())?.first().map(String::as_str)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    ArnLike,
    Bool,
    Null,
    /// A CIDR block (or one address) holds the value.
    IpAddress,
    NumericEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qualifier {
    Single,
    AnyValue,
    AllValues,
}

#[derive(Debug, Clone)]
pub(crate) struct Condition {
    operator: Operator,
    negated: bool,
    qualifier: Qualifier,
    if_exists: bool,
    /// Lower case.
    key: String,
    values: Vec<String>,
}

fn operator(name: &str) -> Option<(Operator, bool)> {
    Some(match name {
        "StringEquals" => (Operator::StringEquals, false),
        "StringNotEquals" => (Operator::StringEquals, true),
        "StringEqualsIgnoreCase" => (Operator::StringEqualsIgnoreCase, false),
        "StringNotEqualsIgnoreCase" => (Operator::StringEqualsIgnoreCase, true),
        "StringLike" => (Operator::StringLike, false),
        "StringNotLike" => (Operator::StringLike, true),
        "ArnEquals" | "ArnLike" => (Operator::ArnLike, false),
        "ArnNotEquals" | "ArnNotLike" => (Operator::ArnLike, true),
        "Bool" => (Operator::Bool, false),
        "Null" => (Operator::Null, false),
        "IpAddress" => (Operator::IpAddress, false),
        "NotIpAddress" => (Operator::IpAddress, true),
        "NumericEquals" => (Operator::NumericEquals, false),
        "NumericNotEquals" => (Operator::NumericEquals, true),
        "NumericLessThan" => (Operator::NumericLessThan, false),
        "NumericLessThanEquals" => (Operator::NumericLessThanEquals, false),
        "NumericGreaterThan" => (Operator::NumericGreaterThan, false),
        "NumericGreaterThanEquals" => (Operator::NumericGreaterThanEquals, false),
        _ => return None,
    })
}

/// Condition keys Tern sets on the requests it authorizes (keys compare
/// case-insensitively), and key families by prefix. A condition on any
/// other key sees it missing.
const SET_KEYS: &[&str] = &[
    "aws:securetransport",
    "aws:principalarn",
    "aws:principalaccount",
    "aws:principaltype",
    "aws:username",
    "aws:sourcearn",
    "aws:sourceip",
    "aws:userid",
    "kms:viaservice",
    "kms:calleraccount",
    "kms:encryptioncontextkeys",
    "kms:multiregion",
    "kms:multiregionkeytype",
    "s3:versionid",
    "s3:prefix",
    "s3:delimiter",
    "s3:max-keys",
    "s3:x-amz-server-side-encryption",
    "s3:x-amz-server-side-encryption-aws-kms-key-id",
    "s3:signatureversion",
    "s3:authtype",
    "s3:requestobjecttagkeys",
];
const SET_KEY_PREFIXES: &[&str] = &["kms:encryptioncontext:", "s3:requestobjecttag/", "s3:existingobjecttag/"];

fn is_set_by_tern(key: &str) -> bool {
    SET_KEYS.contains(&key) || SET_KEY_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// Policy values are strings, booleans or numbers, alone or in a list.
fn values(value: &serde_json::Value) -> Result<Vec<String>, PolicyError> {
    let one = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        _ => Err(PolicyError::new("Condition values must be strings, booleans or numbers.")),
    };
    match value {
        serde_json::Value::Array(list) => list.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

/// A CIDR block, or one address as a block of one.
fn cidr(text: &str) -> Option<ipnet::IpNet> {
    text.parse().ok().or_else(|| text.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

/// Values an operator cannot compare are refused when the policy is written.
fn check_values(operator: Operator, values: &[String]) -> Result<(), PolicyError> {
    let numeric = matches!(
        operator,
        Operator::NumericEquals
            | Operator::NumericLessThan
            | Operator::NumericLessThanEquals
            | Operator::NumericGreaterThan
            | Operator::NumericGreaterThanEquals
    );
    let invalid = values.iter().find(|v| match operator {
        Operator::IpAddress => cidr(v).is_none(),
        _ if numeric => v.parse::<i64>().is_err(),
        _ => false,
    });
    match invalid {
        Some(value) => Err(PolicyError::new(format!("Invalid value for the condition operator: {value}"))),
        None => Ok(()),
    }
}

/// Parses a `Condition` block: `{operator: {key: value(s)}}`.
pub(crate) fn parse_block(block: &serde_json::Value) -> Result<Vec<Condition>, PolicyError> {
    let serde_json::Value::Object(operators) = block else {
        return Err(PolicyError::new("Condition must be an object."));
    };
    let mut out = Vec::new();
    for (name, keys) in operators {
        let (qualifier, rest) = match name.split_once(':') {
            Some(("ForAnyValue", rest)) => (Qualifier::AnyValue, rest),
            Some(("ForAllValues", rest)) => (Qualifier::AllValues, rest),
            Some(_) => return Err(PolicyError::new(format!("Invalid Condition type : {name}."))),
            None => (Qualifier::Single, name.as_str()),
        };
        let (base, if_exists) = rest.strip_suffix("IfExists").map_or((rest, false), |b| (b, true));
        let (operator, negated) =
            operator(base).ok_or_else(|| PolicyError::new(format!("Invalid Condition type : {name}.")))?;
        let serde_json::Value::Object(keys) = keys else {
            return Err(PolicyError::new(format!("Condition {name} must map keys to values.")));
        };
        for (key, value) in keys {
            let values = values(value)?;
            check_values(operator, &values)?;
            out.push(Condition { operator, negated, qualifier, if_exists, key: key.to_lowercase(), values });
        }
    }
    Ok(out)
}

impl Condition {
    /// Whether this condition holds when its key is missing, which it always
    /// is for a key Tern never sets.
    fn holds_when_missing(&self) -> bool {
        self.holds(&RequestContext::default())
    }

    /// Refuses a condition on a key Tern never sets where AWS, which sets
    /// it, could decide otherwise in the caller's favour: in a Deny it might
    /// have matched (the Deny would silently never apply), in an Allow it
    /// would hold for every request. Only an Allow narrowed by such a key
    /// is kept: it simply never applies. Failing closed at write time beats
    /// failing open at every request.
    pub(crate) fn check_supported(&self, deny: bool) -> Result<(), PolicyError> {
        if is_set_by_tern(&self.key) || (!deny && !self.holds_when_missing()) {
            return Ok(());
        }
        Err(PolicyError::new(format!(
            "Condition key {} is not supported by Tern, and in this statement its absence would {}; \
             remove the condition or the statement.",
            self.key,
            if deny { "silently disable the Deny" } else { "allow every request" }
        )))
    }

    /// Whether this condition pins the caller to known callers, which makes
    /// an Allow to anyone not public (AWS's rule for Block Public Access):
    /// a key that says who or where, compared for fixed values (no
    /// wildcard, no address block of everything), not negated.
    pub(crate) fn restricts_to_known_callers(&self) -> bool {
        const WHO_OR_WHERE: &[&str] = &[
            "aws:sourceip",
            "aws:sourcearn",
            "aws:sourcevpc",
            "aws:sourcevpce",
            "aws:sourceowner",
            "aws:sourceaccount",
            "aws:principalaccount",
            "aws:principalarn",
            "aws:principalorgid",
            "aws:userid",
        ];
        let fixed = |v: &String| match self.operator {
            Operator::IpAddress => cidr(v).is_some_and(|net| net.prefix_len() > 0),
            _ => !v.contains('*') && !v.contains('?'),
        };
        let comparing = matches!(
            self.operator,
            Operator::StringEquals | Operator::StringLike | Operator::ArnLike | Operator::IpAddress
        );
        comparing
            && !self.negated
            && !self.if_exists
            && self.qualifier == Qualifier::Single
            && WHO_OR_WHERE.contains(&self.key.as_str())
            && self.values.iter().all(fixed)
    }

    /// The condition's key (lower case).
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// Whether a value names a policy variable (`${aws:username}`).
    pub(crate) fn names_a_variable(&self) -> bool {
        self.values.iter().any(|v| v.contains("${"))
    }

    fn matches(&self, actual: &str, wanted: &str) -> bool {
        let numbers = || Some((actual.parse::<i64>().ok()?, wanted.parse::<i64>().ok()?));
        match self.operator {
            Operator::StringEquals => actual == wanted,
            Operator::StringEqualsIgnoreCase => actual.to_lowercase() == wanted.to_lowercase(),
            Operator::StringLike | Operator::ArnLike => glob(wanted, actual, false),
            Operator::Bool => actual.eq_ignore_ascii_case(wanted),
            Operator::Null => false,
            Operator::IpAddress => {
                actual.parse::<std::net::IpAddr>().is_ok_and(|ip| cidr(wanted).is_some_and(|net| net.contains(&ip)))
            }
            Operator::NumericEquals => numbers().is_some_and(|(a, w)| a == w),
            Operator::NumericLessThan => numbers().is_some_and(|(a, w)| a < w),
            Operator::NumericLessThanEquals => numbers().is_some_and(|(a, w)| a <= w),
            Operator::NumericGreaterThan => numbers().is_some_and(|(a, w)| a > w),
            Operator::NumericGreaterThanEquals => numbers().is_some_and(|(a, w)| a >= w),
        }
    }

    /// Whether one request value satisfies the condition's values.
    fn holds_for(&self, actual: &str) -> bool {
        let any = self.values.iter().any(|wanted| self.matches(actual, wanted));
        any != self.negated
    }

    pub(crate) fn holds(&self, context: &RequestContext) -> bool {
        let present = context.get(&self.key).filter(|v| !v.is_empty());
        if self.operator == Operator::Null {
            let wants_absent = self.values.iter().any(|v| v.eq_ignore_ascii_case("true"));
            return present.is_none() == wants_absent;
        }
        match (self.qualifier, present) {
            (Qualifier::AllValues, None) => true,
            (Qualifier::AllValues, Some(actual)) => actual.iter().all(|a| self.holds_for(a)),
            (Qualifier::AnyValue, None) => false,
            (Qualifier::AnyValue, Some(actual)) => actual.iter().any(|a| self.holds_for(a)),
            (Qualifier::Single, None) => self.if_exists || self.negated,
            (Qualifier::Single, Some(actual)) => actual.iter().any(|a| self.holds_for(a)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn holds(block: &serde_json::Value, context: &RequestContext) -> bool {
        parse_block(block).unwrap().iter().all(|c| c.holds(context))
    }

    #[test]
    fn addresses_and_numbers_compare_as_aws_documents() {
        let mut cx = RequestContext::default();
        cx.set("aws:SourceIp", "192.0.2.77");
        cx.set("s3:max-keys", "50");
        assert!(holds(&json!({"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}}), &cx));
        assert!(holds(&json!({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.0.2.77"]}}), &cx));
        assert!(holds(&json!({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}), &cx));
        assert!(!holds(&json!({"IpAddress": {"aws:SourceIp": "2001:db8::/32"}}), &cx));
        assert!(holds(&json!({"NumericLessThanEquals": {"s3:max-keys": "50"}}), &cx));
        assert!(!holds(&json!({"NumericGreaterThan": {"s3:max-keys": 50}}), &cx));
        assert!(parse_block(&json!({"IpAddress": {"aws:SourceIp": "not-an-address"}})).is_err());
        assert!(parse_block(&json!({"NumericEquals": {"s3:max-keys": "ten"}})).is_err());
    }

    #[test]
    fn operators_and_missing_keys_behave_as_aws_documents() {
        let mut cx = RequestContext::default();
        cx.set("kms:ViaService", "s3.us-east-1.amazonaws.com");
        cx.set("kms:EncryptionContext:aws:s3:arn", "arn:aws:s3:::bucket/reports/q1");
        cx.set("aws:SecureTransport", "false");
        assert!(holds(&json!({"StringEquals": {"KMS:VIASERVICE": "s3.us-east-1.amazonaws.com"}}), &cx));
        assert!(!holds(&json!({"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}), &cx));
        assert!(holds(&json!({"StringEquals": {"kms:ViaService": ["x", "s3.us-east-1.amazonaws.com"]}}), &cx));
        assert!(holds(
            &json!({"StringLike": {"kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::bucket/reports/*"}}),
            &cx
        ));
        assert!(holds(&json!({"StringNotEquals": {"kms:CallerAccount": "1"}}), &cx), "absent key: negation holds");
        assert!(!holds(&json!({"StringEquals": {"kms:CallerAccount": "1"}}), &cx), "absent key: no match");
        assert!(holds(&json!({"StringEqualsIfExists": {"kms:CallerAccount": "1"}}), &cx));
        assert!(holds(&json!({"Bool": {"aws:SecureTransport": "false"}}), &cx));
        assert!(holds(&json!({"Bool": {"aws:SecureTransport": false}}), &cx));
        assert!(holds(&json!({"Null": {"kms:CallerAccount": "true", "kms:ViaService": "false"}}), &cx));
        assert!(!holds(&json!({"ArnLike": {"aws:SourceArn": "*"}}), &cx), "absent key never matches");
    }

    #[test]
    fn set_qualifiers_compare_every_request_value() {
        let mut cx = RequestContext::default();
        cx.set_all("kms:EncryptionContextKeys", vec!["aws:s3:arn".into(), "tenant".into()]);
        assert!(holds(&json!({"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "tenant"}}), &cx));
        assert!(!holds(&json!({"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": "tenant"}}), &cx));
        assert!(holds(&json!({"ForAllValues:StringLike": {"kms:EncryptionContextKeys": ["aws:*", "tenant"]}}), &cx));
        assert!(holds(&json!({"ForAllValues:StringEquals": {"absent": "x"}}), &cx), "an empty set satisfies ForAll");
        assert!(!holds(&json!({"ForAnyValue:StringEquals": {"absent": "x"}}), &cx));
    }

    #[test]
    fn unsupported_keys_may_only_narrow_an_allow() {
        let conditions = |block| parse_block(&block).unwrap();
        let check = |block, deny| conditions(block).iter().try_for_each(|c| c.check_supported(deny));
        assert!(check(json!({"Bool": {"kms:GrantIsForAWSResource": "true"}}), false).is_ok());
        assert!(check(json!({"StringNotEquals": {"aws:RequestTag/team": "x"}}), false).is_err());
        assert!(check(json!({"StringEqualsIfExists": {"aws:SourceVpc": "v"}}), false).is_err());
        assert!(check(json!({"StringEquals": {"aws:SourceVpc": "v"}}), true).is_err());
        assert!(check(json!({"Bool": {"aws:SecureTransport": "false"}}), true).is_ok());
        assert!(check(json!({"StringLike": {"kms:EncryptionContext:aws:s3:arn": "*"}}), true).is_ok());
    }

    #[test]
    fn every_request_knows_it_came_over_plain_http() {
        let deny = json!({"Bool": {"aws:SecureTransport": "false"}});
        let principal = super::super::Principal::root("111122223333");
        assert!(holds(&deny, &RequestContext::of(&principal)));
    }

    #[test]
    fn unknown_operators_are_malformed() {
        assert!(parse_block(&json!({"StringSortOf": {"a": "b"}})).is_err());
        assert!(parse_block(&json!({"Maybe:StringEquals": {"a": "b"}})).is_err());
        assert!(parse_block(&json!({"StringEquals": {"a": {"nested": 1}}})).is_err());
    }
}
