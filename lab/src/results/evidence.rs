//! The one rule of what a run is evidence of. Every command that counts runs (compare,
//! nightly, the history, report.html, bisect, `lab run`) asks [`Evidence`]; none decides on
//! its own from outcomes and reports.
//!
//! In order:
//! 1. a run the user interrupted says nothing, whatever it printed before;
//! 2. a run that never booted because the kernel lacks what the scenario needs is skipped;
//! 3. a kernel report is a finding (the run's first report is its bug) unless the lab's
//!    suppression list names it (kept and shown with its reason, not a finding);
//! 4. a machine-side finding: the guest was up and went silent (a hang), was still running at
//!    the overall deadline, or panicked without a report the parser could title;
//! 5. a run that did not get far enough to test anything (no output at all, QEMU or the
//!    agent failed) says nothing about the kernel;
//! 6. a run with a schedule that was never applied says nothing: the interleaving it is about
//!    was not executed (the step that kept it from being applied is named);
//! 7. a completed run is clean — for a uapi scenario, unless checks took other values; for a
//!    suite, unless tests failed (a test that could not run here is not a failure) — but
//!    only where the machine's detector canary saw every detector the scenario relies on
//!    fire: where one stayed silent the run says nothing; where no canary could run, the
//!    pass is qualified "detectors unproven".

use super::canary::Detectors;
use crate::config::scenario::Kind;
use crate::report::parser::Report;
use crate::vm::outcome::Outcome;
use crate::vm::schedule::ScheduleRecord;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What one run says about the kernel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Evidence {
    /// The kernel printed a report; its first one.
    KernelReport { title: String, signature: String },
    /// The machine saw the kernel stop (a hang, a run that never ended, a bare panic).
    MachineFinding {
        title: String,
        signature: String,
        detail: String,
    },
    /// uapi: the checks completed and some took other values than upstream's; suite: tests
    /// failed.
    Differs { text: String },
    /// The workload ran its course and nothing was found; `unproven` says why the machine's
    /// detectors were not seen to fire (no canary could run), when they were not.
    Clean {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unproven: Option<String>,
    },
    /// A run with a schedule (written, or an exploration's) found nothing, and its
    /// interleavings were applied: `applied` attempts of `interleavings` distinct ones, each
    /// executed as written, and the kernel survived them. Not a stress pass: it says which
    /// orders ran. `unproven` as for a clean run.
    Survived {
        applied: u32,
        interleavings: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unproven: Option<String>,
    },
    /// The run says nothing about the kernel: it did not boot to the agent, QEMU or the
    /// agent failed.
    Inconclusive { why: String },
    /// No VM ran: the kernel lacks what the scenario needs.
    Skipped { why: String },
    /// The user stopped the run.
    Interrupted,
}

/// The verdict of one run under the scenario's rule, as `lab run` prints it and JUnit
/// records it: derived from the evidence, never decided apart from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", content = "detail", rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    /// A pass on a machine whose detectors were not seen to fire: why.
    PassUnproven(String),
    /// A finding (kernel report, hang) or, for uapi, checks with other values.
    Fail(String),
    /// The run says nothing about the kernel (it could not boot, it was interrupted...).
    Error(String),
    /// The kernel lacks what the scenario needs.
    Skipped(String),
}

/// Titles the lab gives to what the machine, not the kernel, saw (syzkaller's forms).
pub const NO_OUTPUT: &str = "no output from test machine";
pub const LOST_CONNECTION: &str = "lost connection to test machine";
pub const TIMED_OUT: &str = "timed out";
pub const BARE_PANIC: &str = "kernel panic";
pub const UNPARSED_REPORT: &str = "kernel report the lab could not parse";

/// What a set of runs says as a whole (a `lab run` batch, one side of a comparison): the one
/// rule every command judges runs by. A set with no run that says anything about the kernel
/// (none made, or all errors and skips) is an error, never a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchVerdict {
    /// At least one run, and every run passed.
    Pass,
    /// Some run failed.
    Fail,
    /// No run failed, but not every run passed: why.
    Error(String),
}

