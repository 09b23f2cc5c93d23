//! The night on record: cells counted, one history night per source line (so nights compare
//! along each line), what changed against each cell's last comparable night, and the night's
//! files.

use super::plan::Plan;
use super::NightOutcome;
use crate::config::lab::LabConfig;
use crate::kernel::Metadata;
use crate::results::history::{History, HistoryError, RunRow};
use crate::results::night::{self, CellResult, ChangeOut, NightResults};
use crate::results::shard::{Merged, Shard};
use crate::results::{RunResult, Verdict};
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::Path;

/// Runs that say something about the kernel go into the history (the evidence rule); the
/// others do not, so a night whose VMs failed is not read as "every report was fixed". A
/// run's signature is its finding's: its first kernel report (what follows it, a GPF after a
/// use-after-free, is the kernel falling over and varies run to run), or the hang the machine
/// saw; and, for a suite, each test that failed.
fn history_rows(cell: &CellResult) -> Vec<RunRow> {
    cell.runs
        .iter()
        .filter(|r| r.evidence.counts())
        .map(|r: &RunResult| RunRow {
            variant: cell.variant.clone(),
            scenario: cell.scenario.clone(),
            plan_key: cell.plan_key.clone(),
            index: r.index,
            verdict: match r.verdict().is_pass() {
                true => "pass".into(),
                false => "fail".into(),
            },
            outcome: r.outcome_name().into(),
            first_report_ms: r.first_report_ms,
            reports: r
                .evidence
                .finding()
                .map(|(title, signature)| (signature.to_string(), title.to_string()))
                .into_iter()
                .chain(r.failed_tests())
                .collect(),
        })
        .collect()
}

/// One cell as it comes out of the runs: the plan's cell (no runs yet), the kernel it ran on
/// (none when it did not build) and its runs.
pub struct Ran {
    pub cell: CellResult,
    pub kernel: Option<Metadata>,
    pub runs: Vec<RunResult>,
}

/// The plan's cells with what the runs gave them.
pub fn ran(plan: Plan, runs: Vec<(Option<Metadata>, Vec<RunResult>)>) -> Vec<Ran> {
    plan.cells
        .into_iter()
        .zip(runs)
        .map(|(planned, (kernel, runs))| Ran {
            cell: planned.result,
            kernel,
            runs,
        })
        .collect()
}

/// The cells with their runs, counted, noted when they could not run; and the errors of
/// cells whose every run said nothing about the kernel.
fn finish_cells(ran: Vec<Ran>, errors: &mut Vec<String>) -> Vec<CellResult> {
    let mut cells = Vec::new();
    for Ran { cell, kernel, runs } in ran {
        let mut cell = cell;
        cell.kernel = kernel;
        cell.runs = runs;
        cell.count();
        if cell.note.is_none() && cell.kernel.is_none() {
            cell.note = Some(format!("{}{} did not build", night::NOT_RUN, cell.variant));
        }
        // Nothing run is not a pass.
        if cell.note.is_none() && cell.runs.is_empty() {
            cell.note = Some(format!("{}no run was made", night::NOT_RUN));
            errors.push(format!(
                "{} × {}: no run was made",
                cell.variant, cell.scenario
            ));
        }
        if cell.note.is_none()
            && !cell.runs.is_empty()
            && cell
                .runs
                .iter()
                .all(|r| matches!(r.verdict(), Verdict::Error(_)))
        {
            errors.push(format!(
                "{} × {}: every run failed to say anything about the kernel ({})",
                cell.variant,
                cell.scenario,
                crate::results::render::cell_text(&cell)
            ));
        }
        cells.push(cell);
    }
    cells
}

/// The night's results before the history is asked.
fn results(
    lab: &LabConfig,
    (started, uid): (String, String),
    ran: Vec<Ran>,
    errors: Vec<String>,
) -> NightResults {
    let mut errors = errors;
    let cells = finish_cells(ran, &mut errors);
    NightResults {
        schema: night::SCHEMA_VERSION,
        lab: lab.name.clone(),
        config: lab.file.display().to_string(),
        started,
        uid,
        ended: super::now(),
        night: None,
        cells,
        changes: vec![],
        culprits: vec![],
        timelines: vec![],
        errors,
        shard: None,
        merged: None,
    }
}

