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

/// `lab run` with the repository's scenarios.
fn lab_run(args: &[&str], out: &Path) -> (std::process::Output, Value) {
    let scenarios = repo_dir("scenarios");
    let mut all = args.to_vec();
    all.extend(["--scenarios", scenarios.to_str().unwrap()]);
    run_json(&all, out)
}

/// The epoll selftests as a scenario: built from the variant's own tree against its
/// `make headers`, shipped into the guest and run by the agent, one result per test.
#[test]
fn the_epoll_selftest_directory_runs_as_a_scenario_with_one_result_per_test() {
    let _slot = vm_slot();
    let (_tmp, out) = run_dir("suite");
    let (output, runs) = lab_run(
        &["--variant", "baseline", "--scenario", "epoll-selftests"],
        &out,
    );
    let run = &runs[0];
    let tests = &run["record"]["tests"];
    let program = &tests["tests"][0];
    assert_eq!(
        program["name"],
        "selftests: filesystems/epoll: epoll_wakeup_test",
        "{}",
        show(&output)
    );
    let subtests = program["subtests"].as_array().unwrap();
    assert_eq!(subtests.len(), 64, "{program}");
    // Every test ran (the kernel has AF_UNIX: none is "not run here"). Under TCG a few
    // timing-dependent tests fail now and then (epoll58: 10 of 20 runs alone, which the
    // scenario lists as flaky): the verdict must say exactly which others failed.
    let failed: Vec<String> = subtests
        .iter()
        .filter(|t| t["status"] != "pass")
        .inspect(|t| {
            assert_eq!(t["status"], "fail", "{t}");
            assert!(!t["diagnostics"].as_array().unwrap().is_empty(), "{t}");
        })
        .map(|t| t["name"].as_str().unwrap())
        .filter(|name| *name != "global.epoll58")
        .map(|name| format!("epoll_wakeup_test/{name} (not ok)"))
        .collect();
    assert!(failed.len() <= 2, "{failed:?}");
    if failed.is_empty() {
        assert_eq!(run["verdict"]["verdict"], "pass", "{run}");
        assert_eq!(output.status.code(), Some(0));
    } else {
        assert_eq!(
            run["verdict"]["detail"],
            format!("{} test(s) fail: {}", failed.len(), failed.join(", ")),
            "{run}"
        );
        assert_eq!(output.status.code(), Some(1));
    }
    // Each test has its times (the guest's clock), the program ended by itself.
    assert!(subtests
        .iter()
        .all(|t| t["ended_ms"].as_u64() >= t["started_ms"].as_u64()));
    assert!(out.join("run-001/tests.json").is_file());
    // The programs were built from the variant's tree, into its cache entry.
    let kernel = built_kernel("baseline");
    assert!(kernel
        .join("suites/tools_testing_selftests_filesystems_epoll/epoll_wakeup_test")
        .is_file());
    assert!(kernel.join("usr/include/linux/eventpoll.h").is_file());
}

/// A syzbot-style reproducer: compiled against the variant's headers, it finds the 2024
/// race on the unpinned variant; one that does not compile says where.
#[test]
fn a_reproducer_runs_with_repro_and_one_that_does_not_compile_names_the_error() {
    let _slot = vm_slot();
    let (tmp, out) = run_dir("repro");
    let repro = repo_dir("repros/epoll-dmabuf-close.c");
    let (output, runs) = lab_run(
        &[
            "--variant",
            "epoll-unpinned-poll",
            "--repro",
            repro.to_str().unwrap(),
            "--duration",
            "20s",
        ],
        &out,
    );
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    let run = &runs[0];
    assert_eq!(run["record"]["workload"], "repro", "{run}");
    let first = run["verdict"]["detail"].as_str().unwrap();
    assert!(
        first.contains("dma_buf_poll") || first.contains("KASAN"),
        "first report: {first}"
    );

    let bad = tmp.path().join("bad.c");
    std::fs::write(
        &bad,
        "#include <linux/eventpoll.h>\nint main(void)\n{\n\treturn no_such_thing;\n}\n",
    )
    .unwrap();
    let (output, _) = lab_run(
        &["--variant", "baseline", "--repro", bad.to_str().unwrap()],
        &tmp.path().join("bad-run"),
    );
    assert_ne!(output.status.code(), Some(0));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("bad.c does not compile: "), "{err}");
    assert!(err.contains("bad.c:4:"), "{err}");
    assert!(err.contains("'no_such_thing' undeclared"), "{err}");
}
