//! The detector canary on a real kernel: on the lab's `baseline` every detector it carries
//! (KASAN, WARNING, the hung-task and soft-lockup detectors) reports the fault LKDTM provokes
//! for it; on a machine whose command line keeps the console at `loglevel=1` the same kernel's
//! reports do not reach the console, and the canary says which.

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

fn fired(c: &Value) -> Vec<(String, bool, String)> {
    c["proofs"]
        .as_array()
        .unwrap()
        .iter()
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
    let all = fired(&c);
    assert_eq!(
        all.iter().map(|(d, ..)| d.as_str()).collect::<Vec<_>>(),
        ["kasan", "warning", "hung-task", "soft-lockup"]
    );
    for (detector, ok, seen) in &all {
        assert!(ok, "{detector} did not fire: {seen:?}");
    }
    assert!(all[0]
        .2
        .starts_with("KASAN: slab-use-after-free Read in lkdtm_READ_AFTER_FREE"));
    assert_eq!(all[1].2, "WARNING in lkdtm_WARNING");
    assert_eq!(all[2].2, "INFO: task hung in lkdtm_HUNG_TASK");

    // The same kernel with the console at loglevel 1: KASAN, WARN and the hung-task detector
    // print at KERN_ERR or KERN_WARNING, below it; the soft-lockup detector's header is
    // KERN_EMERG and gets through, its stack does not.
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
    assert!(all.iter().all(|(_, ok, _)| !ok), "{all:?}");
    assert_eq!(
        all.iter()
            .map(|(_, _, seen)| seen.as_str())
            .collect::<Vec<_>>(),
        ["", "", "", "BUG: soft lockup"]
    );
}
