//! Key and alias identifiers as AWS writes them, and how a `KeyId`
//! parameter (key id, key ARN, alias name or alias ARN) is read.

use crate::error::{KmsError, KmsResult};

/// A `KeyId` parameter, parsed but not yet resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// A key id, or a key ARN of this region and account.
    Key(String),
    /// An alias name (`alias/…`), or an alias ARN of this region and account.
    Alias(String),
}

/// A new key id: a lowercase UUID, or `mrk-` and 32 hex digits for a
/// multi-region key.
#[must_use]
pub fn new_key_id(multi_region: bool) -> String {
    let id = uuid::Uuid::new_v4();
    if multi_region { format!("mrk-{}", id.simple()) } else { id.hyphenated().to_string() }
}

/// Whether `id` has the shape of a key id.
#[must_use]
pub fn is_key_id(id: &str) -> bool {
    match id.strip_prefix("mrk-") {
        Some(hex) => hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        None => uuid::Uuid::try_parse(id).is_ok_and(|u| u.hyphenated().to_string() == id),
    }
}

#[must_use]
pub fn is_multi_region(id: &str) -> bool {
    id.starts_with("mrk-")
}

#[must_use]
pub fn key_arn(region: &str, account: &str, id: &str) -> String {
    format!("arn:aws:kms:{region}:{account}:key/{id}")
}

#[must_use]
pub fn alias_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:kms:{region}:{account}:{name}")
}

/// Reads a `KeyId` parameter as given to this `region` and `account`.
/// ARNs of another region are refused as AWS refuses them.
pub fn parse_key_ref(value: &str, region: &str, account: &str) -> KmsResult<KeyRef> {
    let Some(arn) = value.strip_prefix("arn:") else {
        if value.starts_with("alias/") {
            return Ok(KeyRef::Alias(value.to_owned()));
        }
        return if is_key_id(value) { Ok(KeyRef::Key(value.to_owned())) } else { Err(KmsError::invalid_key_id(value)) };
    };
    let fields: Vec<&str> = arn.splitn(5, ':').collect();
    let [partition, "kms", arn_region, arn_account, resource] = fields[..] else {
        return Err(KmsError::invalid_arn(format!("Invalid arn {value}")));
    };
    if !partition.starts_with("aws") {
        return Err(KmsError::invalid_arn(format!("Invalid arn {value}")));
    }
    if arn_region != region {
        return Err(KmsError::invalid_arn_region(arn_region));
    }
    if arn_account != account {
        return Err(KmsError::not_found(format!("Invalid arn {value}")));
    }
    if let Some(id) = resource.strip_prefix("key/").filter(|id| is_key_id(id)) {
        Ok(KeyRef::Key(id.to_owned()))
    } else if resource.starts_with("alias/") {
        Ok(KeyRef::Alias(resource.to_owned()))
    } else {
        Err(KmsError::invalid_arn(format!("Invalid arn {value}")))
    }
}

/// Reads a `KeyId` of an operation that takes no alias (key id or key ARN).
pub fn parse_key_only(value: &str, region: &str, account: &str) -> KmsResult<String> {
    match parse_key_ref(value, region, account)? {
        KeyRef::Key(id) => Ok(id),
        KeyRef::Alias(_) => Err(KmsError::invalid_key_id(value)),
    }
}

/// Checks an alias name for CreateAlias: `alias/` prefix, AWS's pattern,
/// and not in the reserved `alias/aws/` space.
pub fn validate_alias_name(name: &str) -> KmsResult<()> {
    let pattern_ok = name.len() <= 256 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b":/_-".contains(&b));
    if !pattern_ok {
        return Err(KmsError::constraint(
            "aliasName",
            name,
            "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
        ));
    }
    if !name.starts_with("alias/") || name.len() == "alias/".len() {
        // What AWS answers, a validation error, not InvalidAliasNameException.
        return Err(KmsError::validation(
            "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html",
        ));
    }
    if name.starts_with("alias/aws/") {
        return Err(KmsError::invalid_alias_name(format!("Alias {name} cannot begin with reserved prefix alias/aws/")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "000000000000";

    #[test]
    fn new_ids_have_aws_shapes() {
        let regional = new_key_id(false);
        let mrk = new_key_id(true);
        assert_eq!((regional.len(), mrk.len()), (36, 36));
        assert!(is_key_id(&regional) && is_key_id(&mrk));
        assert!(is_multi_region(&mrk) && !is_multi_region(&regional));
        assert!(!is_key_id("mrk-XYZ") && !is_key_id("1234") && !is_key_id(&regional.to_uppercase()));
    }

    #[test]
    fn key_refs_resolve_only_in_their_region() {
        let id = "mrk-0123456789abcdef0123456789abcdef";
        let parse = |v: &str| parse_key_ref(v, "eu-west-1", ACCOUNT);
        assert_eq!(parse(id).unwrap(), KeyRef::Key(id.into()));
        assert_eq!(parse(&key_arn("eu-west-1", ACCOUNT, id)).unwrap(), KeyRef::Key(id.into()));
        assert_eq!(parse("alias/app").unwrap(), KeyRef::Alias("alias/app".into()));
        assert_eq!(parse(&alias_arn("eu-west-1", ACCOUNT, "alias/app")).unwrap(), KeyRef::Alias("alias/app".into()));
        let other = parse(&key_arn("us-east-1", ACCOUNT, id)).unwrap_err();
        assert_eq!((other.code, other.message.as_str()), ("NotFoundException", "Invalid arn us-east-1"));
        assert_eq!(parse("nonsense").unwrap_err().message, "Invalid keyId 'nonsense'");
        assert_eq!(parse("arn:aws:s3:::b").unwrap_err().code, "InvalidArnException");
        assert!(parse_key_only("alias/app", "eu-west-1", ACCOUNT).is_err());
    }

    #[test]
    fn alias_names_follow_aws_rules() {
        assert!(validate_alias_name("alias/my-key_1:x/y").is_ok());
        assert_eq!(validate_alias_name("my-key").unwrap_err().code, "ValidationException");
        assert_eq!(validate_alias_name("alias/").unwrap_err().code, "ValidationException");
        assert_eq!(validate_alias_name("alias/aws/s3").unwrap_err().code, "InvalidAliasNameException");
        assert_eq!(validate_alias_name("alias/a b").unwrap_err().code, "ValidationException");
    }
}
