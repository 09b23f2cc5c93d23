//! Test output in TAP 13 / KTAP form (the kernel's selftests, KUnit) → one result per test.
//!
//! Lines are classified by a table of formats after their nesting prefix is taken off: KTAP
//! nests by indentation, the kselftest runner by `# ` before each nested line. A test's
//! subtests come before its own result line, as both forms print them. Lines may carry the
//! time they were read (guest milliseconds), which gives each test its start and end: from
//! the harness's `#  RUN name ...` line, or the result before it, to its own result.

use regex::Regex;
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

/// Diagnostic lines kept per test (the first ones: where it failed), and results kept per
/// level (the output is the guest's: untrusted).
const MAX_DIAGNOSTICS: usize = 20;
const MAX_RESULTS: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Pass,
    Fail,
    Skip,
    /// An expected failure (`# XFAIL`, `not ok … # TODO`).
    Xfail,
    /// Ended by a timeout: the harness's own (`Test terminated by timeout`) or the lab's,
    /// which stops a program that runs past its limit.
    Timeout,
    /// The test could not run here: it failed at what it needs of its environment (a socket
    /// family, device or system call the kernel lacks), before it tested anything.
    NotRun,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Pass => "ok",
            Status::Fail => "not ok",
            Status::Skip => "skip",
            Status::Xfail => "xfail",
            Status::Timeout => "timeout",
            Status::NotRun => "not run here",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    pub number: u32,
    pub name: String,
    pub status: Status,
    /// The directive's text (`# SKIP no device`) or why the lab decided the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Guest milliseconds at which the test started and ended, when lines carried times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subtests: Vec<TestResult>,
    /// Titles of the kernel reports printed while the test ran (by console time).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernel_reports: Vec<String>,
}

impl TestResult {
    /// How long the test ran, when both ends are known.
    pub fn duration_ms(&self) -> Option<u64> {
        Some(self.ended_ms?.saturating_sub(self.started_ms?))
    }
}

/// The results of one test program.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Suite {
    /// The top-level plan (`1..N`), when one was printed.
    pub planned: Option<u32>,
    pub tests: Vec<TestResult>,
    /// `Bail out!` and its reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bailed: Option<String>,
}

impl Suite {
    /// Tests ([`Suite::leaves`]) with each status, in [`Status`] order, and the planned
    /// top-level tests that never reported a result.
    pub fn counts(&self) -> (Vec<(Status, usize)>, usize) {
        let all = [
            Status::Pass,
            Status::Fail,
            Status::Skip,
            Status::Xfail,
            Status::Timeout,
            Status::NotRun,
        ];
        let leaves = self.leaves();
        let counts = all
            .iter()
            .map(|&s| (s, leaves.iter().filter(|(_, t)| t.status == s).count()))
            .filter(|&(_, n)| n > 0)
            .collect();
        let missing = self
            .planned
            .map_or(0, |p| (p as usize).saturating_sub(self.tests.len()));
        (counts, missing)
    }
}

impl Suite {
    /// Every result that is a test of its own, with a name that says where it is: a
    /// program's tests as `program/test` (the kselftest runner's `selftests: dir: program`
    /// shortened to the program), a result without subtests as itself.
    pub fn leaves(&self) -> Vec<(String, &TestResult)> {
        let mut out = Vec::new();
        for t in &self.tests {
            let short = t.name.rsplit(": ").next().unwrap_or(&t.name);
            if t.subtests.is_empty() {
                out.push((short.to_string(), t));
            }
            for sub in &t.subtests {
                out.push((format!("{short}/{}", sub.name), sub));
            }
        }
        out
    }

    /// Every result, tests and their subtests, to change in place.
    pub fn each_mut(&mut self, f: &mut impl FnMut(&mut TestResult)) {
        fn walk(t: &mut TestResult, f: &mut impl FnMut(&mut TestResult)) {
            f(t);
            t.subtests.iter_mut().for_each(|s| walk(s, f));
        }
        self.tests.iter_mut().for_each(|t| walk(t, f));
    }
}

/// What a line is, once its nesting prefix is off.
enum Kind<'a> {
    Version,
    Plan(u32),
    Result {
        ok: bool,
        number: Option<u32>,
        name: &'a str,
        directive: Option<(&'a str, &'a str)>,
    },
    Bail(&'a str),
}

