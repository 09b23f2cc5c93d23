//! Helpers for tests that boot real kernels under a real QEMU.

#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

/// VM tests share two cores: one guest at a time keeps timings meaningful.
static VM_SLOT: Mutex<()> = Mutex::new(());

pub fn vm_slot() -> MutexGuard<'static, ()> {
    VM_SLOT.lock().unwrap_or_else(|p| p.into_inner())
}

/// One cache for the whole test run: the KVM probe verdict, the initramfs, kernels and
/// snapshots are reused.
pub fn test_cache() -> PathBuf {
    std::env::var_os("LAB_TEST_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/lab-test-cache")
        })
}

pub fn lab() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab"));
    cmd.env("LAB_CACHE_DIR", test_cache());
    cmd
}

/// `lab boot ARGS --kernel <the distro kernel> --out DIR`.
pub fn boot_distro(args: &[&str], dir: &Path) -> Output {
    lab()
        .arg("boot")
        .args(args)
        .arg("--kernel")
        .arg(distro_kernel())
        .arg("--out")
        .arg(dir)
        .output()
        .unwrap()
}

/// The Debian distro kernel the README's set-up installs (linux-image-6.12-amd64).
pub fn distro_kernel() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/boot")
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    let name = p.file_name().unwrap().to_string_lossy().into_owned();
                    name.starts_with("vmlinuz-6.12") && name.ends_with("-amd64")
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().expect(
        "no /boot/vmlinuz-6.12*-amd64: install linux-image-6.12-amd64 \
         (the README's test command does)",
    )
}

pub fn run_dir(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::Builder::new()
        .prefix(&format!("lab-{name}-"))
        .tempdir()
        .unwrap();
    let dir = tmp.path().join("run");
    (tmp, dir)
}

pub fn outcome(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("outcome.json"))
        .unwrap_or_else(|e| panic!("no outcome.json in {}: {e}", dir.display()));
    serde_json::from_str(&text).unwrap()
}

pub fn show(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Live (not zombie) processes whose command line mentions `needle`.
pub fn live_processes_mentioning(needle: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let state = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().next().map(str::to_string))
            })
            .unwrap_or_default();
        if cmdline.contains(needle) && state != "Z" && pid != std::process::id() {
            found.push((pid, cmdline));
        }
    }
    found
}

/// QEMU processes started for `run_dir` that are still alive.
pub fn qemu_left(run_dir: &Path) -> Vec<(u32, String)> {
    live_processes_mentioning(&run_dir.display().to_string())
        .into_iter()
        .filter(|(_, cmd)| cmd.contains("qemu-system"))
        .collect()
}

/// `git -C repo args…` with a fixed identity; its trimmed stdout.
pub fn git(repo: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "user.name=lab", "-c", "user.email=lab@localhost"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", show(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The repository's own directory `name` (kernels, scenarios).
pub fn repo_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name)
}

/// The cache directory of the repository's variant `variant`, built if the cache lacks it
/// (its canary is left to the runs that need it).
pub fn built_kernel(variant: &str) -> PathBuf {
    let out = lab()
        .args(["build", "--no-canary", "--json", "--kernels"])
        .arg(repo_dir("kernels"))
        .arg(variant)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    PathBuf::from(json[0]["dir"].as_str().unwrap())
}

