//! Test programs in the guest: a kselftest-harness program, built against the harness of the
//! kernel tree the lab extracted, run by the `selftest` workload on the lab's `baseline`
//! kernel, gives one result per test with its times — pass, skip, failure, the harness's own
//! timeout, and a test the lab's time limit ended.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `harness_cases.c` of the TAP corpus, compiled as the lab's guest runs it (static).
fn harness_cases(out: &Path) -> PathBuf {
    let kernel = built_kernel("baseline");
    // The cache's trees/ holds the extracted source the kernel was built from.
    let trees = kernel.parent().unwrap().parent().unwrap().join("trees");
    let selftests = std::fs::read_dir(&trees)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("src/tools/testing/selftests"))
        .find(|p| p.join("kselftest_harness.h").is_file())
        .unwrap_or_else(|| {
            panic!(
                "no kernel tree with kselftest_harness.h in {}",
                trees.display()
            )
        });
    let program = out.join("harness_cases");
    let cc = std::process::Command::new("gcc")
        .args(["-O2", "-static", "-pthread", "-I"])
        .arg(&selftests)
        .arg("-o")
        .arg(&program)
        .arg(repo_dir("lab/tests/corpus/tap/harness_cases.c"))
        .output()
        .unwrap();
    assert!(cc.status.success(), "{}", show(&cc));
    program
}

fn run(program: &Path, dir: &Path, params: &[&str]) -> Value {
    let mut cmd = lab();
    cmd.args([
        "boot",
        "--cpus",
        "2",
        "--workload",
        "selftest",
        "--duration",
        "120s",
    ])
    .arg("--kernel")
    .arg(built_kernel("baseline").join("bzImage"))
    .arg("--extra")
    .arg(format!("/bin/harness_cases={}", program.display()))
    .args(["--param", "path=/bin/harness_cases"]);
    for p in params {
        cmd.args(["--param", p]);
    }
    let out = cmd.arg("--out").arg(dir).output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    outcome(dir)
}

fn statuses(o: &Value) -> Vec<(String, String)> {
    o["tests"]["tests"]
        .as_array()
        .unwrap_or_else(|| panic!("no tests in {o}"))
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_harness_program_gives_one_result_per_test_with_its_time() {
    let _slot = vm_slot();
    let (_tmp, dir) = run_dir("selftest");
    let program = harness_cases(_tmp.path());
    let o = run(&program, &dir, &[r#"args=["-T","sleeps"]"#]);
    assert_eq!(o["outcome"]["kind"], "completed");
    assert_eq!(o["tests"]["planned"], 4);
    let want = [
        ("global.passes", "pass"),
        ("global.skips", "skip"),
        ("global.fails", "fail"),
        ("slow.hangs", "timeout"),
    ];
    let got = statuses(&o);
    assert_eq!(
        got,
        want.map(|(n, s)| (n.to_string(), s.to_string())).to_vec()
    );
    let tests = o["tests"]["tests"].as_array().unwrap();
    assert_eq!(tests[1]["reason"], "no such device here");
    // The hanging test ran until the harness's 2 s timeout; times are the guest's clock.
    let hang = &tests[3];
    let took = hang["ended_ms"].as_u64().unwrap() - hang["started_ms"].as_u64().unwrap();
    assert!((1900..30_000).contains(&took), "{hang}");
    assert_eq!(o["observations"]["selftest"]["exit_status"], 1);
    assert!(qemu_left(&dir).is_empty());
}

#[test]
fn a_test_still_running_at_the_lab_s_limit_is_a_timeout_and_the_run_goes_on() {
    let _slot = vm_slot();
    let (_tmp, dir) = run_dir("selftest-limit");
    let program = harness_cases(_tmp.path());
    let o = run(
        &program,
        &dir,
        &[r#"args=["-t","sleeps"]"#, "timeout_ms=5000"],
    );
    assert_eq!(o["outcome"]["kind"], "completed");
    assert_eq!(
        statuses(&o),
        [("slow.sleeps".to_string(), "timeout".to_string())]
    );
    let test = &o["tests"]["tests"][0];
    assert_eq!(test["reason"], "still running at the lab's time limit");
    assert_eq!(o["observations"]["selftest"]["timed_out"], true);
}
