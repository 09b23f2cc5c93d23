//! Command line: one subcommand each, dispatched to one function in the modules.

use crate::vm::accel::AccelChoice;
use crate::vm::session::{self, Backend, BootSpec};
use crate::{cache, kernel, units};
use anyhow::Result;
use clap::{Parser, Subcommand};
use runner::protocol::RunRequest;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "lab",
    version,
    about = "Kernel race lab: boot kernels under QEMU with the lab's guest agent and stress races",
    long_about = "Kernel race lab: boot kernels under QEMU (KVM where it works, TCG where not) with \
                  the lab's own guest agent as PID 1, run workloads pinned across vCPUs, and record \
                  what happened: console.log, agent.jsonl and a typed outcome.json per run.\n\n\
                  Cache and run directories live under $LAB_CACHE_DIR, else \
                  $XDG_CACHE_HOME/kernel-race-lab, else ~/.cache/kernel-race-lab."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Boot a kernel with the guest agent and run one workload in it.
    ///
    /// Exit status: 0 when the run completed, 1 for any other outcome (panic, timeout,
    /// lost agent, QEMU exited), 2 when the lab itself failed.
    Boot(BootArgs),
    /// Build kernel variants (kernels/*.toml) into the cache; unchanged ones are cache hits.
    ///
    /// Variants of one source share a work tree and an object tree, so a variant that differs
    /// from an already built one by a patch rebuilds only the files the patch touches.
    Build(BuildArgs),
    /// Run a scenario (scenarios/*.toml) on a variant or any kernel, N times.
    ///
    /// The variant is built first if the cache lacks it. A kernel whose .config lacks an
    /// option the scenario requires is skipped ("skipped: needs CONFIG_X") without booting.
    /// Exit status: 0 when every run passed, 1 otherwise, 2 when the lab itself failed.
    Run(RunArgs),
    /// Run one scenario on several variants and compare them: detection rate with a 95 %
    /// Wilson interval, Fisher's exact p against the first variant, median time to the first
    /// report, distinct report titles, throughput and its overhead, and for uapi scenarios
    /// every check whose value differs from the first variant's. Ends with a verdict per
    /// variant in plain words. Runs are stored per kernel, scenario and duration and reused
    /// when asked again; with no --variants/--scenario, lab.toml's [compare] says what to run.
    Compare(CompareArgs),
    /// Run the lab's matrix (lab.toml): resolve git sources to commits (a commit already
    /// tested with the same plan is skipped unless --force), build every variant (cached), run
    /// every variant × scenario cell on a pool of VMs sized to the host (--jobs), store the
    /// runs in the SQLite history and compare each cell with its last comparable night.
    /// Writes results.json, junit.xml, summary.md and report.html to the night's directory and
    /// prints the summary. Exit status: 0 no regression, 1 a new report signature
    /// (regression), 2 infrastructure failure (a build broke, VMs said nothing).
    Nightly(NightlyArgs),
    /// Find the commit that brought a race in (or, with --fix, took it out), flaky-aware.
    ///
    /// The racy end (--bad) is built and run --runs times first: the rate the target report
    /// shows at there (its 95 % lower bound) decides how many clean runs make a commit clean,
    /// so that all clean verdicts together keep --confidence. A commit is racy at its first
    /// target report; a commit that does not build, or whose runs say nothing, is skipped.
    /// State and runs are saved after every run: the same command resumes after Ctrl-C.
    /// Exit status: 0 found, 1 no answer (interrupted, or only skipped commits left), 2 error.
    Bisect(BisectArgs),
    /// The trend of a cell (or of every cell) over the stored nights: runs, failures, and
    /// the first-report titles with how many runs printed each.
    History(HistoryArgs),
    /// Kernel reports in console logs.
    #[command(subcommand)]
    Report(ReportCommand),
}

#[derive(Subcommand)]
pub enum ReportCommand {
    /// Parse a console log into kernel reports: title (syzkaller's conventions), alternate
    /// titles, type, guilty frame, stacks, signature. `--json` prints one JSON array of
    /// reports, each with at least title, alt_titles, type, corrupted, frames.
    Parse {
        /// Console log (a run's console.log, or any serial console capture).
        console: PathBuf,
        /// Print a JSON array instead of one line per report.
        #[arg(long)]
        json: bool,
        /// The kernel's vmlinux (with DWARF): every frame gets file:line and its inline
        /// frames, as scripts/decode_stacktrace.sh shows them.
        #[arg(long)]
        vmlinux: Option<PathBuf>,
    },
    /// Write a night's report.html again from its results.json (after upgrading the lab,
    /// or for a night copied from elsewhere).
    Html {
        /// The night's directory (the one with results.json).
        night: PathBuf,
    },
}