/// A git repository that stands in for a kernel tree: each commit's `make O=DIR bzImage`
/// installs a kernel the lab built before (one of `kernels`, in order; an empty path makes a
/// commit that does not build) instead of compiling one, so a bisection or a night over it runs real make and boots real kernels in seconds.
/// The build step runs `scripts/lab-fixture-build.sh`, which sleeps
/// `$LAB_FIXTURE_BUILD_SECONDS` (only in the commit whose subject is `$LAB_FIXTURE_SLOW`, when
/// set) and, with `$LAB_FIXTURE_MOVE_REF` ("REF COMMIT"), moves a ref of the repository (a push
/// during the build). Returns the repository and its commits.
pub fn fixture_tree(dir: &Path, kernels: &[(&str, PathBuf)]) -> (PathBuf, Vec<String>) {
    let repo = dir.join("fixture-tree");
    std::fs::create_dir_all(repo.join("scripts/kconfig")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    let script = |path: &str, text: &str| {
        use std::os::unix::fs::PermissionsExt;
        let p = repo.join(path);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    // merge_config.sh -m -O DIR BASE FRAGMENT...: the fragments, in order, are the .config.
    script(
        "scripts/kconfig/merge_config.sh",
        "#!/bin/sh\nout=\"$3\"; shift 4; cat \"$@\" > \"$out/.config\"\n",
    );
    script(
        "scripts/lab-fixture-build.sh",
        "#!/bin/sh\ntree=\"$(dirname \"$0\")/..\"\n\
         if [ -z \"$LAB_FIXTURE_SLOW\" ] || [ \"$(cat \"$tree/fixture-commit\")\" = \"$LAB_FIXTURE_SLOW\" ]; then\n\
         \tsleep \"${LAB_FIXTURE_BUILD_SECONDS:-0}\"\nfi\n\
         if [ -n \"$LAB_FIXTURE_MOVE_REF\" ]; then git -C \"$tree\" update-ref $LAB_FIXTURE_MOVE_REF; fi\n",
    );
    let mut commits = Vec::new();
    for (subject, kernel) in kernels {
        // An empty path: a commit that does not build.
        let makefile = if kernel.as_os_str().is_empty() {
            "# A stand-in for a kernel tree that does not build.\nO ?= .\n\
             .PHONY: allnoconfig defconfig olddefconfig bzImage\n\
             allnoconfig defconfig:\n\t@mkdir -p $(O) && : > $(O)/.config\n\
             olddefconfig:\n\t@:\n\
             bzImage:\n\t@echo \"init/fixture.c:1:1: error: this commit does not build\" >&2; exit 1\n"
                .to_string()
        } else {
            format!(
                "# A stand-in for a kernel tree: installs a kernel built before.\n\
                 KERNEL := {}\nO ?= .\n.PHONY: allnoconfig defconfig olddefconfig bzImage\n\
                 allnoconfig defconfig:\n\t@mkdir -p $(O) && : > $(O)/.config\n\
                 olddefconfig:\n\t@:\n\
                 bzImage:\n\t@echo \"  CC      init/fixture.o\"\n\
                 \t@$(CURDIR)/scripts/lab-fixture-build.sh\n\
                 \t@mkdir -p $(O)/arch/x86/boot $(O)/include/config\n\
                 \t@cp $(KERNEL)/bzImage $(O)/arch/x86/boot/bzImage\n\
                 \t@cp $(KERNEL)/vmlinux $(O)/vmlinux\n\
                 \t@cp $(KERNEL)/System.map $(O)/System.map\n\
                 \t@echo fixture > $(O)/include/config/kernel.release\n",
                kernel.display()
            )
        };
        std::fs::write(repo.join("Makefile"), makefile).unwrap();
        // Every commit changes something, even when it installs the same kernel.
        std::fs::write(repo.join("fixture-commit"), subject).unwrap();
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", subject]);
        commits.push(git(&repo, &["rev-parse", "HEAD"]));
    }
    (repo, commits)
}

/// `lab` in a process group of its own, as a shell starts a foreground job: a signal to the
/// group reaches `lab` and every child it did not move to a group of its own.
pub fn spawn_lab(args: &[&str], env: &[(&str, &str)], log: &Path) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let mut cmd = lab();
    cmd.args(args)
        .env("CI", "true")
        .stdout(std::fs::File::create(log.with_extension("out")).unwrap())
        .stderr(std::fs::File::create(log).unwrap())
        .process_group(0);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Wait up to `limit` for `found` to give something.
pub fn wait_for<T>(limit: std::time::Duration, mut found: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if let Some(t) = found() {
            return Some(t);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    None
}

/// Send `signal` to the process group led by `child` (Ctrl-C at a terminal: SIGINT).
pub fn signal_group(child: &std::process::Child, signal: i32) {
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
    let rc = unsafe { libc::kill(-(child.id() as i32), signal) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
}

/// The exit status of `child`, waited for up to `limit` (killed if it takes longer).
pub fn exit_within(child: &mut std::process::Child, limit: std::time::Duration) -> Option<i32> {
    let status = wait_for(limit, || child.try_wait().unwrap());
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    status.and_then(|s| s.code())
}

/// Copy a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let dest = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// A variant of kernels/*.toml on a git source: `repo` at `reference`.
pub fn git_variant(kernels: &Path, name: &str, repo: &Path, reference: &str) {
    std::fs::write(
        kernels.join(format!("{name}.toml")),
        format!(
            "description = \"{name}\"\n[source]\ngit = {{ repo = {:?}, ref = \"{reference}\" }}\n",
            repo.display().to_string()
        ),
    )
    .unwrap();
}

/// `lab run ARGS --kernels <repo>/kernels --out OUT --json`: the output and runs.json's content.
pub fn run_json(args: &[&str], out: &Path) -> (Output, Value) {
    let output = lab()
        .arg("run")
        .args(args)
        .arg("--kernels")
        .arg(repo_dir("kernels"))
        .arg("--out")
        .arg(out)
        .arg("--json")
        .output()
        .unwrap();
    let json = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output, json)
}

/// A tool of the repository's .venv (scripts/setup.sh installs them).
pub fn venv(tool: &str) -> PathBuf {
    let path = repo_dir(".venv/bin").join(tool);
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup.sh",
        path.display()
    );
    path
}

/// Validates a KCIDB file with kcidb-io's latest schema; the numbers of checkouts, builds,
/// tests, issues and incidents in it.
pub fn kcidb_counts(file: &Path) -> Vec<usize> {
    let check = std::process::Command::new(venv("python"))
        .args([
            "-c",
            "import json, sys, kcidb_io; d = json.load(open(sys.argv[1])); \
             kcidb_io.schema.LATEST.validate(d); \
             print(*(len(d[k]) for k in ('checkouts', 'builds', 'tests', 'issues', 'incidents')))",
        ])
        .arg(file)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", show(&check));
    String::from_utf8_lossy(&check.stdout)
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect()
}
