//! Ctrl-C and SIGTERM during `lab nightly` and `lab bisect`, during a build (real make) and
//! during a run (real QEMU): `lab` ends with "interrupted" (exit 130), leaves no child behind,
//! stores no verdict for the step it cut, and the same command afterwards finishes the work
//! from a consistent cache.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const INTERRUPTED: i32 = 130;

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn log(path: &Path) -> String {
    format!(
        "--- stderr\n{}\n--- stdout\n{}",
        std::fs::read_to_string(path).unwrap_or_default(),
        std::fs::read_to_string(path.with_extension("out")).unwrap_or_default()
    )
}

/// Start `lab args`, wait until `ready` sees what the test waits for (`what`), `signal` it,
/// and check it ends as interrupted; its output.
fn interrupt_when(
    args: &[&str],
    env: &[(&str, &str)],
    log_file: &Path,
    what: &str,
    mut ready: impl FnMut() -> bool,
    signal: impl Fn(&std::process::Child),
) -> String {
    let mut child = spawn_lab(args, env, log_file);
    let seen = wait_for(Duration::from_secs(1200), || ready().then_some(()));
    assert!(seen.is_some(), "{what} never happened\n{}", log(log_file));
    signal(&child);
    let code = exit_within(&mut child, Duration::from_secs(60));
    let text = log(log_file);
    assert_eq!(code, Some(INTERRUPTED), "{text}");
    assert!(text.contains("lab: interrupted"), "{text}");
    text
}

/// Ctrl-C at a terminal: the whole foreground group gets SIGINT.
fn ctrl_c(child: &std::process::Child) {
    signal_group(child, libc::SIGINT);
}

/// Nights recorded in a history file (none when it does not exist).
fn nights(history: &Path) -> i64 {
    if !history.exists() {
        return 0;
    }
    let db = rusqlite::Connection::open(history).unwrap();
    db.query_row("SELECT COUNT(*) FROM nights", [], |r| r.get(0))
        .unwrap_or(0)
}