pub fn report(cmd: ReportCommand) -> Result<i32> {
    match cmd {
        ReportCommand::Html { night } => {
            let file = night.join("results.json");
            let bytes = std::fs::read(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let results: crate::results::night::NightResults = serde_json::from_slice(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let page = night.join("report.html");
            std::fs::write(&page, crate::results::html::page(&results, &night))?;
            println!("{}", page.display());
            Ok(0)
        }
        ReportCommand::Parse {
            console,
            json,
            vmlinux,
        } => {
            let bytes = std::fs::read(&console)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", console.display()))?;
            let mut reports = crate::report::parser::parse(&String::from_utf8_lossy(&bytes));
            if let Some(vmlinux) = &vmlinux {
                let symbolizer = crate::report::symbolize::Symbolizer::open(vmlinux)?;
                reports.iter_mut().for_each(|r| symbolizer.symbolize(r));
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&reports)?);
            } else {
                for r in &reports {
                    let flag = if r.corrupted { " (corrupted)" } else { "" };
                    println!(
                        "{}:{}: {}{flag}  [{}]",
                        console.display(),
                        r.line,
                        r.title,
                        r.signature
                    );
                    if vmlinux.is_some() {
                        for frame in &r.frames {
                            for line in crate::report::symbolize::decoded(frame) {
                                println!("    {line}");
                            }
                        }
                    }
                }
            }
            Ok(0)
        }
    }
}

/// How each run is executed (run, compare, nightly).
#[derive(clap::Args, Clone, Copy)]
pub struct HowArgs {
    /// Override the scenario's duration.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    #[arg(long, value_enum, default_value_t = AccelChoice::Auto)]
    pub accel: AccelChoice,
    #[arg(long, value_enum, default_value_t = Backend::Qemu)]
    pub backend: Backend,
    /// VMs at a time (default: as many as the host's cores and memory hold for the
    /// scenarios' vCPUs and memory; one on a 2-core host with 2-vCPU guests).
    #[arg(long)]
    pub jobs: Option<usize>,
}

impl HowArgs {
    /// The VM pool for scenarios needing up to `cpus` vCPUs and `memory_mib` each.
    fn pool(&self, cpus: u32, memory_mib: u64) -> crate::run::Pool {
        match self.jobs {
            Some(n) => crate::run::Pool::new(n),
            None => crate::run::Pool::for_host(cpus, memory_mib),
        }
    }

    fn batch(
        &self,
        runs: u32,
        out: PathBuf,
        pool: &crate::run::Pool,
        progress: &crate::run::Progress,
        label: String,
    ) -> crate::run::BatchOptions {
        crate::run::BatchOptions {
            runs,
            accel: self.accel,
            backend: self.backend,
            duration: self.duration,
            out,
            append: false,
            pool: pool.clone(),
            progress: progress.clone(),
            label,
        }
    }
}

/// Where variants and scenarios are defined (run, compare).
#[derive(clap::Args, Clone)]
pub struct DataDirs {
    /// Directory of variant definitions (default: kernels/ here or in a parent directory).
    #[arg(long)]
    pub kernels: Option<PathBuf>,
    /// Directory of scenarios (default: scenarios/ here or in a parent directory).
    #[arg(long)]
    pub scenarios: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// Variant from kernels/*.toml.
    #[arg(long, required_unless_present = "kernel", conflicts_with = "kernel")]
    pub variant: Option<String>,
    /// Any kernel image instead of a variant (its .config is looked for next to it, or as
    /// /boot/config-* for /boot/vmlinuz-*).
    #[arg(long)]
    pub kernel: Option<PathBuf>,
    /// Scenario name (scenarios/<name>.toml).
    #[arg(long)]
    pub scenario: String,
    /// How many runs.
    #[arg(long, default_value_t = 1)]
    pub runs: u32,
    #[command(flatten)]
    pub how: HowArgs,
    #[command(flatten)]
    pub dirs: DataDirs,
    /// Batch directory (default: a new one under the cache's runs/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print runs.json's content instead of the summary.
    #[arg(long)]
    pub json: bool,
}