pub fn batch_verdict(verdicts: &[Verdict]) -> BatchVerdict {
    if verdicts.is_empty() {
        return BatchVerdict::Error("no run was made: nothing run is not a pass".into());
    }
    if verdicts.iter().any(|v| matches!(v, Verdict::Fail(_))) {
        return BatchVerdict::Fail;
    }
    if verdicts.iter().all(Verdict::is_pass) {
        return BatchVerdict::Pass;
    }
    let counted = verdicts.iter().filter(|v| v.is_pass()).count();
    BatchVerdict::Error(format!(
        "{} of {} runs said nothing about the kernel (error or skipped)",
        verdicts.len() - counted,
        verdicts.len()
    ))
}

/// Whether a finding title is one the machine gives (not a kernel report's).
pub fn is_machine_title(title: &str) -> bool {
    [NO_OUTPUT, TIMED_OUT, BARE_PANIC, UNPARSED_REPORT].contains(&title)
}

/// What the machine's outcome alone says about the kernel.
enum MachineSays {
    /// The kernel stopped making progress or died: a finding with this title.
    Finding(&'static str),
    /// Nothing: the run did not get far enough.
    Nothing,
    Completed,
    Interrupted,
}

fn machine(outcome: &Outcome) -> MachineSays {
    match outcome {
        Outcome::Completed => MachineSays::Completed,
        Outcome::Interrupted => MachineSays::Interrupted,
        Outcome::TimeoutNoHeartbeat { .. } => MachineSays::Finding(NO_OUTPUT),
        Outcome::Timeout { .. } => MachineSays::Finding(TIMED_OUT),
        Outcome::GuestPanic { .. } => MachineSays::Finding(BARE_PANIC),
        Outcome::StoppedOnReport { .. } => MachineSays::Finding(UNPARSED_REPORT),
        Outcome::TimeoutNoOutput { .. }
        | Outcome::AgentLost { .. }
        | Outcome::AgentError { .. }
        | Outcome::QemuExited { .. }
        | Outcome::RecordFailed { .. } => MachineSays::Nothing,
    }
}

/// The lab's own report for a run the machine ended without a kernel report, titled as
/// syzkaller titles them: kept with the run so its console excerpt and title are shown.
pub fn outcome_report(outcome: &Outcome) -> Option<Report> {
    let title = match outcome {
        Outcome::TimeoutNoOutput { .. } | Outcome::TimeoutNoHeartbeat { .. } => NO_OUTPUT.into(),
        // QEMU that ended with a status of its own (bad arguments, a kernel it refuses) says
        // why; one killed by a signal lost the machine.
        Outcome::QemuExited {
            status: Some(code),
            signal: None,
            stderr,
        } => match stderr.lines().rev().find(|l| !l.trim().is_empty()) {
            Some(line) => format!("QEMU exited with status {code}: {}", line.trim()),
            None => format!("QEMU exited with status {code}"),
        },
        Outcome::AgentLost { .. } | Outcome::QemuExited { .. } => LOST_CONNECTION.into(),
        Outcome::Timeout { .. } => TIMED_OUT.into(),
        Outcome::RecordFailed { detail } => format!("run not recorded: {detail}"),
        _ => return None,
    };
    Some(Report::lab(&title, outcome.summary()))
}

/// (check, expected, observed) for every check whose observed value is not the expected one.
pub type Differences = Vec<(String, serde_json::Value, serde_json::Value)>;

/// The uapi checks that took other values than `expect` says.
pub fn differences(
    expect: &BTreeMap<String, serde_json::Value>,
    observations: &BTreeMap<String, serde_json::Value>,
) -> Differences {
    expect
        .iter()
        .filter_map(|(check, expected)| {
            let observed = observations
                .get(check)
                .cloned()
                .unwrap_or(serde_json::Value::Null);
            (observed != *expected).then(|| (check.clone(), expected.clone(), observed))
        })
        .collect()
}

/// The rule: what a run that ended in `outcome`, printed `reports`, (uapi) found
/// `differences` and (with a schedule) executed `schedule`, on a machine whose canary says
/// `detectors`, is evidence of.
pub fn judge(
    kind: Kind,
    outcome: &Outcome,
    reports: &[Report],
    differences: &Differences,
    schedule: Option<&ScheduleRecord>,
    detectors: &Detectors,
) -> Evidence {
    let says = machine(outcome);
    if let MachineSays::Interrupted = says {
        return Evidence::Interrupted;
    }
    if let Some(first) = reports.iter().find(|r| r.counts()) {
        return Evidence::KernelReport {
            title: first.title.clone(),
            signature: first.signature.clone(),
        };
    }
    match says {
        MachineSays::Finding(title) => Evidence::MachineFinding {
            title: title.to_string(),
            signature: crate::report::parser::signature(title),
            detail: outcome.summary(),
        },
        MachineSays::Nothing => Evidence::Inconclusive {
            why: outcome.summary(),
        },
        MachineSays::Completed if schedule.is_some_and(|s| s.applied() == 0) => {
            Evidence::Inconclusive {
                why: schedule
                    .map(ScheduleRecord::never_applied)
                    .unwrap_or_default(),
            }
        }
        MachineSays::Completed if kind == Kind::Suite && !differences.is_empty() => {
            let text: Vec<String> = differences
                .iter()
                .take(10)
                .map(|(test, _, status)| format!("{test} ({})", status.as_str().unwrap_or("?")))
                .collect();
            let more = differences.len().saturating_sub(10);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            Evidence::Differs {
                text: format!(
                    "{} test(s) fail: {}{more}",
                    differences.len(),
                    text.join(", ")
                ),
            }
        }
        MachineSays::Completed if kind == Kind::Uapi && !differences.is_empty() => {
            let text: Vec<String> = differences
                .iter()
                .map(|(c, e, o)| format!("{c}: {e} → {o}"))
                .collect();
            Evidence::Differs {
                text: format!("{} check(s) differ: {}", differences.len(), text.join(", ")),
            }
        }
        MachineSays::Completed | MachineSays::Interrupted => {
            let unproven = match detectors {
                Detectors::Proven => None,
                Detectors::Silent(why) => return Evidence::Inconclusive { why: why.clone() },
                Detectors::Unproven(why) => Some(why.clone()),
            };
            match schedule {
                Some(s) => Evidence::Survived {
                    applied: s.applied() as u32,
                    interleavings: s.interleavings_applied() as u32,
                    unproven,
                },
                None => Evidence::Clean { unproven },
            }
        }
    }
}

impl Evidence {
    /// Whether the run tells something about the kernel: it is counted in rates and stored
    /// in the history. Inconclusive, skipped and interrupted runs are not.
    pub fn counts(&self) -> bool {
        matches!(
            self,
            Evidence::KernelReport { .. }
                | Evidence::MachineFinding { .. }
                | Evidence::Differs { .. }
                | Evidence::Clean { .. }
                | Evidence::Survived { .. }
        )
    }

