//! Patch series: what each patch touches, applying a series, and bringing a work tree to
//! "pristine + series" while rewriting only the files whose content changes (so make
//! rebuilds only what the series changed).

use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("{patch}: hunk #{hunk} ({header}) does not apply to {file}{at}")]
    Hunk {
        patch: String,
        hunk: usize,
        header: String,
        file: String,
        at: String,
    },
    #[error("{patch}: {message}")]
    Other { patch: String, message: String },
    #[error("{0}")]
    Io(String),
}

/// One `@@ ... @@` hunk header, per target file, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePatch {
    pub old: Option<String>,
    pub new: Option<String>,
    pub hunks: Vec<String>,
}

impl FilePatch {
    pub fn target(&self) -> &str {
        self.new.as_deref().or(self.old.as_deref()).unwrap_or("")
    }
}

fn strip_prefix(path: &str) -> Option<String> {
    let path = path.split('\t').next().unwrap_or(path).trim();
    if path == "/dev/null" {
        return None;
    }
    Some(
        path.split_once('/')
            .map(|(_, rest)| rest)
            .unwrap_or(path)
            .to_string(),
    )
}

/// The files a unified diff touches (with -p1 paths) and their hunk headers.
pub fn parse(text: &str) -> Vec<FilePatch> {
    let mut files: Vec<FilePatch> = Vec::new();
    let mut old: Option<Option<String>> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("--- ") {
            old = Some(strip_prefix(rest));
        } else if let (Some(rest), Some(o)) = (line.strip_prefix("+++ "), old.take()) {
            files.push(FilePatch {
                old: o,
                new: strip_prefix(rest),
                hunks: Vec::new(),
            });
        } else if line.starts_with("@@ ") {
            if let Some(f) = files.last_mut() {
                f.hunks.push(line.to_string());
            }
        }
    }
    files
}

/// sha256 of the patches' sha256s, in order: the series' identity.
pub fn series_hash(patches: &[PathBuf]) -> std::io::Result<String> {
    let mut outer = Sha256::new();
    for p in patches {
        outer.update(Sha256::digest(crate::files::read(p)?));
    }
    Ok(hex::encode(outer.finalize()))
}

/// How GNU patch reports trouble, and what the lab says instead.
enum Says {
    PatchingFile,
    HunkFailed,
    NoFile,
    Reversed,
    Malformed,
}

const PATCH_MESSAGES: &[(&str, Says)] = &[
    ("patching file ", Says::PatchingFile),
    ("checking file ", Says::PatchingFile),
    ("Hunk #", Says::HunkFailed),
    ("can't find file to patch", Says::NoFile),
    (
        "Reversed (or previously applied) patch detected",
        Says::Reversed,
    ),
    ("malformed patch", Says::Malformed),
    ("Only garbage was found", Says::Malformed),
];

/// Turn GNU patch's output for a failed patch into an error naming patch, hunk and file.
pub fn explain_failure(patch_name: &str, patch_text: &str, output: &str) -> PatchError {
    let files = parse(patch_text);
    let mut current = String::new();
    for line in output.lines() {
        let Some((prefix, says)) = PATCH_MESSAGES.iter().find(|(p, _)| line.contains(p)) else {
            continue;
        };
        let rest = &line[line.find(prefix).unwrap() + prefix.len()..];
        match says {
            Says::PatchingFile => current = rest.trim().trim_matches('\'').to_string(),
            Says::HunkFailed if rest.contains("FAILED") => {
                let hunk: usize = rest
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let at = rest
                    .split_once(" at ")
                    .map(|(_, l)| format!(" (expected at line {})", l.trim_end_matches('.')))
                    .unwrap_or_default();
                let header = files
                    .iter()
                    .find(|f| f.target() == current)
                    .and_then(|f| f.hunks.get(hunk.wrapping_sub(1)))
                    .cloned()
                    .unwrap_or_else(|| "?".into());
                return PatchError::Hunk {
                    patch: patch_name.to_string(),
                    hunk,
                    header,
                    file: current,
                    at,
                };
            }
            Says::HunkFailed => {}
            Says::NoFile => {
                let file = files
                    .first()
                    .map(|f| f.target().to_string())
                    .unwrap_or_default();
                return PatchError::Other {
                    patch: patch_name.to_string(),
                    message: format!("targets {file}, which is not in the tree"),
                };
            }
            Says::Reversed => {
                return PatchError::Other {
                    patch: patch_name.to_string(),
                    message: format!("{current} already has this change (reversed or applied)"),
                }
            }
            Says::Malformed => {
                return PatchError::Other {
                    patch: patch_name.to_string(),
                    message: format!("not a valid patch: {}", line.trim()),
                }
            }
        }
    }
    PatchError::Other {
        patch: patch_name.to_string(),
        message: format!("patch failed: {}", output.trim()),
    }
}

