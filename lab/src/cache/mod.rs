//! Where the lab keeps what it builds and runs: `$LAB_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/kernel-race-lab`, else `~/.cache/kernel-race-lab`.

pub mod evict;

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The file whose time says when a cache entry was last used (what eviction orders by).
const USED: &str = ".lab-used";

/// Mark the cache entry `dir` as used now. Best effort: an entry that cannot be marked is
/// only older to eviction.
pub fn touch(dir: &Path) {
    if dir.is_dir() {
        let _ = crate::files::write(dir.join(USED), b"");
    }
}

/// When the cache entry `dir` was last used: its mark, else when it was last changed.
pub fn last_used(dir: &Path) -> std::time::SystemTime {
    std::fs::metadata(dir.join(USED))
        .or_else(|_| std::fs::metadata(dir))
        .and_then(|m| m.modified())
        .unwrap_or(std::time::UNIX_EPOCH)
}

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

/// A timestamp for directory names (RFC 3339, seconds, no colons).
pub fn stamp() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "")
}

/// A new directory `parent/name`, created here and by nobody else (`name-2`, `name-3`...
/// when another lab took the name first, in the same second say).
pub fn fresh_dir(parent: &Path, name: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    for n in 1.. {
        let dir = match n {
            1 => parent.join(name),
            n => parent.join(format!("{name}-{n}")),
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("create {}", dir.display())),
        }
    }
    unreachable!("an unbounded range ends")
}

/// A new run directory under the cache's `runs/`, named after what runs there.
pub fn run_dir(kind: &str) -> Result<PathBuf> {
    fresh_dir(&root().join("runs"), &format!("{kind}-{}", stamp()))
}

/// Where a command's runs go: `out` when the user named one (new or empty), else a new run
/// directory named after `kind`.
pub fn out_or_run_dir(out: Option<PathBuf>, kind: &str) -> Result<PathBuf> {
    match out {
        Some(dir) => empty_dir(&dir),
        None => run_dir(kind),
    }
}

/// A directory the user named for new results: created if missing; refused when it already
/// holds something (results are never written over earlier ones).
pub fn empty_dir(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let used = std::fs::read_dir(dir)
        .with_context(|| format!("read {}", dir.display()))?
        .next()
        .is_some();
    if used {
        anyhow::bail!(
            "{} is not empty: the lab writes new results only into a new or empty directory; \
             choose another --out",
            dir.display()
        );
    }
    Ok(dir.to_path_buf())
}

/// An exclusive lock on `path` (created if missing), held until the value is dropped;
/// waits for another holder when `wait`, else fails naming the file.
pub fn lock(path: &Path, wait: bool) -> Result<nix::fcntl::Flock<std::fs::File>> {
    use nix::fcntl::{Flock, FlockArg};
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("open lock {}", path.display()))?;
    // Free: taken at once. Held by another lab: refused, or waited for with a word first.
    let file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => return Ok(lock),
        Err((file, nix::errno::Errno::EWOULDBLOCK)) if wait => file,
        Err((file, e)) => return Err(lock_error(path, (file, e))),
    };
    crate::events::note(format!(
        "waiting for {} (lock {}): another build of this lab, or another lab process, holds it",
        path.parent().unwrap_or(path).display(),
        path.display()
    ));
    // Tried again and again rather than blocked on, so that Ctrl-C still ends the wait.
    let mut file = file;
    loop {
        crate::interrupt::check()?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((back, nix::errno::Errno::EWOULDBLOCK)) => file = back,
            Err(e) => return Err(lock_error(path, e)),
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// What a lock that could not be taken says: who holds it, or the system's error.
fn lock_error(path: &Path, (_, e): (std::fs::File, nix::errno::Errno)) -> anyhow::Error {
    match e {
        nix::errno::Errno::EWOULDBLOCK => anyhow::anyhow!(
            "{} is in use by another lab process (lock {})",
            path.parent().unwrap_or(path).display(),
            path.display()
        ),
        e => anyhow::anyhow!("lock {}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fresh_directories_are_never_shared() {
        let dir = tempfile::tempdir().unwrap();
        let made: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| super::fresh_dir(dir.path(), "2026-11-28T010203Z").unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let distinct: std::collections::BTreeSet<_> = made.iter().collect();
        assert_eq!(distinct.len(), 8, "{made:?}");
        std::fs::write(made[0].join("results.json"), "{}").unwrap();
        let e = super::empty_dir(&made[0]).unwrap_err().to_string();
        assert!(e.contains("is not empty"), "{e}");
        assert!(super::empty_dir(&dir.path().join("new")).is_ok());
    }

    #[test]
    fn a_wait_for_a_held_lock_is_said_and_then_taken() {
        static SEEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        crate::events::install(|e| {
            if let crate::events::Event::Note(text) = e {
                SEEN.lock().unwrap().push(text.clone());
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let held = super::lock(&path, true).unwrap();
        let waiter = std::thread::spawn({
            let path = path.clone();
            move || super::lock(&path, true).map(drop)
        });
        let said = |seen: &Vec<String>| {
            seen.iter()
                .any(|t| t.contains("another build of this lab, or another lab process, holds it"))
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !said(&SEEN.lock().unwrap()) {
            assert!(
                std::time::Instant::now() < deadline,
                "the wait was never said"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        drop(held);
        waiter.join().unwrap().unwrap();
    }

    #[test]
    fn a_held_lock_is_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("batch.lock");
        let held = super::lock(&path, false).unwrap();
        let e = super::lock(&path, false).unwrap_err().to_string();
        assert!(e.contains("is in use by another lab process"), "{e}");
        drop(held);
        assert!(super::lock(&path, false).is_ok());
    }
}
