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
