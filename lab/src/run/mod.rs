//! Executing a scenario on a kernel N times: one VM run each, console scanned for kernel
//! reports, a verdict per run and the batch's statistics, all written under one directory.

pub mod boot;
pub mod canary;
pub mod pool;
pub mod programs;
pub mod progress;
pub mod snapshots;
pub mod suite;
pub mod target;

pub use pool::Pool;
pub use progress::Progress;
pub use target::Target;

use crate::config::scenario::{Kind, Scenario};
use crate::config::schedule::Schedule;
use crate::config::suppress::Suppressions;
use crate::kernel::symbols::SymbolMap;
use crate::report::formats;
use crate::report::parser::{self, Parser, Report, MAX_REPORTS};
use crate::report::symbolize::Symbolizer;
use crate::results::evidence;
use crate::results::RunRecord;
use crate::vm::accel::AccelChoice;
use crate::vm::console::{ConsoleScanner, ScanAction};
use crate::vm::schedule::{Plan, Tasks};
use crate::vm::session::{self, Backend, BootSpec};
use anyhow::Result;
use futures::StreamExt;
use snapshots::Snapshots;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use crate::results::{Evidence, RunResult, Verdict};

/// What the report parser has seen of one run's console.
#[derive(Default)]
struct Seen {
    parser: Parser,
    reports: Vec<Report>,
    /// Console lines fed so far.
    lines: usize,
    /// (console line, ms since QEMU started) of each report header, as printed.
    headers: Vec<(usize, u64)>,
    /// A report that counts was seen (the run stops there when the scenario says so).
    found: bool,
}

impl Seen {
    fn keep(&mut self, reports: &[Report]) {
        let room = MAX_REPORTS.saturating_sub(self.reports.len());
        self.reports.extend(reports.iter().take(room).cloned());
    }

    /// Close what is still open and hand the reports over, each with when its header was
    /// printed (ms since QEMU started).
    fn take(&mut self) -> Vec<Report> {
        let rest = std::mem::take(&mut self.parser).finish();
        self.keep(&rest);
        let mut reports = std::mem::take(&mut self.reports);
        for r in &mut reports {
            r.at_ms = self
                .headers
                .iter()
                .find(|(line, _)| *line == r.line)
                .map(|(_, ms)| *ms);
        }
        reports
    }
}

/// Feeds the console to the report parser live; asks to stop at the first report that
/// counts when the scenario says so (the VM path lets the console drain before stopping).
/// Without suppressions that is the first header; with them, the first report complete and
/// not suppressed (a suppressed one lets the run go on).
struct LiveReports {
    seen: Arc<Mutex<Seen>>,
    stop_on_report: bool,
    suppressions: Arc<Suppressions>,
}

impl ConsoleScanner for LiveReports {
    fn on_line(&mut self, at: Duration, line: &str) -> ScanAction {
        let mut seen = self.seen.lock().unwrap();
        seen.lines += 1;
        let done = seen.parser.feed(line);
        seen.keep(&done);
        let (_, text) = parser::split(line);
        let header = formats::header(text.trim_start());
        if header.is_some() && seen.headers.len() < MAX_REPORTS {
            let line = seen.lines;
            seen.headers.push((line, at.as_millis() as u64));
        }
        if seen.found {
            return ScanAction::Continue;
        }
        let found = match (&header, self.suppressions.is_empty()) {
            (Some((format, _)), true) => Some(format!("{} report: {}", format.name, text.trim())),
            (_, false) => done
                .iter()
                .find(|r| self.suppressions.rule(&r.title, &r.signature).is_none())
                .map(|r| format!("{} report: {}", r.format, r.title)),
            (None, true) => None,
        };
        match found {
            Some(why) => {
                seen.found = true;
                match self.stop_on_report {
                    true => ScanAction::Stop(why),
                    false => ScanAction::Continue,
                }
            }
            None => ScanAction::Continue,
        }
    }
}

