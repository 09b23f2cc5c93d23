//! `lab explore` on real kernels: from a captured report of the unpinned poll, the search
//! finds an interleaving with no location written by hand, and `lab run` reproduces it from
//! the file written; a search that finds nothing ends with what survived, not an error.

mod common;

use common::{built_kernel, lab, repo_dir, run_json, show, vm_slot};
use serde_json::Value;
use std::path::Path;

fn explore(args: &[&str], dir: &Path) -> (std::process::Output, Value) {
    let out = lab()
        .arg("explore")
        .args(args)
        .arg("--kernels")
        .arg(repo_dir("kernels"))
        .arg("--scenarios")
        .arg(repo_dir("scenarios"))
        .arg("--dir")
        .arg(dir)
        .arg("--no-canary")
        .output()
        .unwrap();
    let record = std::fs::read(dir.join("explore.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    (out, record)
}

/// Every location of a schedule file (`at = "..."`).
fn locations(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("at = "))
        .map(|l| l.trim_matches('"').to_string())
        .collect()
}

#[test]
fn explore_from_a_report_finds_the_unpinned_race_and_lab_run_reproduces_it() {
    let _slot = vm_slot();
    built_kernel("epoll-unpinned-poll");
    let tmp = tempfile::tempdir().unwrap();
    let scenarios = tmp.path().join("scenarios");
    std::fs::create_dir(&scenarios).unwrap();
    let file = scenarios.join("dmabuf-found.toml");
    let console = repo_dir("lab/tests/corpus/console/epoll-unpinned-poll-dmabuf.log");
    let (out, record) = explore(
        &[
            "--variant",
            "epoll-unpinned-poll",
            "--scenario",
            "epoll-dmabuf-race",
            "--from",
            console.to_str().unwrap(),
            "--budget",
            "60",
            "--confirm",
            "0",
            "--verify",
            "2",
            "--out",
            file.to_str().unwrap(),
        ],
        &tmp.path().join("explore"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let outcome = &record["outcome"];
    assert_eq!(outcome["kind"], "found", "{record}");
    assert_eq!(outcome["title"], "WARNING in dma_buf_poll");
    // Each hit was checked before the search took it.
    assert!(
        !record["verified"].as_array().unwrap().is_empty(),
        "{record}"
    );
    // Every location came from the report or from what the roles were seen executing: the
    // record's ranked stops hold each, with where it came from.
    let text = std::fs::read_to_string(&file).unwrap();
    let stops = record["search"]["stops"].as_array().unwrap();
    let at = locations(&text);
    assert!(at.len() >= 2, "{text}");
    let widened: Vec<&Value> = record["widened"]
        .as_array()
        .map(|w| w.iter().filter(|w| w["kept"] == true).collect())
        .unwrap_or_default();
    for location in &at {
        // A step moved to its caller came from the report's stacks: the record says which.
        if widened.iter().any(|w| w["to"] == location.as_str()) {
            assert!(
                text.contains(&format!("# {location}: the caller of ")),
                "{text}"
            );
            continue;
        }
        let stop = stops
            .iter()
            .find(|s| s["function"] == location.as_str())
            .unwrap_or_else(|| panic!("{location} is not among the stops: {record}"));
        assert!(!stop["from"].as_array().unwrap().is_empty(), "{stop}");
        assert!(text.contains(&format!("# {location}: ")), "{text}");
    }
    // Every attempt of the search is in the record, and an interleaving was never handed out
    // twice under two ids.
    let trials = record["search"]["trials"].as_array().unwrap();
    let mut steps: Vec<String> = trials
        .iter()
        .filter(|t| t["trial"]["kind"] == "interleaving")
        .map(|t| t["trial"]["steps"].to_string())
        .collect();
    let distinct = steps.len();
    steps.sort();
    steps.dedup();
    assert_eq!(steps.len(), distinct);

    // The file is a scenario like any other: lab run forces it and the report follows its
    // first applied attempt.
    let (out, runs) = run_json(
        &[
            "--variant",
            "epoll-unpinned-poll",
            "--scenario",
            "dmabuf-found",
            "--scenarios",
            scenarios.to_str().unwrap(),
            "--no-canary",
        ],
        &tmp.path().join("run"),
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let run = &runs[0];
    let titles: Vec<&str> = run["reports"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["title"].as_str())
        .collect();
    assert!(titles.contains(&"WARNING in dma_buf_poll"), "{run}");
    // The report followed an applied attempt of the schedule written (not stress alone).
    let record = &run["record"];
    let at = record["timing"]["workload_started_ms"].as_u64().unwrap()
        + run["first_report_ms"].as_u64().unwrap();
    let attempts = record["schedule"]["attempts"].as_array().unwrap();
    assert!(
        attempts
            .iter()
            .any(|a| a["missed"].is_null() && a["started_ms"].as_u64().unwrap() <= at),
        "{run}"
    );

    // On the kernel with the fix the same file is applied and survived, not "never applied":
    // its steps were moved to where both kernels go (what bisect and compare need of it).
    built_kernel("baseline");
    let (out, runs) = run_json(
        &[
            "--variant",
            "baseline",
            "--scenario",
            "dmabuf-found",
            "--scenarios",
            scenarios.to_str().unwrap(),
            "--duration",
            "10s",
            "--no-canary",
        ],
        &tmp.path().join("baseline"),
    );
    assert_eq!(out.status.code(), Some(0), "{}\n{text}", show(&out));
    assert_eq!(runs[0]["evidence"]["kind"], "survived", "{}", runs[0]);
}

/// With nothing to find (baseline pins the file), the search spends its budget and says what
/// survived: exit 1, an outcome of kind "survived", no scenario written.
#[test]
fn a_search_that_finds_nothing_says_what_survived() {
    let _slot = vm_slot();
    built_kernel("baseline");
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("nothing.toml");
    let (out, record) = explore(
        &[
            "--variant",
            "baseline",
            "--scenario",
            "epoll-dmabuf-race",
            "--any-report",
            "--at",
            "__fput",
            "--at",
            "ep_item_poll",
            "--budget",
            "2",
            "--out",
            file.to_str().unwrap(),
        ],
        &tmp.path().join("explore"),
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let outcome = &record["outcome"];
    assert_eq!(outcome["kind"], "survived", "{record}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("distinct interleavings of these")
            && stdout.contains("the kernel survived all of them"),
        "{stdout}"
    );
    assert!(!file.exists());
    // The run in which the budget ran out ended then, not at its duration's end: its
    // workload was told to stop.
    let runs: Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("explore/runs/runs.json")).unwrap())
            .unwrap();
    let runs = runs.as_array().expect("runs.json is a list of runs");
    let exhausted: Vec<&Value> = runs
        .iter()
        .map(|r| &r["record"])
        .filter(|r| r["schedule"]["exhausted_ms"].is_u64())
        .collect();
    assert!(
        !exhausted.is_empty(),
        "no run saw the budget run out: {runs:?}"
    );
    // Told 5 s or more before the deadline (the budget of 2 runs out well inside a run).
    let mut told = 0;
    for record in exhausted {
        let at = record["schedule"]["exhausted_ms"].as_u64().unwrap();
        let timing = &record["timing"];
        let deadline = timing["workload_started_ms"].as_u64().unwrap()
            + record["duration_ms"].as_u64().unwrap();
        if at + 5_000 > deadline {
            continue;
        }
        told += 1;
        let done = timing["done_ms"].as_u64();
        assert!(
            done.is_some_and(|d| d < deadline),
            "exhausted at {at} ms, the workload's deadline at {deadline} ms, done at {done:?}"
        );
    }
    assert!(
        told > 0,
        "the budget ran out in no run before its last 5 s: {runs:?}"
    );
}
