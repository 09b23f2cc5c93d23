//! What a night leaves in its directory: `results.json` (versioned schema), `junit.xml` (one
//! testcase per variant × scenario) and `summary.md` (the matrix, then what changed).

use super::history::{Change, ChangeKind};
use super::{RunResult, Verdict};
use crate::kernel::Metadata;
use quick_junit::{NonSuccessKind, Report as Junit, TestCase, TestCaseStatus, TestSuite};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bumped when a field changes meaning or goes away (adding one does not).
pub const SCHEMA_VERSION: u32 = 1;

/// How a cell's note starts when the cell could not run (its kernel did not build).
pub const NOT_RUN: &str = "not run: ";

/// Console text kept in a JUnit failure: the first report, cut to this many bytes.
const EXCERPT: usize = 8 * 1024;

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
fn tally(cell: &CellResult) -> (usize, usize, usize, usize) {
    let mut c = (0, 0, 0, 0);
    for r in &cell.runs {
        match r.verdict() {
            Verdict::Fail(_) => c.0 += 1,
            Verdict::Error(_) => c.1 += 1,
            Verdict::Skipped(_) => c.2 += 1,
            Verdict::Pass => c.3 += 1,
        }
    }
    c
}

/// The first failing run and its verdict detail (a finding's title, or the uapi differences).
fn first_failure(cell: &CellResult) -> Option<(&RunResult, String)> {
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

/// The matrix cell: the outcome, then whether it was expected.
pub fn cell_with_expectation(cell: &CellResult) -> String {
    let text = cell_text(cell);
    match (as_expected(cell), cell.expect.as_deref()) {
        (Some(true), _) => format!("{text} ✓"),
        (Some(false), Some(e)) => format!("{text} ✗ expected {e}"),
        _ => text,
    }
}

/// One line of the matrix: "FAIL 3/3: WARNING in dma_buf_poll", "pass 3/3", ...
pub fn cell_text(cell: &CellResult) -> String {
    if let Some(note) = &cell.note {
        return note.clone();
    }
    let (fail, error, skipped, pass) = tally(cell);
    let n = cell.runs.len();
    if n == 0 {
        return format!("{NOT_RUN}no run was made");
    }
    if let Some((_, detail)) = first_failure(cell) {
        let mut t = format!("FAIL {fail}/{n}: {detail}");
        if error > 0 {
            t.push_str(&format!(" ({error} error)"));
        }
        t
    } else if error > 0 {
        let first = cell
            .runs
            .iter()
            .find_map(|r| match r.verdict() {
                Verdict::Error(d) => Some(d),
                _ => None,
            })
            .unwrap_or_default();
        format!("error {error}/{n}: {first}")
    } else if skipped == n && n > 0 {
        format!("skipped: {}", cell.runs[0].verdict().parts().1)
    } else {
        format!("pass {pass}/{n}")
    }
}

/// The matrix's axes: (variants, scenarios), each in the order of first appearance.
pub fn axes(night: &NightResults) -> (Vec<&str>, Vec<&str>) {
    let mut scenarios: Vec<&str> = Vec::new();
    let mut variants: Vec<&str> = Vec::new();
    for c in &night.cells {
        if !scenarios.contains(&c.scenario.as_str()) {
            scenarios.push(&c.scenario);
        }
        if !variants.contains(&c.variant.as_str()) {
            variants.push(&c.variant);
        }
    }
    (variants, scenarios)
}

/// Where a night's runs come from when not from one whole run: one shard, or a merge.
fn provenance(night: &NightResults) -> Option<String> {
    if let Some(shard) = &night.shard {
        let runs: u32 = shard.share.iter().map(|s| s.runs).sum();
        return Some(format!(
            "Shard {} of this night's plan: {runs} run(s); `lab merge` makes the night of \
             all its shards and decides what regressed.",
            shard.name()
        ));
    }
    night.merged.as_ref().map(|m| format!("{}.", m.describe()))
}

/// Each cell's suppressed reports: (variant, scenario, title) → (runs that printed it, why).
type Suppressed<'a> = BTreeMap<(&'a str, &'a str, &'a str), (usize, &'a str)>;

fn suppressed(night: &NightResults) -> Suppressed<'_> {
    let mut out: Suppressed = BTreeMap::new();
    for cell in &night.cells {
        for r in &cell.runs {
            for (title, why) in r.suppressed_titles() {
                out.entry((&cell.variant, &cell.scenario, title))
                    .or_insert((0, why))
                    .0 += 1;
            }
        }
    }
    out
}

