//! Policy documents: parsing, AWS's validation rules per kind of policy,
//! and evaluation of their statements.

use serde_json::Value;

use super::condition::{Condition, parse_block};
use super::matching::glob;
use super::{Principal, Request, Verdict};

/// Why a policy document is malformed, in words a user can act on; it
/// becomes the message of `MalformedPolicyDocument(Exception)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

impl PolicyError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Attached to a user or role: no Principal, Resource required.
    Identity,
    /// On a resource (a KMS key policy): Principal and Resource required.
    Resource,
    /// A role's trust policy: Principal required, no Resource.
    Trust,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Principals {
    Any,
    Listed { aws: Vec<String>, service: Vec<String> },
}

#[derive(Debug, Clone)]
struct Statement {
    deny: bool,
    principals: Option<(Principals, bool)>,
    actions: (Vec<String>, bool),
    resources: Option<(Vec<String>, bool)>,
    conditions: Vec<Condition>,
}

/// A parsed, validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    statements: Vec<Statement>,
}

fn strings(value: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    let list = match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| PolicyError::new(format!("{what} must be strings."))))
            .collect::<Result<_, _>>()?,
        _ => return Err(PolicyError::new(format!("{what} must be a string or a list of strings."))),
    };
    if list.is_empty() {
        return Err(PolicyError::new(format!("{what} must not be empty.")));
    }
    Ok(list)
}

/// Exactly one of `name` / `Not<name>`: its value and whether negated.
fn either<'a>(
    statement: &'a serde_json::Map<String, Value>,
    name: &str,
) -> Result<Option<(&'a Value, bool)>, PolicyError> {
    let negated = format!("Not{name}");
    match (statement.get(name), statement.get(&negated)) {
        (Some(_), Some(_)) => Err(PolicyError::new(format!("A statement cannot have both {name} and {negated}."))),
        (Some(v), None) => Ok(Some((v, false))),
        (None, Some(v)) => Ok(Some((v, true))),
        (None, None) => Ok(None),
    }
}

fn is_account(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

/// AWS principal forms Tern knows: `*`, an account id, or an IAM/STS ARN.
fn valid_aws_principal(text: &str) -> bool {
    if text == "*" || is_account(text) {
        return true;
    }
    let Some(rest) = text.strip_prefix("arn:aws:iam::").or_else(|| text.strip_prefix("arn:aws:sts::")) else {
        return false;
    };
    let Some((account, resource)) = rest.split_once(':') else { return false };
    is_account(account)
        && (resource == "root"
            || ["user/", "role/", "assumed-role/"]
                .iter()
                .any(|p| resource.strip_prefix(p).is_some_and(|n| !n.is_empty())))
}

fn parse_principals(value: &Value) -> Result<Principals, PolicyError> {
    let invalid = || PolicyError::new("Policy contains a statement with one or more invalid principals.");
    match value {
        Value::String(s) if s == "*" => Ok(Principals::Any),
        Value::Object(map) => {
            let mut aws = Vec::new();
            let mut service = Vec::new();
            for (kind, values) in map {
                let values = strings(values, "Principal values").map_err(|_| invalid())?;
                match kind.as_str() {
                    "AWS" if values.iter().all(|v| valid_aws_principal(v)) => aws.extend(values),
                    "Service" if values.iter().all(|v| v.ends_with(".amazonaws.com")) => service.extend(values),
                    _ => return Err(invalid()),
                }
            }
            if aws.iter().any(|a| a == "*") { Ok(Principals::Any) } else { Ok(Principals::Listed { aws, service }) }
        }
        _ => Err(invalid()),
    }
}

fn check_actions(actions: &[String]) -> Result<(), PolicyError> {
    for action in actions {
        let vendor_ok = action == "*"
            || action.split_once(':').is_some_and(|(vendor, name)| {
                !vendor.is_empty() && vendor.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') && !name.is_empty()
            });
        if !vendor_ok {
            return Err(PolicyError::new(format!(
                "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc. Offending action: {action}"
            )));
        }
    }
    Ok(())
}

/// The elements a statement may have; any other is a mistake (a misspelled
/// `Condtion` must not grant access unconditionally).
const STATEMENT_ELEMENTS: &[&str] =
    &["Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"];
const POLICY_ELEMENTS: &[&str] = &["Version", "Id", "Statement"];

fn refuse_unknown(object: &serde_json::Map<String, Value>, known: &[&str]) -> Result<(), PolicyError> {
    match object.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(PolicyError::new(format!("Policy document contains an unknown element: {unknown}."))),
        None => Ok(()),
    }
}