    /// What a survival ran, in words ("survived 17 applied attempts of 1 interleaving"); none
    /// for any other evidence.
    pub fn survived(&self) -> Option<String> {
        let Evidence::Survived {
            applied,
            interleavings,
            ..
        } = self
        else {
            return None;
        };
        use crate::text::count;
        Some(format!(
            "survived {} of {}",
            count(*applied, "applied attempt", "applied attempts"),
            count(*interleavings, "interleaving", "interleavings")
        ))
    }

    /// The finding's (title, signature): a kernel report or what the machine saw.
    pub fn finding(&self) -> Option<(&str, &str)> {
        match self {
            Evidence::KernelReport { title, signature }
            | Evidence::MachineFinding {
                title, signature, ..
            } => Some((title, signature)),
            _ => None,
        }
    }

    pub fn is_kernel_report(&self) -> bool {
        matches!(self, Evidence::KernelReport { .. })
    }

    pub fn is_machine_finding(&self) -> bool {
        matches!(self, Evidence::MachineFinding { .. })
    }

    /// The verdict under the scenario's rule.
    pub fn verdict(&self) -> Verdict {
        match self {
            Evidence::KernelReport { title, .. } => Verdict::Fail(title.clone()),
            Evidence::MachineFinding { title, detail, .. } => {
                Verdict::Fail(format!("{title} ({detail})"))
            }
            Evidence::Differs { text } => Verdict::Fail(text.clone()),
            Evidence::Clean { unproven: None } | Evidence::Survived { unproven: None, .. } => {
                Verdict::Pass
            }
            Evidence::Clean {
                unproven: Some(why),
            }
            | Evidence::Survived {
                unproven: Some(why),
                ..
            } => Verdict::PassUnproven(why.clone()),
            Evidence::Inconclusive { why } => Verdict::Error(why.clone()),
            Evidence::Skipped { why } => Verdict::Skipped(why.clone()),
            Evidence::Interrupted => Verdict::Error("interrupted".into()),
        }
    }