/// Markdown: the variant × scenario matrix, then regressions, fixes and flaky signatures.
pub fn summary_md(night: &NightResults) -> String {
    let (variants, scenarios) = axes(night);
    let by_cell: BTreeMap<(&str, &str), &CellResult> = night
        .cells
        .iter()
        .map(|c| ((c.variant.as_str(), c.scenario.as_str()), c))
        .collect();
    // Guest text goes into table cells: no pipes or newlines may break the table.
    let clean = |s: String| s.replace('|', "\\|").replace(['\n', '\r'], " ");
    let mut s = format!(
        "# {}\n\n{} → {}\n\n| variant | {} |\n|---|{}\n",
        if night.lab.is_empty() {
            "lab nightly"
        } else {
            &night.lab
        },
        night.started,
        night.ended,
        scenarios.join(" | "),
        "---|".repeat(scenarios.len())
    );
    if let Some(line) = provenance(night) {
        s = s.replacen("\n\n| variant", &format!("\n\n{line}\n\n| variant"), 1);
    }
    for v in &variants {
        let row: Vec<String> = scenarios
            .iter()
            .map(|sc| {
                by_cell
                    .get(&(*v, *sc))
                    .map(|c| clean(cell_with_expectation(c)))
                    .unwrap_or_else(|| "·".into())
            })
            .collect();
        s.push_str(&format!("| {v} | {} |\n", row.join(" | ")));
    }
    for (kind, heading) in [
        ("regression", "Regressions"),
        ("fixed", "Fixed"),
        (
            "flaky",
            "Flaky (seen in some recent nights, not alarmed on)",
        ),
    ] {
        let items: Vec<&ChangeOut> = night.changes.iter().filter(|c| c.kind == kind).collect();
        if items.is_empty() {
            continue;
        }
        s.push_str(&format!("\n## {heading}\n\n"));
        for c in items {
            s.push_str(&format!(
                "- {} × {}: {} [{}]\n",
                c.variant,
                c.scenario,
                clean(c.title.clone()),
                c.signature
            ));
        }
    }
    // A shard is not compared with anything: the merge decides.
    if night.shard.is_none() && night.changes.iter().all(|c| c.kind != "regression") {
        s.push_str("\nNo regression.\n");
    }
    // Suites: the tests whose result differs from the first variant's, per scenario.
    let mut differ = String::new();
    for sc in &scenarios {
        let mut ran = variants.iter().filter_map(|v| by_cell.get(&(*v, *sc)));
        let Some(first) = ran.next() else { continue };
        let reference = super::compare::test_results(&first.runs);
        if reference.is_empty() {
            continue;
        }
        for cell in ran {
            let tests = super::compare::test_results(&cell.runs);
            for (test, a, b) in super::compare::tests_that_differ(&reference, &tests) {
                differ.push_str(&format!(
                    "- {} × {sc}: {}: {a} → {b} (vs {})\n",
                    cell.variant,
                    clean(test),
                    first.variant
                ));
            }
        }
    }
    if !differ.is_empty() {
        s.push_str("\n## Tests whose result differs between variants\n\n");
        s.push_str(&differ);
    }
    let suppressed = suppressed(night);
    if !suppressed.is_empty() {
        s.push_str("\n## Suppressed (the lab's suppression list: kept, not findings)\n\n");
        for ((variant, scenario, title), (runs, why)) in suppressed {
            s.push_str(&format!(
                "- {variant} × {scenario}: {} ({runs} runs): {}\n",
                clean(title.to_string()),
                clean(why.to_string())
            ));
        }
    }
    let unexpected: Vec<&CellResult> = night
        .cells
        .iter()
        .filter(|c| as_expected(c) == Some(false))
        .collect();
    if !unexpected.is_empty() {
        s.push_str("\n## Not as lab.toml expects\n\n");
        for c in unexpected {
            s.push_str(&format!(
                "- {} × {}: {} (expected {})\n",
                c.variant,
                c.scenario,
                clean(cell_text(c)),
                c.expect.as_deref().unwrap_or("")
            ));
        }
    }
    if !night.errors.is_empty() {
        s.push_str("\n## Infrastructure errors\n\n");
        for e in &night.errors {
            s.push_str(&format!("- {}\n", clean(e.clone())));
        }
    }
    s
}

