//! `lab explore`: searching for an interleaving of a race scenario's roles that makes the
//! kernel report, and writing the one found as a scenario with a `[schedule]`.
//!
//! Where the search may stop comes from a report's stacks ([`candidates`]), `--at` hints, and
//! what each role's thread is seen executing ([`search`]'s sampling and probes); the search
//! itself is in [`search`]; the scenario it writes in [`found`]. Every run of the search is
//! a run of the lab (`<dir>/runs/run-NNN`), and `<dir>/explore.json` records every attempt.

pub mod candidates;
pub mod found;
pub mod patch;
pub mod search;

use crate::config::scenario::{Kind, Scenario};
use crate::report::parser::Report;
use crate::run::{self, BatchOptions, How, Pool, Progress, RunResult, Target};
use crate::vm::schedule::Attempt;
use anyhow::{Context, Result};
use search::{Budget, Search, SearchRecord, Trial};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The pace of a search's workload when neither the scenario nor --pace sets one.
pub const DEFAULT_PACE_US: u32 = 20_000;

/// Runs in a row that a report ends before the search could attempt anything: the workload
/// races faster than the search can look; it stops and says so.
pub const STRESS_WINS: u32 = 3;

/// Runs in a row whose report came from stress (before any applied attempt) after which the
/// search slows the workload: its pace doubles, up to [`MAX_PACE_US`].
pub const STRESS_BEFORE_SLOWING: u32 = 2;
pub const MAX_PACE_US: u64 = 500_000;
/// Runs in a row that stress wins at [`MAX_PACE_US`] after which the search gives up: the
/// report does not wait for an interleaving.
pub const STRESS_AT_SLOWEST: u32 = 10;

/// The longest one run of a search lasts (a report ends it sooner, and a fresh restore goes
/// on where it stopped).
pub const RUN_LENGTH: Duration = Duration::from_secs(60);

#[derive(clap::Args)]
pub struct Args {
    /// Variant from kernels/*.toml (`NAME+kcsan` for its KCSAN build).
    #[arg(long)]
    pub variant: String,
    /// A race scenario (scenarios/<name>.toml) without a schedule: whose roles' interleavings
    /// are searched.
    #[arg(long)]
    pub scenario: String,
    /// Where a report to reproduce is: a run's directory (its console.log), a batch directory
    /// (its first run with a report), or a console file. Its stacks give the locations, and
    /// its first report's title is what the search looks for (unless --title/--any-report).
    #[arg(long, value_name = "RUN_DIR|FILE")]
    pub from: Option<PathBuf>,
    /// The title of the report to look for ("WARNING in dma_buf_poll").
    #[arg(long, conflicts_with = "any_report")]
    pub title: Option<String>,
    /// Stop at any kernel report.
    #[arg(long)]
    pub any_report: bool,
    /// A function to consider too (repeatable): a hint, never needed.
    #[arg(long = "at", value_name = "FUNCTION")]
    pub at: Vec<String>,
    /// A sleep after each round of every thread, in microseconds (the workload's `pace_us`;
    /// 0: none): stress alone then rarely reports before an interleaving is applied. Default:
    /// the scenario's own pace_us, else 20000 (20 ms). The scenario written keeps it.
    #[arg(long, value_name = "MICROS", value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub pace: Option<u32>,
    /// How much to try: a number of distinct interleavings (40), or a time (15m).
    #[arg(long, default_value = "15m")]
    pub budget: Budget,
    /// The scenario file to write (default: scenarios/<scenario>-<variant>-found.toml).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Runs of the found scenario that check it, each counted as reproducing when the report
    /// follows its first applied attempt (0: no check).
    #[arg(long, default_value_t = 20)]
    pub confirm: u32,
    /// Runs of each hit's scenario before the search takes it: each must reproduce at its
    /// first applied attempt, or the search goes on and keeps the best hit should it find no
    /// better (0: take the first hit).
    #[arg(long, default_value_t = 5)]
    pub verify: u32,
    /// Print the candidate locations (function, score, where each came from) and stop: no
    /// machine runs.
    #[arg(long)]
    pub candidates: bool,
    /// The search's directory (default: a new one under the cache's runs/).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub how: How,
    #[command(flatten)]
    pub dirs: crate::config::locate::Dirs,
}

/// What a search looks for.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Wanted {
    Title(String),
    AnyReport,
}

impl Wanted {
    pub fn matches(&self, r: &Report) -> bool {
        r.counts()
            && match self {
                Wanted::Title(t) => &r.title == t,
                Wanted::AnyReport => true,
            }
    }
}

