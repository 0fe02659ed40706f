use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;

/// Creates `path` with mode 0600 (refusing to overwrite) and makes its
/// contents durable: for secrets written once on first start.
pub fn create(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut file =
        tern_store::private::create_new(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}

/// Refuses a secret that anyone but its owner may read or write, saying how
/// to fix it: a key another user could read is no longer a secret.
pub fn ensure_private(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.permissions().mode();
    let open_to_others = mode & 0o077;
    anyhow::ensure!(
        open_to_others == 0,
        "{} is open to other users (mode {:o}); run: chmod 600 {}",
        path.display(),
        mode & 0o777,
        path.display()
    );
    Ok(())
}
