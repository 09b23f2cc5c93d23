//! A night's results: the model stored as `results.json` (versioned schema), and the rules
//! its renderers (`render/`) show: a cell's tally and whether it did what was expected.

use super::history::{Change, ChangeKind};
use super::{RunResult, Verdict};
use crate::kernel::Metadata;
use serde::{Deserialize, Serialize};

/// Bumped when a field changes meaning or goes away (adding one does not).
pub const SCHEMA_VERSION: u32 = 1;

/// How a cell's note starts when the cell could not run (its kernel did not build).
pub const NOT_RUN: &str = "not run: ";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NightResults {
    pub schema: u32,
    pub lab: String,
    pub config: String,
    pub started: String,
    pub ended: String,
    /// The night's unique identity (nights started in the same second differ; a night
    /// merged twice from the same shards is the same night). Empty in nights recorded
    /// before it existed: [`NightResults::identity`] is their start time then.
    #[serde(default)]
    pub uid: String,
    /// The night's id in the history.
    pub night: Option<i64>,
    pub cells: Vec<CellResult>,
    pub changes: Vec<ChangeOut>,
    /// The commits behind this night's changes (its bisections' answers, or earlier nights'
    /// for signatures still there).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub culprits: Vec<super::culprit::Culprit>,
    /// Each cell's last nights in the history (this one included), newest first: what
    /// report.html draws as the cell's timeline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timelines: Vec<Timeline>,
    /// Infrastructure failures: builds that broke, cells that could not run.
    pub errors: Vec<String>,
    /// A shard's partial night: which share of which plan it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<super::shard::Shard>,
    /// A night merged from shards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<super::shard::Merged>,
}

impl NightResults {
    /// The culprit named for `change`, when there is one.
    pub fn culprit_of(&self, change: &ChangeOut) -> Option<&super::culprit::Culprit> {
        self.culprits
            .iter()
            .find(|c| c.is_about(&change.variant, &change.scenario, &change.signature))
    }

    /// The culprits of no change of this night: signatures still there whose introduction
    /// an earlier night bisected.
    pub fn culprits_still_there(&self) -> Vec<&super::culprit::Culprit> {
        self.culprits
            .iter()
            .filter(|k| {
                !self
                    .changes
                    .iter()
                    .any(|c| k.is_about(&c.variant, &c.scenario, &c.signature))
            })
            .collect()
    }

    /// The night's unique identity: its uid, or its start time for an older night.
    pub fn identity(&self) -> &str {
        if self.uid.is_empty() {
            &self.started
        } else {
            &self.uid
        }
    }

    /// A new night's uid: its start, its directory, this process and the clock, hashed.
    pub fn fresh_uid(started: &str, out: &std::path::Path) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let text = format!(
            "{started}\0{}\0{}\0{nanos}",
            out.display(),
            std::process::id()
        );
        hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes())[..16])
    }

    /// The uid of a night merged from shards with these uids: the same shards give the
    /// same night.
    pub fn merged_uid(shard_uids: &[&str]) -> String {
        let mut uids = shard_uids.to_vec();
        uids.sort_unstable();
        let text = format!("merged\0{}", uids.join("\0"));
        hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes())[..16])
    }

    /// The night in `dir` (its results.json).
    pub fn read(dir: &std::path::Path) -> anyhow::Result<NightResults> {
        let file = dir.join("results.json");
        let bytes = crate::files::read(&file)?;
        serde_json::from_slice(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
    }
}

/// A cell's last nights, with every culprit the history knows for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    pub variant: String,
    pub scenario: String,
    pub nights: Vec<super::history::TimelineNight>,
    pub culprits: Vec<super::culprit::Culprit>,
}