/// How a search ended.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Outcome {
    /// No applied interleaving made the kernel report, but stress did (reports before any
    /// applied attempt of their run): not a survival.
    StressOnly {
        stress_hits: usize,
        runs: usize,
        applied: usize,
        why_ended: String,
    },
    /// The report followed an applied attempt of interleaving `id`.
    Found {
        id: u64,
        steps: Vec<String>,
        title: String,
        run: PathBuf,
        file: PathBuf,
        /// The check's runs, and those where the report followed the first applied attempt.
        confirm_runs: u32,
        first_attempt: u32,
        confirm_dir: Option<PathBuf>,
    },
    /// Nothing reported: the interleavings applied, over how many locations.
    Survived {
        applied: usize,
        locations: usize,
        given_up: usize,
        why_ended: String,
        /// What the machine's detector canary lets the survival claim: `None` when every
        /// detector relied on was seen to fire.
        #[serde(skip_serializing_if = "Option::is_none")]
        qualifier: Option<Qualifier>,
    },
}

impl Outcome {
    /// The answer in words.
    pub fn sentence(&self) -> String {
        match self {
            Outcome::StressOnly {
                stress_hits,
                runs,
                applied,
                why_ended,
            } => format!(
                "no interleaving was found: {applied} applied interleavings were followed by no \
                 report, but stress made the kernel report in {stress_hits} of the search's \
                 {runs} runs, each before any applied attempt of its run ({why_ended})"
            ),
            Outcome::Found {
                id,
                title,
                file,
                confirm_runs,
                first_attempt,
                ..
            } => {
                let check = match confirm_runs {
                    0 => String::new(),
                    n => format!(
                        "; re-run {n} times, it reproduced at the first applied attempt in \
                         {first_attempt}/{n}"
                    ),
                };
                format!(
                    "found: interleaving {id} makes the kernel report \"{title}\"; written to \
                     {}{check}",
                    file.display()
                )
            }
            Outcome::Survived {
                applied,
                locations,
                given_up,
                why_ended,
                qualifier,
            } => {
                let survived = format!(
                    "{applied} distinct interleavings of these {locations} locations ran, each \
                     applied; the kernel survived all of them ({given_up} more could not be \
                     applied; {why_ended})"
                );
                match qualifier {
                    None => survived,
                    Some(Qualifier::Unproven(why)) => {
                        format!("{survived} — detectors unproven: {why}")
                    }
                    Some(Qualifier::Inconclusive(why)) => {
                        format!("inconclusive: {why}; what ran: {survived}")
                    }
                }
            }
        }
    }
}

/// Why a survival claims less than it says.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "why")]
pub enum Qualifier {
    /// A detector relied on did not fire on this machine: the survival shows nothing.
    Inconclusive(String),
    /// No canary ran: the detectors were not seen to fire.
    Unproven(String),
}

/// One run of the search, as the record keeps it.
#[derive(Debug, Clone, Serialize)]
pub struct SearchRun {
    pub dir: PathBuf,
    /// The counting reports' titles, in order.
    pub reports: Vec<String>,
    /// What the first report followed: "interleaving N (applied)", "probe N", "no attempt
    /// (a stress hit)", ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub followed: Option<String>,
}

/// A hit's check before the search took it (or went on).
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub id: u64,
    pub file: PathBuf,
    pub first_attempt: u32,
    pub runs: u32,
}

impl Record {
    /// The record of a search about to start: nothing run yet.
    fn new(
        scenario: &Scenario,
        a: &Args,
        target: &Target,
        wanted: Wanted,
        search: SearchRecord,
    ) -> Record {
        Record {
            scenario: scenario.name.clone(),
            variant: a.variant.clone(),
            kernel: target.name.clone(),
            from: a.from.clone(),
            wanted,
            search,
            runs: vec![],
            verified: vec![],
            widened: vec![],
            stress_hits: 0,
            pace_us: None,
            searched_s: 0.0,
            elapsed_s: 0.0,
            outcome: None,
        }
    }
}

/// A step of the found schedule moved to its caller, and that scenario's check.
#[derive(Debug, Clone, Serialize)]
pub struct Widened {
    /// The step's number (1: the first).
    pub step: usize,
    pub from: String,
    pub to: String,
    pub file: PathBuf,
    pub first_attempt: u32,
    pub runs: u32,
    /// Reproduced in every run: the schedule written has the step at `to`.
    pub kept: bool,
}

/// `<dir>/explore.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub scenario: String,
    pub variant: String,
    pub kernel: String,
    pub from: Option<PathBuf>,
    pub wanted: Wanted,
    pub search: SearchRecord,
    pub runs: Vec<SearchRun>,
    /// Each hit's check, in order.
    pub verified: Vec<Verified>,
    /// The found schedule's steps moved to their callers, each try with its check.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub widened: Vec<Widened>,
    /// Reports that came before any applied attempt of their run: stress, not a schedule.
    pub stress_hits: usize,
    /// The workload's pace when the search ended (it doubles after stress wins in a row).
    pub pace_us: Option<u64>,
    /// From the start to the end of the search (its hits' checks included, the final
    /// --confirm runs not).
    pub searched_s: f64,
    pub elapsed_s: f64,
    pub outcome: Option<Outcome>,
}

