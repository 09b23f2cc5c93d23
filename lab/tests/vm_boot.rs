//! The VM path against a real QEMU and the Debian distro kernel: every outcome the run loop
//! can reach, and that QEMU never outlives a run.

mod common;

use common::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn counting_workload_runs_pinned_on_every_vcpu() {
    let _slot = vm_slot();
    let (_tmp, dir) = run_dir("count");
    let out = lab()
        .args([
            "boot",
            "--cpus",
            "2",
            "--workload",
            "syscall_count",
            "--duration",
            "5s",
        ])
        .arg("--kernel")
        .arg(distro_kernel())
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let o = outcome(&dir);
    assert_eq!(o["outcome"]["kind"], "completed");
    assert_eq!(o["guest"]["nproc"], 2);
    assert_eq!(o["guest"]["pid1"], true);
    let threads = o["threads"].as_array().unwrap();
    assert_eq!(threads.len(), 2);
    let mut cpus = Vec::new();
    for t in threads {
        assert!(t["count"].as_u64().unwrap() > 0, "{t}");
        let seen = t["cpus_seen"].as_array().unwrap();
        assert_eq!(seen.len(), 1, "a pinned thread ran on one CPU only: {t}");
        assert_eq!(seen[0], t["pinned_cpu"], "{t}");
        cpus.push(seen[0].as_u64().unwrap());
    }
    cpus.sort();
    assert_eq!(cpus, vec![0, 1], "threads ran on distinct CPUs");
    assert_eq!(o["vcpu_threads"].as_object().unwrap().len(), 2);
    // The agent's stream and the console are kept in the run directory.
    let agent = std::fs::read_to_string(dir.join("agent.jsonl")).unwrap();
    assert!(agent.lines().any(|l| l.contains("\"type\":\"progress\"")));
    let console = std::fs::read_to_string(dir.join("console.log")).unwrap();
    assert!(
        console.contains("Linux version 6.12"),
        "console.log has the boot log"
    );
    assert!(qemu_left(&dir).is_empty());
}

#[test]
fn hung_workload_ends_as_timeout_no_heartbeat_and_qemu_is_gone() {
    let _slot = vm_slot();
    let (_tmp, dir) = run_dir("hang");
    let heartbeat = 5;
    let out = lab()
        .args(["boot", "--workload", "hang", "--duration", "60s"])
        .args(["--heartbeat-timeout", &format!("{heartbeat}s")])
        .arg("--kernel")
        .arg(distro_kernel())
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let o = outcome(&dir);
    assert_eq!(o["outcome"]["kind"], "timeout-no-heartbeat", "{o}");
    let after = o["outcome"]["after_ms"].as_u64().unwrap();
    let last = o["outcome"]["last_heard_ms"].as_u64().unwrap();
    assert!(last > 0, "the agent was heard before it went quiet");
    let silence = after - last;
    assert!(
        (heartbeat * 1000..heartbeat * 1000 + 2000).contains(&silence),
        "gave up {silence} ms after the last heartbeat; bound is {heartbeat} s"
    );
    assert!(qemu_left(&dir).is_empty(), "{:?}", qemu_left(&dir));
}

#[test]
fn sysrq_crash_is_a_guest_panic_with_the_text_in_console_log() {
    let _slot = vm_slot();
    let (_tmp, dir) = run_dir("panic");
    let out = lab()
        .args(["boot", "--workload", "sysrq_crash", "--duration", "500ms"])
        .arg("--kernel")
        .arg(distro_kernel())
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let o = outcome(&dir);
    assert_eq!(o["outcome"]["kind"], "guest-panic", "{o}");
    assert_eq!(
        o["outcome"]["message"],
        "Kernel panic - not syncing: sysrq triggered crash"
    );
    let console = std::fs::read_to_string(dir.join("console.log")).unwrap();
    assert!(console.contains("Kernel panic - not syncing: sysrq triggered crash"));
    assert!(console.contains("sysrq: Trigger a crash"));
    assert!(qemu_left(&dir).is_empty());
}

