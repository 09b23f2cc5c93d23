//! What a run's test results say once the run is over: which failures are the environment's
//! (the test could not run here), which kernel reports were printed while which test ran,
//! and which tests failed.

use crate::kernel::kconfig;
use crate::tap::{Status, Stopped, Suite, TestResult};
use crate::vm::outcome::{ProgramLine, RunRecord, Unread};
use std::collections::BTreeMap;
use std::path::Path;

/// The machine's record with its program's output read as TAP/KTAP (see [`read`]). A record
/// with tests is written to the run's `outcome.json` again, whole, with them.
pub fn with_tests(
    machine: RunRecord<Unread>,
    program: Option<&str>,
    dir: &Path,
) -> anyhow::Result<crate::results::RunRecord> {
    let record = machine.read_tests(|m| read(&m.program_output, &m.observations, program));
    if record.tests.is_some() {
        crate::files::write(
            dir.join("outcome.json"),
            serde_json::to_vec_pretty(&record)?,
        )?;
    }
    Ok(record)
}

/// A program's output read as TAP/KTAP. A test still under way when the output stopped is
/// recorded with why: the agent's time limit, the program's exit, or the run ending around
/// it (the observation named `program`, else `selftest`, is what the workload reports the
/// program's end under).
pub fn read(
    lines: &[ProgramLine],
    observations: &BTreeMap<String, serde_json::Value>,
    program: Option<&str>,
) -> Suite {
    let mut parser = crate::tap::Parser::new();
    for l in lines {
        parser.feed(Some(l.at_ms), &l.line);
    }
    let observation = program.unwrap_or(runner::protocol::SELFTEST_OBSERVATION);
    let stopped = observations.get(observation).map(|v| {
        if v["timed_out"] == true {
            Stopped::TimeLimit
        } else if let Some(signal) = v["signal"].as_i64() {
            Stopped::Exited(format!("was killed by signal {signal}"))
        } else {
            Stopped::Exited(format!("exited with status {}", v["exit_status"]))
        }
    });
    parser.finish(stopped)
}

/// Calls a test makes of its environment, as they appear in the harness's failed assertion
/// (`Expected socketpair(AF_UNIX, SOCK_STREAM, 0, sfd) (-1) == 0 (0)`), and the kernel option
/// without which they fail.
const NEEDS: &[(&str, &str)] = &[
    ("socketpair(AF_UNIX", "CONFIG_UNIX"),
    ("socket(AF_UNIX", "CONFIG_UNIX"),
    ("socket(AF_INET6", "CONFIG_IPV6"),
    ("socket(AF_INET", "CONFIG_INET"),
    ("socket(AF_PACKET", "CONFIG_PACKET"),
    ("socket(AF_NETLINK", "CONFIG_NET"),
    ("eventfd(", "CONFIG_EVENTFD"),
    ("timerfd_create(", "CONFIG_TIMERFD"),
    ("signalfd(", "CONFIG_SIGNALFD"),
    ("epoll_create", "CONFIG_EPOLL"),
    ("io_uring_setup", "CONFIG_IO_URING"),
    ("io_uring_queue_init", "CONFIG_IO_URING"),
    ("memfd_create(", "CONFIG_MEMFD_CREATE"),
    ("userfaultfd(", "CONFIG_USERFAULTFD"),
    ("inotify_init", "CONFIG_INOTIFY_USER"),
    ("fanotify_init", "CONFIG_FANOTIFY"),
    ("/dev/udmabuf", "CONFIG_UDMABUF"),
    ("/dev/dma_heap/system", "CONFIG_DMABUF_HEAPS_SYSTEM"),
];

/// What a test prints when a call failed for want of a kernel feature: the errno names and
/// their strerror texts.
const ENVIRONMENT_ERRORS: &[&str] = &[
    "EAFNOSUPPORT",
    "Address family not supported by protocol",
    "ENOSYS",
    "Function not implemented",
    "ENODEV",
    "No such device",
];

/// Why a failed test could not run here, from its first diagnostic (the first thing that
/// went wrong): a call the kernel's configuration cannot serve, or an errno that says the
/// feature is missing.
fn environment(test: &TestResult, config: Option<&str>) -> Option<String> {
    let first = test.diagnostics.first()?;
    if let Some(config) = config {
        for (call, option) in NEEDS {
            if first.contains(call) && !kconfig::missing(&[option.to_string()], config).is_empty() {
                return Some(format!("{call}…: the kernel has no {option}"));
            }
        }
    }
    ENVIRONMENT_ERRORS
        .iter()
        .find(|e| first.contains(*e))
        .map(|_| first.trim().to_string())
}

/// Failed tests that failed at their environment become [`Status::NotRun`], with why.
pub fn not_run_here(suite: &mut Suite, config: Option<&str>) {
    suite.each_mut(&mut |t| {
        if t.status == Status::Fail {
            if let Some(why) = environment(t, config) {
                t.status = Status::NotRun;
                t.reason = Some(why);
            }
        }
    });
}

/// Each report (console time in ms, title) goes to the tests that were running when it was
/// printed: the test and, nested, its subtest.
pub fn attribute(suite: &mut Suite, reports: &[(u64, String)]) {
    suite.each_mut(&mut |t| {
        let (Some(start), Some(end)) = (t.started_ms, t.ended_ms) else {
            return;
        };
        for (at, title) in reports {
            if (start..=end).contains(at) && !t.kernel_reports.contains(title) {
                t.kernel_reports.push(title.clone());
            }
        }
    });
}

