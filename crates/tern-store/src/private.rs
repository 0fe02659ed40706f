//! Files and directories only the server's user may read: object bytes,
//! metadata (tags, key metadata) and sealed keys are nobody else's business,
//! whatever the process umask says.

use std::io;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

/// Creates `path` and its missing parents with mode 0700, and narrows
/// `path` itself to 0700 if it already existed (older installs).
pub fn dir_all(path: &Path) -> io::Result<()> {
    new_dirs(path)?;
    restrict(path, DIR_MODE)
}

/// Creates `path` and its missing parents with mode 0700; an existing
/// directory is left as it is (for hot paths inside a private tree).
pub fn new_dirs(path: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(DIR_MODE).create(path)
}

/// Creates a new file at `path`, readable and writable by its owner only.
pub fn create_new(path: &Path) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).create_new(true).mode(FILE_MODE).open(path)
}

/// Opens `path`, creating it readable and writable by its owner only.
pub fn open_or_create(path: &Path) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(FILE_MODE).open(path)
}

/// Narrows an existing file to 0600; a missing file is left alone.
pub fn restrict_file(path: &Path) -> io::Result<()> {
    match restrict(path, FILE_MODE) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn restrict(path: &Path, mode: u32) -> io::Result<()> {
    let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if current & !mode != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(current & mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn everything_is_private_to_the_owner() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        dir_all(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("f");
        create_new(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        restrict_file(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        restrict_file(&dir.join("missing")).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir_all(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }
}