/// Policy variables (`${aws:username}`) are not substituted by Tern. Under
/// version 2012-10-17, where AWS would, a statement naming one is refused:
/// taken literally it would never match, silently disabling a Deny.
fn refuse_variables(resources: Option<&(Vec<String>, bool)>, conditions: &[Condition]) -> Result<(), PolicyError> {
    let in_resources = resources.is_some_and(|(list, _)| list.iter().any(|r| r.contains("${")));
    if in_resources || conditions.iter().any(Condition::names_a_variable) {
        return Err(PolicyError::new("Policy variables (${...}) are not supported by Tern."));
    }
    Ok(())
}

fn parse_statement(value: &Value, kind: Kind, variables: bool) -> Result<Statement, PolicyError> {
    let Value::Object(s) = value else { return Err(PolicyError::new("Each statement must be an object.")) };
    refuse_unknown(s, STATEMENT_ELEMENTS)?;
    if s.get("Sid").is_some_and(|sid| !sid.is_string()) {
        return Err(PolicyError::new("Statement IDs (SID) must be strings."));
    }
    let deny = match s.get("Effect").and_then(Value::as_str) {
        Some("Allow") => false,
        Some("Deny") => true,
        _ => return Err(PolicyError::new("Each statement must have an Effect of Allow or Deny.")),
    };
    let principals =
        either(s, "Principal")?.map(|(v, negated)| parse_principals(v).map(|p| (p, negated))).transpose()?;
    match (kind, &principals) {
        (Kind::Identity, Some(_)) => return Err(PolicyError::new("Policy document should not specify a principal.")),
        (Kind::Resource | Kind::Trust, None) => {
            return Err(PolicyError::new("Policy contains a statement with no principal."));
        }
        _ => {}
    }
    let (actions, not_action) =
        either(s, "Action")?.ok_or_else(|| PolicyError::new("Policy statement must contain actions."))?;
    let actions = strings(actions, "Action")?;
    check_actions(&actions)?;
    let resources =
        either(s, "Resource")?.map(|(v, negated)| strings(v, "Resource").map(|r| (r, negated))).transpose()?;
    if kind != Kind::Trust && resources.is_none() {
        return Err(PolicyError::new("Policy statement must contain resources."));
    }
    if kind == Kind::Trust && resources.is_some() {
        return Err(PolicyError::new("Has prohibited field Resource"));
    }
    let conditions = s.get("Condition").map(parse_block).transpose()?.unwrap_or_default();
    for condition in &conditions {
        condition.check_supported(deny)?;
    }
    if variables {
        refuse_variables(resources.as_ref(), &conditions)?;
    }
    Ok(Statement { deny, principals, actions: (actions, not_action), resources, conditions })
}

impl Policy {
    fn parse(text: &str, kind: Kind) -> Result<Self, PolicyError> {
        let doc: Value = serde_json::from_str(text)
            .map_err(|e| PolicyError::new(format!("This policy contains invalid Json: {e}")))?;
        let Value::Object(doc) = doc else { return Err(PolicyError::new("The policy must be a JSON object.")) };
        refuse_unknown(&doc, POLICY_ELEMENTS)?;
        if let Some(version) = doc.get("Version")
            && !matches!(version.as_str(), Some("2012-10-17" | "2008-10-17"))
        {
            return Err(PolicyError::new("The policy must contain a valid version string"));
        }
        let statements = match doc.get("Statement") {
            Some(Value::Array(list)) if !list.is_empty() => list.clone(),
            Some(one @ Value::Object(_)) => vec![one.clone()],
            _ => return Err(PolicyError::new("Policy document must contain a non-empty Statement.")),
        };
        let variables = doc.get("Version").and_then(Value::as_str) == Some("2012-10-17");
        let statements = statements.iter().map(|s| parse_statement(s, kind, variables)).collect::<Result<_, _>>()?;
        Ok(Self { statements })
    }

    /// A policy that denies every action on every resource.
    #[must_use]
    pub fn deny_all() -> Self {
        let statement = Statement {
            deny: true,
            principals: None,
            actions: (vec!["*".to_owned()], false),
            resources: Some((vec!["*".to_owned()], false)),
            conditions: Vec::new(),
        };
        Self { statements: vec![statement] }
    }

    /// An identity policy (inline on a user or role).
    pub fn identity(text: &str) -> Result<Self, PolicyError> {
        Self::parse(text, Kind::Identity)
    }

    /// A resource policy, such as a KMS key policy.
    pub fn resource(text: &str) -> Result<Self, PolicyError> {
        Self::parse(text, Kind::Resource)
    }

    /// A role's trust policy.
    pub fn trust(text: &str) -> Result<Self, PolicyError> {
        Self::parse(text, Kind::Trust)
    }