/// Where unpatched file contents come from.
pub trait Pristine {
    fn read(&self, rel: &str) -> Option<Vec<u8>>;
}

/// A directory holding the unpatched tree.
pub struct PristineDir(pub PathBuf);

impl Pristine for PristineDir {
    fn read(&self, rel: &str) -> Option<Vec<u8>> {
        crate::files::read(self.0.join(rel)).ok()
    }
}

/// Files of the work tree that differ from pristine, with their content hash
/// (`None` = the series deleted it).
pub type Manifest = BTreeMap<String, Option<String>>;

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn io(e: impl std::fmt::Display) -> PatchError {
    PatchError::Io(e.to_string())
}

/// Apply `series` to pristine copies of the files it touches, in a scratch directory.
/// Returns the final content of every touched file (`None` = deleted).
pub fn apply_series(
    pristine: &dyn Pristine,
    series: &[PathBuf],
    display: &dyn Fn(&Path) -> String,
) -> Result<BTreeMap<String, Option<Vec<u8>>>, PatchError> {
    let scratch = tempfile::tempdir().map_err(io)?;
    let mut touched = BTreeSet::new();
    for patch in series {
        let text = crate::files::read_to_string(patch).map_err(io)?;
        for f in parse(&text) {
            for rel in [f.old, f.new].into_iter().flatten() {
                if touched.insert(rel.clone()) {
                    if let Some(bytes) = pristine.read(&rel) {
                        let dest = scratch.path().join(&rel);
                        std::fs::create_dir_all(dest.parent().unwrap()).map_err(io)?;
                        crate::files::write(&dest, bytes).map_err(io)?;
                    }
                }
            }
        }
        let out = crate::child::output_to_end(
            Command::new("patch")
                .args([
                    "-p1",
                    "--batch",
                    "--forward",
                    "--no-backup-if-mismatch",
                    "-r",
                    "-",
                ])
                .arg("-d")
                .arg(scratch.path())
                .arg("-i")
                .arg(patch),
        )
        .map_err(|e| io(format!("cannot run patch(1): {e} (apt-get install patch)")))?;
        if !out.status.success() {
            let output = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            return Err(explain_failure(&display(patch), &text, &output));
        }
    }
    Ok(touched
        .into_iter()
        .map(|rel| {
            let content = crate::files::read(scratch.path().join(&rel)).ok();
            (rel, content)
        })
        .collect())
}

/// Write `bytes` to `path` through a new inode: never modifies a file in place (work trees
/// share inodes with their pristine tree), and gives it a fresh mtime.
fn replace_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let permissions = std::fs::metadata(path).ok().map(|m| m.permissions());
    crate::files::write(path, bytes)?;
    if let Some(p) = permissions {
        std::fs::set_permissions(path, p)?;
    }
    Ok(())
}