/// A shard's partial night: its files, no history (the merge records the whole night once).
/// Exit status as a night's, where no regression can be known yet: 0, or 2 for an
/// infrastructure failure.
pub fn shard(
    lab: &LabConfig,
    out: &Path,
    ran: Vec<Ran>,
    errors: Vec<String>,
    started: (String, String),
    shard: Shard,
) -> Result<NightOutcome> {
    let mut results = results(lab, started, ran, errors);
    results.shard = Some(shard);
    write_files(&results, out)?;
    Ok(NightOutcome {
        infrastructure_failed: !results.errors.is_empty(),
        regressions: 0,
        results,
    })
}

/// The whole night (run here, or merged from shards): its files, then the history and what
/// changed against each cell's last comparable night.
#[allow(clippy::too_many_arguments)]
pub fn night(
    lab: &LabConfig,
    out: &Path,
    ran: Vec<Ran>,
    commits: &BTreeMap<String, Option<String>>,
    errors: Vec<String>,
    mut history: History,
    started: (String, String),
    merged: Option<Merged>,
) -> Result<NightOutcome> {
    let mut results = results(lab, started, ran, errors);
    results.merged = merged;
    // The night's own files first: whatever happens to the history, they are there.
    write_files(&results, out)?;
    match compare_with_history(&mut history, &results, commits) {
        Ok((night_id, changes)) => {
            results.night = night_id;
            results.changes = changes.iter().map(ChangeOut::from).collect();
        }
        Err(e) => results.errors.push(format!(
            "this night is not in the history: {:#}",
            anyhow::Error::from(e)
        )),
    }
    write_files(&results, out)?;
    let regressions = results
        .changes
        .iter()
        .filter(|c| c.kind == "regression")
        .count();
    Ok(NightOutcome {
        infrastructure_failed: !results.errors.is_empty(),
        regressions,
        results,
    })
}

/// Record the night, one history night per source line (so nights compare along each line),
/// and what changed against each cell's last comparable night.
fn compare_with_history(
    history: &mut History,
    results: &NightResults,
    commits: &BTreeMap<String, Option<String>>,
) -> Result<(Option<i64>, Vec<crate::results::history::Change>), HistoryError> {
    let mut by_source: BTreeMap<&str, Vec<RunRow>> = BTreeMap::new();
    for cell in &results.cells {
        by_source
            .entry(cell.source.as_str())
            .or_default()
            .extend(history_rows(cell));
    }
    let mut changes = Vec::new();
    let mut night_id = None;
    for (source, rows) in by_source.into_iter().filter(|(_, rows)| !rows.is_empty()) {
        // The same night (a merge of the same shards again) is recorded once.
        if let Some(id) = history.night_of(results.identity(), source)? {
            crate::events::warn(format!(
                "this night ({}) is already in the history as night {id} for {source}: \
                 not recorded again",
                results.identity()
            ));
            night_id.get_or_insert(id);
            continue;
        }
        let commit = commits.get(source).cloned().flatten();
        let id = history.record(
            (&results.started, results.identity()),
            source,
            commit.as_deref(),
            &rows,
        )?;
        night_id.get_or_insert(id);
        changes.extend(history.changes(id)?);
    }
    Ok((night_id, changes))
}

pub(super) fn write_files(results: &NightResults, out: &Path) -> Result<()> {
    crate::files::write(
        out.join("results.json"),
        serde_json::to_vec_pretty(results)?,
    )?;
    crate::files::write(
        out.join("junit.xml"),
        crate::results::render::night::junit_xml(results)?,
    )?;
    crate::files::write(
        out.join("summary.md"),
        crate::results::render::night::summary_md(results),
    )?;
    crate::files::write(
        out.join("report.html"),
        crate::results::render::html::page(results),
    )?;
    Ok(())
}