type Classify = for<'a> fn(&regex::Captures<'a>) -> Kind<'a>;

/// The line formats of TAP 13 and KTAP.
static FORMATS: LazyLock<Vec<(Regex, Classify)>> = LazyLock::new(|| {
    let table: [(&str, Classify); 4] = [
        (r"^K?TAP version \d+\s*$", |_| Kind::Version),
        (r"^1\.\.(\d+)", |c| Kind::Plan(c[1].parse().unwrap_or(0))),
        (
            r"^(not ok|ok)\b *(\d+)? *(?:- *)?([^#]*?) *(?:# *([A-Za-z]+)\b *(.*?))? *$",
            |c| Kind::Result {
                ok: &c[1] == "ok",
                number: c.get(2).and_then(|m| m.as_str().parse().ok()),
                name: c.get(3).map_or("", |m| m.as_str()),
                directive: c
                    .get(4)
                    .map(|d| (d.as_str(), c.get(5).map_or("", |m| m.as_str()))),
            },
        ),
        (r"^Bail out!\s*(.*)", |c| {
            Kind::Bail(c.get(1).map_or("", |m| m.as_str()))
        }),
    ];
    table
        .into_iter()
        .map(|(pattern, classify)| (Regex::new(pattern).expect("TAP format"), classify))
        .collect()
});

/// The kselftest harness's start line of a test: `#  RUN           global.epoll1 ...`.
static RUN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*RUN\s+(\S+)\s*\.\.\.").expect("RUN line"));

/// Nesting depth and the line without its nesting prefix: KTAP's indentation, then one level
/// per `#` the kselftest runner put before a nested program's lines.
fn unnest(text: &str) -> (usize, &str) {
    let mut rest = text.trim_start_matches(' ');
    let mut depth = (text.len() - rest.len()).div_ceil(4);
    loop {
        if FORMATS.iter().any(|(re, _)| re.is_match(rest)) {
            return (depth, rest);
        }
        match rest.strip_prefix('#') {
            Some(after) if !after.trim().is_empty() => {
                depth += 1;
                rest = after.strip_prefix(' ').unwrap_or(after);
            }
            _ => return (depth, rest.trim_start()),
        }
    }
}

/// The harness echoing a status it is about to print as a result line.
static ECHO: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*(OK|FAIL|SKIP|XFAIL|XPASS)\s{2,}").expect("echo line"));

fn classify(text: &str) -> Option<Kind<'_>> {
    FORMATS
        .iter()
        .find_map(|(re, classify)| re.captures(text).map(|c| classify(&c)))
}

/// One level of nesting while its results come in.
#[derive(Default)]
struct Level {
    results: Vec<TestResult>,
    /// When the next test of this level started: the last result, or a `RUN` line.
    mark_ms: Option<u64>,
    /// The harness's `RUN` line of the test under way, and what it printed since.
    running: Option<String>,
    diagnostics: Vec<String>,
    planned: Option<u32>,
}

impl Level {
    /// The test the harness started and never finished, recorded with why the output of its
    /// program ended.
    fn close_running(&mut self, stopped: Option<Stopped>, last_ms: Option<u64>) {
        let Some(name) = self.running.take() else {
            return;
        };
        let (status, reason) = match stopped {
            Some(Stopped::TimeLimit) => (
                Status::Timeout,
                "still running at the lab's time limit".to_string(),
            ),
            Some(Stopped::Exited(how)) => (Status::Fail, format!("no result: the program {how}")),
            None => (Status::Fail, "no result: the output ended".to_string()),
        };
        self.results.push(TestResult {
            number: self.results.len() as u32 + 1,
            name,
            status,
            reason: Some(reason),
            started_ms: self.mark_ms,
            ended_ms: last_ms,
            diagnostics: std::mem::take(&mut self.diagnostics),
            subtests: vec![],
            kernel_reports: vec![],
        });
    }
}

