//! Where the lab keeps what it builds and runs: `$LAB_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/kernel-race-lab`, else `~/.cache/kernel-race-lab`.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    if let Some(dir) = std::env::var_os("LAB_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("kernel-race-lab")
}

/// A subdirectory of the cache, created if missing.
pub fn dir(name: &str) -> Result<PathBuf> {
    let dir = root().join(name);
    std::fs::create_dir_all(&dir).with_context(|| format!("create cache dir {}", dir.display()))?;
    Ok(dir)
}

/// Write `bytes` to `path` so that readers never see a partial file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))
}