    /// What a run stored before evidence was recorded says, read with the verdict it had.
    pub fn from_verdict(
        verdict: &Verdict,
        outcome: Option<&Outcome>,
        reports: &[Report],
        differences: &Differences,
    ) -> Evidence {
        match verdict {
            Verdict::Skipped(why) => Evidence::Skipped { why: why.clone() },
            Verdict::Pass => Evidence::Clean { unproven: None },
            Verdict::PassUnproven(why) => Evidence::Clean {
                unproven: Some(why.clone()),
            },
            Verdict::Error(_) if outcome == Some(&Outcome::Interrupted) => Evidence::Interrupted,
            Verdict::Error(why) => Evidence::Inconclusive { why: why.clone() },
            Verdict::Fail(detail) => match reports.iter().find(|r| r.counts()) {
                Some(r) => Evidence::KernelReport {
                    title: r.title.clone(),
                    signature: r.signature.clone(),
                },
                None if !differences.is_empty() => Evidence::Differs {
                    text: detail.clone(),
                },
                None => match outcome.map(machine) {
                    Some(MachineSays::Finding(title)) => Evidence::MachineFinding {
                        title: title.to_string(),
                        signature: crate::report::parser::signature(title),
                        detail: outcome.map(Outcome::summary).unwrap_or_default(),
                    },
                    _ => {
                        let title = reports.first().map_or(detail.as_str(), |r| &r.title);
                        Evidence::MachineFinding {
                            title: title.to_string(),
                            signature: crate::report::parser::signature(title),
                            detail: detail.clone(),
                        }
                    }
                },
            },
        }
    }
}

impl Verdict {
    /// A pass, qualified or not.
    pub fn is_pass(&self) -> bool {
        matches!(self, Verdict::Pass | Verdict::PassUnproven(_))
    }

    /// ("pass" | "FAIL" | "error" | "skipped", detail).
    pub fn parts(&self) -> (&'static str, &str) {
        match self {
            Verdict::Pass => ("pass", ""),
            Verdict::PassUnproven(why) => ("pass", why),
            Verdict::Fail(d) => ("FAIL", d),
            Verdict::Error(d) => ("error", d),
            Verdict::Skipped(d) => ("skipped", d),
        }
    }
}

#[cfg(test)]
mod tests {

    /// Nothing run, all errors, all skipped: never a pass; one failure: a failure.
    #[test]
    fn a_batch_with_nothing_that_counts_is_an_error_never_a_pass() {
        use BatchVerdict as B;
        let (p, f, e, s) = (
            Verdict::Pass,
            Verdict::Fail("x".into()),
            Verdict::Error("y".into()),
            Verdict::Skipped("z".into()),
        );
        for (verdicts, expected) in [
            (vec![], "error"),
            (vec![e.clone()], "error"),
            (vec![s.clone(), s.clone()], "error"),
            (vec![p.clone(), e.clone()], "error"),
            (vec![p.clone()], "pass"),
            (vec![p.clone(), p.clone()], "pass"),
            (vec![p.clone(), f.clone(), e.clone()], "fail"),
        ] {
            let got = match batch_verdict(&verdicts) {
                B::Pass => "pass",
                B::Fail => "fail",
                B::Error(_) => "error",
            };
            assert_eq!(got, expected, "{verdicts:?}");
        }
    }
    use super::*;
    use crate::report::formats::ReportType;

    fn kasan() -> Report {
        let mut r = Report::lab("KASAN: slab-use-after-free Read in __fput", String::new());
        r.kind = ReportType::MemorySafety;
        r.format = "kasan".into();
        r.signature = crate::report::parser::signature(&r.title);
        r
    }

    /// Every outcome a session can end in.
    fn outcomes() -> Vec<Outcome> {
        Outcome::one_of_each()
    }