/// JUnit: a suite per scenario, a testcase per variant. A failure's message is the first
/// report's title; its description the report's console text (XML-escaped by quick-junit,
/// which also drops characters XML cannot carry).
pub fn junit_xml(night: &NightResults) -> Result<String, quick_junit::SerializeError> {
    let mut report = Junit::new("lab nightly");
    let mut suites: BTreeMap<&str, TestSuite> = BTreeMap::new();
    for cell in &night.cells {
        let (_, error, skipped, _) = tally(cell);
        let status = if let Some((r, detail)) = first_failure(cell) {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            st.set_message(detail);
            if let Some(rep) = r.reports.iter().find(|r| r.counts()).or(r.reports.first()) {
                let mut text = rep.text.clone();
                if text.len() > EXCERPT {
                    let cut = (0..=EXCERPT)
                        .rev()
                        .find(|&i| text.is_char_boundary(i))
                        .unwrap_or(0);
                    text.truncate(cut);
                }
                st.set_description(text);
            }
            st
        } else if error > 0
            || (cell.runs.is_empty() && cell.note.is_none())
            || cell.note.as_deref().is_some_and(|n| n.starts_with(NOT_RUN))
        {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
            st.set_message(cell_text(cell));
            st
        } else if skipped == cell.runs.len() {
            let mut st = TestCaseStatus::skipped();
            st.set_message(cell_text(cell));
            st
        } else {
            TestCaseStatus::success()
        };
        let mut case = TestCase::new(cell.variant.clone(), status);
        case.set_classname(format!("{}.{}", cell.scenario, cell.variant));
        suites
            .entry(cell.scenario.as_str())
            .or_insert_with(|| TestSuite::new(cell.scenario.clone()))
            .add_test_case(case);
    }
    report.add_test_suites(suites.into_values());
    report.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::parser::Report;
    use crate::vm::outcome::Outcome;

    fn run(verdict: Verdict, report_text: Option<&str>) -> RunResult {
        let reports: Vec<Report> = report_text
            .map(|t| {
                let mut r = Report::lab("WARNING in dma_buf_poll", t.to_string());
                r.kind = crate::report::formats::ReportType::Warning;
                vec![r]
            })
            .unwrap_or_default();
        RunResult {
            index: 1,
            dir: "/tmp/x".into(),
            evidence: crate::results::Evidence::from_verdict(
                &verdict,
                Some(&Outcome::Completed),
                &reports,
                &vec![],
            ),
            outcome: Some(Outcome::Completed),
            reports,
            first_report_ms: Some(120),
            throughput: vec![("closer".into(), 400.0)],
            differences: vec![],
            record: None,
        }
    }

    /// Guest output is untrusted: markup, control characters and table breakers.
    const HOSTILE: &str =
        "WARNING: CPU: 0 </failure><script>alert(1)</script> & \u{1b}[31m \u{0} | x\nnext";

    fn night() -> NightResults {
        NightResults {
            uid: String::new(),
            schema: SCHEMA_VERSION,
            lab: "seed lab".into(),
            config: "lab.toml".into(),
            started: "2026-11-26T01:00:00Z".into(),
            ended: "2026-11-26T01:30:00Z".into(),
            night: Some(7),
            cells: vec![
                CellResult {
                    variant: "epoll-unpinned-poll".into(),
                    scenario: "epoll-dmabuf-race".into(),
                    source: "debian:linux-source-6.12".into(),
                    plan_key: "k".into(),
                    kernel: None,
                    commit: None,
                    expect: Some("WARNING in dma_buf_poll".into()),
                    note: None,
                    runs_planned: 2,
                    duration_ms: 4000,
                    counts: Counts::default(),
                    runs: vec![
                        run(
                            Verdict::Fail("WARNING in dma_buf_poll".into()),
                            Some(HOSTILE),
                        ),
                        run(Verdict::Fail("WARNING in dma_buf_poll".into()), Some("x")),
                    ],
                },
                CellResult {
                    variant: "baseline".into(),
                    scenario: "epoll-dmabuf-race".into(),
                    source: "debian:linux-source-6.12".into(),
                    plan_key: "k".into(),
                    kernel: None,
                    commit: None,
                    expect: Some("pass".into()),
                    note: None,
                    runs_planned: 2,
                    duration_ms: 4000,
                    counts: Counts::default(),
                    runs: vec![run(Verdict::Pass, None), run(Verdict::Pass, None)],
                },
                CellResult {
                    variant: "baseline".into(),
                    scenario: "uapi-epoll".into(),
                    source: "debian:linux-source-6.12".into(),
                    plan_key: "k2".into(),
                    kernel: None,
                    commit: None,
                    expect: None,
                    note: None,
                    runs_planned: 2,
                    duration_ms: 4000,
                    counts: Counts::default(),
                    runs: vec![run(
                        Verdict::Error("no output from test machine".into()),
                        None,
                    )],
                },
            ],
            changes: vec![ChangeOut {
                kind: "regression".into(),
                variant: "epoll-unpinned-poll".into(),
                scenario: "epoll-dmabuf-race".into(),
                signature: "09739e8343941586".into(),
                title: "WARNING in dma_buf_poll".into(),
            }],
            errors: vec![],
            shard: None,
            merged: None,
        }
    }

    #[test]
    fn results_json_round_trips() {
        let mut n = night();
        n.cells.iter_mut().for_each(CellResult::count);
        let text = serde_json::to_string_pretty(&n).unwrap();
        let back: NightResults = serde_json::from_str(&text).unwrap();
        assert_eq!(back, n);
        assert!(text.contains("\"schema\": 1"));
        assert_eq!(
            back.cells[0].counts,
            Counts {
                pass: 0,
                fail: 2,
                error: 0,
                skipped: 0
            }
        );
    }

    #[test]
    fn junit_parses_back_with_one_case_per_cell() {
        let xml = junit_xml(&night()).unwrap();
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let cases: Vec<roxmltree::Node> = doc
            .descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        assert_eq!(cases.len(), 3);
        let racy = cases
            .iter()
            .find(|c| c.attribute("name") == Some("epoll-unpinned-poll"))
            .unwrap();
        let failure = racy
            .children()
            .find(|n| n.has_tag_name("failure"))
            .expect("failure element");
        assert_eq!(
            failure.attribute("message"),
            Some("WARNING in dma_buf_poll")
        );
        // The hostile console text is carried as text, not markup.
        let text = failure.text().unwrap_or_default();
        assert!(text.contains("</failure><script>"), "{text:?}");
        assert!(!xml.contains("<script>"));
        let uapi = cases
            .iter()
            .find(|c| c.attribute("classname") == Some("uapi-epoll.baseline"))
            .unwrap();
        assert!(uapi.children().any(|n| n.has_tag_name("error")));
        let suites: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("testsuite"))
            .filter_map(|n| n.attribute("name"))
            .collect();
        assert_eq!(suites, ["epoll-dmabuf-race", "uapi-epoll"]);
    }

    #[test]
    fn report_html_carries_hostile_console_text_as_text() {
        let mut n = night();
        n.cells[0].runs[0].record = None;
        n.lab = "<b>lab</b>".into();
        let page = super::super::html::page(&n);
        assert!(page.starts_with("<!DOCTYPE html>"));
        // The guest's markup arrives escaped, its control characters dropped.
        assert!(
            page.contains("&lt;/failure&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp;"),
            "{page}"
        );
        assert!(
            !page.contains("<script>") && !page.contains("<b>lab"),
            "{page}"
        );
        assert!(!page.contains('\u{1b}') && !page.contains('\u{0}'));
        // Matrix, regression, chart rows for the cells that ran, a section per cell.
        assert!(page.contains("WARNING in dma_buf_poll ✓"), "{page}");
        assert!(page.contains("1 regression(s)"));
        assert!(page.contains("2/2 (34–100 %)"), "{page}");
        assert!(page.contains("id=\"epoll-unpinned-poll.epoll-dmabuf-race\""));
        // Self-contained: no script, no external resource.
        assert!(!page.contains("<script") && !page.contains(" src=") && !page.contains("<link"));
    }

    #[test]
    fn a_cell_with_nothing_run_is_not_a_pass() {
        let mut n = night();
        n.cells[1].runs.clear();
        assert_eq!(cell_text(&n.cells[1]), "not run: no run was made");
        assert_eq!(as_expected(&n.cells[1]), None);
        let xml = junit_xml(&n).unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let case = doc
            .descendants()
            .find(|c| c.attribute("classname") == Some("epoll-dmabuf-race.baseline"))
            .unwrap();
        assert!(case.children().any(|n| n.has_tag_name("error")), "{xml}");
    }

    #[test]
    fn summary_is_a_matrix_then_the_changes() {
        let mut n = night();
        n.cells[1].runs[0].evidence = crate::results::Evidence::KernelReport {
            title: HOSTILE.into(),
            signature: "s".into(),
        };
        let md = summary_md(&n);
        assert!(
            md.contains("| variant | epoll-dmabuf-race | uapi-epoll |"),
            "{md}"
        );
        assert!(
            md.contains("| epoll-unpinned-poll | FAIL 2/2: WARNING in dma_buf_poll ✓ | · |"),
            "{md}"
        );
        assert!(md.contains("| baseline | FAIL 1/2: "), "{md}");
        // baseline was expected to pass: marked in the cell and listed.
        assert!(md.contains("✗ expected pass |"), "{md}");
        assert!(
            md.contains("## Not as lab.toml expects\n\n- baseline × epoll-dmabuf-race: FAIL 1/2"),
            "{md}"
        );
        assert!(
            md.contains("error 1/1: no output from test machine |"),
            "{md}"
        );
        assert!(md.contains(
            "## Regressions\n\n- epoll-unpinned-poll × epoll-dmabuf-race: WARNING in dma_buf_poll"
        ));
        // A pipe or newline from the guest cannot add columns or rows.
        let row = md
            .lines()
            .find(|l| l.starts_with("| baseline | FAIL"))
            .unwrap();
        assert_eq!(row.matches(" | ").count(), 2, "{row}");
    }
}
