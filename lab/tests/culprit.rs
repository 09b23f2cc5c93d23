//! A night that finds a regression on a git branch names the commit that caused it. The
//! branch is a fixture tree whose commits install real kernels (the fixed baseline, then the
//! racy epoll variant) through real make, with a commit in the range that does not build;
//! every run boots a real kernel under QEMU with the ADD-vs-close race forced by a schedule.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The fixture branch: c0 and c1 fixed, c2 does not build, c3 fixed, c4 brings the race in,
/// c5 keeps it. Returns the repository and its commits.
fn branch(tmp: &Path) -> (PathBuf, Vec<String>) {
    let good = built_kernel("baseline");
    let racy = built_kernel("epoll-unpinned-poll");
    fixture_tree(
        tmp,
        &[
            ("fixture: the fixed kernel", good.clone()),
            ("fixture: a harmless change", good.clone()),
            ("fixture: a change that does not build", PathBuf::new()),
            ("fixture: mend the build", good),
            ("fixture: the race comes in", racy.clone()),
            ("fixture: a later change", racy),
        ],
    )
}

/// A lab of one cell on the fixture branch's ref `night` × the forced dma-buf race, with
/// its own history, and `bisect` as its [bisect] table.
fn lab_on(tmp: &Path, repo: &Path, bisect: &str) -> PathBuf {
    let kernels = tmp.join("kernels");
    copy_dir(&repo_dir("kernels"), &kernels);
    git_variant(&kernels, "branch", repo, "night");
    let config = tmp.join("lab.toml");
    std::fs::write(
        &config,
        format!(
            "name = \"culprit lab\"\nkernels = \"kernels\"\nscenarios = {:?}\n\
             results = \"nights\"\nruns = 1\nduration = \"10s\"\n[[matrix]]\n\
             variants = [\"branch\"]\nscenarios = [\"epoll-dmabuf-schedule\"]\n[bisect]\n{bisect}",
            repo_dir("scenarios")
        ),
    )
    .unwrap();
    config
}

fn night(args: &[&str], config: &Path, out: &Path) -> (std::process::Output, Value) {
    let output = lab()
        .arg("nightly")
        .args(args)
        .arg("--config")
        .arg(config)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    (output, results(out))
}

fn results(out: &Path) -> Value {
    std::fs::read(out.join("results.json"))
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or(Value::Null)
}

fn move_ref(repo: &Path, commit: &str) {
    git(repo, &["update-ref", "refs/heads/night", commit]);
}