/// The roles of a scenario's threads: its `<role>_cpus` parameters.
pub fn roles(scenario: &Scenario) -> Vec<String> {
    scenario
        .params
        .keys()
        .filter_map(|k| k.strip_suffix("_cpus"))
        .map(str::to_string)
        .collect()
}

/// The reports of `--from`: a console file, a run's directory, or a batch's (its first run
/// with a counting report).
pub fn reports_from(from: &Path) -> Result<Vec<Report>> {
    let read =
        |console: &Path| -> Result<Vec<Report>> { Ok(crate::report::parse_file(console, None)?.0) };
    if !from.is_dir() {
        return read(from);
    }
    let console = from.join("console.log");
    if console.is_file() {
        return read(&console);
    }
    let mut runs: Vec<PathBuf> = std::fs::read_dir(from)
        .with_context(|| format!("cannot list {}", from.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("console.log").is_file())
        .collect();
    runs.sort();
    for run in runs {
        let reports = read(&run.join("console.log"))?;
        if reports.iter().any(Report::counts) {
            return Ok(reports);
        }
    }
    anyhow::bail!(
        "{}: no console.log with a kernel report in it or in its runs",
        from.display()
    )
}

/// What the first counting report of a run followed, from its schedule record: `Some(id)`
/// when it came during or after an applied attempt of interleaving `id` (the last attempt
/// started before it); the words for the record either way.
fn followed(search: &Search, r: &RunResult) -> (Option<u64>, String) {
    let last = match attempt_before_report(r) {
        Ok(last) => last,
        Err(why) => return (None, why.into()),
    };
    let Some(id) = last.interleaving else {
        return (None, "an attempt of no interleaving".into());
    };
    match (search.trial(id).map(|t| t.trial), last.applied()) {
        (Some(Trial::Interleaving { .. }), true) => {
            (Some(id), format!("interleaving {id}, applied"))
        }
        (Some(Trial::Interleaving { .. }), false) => (
            None,
            format!("interleaving {id}, not applied: a stress hit"),
        ),
        (Some(Trial::Probe { role, function }), _) => (
            None,
            format!("probe {id} ({role} at {function}): a stress hit"),
        ),
        (None, _) => (None, format!("unknown attempt {id}")),
    }
}

/// The last attempt that started before the run's first report, or why there is none.
fn attempt_before_report(r: &RunResult) -> Result<&Attempt, &'static str> {
    let record = r.record.as_ref().ok_or("no record")?;
    let (Some(first), Some(start)) = (r.first_report_ms, record.timing.workload_started_ms) else {
        return Err("no report");
    };
    let attempts = record
        .schedule
        .as_ref()
        .map(|s| s.attempts.as_slice())
        .unwrap_or_default();
    attempts
        .iter()
        .rev()
        .find(|a| a.started_ms <= start + first)
        .ok_or("no attempt before it: a stress hit")
}

/// The functions the variant's series changes (its bases' patches included), read from the
/// tree it was built from; each scores 1.
fn from_series(target: &Target, map: &crate::kernel::symbols::SymbolMap) -> Vec<search::Candidate> {
    let Some((variant, built)) = &target.build else {
        return vec![];
    };
    let Some(tree) = &built.metadata.source_dir else {
        return vec![];
    };
    let read = |path: &str| crate::files::read_to_string(tree.join(path)).ok();
    let mut out: Vec<search::Candidate> = Vec::new();
    for p in &variant.patches {
        let Ok(text) = crate::files::read_to_string(&p.path) else {
            continue;
        };
        let name = p
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for c in patch::changed(&text, &read, map) {
            let from = match &c.inlined {
                None => format!("patch {name} ({}): changes it", c.at),
                Some(callee) => format!(
                    "patch {name} ({}): changes {callee}, inlined here (System.map lacks it; \
                     it is called from this function's body)",
                    c.at
                ),
            };
            match out.iter_mut().find(|o| o.function == c.function) {
                Some(o) => o.from.push(from),
                None => out.push(search::Candidate {
                    function: c.function,
                    score: 1.0,
                    from: vec![from],
                }),
            }
        }
    }
    out
}

