//! Kernel sources: identify them cheaply (for cache keys) and materialize a work tree.
//!
//! - `debian`: /usr/src/<package>.tar.xz, extracted once into the cache; the work tree is a
//!   hard-link farm of it (patched files are replaced, never modified in place).
//! - `git`: a repository at a ref; the work tree is a `git worktree` (remote repositories are
//!   mirrored once into the cache); moving to another commit checks out only what changed.
//! - `path`: a tree the user has, built out of tree and never modified (no patches).

use super::patches::{Pristine, PristineDir};
use super::variant::Source;
use crate::cache;
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A source, identified.
#[derive(Debug, Clone)]
pub struct Identified {
    /// Goes into cache keys: changes whenever the tree's content may have changed.
    pub id: String,
    /// Names the work area (work tree + object tree) shared by every variant of the source.
    pub slug: String,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Debian {
        tarball: PathBuf,
        package: String,
        version: String,
    },
    Git {
        repo: PathBuf,
        commit: String,
    },
    Path {
        path: PathBuf,
    },
}

fn short_hash(s: &str) -> String {
    hex::encode(&Sha256::digest(s.as_bytes())[..6])
}

fn run(cmd: &mut Command) -> Result<String> {
    let out = crate::child::output(cmd).with_context(|| format!("run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn is_remote(repo: &str) -> bool {
    repo.contains("://") || repo.starts_with("git@")
}

/// A local repository for `repo`: itself, or a mirror in the cache, fetched.
fn local_repo(repo: &str) -> Result<PathBuf> {
    if !is_remote(repo) {
        let path = PathBuf::from(repo);
        if !path.exists() {
            bail!("git repository {repo} does not exist");
        }
        return Ok(path);
    }
    let mirror = cache::dir("git")?.join(format!("{}.git", short_hash(repo)));
    if mirror.exists() {
        run(Command::new("git")
            .arg("-C")
            .arg(&mirror)
            .args(["fetch", "--prune", "--quiet"]))?;
    } else {
        run(Command::new("git")
            .args(["clone", "--mirror", "--quiet", repo])
            .arg(&mirror))?;
    }
    Ok(mirror)
}

/// Content fingerprint of a tree on disk: every file's path, size and mtime.
fn fingerprint(path: &Path) -> Result<String> {
    let mut h = Sha256::new();
    let mut entries: Vec<_> = walkdir::WalkDir::new(path)
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git")
        .flatten()
        .filter(|e| e.file_type().is_file())
        .collect();
    entries.sort_by(|a, b| a.path().cmp(b.path()));
    for e in entries {
        let meta = e.metadata()?;
        h.update(
            e.path()
                .strip_prefix(path)
                .unwrap()
                .as_os_str()
                .as_encoded_bytes(),
        );
        h.update(meta.size().to_le_bytes());
        h.update(meta.mtime_nsec().to_le_bytes());
        h.update(meta.mtime().to_le_bytes());
    }
    Ok(hex::encode(&h.finalize()[..12]))
}

pub fn identify(source: &Source) -> Result<Identified> {
    Ok(match source {
        Source::Debian { package } => {
            let tarball = PathBuf::from(format!("/usr/src/{package}.tar.xz"));
            if !tarball.is_file() {
                bail!(
                    "{} is missing: install Debian's {package} (apt-get install {package}; \
                     scripts/setup.sh does)",
                    tarball.display()
                );
            }
            let version = run(Command::new("dpkg-query").args(["-W", "-f=${Version}", package]))
                .or_else(|_| -> Result<String> {
                    let m = std::fs::metadata(&tarball)?;
                    Ok(format!("size{}-mtime{}", m.size(), m.mtime()))
                })?;
            Identified {
                id: format!("debian:{package}={version}"),
                slug: format!("debian-{package}-{}", version.replace(['~', ':', '+'], "_")),
                kind: Kind::Debian {
                    tarball,
                    package: package.clone(),
                    version,
                },
            }
        }
        Source::Git { repo, reference } => {
            let local = local_repo(repo)?;
            let commit = run(Command::new("git")
                .arg("-C")
                .arg(&local)
                .args(["rev-parse", "--verify", "--quiet"])
                .arg(format!("{reference}^{{commit}}")))
            .with_context(|| format!("ref {reference:?} not found in {repo}"))?;
            Identified {
                id: format!("git:{repo}@{commit}"),
                slug: format!("git-{}", short_hash(repo)),
                kind: Kind::Git {
                    repo: local,
                    commit,
                },
            }
        }
        Source::Path { path } => {
            if !path.join("Makefile").is_file() || !path.join("Kconfig").is_file() {
                bail!(
                    "{} does not look like a kernel tree (no Makefile/Kconfig)",
                    path.display()
                );
            }
            Identified {
                id: format!("path:{}@{}", path.display(), fingerprint(path)?),
                slug: format!("path-{}", short_hash(&path.display().to_string())),
                kind: Kind::Path { path: path.clone() },
            }
        }
    })
}

/// Reads unpatched content from a git commit.
pub struct PristineGit {
    repo: PathBuf,
    commit: String,
}

impl Pristine for PristineGit {
    fn read(&self, rel: &str) -> Option<Vec<u8>> {
        // Read to the end even when interrupted: an empty answer would read as "no such file".
        let out = crate::child::output_to_end(
            Command::new("git")
                .arg("-C")
                .arg(&self.repo)
                .args(["cat-file", "blob"])
                .arg(format!("{}:{rel}", self.commit)),
        )
        .ok()?;
        out.status.success().then_some(out.stdout)
    }
}

/// The extracted Debian tree, extracted on first use.
fn debian_pristine(tarball: &Path, package: &str, version: &str) -> Result<PathBuf> {
    let dir = cache::dir("sources")?.join(format!(
        "{package}_{}",
        version.replace(['~', ':', '+'], "_")
    ));
    let done = dir.join(".lab-extracted");
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        let tmp = dir.with_extension("extracting");
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)?;
        crate::events::emit(crate::events::Event::Extracting {
            tarball: tarball.to_path_buf(),
        });
        run(Command::new("tar")
            .arg("-xf")
            .arg(tarball)
            .arg("-C")
            .arg(&tmp))?;
        crate::files::write(tmp.join(".lab-extracted"), version)?;
        std::fs::rename(&tmp, &dir)?;
    }
    let top = std::fs::read_dir(&dir)?
        .flatten()
        .find(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .context("the source tarball holds no directory")?;
    Ok(top.path())
}

/// The work tree for `ident` in `area`, ready to be patched; and where pristine content is.
pub fn work_tree(ident: &Identified, area: &Path) -> Result<(PathBuf, Box<dyn Pristine>)> {
    let src = area.join("src");
    match &ident.kind {
        Kind::Debian {
            tarball,
            package,
            version,
        } => {
            let pristine = debian_pristine(tarball, package, version)?;
            if !src.exists() {
                let tmp = area.join("src.linking");
                let _ = std::fs::remove_dir_all(&tmp);
                run(Command::new("cp").arg("-al").arg(&pristine).arg(&tmp))?;
                std::fs::rename(&tmp, &src)?;
            }
            Ok((src, Box::new(PristineDir(pristine))))
        }
        Kind::Git { repo, commit } => {
            // A work tree whose repository is gone (one made again at the same path) is
            // made again too.
            let head = src.exists().then(|| {
                crate::child::output(
                    Command::new("git")
                        .arg("-C")
                        .arg(&src)
                        .args(["rev-parse", "HEAD"]),
                )
            });
            match head {
                Some(Ok(out)) if out.status.success() => {
                    if String::from_utf8_lossy(&out.stdout).trim() != commit {
                        run(Command::new("git")
                            .arg("-C")
                            .arg(&src)
                            .args(["checkout", "--detach", "--force", "--quiet"])
                            .arg(commit))?;
                    }
                }
                Some(Err(e)) => return Err(e.into()),
                stale => {
                    if stale.is_some() {
                        std::fs::remove_dir_all(&src).with_context(|| {
                            format!("remove the stale work tree {}", src.display())
                        })?;
                    }
                    run(Command::new("git")
                        .arg("-C")
                        .arg(repo)
                        .args(["worktree", "prune"]))?;
                    run(Command::new("git")
                        .arg("-C")
                        .arg(repo)
                        .args(["worktree", "add", "--detach", "--force"])
                        .arg(&src)
                        .arg(commit))?;
                }
            }
            Ok((
                src,
                Box::new(PristineGit {
                    repo: repo.clone(),
                    commit: commit.clone(),
                }),
            ))
        }
        Kind::Path { path } => Ok((path.clone(), Box::new(PristineDir(path.clone())))),
    }
}
