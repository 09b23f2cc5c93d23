//! The commands that write a result file from files alone (no VM: `lab export kcidb`,
//! `lab report html`, `lab merge`), on a full disk: a 1 MiB tmpfs in a mount
//! namespace of its own (`unshare --mount`, as root), filled up. Each command fails with an
//! error naming the file and the cause, and leaves no partial file: an earlier valid file
//! keeps its bytes, a new one is not there at all.

mod common;

use common::*;
use std::path::Path;

/// A night with one cell of one run (nothing booted): what `lab export kcidb` reads.
fn night(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let results = serde_json::json!({
        "schema": 1, "lab": "l", "config": "lab.toml", "uid": "u1",
        "started": "2026-12-06T10:00:00Z", "ended": "2026-12-06T10:01:00Z",
        "night": null, "changes": [], "errors": [],
        "cells": [cell(dir)],
    });
    std::fs::write(dir.join("results.json"), results.to_string()).unwrap();
}

fn cell(dir: &Path) -> serde_json::Value {
    serde_json::json!({
        "variant": "baseline", "scenario": "uapi-epoll", "source": "debian:linux-source-6.12",
        "plan_key": "k", "kernel": null, "commit": null, "expect": null, "note": null,
        "runs_planned": 1, "duration_ms": 1000,
        "counts": {"pass": 1, "fail": 0, "error": 0, "skipped": 0},
        "runs": [{
            "index": 1, "dir": dir.join("baseline/uapi-epoll/run-001"),
            "verdict": {"verdict": "pass"}, "evidence": {"kind": "clean"},
            "outcome": null, "reports": [], "first_report_ms": null, "throughput": [],
            "differences": [], "record": null,
        }],
    })
}

/// Shard 1 of 1 of a plan with that one cell: what `lab merge` reads.
fn shard(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let results = serde_json::json!({
        "schema": 1, "lab": "l", "config": "lab.toml", "uid": "s1",
        "started": "2026-12-06T10:00:00Z", "ended": "2026-12-06T10:01:00Z",
        "night": null, "changes": [], "errors": [],
        "cells": [cell(dir)],
        "shard": {
            "index": 1, "count": 1,
            "plan": {
                "lab_sha256": "0".repeat(64), "commits": {},
                "cells": [{"variant": "baseline", "scenario": "uapi-epoll", "plan_key": "k", "runs": 1, "run_ms": 1000}],
            },
            "share": [{"variant": "baseline", "scenario": "uapi-epoll", "first": 1, "runs": 1}],
        },
    });
    std::fs::write(dir.join("results.json"), results.to_string()).unwrap();
}

#[test]
fn commands_that_write_on_a_full_disk_name_the_file_and_leave_no_partial_one() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    night(&t.join("night"));
    shard(&t.join("shard"));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::write(
        t.join("lab.toml"),
        format!(
            "name = \"full\"\nkernels = {:?}\nscenarios = {:?}\nresults = {:?}\n\
             [[matrix]]\nvariants = [\"baseline\"]\nscenarios = [\"uapi-epoll\"]\nruns = 1\n",
            repo.join("kernels"),
            repo.join("scenarios"),
            t.join("results"),
        ),
    )
    .unwrap();
    let disk = t.join("disk");
    std::fs::create_dir_all(&disk).unwrap();
    // Each step prints `name rc`; the files are compared after.
    let script = r#"
set -u
lab=$1; t=$2; d=$t/disk
mount -t tmpfs -o size=1m lab-full "$d" || { echo "mount failed"; exit 99; }
"$lab" export kcidb --origin full --out "$d/kcidb.json" "$t/night" 2>/dev/null
echo "first-export $?"
cp -r "$t/night" "$d/night" && "$lab" report html "$d/night" > /dev/null 2>&1
echo "first-html $?"
sha256sum "$d/night/report.html" | cut -d' ' -f1 > "$t/html-before.sha"
sha256sum "$d/kcidb.json" | cut -d' ' -f1 > "$t/before.sha"
head -c 8M /dev/zero > "$d/fill" 2>/dev/null
"$lab" export kcidb --origin full --out "$d/kcidb.json" "$t/night" 2> "$t/export.err"
echo "full-export $?"
sha256sum "$d/kcidb.json" | cut -d' ' -f1 > "$t/after.sha"
"$lab" report html "$d/night" > /dev/null 2> "$t/html.err"
echo "full-html $?"
sha256sum "$d/night/report.html" | cut -d' ' -f1 > "$t/html-after.sha"
ls -A "$d/night" > "$t/night.ls"
"$lab" merge --config "$t/lab.toml" --out "$d/merged" "$t/shard" > /dev/null 2> "$t/merge.err"
echo "full-merge $?"
ls -A "$d/merged" > "$t/merged.ls" 2>&1
ls -A "$d" > "$t/disk.ls"
"#;
    let out = std::process::Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(env!("CARGO_BIN_EXE_lab"))
        .arg(t)
        .env("LAB_CACHE_DIR", test_cache())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && !text.contains("mount failed"),
        "a full-disk test needs root (unshare --mount, mount -t tmpfs): {}",
        show(&out)
    );
    let rc = |step: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(step).map(|r| r.trim().to_string()))
            .unwrap_or_else(|| panic!("{step} did not run: {text}"))
    };
    let read = |f: &str| std::fs::read_to_string(t.join(f)).unwrap_or_default();
    assert_eq!(rc("first-export"), "0", "{text}");
    // KCIDB export over a valid file: refused, the file as it was.
    assert_eq!(rc("full-export"), "2", "{text}");
    let err = read("export.err");
    assert!(
        err.contains("kcidb.json") && err.contains("No space left"),
        "{err}"
    );
    assert_eq!(read("before.sha"), read("after.sha"));
    // report.html written again on the full disk: refused, the page as it was.
    assert_eq!(rc("first-html"), "0", "{text}");
    assert_eq!(rc("full-html"), "2", "{text}");
    let err = read("html.err");
    assert!(
        err.contains("report.html") && err.contains("No space left"),
        "{err}"
    );
    assert_eq!(read("html-before.sha"), read("html-after.sha"));
    assert!(!read("night.ls").contains(".tmp."), "{}", read("night.ls"));
    // A merge into the full disk: refused naming the file, no partial results.json.
    assert_eq!(rc("full-merge"), "2", "{text}");
    let err = read("merge.err");
    assert!(err.contains("No space left"), "{err}");
    assert!(err.contains("/disk/merged/"), "{err}");
    let merged = read("merged.ls");
    assert!(
        !merged.lines().any(|l| l == "results.json"),
        "a partial results.json was left: {merged}"
    );
    // No temporary file of the writer is left behind either.
    let disk = read("disk.ls");
    assert!(!disk.contains(".tmp."), "{disk}");
    assert!(!merged.contains(".tmp."), "{merged}");
}
