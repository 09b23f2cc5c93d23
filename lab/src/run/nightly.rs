//! A night: build every variant of the lab's matrix, run every variant × scenario cell, store
//! the runs in the history, judge them against each cell's last comparable night, and write
//! the night's directory (results.json, junit.xml, summary.md).

use super::{batch, BatchOptions, Pool, Progress, RunResult, Target, Verdict};
use crate::config::lab::LabConfig;
use crate::config::scenario::Scenario;
use crate::kernel::variant::{Catalog, Source};
use crate::kernel::{self, Built};
use crate::results::history::{ChangeKind, History, RunRow};
use crate::results::night::{self, CellResult, ChangeOut, NightResults};
use crate::vm::accel::AccelChoice;
use crate::vm::session::Backend;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub struct NightOptions {
    pub out: PathBuf,
    pub runs: Option<u32>,
    pub duration: Option<Duration>,
    pub accel: AccelChoice,
    pub backend: Backend,
    /// VMs at a time (default: what the host holds).
    pub jobs: Option<usize>,
    /// Run cells whose git commit was already tested with the same plan.
    pub force: bool,
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

/// Everything besides the kernel that shapes a cell's result: the scenario, its duration
/// and the number of runs.
pub fn plan_key(scenario: &Scenario, runs: u32, duration: Option<Duration>) -> Result<String> {
    let mut h = Sha256::new();
    h.update(super::scenario_key(scenario, duration)?);
    h.update(format!("runs={runs}"));
    Ok(hex::encode(&h.finalize()[..8]))
}

/// The commit a git source's ref points at now (none for other sources).
fn commit_of(source: &Source) -> Result<Option<String>> {
    Ok(match source {
        Source::Git { .. } => match kernel::source::identify(source)?.kind {
            kernel::source::Kind::Git { commit, .. } => Some(commit),
            _ => None,
        },
        _ => None,
    })
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Runs that say something about the kernel go into the history (the evidence rule); the
/// others do not, so a night whose VMs failed is not read as "every report was fixed". A
/// run's signature is its finding's: its first kernel report (what follows it, a GPF after a
/// use-after-free, is the kernel falling over and varies run to run), or the hang the machine
/// saw.
fn history_rows(cell: &CellResult) -> Vec<RunRow> {
    cell.runs
        .iter()
        .filter(|r| r.evidence.counts())
        .map(|r: &RunResult| RunRow {
            variant: cell.variant.clone(),
            scenario: cell.scenario.clone(),
            plan_key: cell.plan_key.clone(),
            index: r.index,
            verdict: match r.verdict() {
                Verdict::Pass => "pass".into(),
                _ => "fail".into(),
            },
            outcome: r.outcome_name().into(),
            first_report_ms: r.first_report_ms,
            reports: r
                .evidence
                .finding()
                .map(|(title, signature)| (signature.to_string(), title.to_string()))
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
    if let Some(dir) = lab.history.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut history = History::open(&lab.history)
        .with_context(|| format!("cannot open the history {}", lab.history.display()))?;

    // The plan: every cell with its source line, commit and plan key.
    let mut commits: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut cells = Vec::new();
    let mut scenarios = Vec::new();
    for cell in &lab.cells {
        let variant = catalog.get(&cell.variant)?;
        let scenario = crate::config::scenario::find(&lab.scenarios, &cell.scenario)?;
        let runs = opts.runs.unwrap_or(cell.runs);
        let source = source_line(&variant.source);
        if !commits.contains_key(&source) {
            let commit = commit_of(&variant.source).unwrap_or_else(|e| {
                errors.push(format!("{source}: {e:#}"));
                None
            });
            commits.insert(source.clone(), commit);
        }
        cells.push(CellResult {
            variant: cell.variant.clone(),
            scenario: cell.scenario.clone(),
            commit: commits[&source].clone(),
            source,
            plan_key: plan_key(&scenario, runs, opts.duration.or(lab.duration))?,
            kernel: None,
            runs: vec![],
            expect: cell.expect.clone(),
            note: None,
            runs_planned: runs,
            duration_ms: opts
                .duration
                .or(lab.duration)
                .unwrap_or(scenario.duration)
                .as_millis() as u64,
            counts: Default::default(),
        });
        scenarios.push((scenario, runs));
    }

    // A git line whose commit every one of its cells already tested with this plan is not
    // run again (unless --force).
    for (source, commit) in &commits {
        let Some(commit) = commit else { continue };
        let keys: Vec<(String, String, String)> = cells
            .iter()
            .filter(|c| &c.source == source)
            .map(|c| (c.variant.clone(), c.scenario.clone(), c.plan_key.clone()))
            .collect();
        if opts.force {
            continue;
        }
        if let Some(n) = history.tested(source, commit, &keys)? {
            let note = format!(
                "already tested at {} (night {n}; --force runs it again)",
                &commit[..commit.len().min(12)]
            );
            eprintln!("lab: {source}: {note}");
            for c in cells.iter_mut().filter(|c| &c.source == source) {
                c.note = Some(note.clone());
            }
        }
    }

    // Build each variant once; a broken build fails its cells, not the night.
    let mut built: BTreeMap<String, Built> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for name in cells
        .iter()
        .filter(|c| c.note.is_none())
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
                eprintln!("lab: {name}: {}", kernel::describe(&b));
                built.insert(name.to_string(), b);
            }
            Err(e) => errors.push(format!("build of {name} failed: {e:#}")),
        }
    }

    // Every runnable cell at once; the pool decides how many VMs run.
    let (cpus, memory) = scenarios.iter().fold((1, 1), |(c, m), (s, _)| {
        (s.cpus.max(c), s.memory_mib.max(m))
    });
    let pool = match opts.jobs {
        Some(n) => Pool::new(n),
        None => Pool::for_host(cpus, memory),
    };
    let progress = Progress::new(pool.jobs);
    let duration = opts.duration.or(lab.duration);
    for (cell, (scenario, runs)) in cells.iter().zip(&scenarios) {
        if cell.note.is_none() && built.contains_key(&cell.variant) {
            progress.plan(*runs, duration.unwrap_or(scenario.duration));
        }
    }
    let total = cells.len();
    let work = cells
        .iter()
        .zip(&scenarios)
        .enumerate()
        .map(|(i, (cell, (scenario, runs)))| {
            let b = built.get(&cell.variant).filter(|_| cell.note.is_none());
            let (pool, progress) = (&pool, &progress);
            async move {
                let Some(b) = b else {
                    return Ok((None, vec![]));
                };
                let target = Target {
                    name: cell.variant.clone(),
                    kernel: b.bzimage(),
                    config: Some(b.dir.join(".config")),
                    vmlinux: Some(b.dir.join("vmlinux")).filter(|p| p.is_file()),
                };
                let label = format!("{} × {}", cell.variant, cell.scenario);
                let batch_opts = BatchOptions {
                    runs: *runs,
                    accel: opts.accel,
                    backend: opts.backend,
                    duration,
                    out: opts.out.join(&cell.variant).join(&cell.scenario),
                    append: false,
                    pool: pool.clone(),
                    progress: progress.clone(),
                    label,
                };
                let runs = batch(scenario, &target, &batch_opts).await?;
                // The cell's line as soon as its last run ends (cells interleave in the pool).
                let done = CellResult {
                    runs: runs.clone(),
                    ..cell.clone()
                };
                progress.println(&format!(
                    "lab: [{}/{total}] {} → {}",
                    i + 1,
                    batch_opts.label,
                    night::cell_with_expectation(&done)
                ));
                anyhow::Ok((Some(b.metadata.clone()), runs))
            }
        });
    let done = futures::future::join_all(work).await;
    progress.clear();
    for (cell, result) in cells.iter_mut().zip(done) {
        let (kernel, runs) = result?;
        cell.kernel = kernel;
        cell.runs = runs;
        cell.count();
        if cell.note.is_none() && cell.kernel.is_none() {
            cell.note = Some(format!("{}{} did not build", night::NOT_RUN, cell.variant));
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
                night::cell_text(cell)
            ));
        }
    }

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
        let commit = commits.get(source).cloned().flatten();
        let id = history.record(&started, source, commit.as_deref(), &rows)?;
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
    std::fs::write(
        opts.out.join("report.html"),
        crate::results::html::page(&results, &opts.out),
    )?;
    Ok(NightOutcome {
        infrastructure_failed: !results.errors.is_empty(),
        regressions,
        results,
    })
}
