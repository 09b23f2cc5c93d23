//! Schedules forced through QEMU's gdbstub on real kernels: the seed race's interleaving is
//! applied on both kernels, and only the unpinned one reports.

mod common;

use common::{repo_dir, run_dir, run_json, show, vm_slot};
use serde_json::Value;

fn scheduled_run(
    variant: &str,
    scenario: &str,
    duration: &str,
    out: &std::path::Path,
) -> (std::process::Output, Value) {
    run_json(
        &[
            "--variant",
            variant,
            "--scenario",
            scenario,
            "--scenarios",
            repo_dir("scenarios").to_str().unwrap(),
            "--duration",
            duration,
        ],
        out,
    )
}

/// The seed schedule's steps: (name, vCPU, task).
const SEED: [(&str, u64, &str); 3] = [
    ("wait", 1, "poller"),
    ("last-ref", 0, "closer"),
    ("poll", 1, "poller"),
];

/// The attempts of a run that reached every step, each checked to have reached `steps` in
/// order, on the vCPUs the workload pins its threads to, each by the thread of the step's role
/// (the name of the kernel's current task there).
fn applied<'a>(run: &'a Value, steps: &[(&str, u64, &str)]) -> Vec<&'a Value> {
    let attempts = run["record"]["schedule"]["attempts"]
        .as_array()
        .unwrap_or_else(|| panic!("no schedule record: {run}"));
    let applied: Vec<&Value> = attempts.iter().filter(|a| a["missed"].is_null()).collect();
    for attempt in &applied {
        let reached = attempt["reached"].as_array().unwrap();
        let order: Vec<(&str, u64, &str)> = reached
            .iter()
            .map(|r| {
                (
                    r["step"].as_str().unwrap(),
                    r["cpu"].as_u64().unwrap(),
                    r["task"].as_str().unwrap_or("?"),
                )
            })
            .collect();
        assert_eq!(order, steps, "{attempt}");
        let times: Vec<u64> = reached
            .iter()
            .map(|r| r["at_ms"].as_u64().unwrap())
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{attempt}");
        assert!(
            attempt["resumed_ms"].as_u64() >= times.last().copied(),
            "{attempt}"
        );
    }
    applied
}

/// How many applied attempts had ended (the guest resumed) when the run's first report
/// came: 0 when stress alone got there first.
fn applied_before_the_report(run: &Value) -> usize {
    let record = &run["record"];
    let at = record["timing"]["workload_started_ms"].as_u64().unwrap()
        + run["first_report_ms"].as_u64().unwrap();
    record["schedule"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["missed"].is_null() && a["resumed_ms"].as_u64().is_some_and(|r| r <= at))
        .count()
}

/// Up to `tries` runs of `variant` × `scenario`, until one whose report followed an applied
/// attempt: each must fail with `WARNING in dma_buf_poll` first, and one whose report came
/// before any applied attempt (stress's, not the schedule's) must name the step each of its
/// attempts missed and where the vCPUs were. Returns that run, or fails naming the misses.
fn a_run_whose_report_followed_an_applied_attempt(
    variant: &str,
    scenario: &str,
    duration: &str,
    steps: &[(&str, u64, &str)],
    tries: usize,
) -> Value {
    let mut explained_misses = Vec::new();
    for attempt in 1..=tries {
        let (_tmp, out) = run_dir("schedule-followed");
        let (output, runs) = scheduled_run(variant, scenario, duration, &out);
        assert_eq!(output.status.code(), Some(1), "{}", show(&output));
        let run = runs[0].clone();
        assert_eq!(run["verdict"]["verdict"], "fail", "{run}");
        let first = run["verdict"]["detail"].as_str().unwrap();
        assert!(first.contains("dma_buf_poll"), "first report: {first}");
        assert!(
            run["record"]["schedule"]["armed_ms"].as_u64().is_some(),
            "{run}"
        );
        assert!(run["record"]["schedule"]["error"].is_null(), "{run}");
        // Every applied attempt executed the steps in order, each by its role's thread.
        let applied_attempts = applied(&run, steps).len();
        if applied_attempts > 0 && applied_before_the_report(&run) >= 1 {
            return run;
        }
        let attempts = run["record"]["schedule"]["attempts"].as_array().unwrap();
        assert!(
            attempts.iter().any(|a| a["missed"].is_array()),
            "run {attempt}: no applied attempt before the report, and none missed: {run}"
        );
        explained_misses.push(
            attempts
                .iter()
                .map(|a| a["missed"].to_string())
                .collect::<Vec<_>>(),
        );
    }
    panic!("in {tries} runs the report never followed an applied attempt: {explained_misses:?}");
}