/// A lab.toml over a copy of the repository's kernels/ (plus `extra` files) with one cell.
fn lab_toml(dir: &Path, variant: &str, extra: &[(&str, String)]) -> std::path::PathBuf {
    let kernels = dir.join("kernels");
    copy_dir(&repo_dir("kernels"), &kernels);
    for (path, text) in extra {
        let p = kernels.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let config = dir.join("lab.toml");
    std::fs::write(
        &config,
        format!(
            "kernels = \"kernels\"\nscenarios = {:?}\nresults = \"nights\"\nruns = 1\n\
             [[matrix]]\nvariants = [\"{variant}\"]\nscenarios = [\"epoll-dmabuf-race\"]\n",
            repo_dir("scenarios")
        ),
    )
    .unwrap();
    config
}

/// Live processes of a kernel build in `cache` (make and the compilers it runs).
fn builds_in(cache: &str) -> Vec<(u32, String)> {
    live_processes_mentioning(cache)
        .into_iter()
        .filter(|(_, cmd)| cmd.contains("bzImage") || cmd.contains("/obj-"))
        .collect()
}

#[test]
fn nightly_interrupted_during_a_kernel_build_records_nothing_and_the_next_night_builds() {
    let _slot = vm_slot();
    let tmp = tempfile::tempdir().unwrap();
    // A variant no cache has: baseline plus a comment with a nonce, so make recompiles
    // fs/open.c and links a new kernel.
    let nonce = format!("{}-{:?}", std::process::id(), std::time::SystemTime::now());
    let patch = format!(
        "From 0 Mon Sep 17 00:00:00 2001\nSubject: [PATCH] a comment\n\n---\n\
         diff --git a/fs/open.c b/fs/open.c\n--- a/fs/open.c\n+++ b/fs/open.c\n\
         @@ -1,4 +1,5 @@\n // SPDX-License-Identifier: GPL-2.0-only\n+/* lab interrupt test {nonce} */\n \
         /*\n  *  linux/fs/open.c\n  *\n"
    );
    let config = lab_toml(
        tmp.path(),
        "interrupted",
        &[
            ("interrupted.toml", "base = \"baseline\"\n".into()),
            ("patches/interrupted/0001-a-comment.patch", patch),
        ],
    );
    let cache = lab()
        .get_envs()
        .find(|(k, _)| *k == "LAB_CACHE_DIR")
        .and_then(|(_, v)| v)
        .map(|v| v.to_string_lossy().into_owned())
        .unwrap();
    let args = |out: &str| {
        vec![
            "nightly".to_string(),
            "--runs".into(),
            "1".into(),
            "--duration".into(),
            "2s".into(),
            "--config".into(),
            config.display().to_string(),
            "--out".into(),
            tmp.path().join(out).display().to_string(),
        ]
    };
    let first = args("n1");
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    let text = interrupt_when(
        &first,
        &[],
        &tmp.path().join("n1.log"),
        "make",
        // make is running (a cold object tree takes minutes to get there); give it 2 s more.
        || {
            !builds_in(&cache).is_empty() && {
                std::thread::sleep(Duration::from_secs(2));
                true
            }
        },
        ctrl_c,
    );
    assert!(!text.contains("did not build"), "{text}");
    let gone = wait_for(Duration::from_secs(5), || {
        builds_in(&cache).is_empty().then_some(())
    });
    assert!(gone.is_some(), "{:?}", builds_in(&cache));
    // Nothing recorded: no night in the history, no results.
    assert_eq!(nights(&tmp.path().join("nights/history.sqlite")), 0);
    assert!(!tmp.path().join("n1/results.json").exists());

    // The same night again builds the variant from where the cut build left the tree.
    let second = args("n2");
    let out = lab().args(&second).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let results = read_json(&tmp.path().join("n2/results.json"));
    let cell = &results["cells"][0];
    assert_eq!(cell["note"], Value::Null, "{cell}");
    assert_eq!(cell["runs"].as_array().unwrap().len(), 1, "{cell}");
    assert_eq!(cell["runs"][0]["verdict"]["verdict"], "pass", "{cell}");
    assert_eq!(nights(&tmp.path().join("nights/history.sqlite")), 1);
}

#[test]
fn nightly_terminated_during_a_run_records_nothing_and_leaves_no_qemu() {
    let _slot = vm_slot();
    let tmp = tempfile::tempdir().unwrap();
    built_kernel("baseline");
    let config = lab_toml(tmp.path(), "baseline", &[]);
    let out = tmp.path().join("n1");
    let config = config.display().to_string();
    let out_arg = out.display().to_string();
    interrupt_when(
        &[
            "nightly",
            "--runs",
            "1",
            "--duration",
            "60s",
            "--config",
            &config,
            "--out",
            &out_arg,
        ],
        &[],
        &tmp.path().join("n1.log"),
        "a guest whose workload started",
        || {
            // A restored guest prints nothing until it has something to say: the agent's
            // stream tells that the run is under way.
            let agent = out.join("baseline/epoll-dmabuf-race/run-001/agent.jsonl");
            !qemu_left(&out).is_empty()
                && std::fs::read_to_string(agent).is_ok_and(|s| s.contains("\"type\":\"started\""))
        },
        // SIGTERM to lab alone (a CI runner's cancel).
        // SAFETY: kill(2) on a child this test started.
        |child| assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0),
    );
    assert!(qemu_left(&out).is_empty(), "{:?}", qemu_left(&out));
    assert_eq!(nights(&tmp.path().join("nights/history.sqlite")), 0);
    assert!(!out.join("results.json").exists());
    // The cut run is on disk as interrupted, with its console and the boot's.
    let runs = read_json(&out.join("baseline/epoll-dmabuf-race/runs.json"));
    assert_eq!(runs[0]["evidence"]["kind"], "interrupted", "{runs}");
    let run_dir = Path::new(runs[0]["dir"].as_str().unwrap());
    assert_eq!(outcome(run_dir)["outcome"]["kind"], "interrupted");
    assert!(run_dir.join("console.log").is_file());
    let boot = match outcome(run_dir)["start"]["how"].as_str() {
        Some("restored") => "boot-console.log",
        _ => "console.log",
    };
    let boot = std::fs::read_to_string(run_dir.join(boot)).unwrap();
    assert!(boot.contains("Linux version"), "{boot}");
}

/// A bisection over a fixture tree whose commits install the baseline kernel (good), then
/// the racy one: the first racy commit is the second.
fn fixture_bisection(tmp: &Path) -> (std::path::PathBuf, Vec<String>) {
    let good = built_kernel("baseline");
    let racy = built_kernel("epoll-unpinned-poll");
    fixture_tree(
        tmp,
        &[
            ("fixture: the fixed kernel", good),
            ("fixture: the race comes in", racy.clone()),
            ("fixture: a harmless change", racy),
        ],
    )
}