fn throughput(record: &RunRecord) -> Vec<(String, f64)> {
    let secs = match (record.timing.workload_started_ms, record.timing.done_ms) {
        (Some(s), Some(d)) if d > s => (d - s) as f64 / 1000.0,
        _ => record.duration_ms as f64 / 1000.0,
    };
    let mut by_role: Vec<(String, f64)> = Vec::new();
    for t in &record.threads {
        match by_role.iter_mut().find(|(r, _)| *r == t.role) {
            Some((_, total)) => *total += t.count as f64 / secs,
            None => by_role.push((t.role.clone(), t.count as f64 / secs)),
        }
    }
    by_role
}

/// How each run is executed: the same for every batch of a command (and the command line's
/// flags for it: run, compare, nightly, bisect).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct How {
    /// Override the scenario's duration.
    #[arg(long, value_parser = crate::units::parse_work_duration)]
    pub duration: Option<runner::quantity::WorkDuration>,
    #[arg(long, value_enum, default_value_t = AccelChoice::Auto)]
    pub accel: AccelChoice,
    #[arg(long, value_enum, default_value_t = Backend::Qemu)]
    pub backend: Backend,
    /// VMs at a time (default: as many as the host's cores and memory hold for the
    /// scenarios' vCPUs and memory; one on a 2-core host with 2-vCPU guests).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Boot every run. By default a kernel's guest is booted once per machine shape (vCPUs,
    /// memory, command line, files), saved when its agent is ready, and every run restores
    /// that snapshot (under a second instead of a boot); the vng backend always boots.
    #[arg(long)]
    pub no_snapshot: bool,
    /// Do not run the detector canary on a machine that has none cached. Runs that print
    /// nothing then pass qualified "detectors unproven" instead of counting as clean.
    #[arg(long)]
    pub no_canary: bool,
}

impl Default for How {
    /// The command line's defaults.
    fn default() -> Self {
        How {
            duration: None,
            accel: AccelChoice::Auto,
            backend: Backend::Qemu,
            jobs: None,
            no_snapshot: false,
            no_canary: false,
        }
    }
}

pub struct BatchOptions {
    pub runs: runner::quantity::RunCount,
    pub how: How,
    pub out: PathBuf,
    /// Add the runs to those already in `<out>/runs.json` (numbered after them) instead of
    /// starting a new batch there.
    pub append: bool,
    /// Number the runs from this index (a shard's range of a night's runs); default: after
    /// the runs already there.
    pub first: Option<u32>,
    /// VM slots, shared with other batches running at the same time.
    pub pool: Pool,
    pub progress: Progress,
    /// What the progress display calls this batch ("baseline × epoll-dmabuf-race").
    pub label: String,
    /// Reports the lab leaves out of verdicts (kept, shown with their reason).
    pub suppressions: Arc<Suppressions>,
    /// Interleavings to attempt, one after another, instead of the scenario's schedule (an
    /// exploration).
    pub source: Option<Arc<dyn crate::vm::schedule::Source>>,
}

/// What, besides the kernel, shapes a run's result: the scenario file (and its reproducer)
/// and the duration.
pub fn scenario_key(
    scenario: &Scenario,
    duration: Option<runner::quantity::WorkDuration>,
) -> Result<String> {
    use sha2::{Digest, Sha256};
    let text = crate::files::read(&scenario.file)?;
    let mut h = Sha256::new();
    h.update(&text);
    // As a std Duration: the keys of nights recorded before the type stay the same.
    h.update(format!("duration={:?}", duration.map(|d| d.get())));
    // A reproducer is part of the scenario (a suite's programs come with the kernel's tree).
    if let Some(crate::config::scenario::Programs::Repro { file }) = &scenario.programs {
        h.update(crate::files::read(file)?);
    }
    Ok(hex::encode(&h.finalize()[..8]))
}

/// The runs stored in a batch directory (none when it has no runs.json).
pub fn stored(out: &Path) -> Result<Vec<RunResult>> {
    let file = out.join("runs.json");
    match crate::files::read(&file) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: {e} (delete it to start over)", file.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", file.display())),
    }
}

