//! The detector canary on a real kernel: on the lab's `baseline` every detector it carries
//! (KASAN, WARNING, the hung-task and soft-lockup detectors, lockdep) reports the fault LKDTM
//! provokes for it; on a machine whose command line keeps the console at `loglevel=1` the same kernel's
//! reports do not reach the console, and the canary says which. A race run that prints
//! nothing on such a machine says nothing (inconclusive), never a pass.

mod common;

use common::*;
use serde_json::Value;

/// `lab canary ARGS --out DIR` on `baseline`: (exit status, canary.json).
fn canary(args: &[&str], out: &std::path::Path) -> (Option<i32>, Value) {
    let o = lab()
        .args(["canary", "--variant", "baseline", "--kernels"])
        .arg(repo_dir("kernels"))
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    let json = std::fs::read(out.join("canary.json"))
        .unwrap_or_else(|e| panic!("no canary.json ({e}): {}", show(&o)));
    (o.status.code(), serde_json::from_slice(&json).unwrap())
}

/// Each detector's (name, fired, what it printed); one the kernel does not build is left out.
fn fired(c: &Value) -> Vec<(String, bool, String)> {
    c["proofs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["absent"] != true)
        .map(|p| {
            (
                p["detector"].as_str().unwrap().to_string(),
                p["fired"].as_bool().unwrap(),
                p["seen"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn every_detector_fires_on_the_default_machine_and_loglevel_1_silences_them() {
    let _slot = vm_slot();
    built_kernel("baseline");
    let (_tmp, out) = run_dir("canary");
    let (code, c) = canary(&[], &out);
    assert_eq!(code, Some(0), "{c}");
    // KCSAN is not built with KASAN: absent, not failed.
    let kcsan = &c["proofs"].as_array().unwrap()[5];
    assert_eq!(
        (&kcsan["detector"], &kcsan["absent"]),
        (&"kcsan".into(), &true.into())
    );
    let all = fired(&c);
    assert_eq!(
        all.iter().map(|(d, ..)| d.as_str()).collect::<Vec<_>>(),
        ["kasan", "warning", "hung-task", "soft-lockup", "lockdep"]
    );
    for (detector, ok, seen) in &all {
        assert!(ok, "{detector} did not fire: {seen:?}");
    }
    assert!(all[0]
        .2
        .starts_with("KASAN: slab-use-after-free Read in lkdtm_READ_AFTER_FREE"));
    assert_eq!(all[1].2, "WARNING in lkdtm_WARNING");
    assert_eq!(all[2].2, "INFO: task hung in lkdtm_HUNG_TASK");
    assert!(all[4]
        .2
        .starts_with("WARNING: lock held when returning to user space in "));

    // The same kernel with the console at loglevel 1: KASAN, WARN and the hung-task detector
    // print at KERN_ERR or KERN_WARNING, below it; the soft-lockup detector's header is
    // KERN_EMERG and gets through, its stack does not. Lockdep is heard: turning itself off
    // with its report (debug_locks_off) raises the console's loglevel first.
    let scenarios = tempfile::tempdir().unwrap();
    std::fs::write(
        scenarios.path().join("quiet.toml"),
        "kind = \"race\"\nworkload = \"syscall_count\"\ncmdline = \"loglevel=1\"\n",
    )
    .unwrap();
    let (_tmp2, quiet) = run_dir("canary-quiet");
    let dir = scenarios.path().to_str().unwrap();
    let (code, c) = canary(&["--scenario", "quiet", "--scenarios", dir], &quiet);
    assert_eq!(code, Some(1), "{c}");
    let all = fired(&c);
    assert_eq!(
        all.iter().map(|(_, ok, _)| *ok).collect::<Vec<_>>(),
        [false, false, false, false, true],
        "{all:?}"
    );
    assert_eq!(
        all.iter()
            .take(4)
            .map(|(_, _, seen)| seen.as_str())
            .collect::<Vec<_>>(),
        ["", "", "", "BUG: soft lockup"]
    );
}

/// The canary.json a verdict's detail names (`canary: PATH)`), for a failure's message.
fn canary_named_in(detail: &str) -> String {
    let Some(path) = detail
        .split_once("canary: ")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(path, _)| path)
    else {
        return "(the detail names no canary)".into();
    };
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("cannot read {path}: {e}"))
}

/// `scenarios/epoll-dmabuf-race.toml` under another name with `head` put first, in `dir`.
fn race_with(dir: &std::path::Path, name: &str, head: &str) {
    let race = std::fs::read_to_string(repo_dir("scenarios/epoll-dmabuf-race.toml")).unwrap();
    std::fs::write(dir.join(format!("{name}.toml")), format!("{head}\n{race}")).unwrap();
}

/// `lab run --variant VARIANT --scenario NAME` from `dir`, `runs` runs of 5 s: (exit status,
/// each run's (verdict, detail)).
fn race_runs(
    variant: &str,
    name: &str,
    dir: &std::path::Path,
    runs: &str,
) -> (i32, Vec<(String, String)>) {
    let (_tmp, out) = run_dir("canary-race");
    let (o, json) = run_json(
        &[
            "--variant",
            variant,
            "--scenario",
            name,
            "--scenarios",
            dir.to_str().unwrap(),
            "--runs",
            runs,
            "--duration",
            "5s",
        ],
        &out,
    );
    let verdicts = json
        .as_array()
        .unwrap_or_else(|| panic!("no runs: {}", show(&o)))
        .iter()
        .map(|r| {
            (
                r["verdict"]["verdict"].as_str().unwrap().to_string(),
                r["verdict"]["detail"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    (o.status.code().unwrap(), verdicts)
}

/// Two ways a detector goes silent, each judged by the machine's canary (run by `lab run`
/// itself, once per kernel, command line and kernel parameters): at `loglevel=1` the race's
/// runs on baseline (nothing to find) are inconclusive, naming every silent detector, and on
/// epoll-unpinned-poll never pass (the oops that follows the silenced WARNING and KASAN
/// reports forces its way to the console); with `nosoftlockup` only the soft-lockup detector
/// is silent, so a scenario that relies on KASAN and WARNING alone passes on that machine.
#[test]
fn a_race_on_a_machine_whose_detectors_are_silent_is_never_a_pass() {
    let _slot = vm_slot();
    built_kernel("baseline");
    built_kernel("epoll-unpinned-poll");
    let scenarios = tempfile::tempdir().unwrap();
    let dir = scenarios.path();
    race_with(dir, "quiet-race", "cmdline = \"loglevel=1\"");
    race_with(dir, "no-soft-lockup-race", "cmdline = \"nosoftlockup\"");
    race_with(
        dir,
        "no-soft-lockup-kasan-race",
        "cmdline = \"nosoftlockup\"\ndetectors = [\"kasan\", \"warning\"]",
    );

    let (code, runs) = race_runs("baseline", "quiet-race", dir, "2");
    assert_eq!(code, 1, "{runs:?}");
    for (verdict, detail) in &runs {
        assert_eq!(verdict, "error", "{detail}");
        assert!(
            detail.starts_with(
                "KASAN, WARNING, the hung-task detector and the soft-lockup detector did not \
                 fire on this machine (canary: "
            ),
            "{detail}"
        );
    }

    let (code, runs) = race_runs("epoll-unpinned-poll", "quiet-race", dir, "1");
    assert_eq!(code, 1, "{runs:?}");
    for (verdict, detail) in &runs {
        assert!(
            verdict == "fail" || detail.contains("KASAN, WARNING"),
            "{verdict}: {detail}"
        );
        assert!(!verdict.starts_with("pass"), "{verdict}: {detail}");
    }

    let (code, runs) = race_runs("baseline", "no-soft-lockup-race", dir, "1");
    assert_eq!(code, 1, "{runs:?}");
    assert_eq!(runs[0].0, "error", "{runs:?}");
    assert!(
        runs[0].1.starts_with(
            "the soft-lockup detector did not fire on this machine (SOFTLOCKUP printed"
        ),
        "{runs:?}\n{}",
        canary_named_in(&runs[0].1)
    );
    // The same machine, its canary cached: the detectors this scenario relies on fired.
    let (code, runs) = race_runs("baseline", "no-soft-lockup-kasan-race", dir, "1");
    assert_eq!((code, runs[0].0.as_str()), (0, "pass"), "{runs:?}");
}
