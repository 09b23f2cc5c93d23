//! `lab bisect`'s checks before anything runs, on a small git repository that is not a
//! kernel tree (the full bisection on a kernel repository is bench/bisect-acceptance.sh).

mod common;

use common::*;
use std::path::{Path, PathBuf};

fn repo_dir(dir: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(dir)
}

/// A repository of three commits: one, two, three.
fn three_commits() -> (tempfile::TempDir, PathBuf, Vec<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("tree");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    let mut commits = Vec::new();
    for n in ["one", "two", "three"] {
        std::fs::write(repo.join("file"), n).unwrap();
        git(&repo, &["add", "file"]);
        git(&repo, &["commit", "-q", "-m", n]);
        commits.push(git(&repo, &["rev-parse", "HEAD"]));
    }
    (tmp, repo, commits)
}

fn bisect(repo: &Path, out: &Path, args: &[&str]) -> std::process::Output {
    lab()
        .arg("bisect")
        .arg("--repo")
        .arg(repo)
        .args(["--scenario", "epoll-dmabuf-race"])
        .arg("--kernels")
        .arg(repo_dir("kernels"))
        .arg("--scenarios")
        .arg(repo_dir("scenarios"))
        .arg("--out")
        .arg(out)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn ends_in_the_wrong_order_are_refused_with_the_reason() {
    let (tmp, repo, c) = three_commits();
    // Looking for the commit that brought the race in: good must be the older end.
    let out = bisect(
        &repo,
        &tmp.path().join("b1"),
        &["--good", &c[2], "--bad", &c[0]],
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--good must be an ancestor of --bad"), "{err}");
    let out = bisect(
        &repo,
        &tmp.path().join("b2"),
        &["--good", "nope", "--bad", &c[0]],
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("\"nope\" is not a commit"),
        "{}",
        show(&out)
    );
}

#[test]
fn a_racy_end_that_does_not_build_leaves_nothing_to_bisect() {
    let (tmp, repo, c) = three_commits();
    let out = bisect(
        &repo,
        &tmp.path().join("b"),
        &["--good", &c[0], "--bad", &c[2]],
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("the racy end {} does not build", &c[2][..12])),
        "{err}"
    );
    // The build's own first error is named too.
    assert!(err.contains("make allnoconfig failed"), "{err}");
}

#[test]
fn a_configuration_is_a_variant_or_fragments() {
    let (tmp, repo, c) = three_commits();
    // Fragments of kernels/configs/ are accepted (the build then fails: not a kernel tree).
    let out = bisect(
        &repo,
        &tmp.path().join("b1"),
        &[
            "--good",
            &c[0],
            "--bad",
            &c[2],
            "--variant-config",
            "qemu-guest,scenarios,kasan",
        ],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not build"),
        "{}",
        show(&out)
    );
    let out = bisect(
        &repo,
        &tmp.path().join("b2"),
        &[
            "--good",
            &c[0],
            "--bad",
            &c[2],
            "--variant-config",
            "qemu-guest,nope",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no variant named \"nope\" and no "), "{err}");
    assert!(err.contains("configs/nope.config"), "{err}");
}