fn bisect_args(repo: &Path, c: &[String], out: &Path, duration: &str) -> Vec<String> {
    [
        "bisect",
        "--repo",
        &repo.display().to_string(),
        "--good",
        &c[0],
        "--bad",
        &c[2],
        "--scenario",
        "epoll-dmabuf-race",
        "--kernels",
        &repo_dir("kernels").display().to_string(),
        "--scenarios",
        &repo_dir("scenarios").display().to_string(),
        "--runs",
        "2",
        "--duration",
        duration,
        "--out",
        &out.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The same bisection again, to its end: the first racy commit is the second one; stdout.
fn resume_finds_the_second_commit(args: &[&str], c: &[String]) -> String {
    let out = lab().args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        stdout.contains(&format!("first racy commit: {}", c[1])),
        "{stdout}"
    );
    stdout
}

/// No step of the saved state has a build error or a verdict, and nothing was planned.
fn assert_nothing_decided(state: &Value) {
    assert_eq!(state["plan"], Value::Null, "{state}");
    for step in state["steps"].as_array().unwrap() {
        assert_eq!(step["build_error"], Value::Null, "{state}");
        assert_eq!(step["verdict"], Value::Null, "{state}");
    }
}

#[test]
fn bisect_interrupted_during_a_build_stores_no_verdict_and_resumes() {
    let _slot = vm_slot();
    let tmp = tempfile::tempdir().unwrap();
    let (repo, c) = fixture_bisection(tmp.path());
    let out = tmp.path().join("bisect");
    let args = bisect_args(&repo, &c, &out, "10s");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // The midpoint's build is cut: it comes after the racy end's runs, so a VM session has
    // been and gone (which once left Ctrl-C reaching only make).
    let text = interrupt_when(
        &args,
        &[
            ("LAB_FIXTURE_BUILD_SECONDS", "600"),
            ("LAB_FIXTURE_SLOW", "fixture: the race comes in"),
        ],
        &tmp.path().join("b1.log"),
        "the midpoint's build",
        || {
            live_processes_mentioning("sleep 600")
                .iter()
                .any(|(_, cmd)| cmd.trim() == "sleep 600")
        },
        ctrl_c,
    );
    assert!(text.contains("run the same command to resume"), "{text}");
    assert!(!text.contains("does not build"), "{text}");
    let gone = wait_for(Duration::from_secs(5), || {
        live_processes_mentioning("lab-fixture-build.sh")
            .is_empty()
            .then_some(())
    });
    assert!(gone.is_some(), "the build's processes outlived lab");
    // The racy end has its verdict; the midpoint none, and no build error.
    let state = read_json(&out.join("state.json"));
    let steps = state["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{state}");
    assert_eq!(steps[0]["verdict"]["verdict"], "racy", "{state}");
    assert_eq!(steps[1]["commit"], c[1].as_str(), "{state}");
    assert_eq!(steps[1]["build_error"], Value::Null, "{state}");
    assert_eq!(steps[1]["verdict"], Value::Null, "{state}");

    // Resumed: it builds the midpoint this time and finds the commit.
    resume_finds_the_second_commit(&args, &c);
}

#[test]
fn bisect_interrupted_during_a_run_counts_nothing_of_it_and_resumes() {
    let _slot = vm_slot();
    let tmp = tempfile::tempdir().unwrap();
    let (repo, c) = fixture_bisection(tmp.path());
    let out = tmp.path().join("bisect");
    let args = bisect_args(&repo, &c, &out, "10s");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    interrupt_when(
        &args,
        &[],
        &tmp.path().join("b1.log"),
        "QEMU",
        || !qemu_left(&out).is_empty(),
        ctrl_c,
    );
    assert!(qemu_left(&out).is_empty(), "{:?}", qemu_left(&out));
    assert_nothing_decided(&read_json(&out.join("state.json")));
    let runs = read_json(&out.join(&c[2][..12]).join("runs.json"));
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["evidence"]["kind"], "interrupted", "{runs:?}");

    // Resumed: the cut run stays on disk but counts for nothing; two more are run.
    let stdout = resume_finds_the_second_commit(&args, &c);
    assert!(stdout.contains("rate at the racy end 2/2"), "{stdout}");
}