/// Start `lab boot` with a long workload and wait until the agent streams progress.
/// The caller waits for the returned child.
#[allow(clippy::zombie_processes)]
fn start_long_run(dir: &std::path::Path) -> std::process::Child {
    let mut child = lab()
        .args(["boot", "--duration", "120s"])
        .arg("--kernel")
        .arg(distro_kernel())
        .arg("--out")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let agent = std::fs::read_to_string(dir.join("agent.jsonl")).unwrap_or_default();
        if agent.contains("\"type\":\"progress\"") {
            return child;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the workload never started");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn qemu_killed_from_outside_is_qemu_exited() {
    let _slot = vm_slot();
    let (_tmp, dir) = run_dir("killed");
    let child = start_long_run(&dir);
    let qemu = qemu_left(&dir);
    assert_eq!(qemu.len(), 1, "{qemu:?}");
    // SAFETY: kill(2) on the QEMU this test started; no memory is involved.
    unsafe { libc::kill(qemu[0].0 as i32, libc::SIGKILL) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let o = outcome(&dir);
    assert_eq!(o["outcome"]["kind"], "qemu-exited", "{o}");
    assert_eq!(o["outcome"]["signal"], libc::SIGKILL);
    // What was counted before QEMU died is kept.
    let progress = o["last_progress"].as_array().unwrap();
    assert!(progress.iter().all(|c| c.as_u64().unwrap() > 0), "{o}");
}

#[test]
fn qemu_dies_with_lab() {
    let _slot = vm_slot();
    let (_tmp, dir) = run_dir("labkilled");
    let mut child = start_long_run(&dir);
    assert_eq!(qemu_left(&dir).len(), 1);
    child.kill().unwrap(); // SIGKILL: lab gets no chance to clean up
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !qemu_left(&dir).is_empty() {
        assert!(
            Instant::now() < deadline,
            "QEMU outlived lab: {:?}",
            qemu_left(&dir)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn interrupt_stops_the_guest_and_records_interrupted() {
    let _slot = vm_slot();
    let (_tmp, dir) = run_dir("sigint");
    let child = start_long_run(&dir);
    // SAFETY: kill(2) on the lab this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    // Interrupted: exit 130, whatever the command.
    assert_eq!(out.status.code(), Some(130), "{}", show(&out));
    assert_eq!(outcome(&dir)["outcome"]["kind"], "interrupted");
    assert!(qemu_left(&dir).is_empty());
}

#[test]
fn accel_kvm_either_runs_or_says_why_not() {
    let _slot = vm_slot();
    let (_tmp, dir) = run_dir("kvm");
    let out = lab()
        .args(["boot", "--accel", "kvm", "--duration", "1s"])
        .arg("--kernel")
        .arg(distro_kernel())
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        // A host where KVM works: the run completes under KVM.
        Some(0) => assert_eq!(outcome(&dir)["accel"], "kvm"),
        // A host where it does not: a clear error, and no guest was started.
        Some(2) => {
            assert!(
                stderr.contains("KVM is not usable on this host"),
                "{stderr}"
            );
            assert!(stderr.contains("--accel tcg"), "{stderr}");
            assert!(!dir.join("outcome.json").exists());
        }
        _ => panic!("{}", show(&out)),
    }
}

/// Every request the agent would refuse, and every number that cannot describe the work,
/// is refused by `lab boot` when it is read: exit 2, the value named, nothing booted (no run
/// directory made).
#[test]
fn requests_that_cannot_run_are_refused_before_anything_boots() {
    let long = "x".repeat(3000);
    let table: &[(&[&str], &str)] = &[
        (&["--workload", "no_such_thing"], "no_such_thing"),
        (&["--workload", "no_such_thing"], "syscall_count"),
        (&["--threads", "0"], "0 is not a worker thread count"),
        (&["--threads", "4294967296"], "not a worker thread count"),
        (&["--cpus", "0"], "0 is not a vCPU count"),
        (&["--cpus", "4294967295"], "not a vCPU count"),
        (&["--duration", "0s"], "1 ms to 7 days"),
        (&["--memory", "1e400"], "too large"),
        (&["--param", "closers=0"], "params.closers"),
        (&["--param", "pollers=4294967296"], "params.pollers"),
        (&["--param", "steps=[]"], "params.steps"),
        (&["--cmdline", &long], "COMMAND_LINE_SIZE"),
    ];
    for (args, needle) in table {
        let (_tmp, dir) = run_dir("refused");
        let out = boot_distro(args, &dir);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", show(&out));
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!dir.exists(), "{args:?}: {} was made", dir.display());
    }
}

#[test]
fn missing_kernel_is_a_clear_error() {
    let out = lab()
        .args(["boot", "--kernel", "/nonexistent/bzImage"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/bzImage does not exist"));
}

#[test]
fn vng_backend_runs_the_counting_workload_on_the_distro_kernel() {
    let _slot = vm_slot();
    let (_tmp, dir) = run_dir("vng");
    let out = lab()
        .args([
            "boot",
            "--backend",
            "vng",
            "--cpus",
            "2",
            "--duration",
            "3s",
        ])
        .arg("--kernel")
        .arg(distro_kernel())
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let o = outcome(&dir);
    assert_eq!(o["outcome"]["kind"], "completed");
    assert_eq!(o["backend"], "vng");
    assert_eq!(o["guest"]["pid1"], false, "under vng the agent is not init");
    assert_eq!(o["guest"]["nproc"], 2);
    let threads = o["threads"].as_array().unwrap();
    assert_eq!(threads.len(), 2);
    assert!(threads.iter().all(|t| t["count"].as_u64().unwrap() > 0));
    assert!(qemu_left(&dir).is_empty());
}

/// A thread asked to run on a vCPU the guest does not have is an error of the run, never
/// pinned elsewhere in silence.
#[test]
fn a_pin_list_naming_a_missing_vcpu_is_an_agent_error() {
    let _slot = vm_slot();
    let (_tmp, dir) = run_dir("pin");
    let out = lab()
        .args([
            "boot",
            "--cpus",
            "1",
            "--workload",
            "syscall_count",
            "--duration",
            "1s",
        ])
        .args(["--param", "cpus=[1]"])
        .arg("--kernel")
        .arg(distro_kernel())
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let o = outcome(&dir);
    assert_eq!(o["outcome"]["kind"], "agent-error", "{o}");
    let error = o["outcome"]["error"].as_str().unwrap();
    assert!(error.contains("cpus names vCPU 1"), "{error}");
}

/// A run whose records cannot be written (here: a file size limit, as a full disk would) is
/// stopped at once and says so; outcome.json is whole.
#[test]
fn a_run_that_cannot_be_recorded_stops_and_says_so() {
    use std::os::unix::process::CommandExt;
    let _slot = vm_slot();
    // The cached initramfs is bigger than the limit below: have it in the cache first.
    let (_warm_tmp, warm) = run_dir("warm");
    let out = lab()
        .args(["boot", "--duration", "1s", "--kernel"])
        .arg(distro_kernel())
        .arg("--out")
        .arg(&warm)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let (_tmp, dir) = run_dir("full");
    let mut cmd = lab();
    cmd.args([
        "boot",
        "--workload",
        "syscall_count",
        "--duration",
        "60s",
        "--kernel",
    ])
    .arg(distro_kernel())
    .arg("--out")
    .arg(&dir);
    // SAFETY: setrlimit(2) in the child between fork and exec touches no shared state.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 4096,
                rlim_max: 4096,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let o = outcome(&dir);
    assert_eq!(o["outcome"]["kind"], "record-failed", "{o}");
    // Stopped when the write failed, not after the workload's 60 s.
    assert_eq!(o["timing"]["done_ms"], serde_json::Value::Null, "{o}");
    let detail = o["outcome"]["detail"].as_str().unwrap();
    assert!(detail.contains("console.log"), "{detail}");
    assert!(qemu_left(&dir).is_empty());
}

/// A QEMU that refuses to start the guest is `qemu-exited` with QEMU's own message, in the
/// outcome and as the run's report title; no stale socket is left in the run directory.
#[test]
fn a_kernel_qemu_refuses_is_qemu_exited_with_its_message() {
    let _slot = vm_slot();
    let (tmp, dir) = run_dir("refused");
    let kernel = tmp.path().join("not-a-kernel");
    std::fs::write(&kernel, vec![0x5a; 64 * 1024]).unwrap();
    let out = lab()
        .args(["boot", "--duration", "1s", "--kernel"])
        .arg(&kernel)
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    // Not a terminal: no colour codes in what lab wrote.
    assert!(!out.stderr.contains(&0x1b), "{}", show(&out));
    let o = outcome(&dir);
    assert_eq!(o["outcome"]["kind"], "qemu-exited", "{o}");
    assert_eq!(o["outcome"]["status"], 1, "{o}");
    for socket in ["qmp.sock", "agent.sock"] {
        assert!(!dir.join(socket).exists(), "{socket} left behind");
    }
    let runs = tmp.path().join("runs");
    let out = lab()
        .args(["run", "--scenario", "uapi-epoll", "--json", "--kernel"])
        .arg(&kernel)
        .arg("--scenarios")
        .arg(repo_dir("scenarios"))
        .arg("--out")
        .arg(&runs)
        .output()
        .unwrap();
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let title = results[0]["reports"][0]["title"].as_str().unwrap();
    assert!(title.starts_with("QEMU exited with status 1: "), "{title}");
}