/// The candidates of a search: the report's stacks, the series' changes, then the hints.
fn candidates_of(
    reports: &[Report],
    series: Vec<search::Candidate>,
    at: &[String],
) -> Vec<search::Candidate> {
    let mut out: Vec<search::Candidate> = candidates::from_reports(reports)
        .into_iter()
        .map(|c| search::Candidate {
            from: c
                .seen
                .iter()
                .map(|s| format!("report {}, {} (depth {})", s.report + 1, s.stack, s.depth))
                .collect(),
            function: c.function,
            score: c.score,
        })
        .collect();
    for c in series {
        match out.iter_mut().find(|o| o.function == c.function) {
            Some(o) => {
                o.score += c.score;
                o.from.extend(c.from);
            }
            None => out.push(c),
        }
    }
    for f in at {
        match out.iter_mut().find(|c| &c.function == f) {
            Some(c) => {
                c.score += 1.0;
                c.from.push("--at".into());
            }
            None => out.push(search::Candidate {
                function: f.clone(),
                score: 1.0,
                from: vec!["--at".into()],
            }),
        }
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    out
}

/// The roles of a scenario a search can explore, or why it cannot.
fn explorable(scenario: &Scenario) -> Result<Vec<String>> {
    if scenario.kind != Kind::Race {
        anyhow::bail!(
            "{}: explore searches the interleavings of a race scenario's threads; this one is \
             kind {:?}",
            scenario.file.display(),
            scenario.kind
        );
    }
    if scenario.schedule.is_some() {
        anyhow::bail!(
            "{}: has a [schedule] already; explore the scenario it was written for (without one)",
            scenario.file.display()
        );
    }
    let roles = roles(scenario);
    if roles.len() < 2 {
        anyhow::bail!(
            "{}: an interleaving needs two roles pinned to vCPUs (<role>_cpus parameters); it \
             has {}",
            scenario.file.display(),
            roles.len()
        );
    }
    Ok(roles)
}

/// The scenario with the search's pace in its parameters.
fn paced(scenario: &mut Scenario, pace: Option<u32>) {
    let own = scenario.params.get("pace_us").and_then(|v| v.as_u64());
    match pace
        .map(u64::from)
        .or(own)
        .unwrap_or(DEFAULT_PACE_US.into())
    {
        0 => scenario.params.remove("pace_us"),
        us => scenario.params.insert("pace_us".into(), us.into()),
    };
}

/// Double the workload's pace (up to [`MAX_PACE_US`]): stress keeps winning.
fn slow_down(scenario: &mut Scenario) {
    let now = scenario
        .params
        .get("pace_us")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    let next = (now * 2).clamp(1000, MAX_PACE_US);
    if next != now {
        crate::events::note(format!(
            "explore: stress reported before any applied attempt in {STRESS_BEFORE_SLOWING} runs \
             in a row; the workload's pace goes from {now} to {next} µs a round"
        ));
        scenario.params.insert("pace_us".into(), next.into());
    }
}

/// What the search looks for: `--title`, any report, or `--from`'s first report's title.
fn wanted(a: &Args, reports: &[Report]) -> Wanted {
    match (&a.title, a.any_report, reports.iter().find(|r| r.counts())) {
        (Some(t), _, _) => Wanted::Title(t.clone()),
        (None, true, _) => Wanted::AnyReport,
        (None, false, Some(first)) => Wanted::Title(first.title.clone()),
        // From a patch alone: whatever the kernel reports.
        (None, false, None) => Wanted::AnyReport,
    }
}

/// Everything one search's runs share.
struct Searching<'a> {
    a: &'a Args,
    scenario: &'a Scenario,
    target: &'a Target,
    search: Arc<Search>,
    dir: &'a Path,
    suppressions: Arc<crate::config::suppress::Suppressions>,
    started: Instant,
    /// What the machine's canary lets a survival claim.
    detectors: crate::results::canary::Detectors,
    pool: Pool,
    progress: Progress,
}

/// Run the search `a` asks for; the record with its outcome.
pub async fn explore(a: Args) -> Result<Record> {
    let started = Instant::now();
    let mut scenario = crate::config::locate::scenario(a.dirs.scenarios.clone(), &a.scenario)?;
    let roles = explorable(&scenario)?;
    paced(&mut scenario, a.pace);
    let reports = match &a.from {
        Some(from) => reports_from(from)?,
        None => vec![],
    };
    let wanted = wanted(&a, &reports);
    let target = Target::resolve(None, Some(a.variant.clone()), a.dirs.kernels.clone()).await?;
    let map = target.system_map().ok_or_else(|| {
        anyhow::anyhow!(
            "kernel {} has no System.map beside {}: a search stops at its functions",
            target.name,
            target.kernel.display()
        )
    })?;
    let map = Arc::new(crate::kernel::symbols::SymbolMap::read(&map).map_err(anyhow::Error::msg)?);
    let candidates = candidates_of(&reports, from_series(&target, &map), &a.at);
    if a.candidates {
        let search = Search::new(candidates, roles, map, a.budget).record();
        return Ok(Record {
            elapsed_s: started.elapsed().as_secs_f64(),
            ..Record::new(&scenario, &a, &target, wanted, search)
        });
    }
    let who = target
        .name
        .rsplit('/')
        .next()
        .unwrap_or("kernel")
        .to_string();
    let dir =
        crate::cache::out_or_run_dir(a.dir.clone(), &format!("explore-{}-{who}", scenario.name))?;
    let search = Arc::new(Search::new(candidates, roles, map, a.budget));
    crate::events::note(format!(
        "explore {} on {} for {}: budget {}, record in {}",
        scenario.name,
        target.name,
        match &wanted {
            Wanted::Title(t) => format!("\"{t}\""),
            Wanted::AnyReport => "any report".into(),
        },
        a.budget,
        dir.display()
    ));
    let mut record = Record::new(&scenario, &a, &target, wanted, search.record());
    let pool = Pool::new(1);
    let progress = Progress::new(1);
    let config = match &target.config {
        Some(c) => Some(crate::files::read_to_string(c)?),
        None => None,
    };
    let detectors = run::canary::detectors(
        &scenario,
        (&target, config.as_deref()),
        a.how,
        &pool,
        &progress,
    )
    .await?;
    let s = Searching {
        detectors,
        pool,
        progress,
        a: &a,
        scenario: &scenario,
        target: &target,
        search,
        dir: &dir,
        suppressions: Arc::new(crate::config::locate::suppressions(
            a.dirs.suppressions.clone(),
        )?),
        started,
    };
    let mut searched = scenario.clone();
    let (best, why_ended) = hunt(&s, &mut searched, &mut record).await?;
    record.pace_us = searched.params.get("pace_us").and_then(|v| v.as_u64());
    record.searched_s = started.elapsed().as_secs_f64();
    let ended = (why_ended, record.stress_hits, record.runs.len());
    let outcome = conclude(&s, &searched, best, ended, &mut record).await?;
    record.search = s.search.record();
    record.elapsed_s = started.elapsed().as_secs_f64();
    record.outcome = Some(outcome);
    write(&dir, &record)?;
    Ok(record)
}

