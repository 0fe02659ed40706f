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

/// Creates `path` with `contents` whole, or finds it there already: the
/// bytes are written and synced under a temporary name and then linked into
/// place, so a process starting beside this one (another front-end on a
/// shared data directory) reads either nothing or all of them. Returns
/// whether this call made the file.
pub fn publish(path: &Path, contents: &[u8]) -> anyhow::Result<bool> {
    let mut temp = path.as_os_str().to_owned();
    temp.push(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    let temp = std::path::PathBuf::from(temp);
    create(&temp, contents)?;
    let linked = std::fs::hard_link(&temp, path);
    std::fs::remove_file(&temp).with_context(|| format!("cannot remove {}", temp.display()))?;
    match linked {
        Ok(()) => {
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir).and_then(|d| d.sync_all())?;
            }
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
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