/// A streaming TAP reader: feed lines, then [`Parser::finish`].
#[derive(Default)]
pub struct Parser {
    levels: Vec<Level>,
    bailed: Option<String>,
    last_ms: Option<u64>,
}

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    fn level(&mut self, depth: usize) -> &mut Level {
        if self.levels.len() <= depth {
            self.levels.resize_with(depth + 1, Level::default);
        }
        &mut self.levels[depth]
    }

    /// One line of the program's output, with the guest time it was read at when known.
    pub fn feed(&mut self, at_ms: Option<u64>, line: &str) {
        let line = line.trim_end_matches(['\r', '\n']);
        if at_ms.is_some() {
            self.last_ms = at_ms;
        }
        let (depth, text) = unnest(line);
        match classify(text) {
            Some(Kind::Version) => {
                self.level(depth).mark_ms = at_ms;
            }
            Some(Kind::Plan(n)) => {
                let level = self.level(depth);
                level.planned = Some(n);
                level.mark_ms = level.mark_ms.or(at_ms);
            }
            Some(Kind::Bail(reason)) => {
                self.bailed.get_or_insert_with(|| reason.to_string());
            }
            Some(Kind::Result {
                ok,
                number,
                name,
                directive,
            }) => {
                let last_ms = self.last_ms;
                let subtests = match self.levels.get_mut(depth + 1) {
                    Some(inner) => {
                        // A nested program ended (killed at its limit, crashed) in a test.
                        let stopped = match directive {
                            Some((d, _)) if d.eq_ignore_ascii_case("timeout") => Stopped::TimeLimit,
                            Some((d, r)) => {
                                let gap = if r.starts_with('=') { "" } else { " " };
                                Stopped::Exited(format!("ended: {d}{gap}{r}").trim_end().into())
                            }
                            None => {
                                Stopped::Exited(if ok { "ended".into() } else { "failed".into() })
                            }
                        };
                        inner.close_running(Some(stopped), last_ms);
                        std::mem::take(&mut inner.results)
                    }
                    None => vec![],
                };
                // A nested level's plan ends with its parent's result.
                self.levels.truncate(depth + 1);
                let level = self.level(depth);
                let diagnostics = std::mem::take(&mut level.diagnostics);
                let (status, reason) = status(ok, directive, &diagnostics);
                let number = number.unwrap_or(level.results.len() as u32 + 1);
                let started_ms = std::mem::replace(&mut level.mark_ms, at_ms);
                level.running = None;
                if level.results.len() >= MAX_RESULTS {
                    return;
                }
                level.results.push(TestResult {
                    number,
                    name: name.trim().to_string(),
                    status,
                    reason,
                    started_ms,
                    ended_ms: at_ms,
                    diagnostics,
                    subtests,
                    kernel_reports: vec![],
                });
            }
            None => {
                // A comment of the level above the line's own: `# RUN`, `# OK`, diagnostics.
                let depth = depth.saturating_sub(1);
                let level = self.level(depth);
                if let Some(c) = RUN.captures(text) {
                    level.running = Some(c[1].to_string());
                    level.mark_ms = at_ms.or(level.mark_ms);
                    level.diagnostics.clear();
                } else if !text.is_empty()
                    && !ECHO.is_match(text)
                    && level.diagnostics.len() < MAX_DIAGNOSTICS
                {
                    level.diagnostics.push(text.to_string());
                }
            }
        }
    }

    /// The results. `stopped` says why the output ended early when it did (the program was
    /// killed at its time limit, or exited): a test the harness started and never finished is
    /// recorded with it.
    pub fn finish(mut self, stopped: Option<Stopped>) -> Suite {
        let last_ms = self.last_ms;
        let mut top = if self.levels.is_empty() {
            Level::default()
        } else {
            self.levels.swap_remove(0)
        };
        top.close_running(stopped, last_ms);
        Suite {
            planned: top.planned,
            tests: top.results,
            bailed: self.bailed,
        }
    }
}

/// Why a program's output ended before its plan was complete.
#[derive(Debug, Clone, PartialEq)]
pub enum Stopped {
    TimeLimit,
    /// How it exited, in words (`exited with status 1`, `was killed by signal 11`).
    Exited(String),
}

