//! Root credentials of a deployment: from the environment, or generated once
//! and kept in a 0600 file under the data directory.

use std::path::Path;

use anyhow::Context as _;

pub const ACCESS_KEY_ENV: &str = "TERN_ROOT_ACCESS_KEY_ID";
pub const SECRET_KEY_ENV: &str = "TERN_ROOT_SECRET_ACCESS_KEY";
const FILE_NAME: &str = "root-credentials";

#[derive(Clone)]
pub struct RootCredentials {
    pub access_key_id: String,
    pub secret_access_key: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for RootCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// Where the credentials came from, so start-up can tell the user once.
pub enum Origin {
    Environment,
    Existing(std::path::PathBuf),
    Generated(std::path::PathBuf),
}

impl RootCredentials {
    /// The credentials `tern up` would use, without making any: the
    /// environment's, else the saved file's (`None` if neither).
    pub fn load_existing(data_dir: &Path) -> anyhow::Result<Option<Self>> {
        let from_environment = std::env::var(ACCESS_KEY_ENV).is_ok() && std::env::var(SECRET_KEY_ENV).is_ok();
        if !from_environment && !data_dir.join(FILE_NAME).exists() {
            return Ok(None);
        }
        Self::load_or_create(data_dir).map(|(creds, _)| Some(creds))
    }

    /// Environment first; else the saved file; else new ones, saved with mode 0600.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<(Self, Origin)> {
        if let (Ok(access_key_id), Ok(secret_access_key)) =
            (std::env::var(ACCESS_KEY_ENV), std::env::var(SECRET_KEY_ENV))
        {
            let secret_access_key = zeroize::Zeroizing::new(secret_access_key);
            return Ok((Self { access_key_id, secret_access_key }, Origin::Environment));
        }
        let path = data_dir.join(FILE_NAME);
        if path.exists() {
            crate::private_file::ensure_private(&path)?;
        }
        if let Ok(text) = std::fs::read_to_string(&path).map(zeroize::Zeroizing::new) {
            let (access_key_id, secret_access_key) = text
                .trim()
                .split_once(':')
                .with_context(|| format!("{} is malformed; delete it to generate new credentials", path.display()))?;
            let creds = Self {
                access_key_id: access_key_id.to_owned(),
                secret_access_key: zeroize::Zeroizing::new(secret_access_key.to_owned()),
            };
            return Ok((creds, Origin::Existing(path)));
        }
        let creds = Self::generate();
        tern_store::private::dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
        let line = zeroize::Zeroizing::new(format!("{}:{}\n", creds.access_key_id, creds.secret_access_key.as_str()));
        if crate::private_file::publish(&path, line.as_bytes())? {
            Ok((creds, Origin::Generated(path)))
        } else {
            // Another front-end made them a moment ago.
            Self::load_or_create(data_dir)
        }
    }

    fn generate() -> Self {
        use rand::RngExt as _;
        const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut rng = rand::rng();
        let mut pick = |alphabet: &[u8], n: usize| -> String {
            (0..n).map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())])).collect()
        };
        Self {
            access_key_id: format!("AKIA{}", pick(UPPER, 16)),
            secret_access_key: zeroize::Zeroizing::new(pick(SECRET, 40)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn generated_once_then_reused_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        // Only meaningful when the environment does not override.
        if std::env::var(ACCESS_KEY_ENV).is_ok() {
            return;
        }
        let (first, origin) = RootCredentials::load_or_create(dir.path()).unwrap();
        assert!(matches!(origin, Origin::Generated(_)));
        assert!(first.access_key_id.starts_with("AKIA") && first.access_key_id.len() == 20);
        let mode = std::fs::metadata(dir.path().join(FILE_NAME)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (second, origin) = RootCredentials::load_or_create(dir.path()).unwrap();
        assert!(matches!(origin, Origin::Existing(_)));
        assert_eq!(first.secret_access_key.as_str(), second.secret_access_key.as_str());
        assert!(!format!("{first:?}").contains(first.secret_access_key.as_str()));
    }
}