    fn hang() -> Evidence {
        let none: Differences = vec![];
        let outcome = Outcome::TimeoutNoHeartbeat {
            after_ms: 40_000,
            last_heard_ms: 10_000,
        };
        judge(Kind::Race, &outcome, &[], &none, None, &Detectors::Proven)
    }

    /// The short name of each evidence, for the table.
    fn short(e: &Evidence) -> String {
        match e {
            Evidence::KernelReport { .. } => "report".into(),
            Evidence::MachineFinding { title, .. } => format!("finding: {title}"),
            Evidence::Differs { .. } => "differs".into(),
            Evidence::Clean { .. } => "clean".into(),
            Evidence::Survived { .. } => "survived".into(),
            Evidence::Inconclusive { .. } => "inconclusive".into(),
            Evidence::Skipped { .. } => "skipped".into(),
            Evidence::Interrupted => "interrupted".into(),
        }
    }

    #[test]
    fn every_outcome_and_scenario_kind_has_one_meaning() {
        let diff: Differences = vec![(
            "dup_close_keeps_registration".into(),
            serde_json::json!(true),
            serde_json::json!(false),
        )];
        // (outcome, without a kernel report, with one), the same for every kind except
        // where a completed uapi run found checks with other values or a suite failed tests.
        let table: [(&str, &str, &str); 11] = [
            ("completed", "clean", "report"),
            ("guest-panic", "finding: kernel panic", "report"),
            ("timeout-no-output", "inconclusive", "report"),
            (
                "timeout-no-heartbeat",
                "finding: no output from test machine",
                "report",
            ),
            ("timeout", "finding: timed out", "report"),
            ("agent-lost", "inconclusive", "report"),
            ("agent-error", "inconclusive", "report"),
            ("qemu-exited", "inconclusive", "report"),
            ("interrupted", "interrupted", "interrupted"),
            (
                "stopped-on-report",
                "finding: kernel report the lab could not parse",
                "report",
            ),
            // The run was stopped: it says nothing, but a report the parser saw is a report.
            ("record-failed", "inconclusive", "report"),
        ];
        let outcomes = outcomes();
        assert_eq!(outcomes.len(), table.len());
        for (outcome, (name, bare, reported)) in outcomes.iter().zip(table) {
            assert_eq!(outcome.name(), name);
            for kind in [Kind::Race, Kind::Uapi, Kind::Suite] {
                let none: Differences = vec![];
                let e = judge(kind, outcome, &[], &none, None, &Detectors::Proven);
                assert_eq!(short(&e), bare, "{name} {kind:?}");
                let lab_only = outcome_report(outcome).into_iter().collect::<Vec<_>>();
                assert_eq!(
                    judge(kind, outcome, &lab_only, &none, None, &Detectors::Proven),
                    e,
                    "the lab's own report is not a kernel report: {name}"
                );
                let e = judge(kind, outcome, &[kasan()], &none, None, &Detectors::Proven);
                assert_eq!(short(&e), reported, "{name} {kind:?} with a report");
                let with_diff = judge(kind, outcome, &[], &diff, None, &Detectors::Proven);
                let expected = match (kind, outcome) {
                    (Kind::Uapi | Kind::Suite, Outcome::Completed) => "differs".to_string(),
                    _ => bare.to_string(),
                };
                assert_eq!(
                    short(&with_diff),
                    expected,
                    "{name} {kind:?} with differences"
                );
            }
        }
    }