/// `name/` in the current directory or the nearest parent that has one.
fn find_dir(name: &str, given: Option<PathBuf>) -> Result<PathBuf> {
    find_up(given, name, |p| p.is_dir())
        .ok_or_else(|| anyhow::anyhow!("no {name}/ directory here or above; pass --{name} DIR"))
}

/// `given`, or `name` in the current directory or the nearest parent where `found` holds.
fn find_up(
    given: Option<PathBuf>,
    name: &str,
    found: impl Fn(&std::path::Path) -> bool,
) -> Option<PathBuf> {
    given.or_else(|| {
        std::env::current_dir()
            .ok()?
            .ancestors()
            .map(|d| d.join(name))
            .find(|p| found(p))
    })
}

/// A timestamp for directory names (RFC 3339, seconds, no colons).
fn stamp() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "")
}

/// The kernel named by `--kernel PATH` or `--variant NAME` (built first if the cache lacks
/// it), with its .config when one is known.
async fn target(
    kernel: Option<PathBuf>,
    variant: Option<String>,
    kernels: Option<PathBuf>,
) -> Result<crate::run::Target> {
    match (kernel, variant) {
        (Some(kernel), _) => {
            if !kernel.is_file() {
                anyhow::bail!("kernel image {} does not exist", kernel.display());
            }
            Ok(crate::run::Target {
                name: kernel.display().to_string(),
                config: crate::run::config_near(&kernel),
                vmlinux: kernel
                    .parent()
                    .map(|d| d.join("vmlinux"))
                    .filter(|p| p.is_file()),
                kernel,
            })
        }
        (None, Some(name)) => {
            let kernels = find_kernels_dir(kernels)?;
            let n = name.clone();
            let built = tokio::task::spawn_blocking(move || {
                build_variants(&kernels, &[n], &kernel::BuildOptions::default())
            })
            .await??;
            Ok(crate::run::Target {
                name,
                kernel: built[0].bzimage(),
                config: Some(built[0].dir.join(".config")),
                vmlinux: Some(built[0].dir.join("vmlinux")).filter(|p| p.is_file()),
            })
        }
        (None, None) => unreachable!("clap requires --kernel or --variant"),
    }
}

pub async fn run(args: RunArgs) -> Result<i32> {
    let scenario = crate::config::scenario::find(
        &find_dir("scenarios", args.dirs.scenarios)?,
        &args.scenario,
    )?;
    let target = target(args.kernel, args.variant, args.dirs.kernels).await?;
    let out = args.out.unwrap_or_else(|| {
        let who = target.name.rsplit('/').next().unwrap_or("kernel");
        default_run_dir(&format!("{}-{who}", scenario.name))
    });
    eprintln!(
        "lab: {} × {} on {} ({} vCPUs, {:?} each) in {}",
        args.runs,
        scenario.name,
        target.name,
        scenario.cpus,
        args.how.duration.unwrap_or(scenario.duration),
        out.display()
    );
    let pool = args.how.pool(scenario.cpus, scenario.memory_mib);
    let progress = crate::run::Progress::new(pool.jobs);
    progress.plan(args.runs, args.how.duration.unwrap_or(scenario.duration));
    let label = format!(
        "{} × {}",
        target.name.rsplit('/').next().unwrap_or("kernel"),
        scenario.name
    );
    let opts = args
        .how
        .batch(args.runs, out.clone(), &pool, &progress, label);
    let results = crate::run::batch(&scenario, &target, &opts).await;
    progress.clear();
    let results = results?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print!("{}", crate::run::summary(&scenario, &target, &results));
        println!("results: {}", out.join("runs.json").display());
    }
    let all_pass = results
        .iter()
        .all(|r| r.verdict() == crate::results::Verdict::Pass);
    Ok(if all_pass { 0 } else { 1 })
}

#[derive(clap::Args)]
pub struct NightlyArgs {
    /// The lab (default: lab.toml here or in a parent directory).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The night's directory (default: <results>/<timestamp>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override every cell's runs.
    #[arg(long)]
    pub runs: Option<u32>,
    /// Run a git source again even when its ref still points at a commit the history
    /// already has with the same plan.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub how: HowArgs,
}