impl Timeline {
    /// Each signature of the shown nights with its title and the start of the first and the
    /// last night that found it, first seen first.
    pub fn signatures(&self) -> Vec<(&str, &str, &str, &str)> {
        let mut out: Vec<(&str, &str, &str, &str)> = Vec::new();
        // Oldest night first, so the first night a signature is met is its first seen.
        for n in self.nights.iter().rev() {
            for (sig, title) in &n.signatures {
                match out.iter_mut().find(|s| s.0 == sig) {
                    Some(seen) => seen.3 = &n.started,
                    None => out.push((sig, title, &n.started, &n.started)),
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    pub variant: String,
    pub scenario: String,
    /// The source line of development ("debian:linux-source-6.12", "git:REPO@REF").
    pub source: String,
    /// Hash of what shapes the cell's result besides the kernel (scenario file, runs, duration).
    pub plan_key: String,
    pub kernel: Option<Metadata>,
    pub runs: Vec<RunResult>,
    /// The source commit, for git sources.
    #[serde(default)]
    pub commit: Option<String>,
    /// lab.toml's expectation for the cell ("pass", "fail", or text of the first failure).
    #[serde(default)]
    pub expect: Option<String>,
    /// Why the cell did not run this night (its commit was already tested).
    #[serde(default)]
    pub note: Option<String>,
    /// The plan: runs asked for and each run's workload duration.
    #[serde(default)]
    pub runs_planned: u32,
    #[serde(default)]
    pub duration_ms: u64,
    /// The runs by verdict (filled when the night is written).
    #[serde(default)]
    pub counts: Counts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub pass: usize,
    pub fail: usize,
    pub error: usize,
    pub skipped: usize,
}

impl CellResult {
    pub fn count(&mut self) {
        let (fail, error, skipped, pass) = tally(self);
        self.counts = Counts {
            pass,
            fail,
            error,
            skipped,
        };
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeOut {
    pub kind: String,
    pub variant: String,
    pub scenario: String,
    pub signature: String,
    pub title: String,
}

impl From<&Change> for ChangeOut {
    fn from(c: &Change) -> Self {
        ChangeOut {
            kind: match c.kind {
                ChangeKind::Regression => "regression",
                ChangeKind::Fixed => "fixed",
                ChangeKind::Flaky => "flaky",
            }
            .into(),
            variant: c.variant.clone(),
            scenario: c.scenario.clone(),
            signature: c.signature.clone(),
            title: c.title.clone(),
        }
    }
}

/// (failed, errors, skipped, passed) runs of a cell.
pub fn tally(cell: &CellResult) -> (usize, usize, usize, usize) {
    let mut c = (0, 0, 0, 0);
    for r in &cell.runs {
        match r.verdict() {
            Verdict::Fail(_) => c.0 += 1,
            Verdict::Error(_) => c.1 += 1,
            Verdict::Skipped(_) => c.2 += 1,
            Verdict::Pass | Verdict::PassUnproven(_) => c.3 += 1,
        }
    }
    c
}

/// Why the cell's passes are qualified (no canary proved the machine's detectors), when they
/// are.
pub fn unproven(cell: &CellResult) -> Option<String> {
    cell.runs.iter().find_map(|r| match r.verdict() {
        Verdict::PassUnproven(why) => Some(why),
        _ => None,
    })
}

/// What the cell's runs with a schedule survived, when some did.
pub fn survived(cell: &CellResult) -> Option<String> {
    super::survived(&cell.runs)
}

/// The first failing run and its verdict detail (a finding's title, or the uapi differences).
pub fn first_failure(cell: &CellResult) -> Option<(&RunResult, String)> {
    cell.runs.iter().find_map(|r| match r.verdict() {
        Verdict::Fail(detail) => Some((r, detail)),
        _ => None,
    })
}

/// Whether the cell did what lab.toml expects of it; none when nothing is expected or no
/// run said anything about the kernel. "pass": no run failed; "fail": some run failed;
/// other text: some run failed and the first failure's verdict contains it.
pub fn as_expected(cell: &CellResult) -> Option<bool> {
    let expect = cell.expect.as_deref()?;
    let (fail, _, _, pass) = tally(cell);
    if fail + pass == 0 {
        return None;
    }
    let first = first_failure(cell).map(|(_, detail)| detail);
    Some(match expect {
        "pass" => first.is_none(),
        "fail" => first.is_some(),
        text => first.is_some_and(|d| d.contains(text)),
    })
}
