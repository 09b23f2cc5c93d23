//! A night: build every variant of the lab's matrix, run every variant × scenario cell, store
//! the runs in the history, judge them against each cell's last comparable night, and write
//! the night's directory (results.json, junit.xml, summary.md).

use super::{batch, BatchOptions, RunResult, Target, Verdict};
use crate::config::lab::LabConfig;
use crate::kernel::variant::{Catalog, Source};
use crate::kernel::{self, Built};
use crate::report::formats::ReportType;
use crate::results::history::{ChangeKind, History, RunRow};
use crate::results::night::{self, CellResult, ChangeOut, NightResults};
use crate::vm::accel::AccelChoice;
use crate::vm::session::Backend;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct NightOptions {
    pub out: PathBuf,
    pub runs: Option<u32>,
    pub duration: Option<Duration>,
    pub accel: AccelChoice,
    pub backend: Backend,
}

/// How a night ended, for the exit status: 0 clean, 1 regression, 2 infrastructure failure.
pub struct NightOutcome {
    pub results: NightResults,
    pub regressions: usize,
    pub infrastructure_failed: bool,
}

/// The line of development a variant's kernel comes from: nights are compared along it.
pub fn source_line(source: &Source) -> String {
    match source {
        Source::Debian { package } => format!("debian:{package}"),
        Source::Git { repo, reference } => format!("git:{repo}@{reference}"),
        Source::Path { path } => format!("path:{}", path.display()),
    }
}

/// Everything besides the kernel that shapes a cell's result.
fn plan_key(scenario_file: &Path, runs: u32, duration: Option<Duration>) -> Result<String> {
    let text = std::fs::read(scenario_file)
        .with_context(|| format!("cannot read {}", scenario_file.display()))?;
    let mut h = Sha256::new();
    h.update(&text);
    h.update(format!("runs={runs} duration={duration:?}"));
    Ok(hex::encode(&h.finalize()[..8]))
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Runs that say something about the kernel go into the history; errors and skips do not,
/// so a night whose VMs failed is not read as "every report was fixed".
fn history_rows(cell: &CellResult) -> Vec<RunRow> {
    cell.runs
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Pass | Verdict::Fail(_)))
        .map(|r: &RunResult| RunRow {
            variant: cell.variant.clone(),
            scenario: cell.scenario.clone(),
            plan_key: cell.plan_key.clone(),
            index: r.index,
            verdict: match &r.verdict {
                Verdict::Pass => "pass".into(),
                _ => "fail".into(),
            },
            outcome: r.outcome.name().into(),
            first_report_ms: r.first_report_ms,
            // The run's first kernel report is its bug; what follows it (a GPF after a
            // use-after-free, a second WARNING) is the kernel falling over and varies run to
            // run, so it would read as regressions and fixes that are not.
            reports: r
                .reports
                .iter()
                .find(|rep| rep.kind != ReportType::Lab)
                .map(|rep| (rep.signature.clone(), rep.title.clone()))
                .into_iter()
                .collect(),
        })
        .collect()
}

pub async fn night(lab: &LabConfig, opts: &NightOptions) -> Result<NightOutcome> {
    let started = now();
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create {}", opts.out.display()))?;
    let catalog = Catalog::load(&lab.kernels)?;
    let mut errors = Vec::new();

    // Build each variant once; a broken build fails its cells, not the night.
    let mut built: BTreeMap<String, Built> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for name in lab
        .cells
        .iter()
        .map(|c| c.variant.as_str())
        .filter(|v| seen.insert(*v))
    {
        let variant = catalog.get(name)?;
        let result = tokio::task::spawn_blocking(move || {
            kernel::build(&variant, &kernel::BuildOptions::default())
        })
        .await?;
        match result {
            Ok(b) => {
                built.insert(name.to_string(), b);
            }
            Err(e) => errors.push(format!("build of {name} failed: {e:#}")),
        }
    }

    let total = lab.cells.len();
    let mut cells = Vec::new();
    for (i, cell) in lab.cells.iter().enumerate() {
        let variant = catalog.get(&cell.variant)?;
        let scenario = crate::config::scenario::find(&lab.scenarios, &cell.scenario)?;
        let runs = opts.runs.unwrap_or(cell.runs);
        let duration = opts.duration.or(lab.duration);
        let mut result = CellResult {
            variant: cell.variant.clone(),
            scenario: cell.scenario.clone(),
            source: source_line(&variant.source),
            plan_key: plan_key(&scenario.file, runs, duration)?,
            kernel: None,
            runs: vec![],
        };
        if let Some(b) = built.get(&cell.variant) {
            result.kernel = Some(b.metadata.clone());
            let target = Target {
                name: cell.variant.clone(),
                kernel: b.bzimage(),
                config: Some(b.dir.join(".config")),
                vmlinux: Some(b.dir.join("vmlinux")).filter(|p| p.is_file()),
            };
            eprintln!(
                "lab: [{}/{total}] {} × {} ({runs} runs)",
                i + 1,
                cell.variant,
                cell.scenario
            );
            let batch_opts = BatchOptions {
                runs,
                accel: opts.accel,
                backend: opts.backend,
                duration,
                out: opts.out.join(&cell.variant).join(&cell.scenario),
            };
            result.runs = batch(&scenario, &target, &batch_opts).await?;
            if !result.runs.is_empty()
                && result
                    .runs
                    .iter()
                    .all(|r| matches!(r.verdict, Verdict::Error(_)))
            {
                errors.push(format!(
                    "{} × {}: every run failed to say anything about the kernel ({})",
                    cell.variant,
                    cell.scenario,
                    night::cell_text(&result)
                ));
            }
            eprintln!("lab:   → {}", night::cell_text(&result));
        }
        cells.push(result);
    }

    if let Some(dir) = lab.history.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut history = History::open(&lab.history)
        .with_context(|| format!("cannot open the history {}", lab.history.display()))?;
    // One history night per source line, so nights compare along each line.
    let mut by_source: BTreeMap<&str, Vec<RunRow>> = BTreeMap::new();
    for (cell, row) in cells
        .iter()
        .flat_map(|c| history_rows(c).into_iter().map(move |r| (c, r)))
    {
        by_source.entry(cell.source.as_str()).or_default().push(row);
    }
    let mut changes = Vec::new();
    let mut night_id = None;
    for (source, rows) in by_source {
        let id = history.record(&started, source, None, &rows)?;
        night_id.get_or_insert(id);
        changes.extend(history.changes(id)?);
    }
    let regressions = changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Regression)
        .count();
    let results = NightResults {
        schema: night::SCHEMA_VERSION,
        lab: lab.name.clone(),
        config: lab.file.display().to_string(),
        started,
        ended: now(),
        night: night_id,
        cells,
        changes: changes.iter().map(ChangeOut::from).collect(),
        errors,
    };
    std::fs::write(
        opts.out.join("results.json"),
        serde_json::to_vec_pretty(&results)?,
    )?;
    std::fs::write(opts.out.join("junit.xml"), night::junit_xml(&results)?)?;
    std::fs::write(opts.out.join("summary.md"), night::summary_md(&results))?;
    Ok(NightOutcome {
        infrastructure_failed: !results.errors.is_empty(),
        regressions,
        results,
    })
}