pub async fn nightly(args: NightlyArgs) -> Result<i32> {
    let lab = find_lab(args.config)?;
    let file = lab.file.clone();
    let out = args.out.unwrap_or_else(|| lab.results.join(stamp()));
    eprintln!(
        "lab: night of {} ({} cells) in {}; history {}",
        file.display(),
        lab.cells.len(),
        out.display(),
        lab.history.display()
    );
    let outcome = crate::run::nightly::night(
        &lab,
        &crate::run::nightly::NightOptions {
            out: out.clone(),
            runs: args.runs,
            duration: args.how.duration,
            accel: args.how.accel,
            backend: args.how.backend,
            jobs: args.how.jobs,
            force: args.force,
        },
    )
    .await?;
    print!("{}", crate::results::night::summary_md(&outcome.results));
    println!("\nnight: {}", out.display());
    println!("report: {}", out.join("report.html").display());
    Ok(if outcome.infrastructure_failed {
        2
    } else if outcome.regressions > 0 {
        1
    } else {
        0
    })
}

#[derive(clap::Args)]
pub struct BisectArgs {
    /// The git repository (a work tree or a bare repository).
    #[arg(long)]
    pub repo: PathBuf,
    /// A commit without the race (with --fix: the newer end, where it is gone).
    #[arg(long)]
    pub good: String,
    /// A commit with the race (with --fix: the older end).
    #[arg(long)]
    pub bad: String,
    /// Scenario name (scenarios/<name>.toml).
    #[arg(long)]
    pub scenario: String,
    /// The configuration every step builds with: a variant (kernels/*.toml; its config base
    /// and fragments, not its patches), or comma-separated fragments of kernels/configs/
    /// (e.g. qemu-guest,scenarios,kasan) on allnoconfig.
    #[arg(long, default_value = "baseline")]
    pub variant_config: String,
    /// Runs at the racy end to measure the reproduction rate.
    #[arg(long, default_value_t = 5)]
    pub runs: u32,
    /// The target report's signature (default: the most frequent first report at the racy
    /// end). Other kernel reports do not make a commit racy.
    #[arg(long, conflicts_with_all = ["title_regex", "any_report"])]
    pub signature: Option<String>,
    /// The target report's title, as a regular expression.
    #[arg(long, conflicts_with = "any_report")]
    pub title_regex: Option<String>,
    /// Any kernel report makes a commit racy.
    #[arg(long)]
    pub any_report: bool,
    /// Find the commit that made the race go away.
    #[arg(long)]
    pub fix: bool,
    /// The confidence the clean verdicts together must keep.
    #[arg(long, default_value_t = 0.95)]
    pub confidence: f64,
    #[command(flatten)]
    pub how: HowArgs,
    #[command(flatten)]
    pub dirs: DataDirs,
    /// Where the state, runs and log go (default: <cache>/bisect/<scenario>-<hash>).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `--variant-config`: a variant's configuration, or fragments on allnoconfig.
fn bisect_config(
    catalog: &kernel::variant::Catalog,
    given: &str,
) -> Result<kernel::variant::Variant> {
    if catalog.names().iter().any(|n| n == given) {
        return Ok(catalog.get(given)?);
    }
    let base = catalog.get("baseline").or_else(|_| {
        catalog
            .names()
            .first()
            .map(|n| catalog.get(n))
            .unwrap_or_else(|| catalog.get(given))
    })?;
    let configs = base
        .fragments
        .first()
        .and_then(|f| f.path.parent())
        .map(std::path::Path::to_path_buf)
        .ok_or_else(|| anyhow::anyhow!("no kernels/configs/ to take fragments from"))?;
    let fragments = given
        .split(',')
        .map(|name| {
            let path = configs.join(format!("{}.config", name.trim()));
            if path.is_file() {
                Ok(kernel::variant::Fragment {
                    name: name.trim().to_string(),
                    path,
                })
            } else {
                Err(anyhow::anyhow!(
                    "--variant-config {given:?}: no variant named {name:?} and no {}; variants: {}",
                    path.display(),
                    catalog.names().join(", ")
                ))
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(kernel::variant::Variant {
        config_base: kernel::variant::ConfigBase::Allnoconfig,
        fragments,
        ..base
    })
}

pub async fn bisect(args: BisectArgs) -> Result<i32> {
    use crate::bisect::{self, TargetReport};
    let repo = args
        .repo
        .canonicalize()
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.repo.display()))?;
    if let Some(re) = &args.title_regex {
        regex::Regex::new(re).map_err(|e| anyhow::anyhow!("--title-regex: {e}"))?;
    }
    let scenario = crate::config::scenario::find(
        &find_dir("scenarios", args.dirs.scenarios)?,
        &args.scenario,
    )?;
    let catalog = kernel::variant::Catalog::load(&find_kernels_dir(args.dirs.kernels)?)?;
    let dir = match args.out {
        Some(d) => d,
        None => bisect::default_dir(&repo, &args.good, &args.bad, &scenario.name, args.fix)?,
    };
    let opts = bisect::BisectOptions {
        repo,
        good: args.good,
        bad: args.bad,
        fix: args.fix,
        config_variant: bisect_config(&catalog, &args.variant_config)?,
        scenario,
        runs: args.runs,
        target: match (args.signature, args.title_regex, args.any_report) {
            (Some(s), _, _) => Some(TargetReport::Signature(s)),
            (_, Some(re), _) => Some(TargetReport::TitleRegex(re)),
            (_, _, true) => Some(TargetReport::Any),
            _ => None,
        },
        confidence: args.confidence,
        duration: args.how.duration,
        accel: args.how.accel,
        backend: args.how.backend,
        dir: dir.clone(),
    };
    eprintln!("lab: bisecting in {}", dir.display());
    let answer = bisect::bisect(&opts).await?;
    let Some(a) = answer else {
        eprintln!(
            "lab: interrupted; state saved in {}: run the same command to resume",
            dir.display()
        );
        return Ok(1);
    };
    let table = bisect::table(&opts, &a.state)?;
    let commit = &a.state.commits[a.found];
    let subject = a
        .state
        .steps
        .iter()
        .find(|s| &s.commit == commit)
        .map(|s| s.subject.clone())
        .unwrap_or_else(|| {
            std::process::Command::new("git")
                .arg("-C")
                .arg(&opts.repo)
                .args(["log", "-1", "--format=%s", commit])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default()
        });
    let mut text = format!(
        "{table}\n{} {commit} {subject}\nconfidence {:.3} (rate at the racy end {}/{}, assumed {:.2}; {} builds)\n",
        if opts.fix { "first fixed commit:" } else { "first racy commit:" },
        a.confidence,
        a.state.rate_runs.0,
        a.state.rate_runs.1,
        a.state.plan.map_or(0.0, |p| p.rate),
        a.builds,
    );
    if !a.doubt.is_empty() {
        let short: Vec<&str> = a.doubt.iter().map(|c| &c[..12]).collect();
        text.push_str(&format!(
            "or one of these skipped commits before it: {}\n",
            short.join(", ")
        ));
    }
    print!("{text}");
    std::fs::write(dir.join("bisect.log"), &text)?;
    println!("log: {}", dir.join("bisect.log").display());
    Ok(0)
}

#[derive(clap::Args)]
pub struct HistoryArgs {
    /// The lab whose history to read (default: lab.toml here or in a parent directory).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub variant: Option<String>,
    #[arg(long)]
    pub scenario: Option<String>,
}

fn find_lab(config: Option<PathBuf>) -> Result<crate::config::lab::LabConfig> {
    let file = find_up(config, "lab.toml", |p| p.is_file())
        .ok_or_else(|| anyhow::anyhow!("no lab.toml here or above; pass --config FILE"))?;
    let file = file
        .canonicalize()
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    Ok(crate::config::lab::LabConfig::load(
        &file,
        crate::config::lab::variant_names,
        crate::config::scenario::names,
    )?)
}

pub fn history(args: HistoryArgs) -> Result<i32> {
    let lab = find_lab(args.config)?;
    if !lab.history.is_file() {
        anyhow::bail!(
            "no history at {} yet: run lab nightly first",
            lab.history.display()
        );
    }
    let h = crate::results::history::History::open(&lab.history)?;
    let rows = h.trend(args.variant.as_deref(), args.scenario.as_deref())?;
    println!("| night | started | variant | scenario | failed/runs | first reports |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        let titles: Vec<String> = r.titles.iter().map(|(t, n)| format!("{t} ({n})")).collect();
        println!(
            "| {} | {} | {} | {} | {}/{} | {} |",
            r.night,
            r.started,
            r.variant,
            r.scenario,
            r.failed,
            r.runs,
            if titles.is_empty() {
                "-".to_string()
            } else {
                titles.join("; ")
            }
        );
    }
    Ok(0)
}

#[derive(clap::Args)]
pub struct CompareArgs {
    /// Variants, comma-separated; the first is the reference (e.g. the unfixed kernel).
    /// Default: lab.toml's [compare] section.
    #[arg(long, value_delimiter = ',')]
    pub variants: Vec<String>,
    /// Scenario name (scenarios/<name>.toml). Default: lab.toml's [compare].
    #[arg(long)]
    pub scenario: Option<String>,
    /// Runs per variant (default: lab.toml's [compare], else 10).
    #[arg(long)]
    pub runs: Option<u32>,
    /// The lab whose [compare] section gives the defaults (default: lab.toml here or above).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Make N new runs per variant instead of reusing stored runs of the same kernel,
    /// scenario and duration (the new runs are stored too).
    #[arg(long)]
    pub fresh: bool,
    #[command(flatten)]
    pub how: HowArgs,
    #[command(flatten)]
    pub dirs: DataDirs,
    /// Where runs are stored and reused, one batch per variant's kernel and scenario
    /// (default: <cache>/compare).
    #[arg(long)]
    pub store: Option<PathBuf>,
}

pub async fn compare(args: CompareArgs) -> Result<i32> {
    use crate::results::compare;
    let lab = match (
        &args.config,
        args.variants.is_empty() || args.scenario.is_none(),
    ) {
        (None, false) => None,
        (config, _) => Some(find_lab(config.clone())?),
    };
    let defaults = lab.as_ref().and_then(|l| l.compare.clone());
    let (variants, scenario_name) = match (&defaults, args.variants.is_empty(), &args.scenario) {
        (_, false, Some(s)) => (args.variants.clone(), s.clone()),
        (Some(d), empty, s) => (
            if empty {
                d.variants.clone()
            } else {
                args.variants.clone()
            },
            s.clone().unwrap_or_else(|| d.scenario.clone()),
        ),
        (None, _, _) => anyhow::bail!(
            "name --variants A,B and --scenario S, or give lab.toml a [compare] section"
        ),
    };
    let runs = args
        .runs
        .or(defaults.as_ref().map(|d| d.runs))
        .unwrap_or(10);
    let kernels = args
        .dirs
        .kernels
        .clone()
        .or(lab.as_ref().map(|l| l.kernels.clone()));
    let scenarios = args
        .dirs
        .scenarios
        .clone()
        .or(lab.as_ref().map(|l| l.scenarios.clone()));
    let scenario =
        crate::config::scenario::find(&find_dir("scenarios", scenarios)?, &scenario_name)?;
    let key = crate::run::scenario_key(&scenario, args.how.duration)?;
    let store = args
        .store
        .clone()
        .unwrap_or_else(|| cache::root().join("compare"))
        .join(format!("{}-{key}", scenario.name));

    // Every kernel first (builds can take minutes), then the runs.
    let mut targets = Vec::new();
    for variant in &variants {
        let target = target(None, Some(variant.clone()), kernels.clone()).await?;
        let id = target
            .kernel
            .parent()
            .and_then(|d| d.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = store.join(format!("{variant}-{id}"));
        let before = crate::run::stored(&dir)?;
        let reuse = if args.fresh {
            0
        } else {
            before
                .iter()
                .filter(|r| r.evidence.counts())
                .count()
                .min(runs as usize)
        };
        if reuse > 0 {
            eprintln!(
                "lab: {variant}: reusing {reuse} stored runs from {}",
                dir.display()
            );
        }
        targets.push((variant.clone(), target, dir, before, runs - reuse as u32));
    }
    let duration = args.how.duration.unwrap_or(scenario.duration);
    let pool = args.how.pool(scenario.cpus, scenario.memory_mib);
    let progress = crate::run::Progress::new(pool.jobs);
    for (_, _, _, _, need) in &targets {
        progress.plan(*need, duration);
    }
    eprintln!(
        "lab: {runs} × {} per variant ({duration:?} each, {} VM(s) at a time) in {}",
        scenario.name,
        pool.jobs,
        store.display()
    );
    let batches = targets.iter().map(|(variant, target, dir, before, need)| {
        let mut opts = args.how.batch(
            *need,
            dir.clone(),
            &pool,
            &progress,
            format!("{variant} × {}", scenario.name),
        );
        opts.append = true;
        let scenario = &scenario;
        async move {
            if *need == 0 {
                return Ok(before.clone());
            }
            crate::run::batch(scenario, target, &opts).await
        }
    });
    let done = futures::future::join_all(batches).await;
    progress.clear();
    let mut arms = Vec::new();
    for ((variant, _, _, before, _), all) in targets.iter().zip(done) {
        let all = all?;
        let new = &all[before.len().min(all.len())..];
        let results = if args.fresh {
            new.to_vec()
        } else {
            let mut kept: Vec<_> = all
                .iter()
                .filter(|r| r.evidence.counts())
                .take(runs as usize)
                .cloned()
                .collect();
            kept.extend(new.iter().filter(|r| !r.evidence.counts()).cloned());
            kept
        };
        arms.push(compare::Arm {
            name: variant.clone(),
            results,
        });
    }
    let rows = compare::rows(&arms);
    println!("{} — {}\n", scenario.name, scenario.description);
    print!("{}", compare::table(&rows));
    if let Some(first) = rows.first() {
        for r in rows.iter().skip(1) {
            for (check, a, b) in compare::uapi_differences(first, r) {
                println!("{}: {check}: {a} → {b}", r.name);
            }
        }
    }
    println!();
    for line in compare::verdicts(&rows) {
        println!("{line}");
    }
    println!("runs: {}", store.display());
    Ok(0)
}

#[derive(clap::Args)]
pub struct BuildArgs {
    /// Variants to build (default: every kernels/*.toml).
    pub variants: Vec<String>,
    /// Parallel make jobs (default: host cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Rebuild even when the cache has the variant.
    #[arg(long)]
    pub force: bool,
    /// Directory of variant definitions (default: kernels/ here or in a parent directory).
    #[arg(long)]
    pub kernels: Option<PathBuf>,
    /// Print what was built (metadata, cache hit, directory) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `kernels/` in the current directory or the nearest parent that has one.
pub fn find_kernels_dir(given: Option<PathBuf>) -> Result<PathBuf> {
    find_dir("kernels", given)
}

/// Build the named variants (or all), printing one line each.
pub fn build_variants(
    kernels: &std::path::Path,
    names: &[String],
    opts: &kernel::BuildOptions,
) -> Result<Vec<kernel::Built>> {
    let catalog = kernel::variant::Catalog::load(kernels)?;
    let names = if names.is_empty() {
        catalog.names()
    } else {
        names.to_vec()
    };
    let mut built = Vec::new();
    for name in names {
        let variant = catalog.get(&name)?;
        let b = kernel::build(&variant, opts)?;
        eprintln!("{name}: {}", kernel::describe(&b));
        built.push(b);
    }
    Ok(built)
}

pub async fn build(args: BuildArgs) -> Result<i32> {
    let kernels = find_kernels_dir(args.kernels)?;
    let mut opts = kernel::BuildOptions {
        force: args.force,
        ..Default::default()
    };
    if let Some(jobs) = args.jobs {
        opts.jobs = jobs;
    }
    let names = args.variants;
    let built =
        tokio::task::spawn_blocking(move || build_variants(&kernels, &names, &opts)).await??;
    if args.json {
        let list: Vec<serde_json::Value> = built
            .iter()
            .map(|b| {
                serde_json::json!({
                    "variant": b.metadata.variant,
                    "cache_hit": b.cache_hit,
                    "elapsed_s": b.elapsed_s,
                    "dir": b.dir,
                    "metadata": b.metadata,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
    }
    Ok(0)
}

fn parse_param(s: &str) -> Result<(String, serde_json::Value), String> {
    let (k, v) = s.split_once('=').ok_or("expected KEY=VALUE")?;
    let value = serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.into()));
    Ok((k.to_string(), value))
}

fn parse_extra(s: &str) -> Result<(String, PathBuf), String> {
    let (guest, host) = s.split_once('=').ok_or("expected GUEST_PATH=HOST_PATH")?;
    let host = PathBuf::from(host);
    if !host.is_file() {
        return Err(format!("{} is not a file", host.display()));
    }
    Ok((guest.to_string(), host))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (expected e.g. 5s, 500ms, 2m)"))
}

#[derive(clap::Args)]
pub struct BootArgs {
    /// Kernel image to boot (bzImage or a distro vmlinuz).
    #[arg(long, required_unless_present = "variant", conflicts_with = "variant")]
    pub kernel: Option<PathBuf>,
    /// Boot a variant from kernels/*.toml instead (built first if the cache lacks it).
    #[arg(long)]
    pub variant: Option<String>,
    /// Directory of variant definitions, for --variant.
    #[arg(long)]
    pub kernels: Option<PathBuf>,
    /// vCPUs.
    #[arg(long, default_value_t = 2)]
    pub cpus: u32,
    /// Guest memory (512M, 1G, ...).
    #[arg(long, default_value = "1G", value_parser = units::parse_mib)]
    pub memory: u64,
    /// Accelerator: auto uses KVM only where a probe guest runs under it.
    #[arg(long, value_enum, default_value_t = AccelChoice::Auto)]
    pub accel: AccelChoice,
    /// Which program starts the guest.
    #[arg(long, value_enum, default_value_t = Backend::Qemu)]
    pub backend: Backend,
    /// Whole-run limit (default: boot timeout + duration + heartbeat timeout).
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Longest wait from QEMU's start to the agent's hello.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub boot_timeout: Duration,
    /// Longest silence from the agent once it is up before the run counts as hung.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub heartbeat_timeout: Duration,
    /// Extra kernel command line.
    #[arg(long, default_value = "")]
    pub cmdline: String,
    /// Workload the agent runs: syscall_count, hang, sysrq_crash.
    #[arg(long, default_value = "syscall_count")]
    pub workload: String,
    /// How long the workload runs.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Worker threads (default: one per vCPU).
    #[arg(long)]
    pub threads: Option<u32>,
    /// Workload parameter KEY=VALUE (VALUE parsed as JSON when it is JSON); repeatable.
    #[arg(long = "param", value_parser = parse_param)]
    pub params: Vec<(String, serde_json::Value)>,
    /// Add a host file to the initramfs as GUEST_PATH=HOST_PATH (executable); repeatable.
    #[arg(long = "extra", value_parser = parse_extra)]
    pub extras: Vec<(String, PathBuf)>,
    /// Run directory (default: a new one under the cache's runs/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print outcome.json instead of the summary.
    #[arg(long)]
    pub json: bool,
}

fn default_run_dir(kind: &str) -> PathBuf {
    cache::root()
        .join("runs")
        .join(format!("{kind}-{}-{}", stamp(), std::process::id()))
}

pub async fn boot(args: BootArgs) -> Result<i32> {
    let run_dir = args.out.unwrap_or_else(|| default_run_dir("boot"));
    let kernel = target(args.kernel, args.variant, args.kernels)
        .await?
        .kernel;
    let spec = BootSpec {
        kernel,
        cpus: args.cpus,
        memory_mib: args.memory,
        accel: args.accel,
        backend: args.backend,
        cmdline_extra: args.cmdline,
        request: RunRequest {
            workload: args.workload,
            duration_ms: args.duration.as_millis() as u64,
            heartbeat_ms: 500,
            threads: args.threads,
            params: args.params.into_iter().collect(),
        },
        boot_timeout: args.boot_timeout,
        heartbeat_timeout: args.heartbeat_timeout,
        timeout: args.timeout,
        run_dir: run_dir.clone(),
        extra_files: args.extras,
    };
    eprintln!(
        "lab: booting {} ({} vCPUs, {} MiB, {:?} backend) in {}",
        spec.kernel.display(),
        spec.cpus,
        spec.memory_mib,
        spec.backend,
        run_dir.display()
    );
    let record = session::run(&spec, Vec::new()).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        print!("{}", crate::vm::summary::render(&record, &run_dir));
    }
    Ok(
        if record.outcome == crate::vm::outcome::Outcome::Completed {
            0
        } else {
            1
        },
    )
}
