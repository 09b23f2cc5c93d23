//! A cache that stays bounded. What the cache holds, by kind, and what each entry costs on
//! disk; and eviction of the least recently used entries of the kinds that can be made
//! again (kernels, guest snapshots, object trees, bisections) until the whole cache fits a
//! limit. Never evicted: an entry used since a given time (what the running night needs), an
//! entry whose lock another lab process holds, and the kinds that are not copies of anything
//! (work trees and sources are the trees builds start from; runs and nights are results).

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// How a kind's entries lie under its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Each directory under it is one entry.
    Children,
    /// `<slug>/obj-*`: the object trees of each source's work area.
    ObjectTrees,
}

/// The kinds eviction may remove: (kind, directory under the cache root, layout, the lock a
/// user of an entry holds, relative to the entry's parent: `{}` is the entry's name).
const EVICTABLE: &[(&str, &str, Layout, Option<&str>)] = &[
    ("kernels", "kernels", Layout::Children, None),
    ("snapshots", "snapshots", Layout::Children, Some("{}.lock")),
    ("object trees", "trees", Layout::ObjectTrees, Some("lock")),
    (
        "bisections",
        "bisect",
        Layout::Children,
        Some("{}/bisect.lock"),
    ),
];

/// One evictable entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: &'static str,
    pub path: PathBuf,
    pub bytes: u64,
    pub used: SystemTime,
    lock: Option<PathBuf>,
}

/// What the cache holds: its evictable entries, and every top-level directory with its size.
#[derive(Debug, Default)]
pub struct Usage {
    pub root: PathBuf,
    pub entries: Vec<Entry>,
    /// (top-level directory, bytes), largest first.
    pub dirs: Vec<(String, u64)>,
    pub total: u64,
}

impl Usage {
    /// (kind, entries, bytes) of the evictable kinds, in the table's order.
    pub fn by_kind(&self) -> Vec<(&'static str, usize, u64)> {
        EVICTABLE
            .iter()
            .map(|(kind, ..)| {
                let of: Vec<&Entry> = self.entries.iter().filter(|e| e.kind == *kind).collect();
                (*kind, of.len(), of.iter().map(|e| e.bytes).sum())
            })
            .collect()
    }
}

/// Bytes on disk under `path` (blocks, so a sparse file counts what it holds); symbolic
/// links are not followed.
pub fn disk_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    walkdir::WalkDir::new(path)
        .follow_links(false)
        .into_iter()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.blocks() * 512)
        .sum()
}

/// A name of a directory being made or left by an interrupted writer: never an entry.
fn transient(name: &str) -> bool {
    name.starts_with('.') || name.contains(".tmp-")
}

/// What the cache at `root` holds.
pub fn usage(root: &Path) -> Usage {
    let mut entries = Vec::new();
    for &(kind, dir, layout, lock) in EVICTABLE {
        let base = root.join(dir);
        let parents: Vec<PathBuf> = match layout {
            Layout::Children => vec![base],
            Layout::ObjectTrees => subdirs(&base),
        };
        for parent in parents {
            for path in subdirs(&parent) {
                let name = path
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                if transient(&name) || (layout == Layout::ObjectTrees && !name.starts_with("obj-"))
                {
                    continue;
                }
                entries.push(Entry {
                    kind,
                    bytes: disk_bytes(&path),
                    used: super::last_used(&path),
                    lock: lock.map(|l| parent.join(l.replace("{}", &name))),
                    path,
                });
            }
        }
    }
    let mut dirs: Vec<(String, u64)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                disk_bytes(&e.path()),
            )
        })
        .collect();
    dirs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Usage {
        root: root.to_path_buf(),
        total: dirs.iter().map(|(_, b)| b).sum(),
        entries,
        dirs,
    }
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// What one eviction did.
#[derive(Debug, Default)]
pub struct Evicted {
    pub removed: Vec<Entry>,
    pub before: u64,
    pub after: u64,
    /// Bytes of evictable entries kept because they were in use (used since the time given,
    /// or locked by another lab process) while the cache was still over its limit.
    pub kept_in_use: u64,
}