/// Search, check each hit with `--verify` runs of its scenario, and go on until one
/// reproduces at its first applied attempt in all of them; the best hit (or none: a hit that no
/// check reproduced is none) and why the search ended without a perfect one.
async fn hunt(
    s: &Searching<'_>,
    searched: &mut Scenario,
    record: &mut Record,
) -> Result<(Option<Hit>, String)> {
    // The best hit so far, and how many of its check's runs reproduced at the first attempt.
    let mut best: Option<(Hit, u32)> = None;
    let why_ended =
        loop {
            let (found, why) = search_runs(s, searched, record).await?;
            let Some(hit) = found else { break why };
            if s.a.verify == 0 {
                best = Some((hit, 0));
                break String::new();
            }
            let id = hit.0;
            let file = s
                .dir
                .join("candidates")
                .join(format!("interleaving-{id}.toml"));
            let steps = s.search.steps_of(id).expect("a hit has steps");
            let written =
                write_scenario(s, searched, &hit, (&steps, &s.search.stops_of(id)), &file)?;
            let check = Check {
                runs: s.a.verify,
                how: s.a.how,
                title: &hit.1,
                suppressions: s.suppressions.clone(),
            };
            let out = s.dir.join("verify").join(id.to_string());
            let (ok, runs) = confirm(&written, s.target, &check, &out).await?;
            crate::events::note(format!(
            "explore: interleaving {id} reproduced at its first applied attempt in {ok}/{runs} \
             runs{}",
            if ok == runs { "" } else { "; the search goes on" }
        ));
            record.verified.push(Verified {
                id,
                file,
                first_attempt: ok,
                runs,
            });
            write(s.dir, record)?;
            // A hit none of whose checks reproduced was a stress hit after all: never found.
            if ok > 0 && best.as_ref().is_none_or(|(_, b)| ok > *b) {
                best = Some((hit, ok));
            }
            if ok == runs {
                break String::new();
            }
        };
    Ok((best.map(|(h, _)| h), why_ended))
}

/// An interleaving that made the kernel report: its id, the title, the run.
type Hit = (u64, String, PathBuf);