    #[test]
    fn verdicts_follow_the_evidence() {
        let none: Differences = vec![];
        let hang = hang();
        assert!(hang.counts() && hang.is_machine_finding());
        assert_eq!(hang.finding().unwrap().0, NO_OUTPUT);
        assert!(matches!(hang.verdict(), Verdict::Fail(d) if d.starts_with(NO_OUTPUT)));
        let report = judge(
            Kind::Race,
            &Outcome::Completed,
            &[kasan()],
            &none,
            None,
            &Detectors::Proven,
        );
        assert_eq!(
            report.verdict(),
            Verdict::Fail("KASAN: slab-use-after-free Read in __fput".into())
        );
        assert_eq!(
            judge(
                Kind::Race,
                &Outcome::Completed,
                &[],
                &none,
                None,
                &Detectors::Proven
            )
            .verdict(),
            Verdict::Pass
        );
        let silent = judge(
            Kind::Race,
            &Outcome::TimeoutNoOutput { after_ms: 1 },
            &[],
            &none,
            None,
            &Detectors::Proven,
        );
        assert!(!silent.counts() && silent.finding().is_none());
        assert!(matches!(silent.verdict(), Verdict::Error(_)));
        assert!(!Evidence::Interrupted.counts());
        assert!(!Evidence::Skipped { why: "x".into() }.counts());
        let failed: Differences = vec![(
            "epoll_wakeup_test/global.epoll27".into(),
            "ok".into(),
            "not ok".into(),
        )];
        assert_eq!(
            judge(
                Kind::Suite,
                &Outcome::Completed,
                &[],
                &failed,
                None,
                &Detectors::Proven
            )
            .verdict(),
            Verdict::Fail("1 test(s) fail: epoll_wakeup_test/global.epoll27 (not ok)".into())
        );
    }

    #[test]
    fn a_schedule_never_applied_is_an_error_naming_the_step_never_a_pass() {
        use crate::vm::schedule::{Attempt, ScheduleRecord};
        let none: Differences = vec![];
        let missed = Attempt {
            missed: Some(("close".into(), "not reached within 1s".into())),
            ..Attempt::default()
        };
        let mut record = ScheduleRecord {
            armed_ms: Some(1),
            attempts: vec![missed.clone(), missed],
            ..ScheduleRecord::default()
        };
        let e = judge(
            Kind::Race,
            &Outcome::Completed,
            &[],
            &none,
            Some(&record),
            &Detectors::Proven,
        );
        assert!(!e.counts());
        assert_eq!(
            e.verdict(),
            Verdict::Error(
                "the schedule was never applied: step \"close\" missed in 2 of 2 attempts \
                 (not reached within 1s)"
                    .into()
            )
        );
        // A report is a report, applied or not.
        let report = judge(
            Kind::Race,
            &Outcome::Completed,
            &[kasan()],
            &none,
            Some(&record),
            &Detectors::Proven,
        );
        assert!(report.is_kernel_report());
        record.attempts.push(Attempt::default());
        let e = judge(
            Kind::Race,
            &Outcome::Completed,
            &[],
            &none,
            Some(&record),
            &Detectors::Proven,
        );
        assert_eq!(e.verdict(), Verdict::Pass);
        // Applied and clean: a survival of what was applied, never a plain clean run; the
        // attempts an exploration made count by interleaving, the missed ones not at all.
        assert_eq!(
            e.survived().as_deref(),
            Some("survived 1 applied attempt of 1 interleaving")
        );
        for id in [7, 7, 9] {
            record.attempts.push(Attempt {
                interleaving: Some(id),
                ..Attempt::default()
            });
        }
        let explored = judge(
            Kind::Race,
            &Outcome::Completed,
            &[],
            &none,
            Some(&record),
            &Detectors::Unproven("no CONFIG_LKDTM".into()),
        );
        assert_eq!(
            explored,
            Evidence::Survived {
                applied: 4,
                interleavings: 3,
                unproven: Some("no CONFIG_LKDTM".into())
            }
        );
        assert!(explored.counts());
        assert_eq!(
            explored.verdict(),
            Verdict::PassUnproven("no CONFIG_LKDTM".into())
        );
        let silent = Detectors::Silent("KASAN did not fire on this machine".into());
        let e = judge(
            Kind::Race,
            &Outcome::Completed,
            &[],
            &none,
            Some(&record),
            &silent,
        );
        assert!(!e.counts() && e.survived().is_none());
        // Without a schedule, nothing survived: a clean run.
        let clean = judge(
            Kind::Race,
            &Outcome::Completed,
            &[],
            &none,
            None,
            &Detectors::Proven,
        );
        assert_eq!(clean, Evidence::Clean { unproven: None });
    }

