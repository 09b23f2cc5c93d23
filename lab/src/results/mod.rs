//! What runs leave behind and what is made of it: the result of a run and the one rule of
//! what it is evidence of, statistics for comparisons, the history of nights and the
//! regressions read from it, and the night's files (results.json, JUnit, Markdown, HTML).
//! `run/` produces [`RunResult`]s; nothing here imports `run/`.

pub mod canary;
pub mod compare;
pub mod culprit;
pub mod evidence;
pub mod history;
pub mod night;
pub mod render;
pub mod shard;
pub mod stats;

pub use evidence::{Evidence, Verdict};

use crate::report::parser::Report;
use crate::vm::outcome::Outcome;

/// A run's machine record with its program's output read as per-test results.
pub type RunRecord = crate::vm::outcome::RunRecord<crate::tap::Suite>;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What the runs with a schedule survived, when some did: "survived 51 applied attempts in 3
/// runs" (a run's interleavings are its own; across runs they are not told apart).
pub fn survived<'a>(runs: impl IntoIterator<Item = &'a RunResult>) -> Option<String> {
    let (n, applied) = runs
        .into_iter()
        .filter_map(|r| match r.evidence {
            Evidence::Survived { applied, .. } => Some(applied),
            _ => None,
        })
        .fold((0u32, 0u32), |(n, a), applied| (n + 1, a + applied));
    (n > 0).then(|| {
        format!(
            "survived {} in {}",
            crate::text::count(applied, "applied attempt", "applied attempts"),
            crate::text::count(n, "run", "runs")
        )
    })
}

/// One run of a batch, as stored in runs.json (and in a night's results.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "Stored", into = "Stored")]
pub struct RunResult {
    pub index: u32,
    pub dir: PathBuf,
    /// What the run is evidence of: the one thing every command reads.
    pub evidence: Evidence,
    /// How the VM run ended; none when no VM ran (a skipped run).
    pub outcome: Option<Outcome>,
    pub reports: Vec<Report>,
    /// From the workload's start to the first report line.
    pub first_report_ms: Option<u64>,
    /// (role, operations per second summed over its threads).
    pub throughput: Vec<(String, f64)>,
    /// uapi: (check, expected, observed) where they differ.
    pub differences: evidence::Differences,
    pub record: Option<RunRecord>,
}

impl RunResult {
    /// The verdict under the scenario's rule (derived from the evidence).
    pub fn verdict(&self) -> Verdict {
        self.evidence.verdict()
    }

    /// The run's outcome name, "not-run" when no VM ran.
    pub fn outcome_name(&self) -> &'static str {
        self.outcome.as_ref().map_or("not-run", Outcome::name)
    }

    /// The distinct titles of the reports the suppression list left out, each with why.
    pub fn suppressed_titles(&self) -> Vec<(&str, &str)> {
        let mut titles: Vec<(&str, &str)> = self
            .reports
            .iter()
            .filter_map(|r| Some((r.title.as_str(), r.suppressed.as_deref()?)))
            .collect();
        titles.sort();
        titles.dedup_by_key(|(t, _)| *t);
        titles
    }

    /// The distinct titles of what the run found: every kernel report it printed, or what
    /// the machine saw.
    pub fn finding_titles(&self) -> Vec<&str> {
        let mut titles: Vec<&str> = match &self.evidence {
            Evidence::KernelReport { .. } => self
                .reports
                .iter()
                .filter(|r| r.counts())
                .map(|r| r.title.as_str())
                .collect(),
            Evidence::MachineFinding { title, .. } => vec![title.as_str()],
            _ => vec![],
        };
        titles.sort();
        titles.dedup();
        titles
    }

    /// (signature, title) of each test that failed in the run and counts (a suite's failed
    /// tests, as the run's differences hold them: a test the scenario calls flaky is not
    /// among them): what the history keeps, so a test that starts failing is a regression
    /// under its own name.
    pub fn failed_tests(&self) -> Vec<(String, String)> {
        if self.record.as_ref().is_none_or(|r| r.tests.is_none()) {
            return vec![];
        }
        self.differences
            .iter()
            .map(|(name, _, status)| {
                let title = format!("test {name}: {}", status.as_str().unwrap_or("?"));
                (crate::report::parser::signature(&title), title)
            })
            .collect()
    }

    /// A run that did not boot: the kernel lacks what the scenario needs.
    pub fn skipped(index: u32, dir: PathBuf, why: String) -> RunResult {
        RunResult {
            index,
            dir,
            evidence: Evidence::Skipped { why },
            outcome: None,
            reports: vec![],
            first_report_ms: None,
            throughput: vec![],
            differences: vec![],
            record: None,
        }
    }
}