/// Runs until a report with the title follows an applied interleaving, the budget is spent
/// or nothing is left to try; the hit, or why the search ended without one.
async fn search_runs(
    s: &Searching<'_>,
    scenario: &mut Scenario,
    record: &mut Record,
) -> Result<(Option<Hit>, String)> {
    let search = &s.search;
    let mut stress_in_a_row = 0;
    let (pool, progress) = (&s.pool, &s.progress);
    let who = s.target.name.rsplit('/').next().unwrap_or("kernel");
    let label = format!("{who} × {} (explore)", scenario.name);
    let mut stress_wins = 0;
    let why =
        loop {
            if search.spent() {
                break format!("budget of {} spent", s.a.budget);
            }
            if search.exhausted() {
                break "every interleaving generated was tried".to_string();
            }
            if crate::interrupt::requested() {
                anyhow::bail!(crate::interrupt::Interrupted);
            }
            let length = match search.left() {
                (_, Some(left)) if left < RUN_LENGTH => left.max(Duration::from_secs(10)),
                _ => RUN_LENGTH,
            };
            progress.plan(&label, 1, length);
            let opts = BatchOptions {
                runs: runner::quantity::RunCount::new(1)?,
                how: How {
                    duration: Some(runner::quantity::WorkDuration::from_duration(length)?),
                    ..s.a.how
                },
                out: s.dir.join("runs"),
                append: true,
                first: None,
                pool: pool.clone(),
                progress: progress.clone(),
                label: label.clone(),
                suppressions: s.suppressions.clone(),
                source: Some(search.clone()),
            };
            let runs = run::batch(&*scenario, s.target, &opts).await?;
            let Some(r) = runs.last() else {
                break "no run was made".to_string();
            };
            if r.evidence == run::Evidence::Interrupted {
                anyhow::bail!(crate::interrupt::Interrupted);
            }
            let titles: Vec<String> = r
                .reports
                .iter()
                .filter(|r| r.counts())
                .map(|r| r.title.clone())
                .collect();
            let (id, words) = followed(search, r);
            if !titles.is_empty() && id.is_none() {
                record.stress_hits += 1;
                search.stress_hit();
            }
            // A run whose report came after an applied attempt (a probe's, or an interleaving's
            // with another title) taught the search something: stress did not beat it.
            match titles.is_empty() || attempt_before_report(r).is_ok_and(|a| a.applied()) {
                true => stress_in_a_row = 0,
                false => stress_in_a_row += 1,
            }
            let pace = scenario.params.get("pace_us").and_then(|v| v.as_u64());
            if stress_in_a_row == STRESS_BEFORE_SLOWING && pace != Some(MAX_PACE_US) {
                stress_in_a_row = 0;
                slow_down(scenario);
            }
            record.runs.push(SearchRun {
                dir: r.dir.clone(),
                reports: titles,
                followed: r.first_report_ms.is_some().then_some(words),
            });
            record.search = search.record();
            record.elapsed_s = s.started.elapsed().as_secs_f64();
            write(s.dir, record)?;
            if stress_in_a_row >= STRESS_AT_SLOWEST && pace == Some(MAX_PACE_US) {
                break format!(
                    "stress reported before any applied attempt in {stress_in_a_row} runs in a \
                     row at the slowest pace ({} ms a round; last: {}): this report does not \
                     wait for an interleaving of the workload's threads (it may come from a \
                     thread no schedule stops, a kworker, or from every round)",
                    MAX_PACE_US / 1000,
                    record
                        .runs
                        .last()
                        .map(|r| r.reports.join("; "))
                        .unwrap_or_default(),
                );
            }
            let matched = r.reports.iter().find(|rep| record.wanted.matches(rep));
            if let (Some(id), Some(m)) = (id, matched) {
                progress.clear();
                return Ok((Some((id, m.title.clone(), r.dir.clone())), String::new()));
            }
            let schedule = r.record.as_ref().and_then(|x| x.schedule.as_ref());
            if let Some(e) = schedule.and_then(|s| s.error.as_ref()) {
                anyhow::bail!("the search could not drive the machine: {e}");
            }
            let looked = schedule.is_some_and(|s| !s.attempts.is_empty() || s.samples.len() > 1);
            stress_wins = match (r.first_report_ms, looked) {
                (Some(_), false) => stress_wins + 1,
                _ => 0,
            };
            if stress_wins == STRESS_WINS {
                anyhow::bail!(
                "in {STRESS_WINS} runs in a row the kernel reported ({}) {} after the workload \
                 started, before the search could stop anything: the workload races faster than \
                 a search can look. Slow its rounds (--pace MICROS, now {}) and explore again",
                record.runs.last().map(|r| r.reports.join("; ")).unwrap_or_default(),
                r.first_report_ms
                    .map(|ms| format!("{:.2} s", ms as f64 / 1000.0))
                    .unwrap_or_default(),
                scenario
                    .params
                    .get("pace_us")
                    .map_or("none".to_string(), |v| format!("{v} µs")),
            );
            }
        };
    progress.clear();
    Ok((None, why))
}

/// The outcome: the scenario written and checked, or what survived.
async fn conclude(
    s: &Searching<'_>,
    scenario: &Scenario,
    found: Option<Hit>,
    (why_ended, stress_hits, runs): (String, usize, usize),
    record: &mut Record,
) -> Result<Outcome> {
    let Some((id, title, run_dir)) = found else {
        let (_, _, applied, given_up) = s.search.counts();
        if stress_hits > 0 {
            return Ok(Outcome::StressOnly {
                stress_hits,
                runs,
                applied,
                why_ended,
            });
        }
        use crate::results::canary::Detectors;
        return Ok(Outcome::Survived {
            applied,
            locations: s.search.record().stops.len(),
            given_up,
            why_ended,
            qualifier: match &s.detectors {
                Detectors::Proven => None,
                Detectors::Silent(why) => Some(Qualifier::Inconclusive(why.clone())),
                Detectors::Unproven(why) => Some(Qualifier::Unproven(why.clone())),
            },
        });
    };
    let hit = (id, title, run_dir);
    let (steps, stops) = widen(s, scenario, &hit, record).await?;
    let (id, title, run_dir) = hit;
    let file = match &s.a.out {
        Some(f) => f.clone(),
        None => s
            .scenario
            .file
            .parent()
            .unwrap_or(Path::new("."))
            .join(format!("{}-{}-found.toml", scenario.name, s.a.variant)),
    };
    let hit = (id, title, run_dir);
    let written = write_scenario(s, scenario, &hit, (&steps, &stops), &file)?;
    let (id, title, run_dir) = hit;
    let (first_attempt, confirm_runs, confirm_dir) = match s.a.confirm {
        0 => (0, 0, None),
        n => {
            let out = s.dir.join("confirm");
            let check = Check {
                runs: n,
                how: s.a.how,
                title: &title,
                suppressions: s.suppressions.clone(),
            };
            let (ok, runs) = confirm(&written, s.target, &check, &out).await?;
            (ok, runs, Some(out))
        }
    };
    Ok(Outcome::Found {
        id,
        steps: steps.iter().map(search::describe).collect(),
        title,
        run: run_dir,
        file,
        confirm_runs,
        first_attempt,
        confirm_dir,
    })
}