/// Run `scenario` on `target` `opts.runs` times, as many at once as the pool allows;
/// results also go to `<out>/runs.json`, rewritten after every run.
pub async fn batch(
    scenario: &Scenario,
    target: &Target,
    opts: &BatchOptions,
) -> Result<Vec<RunResult>> {
    std::fs::create_dir_all(&opts.out)?;
    // Two lab processes must not number runs in one directory.
    let _lock = crate::cache::lock(&opts.out.join("batch.lock"), false)?;
    let mut results = if opts.append {
        stored(&opts.out)?
    } else {
        Vec::new()
    };
    let first = match opts.first {
        Some(first) => first,
        None => u32::try_from(results.len() + 1)?,
    };
    // Checked: run indices never wrap (a batch of u32::MAX runs after others would be
    // none at all).
    let last = first.checked_add(opts.runs.get() - 1).ok_or_else(|| {
        anyhow::anyhow!(
            "{} runs numbered from {first} would pass the largest run index ({})",
            opts.runs,
            u32::MAX
        )
    })?;
    let indices = first..=last;
    let work = opts.how.duration.unwrap_or(scenario.duration);
    // A kernel that lacks what the scenario needs is skipped before anything boots.
    let config = match &target.config {
        Some(config) => Some(crate::files::read_to_string(config)?),
        None => None,
    };
    let mut skip = config.as_deref().and_then(|text| {
        let missing = crate::kernel::kconfig::missing(&scenario.requires, text);
        (!missing.is_empty()).then(|| format!("needs {}", missing.join(", ")))
    });
    // The programs the scenario brings, built for this kernel.
    let prepared = match (&scenario.programs, &skip) {
        (Some(p), None) => {
            // Off the runtime's thread: it may compile for minutes.
            let (p, t) = (p.clone(), target.clone());
            let prepared = tokio::task::spawn_blocking(move || programs::prepare(&p, &t)).await??;
            skip = prepared.skip.clone();
            prepared
        }
        _ => programs::Prepared::default(),
    };
    if let Some(why) = skip {
        opts.progress.unplan(&opts.label, opts.runs.get());
        for index in indices {
            results.push(RunResult::skipped(index, opts.out.clone(), why.clone()));
        }
        write_results(&opts.out, &results)?;
        return Ok(results);
    }
    say_checks_not_compared(scenario, target);
    let schedule = match (&opts.source, &scenario.schedule) {
        (Some(source), _) => Some(Plan {
            source: Some(source.clone()),
            ..schedule_plan(scenario, &Schedule::none(), target)?
        }),
        (None, Some(schedule)) => Some(schedule_plan(scenario, schedule, target)?),
        (None, None) => None,
    };
    // What a run that prints nothing may claim: the machine's detector canary, cached or run.
    let detectors = canary::detectors(
        scenario,
        (target, config.as_deref()),
        opts.how,
        &opts.pool,
        &opts.progress,
    )
    .await?;
    let symbols = target.symbolizer().await;
    let stop = std::cell::Cell::new(false);
    let snapshots = match (opts.how.no_snapshot, opts.how.backend) {
        (false, Backend::Qemu) => Snapshots::on(opts.label.clone()),
        _ => Snapshots::off(),
    };
    let planned = Planned {
        scenario,
        target,
        prepared: &prepared,
        config: config.as_deref(),
        schedule: schedule.as_ref(),
        snapshots: &snapshots,
        detectors: &detectors,
    };
    let one = |index: u32| {
        let (symbols, stop) = (&symbols, &stop);
        async move {
            let _slot = opts.pool.slot().await;
            if stop.get() || crate::interrupt::requested() {
                opts.progress.unplan(&opts.label, 1);
                return Ok(None);
            }
            let ticket = opts
                .progress
                .start(&opts.label, format!("{} run {index}/{last}", opts.label));
            let result = one_run(planned, opts, work, index, symbols.as_ref()).await?;
            opts.progress.finish(ticket, run_end(&opts.label, &result));
            if result.evidence == Evidence::Interrupted {
                stop.set(true);
            }
            anyhow::Ok(Some(result))
        }
    };
    let mut runs = futures::stream::iter(indices)
        .map(one)
        .buffer_unordered(opts.pool.jobs);
    while let Some(result) = runs.next().await {
        if let Some(result) = result? {
            results.push(result);
            results.sort_by_key(|r| r.index);
            write_results(&opts.out, &results)?;
        }
    }
    Ok(results)
}

