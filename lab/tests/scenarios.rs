//! Scenarios on real kernels: the uapi checks and a hung task on Debian's distro kernel, the requirement
//! check that skips without booting, and the epoll/dma-buf race detected on the KASAN
//! variant that reinstates it.

mod common;

use common::*;
use serde_json::Value;
use std::path::PathBuf;

fn repo(dir: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(dir)
}

/// `lab run` of a scenario of the test's own (`scenarios/<name>.toml` = `text`) on Debian's
/// distro kernel: (the directories to keep, the batch directory, the output, runs.json).
fn on_distro(
    name: &str,
    text: &str,
    extra: &[&str],
) -> ([tempfile::TempDir; 2], PathBuf, std::process::Output, Value) {
    let scenarios = tempfile::tempdir().unwrap();
    std::fs::write(scenarios.path().join(format!("{name}.toml")), text).unwrap();
    let (tmp, out) = run_dir(name);
    let kernel = distro_kernel();
    let mut args = vec![
        "--kernel",
        kernel.to_str().unwrap(),
        "--scenario",
        name,
        "--scenarios",
        scenarios.path().to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (output, runs) = run_json(&args, &out);
    ([scenarios, tmp], out, output, runs)
}

#[test]
fn uapi_epoll_on_the_distro_kernel_gives_the_upstream_answers() {
    let _slot = vm_slot();
    let (_tmp, out) = run_dir("uapi");
    let kernel = distro_kernel();
    let (output, runs) = run_json(
        &[
            "--kernel",
            kernel.to_str().unwrap(),
            "--scenario",
            "uapi-epoll",
            "--scenarios",
            repo("scenarios").to_str().unwrap(),
        ],
        &out,
    );
    assert!(output.status.success(), "{}", show(&output));
    let run = &runs[0];
    assert_eq!(run["verdict"]["verdict"], "pass", "{run}");
    let observed = &run["record"]["observations"];
    assert_eq!(observed["dup_close_keeps_registration"], true);
    assert_eq!(observed["add_same_fd_twice"], "EEXIST");
    assert_eq!(observed["f_dupfd_query_dup"], 1);
    assert_eq!(observed["parent_exit_child_keeps_events"], true);
    // Every expected check was observed.
    let expected = std::fs::read_to_string(repo("scenarios/uapi-epoll.toml")).unwrap();
    let table: toml::Value = toml::from_str(&expected).unwrap();
    for check in table["expect"].as_table().unwrap().keys() {
        assert!(!observed[check].is_null(), "{check} was not observed");
    }
}

#[test]
fn a_scenarios_kernel_params_are_set_before_the_workload_and_recorded() {
    // printk's parameters are in every kernel; KCSAN's only in a KCSAN build: on the distro
    // kernel one is set and read back, the other recorded as absent, and the run goes on.
    let _slot = vm_slot();
    let (_dirs, _, output, runs) = on_distro(
        "params",
        "kind = \"race\"\nworkload = \"syscall_count\"\nduration = \"1s\"\n\
         [kernel_params]\n\"printk.time\" = false\n\"kcsan.udelay_task\" = 400\n",
        &[],
    );
    assert!(output.status.success(), "{}", show(&output));
    let params = &runs[0]["record"]["observations"]["kernel-params"];
    assert_eq!(params["printk.time"]["asked"], "N", "{params}");
    assert_eq!(params["printk.time"]["now"], "N", "{params}");
    assert_eq!(params["kcsan.udelay_task"]["asked"], "400", "{params}");
    assert!(
        params["kcsan.udelay_task"]["absent"]
            .as_str()
            .is_some_and(|a| a.contains("/sys/module/kcsan")),
        "{params}"
    );
}

#[test]
fn missing_kernel_option_skips_without_booting() {
    let (_dirs, out, output, runs) = on_distro(
        "needs-kasan",
        "kind = \"race\"\nworkload = \"syscall_count\"\nrequires = [\"CONFIG_EPOLL\", \"CONFIG_KASAN\"]\n",
        &["--runs", "2"],
    );
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    for run in runs.as_array().unwrap() {
        assert_eq!(run["verdict"]["verdict"], "skipped");
        assert_eq!(run["verdict"]["detail"], "needs CONFIG_KASAN");
    }
    assert!(!out.join("run-001").exists(), "nothing was booted");
}

/// One 20 s run of epoll-dmabuf-race on epoll-unpinned-poll into `out`.
fn unpinned_dmabuf_race(out: &std::path::Path, extra: &[&str]) -> (std::process::Output, Value) {
    let scenarios = repo("scenarios");
    let mut args = vec![
        "--variant",
        "epoll-unpinned-poll",
        "--scenario",
        "epoll-dmabuf-race",
        "--scenarios",
        scenarios.to_str().unwrap(),
        "--duration",
        "20s",
    ];
    args.extend_from_slice(extra);
    run_json(&args, out)
}

#[test]
fn epoll_dmabuf_race_is_detected_on_the_unpinned_variant() {
    let _slot = vm_slot();
    let (_tmp, out) = run_dir("race");
    let (output, runs) = unpinned_dmabuf_race(&out, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    let run = &runs[0];
    assert_eq!(run["verdict"]["verdict"], "fail", "{run}");
    let first = run["verdict"]["detail"].as_str().unwrap();
    assert!(
        first.contains("dma_buf_poll") || first.contains("KASAN") || first.contains("refcount"),
        "first report: {first}"
    );
    assert_eq!(run["outcome"]["kind"], "stopped-on-report");
    // The counts streamed up to the report are kept (when a heartbeat came before it: the
    // race can be hit within the first 100 ms, before any).
    let agent = std::fs::read_to_string(out.join("run-001/agent.jsonl")).unwrap();
    if agent.contains("\"type\":\"progress\"") {
        let progress = run["record"]["last_progress"].as_array().unwrap();
        assert!(progress.iter().any(|c| c.as_u64().unwrap() > 0), "{run}");
    } else {
        // No heartbeat came: the report came before the first was due (one per 500 ms),
        // so nothing was counted to keep.
        assert!(run["first_report_ms"].as_u64().unwrap() < 1_000, "{run}");
        assert!(
            run["record"]["last_progress"]
                .as_array()
                .is_none_or(|p| p.iter().all(|c| c.as_u64() == Some(0))),
            "{run}"
        );
    }
    let reports = std::fs::read_to_string(out.join("run-001/reports.json")).unwrap();
    assert!(reports.contains(first));
}

#[test]
fn a_suppressed_report_is_kept_with_its_reason_and_the_run_goes_on_to_the_next() {
    // The unpinned variant's first report is dma_buf_poll's WARNING; suppressed, the run
    // goes on to the use-after-free that follows it, which is the run's finding.
    let _slot = vm_slot();
    let list = tempfile::tempdir().unwrap();
    let file = list.path().join("suppressions.toml");
    std::fs::write(
        &file,
        "[[suppress]]\ntitle = \"WARNING in dma_buf_poll\"\nreason = \"the test's own\"\n",
    )
    .unwrap();
    let (_tmp, out) = run_dir("suppressed");
    let (output, runs) = unpinned_dmabuf_race(&out, &["--suppressions", file.to_str().unwrap()]);
    let run = &runs[0];
    let reports = run["reports"].as_array().unwrap();
    let warning = reports
        .iter()
        .find(|r| r["title"] == "WARNING in dma_buf_poll")
        .unwrap_or_else(|| panic!("{}", show(&output)));
    let why = warning["suppressed"].as_str().unwrap();
    assert!(
        why.starts_with("the test's own (") && why.contains("suppressions.toml:1"),
        "{why}"
    );
    // The run did not stop there: the finding, when there is one, is a later report (the
    // use-after-free usually follows); otherwise the run worked its whole duration.
    match run["evidence"]["kind"].as_str() {
        Some("kernel-report") => {
            let finding = run["evidence"]["title"].as_str().unwrap();
            assert_ne!(finding, "WARNING in dma_buf_poll", "{run}");
            let counted = reports.iter().find(|r| r["suppressed"].is_null()).unwrap();
            assert_eq!(counted["title"], finding);
            assert!(
                counted["at_ms"].as_u64() >= warning["at_ms"].as_u64(),
                "{warning} / {counted}"
            );
            assert_eq!(run["first_report_ms"], counted["at_ms"], "{run}");
        }
        _ => {
            assert_eq!(run["evidence"]["kind"], "clean", "{run}");
            assert_eq!(run["outcome"]["kind"], "completed", "{run}");
            assert!(run["first_report_ms"].is_null(), "{run}");
        }
    }
}

#[test]
fn hung_task_is_reported_with_its_caller_and_the_run_completes() {
    let _slot = vm_slot();
    let (_tmp, out) = run_dir("hung");
    let kernel = distro_kernel();
    let (output, runs) = run_json(
        &[
            "--kernel",
            kernel.to_str().unwrap(),
            "--scenario",
            "hung-task",
            "--scenarios",
            repo("scenarios").to_str().unwrap(),
        ],
        &out,
    );
    // Every failure says what the run saw: its verdict and outcome, the lab's output, and
    // the guest's console.
    let console = std::fs::read_to_string(out.join("run-001/console.log")).unwrap_or_default();
    let context = format!(
        "verdict {} / outcome {}\n{}\n--- console.log\n{console}",
        runs[0]["verdict"],
        runs[0]["outcome"],
        show(&output)
    );
    assert_eq!(output.status.code(), Some(1), "{context}");
    let run = &runs[0];
    // The blocked write sits on the tmpfs inode lock taken in shmem_file_write_iter.
    assert_eq!(
        run["verdict"]["detail"], "INFO: task hung in shmem_file_write_iter",
        "{context}"
    );
    // The page is filled at the deadline: both writes finish and the guest powers off.
    assert_eq!(run["outcome"]["kind"], "completed", "{context}");
    let reports: Value =
        serde_json::from_slice(&std::fs::read(out.join("run-001/reports.json")).unwrap()).unwrap();
    let first = &reports[0];
    assert_eq!(first["type"], "hang");
    assert_eq!(first["corrupted"], false);
    assert!(first["frames"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["function"] == "shmem_file_write_iter"));
}

#[test]
fn compare_tells_the_racy_variant_from_the_fixed_one() {
    let _slot = vm_slot();
    let (_tmp, out) = run_dir("compare");
    let compare = || {
        lab()
            .args([
                "compare",
                "--variants",
                "epoll-unpinned-poll,baseline",
                "--scenario",
                "epoll-dmabuf-race",
                "--runs",
                "2",
                "--duration",
                "4s",
            ])
            .arg("--kernels")
            .arg(repo("kernels"))
            .arg("--scenarios")
            .arg(repo("scenarios"))
            .arg("--store")
            .arg(&out)
            .output()
            .unwrap()
    };
    let output = compare();
    assert!(output.status.success(), "{}", show(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("| epoll-unpinned-poll | 2/2 |"), "{text}");
    assert!(text.contains("| baseline | 0/2 |"), "{text}");
    // Two runs each cannot make it significant, and the verdict says so.
    assert!(
        text.contains("baseline: no significant difference in detection from epoll-unpinned-poll (0/2 vs 2/2, p = 0.333)"),
        "{text}"
    );
    // One stored batch per variant's kernel, under the scenario and its key.
    let batches: Vec<String> = std::fs::read_dir(
        out.join(
            std::fs::read_dir(&out)
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .file_name(),
        ),
    )
    .unwrap()
    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
    .collect();
    assert_eq!(batches.len(), 2, "{batches:?}");
    assert!(batches.iter().any(|b| b.starts_with("baseline-")));

    // Asked again with the same kernels, scenario and duration: the stored runs answer,
    // nothing boots, and the table is the same.
    let again = compare();
    assert!(again.status.success(), "{}", show(&again));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("epoll-unpinned-poll: reusing 2 stored runs"),
        "{err}"
    );
    assert!(err.contains("baseline: reusing 2 stored runs"), "{err}");
    let table = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.starts_with("| "))
            .map(String::from)
            .collect()
    };
    assert_eq!(
        table(&String::from_utf8_lossy(&again.stdout)),
        table(&text),
        "{}",
        show(&again)
    );
}

/// A variant whose runs hang the machine is a finding in `lab compare`, titled as such —
/// never a clean run, never a variant that "removes the race".
#[test]
fn compare_shows_a_hung_machine_as_a_finding() {
    let _slot = vm_slot();
    let (tmp, out) = run_dir("compare-hang");
    let scenarios = tmp.path().join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    // Threads that block for good: the agent goes silent and the heartbeat bound ends the run.
    std::fs::write(
        scenarios.join("hangs.toml"),
        "description = \"threads that never come back\"\nkind = \"race\"\nworkload = \"hang\"\n\
         duration = \"5s\"\n",
    )
    .unwrap();
    let output = lab()
        .args([
            "compare",
            "--variants",
            "baseline",
            "--scenario",
            "hangs",
            "--runs",
            "1",
        ])
        .arg("--kernels")
        .arg(repo("kernels"))
        .arg("--scenarios")
        .arg(&scenarios)
        .arg("--store")
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", show(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("| baseline | 1/1 |"), "{text}");
    assert!(text.contains("no output from test machine (1)"), "{text}");
}
