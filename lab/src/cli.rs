//! Command line: argument definitions, and one dispatch arm per subcommand that hands the
//! arguments to the module that does the work and its result to `ui`.

use crate::run::{How, Target};
use crate::{
    bisect, cache, compare, config, explore, kernel, nightly, report, results, run, ui, vm,
};
use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

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
    /// lost agent, QEMU exited), 2 when the lab itself failed, 130 when interrupted.
    Boot(run::boot::Args),
    /// Build kernel variants (kernels/*.toml) into the cache; unchanged ones are cache hits.
    ///
    /// Variants of one source share a work tree and an object tree, so a variant that differs
    /// from an already built one by a patch rebuilds only the files the patch touches.
    Build(BuildArgs),
    /// Run a scenario (scenarios/*.toml) on a variant or any kernel, N times.
    ///
    /// The variant is built first if the cache lacks it. A kernel whose .config lacks an
    /// option the scenario requires is skipped ("skipped: needs CONFIG_X") without booting.
    /// Exit status: 0 when every run passed, 1 otherwise, 2 when the lab itself failed,
    /// 130 when interrupted.
    Run(RunArgs),
    /// Search for an interleaving of a race scenario's threads that makes the kernel report,
    /// and write it as a scenario with a [schedule] that `lab run`, compare, nightly and bisect
    /// use as any other.
    ///
    /// Where to stop comes from a report (--from: the functions of its stacks), from what each
    /// role's thread is seen executing (the machine is sampled, then each candidate is probed
    /// on each role), and from --at hints. Interleavings are tried smallest first (two steps,
    /// then three), ranked by their locations' scores, each once; every attempt is recorded in
    /// <dir>/explore.json and the runs beside it. At the first report with the title looked
    /// for, the scenario is written and re-run (--confirm) to measure how often it reproduces
    /// at its first applied attempt. With nothing within the budget, the answer says how many
    /// distinct interleavings ran applied and the kernel survived. Exit status: 0 found, 1
    /// nothing found within the budget, 2 the lab failed, 130 interrupted.
    Explore(explore::Args),
    /// Prove that the kernel's detectors fire on a machine: one fault per detector provoked
    /// through LKDTM (KASAN: a use-after-free; WARNING; a hung task; a soft lockup), each in a
    /// guest of its own, on the machine of --scenario (its vCPUs, memory, command line and
    /// kernel parameters) or the lab's default one. Prints a table of what each detector was
    /// expected to print and what it printed, and writes canary.json to the batch directory
    /// and beside the machine's snapshot. Exit status: 0 when every detector fired, 1 when one
    /// did not, 2 when the lab failed.
    Canary(CanaryArgs),
    /// Run one scenario on several variants and compare them: detection rate with a 95 %
    /// Wilson interval, Fisher's exact p against the first variant, median time to the first
    /// report, distinct report titles, throughput and its overhead, and for uapi scenarios
    /// every check whose value differs from the first variant's. Ends with a verdict per
    /// variant in plain words. Runs are stored per kernel, scenario and duration and reused
    /// when asked again; with no --variants/--scenario, lab.toml's [compare] says what to run.
    /// A run the machine saw hang is a finding with its own title, not a clean run.
    Compare(compare::Args),
    /// Run the lab's matrix (lab.toml): resolve git sources to commits (a commit already
    /// tested with the same plan is skipped unless --force), build every variant (cached), run
    /// every variant × scenario cell on a pool of VMs sized to the host (--jobs), store the
    /// runs in the SQLite history and compare each cell with its last comparable night.
    /// Writes results.json, junit.xml, summary.md and report.html to the night's directory and
    /// prints the summary. Exit status: 0 no regression, 1 a new report signature
    /// (regression), 2 infrastructure failure (a build broke, VMs said nothing), 130
    /// interrupted (nothing is recorded in the history).
    Nightly(NightlyArgs),
    /// Put the shards of one night (`lab nightly --shard K/N` on N machines) back together
    /// into one night, as if one machine had run it.
    ///
    /// The shards must belong to one plan (the same lab.toml content, the same commits, the
    /// same scenario files, runs and durations) and be N distinct shards, none missing; a
    /// missing, duplicated or foreign shard is refused by name. The runs are copied into one
    /// night directory laid out as `lab nightly`'s (results.json, junit.xml, summary.md,
    /// report.html, <variant>/<scenario>/run-NNN), then recorded in lab.toml's history and
    /// compared with the last comparable night, once. Exit status as `lab nightly`'s.
    Merge(MergeArgs),
    /// Write a night in another system's format.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Find the commit that brought a race in (or, with --fix, took it out), flaky-aware.
    ///
    /// The racy end (--bad) is built and run --runs times first: the rate the target report
    /// shows at there (its 95 % lower bound; with a schedule, per applied attempt) decides
    /// how many clean runs (applied attempts) make a commit clean, so that all clean verdicts
    /// together keep --confidence. A commit is racy at its first target report; a commit
    /// that does not build, or whose runs say nothing, is skipped. The answer says "could not
    /// decide", with the range left, when a skipped commit could be it instead or the
    /// confidence is below --confidence. State and runs are saved after every run: the same
    /// command resumes after Ctrl-C. Exit status: 0 answered, 2 error, 130 interrupted (no
    /// verdict is stored for the commit it cut).
    Bisect(bisect::Args),
    /// The trend of a cell (or of every cell) over the stored nights: runs, failures, and
    /// the first-report titles with how many runs printed each.
    History(HistoryArgs),
    /// What the lab's cache holds and what it costs on disk (kernels, guest snapshots, object
    /// trees, bisections, work trees, runs), against lab.toml's `[cache] limit`; `lab cache
    /// prune` evicts the least recently used kernels, snapshots, object trees and bisections
    /// until the cache fits (a night does the same when it ends, sparing what it used).
    Cache(CacheArgs),
    /// Kernel reports in console logs.
    #[command(subcommand)]
    Report(ReportCommand),
}