/// What every run of a batch shares.
#[derive(Clone, Copy)]
struct Planned<'a> {
    scenario: &'a Scenario,
    target: &'a Target,
    prepared: &'a programs::Prepared,
    /// The kernel's .config, when known.
    config: Option<&'a str>,
    /// The scenario's schedule, resolved in this kernel.
    schedule: Option<&'a Plan>,
    /// Whether runs restore a snapshot.
    snapshots: &'a Snapshots,
    /// What the machine's canary lets a clean run claim.
    detectors: &'a canary::Detectors,
}

/// Before a batch: the uapi checks the target's kernel predates, which its runs do not compare.
fn say_checks_not_compared(scenario: &Scenario, target: &Target) {
    let release = target
        .build
        .as_ref()
        .map(|(_, b)| b.metadata.kernel_release.as_str());
    let too_new = scenario.checks_too_new(release);
    if !too_new.is_empty() {
        crate::events::note(format!(
            "{} on {} (Linux {}): not compared, the kernel predates their call: {}",
            scenario.name,
            target.name,
            release.unwrap_or("?"),
            too_new
                .iter()
                .map(|(c, (major, minor))| format!("{c} (Linux {major}.{minor})"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
}

/// A scenario's schedule with its locations resolved in the target's System.map.
fn schedule_plan(scenario: &Scenario, schedule: &Schedule, target: &Target) -> Result<Plan> {
    let map = target.system_map().ok_or_else(|| {
        anyhow::anyhow!(
            "{}: a schedule needs the kernel's System.map, and there is none beside {}",
            scenario.file.display(),
            target.kernel.display()
        )
    })?;
    let map = std::sync::Arc::new(SymbolMap::read(&map).map_err(anyhow::Error::msg)?);
    // A step stops where the kernel's series has it (`at_series`), else at `at`.
    let series = target.build.as_ref().and_then(|(v, _)| v.series.as_deref());
    let steps = schedule
        .steps
        .iter()
        .map(|step| {
            let at = step.at_on(series);
            map.resolve(at)
                .map(|addrs| {
                    let step = crate::config::schedule::Step {
                        at: at.clone(),
                        ..step.clone()
                    };
                    (step, addrs)
                })
                .map_err(|why| {
                    anyhow::anyhow!(
                        "{}:{}: step {:?}: at = {:?}: {why} (kernel {}{}; a step names \
                         another series' function with at_series = {{ \"SERIES\" = \
                         \"FUNCTION\" }})",
                        scenario.file.display(),
                        step.line,
                        step.name,
                        at.to_string(),
                        target.name,
                        series.map(|s| format!(", series {s}")).unwrap_or_default()
                    )
                })
        })
        .collect::<Result<_>>()?;
    // The current task's pointer: its own per-CPU variable, or the first field of pcpu_hot
    // (6.2 to 6.14).
    let current = map
        .data_address("current_task")
        .or_else(|| map.data_address("pcpu_hot"));
    let (Some(current), Some(init_task)) = (current, map.data_address("init_task")) else {
        anyhow::bail!(
            "{}: a schedule names the task a vCPU runs through current_task (or pcpu_hot) and \
             init_task, and kernel {}'s System.map lacks them",
            scenario.file.display(),
            target.name
        );
    };
    let text = text_of(&map);
    Ok(Plan {
        steps,
        gap: schedule.gap,
        name_of: std::sync::Arc::new(move |addr| map.name_of(addr)),
        tasks: Tasks { current, init_task },
        text,
        source: None,
    })
}

/// Where the kernel's code lies: `_stext` to `_etext`.
fn text_of(map: &SymbolMap) -> Option<(u64, u64)> {
    let at = |name: &str| {
        let location = crate::config::schedule::Location {
            symbol: name.into(),
            offset: 0,
        };
        map.resolve(&location)
            .ok()
            .and_then(|a| a.first().copied())
            .or_else(|| map.data_address(name))
    };
    Some((at("_stext")?, at("_etext")?))
}

/// One VM run of the batch, its reports parsed (and symbolized) and judged.
async fn one_run(
    planned: Planned<'_>,
    opts: &BatchOptions,
    duration: runner::quantity::WorkDuration,
    index: u32,
    symbols: Option<&Symbolizer>,
) -> Result<RunResult> {
    let Planned {
        scenario,
        target,
        prepared,
        config,
        schedule,
        snapshots,
        detectors,
    } = planned;
    let dir = opts.out.join(crate::name::run_dir_name(index));
    let mut params = scenario.params.clone();
    params.extend(prepared.params.clone());
    let mut request = session::request(
        scenario.workload.clone(),
        duration,
        scenario.threads,
        params,
        scenario.kernel_params.clone(),
    );
    request.wait_for_go = schedule.is_some();
    let mut spec = BootSpec {
        accel: opts.how.accel,
        backend: opts.how.backend,
        // A schedule's addresses are System.map's: no randomized base.
        cmdline_extra: match schedule {
            Some(_) => scenario.cmdline.with_lab_word("nokaslr"),
            None => scenario.cmdline.clone(),
        },
        extra_files: prepared.extra_files.clone(),
        schedule: schedule.cloned(),
        ..BootSpec::new(
            target.kernel.clone(),
            scenario.cpus,
            scenario.memory_mib,
            request,
            dir.clone(),
        )
    };
    let seen = Arc::new(Mutex::new(Seen::default()));
    let scanners = || {
        // A failed restore's attempt leaves nothing worth keeping.
        *seen.lock().unwrap() = Seen::default();
        let scanner = LiveReports {
            seen: seen.clone(),
            stop_on_report: scenario.stop_on_report,
            suppressions: opts.suppressions.clone(),
        };
        vec![Box::new(scanner) as Box<dyn ConsoleScanner>]
    };
    let mut record = snapshots.run_and_read(&mut spec, scanners).await?;
    let mut reports = seen.lock().unwrap().take();
    for r in &mut reports {
        r.suppressed = opts.suppressions.why(&r.title, &r.signature);
        r.at_ms = match (r.at_ms, record.timing.workload_started_ms) {
            (Some(at), Some(start)) => Some(at.saturating_sub(start)),
            _ => None,
        };
    }
    let first_report_ms = reports.iter().find(|r| r.counts()).and_then(|r| r.at_ms);
    if let Some(suite) = record.tests.as_mut() {
        suite::not_run_here(suite, config);
        let console = crate::files::read_to_string(dir.join("console.log")).unwrap_or_default();
        let at: Vec<(u64, String)> = reports
            .iter()
            .filter_map(|r| Some((suite::console_ms(&console, r.line)?, r.title.clone())))
            .collect();
        suite::attribute(suite, &at);
        crate::files::write(dir.join("tests.json"), serde_json::to_vec_pretty(&*suite)?)?;
    }
    let differences = match scenario.kind {
        // A check whose call the guest's kernel is too old for is not compared.
        Kind::Uapi => evidence::differences(
            &scenario.expect_on(record.guest.as_ref().map(|g| g.kernel_release.as_str())),
            &record.observations,
        ),
        Kind::Suite => {
            let flaky: &[String] = match &scenario.programs {
                Some(crate::config::scenario::Programs::Suite { flaky, .. }) => flaky,
                _ => &[],
            };
            record
                .tests
                .as_ref()
                .map(|t| suite::counted_failures(t, flaky))
                .unwrap_or_default()
        }
        Kind::Race => vec![],
    };
    let evidence = evidence::judge(
        scenario.kind,
        &record.outcome,
        &reports,
        &differences,
        record.schedule.as_ref(),
        detectors,
    );
    if let Some(symbolizer) = symbols {
        reports.iter_mut().for_each(|r| symbolizer.symbolize(r));
    }
    if reports.is_empty() {
        reports.extend(evidence::outcome_report(&record.outcome));
    }
    crate::files::write(
        dir.join("reports.json"),
        serde_json::to_vec_pretty(&reports)?,
    )?;
    Ok(RunResult {
        index,
        dir,
        evidence,
        outcome: Some(record.outcome.clone()),
        reports,
        first_report_ms,
        throughput: throughput(&record),
        differences,
        record: Some(record),
    })
}

fn write_results(out: &Path, results: &[RunResult]) -> Result<()> {
    crate::files::write(out.join("runs.json"), &serde_json::to_vec_pretty(results)?)
}

/// A run with a schedule: (attempts applied, attempts, attempts applied before its first
/// report).
pub fn scheduled(r: &RunResult) -> Option<(usize, usize, Option<usize>)> {
    let record = r.record.as_ref()?;
    let schedule = record.schedule.as_ref()?;
    let before = match (r.first_report_ms, record.timing.workload_started_ms) {
        (Some(first), Some(start)) => Some(schedule.applied_before(start + first)),
        _ => None,
    };
    Some((schedule.applied(), schedule.attempts.len(), before))
}

/// What the run's one-line summary shows.
fn run_end(batch: &str, r: &RunResult) -> crate::events::RunEnd {
    let verdict = r.verdict();
    let (verdict, detail) = verdict.parts();
    // A survival says what it survived, before any qualifier.
    let detail = match r.evidence.survived() {
        Some(what) if detail.is_empty() => what,
        Some(what) => format!("{what} ({detail})"),
        None => detail.to_string(),
    };
    crate::events::RunEnd {
        batch: batch.to_string(),
        index: r.index,
        verdict: verdict.to_string(),
        detail,
        outcome: r.outcome_name().to_string(),
        first_report_ms: r.first_report_ms,
        throughput: r.throughput.clone(),
        schedule: scheduled(r),
        kernel_report: r.evidence.is_kernel_report(),
    }
}

/// `lab run`: `runs` runs of `scenario` on `target`, stored in `out`, with the progress
/// shown; the results as in `<out>/runs.json`.
pub async fn runs(
    scenario: &Scenario,
    target: &Target,
    runs: runner::quantity::RunCount,
    how: How,
    out: PathBuf,
    suppressions: Suppressions,
) -> Result<Vec<RunResult>> {
    let duration = how.duration.unwrap_or(scenario.duration).get();
    crate::events::note(format!(
        "{runs} × {} on {} ({} vCPUs, {duration:?} each) in {}",
        scenario.name,
        target.name,
        scenario.cpus,
        out.display()
    ));
    let pool = Pool::sized(how.jobs, scenario.cpus.get(), scenario.memory_mib);
    let progress = Progress::new(pool.jobs);
    let label = format!(
        "{} × {}",
        target.name.rsplit('/').next().unwrap_or("kernel"),
        scenario.name
    );
    progress.plan(&label, runs.get(), duration);
    let opts = BatchOptions {
        runs,
        how,
        out,
        append: false,
        first: None,
        pool,
        progress: progress.clone(),
        label,
        suppressions: Arc::new(suppressions),
        source: None,
    };
    let results = batch(scenario, target, &opts).await;
    progress.clear();
    results
}

/// Whether every run of a batch passed (`lab run`'s exit status 0).
pub fn all_pass(results: &[RunResult]) -> bool {
    let verdicts: Vec<Verdict> = results.iter().map(RunResult::verdict).collect();
    evidence::batch_verdict(&verdicts) == evidence::BatchVerdict::Pass
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kcsan(at: &str, a: &str, b: &str) -> Vec<String> {
        [
            format!("BUG: KCSAN: data-race in {a} / {b}"),
            String::new(),
            "read to 0xffff8880 of 8 bytes by task 1 on cpu 0:".into(),
            format!(" {a}+0x1/0x2"),
            String::new(),
            "Reported by Kernel Concurrency Sanitizer on:".into(),
            "==================================================================".into(),
        ]
        .iter()
        .map(|l| format!("[{at}][ T1] {l}"))
        .collect()
    }

    /// A step resolves where its kernel's series has its function (`at_series`), and a
    /// function the series' System.map lacks is an error naming the scenario file's line, the
    /// kernel and the series — before anything boots.
    #[test]
    fn a_schedule_resolves_on_its_kernels_series_or_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let map = "ffffffff81000000 T _stext\nffffffff81001000 T kmem_cache_alloc\n\
                   ffffffff81002000 T __fput\nffffffff81003000 T _etext\n\
                   ffffffff82000000 D current_task\nffffffff82001000 D init_task\n";
        std::fs::write(dir.path().join("System.map"), map).unwrap();
        let scenario_file = dir.path().join("s.toml");
        let step = |at_series: &str| {
            format!(
                "kind = \"race\"\nworkload = \"epoll_close_race\"\n[schedule]\n\
                 [[schedule.step]]\ncpu = 0\nat = \"__fput\"\n[[schedule.step]]\ncpu = 1\n\
                 at = \"kmem_cache_alloc_noprof\"\n{at_series}"
            )
        };
        let kernels = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(kernels.path().join("configs")).unwrap();
        for f in crate::config::variant::DEFAULT_FRAGMENTS {
            std::fs::write(kernels.path().join(format!("configs/{f}.config")), "").unwrap();
        }
        std::fs::write(
            kernels.path().join("v.toml"),
            "[source]\ndebian = \"p\"\nseries = \"6.12\"\n[series.\"6.1\"]\ndebian = \"q\"\n",
        )
        .unwrap();
        let variant = crate::config::variant::Catalog::load(kernels.path())
            .unwrap()
            .get("v@6.1")
            .unwrap();
        let metadata: crate::kernel::Metadata = serde_json::from_value(serde_json::json!({
            "variant": "v@6.1", "key": "k", "config_hash": "h", "kernel_release": "6.1.192",
            "duration_s": 1.0, "files_compiled": 1, "files_rewritten": [], "ccache": null,
            "artifacts": [],
            "inputs": {"recipe": 1, "arch": "x86_64", "source_id": "s", "series_hash": "h",
                       "patches": [], "config_base": "allnoconfig", "fragments": [],
                       "compiler": "gcc"},
        }))
        .unwrap();
        let built = crate::kernel::Built {
            dir: dir.path().to_path_buf(),
            metadata,
            cache_hit: true,
            elapsed_s: 0.0,
        };
        let target = Target::built("v@6.1", &variant, &built);
        let plan = |at_series: &str| {
            std::fs::write(&scenario_file, step(at_series)).unwrap();
            let scenario = crate::config::scenario::load(&scenario_file).unwrap();
            let schedule = scenario.schedule.clone().unwrap();
            schedule_plan(&scenario, &schedule, &target)
        };
        let ok = plan("at_series = { \"6.1\" = \"kmem_cache_alloc\" }\n").unwrap();
        let at: Vec<String> = ok.steps.iter().map(|(s, _)| s.at.to_string()).collect();
        assert_eq!(at, ["__fput", "kmem_cache_alloc"]);
        let e = plan("").err().unwrap().to_string();
        assert!(
            e.contains("s.toml:9:")
                && e.contains("kmem_cache_alloc_noprof")
                && e.contains("series 6.1"),
            "{e}"
        );
    }

    #[test]
    fn a_suppressed_report_lets_the_run_go_on_and_the_next_one_stops_it() {
        let suppressions = Suppressions::parse(
            Path::new("suppressions.toml"),
            "[[suppress]]\nfunctions = [\"tick_sched_do_timer\", \"tick_nohz_next_event\"]\n\
             reason = \"benign\"\n",
        )
        .unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let mut live = LiveReports {
            seen: seen.clone(),
            stop_on_report: true,
            suppressions: Arc::new(suppressions),
        };
        let mut feed = |ms: u64, lines: Vec<String>| {
            lines
                .iter()
                .map(|l| live.on_line(Duration::from_millis(ms), l))
                .filter(|a| matches!(a, ScanAction::Stop(_)))
                .count()
        };
        assert_eq!(
            feed(
                100,
                kcsan("1.0", "tick_nohz_next_event", "tick_sched_do_timer")
            ),
            0
        );
        assert_eq!(feed(250, kcsan("2.0", "ep_poll_callback", "ep_remove")), 1);
        let reports = seen.lock().unwrap().take();
        let at: Vec<(&str, Option<u64>)> = reports
            .iter()
            .map(|r| (r.title.as_str(), r.at_ms))
            .collect();
        assert_eq!(
            at,
            [
                (
                    "KCSAN: data-race in tick_nohz_next_event / tick_sched_do_timer",
                    Some(100)
                ),
                (
                    "KCSAN: data-race in ep_poll_callback / ep_remove",
                    Some(250)
                ),
            ]
        );
    }
}