/// Bring `work` from the state in `manifest` to pristine + `patched`, rewriting only files
/// whose content changes. Returns the new manifest and the files rewritten.
pub fn sync_work_tree(
    work: &Path,
    pristine: &dyn Pristine,
    manifest: &Manifest,
    patched: &BTreeMap<String, Option<Vec<u8>>>,
) -> Result<(Manifest, Vec<String>), PatchError> {
    let mut files: BTreeSet<&String> = manifest.keys().collect();
    files.extend(patched.keys());
    let mut next = Manifest::new();
    let mut rewritten = Vec::new();
    for rel in files {
        let original = pristine.read(rel);
        let desired = match patched.get(rel) {
            Some(content) => content.clone(),
            None => original.clone(),
        };
        let path = work.join(rel);
        let current = crate::files::read(&path).ok();
        if current != desired {
            match &desired {
                Some(bytes) => replace_file(&path, bytes).map_err(io)?,
                None => std::fs::remove_file(&path).map_err(io)?,
            }
            rewritten.push(rel.clone());
        }
        if desired != original {
            next.insert(rel.clone(), desired.as_deref().map(sha));
        }
    }
    Ok((next, rewritten))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str = "\
From abc Mon Sep 17 00:00:00 2001
Subject: [PATCH] x

---
 a.c | 2 +-
diff --git a/dir/a.c b/dir/a.c
--- a/dir/a.c
+++ b/dir/a.c
@@ -1,3 +1,3 @@ int main(void)
 one
-two
+TWO
 three
diff --git a/new.c b/new.c
new file mode 100644
--- /dev/null
+++ b/new.c
@@ -0,0 +1 @@
+fresh
-- 
2.39.0
";

    #[test]
    fn parse_finds_files_and_hunks() {
        let files = parse(PATCH);
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].target(), "dir/a.c");
        assert_eq!(files[0].hunks, ["@@ -1,3 +1,3 @@ int main(void)"]);
        assert_eq!(files[1].old, None);
        assert_eq!(files[1].target(), "new.c");
    }

    #[test]
    fn failed_hunk_names_patch_hunk_header_and_file() {
        let out = "patching file dir/a.c\nHunk #1 FAILED at 1.\n1 out of 1 hunk FAILED\n";
        let e = explain_failure("kernels/patches/v/0001-x.patch", PATCH, out).to_string();
        assert_eq!(
            e,
            "kernels/patches/v/0001-x.patch: hunk #1 (@@ -1,3 +1,3 @@ int main(void)) \
             does not apply to dir/a.c (expected at line 1)"
        );
    }

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (rel, text) in files {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    #[test]
    fn series_applies_and_sync_touches_only_changed_files() {
        let pristine = tree(&[("dir/a.c", "one\ntwo\nthree\n"), ("b.c", "b\n")]);
        let work = tree(&[("dir/a.c", "one\ntwo\nthree\n"), ("b.c", "b\n")]);
        let patches = tree(&[("0001.patch", PATCH)]);
        let series = vec![patches.path().join("0001.patch")];
        let p = PristineDir(pristine.path().to_path_buf());
        let shown = |p: &Path| p.display().to_string();
        let patched = apply_series(&p, &series, &shown).unwrap();
        assert_eq!(
            patched["dir/a.c"].as_deref(),
            Some(&b"one\nTWO\nthree\n"[..])
        );
        assert_eq!(patched["new.c"].as_deref(), Some(&b"fresh\n"[..]));

        let (manifest, rewritten) =
            sync_work_tree(work.path(), &p, &Manifest::new(), &patched).unwrap();
        assert_eq!(rewritten, ["dir/a.c", "new.c"]);
        assert_eq!(manifest.len(), 2);
        assert_eq!(
            std::fs::read_to_string(work.path().join("dir/a.c")).unwrap(),
            "one\nTWO\nthree\n"
        );
        // Same series again: nothing to rewrite.
        let (again, rewritten) = sync_work_tree(work.path(), &p, &manifest, &patched).unwrap();
        assert!(rewritten.is_empty());
        assert_eq!(again, manifest);
        // Empty series: back to pristine, the new file removed.
        let (empty, rewritten) =
            sync_work_tree(work.path(), &p, &manifest, &BTreeMap::new()).unwrap();
        assert_eq!(rewritten, ["dir/a.c", "new.c"]);
        assert!(empty.is_empty());
        assert!(!work.path().join("new.c").exists());
        assert_eq!(
            std::fs::read_to_string(work.path().join("dir/a.c")).unwrap(),
            "one\ntwo\nthree\n"
        );
        // The pristine tree was never touched.
        assert_eq!(
            std::fs::read_to_string(pristine.path().join("dir/a.c")).unwrap(),
            "one\ntwo\nthree\n"
        );
    }

    #[test]
    fn broken_patch_reports_patch_and_hunk() {
        let pristine = tree(&[("dir/a.c", "one\nzwei\nthree\n")]);
        let patches = tree(&[("0001-broken.patch", PATCH)]);
        let p = PristineDir(pristine.path().to_path_buf());
        let shown = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();
        let err = apply_series(&p, &[patches.path().join("0001-broken.patch")], &shown)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("0001-broken.patch: hunk #1 (@@ -1,3 +1,3 @@ int main(void)) does not apply to dir/a.c"),
            "{err}"
        );
    }

    #[test]
    fn series_hash_depends_on_content_and_order() {
        let d = tree(&[("1.patch", "a"), ("2.patch", "b")]);
        let (a, b) = (d.path().join("1.patch"), d.path().join("2.patch"));
        let h1 = series_hash(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(h1, series_hash(&[a.clone(), b.clone()]).unwrap());
        assert_ne!(h1, series_hash(&[b.clone(), a.clone()]).unwrap());
        std::fs::write(&b, "c").unwrap();
        assert_ne!(h1, series_hash(&[a, b]).unwrap());
    }
}