    /// Every IAM user or role ARN the policy names as a principal, so the
    /// caller can refuse principals that do not exist, as AWS does.
    #[must_use]
    pub fn named_principals(&self) -> Vec<&str> {
        self.statements
            .iter()
            .filter_map(|s| match &s.principals {
                Some((Principals::Listed { aws, .. }, _)) => Some(aws.iter().map(String::as_str)),
                _ => None,
            })
            .flatten()
            .filter(|p| p.contains(":user/") || p.contains(":role/"))
            .collect()
    }

    /// Whether a statement allows anyone (`Principal: *`) without a
    /// condition: a public policy, as S3's policy status reports it.
    #[must_use]
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(|s| {
            // Everyone, or everyone but those named: anyone at all.
            let anyone = matches!(s.principals, Some((Principals::Any, false) | (Principals::Listed { .. }, true)));
            !s.deny && anyone && !s.conditions.iter().any(Condition::restricts_to_known_callers)
        })
    }

    /// Whether some Allow could reach an unsigned caller (`Principal: *`, or
    /// a `NotPrincipal`), conditions aside: the only policies worth reading
    /// an anonymous request's body for.
    #[must_use]
    pub fn may_allow_anonymous(&self) -> bool {
        self.statements.iter().any(|s| {
            !s.deny && matches!(s.principals, Some((Principals::Any, false) | (Principals::Listed { .. }, true)))
        })
    }

    /// Whether some condition reads a key starting with `prefix` (lower case).
    #[must_use]
    pub fn reads_keys(&self, prefix: &str) -> bool {
        self.statements.iter().flat_map(|s| &s.conditions).any(|c| c.key().starts_with(prefix))
    }

    /// Every resource (or `NotResource`) the policy's statements name.
    #[must_use]
    pub fn named_resources(&self) -> Vec<&str> {
        let lists = self.statements.iter().filter_map(|s| s.resources.as_ref());
        lists.flat_map(|(resources, _)| resources.iter().map(String::as_str)).collect()
    }

    /// What this policy's statements say about `request`.
    #[must_use]
    pub fn evaluate(&self, request: &Request<'_>) -> Verdict {
        let mut verdict = Verdict::default();
        for statement in &self.statements {
            let Some(reach) = statement.reaches(request) else { continue };
            if statement.deny {
                verdict.denied = true;
            } else if reach == Reach::Account {
                verdict.allowed_for_account = true;
            } else {
                verdict.allowed = true;
            }
        }
        verdict
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// The statement names the principal, or any principal.
    Principal,
    /// The statement names the principal's account (its root).
    Account,
}

fn principal_reach(principals: &Principals, who: &Principal) -> Option<Reach> {
    let Principals::Listed { aws, service } = principals else { return Some(Reach::Principal) };
    if let Some(name) = &who.service {
        return service.contains(name).then_some(Reach::Principal);
    }
    let root = format!("arn:aws:iam::{}:root", who.account);
    let names_account = aws.iter().any(|a| *a == root || *a == who.account);
    let names_principal = aws.iter().any(|a| *a == who.arn || who.session_arn.as_deref() == Some(a.as_str()));
    if names_principal || (names_account && who.is_root()) {
        Some(Reach::Principal)
    } else if names_account {
        Some(Reach::Account)
    } else {
        None
    }
}