/// How many steps' widenings are tried after a hit, at most (each costs `--verify` runs).
const WIDEN_TRIES: usize = 4;
/// How far up its callers one step is widened.
const WIDEN_LEVELS: usize = 2;

/// The hit's steps, each moved up to its caller in the hit run's reports while the scenario
/// still reproduces at its first applied attempt in every `--verify` run (only from a hit
/// that reproduced in all of its own: a weaker one is written as it was found). A step at the
/// function the bug changes (`dma_buf_poll`, reached only once the dying file got past
/// `ep_item_poll`) is never reached on a kernel without the bug, so there the schedule is
/// never applied and says nothing; at its caller it is applied everywhere, and a kernel without
/// the bug survives it. Every try is recorded.
async fn widen(
    s: &Searching<'_>,
    scenario: &Scenario,
    hit: &Hit,
    record: &mut Record,
) -> Result<(Vec<crate::config::schedule::Step>, Vec<search::Stop>)> {
    let (id, title, run) = hit;
    let mut steps = s
        .search
        .steps_of(*id)
        .expect("a found interleaving has steps");
    let mut stops = s.search.stops_of(*id);
    // Only a hit that every verify run reproduced is a baseline a moved step can be held to.
    let perfect = record
        .verified
        .iter()
        .rev()
        .find(|v| v.id == *id)
        .is_some_and(|v| v.first_attempt == v.runs);
    if !perfect || stops.len() != steps.len() {
        return Ok((steps, stops));
    }
    let reports = reports_from(run).unwrap_or_default();
    let mut tries = 0;
    for i in 0..steps.len() {
        for _ in 0..WIDEN_LEVELS {
            if tries == WIDEN_TRIES {
                return Ok((steps, stops));
            }
            let used = |f: &str| {
                stops
                    .iter()
                    .any(|st| st.role == stops[i].role && st.function == f)
            };
            let Some((caller, why)) = candidates::callers(&reports, &stops[i].function)
                .into_iter()
                .find(|(c, _)| s.search.resolves(c) && !used(c))
            else {
                break;
            };
            tries += 1;
            let (mut wider, mut wider_stops) = (steps.clone(), stops.clone());
            wider[i].at = search::location(&caller);
            wider[i].name = format!("{}-{caller}", stops[i].role);
            wider_stops[i].function = caller.clone();
            wider_stops[i].from = vec![why];
            let file = s
                .dir
                .join("candidates")
                .join(format!("interleaving-{id}-widened-{tries}.toml"));
            let written = write_scenario(s, scenario, hit, (&wider, &wider_stops), &file)?;
            let check = Check {
                runs: s.a.verify,
                how: s.a.how,
                title,
                suppressions: s.suppressions.clone(),
            };
            let out = s.dir.join("widen").join(tries.to_string());
            let (ok, runs) = confirm(&written, s.target, &check, &out).await?;
            let adopted = ok == runs;
            crate::events::note(format!(
                "explore: step {} moved from {} to its caller {caller}: reproduced at its \
                 first applied attempt in {ok}/{runs} runs{}",
                i + 1,
                stops[i].function,
                if adopted { ", kept" } else { ", not kept" }
            ));
            record.widened.push(Widened {
                step: i + 1,
                from: stops[i].function.clone(),
                to: caller,
                file,
                first_attempt: ok,
                runs,
                kept: adopted,
            });
            write(s.dir, record)?;
            if !adopted {
                break;
            }
            (steps, stops) = (wider, wider_stops);
        }
    }
    Ok((steps, stops))
}

/// Write the scenario of a hit, with these steps, to `file`, and read it back as the lab
/// reads scenarios.
fn write_scenario(
    s: &Searching<'_>,
    scenario: &Scenario,
    (id, title, run): &Hit,
    (steps, stops): (&[crate::config::schedule::Step], &[search::Stop]),
    file: &Path,
) -> Result<Scenario> {
    let provenance = found::Provenance {
        variant: &s.a.variant,
        kernel: &s.target.name,
        id: *id,
        title,
        run,
        tried: s.search.counts().1,
    };
    let text = found::scenario_text(scenario, &provenance, steps, stops)?;
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot make {}", parent.display()))?;
    }
    crate::files::write(file, text.as_bytes())?;
    Ok(crate::config::scenario::load(file)?)
}