/// The tests that failed (or timed out): (name, status), in order.
pub fn failing(suite: &Suite) -> Vec<(String, Status)> {
    suite
        .leaves()
        .into_iter()
        .filter(|(_, t)| matches!(t.status, Status::Fail | Status::Timeout))
        .map(|(name, t)| (name, t.status))
        .collect()
}

/// The failures that fail the run, as the evidence rule takes them: (test, "ok", status)
/// for every test that failed or timed out, but those the scenario calls `flaky`.
pub fn counted_failures(suite: &Suite, flaky: &[String]) -> crate::results::evidence::Differences {
    failing(suite)
        .into_iter()
        .filter(|(name, _)| !flaky.contains(name))
        .map(|(name, status)| (name, "ok".into(), status.name().into()))
        .collect()
}

/// The console time of the line `line` (1-based) of a console log, in milliseconds:
/// `[   12.345678]` → 12345.
pub fn console_ms(console: &str, line: usize) -> Option<u64> {
    crate::report::parser::timestamp_ms(console.lines().nth(line.checked_sub(1)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(name: &str) -> String {
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/corpus/tap")
                .join(name),
        )
        .unwrap()
    }

    #[test]
    fn epoll_tests_without_af_unix_could_not_run_here() {
        let mut suite = crate::tap::parse(&corpus("epoll_wakeup_test.no-unix.tap"));
        let config = "CONFIG_EPOLL=y\nCONFIG_NET=y\n# CONFIG_UNIX is not set\n";
        not_run_here(&mut suite, Some(config));
        let (counts, _) = suite.counts();
        // 61 fail at socketpair(AF_UNIX, …); the 3 others never call it.
        assert!(counts.contains(&(Status::NotRun, 61)), "{counts:?}");
        let t = &suite.tests[0];
        assert_eq!(
            t.reason.as_deref(),
            Some("socketpair(AF_UNIX…: the kernel has no CONFIG_UNIX")
        );
        // With AF_UNIX in the kernel the same failures are the kernel's.
        let mut suite = crate::tap::parse(&corpus("epoll_wakeup_test.no-unix.tap"));
        not_run_here(&mut suite, Some("CONFIG_EPOLL=y\nCONFIG_UNIX=y\n"));
        assert!(suite.tests.iter().all(|t| t.status != Status::NotRun));
        assert_eq!(failing(&suite).len(), 61);
        let flaky = ["global.epoll1".to_string()];
        let counted = counted_failures(&suite, &flaky);
        assert_eq!(counted.len(), 60);
        assert_eq!(
            counted[0],
            ("global.epoll2".into(), "ok".into(), "not ok".into())
        );
    }

    #[test]
    fn an_errno_of_a_missing_feature_is_not_run_whatever_the_config() {
        let text = "TAP version 13\n1..2\n#  RUN x.a ...\n# open: No such device\nnot ok 1 x.a\n#  RUN x.b ...\n# x.c:3:b:Expected 1 (1) == 0 (0)\nnot ok 2 x.b\n";
        let mut suite = crate::tap::parse(text);
        not_run_here(&mut suite, None);
        let got: Vec<Status> = suite.tests.iter().map(|t| t.status).collect();
        assert_eq!(got, [Status::NotRun, Status::Fail]);
    }

    #[test]
    fn a_program_s_lines_are_read_as_tap() {
        let lines: Vec<ProgramLine> = ["TAP version 13", "1..2", "ok 1 first", "# slow: running"]
            .iter()
            .enumerate()
            .map(|(i, l)| ProgramLine {
                at_ms: i as u64,
                line: l.to_string(),
            })
            .collect();
        let ended = BTreeMap::from([("p".to_string(), serde_json::json!({"timed_out": true}))]);
        let suite = read(&lines, &ended, Some("p"));
        assert_eq!(suite.leaves().len(), 1);
        assert_eq!(suite.planned, Some(2));
        assert_eq!(suite.leaves()[0].0, "first");
    }

    #[test]
    fn reports_go_to_the_tests_running_at_their_console_time() {
        let text = "TAP version 13\n1..1\n# selftests: d: p\n# TAP version 13\n# 1..2\n# ok 1 a\n# ok 2 b\nok 1 selftests: d: p\n";
        let mut parser = crate::tap::Parser::new();
        for (i, line) in text.lines().enumerate() {
            parser.feed(Some(1000 * i as u64), line);
        }
        let mut suite = parser.finish(None);
        attribute(&mut suite, &[(5500, "WARNING in f".into())]);
        let leaves = suite.leaves();
        let with: Vec<&str> = leaves
            .iter()
            .filter(|(_, t)| !t.kernel_reports.is_empty())
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(with, ["p/b"]);
        assert_eq!(suite.tests[0].kernel_reports, ["WARNING in f"]);
    }

    #[test]
    fn console_time_of_a_line() {
        let console = "boot\n[   12.345678] WARNING: at x\n[    1.5][  T1] y\nplain [2.0] z\n";
        assert_eq!(console_ms(console, 2), Some(12345));
        assert_eq!(console_ms(console, 3), Some(1500));
        assert_eq!(console_ms(console, 4), None);
        assert_eq!(console_ms(console, 0), None);
    }
}