impl Statement {
    /// Whether the statement applies to `request`, and how it names the principal.
    fn reaches(&self, request: &Request<'_>) -> Option<Reach> {
        let reach = match &self.principals {
            None => Reach::Principal,
            Some((principals, false)) => principal_reach(principals, request.principal)?,
            // NotPrincipal exempts only whom it names exactly: naming the
            // account's root exempts the root, not every user of the account.
            Some((principals, true)) => match principal_reach(principals, request.principal) {
                Some(Reach::Principal) => return None,
                Some(Reach::Account) | None => Reach::Principal,
            },
        };
        let (actions, not_action) = &self.actions;
        if actions.iter().any(|a| glob(a, request.action, true)) == *not_action {
            return None;
        }
        if let Some((resources, not_resource)) = &self.resources
            && resources.iter().any(|r| glob(r, request.resource, false)) == *not_resource
        {
            return None;
        }
        self.conditions.iter().all(|c| c.holds(request.context)).then_some(reach)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::policy::RequestContext;

    const ACCOUNT: &str = "111122223333";

    fn user(name: &str) -> Principal {
        Principal::user(ACCOUNT, name)
    }

    fn verdict(policy: &Policy, who: &Principal, action: &str, resource: &str, context: &RequestContext) -> Verdict {
        policy.evaluate(&Request { principal: who, action, resource, context })
    }

    #[test]
    fn key_policies_delegate_through_the_account_root_and_deny_wins() {
        let policy = Policy::resource(
            &json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")}, "Action": "kms:*", "Resource": "*"},
                {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:user/alice")},
                 "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
                 "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}},
                {"Effect": "Deny", "Principal": "*", "Action": "kms:ScheduleKeyDeletion", "Resource": "*"},
            ]})
            .to_string(),
        )
        .unwrap();
        let mut via_s3 = RequestContext::default();
        via_s3.set("kms:ViaService", "s3.us-east-1.amazonaws.com");
        let none = RequestContext::default();
        let alice = user("alice");
        let v = verdict(&policy, &alice, "kms:GenerateDataKey", "k", &via_s3);
        assert!(v.allowed && !v.denied);
        let v = verdict(&policy, &alice, "kms:GenerateDataKey", "k", &none);
        assert!(!v.allowed && v.allowed_for_account, "without S3 only the IAM delegation remains");
        let root = Principal::root(ACCOUNT);
        assert!(verdict(&policy, &root, "kms:Encrypt", "k", &none).allowed, "the account root is the account");
        assert!(verdict(&policy, &root, "kms:ScheduleKeyDeletion", "k", &none).denied);
        let stranger = Principal::root("444455556666");
        assert_eq!(verdict(&policy, &stranger, "kms:Encrypt", "k", &none), Verdict::default());
    }

    #[test]
    fn not_elements_invert_their_match() {
        let policy = Policy::identity(
            &json!({"Statement": [
                {"Effect": "Allow", "NotAction": "s3:Delete*", "Resource": "arn:aws:s3:::data/*"},
                {"Effect": "Deny", "Action": "s3:*", "NotResource": ["arn:aws:s3:::data", "arn:aws:s3:::data/*"]},
            ]})
            .to_string(),
        )
        .unwrap();
        let (bob, cx) = (user("bob"), RequestContext::default());
        assert!(verdict(&policy, &bob, "s3:GetObject", "arn:aws:s3:::data/x", &cx).allowed);
        assert!(!verdict(&policy, &bob, "s3:DeleteObject", "arn:aws:s3:::data/x", &cx).allowed);
        assert!(verdict(&policy, &bob, "s3:GetObject", "arn:aws:s3:::other/x", &cx).denied);
    }

    #[test]
    fn trust_policies_name_who_may_assume() {
        let trust = Policy::trust(
            &json!({"Statement": [
                {"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sts:AssumeRole"},
                {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:user/ops")}, "Action": "sts:AssumeRole"},
            ]})
            .to_string(),
        )
        .unwrap();
        let cx = RequestContext::default();
        let s3 = Principal { service: Some("s3.amazonaws.com".into()), ..Principal::root(ACCOUNT) };
        assert!(verdict(&trust, &s3, "sts:AssumeRole", "r", &cx).allowed);
        assert!(verdict(&trust, &user("ops"), "sts:AssumeRole", "r", &cx).allowed);
        assert!(!verdict(&trust, &user("dev"), "sts:AssumeRole", "r", &cx).allowed);
        assert_eq!(trust.named_principals(), [format!("arn:aws:iam::{ACCOUNT}:user/ops")]);
    }

    #[test]
    fn malformed_documents_say_why() {
        let cases = [
            ("not json", "invalid Json"),
            (r#"{"Statement": []}"#, "non-empty Statement"),
            (
                r#"{"Version": "2020-01-01", "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}"#,
                "version",
            ),
            (r#"{"Statement": {"Effect": "Maybe", "Action": "s3:*", "Resource": "*"}}"#, "Effect"),
            (r#"{"Statement": {"Effect": "Allow", "Action": "GetObject", "Resource": "*"}}"#, "vendor"),
            (r#"{"Statement": {"Effect": "Allow", "Action": "s3:*"}}"#, "resources"),
            (r#"{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}}"#, "principal"),
            (
                r#"{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condtion": {"Bool": {"aws:SecureTransport": "true"}}}}"#,
                "unknown element: Condtion",
            ),
            (r#"{"Statment": [], "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}"#, "Statment"),
            (r#"{"Statement": {"Sid": 1, "Effect": "Allow", "Action": "s3:*", "Resource": "*"}}"#, "SID"),
            (
                r#"{"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::b/${aws:username}/*"}}"#,
                "variables",
            ),
        ];
        for (text, reason) in cases {
            let e = Policy::identity(text).unwrap_err();
            assert!(e.0.contains(reason), "{text}: {e}");
        }
        let bad_principal =
            r#"{"Statement": {"Effect": "Allow", "Principal": {"AWS": "bob"}, "Action": "kms:*", "Resource": "*"}}"#;
        assert!(Policy::resource(bad_principal).unwrap_err().0.contains("invalid principals"));
    }
}
