//! Wildcard matching as IAM does it: `*` is any run of characters, `?` any
//! one character; actions compare case-insensitively, resources do not.

/// Whether `text` matches `pattern`, with `*` and `?` wildcards.
#[must_use]
pub fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let fold = |s: &str| -> Vec<char> {
        if ignore_case { s.chars().flat_map(char::to_lowercase).collect() } else { s.chars().collect() }
    };
    let (p, t) = (fold(pattern), fold(text));
    // Iterative matcher with one backtrack point: linear for IAM's patterns.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(c) if *c == '?' || *c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(glob("kms:*", "kms:Decrypt", true));
        assert!(glob("KMS:GENERATEDATAKEY*", "kms:GenerateDataKeyWithoutPlaintext", true));
        assert!(glob("kms:ReEncrypt?rom", "kms:ReEncryptFrom", true));
        assert!(!glob("kms:Encrypt", "kms:Decrypt", true));
        assert!(glob("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b", false));
        assert!(!glob("arn:aws:s3:::Bucket/*", "arn:aws:s3:::bucket/a", false));
        assert!(glob("*", "", false));
        assert!(glob("a*b*c", "aXXbYYc", false));
        assert!(!glob("a*b*c", "aXXbYY", false));
        assert!(glob("arn:aws:kms:*:111122223333:key/mrk-*", "arn:aws:kms:eu-west-1:111122223333:key/mrk-1", false));
    }
}