/// Remove the least recently used evictable entries of the cache at `root` until it holds at
/// most `limit` bytes; never one used at or after `keep_since`, never one whose lock is held.
pub fn evict(root: &Path, limit: u64, keep_since: SystemTime) -> Result<Evicted> {
    let usage = usage(root);
    let mut out = Evicted {
        before: usage.total,
        after: usage.total,
        ..Default::default()
    };
    let mut entries = usage.entries;
    entries.sort_by_key(|e| e.used);
    for e in entries {
        if out.after <= limit {
            break;
        }
        if e.used >= keep_since {
            out.kept_in_use += e.bytes;
            continue;
        }
        // The lock its users hold, taken for the removal: an entry in use is left alone.
        let _held = match &e.lock {
            Some(lock) if lock.parent().is_some_and(Path::is_dir) => {
                match super::lock(lock, false) {
                    Ok(held) => Some(held),
                    Err(_) => {
                        out.kept_in_use += e.bytes;
                        continue;
                    }
                }
            }
            _ => None,
        };
        std::fs::remove_dir_all(&e.path).with_context(|| format!("evict {}", e.path.display()))?;
        if e.kind == "object trees" {
            let _ = std::fs::remove_file(e.path.with_extension("build.log"));
        }
        out.after = out.after.saturating_sub(e.bytes);
        out.removed.push(e);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A cache with an entry of each kind, `mib` MiB each, used `age` ago.
    fn entry(root: &Path, rel: &str, mib: usize, age: Duration) -> PathBuf {
        let dir = root.join(rel);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("data"), vec![1u8; mib << 20]).unwrap();
        crate::cache::touch(&dir);
        let when = SystemTime::now() - age;
        let f = std::fs::File::options()
            .write(true)
            .open(dir.join(super::super::USED))
            .unwrap();
        f.set_modified(when).unwrap();
        dir
    }

    const HOUR: Duration = Duration::from_secs(3600);

    /// Under a small limit the oldest entries go first, of every evictable kind, until the
    /// cache fits; what was used since the night started stays even when the cache is still
    /// over the limit; a locked entry stays; work trees, runs and nights are never touched.
    #[test]
    fn eviction_removes_the_least_recently_used_and_never_what_the_night_needs() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let old_kernel = entry(root, "kernels/k-old", 2, 10 * HOUR);
        let old_obj = entry(root, "trees/git-a/obj-111", 2, 9 * HOUR);
        std::fs::write(root.join("trees/git-a/obj-111.build.log"), "log").unwrap();
        let snapshot = entry(root, "snapshots/s1", 2, 8 * HOUR);
        let bisection = entry(root, "bisect/b1", 2, 7 * HOUR);
        let tonight_kernel = entry(root, "kernels/k-tonight", 2, Duration::ZERO);
        let work_tree = entry(root, "trees/git-a/src", 2, 20 * HOUR);
        let runs = entry(root, "runs/r1", 2, 20 * HOUR);
        let nights = entry(root, "nights/n1", 2, 20 * HOUR);
        let locked = entry(root, "snapshots/s-locked", 2, 30 * HOUR);
        let _held = crate::cache::lock(&root.join("snapshots/s-locked.lock"), false).unwrap();
        let tmp_kernel = entry(root, "kernels/k.tmp-42", 2, 40 * HOUR);

        let usage = usage(root);
        assert_eq!(usage.entries.len(), 6, "{:?}", usage.entries);
        let kinds = usage.by_kind();
        assert_eq!(kinds[0].0, "kernels");
        assert_eq!(kinds[0].1, 2);
        let night_started = SystemTime::now() - HOUR;
        // Ten entries of 2 MiB and room for eight: the oldest, the locked snapshot, stays;
        // the old kernel and the old object tree (with its log) go, in that order of age.
        let limit = 17 << 20;
        let out = evict(root, limit, night_started).unwrap();
        let removed: Vec<&Path> = out.removed.iter().map(|e| e.path.as_path()).collect();
        assert_eq!(
            removed,
            [old_kernel.as_path(), old_obj.as_path()],
            "{out:?}"
        );
        assert!(!root.join("trees/git-a/obj-111.build.log").exists());
        assert!(locked.is_dir() && snapshot.is_dir() && bisection.is_dir());
        assert!(out.after <= limit, "{out:?}");
        // A limit nothing fits: everything old goes, what tonight used stays and is counted.
        let out = evict(root, 0, night_started).unwrap();
        assert_eq!(out.removed.len(), 2, "{out:?}");
        assert!(!snapshot.exists() && !bisection.exists());
        assert!(tonight_kernel.is_dir() && locked.is_dir());
        assert!(out.kept_in_use >= 4 << 20, "{out:?}");
        for kept in [&work_tree, &runs, &nights, &tmp_kernel] {
            assert!(kept.is_dir(), "{}", kept.display());
        }
    }
}
