//! Naming rules shared by every layer: regions, accounts, buckets, object keys.

/// `^([a-z]+-){2,3}\d+$`, the pattern KMS uses for `ReplicaRegion`.
#[must_use]
pub fn is_valid_region_name(name: &str) -> bool {
    let mut parts = name.split('-').collect::<Vec<_>>();
    let Some(number) = parts.pop() else {
        return false;
    };
    (2..=3).contains(&parts.len())
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
        && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
}

/// Twelve ASCII digits.
#[must_use]
pub fn is_valid_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

/// General-purpose bucket naming rules (3–63 chars of `a-z0-9.-`, starting and
/// ending with a letter or digit, no `..`, not an IP address, no reserved
/// prefixes or suffixes).
#[must_use]
pub fn is_valid_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let charset_ok = bytes.iter().all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let edges_ok =
        bytes.first().is_some_and(u8::is_ascii_alphanumeric) && bytes.last().is_some_and(u8::is_ascii_alphanumeric);
    let reserved = ["xn--", "sthree-", "amzn-s3-demo-"].iter().any(|p| name.starts_with(p))
        || ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"].iter().any(|s| name.ends_with(s));
    (3..=63).contains(&name.len())
        && charset_ok
        && edges_ok
        && !name.contains("..")
        && name.parse::<std::net::Ipv4Addr>().is_err()
        && !reserved
}

/// The longest object key S3 accepts, in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1024;

/// Object keys are any UTF-8 up to 1024 bytes. Keys are never used as file
/// paths (blobs are named by random ids), so `../` is just text; NUL and other
/// C0 controls except tab/newline cannot be carried in XML listings and are
/// refused.
#[must_use]
pub fn is_valid_object_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY_BYTES
        && !key.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names() {
        for ok in ["us-east-1", "eu-west-1", "ap-southeast-2", "us-gov-west-1"] {
            assert!(is_valid_region_name(ok), "{ok}");
        }
        for bad in ["", "us", "us-east", "US-east-1", "us-east-1a", "a-b-c-d-1", "us--1"] {
            assert!(!is_valid_region_name(bad), "{bad}");
        }
    }

    #[test]
    fn bucket_names() {
        for ok in ["abc", "my-bucket.2026", "a".repeat(63).as_str()] {
            assert!(is_valid_bucket_name(ok), "{ok}");
        }
        for bad in
            ["ab", "Abc", "a_b", "-ab", "ab-", "a..b", "192.168.1.1", "xn--abc", "a".repeat(64).as_str(), "b-s3alias"]
        {
            assert!(!is_valid_bucket_name(bad), "{bad}");
        }
    }

    #[test]
    fn object_keys() {
        assert!(is_valid_object_key("../../etc/passwd"));
        assert!(is_valid_object_key("dir/ünïcødé 🎉"));
        assert!(!is_valid_object_key("a\0b"));
        assert!(!is_valid_object_key(""));
        assert!(!is_valid_object_key(&"k".repeat(1025)));
    }
}