/// The form on disk: the evidence and, for readers of the file, the verdict it gives.
/// Files written before evidence was recorded have only the verdict; it is read back with
/// [`Evidence::from_verdict`].
#[derive(Serialize, Deserialize)]
struct Stored {
    index: u32,
    dir: PathBuf,
    verdict: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    evidence: Option<Evidence>,
    outcome: Option<Outcome>,
    reports: Vec<Report>,
    first_report_ms: Option<u64>,
    throughput: Vec<(String, f64)>,
    differences: evidence::Differences,
    record: Option<RunRecord>,
}

impl From<Stored> for RunResult {
    fn from(s: Stored) -> Self {
        let evidence = s.evidence.unwrap_or_else(|| {
            Evidence::from_verdict(&s.verdict, s.outcome.as_ref(), &s.reports, &s.differences)
        });
        // A skipped run of an older file carried a placeholder outcome: no VM ran.
        let outcome = match evidence {
            Evidence::Skipped { .. } => None,
            _ => s.outcome,
        };
        RunResult {
            index: s.index,
            dir: s.dir,
            evidence,
            outcome,
            reports: s.reports,
            first_report_ms: s.first_report_ms,
            throughput: s.throughput,
            differences: s.differences,
            record: s.record,
        }
    }
}

impl From<RunResult> for Stored {
    fn from(r: RunResult) -> Self {
        Stored {
            index: r.index,
            dir: r.dir,
            verdict: r.evidence.verdict(),
            evidence: Some(r.evidence),
            outcome: r.outcome,
            reports: r.reports,
            first_report_ms: r.first_report_ms,
            throughput: r.throughput,
            differences: r.differences,
            record: r.record,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_json_carries_evidence_and_verdict_and_reads_older_files() {
        let r = RunResult::skipped(3, "/tmp/b".into(), "needs CONFIG_UDMABUF".into());
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["verdict"]["verdict"], "skipped");
        assert_eq!(json["evidence"]["kind"], "skipped");
        assert_eq!(json["outcome"], serde_json::Value::Null);
        assert_eq!(serde_json::from_value::<RunResult>(json).unwrap(), r);
        // An older runs.json: a skipped run with a placeholder "completed" outcome, no
        // evidence; a hang stored as a failure with the lab's report.
        let old = serde_json::json!([
            {"index": 1, "dir": "/x", "verdict": {"verdict": "skipped", "detail": "needs CONFIG_X"},
             "outcome": {"kind": "completed"}, "reports": [], "first_report_ms": null,
             "throughput": [], "differences": [], "record": null},
            {"index": 2, "dir": "/x", "verdict": {"verdict": "fail",
                                                   "detail": "timeout-no-heartbeat: silent since 1 ms, gave up at 2 ms"},
             "outcome": {"kind": "timeout-no-heartbeat", "after_ms": 2, "last_heard_ms": 1},
             "reports": [], "first_report_ms": null,
             "throughput": [], "differences": [], "record": null}
        ]);
        let back: Vec<RunResult> = serde_json::from_value(old).unwrap();
        assert_eq!(back[0].outcome, None);
        assert_eq!(back[0].outcome_name(), "not-run");
        assert!(matches!(back[0].evidence, Evidence::Skipped { .. }));
        assert!(back[1].evidence.is_machine_finding());
        assert_eq!(back[1].finding_titles(), [evidence::NO_OUTPUT]);
    }
}