#[test]
fn the_seed_schedule_is_applied_on_both_kernels_and_only_the_unpinned_one_reports() {
    let _slot = vm_slot();
    // A first attempt can miss: in one full test run here (of two), vCPU 0 sat in
    // stop_machine (migration/0) waiting for the vCPU the schedule held, the step there was
    // never reached, and stress reported 40 ms after the guest resumed.
    let run = a_run_whose_report_followed_an_applied_attempt(
        "epoll-unpinned-poll",
        "epoll-dmabuf-schedule",
        "20s",
        &SEED,
        3,
    );
    // The seed schedule is applied at its first attempt (20/20 runs, bench/schedules.sh).
    assert_eq!(applied_before_the_report(&run), 1, "{run}");

    let (_tmp, out) = run_dir("schedule-baseline");
    let (output, runs) = scheduled_run("baseline", "epoll-dmabuf-schedule", "8s", &out);
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    let run = &runs[0];
    assert_eq!(run["verdict"]["verdict"], "pass", "{run}");
    assert!(!applied(run, &SEED).is_empty(), "{run}");
    // Not a stress pass: the evidence says what was applied and survived.
    assert_eq!(run["evidence"]["kind"], "survived", "{run}");
    assert_eq!(
        run["evidence"]["applied"].as_u64(),
        Some(applied(run, &SEED).len() as u64),
        "{run}"
    );
    assert_eq!(run["evidence"]["interleavings"], 1, "{run}");
    // lab run's line for the run says so (on stderr beside --json's stdout).
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("survived "),
        "{}",
        show(&output)
    );
    assert!(run["record"]["schedule"]["error"].is_null(), "{run}");
    // The stops left no trace a report parser would take for a finding.
    let console = std::fs::read_to_string(out.join("run-001/console.log")).unwrap();
    assert!(!console.contains("soft lockup") && !console.contains("rcu_sched self-detected"));
}

/// The gap in release-on-close (EPOLL_CTL_ADD vs close() of its fd, a poller on a third
/// vCPU), forced on a 3-vCPU guest: the unpinned poll's WARNING follows, and every applied
/// attempt executed the five steps in order, each by its role's thread, and the report came
/// after an applied attempt.
#[test]
fn the_add_close_gap_is_forced_on_release_on_close() {
    let _slot = vm_slot();
    // The first attempt misses its step "add" in 3 of 20 runs (bench/schedules.sh: the adder
    // was past its allocation when the closer entered close()), and stress then reports in
    // the free run that follows; up to five runs are made (all five missing: about 1 in
    // 13,000 at that rate).
    let run = a_run_whose_report_followed_an_applied_attempt(
        "epoll-release-on-close",
        "epoll-add-close-schedule",
        "10s",
        &[
            ("close", 0, "closer"),
            ("add", 1, "adder"),
            ("closed", 0, "closer"),
            ("last-ref", 1, "adder"),
            ("poll", 2, "poller"),
        ],
        5,
    );
    assert_eq!(run["record"]["guest"]["nproc"], 3, "{run}");
}

/// A location this kernel does not have stops `lab run` before anything boots, naming the
/// scenario's line, the step and the names it has instead.
#[test]
fn a_step_at_a_symbol_the_kernel_lacks_is_refused_before_booting() {
    let (tmp, out) = run_dir("schedule-typo");
    let scenarios = tmp.path().join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    let text = std::fs::read_to_string(repo_dir("scenarios/epoll-dmabuf-schedule.toml")).unwrap();
    let line = text
        .lines()
        .position(|l| l.trim() == "at = \"ep_item_poll\"")
        .unwrap()
        + 1;
    std::fs::write(
        scenarios.join("typo.toml"),
        text.replace("at = \"ep_item_poll\"", "at = \"ep_item_pol\""),
    )
    .unwrap();
    let (output, _) = run_json(
        &[
            "--variant",
            "baseline",
            "--scenario",
            "typo",
            "--scenarios",
            scenarios.to_str().unwrap(),
        ],
        &out,
    );
    assert_eq!(output.status.code(), Some(2), "{}", show(&output));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains(&format!(
            "typo.toml:{line}: step \"poll\": at = \"ep_item_pol\""
        )),
        "{err}"
    );
    assert!(err.contains("similar: ep_item_poll"), "{err}");
    assert!(!out.join("run-001").exists(), "nothing was booted");
}