/// A result line's status: its `ok`, its directive, and what the harness said before it.
fn status(
    ok: bool,
    directive: Option<(&str, &str)>,
    diagnostics: &[String],
) -> (Status, Option<String>) {
    let reason = |r: &str| (!r.trim().is_empty()).then(|| r.trim().to_string());
    match directive {
        Some((d, r)) if d.eq_ignore_ascii_case("skip") => (Status::Skip, reason(r)),
        Some((d, r)) if d.eq_ignore_ascii_case("xfail") => (Status::Xfail, reason(r)),
        Some((d, r)) if d.eq_ignore_ascii_case("todo") && !ok => (Status::Xfail, reason(r)),
        Some((d, r)) if d.eq_ignore_ascii_case("timeout") => (Status::Timeout, reason(r)),
        _ if ok => (Status::Pass, None),
        _ => match diagnostics
            .iter()
            .find(|d| d.contains("Test terminated by timeout"))
        {
            Some(line) => (Status::Timeout, Some(line.trim().to_string())),
            None => (Status::Fail, None),
        },
    }
}

/// Parse a whole output without times.
pub fn parse(text: &str) -> Suite {
    let mut parser = Parser::new();
    for line in text.lines() {
        parser.feed(None, line);
    }
    parser.finish(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/corpus/tap")
            .join(name);
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn the_suite_runner_s_output_as_captured_in_the_guest() {
        let suite = parse(&fixture("harness_cases.suite.tap"));
        let got: Vec<(String, Status)> = suite
            .leaves()
            .into_iter()
            .map(|(n, t)| (n, t.status))
            .collect();
        let want = [
            ("harness_cases/global.passes", Status::Pass),
            ("harness_cases/global.skips", Status::Skip),
            ("harness_cases/global.fails", Status::Fail),
            ("harness_cases/slow.hangs", Status::Timeout),
            ("harness_cases/slow.sleeps", Status::Timeout),
            ("missing.sh", Status::Skip),
        ]
        .map(|(n, s)| (n.to_string(), s));
        assert_eq!(got, want);
        let leaves = suite.leaves();
        assert_eq!(
            leaves[4].1.reason.as_deref(),
            Some("still running at the lab's time limit")
        );
        assert!(leaves[5]
            .1
            .reason
            .as_deref()
            .unwrap()
            .starts_with("cannot start"));
        assert_eq!(suite.counts().1, 0);
    }

    #[test]
    fn a_nested_program_ended_at_its_limit_times_out_its_running_test() {
        let text = "TAP version 13\n1..2\n# selftests: d: p\n# TAP version 13\n# 1..2\n\
                    # #  RUN           g.a ...\n# ok 1 g.a\n# #  RUN           g.b ...\n\
                    not ok 1 selftests: d: p # TIMEOUT 5 seconds\n# selftests: d: q\n\
                    # #  RUN           g.c ...\nnot ok 2 selftests: d: q # exit=1\n";
        let suite = parse(text);
        let leaves: Vec<(String, Status, Option<&str>)> = suite
            .leaves()
            .into_iter()
            .map(|(n, t)| (n, t.status, t.reason.as_deref()))
            .collect();
        assert_eq!(
            leaves,
            [
                ("p/g.a".to_string(), Status::Pass, None),
                (
                    "p/g.b".to_string(),
                    Status::Timeout,
                    Some("still running at the lab's time limit")
                ),
                (
                    "q/g.c".to_string(),
                    Status::Fail,
                    Some("no result: the program ended: exit=1")
                ),
            ]
        );
        assert_eq!(suite.tests[0].status, Status::Timeout);
    }

    #[test]
    fn the_kselftest_harness_pass_skip_fail_and_timeout() {
        let suite = parse(&fixture("harness_cases.tap"));
        assert_eq!(suite.planned, Some(4));
        let got: Vec<(u32, &str, Status)> = suite
            .tests
            .iter()
            .map(|t| (t.number, t.name.as_str(), t.status))
            .collect();
        assert_eq!(
            got,
            [
                (1, "global.passes", Status::Pass),
                (2, "global.skips", Status::Skip),
                (3, "global.fails", Status::Fail),
                (4, "slow.hangs", Status::Timeout),
            ]
        );
        assert_eq!(
            suite.tests[1].reason.as_deref(),
            Some("no such device here")
        );
        assert!(
            suite.tests[2]
                .diagnostics
                .iter()
                .any(|d| d.contains("harness_cases.c:9:fails:Expected")),
            "{:?}",
            suite.tests[2].diagnostics
        );
        assert_eq!(suite.counts().1, 0);
    }

    #[test]
    fn a_program_cut_off_mid_test_records_that_test_and_what_never_ran() {
        let text = fixture("harness_cases.tap");
        let cut: String = text
            .lines()
            .take_while(|l| !l.starts_with("# hangs:"))
            .map(|l| format!("{l}\n"))
            .collect();
        let mut parser = Parser::new();
        for (i, line) in cut.lines().enumerate() {
            parser.feed(Some(i as u64 * 100), line);
        }
        let suite = parser.finish(Some(Stopped::TimeLimit));
        let last = suite.tests.last().unwrap();
        assert_eq!(
            (last.name.as_str(), last.status),
            ("slow.hangs", Status::Timeout)
        );
        assert_eq!(last.started_ms, Some(1500));
        assert_eq!(suite.counts().1, 0);
        let first = &suite.tests[0];
        assert_eq!((first.started_ms, first.ended_ms), (Some(300), Some(500)));
    }

    #[test]
    fn epoll_selftests_on_a_kernel_without_unix_sockets() {
        // Captured on the lab's baseline kernel before CONFIG_UNIX (2 vCPUs, TCG).
        let suite = parse(&fixture("epoll_wakeup_test.no-unix.tap"));
        assert_eq!(suite.planned, Some(64));
        assert_eq!(
            suite.counts(),
            (vec![(Status::Pass, 3), (Status::Fail, 61)], 0)
        );
        // Every failure says where: the AF_UNIX socketpair the kernel could not make.
        for t in suite.tests.iter().filter(|t| t.status == Status::Fail) {
            assert!(
                t.diagnostics
                    .iter()
                    .any(|d| d.contains("socketpair(AF_UNIX")),
                "{t:?}"
            );
        }
    }

    #[test]
    fn epoll_selftests_passing() {
        let suite = parse(&fixture("epoll_wakeup_test.pass.tap"));
        assert_eq!(suite.counts(), (vec![(Status::Pass, 64)], 0));
        assert_eq!(suite.tests[63].name, "global.epoll64");
    }

    #[test]
    fn ktap_subtests_nest_by_indentation_and_kselftest_by_hash() {
        let ktap = "\
KTAP version 1
1..2
    KTAP version 1
    # Subtest: example
    1..2
    ok 1 example_simple_test
    not ok 2 example_skip_test # SKIP this test should be skipped
ok 1 example
    KTAP version 1
    # Subtest: other
    1..1
    not ok 1 broken
not ok 2 other
";
        let suite = parse(ktap);
        assert_eq!(suite.planned, Some(2));
        assert_eq!(suite.tests.len(), 2);
        let example = &suite.tests[0];
        assert_eq!(
            (example.name.as_str(), example.status),
            ("example", Status::Pass)
        );
        assert_eq!(
            example
                .subtests
                .iter()
                .map(|t| t.status)
                .collect::<Vec<_>>(),
            [Status::Pass, Status::Skip]
        );
        assert_eq!(suite.tests[1].subtests[0].name, "broken");

        let runner = "\
TAP version 13
1..1
# selftests: filesystems/epoll: epoll_wakeup_test
# TAP version 13
# 1..2
# # Starting 2 tests from 1 test cases.
# #  RUN           global.epoll1 ...
# #            OK  global.epoll1
# ok 1 global.epoll1
# #  RUN           global.epoll2 ...
# # epoll_wakeup_test.c:60:epoll2:Expected 1 == 0
# not ok 2 global.epoll2
not ok 1 selftests: filesystems/epoll: epoll_wakeup_test # exit=1
";
        let suite = parse(runner);
        assert_eq!(suite.tests.len(), 1);
        let program = &suite.tests[0];
        assert_eq!(program.status, Status::Fail);
        assert_eq!(program.subtests.len(), 2);
        assert_eq!(
            program.subtests[1].diagnostics,
            ["epoll_wakeup_test.c:60:epoll2:Expected 1 == 0"]
        );
    }

    #[test]
    fn bail_out_and_garbage() {
        let suite = parse("TAP version 13\n1..3\nok 1 a\nBail out! no device\n\u{0}ok\nnot okay\n");
        assert_eq!(suite.bailed.as_deref(), Some("no device"));
        assert_eq!(suite.tests.len(), 1);
        assert_eq!(suite.counts().1, 2);
    }
}