    /// Only a completed run with nothing found reads the canary: silent detectors make it say
    /// nothing, unproven ones qualify its pass; findings, errors and differences are as they
    /// were, whatever the canary says.
    #[test]
    fn a_clean_run_counts_only_where_the_detectors_were_seen_to_fire() {
        let none: Differences = vec![];
        let silent = Detectors::Silent("KASAN did not fire on this machine (canary: c)".into());
        let unproven = Detectors::Unproven("no CONFIG_LKDTM".into());
        for kind in [Kind::Race, Kind::Uapi, Kind::Suite] {
            let clean = judge(kind, &Outcome::Completed, &[], &none, None, &silent);
            assert_eq!(
                clean.verdict(),
                Verdict::Error("KASAN did not fire on this machine (canary: c)".into())
            );
            assert!(!clean.counts());
            let qualified = judge(kind, &Outcome::Completed, &[], &none, None, &unproven);
            assert_eq!(
                qualified.verdict(),
                Verdict::PassUnproven("no CONFIG_LKDTM".into())
            );
            assert!(qualified.counts() && qualified.verdict().is_pass());
            assert_eq!(qualified.verdict().parts(), ("pass", "no CONFIG_LKDTM"));
            for outcome in outcomes() {
                if outcome == Outcome::Completed || outcome == Outcome::Interrupted {
                    continue;
                }
                for detectors in [&silent, &unproven] {
                    assert_eq!(
                        judge(kind, &outcome, &[], &none, None, detectors),
                        judge(kind, &outcome, &[], &none, None, &Detectors::Proven),
                        "{outcome:?}"
                    );
                }
            }
            assert!(
                judge(kind, &Outcome::Completed, &[kasan()], &none, None, &silent)
                    .is_kernel_report()
            );
        }
        // Stored and read back, the qualifier stays.
        let e = judge(Kind::Race, &Outcome::Completed, &[], &none, None, &unproven);
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["unproven"], "no CONFIG_LKDTM");
        assert_eq!(serde_json::from_value::<Evidence>(json).unwrap(), e);
        let old: Evidence = serde_json::from_value(serde_json::json!({"kind": "clean"})).unwrap();
        assert_eq!(old.verdict(), Verdict::Pass);
        assert_eq!(
            Evidence::from_verdict(&e.verdict(), Some(&Outcome::Completed), &[], &none),
            e
        );
    }

    #[test]
    fn machine_outcomes_become_lab_reports() {
        let silent = Outcome::TimeoutNoHeartbeat {
            after_ms: 30_000,
            last_heard_ms: 1_000,
        };
        let r = outcome_report(&silent).unwrap();
        assert_eq!(r.title, NO_OUTPUT);
        assert_eq!(r.kind, ReportType::Lab);
        assert!(r.text.contains("silent since 1000 ms"));
        let lost = Outcome::AgentLost {
            detail: "channel closed".into(),
        };
        assert_eq!(outcome_report(&lost).unwrap().title, LOST_CONNECTION);
        assert!(outcome_report(&Outcome::Completed).is_none());
        assert!(outcome_report(&Outcome::Interrupted).is_none());
        let refused = Outcome::QemuExited {
            status: Some(1),
            signal: None,
            stderr: "qemu: linux kernel too old to load a ram disk\n".into(),
        };
        assert_eq!(
            outcome_report(&refused).unwrap().title,
            "QEMU exited with status 1: qemu: linux kernel too old to load a ram disk"
        );
        let killed = Outcome::QemuExited {
            status: None,
            signal: Some(9),
            stderr: String::new(),
        };
        assert_eq!(outcome_report(&killed).unwrap().title, LOST_CONNECTION);
    }

    #[test]
    fn stored_verdicts_read_back_as_the_same_evidence() {
        let none: Differences = vec![];
        for outcome in outcomes() {
            for reports in [vec![], vec![kasan()]] {
                let mut all = reports.clone();
                all.extend(outcome_report(&outcome));
                let e = judge(Kind::Race, &outcome, &all, &none, None, &Detectors::Proven);
                let back = Evidence::from_verdict(&e.verdict(), Some(&outcome), &all, &none);
                assert_eq!(back.verdict(), e.verdict(), "{outcome:?}");
                assert_eq!(back.counts(), e.counts(), "{outcome:?}");
                assert_eq!(
                    back.finding().map(|f| f.0.to_string()),
                    e.finding().map(|f| f.0.to_string()),
                    "{outcome:?}"
                );
            }
        }
    }
}
