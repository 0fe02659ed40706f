//! The region root key: 32 random bytes that seal every key of the region.
//! Generated on first start into a 0600 file in the region's data directory,
//! or derived per region from the key in `TERN_ROOT_KEY_FILE`.

use std::path::Path;

use anyhow::{Context as _, bail};
use tern_crypto::{Key256, wrap};

pub const ROOT_KEY_FILE_ENV: &str = "TERN_ROOT_KEY_FILE";
const FILE_NAME: &str = "root.key";

/// This region's root key. Regions never share one: a key supplied through
/// the environment is a deployment key from which each region derives its own.
pub fn load_or_create(region_dir: &Path, region: &str) -> anyhow::Result<Key256> {
    let path = region_dir.join(FILE_NAME);
    if std::env::var(ROOT_KEY_FILE_ENV).is_ok() || path.exists() {
        return load(region_dir, region);
    }
    let key = Key256::random()?;
    if crate::private_file::publish(&path, key.expose())? {
        Ok(key)
    } else {
        // Another front-end of the region made it a moment ago.
        load(region_dir, region)
    }
}

/// This region's root key, which must exist already (for tools that read
/// what the region sealed, such as `tern audit verify`).
pub fn load(region_dir: &Path, region: &str) -> anyhow::Result<Key256> {
    if let Ok(path) = std::env::var(ROOT_KEY_FILE_ENV) {
        let deployment_key = read_key(Path::new(&path))?;
        return Ok(wrap::derive(&deployment_key, format!("tern/region-root/{region}").as_bytes()));
    }
    read_key(&region_dir.join(FILE_NAME))
}

fn read_key(path: &Path) -> anyhow::Result<Key256> {
    crate::private_file::ensure_private(path)?;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read root key {}", path.display()))?;
    match Key256::from_slice(&bytes) {
        Some(key) => Ok(key),
        None => bail!("root key {} must be exactly 32 bytes, found {}", path.display(), bytes.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn generated_once_private_and_stable() {
        if std::env::var(ROOT_KEY_FILE_ENV).is_ok() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), "us-east-1").unwrap();
        let second = load_or_create(dir.path(), "us-east-1").unwrap();
        assert_eq!(first.expose(), second.expose());
        let mode = std::fs::metadata(dir.path().join(FILE_NAME)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::set_permissions(dir.path().join(FILE_NAME), std::fs::Permissions::from_mode(0o640)).unwrap();
        let refused = load_or_create(dir.path(), "us-east-1").unwrap_err().to_string();
        assert!(refused.contains("chmod 600"), "{refused}");
        std::fs::write(dir.path().join(FILE_NAME), b"short").unwrap();
        std::fs::set_permissions(dir.path().join(FILE_NAME), std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(load_or_create(dir.path(), "us-east-1").is_err());
    }
}