/// Night 1 at c0 is clean; night 2 at c5 finds the race as a regression, bisects it (the
/// commit that does not build is met and stepped around) and names c4 in results.json,
/// summary.md, report.html, the JUnit failure, the KCIDB export (valid under kcidb-io) and
/// the history. Night 3 at a newer commit with the race still there bisects nothing and
/// shows night 2's answer. And a history in which night 2's regression comes back over the
/// same range does not bisect it again.
#[test]
fn a_regression_on_a_branch_is_bisected_once_and_named_in_every_file() {
    let _slot = vm_slot();
    let (tmp, _) = run_dir("culprit");
    let (repo, c) = branch(tmp.path());
    let config = lab_on(tmp.path(), &repo, "runs = 3\n");

    move_ref(&repo, &c[0]);
    let (out, n1) = night(&[], &config, &tmp.path().join("n1"));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(n1.get("culprits").is_none(), "{n1}");

    move_ref(&repo, &c[5]);
    let n2_dir = tmp.path().join("n2");
    let (out, n2) = night(&[], &config, &n2_dir);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let culprits = n2["culprits"].as_array().expect("culprits");
    assert_eq!(culprits.len(), 1, "{n2}");
    let k = &culprits[0];
    assert_eq!(k["commit"], c[4].as_str(), "{k}");
    assert_eq!(k["direction"], "introduced");
    assert_eq!(
        (k["old"].as_str(), k["new"].as_str()),
        (Some(c[0].as_str()), Some(c[5].as_str()))
    );
    assert!(k["confidence"].as_f64().unwrap() >= 0.95, "{k}");
    assert!(k["undecided"].is_null(), "{k}");
    // The step that does not build was met: stepped around, not called clean or racy.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{} does not build", &c[2][..12])),
        "{stderr}"
    );
    let line = format!("introduced by `{} fixture: the race comes in`", &c[4][..12]);
    let summary = std::fs::read_to_string(n2_dir.join("summary.md")).unwrap();
    assert!(summary.contains("## Regressions"), "{summary}");
    assert!(summary.contains(&line), "{summary}");
    let html = std::fs::read_to_string(n2_dir.join("report.html")).unwrap();
    assert!(html.contains(&line), "{html}");
    let junit = std::fs::read_to_string(n2_dir.join("junit.xml")).unwrap();
    assert!(junit.contains(&line), "{junit}");
    let export = lab()
        .args(["export", "kcidb", "--origin", "lab_test", "--out"])
        .arg(n2_dir.join("kcidb.json"))
        .arg(&n2_dir)
        .output()
        .unwrap();
    assert_eq!(export.status.code(), Some(0), "{}", show(&export));
    kcidb_counts(&n2_dir.join("kcidb.json"));
    let kcidb: Value =
        serde_json::from_slice(&std::fs::read(n2_dir.join("kcidb.json")).unwrap()).unwrap();
    let issue = &kcidb["issues"][0];
    assert!(
        issue["comment"].as_str().unwrap().contains(&line),
        "{issue}"
    );
    assert_eq!(issue["misc"]["culprits"][0]["commit"], c[4].as_str());
    assert!(kcidb["incidents"][0]["comment"]
        .as_str()
        .unwrap()
        .contains(&line));

    // A copy of the history as it stood before night 2's runs were recorded, with night 2's
    // answer: night 2 again over the same range reports that answer and bisects nothing.
    let nights = tmp.path().join("nights");
    let copy = tmp.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(nights.join("history.sqlite"), copy.join("history.sqlite")).unwrap();
    let db = rusqlite::Connection::open(copy.join("history.sqlite")).unwrap();
    // Night 2's runs go (its row stays: the culprit names the night that found it).
    db.execute_batch(
        "DELETE FROM reports WHERE run IN (SELECT id FROM runs WHERE night = 2);
         DELETE FROM runs WHERE night = 2;",
    )
    .unwrap();
    drop(db);
    let copied = tmp.path().join("lab-copy.toml");
    std::fs::write(
        &copied,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("results = \"nights\"", "results = \"copy\""),
    )
    .unwrap();
    let (out, again) = night(&[], &copied, &tmp.path().join("n2-again"));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("already bisected by the night of"),
        "{stderr}"
    );
    assert!(!stderr.contains("bisecting branch"), "{stderr}");
    assert_eq!(again["culprits"][0]["commit"], c[4].as_str());
    assert_eq!(again["culprits"][0]["earlier"], n2["started"]);

    // Night 3 at a newer commit, the race still there: no change, no bisection, night 2's
    // answer shown.
    let newer = {
        std::fs::write(repo.join("fixture-commit"), "fixture: newer still").unwrap();
        git(&repo, &["checkout", "-q", &c[5]]);
        git(&repo, &["commit", "-q", "-am", "fixture: newer still"]);
        git(&repo, &["rev-parse", "HEAD"])
    };
    move_ref(&repo, &newer);
    let n3_dir = tmp.path().join("n3");
    let (out, n3) = night(&[], &config, &n3_dir);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("bisecting branch"), "{stderr}");
    assert_eq!(n3["culprits"][0]["commit"], c[4].as_str(), "{n3}");
    let summary = std::fs::read_to_string(n3_dir.join("summary.md")).unwrap();
    assert!(
        summary.contains("## Culprits of reports still there"),
        "{summary}"
    );
    assert!(summary.contains(&line), "{summary}");
    // The cell's timeline: its three nights, the commits they tested, the culprit.
    let timeline = &n3["timelines"][0];
    let commits: Vec<&str> = timeline["nights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["commit"].as_str().unwrap())
        .collect();
    assert_eq!(commits, [newer.as_str(), &c[5], &c[0]], "{timeline}");
    assert_eq!(timeline["culprits"][0]["commit"], c[4].as_str());
    let html = std::fs::read_to_string(n3_dir.join("report.html")).unwrap();
    assert!(html.contains("History of each cell"), "{html}");
}

/// A night of two shards: the shards bisect nothing (they know no history); the merge
/// bisects once, within lab.toml's budget: with one build allowed, the commit that does not
/// build spends it and the answer is undecided, naming why and the range left.
#[test]
fn a_merged_night_bisects_once_within_its_budget() {
    let _slot = vm_slot();
    let (tmp, _) = run_dir("culprit-shards");
    let (repo, c) = branch(tmp.path());
    let config = lab_on(tmp.path(), &repo, "runs = 3\nbuilds = 1\n");
    move_ref(&repo, &c[0]);
    // Two runs, as the two shards will run: the same plan, so the nights compare.
    let (out, _) = night(&["--runs", "2"], &config, &tmp.path().join("n1"));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));

    move_ref(&repo, &c[5]);
    let mut shards = Vec::new();
    for k in 1..=2 {
        let dir = tmp.path().join(format!("s{k}"));
        let (out, shard) = night(
            &["--runs", "2", "--shard", &format!("{k}/2")],
            &config,
            &dir,
        );
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        assert!(shard.get("culprits").is_none(), "{shard}");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("bisecting"));
        shards.push(dir);
    }
    let merged = tmp.path().join("merged");
    let out = lab()
        .arg("merge")
        .args(&shards)
        .arg("--config")
        .arg(&config)
        .arg("--out")
        .arg(&merged)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("bisecting branch").count(), 1, "{stderr}");
    let night = results(&merged);
    let k = &night["culprits"][0];
    assert!(k["commit"].is_null(), "{k}");
    assert_eq!(k["undecided"], "budget spent: 1 builds", "{k}");
    assert_eq!(k["builds"], 1, "{k}");
    // Nothing was decided: the answer lies anywhere after the old end up to the racy end.
    assert_eq!(k["range"][0], Value::Null, "{k}");
    assert_eq!(k["range"][1], c[5].as_str(), "{k}");
    let summary = std::fs::read_to_string(merged.join("summary.md")).unwrap();
    assert!(
        summary.contains(&format!(
            "introduced by a commit not pinned down: budget spent: 1 builds; left: after {} up \
             to {}",
            &c[0][..12],
            &c[5][..12]
        )),
        "{summary}"
    );
}