/// The check of a found scenario.
struct Check<'a> {
    runs: u32,
    how: How,
    title: &'a str,
    suppressions: Arc<crate::config::suppress::Suppressions>,
}

/// Run the found scenario `check.runs` times; (runs whose report with the title followed
/// their first applied attempt, runs).
async fn confirm(
    scenario: &Scenario,
    target: &Target,
    check: &Check<'_>,
    out: &Path,
) -> Result<(u32, u32)> {
    let pool = Pool::sized(check.how.jobs, scenario.cpus.get(), scenario.memory_mib);
    let progress = Progress::new(pool.jobs);
    let label = format!("{} (check)", scenario.name);
    progress.plan(
        &label,
        check.runs,
        check.how.duration.unwrap_or(scenario.duration).get(),
    );
    let opts = BatchOptions {
        runs: runner::quantity::RunCount::new(check.runs.into())?,
        how: check.how,
        out: out.to_path_buf(),
        append: false,
        first: None,
        pool,
        progress: progress.clone(),
        label,
        suppressions: check.suppressions.clone(),
        source: None,
    };
    let results = run::batch(scenario, target, &opts).await?;
    progress.clear();
    let ok = results
        .iter()
        .filter(|r| reproduced_at_first_attempt(r, check.title))
        .count();
    Ok((ok as u32, results.len() as u32))
}

/// Whether a scheduled run reported `title` after exactly one applied attempt.
pub fn reproduced_at_first_attempt(r: &RunResult, title: &str) -> bool {
    let first_applied = matches!(run::scheduled(r), Some((_, _, Some(1))));
    first_applied
        && r.reports
            .iter()
            .any(|rep| rep.counts() && rep.title == title)
}

fn write(dir: &Path, record: &Record) -> Result<()> {
    crate::files::write(dir.join("explore.json"), serde_json::to_vec_pretty(record)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn survived(qualifier: Option<Qualifier>) -> String {
        Outcome::Survived {
            applied: 3,
            locations: 10,
            given_up: 17,
            why_ended: "budget of 20 schedules spent".into(),
            qualifier,
        }
        .sentence()
    }

    /// What survived is said as evidence, and the machine's canary qualifies it as it
    /// qualifies a clean run: a silent detector makes it inconclusive.
    #[test]
    fn a_survival_says_what_ran_and_what_the_canary_lets_it_claim() {
        assert_eq!(
            survived(None),
            "3 distinct interleavings of these 10 locations ran, each applied; the kernel \
             survived all of them (17 more could not be applied; budget of 20 schedules spent)"
        );
        let silent = survived(Some(Qualifier::Inconclusive(
            "KASAN did not fire on this machine".into(),
        )));
        assert!(
            silent.starts_with("inconclusive: KASAN did not fire on this machine; what ran: 3 "),
            "{silent}"
        );
        let unproven = survived(Some(Qualifier::Unproven("no canary".into())));
        assert!(
            unproven.ends_with("— detectors unproven: no canary"),
            "{unproven}"
        );
    }

    /// A search whose every report came from stress does not claim the kernel survived.
    #[test]
    fn stress_hits_are_never_a_survival() {
        let text = Outcome::StressOnly {
            stress_hits: 134,
            runs: 134,
            applied: 0,
            why_ended: "budget of 15m spent".into(),
        }
        .sentence();
        assert!(!text.contains("survived"), "{text}");
        assert!(text.contains("stress made the kernel report in 134 of the search's 134 runs"));
    }

    #[test]
    fn a_scenarios_roles_are_its_pinned_thread_lists() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(
            &file,
            "kind = \"race\"\nworkload = \"epoll_add_close_race\"\ncpus = 3\n[params]\n\
             closer_cpus = [0]\nadder_cpus = [1]\npoller_cpus = [2]\nfile_kind = \"pipe\"\n",
        )
        .unwrap();
        let mut scenario = crate::config::scenario::load(&file).unwrap();
        // The pace: the search's default, doubled when stress keeps winning, never past
        // its bound; 0 leaves none.
        paced(&mut scenario, None);
        let pace = |s: &Scenario| s.params.get("pace_us").and_then(|v| v.as_u64());
        assert_eq!(pace(&scenario), Some(u64::from(DEFAULT_PACE_US)));
        slow_down(&mut scenario);
        assert_eq!(pace(&scenario), Some(2 * u64::from(DEFAULT_PACE_US)));
        for _ in 0..20 {
            slow_down(&mut scenario);
        }
        assert_eq!(pace(&scenario), Some(MAX_PACE_US));
        paced(&mut scenario, Some(0));
        assert_eq!(pace(&scenario), None);
        let mut r = roles(&scenario);
        r.sort();
        assert_eq!(r, ["adder", "closer", "poller"]);
        assert_eq!(explorable(&scenario).unwrap().len(), 3);
    }
}