#[derive(Subcommand)]
pub enum ExportCommand {
    /// KCIDB v5 JSON (KernelCI's common database): a checkout per source and patch series,
    /// a build per kernel, a test per run (path `lab.<scenario>.<variant>`, status
    /// PASS/FAIL/ERROR/MISS/SKIP; a suite's tests below it), an issue per kernel report
    /// signature and an incident per run that printed it. Submit it with `kcidb-submit`.
    Kcidb {
        /// The night's directory (the one with results.json).
        night: PathBuf,
        /// KCIDB origin: the name of the CI system submitting (lowercase, digits, _).
        #[arg(long, default_value = "kernel_race_lab")]
        origin: String,
        /// Where the night's directory is published; log URLs are made from it (default:
        /// file:// URLs of the directory here).
        #[arg(long, value_name = "URL")]
        log_base: Option<String>,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
pub struct MergeArgs {
    /// The shards' night directories (each the --out of one `lab nightly --shard K/N`).
    #[arg(required = true, value_name = "SHARD_DIR")]
    pub shards: Vec<PathBuf>,
    /// The lab whose history records the night (default: lab.toml here or in a parent
    /// directory).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The merged night's directory (default: <results>/<timestamp>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Merge the shards that are there when some are missing: the night is marked
    /// incomplete (and exits 2).
    #[arg(long)]
    pub allow_partial: bool,
    /// How the merged night's bisections (lab.toml's [bisect]) run: the merge bisects the
    /// night's regressions and fixes on git sources; the shards never do.
    #[command(flatten)]
    pub how: run::How,
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

#[derive(clap::Args)]
pub struct RunArgs {
    /// Variant from kernels/*.toml (`NAME+kcsan`: built with KCSAN, see --detector).
    #[arg(long, required_unless_present = "kernel", conflicts_with = "kernel")]
    pub variant: Option<String>,
    /// The variant built with this detector: kasan (memory safety, the default fragments')
    /// or kcsan (data races; its own build of the variant, KCSAN in place of KASAN).
    #[arg(long, requires = "variant", value_parser = config::detector::parser())]
    pub detector: Option<String>,
    /// Any kernel image instead of a variant (its .config is looked for next to it, or as
    /// /boot/config-* for /boot/vmlinuz-*).
    #[arg(long)]
    pub kernel: Option<PathBuf>,
    /// Scenario name (scenarios/<name>.toml).
    #[arg(long, required_unless_present = "repro", conflicts_with = "repro")]
    pub scenario: Option<String>,
    /// A C reproducer (syzbot's style: threads, no harness) instead of a scenario: compiled
    /// with `gcc -O2 -pthread -static` against the variant's UAPI headers, run for the
    /// duration (started again when it exits), judged by the kernel reports it causes
    /// (2 vCPUs, 1 GiB, 30 s unless --duration).
    #[arg(long, value_name = "FILE.c")]
    pub repro: Option<PathBuf>,
    /// How many runs (1 to 100000).
    #[arg(long, default_value = "1")]
    pub runs: runner::quantity::RunCount,
    #[command(flatten)]
    pub how: How,
    #[command(flatten)]
    pub dirs: config::locate::Dirs,
    /// Batch directory (default: a new one under the cache's runs/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print runs.json's content instead of the summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct CanaryArgs {
    /// Variant from kernels/*.toml (`NAME+kcsan` for its KCSAN build).
    #[arg(long, required_unless_present = "kernel", conflicts_with = "kernel")]
    pub variant: Option<String>,
    /// Any kernel image instead (it must have CONFIG_LKDTM).
    #[arg(long)]
    pub kernel: Option<PathBuf>,
    /// The scenario whose machine is probed (default: 2 vCPUs, 1 GiB, no extra command line).
    #[arg(long)]
    pub scenario: Option<String>,
    #[command(flatten)]
    pub how: How,
    #[command(flatten)]
    pub dirs: config::locate::Dirs,
    /// Batch directory (default: a new one under the cache's runs/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct NightlyArgs {
    /// The lab (default: lab.toml here or in a parent directory).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The night's directory (default: <results>/<timestamp>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override every cell's runs (1 to 100000).
    #[arg(long)]
    pub runs: Option<runner::quantity::RunCount>,
    /// Run a git source again even when its ref still points at a commit the history
    /// already has with the same plan.
    #[arg(long)]
    pub force: bool,
    /// Run shard K of N (1-based): a fixed share of the night's runs (not just cells, so one
    /// cell's runs can spread over many machines), building only the variants they need.
    /// Leaves a partial night for `lab merge` and touches no history. Without the flag the
    /// share is read from the CI engine: LAB_SHARD_INDEX (1-based) with LAB_SHARD_COUNT
    /// (e.g. a GitHub Actions matrix), GitLab's CI_NODE_INDEX with CI_NODE_TOTAL
    /// (`parallel:`), or Kubernetes' JOB_COMPLETION_INDEX (0-based) with LAB_SHARD_COUNT.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<nightly::ShardSpec>,
    /// Balance the shards by what each cell's runs took in an earlier night of this lab
    /// (its directory, whole or merged) instead of by scenario durations. Every shard of a
    /// night must be given the same one (`lab merge` refuses shards balanced otherwise).
    #[arg(long, value_name = "NIGHT_DIR")]
    pub costs: Option<PathBuf>,
    #[command(flatten)]
    pub how: How,
}

#[derive(clap::Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub action: Option<CacheAction>,
    /// The lab whose `[cache] limit` applies (default: lab.toml here or in a parent
    /// directory; without one, 20G).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// The size limit instead of lab.toml's ("20G", "500M").
    #[arg(long, global = true, value_parser = crate::units::parse_mib)]
    pub limit: Option<u64>,
}

#[derive(Subcommand)]
pub enum CacheAction {
    /// Evict the least recently used kernels, snapshots, object trees and bisections until
    /// the cache fits the limit (an entry used in the last hour, or whose lock another lab
    /// process holds, is left alone).
    Prune,
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

#[derive(clap::Args)]
pub struct BuildArgs {
    /// Variants to build (default: every kernels/*.toml). `NAME+kcsan` is the variant built
    /// with KCSAN in place of KASAN (see --detector).
    pub variants: Vec<String>,
    /// Build each variant with these detectors, comma-separated: kasan (memory safety: the
    /// default fragments') and kcsan (data races). KCSAN cannot share a kernel with KASAN:
    /// each detector is its own configuration and object tree (a cold build the first time).
    #[arg(long = "detector", value_delimiter = ',', value_parser = config::detector::parser())]
    pub detectors: Vec<String>,
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
    /// Do not run the detector canary on each kernel built (it runs once per kernel on the
    /// lab's default machine, about 40 s under TCG, and is cached; runs on a kernel with no
    /// canary run it themselves).
    #[arg(long)]
    pub no_canary: bool,
}

fn json<T: serde::Serialize>(value: &T) -> Result<String> {
    Ok(serde_json::to_string_pretty(value)? + "\n")
}

/// Run one subcommand; its exit status.
pub async fn dispatch(command: Command) -> Result<i32> {
    match command {
        Command::Boot(a) => {
            let as_json = a.json;
            let (record, dir) = run::boot::boot(a).await?;
            ui::print(&match as_json {
                true => json(&record)?,
                false => ui::record::render(&record, &dir),
            });
            Ok(i32::from(record.outcome != vm::outcome::Outcome::Completed))
        }
        Command::Build(a) => {
            let kernels = config::locate::dir("kernels", a.kernels)?;
            let mut opts = kernel::BuildOptions {
                force: a.force,
                ..Default::default()
            };
            opts.jobs = a.jobs.unwrap_or(opts.jobs);
            let (names, detectors) = (a.variants, a.detectors);
            let built = tokio::task::spawn_blocking(move || {
                kernel::build_named(&kernels, &names, &detectors, &opts)
            })
            .await??;
            if a.json {
                ui::print(&json(&kernel::json(&built))?);
            }
            let proven =
                a.no_canary || run::canary::after_build(&built, run::How::default()).await?;
            Ok(i32::from(!proven))
        }
        Command::Run(a) => {
            let scenario = match (&a.repro, &a.scenario) {
                (Some(file), _) => config::scenario::repro(file)?,
                (None, Some(name)) => config::locate::scenario(a.dirs.scenarios, name)?,
                (None, None) => unreachable!("clap requires one"),
            };
            let variant = a
                .variant
                .map(|v| config::detector::with(&v, a.detector.as_deref()));
            let target = Target::resolve(a.kernel, variant, a.dirs.kernels).await?;
            let who = target.name.rsplit('/').next().unwrap_or("kernel");
            let out = cache::out_or_run_dir(a.out, &format!("{}-{who}", scenario.name))?;
            let suppressions = config::locate::suppressions(a.dirs.suppressions)?;
            let results =
                run::runs(&scenario, &target, a.runs, a.how, out.clone(), suppressions).await?;
            ui::print(&if a.json {
                json(&results)?
            } else {
                let summary = ui::batch::summary(&scenario, &target, &results);
                format!("{summary}results: {}\n", out.join("runs.json").display())
            });
            Ok(if run::all_pass(&results) { 0 } else { 1 })
        }
        Command::Explore(a) => explore_cmd(a).await,
        Command::Canary(a) => {
            let base = match &a.scenario {
                Some(name) => Some(config::locate::scenario(a.dirs.scenarios.clone(), name)?),
                None => None,
            };
            let target = Target::resolve(a.kernel, a.variant, a.dirs.kernels).await?;
            let who = target.name.rsplit('/').next().unwrap_or("kernel");
            let out = cache::out_or_run_dir(a.out, &format!("canary-{who}"))?;
            let canary = run::canary::on_demand(&target, base.as_ref(), a.how, &out).await?;
            ui::print(&ui::canary::table(&canary, &out));
            Ok(i32::from(!canary.passed()))
        }
        Command::Compare(a) => {
            let request = compare::request(a)?;
            let comparison = compare::compare(&request).await?;
            ui::print(&ui::compare::render(&comparison));
            Ok(comparison.exit_status())
        }
        Command::Nightly(a) => nightly(a).await,
        Command::Merge(a) => merge(a).await,
        Command::Export(ExportCommand::Kcidb {
            night,
            origin,
            log_base,
            out,
        }) => export_kcidb(&night, &origin, log_base.as_deref(), out),
        Command::Bisect(a) => bisect(a).await,
        Command::History(a) => {
            let lab = config::locate::lab(a.config)?;
            let h = results::history::History::open_existing(&lab.history)?;
            let rows = h.trend(a.variant.as_deref(), a.scenario.as_deref())?;
            ui::print(&results::render::history::table(&rows));
            Ok(0)
        }
        Command::Cache(a) => cache(a),
        Command::Report(ReportCommand::Html { night }) => {
            ui::print(&format!(
                "{}\n",
                results::render::html::rewrite(&night)?.display()
            ));
            Ok(0)
        }
        Command::Report(ReportCommand::Parse {
            console,
            json: as_json,
            vmlinux,
        }) => {
            let (reports, more) = report::parse_file(&console, vmlinux.as_deref())?;
            if more > 0 {
                crate::events::note(format!(
                    "{more} more reports after the first {} are not shown",
                    reports.len()
                ));
            }
            ui::print(&if as_json {
                json(&reports)?
            } else {
                ui::listing::listing(&console, &reports, vmlinux.is_some())
            });
            Ok(0)
        }
    }
}

async fn explore_cmd(a: explore::Args) -> Result<i32> {
    let record = explore::explore(a).await?;
    let Some(outcome) = record.outcome.as_ref() else {
        ui::print(&ui::explore::candidates(&record.search));
        return Ok(0);
    };
    ui::print(&format!("{}\n", outcome.sentence()));
    Ok(i32::from(!matches!(
        outcome,
        explore::Outcome::Found { .. }
    )))
}

fn cache(a: CacheArgs) -> Result<i32> {
    let (limit, from) = match (a.limit, config::locate::lab(a.config)) {
        (Some(mib), _) => (mib, "--limit".to_string()),
        (None, Ok(lab)) => (lab.cache_limit_mib, lab.file.display().to_string()),
        (None, Err(_)) => (
            config::lab::DEFAULT_CACHE_LIMIT_MIB,
            "the default: no lab.toml".into(),
        ),
    };
    let root = cache::root();
    match a.action {
        None => ui::print(&ui::cache::usage(&cache::evict::usage(&root), limit, &from)),
        Some(CacheAction::Prune) => {
            // What a running lab may still need: used in the last hour, or locked.
            let since = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
            let out = cache::evict::evict(&root, limit << 20, since)?;
            ui::print(&ui::cache::pruned(&out, limit));
        }
    }
    Ok(0)
}

async fn nightly(a: NightlyArgs) -> Result<i32> {
    let lab = config::locate::lab(a.config)?;
    // Every refusal comes before the night's directory is made.
    let shard = nightly::shard::resolve(a.shard)?;
    let out = nightly::night_dir(&lab, a.out)?;
    let opts = nightly::NightOptions {
        out: out.clone(),
        runs: a.runs,
        how: a.how,
        force: a.force,
        shard,
        costs: a.costs,
    };
    let night = nightly::night(&lab, &opts).await.inspect_err(|_| {
        // A night refused before it ran anything leaves no empty directory behind
        // (remove_dir removes only an empty one).
        let _ = std::fs::remove_dir(&out);
    })?;
    ui::print(&ui::night(&night.results, &out));
    Ok(night.exit_status())
}

async fn merge(a: MergeArgs) -> Result<i32> {
    let lab = config::locate::lab(a.config)?;
    let out = nightly::night_dir(&lab, a.out)?;
    let opts = nightly::merge::MergeOptions {
        shards: a.shards,
        out: out.clone(),
        allow_partial: a.allow_partial,
        how: a.how,
    };
    let night = nightly::merge::merge(&lab, &opts).await?;
    ui::print(&ui::night(&night.results, &out));
    Ok(night.exit_status())
}

fn export_kcidb(
    night: &std::path::Path,
    origin: &str,
    log_base: Option<&str>,
    out: Option<PathBuf>,
) -> Result<i32> {
    let json = results::render::kcidb::export_dir(night, origin, log_base)?;
    match out {
        Some(file) => {
            crate::files::write(&file, json)?;
            crate::events::note(format!("KCIDB JSON in {}", file.display()));
        }
        None => ui::print(&json),
    }
    Ok(0)
}

async fn bisect(a: bisect::Args) -> Result<i32> {
    let opts = a.options()?;
    let dir = opts.dir.clone();
    crate::events::note(format!("bisecting in {}", dir.display()));
    let Some(answer) = bisect::bisect(&opts).await? else {
        crate::events::note(format!(
            "state saved in {}: run the same command to resume",
            dir.display()
        ));
        return Err(crate::interrupt::Interrupted.into());
    };
    let text = ui::bisect::answer_text(&opts, &answer)?;
    crate::files::write(dir.join("bisect.log"), &text)?;
    ui::print(&format!(
        "{text}log: {}\n",
        dir.join("bisect.log").display()
    ));
    Ok(0)
}
