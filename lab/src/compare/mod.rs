//! `lab compare`: one scenario on several variants, side by side. Every variant's kernel is
//! built first (builds can take minutes), then the runs: stored runs of the same kernel,
//! scenario and duration are reused and only what is missing is run, all variants' runs on
//! one pool so they interleave. The statistics and the table are `results::compare`'s.

use crate::config::lab::Compare as Defaults;
use crate::config::scenario::Scenario;
use crate::results::compare::{self as stats, Arm, Row};
use crate::run::{self, BatchOptions, How, Pool, Progress, RunResult, Target};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Runs per variant when neither the command line nor lab.toml says.
pub const DEFAULT_RUNS: u32 = 10;

pub struct Request {
    /// The first is the reference (e.g. the unfixed kernel).
    pub variants: Vec<String>,
    pub scenario: Scenario,
    pub runs: runner::quantity::RunCount,
    pub kernels: PathBuf,
    /// Where runs are stored and reused (one batch per variant's kernel and scenario).
    pub store: PathBuf,
    /// Make `runs` new runs per variant instead of reusing stored ones.
    pub fresh: bool,
    pub how: How,
    /// Reports left out of verdicts.
    pub suppressions: std::sync::Arc<crate::config::suppress::Suppressions>,
}

/// `lab compare`'s flags; what they leave out comes from lab.toml.
#[derive(clap::Args)]
pub struct Args {
    /// Variants, comma-separated; the first is the reference (e.g. the unfixed kernel).
    /// Default: lab.toml's [compare] section.
    #[arg(long, value_delimiter = ',')]
    pub variants: Vec<String>,
    /// Compare each variant under these detectors, comma-separated (kasan,kcsan): a row per
    /// variant × detector, and a table with a column per detector. Default: lab.toml's
    /// [compare] detectors, else each variant's own (kasan).
    #[arg(long = "detector", value_delimiter = ',', value_parser = crate::config::detector::parser())]
    pub detectors: Vec<String>,
    /// Scenario name (scenarios/<name>.toml). Default: lab.toml's [compare].
    #[arg(long)]
    pub scenario: Option<String>,
    /// Runs per variant (default: lab.toml's [compare], else 10; at least one).
    #[arg(long)]
    pub runs: Option<runner::quantity::RunCount>,
    /// The lab whose [compare] section gives the defaults (default: lab.toml here or above).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Make N new runs per variant instead of reusing stored runs of the same kernel,
    /// scenario and duration (the new runs are stored too).
    #[arg(long)]
    pub fresh: bool,
    #[command(flatten)]
    pub how: How,
    #[command(flatten)]
    pub dirs: crate::config::locate::Dirs,
    /// Where runs are stored and reused, one batch per variant's kernel and scenario
    /// (default: <cache>/compare).
    #[arg(long)]
    pub store: Option<PathBuf>,
}

/// The comparison asked for: explicit flags win over lab.toml's [compare] and directories.
pub fn request(a: Args) -> Result<Request> {
    let lab = match (&a.config, a.variants.is_empty() || a.scenario.is_none()) {
        (None, false) => None,
        (given, _) => Some(crate::config::locate::lab(given.clone())?),
    };
    let (variants, scenario, runs) = names(
        a.variants,
        a.scenario,
        a.runs,
        lab.as_ref().and_then(|l| l.compare.as_ref()),
    )?;
    let variants = crate::config::detector::expand(&variants, &a.detectors);
    let dir = |name: &str, given: Option<PathBuf>, from_lab: Option<&PathBuf>| {
        crate::config::locate::dir(name, given.or(from_lab.cloned()))
    };
    let scenarios = dir(
        "scenarios",
        a.dirs.scenarios,
        lab.as_ref().map(|l| &l.scenarios),
    )?;
    Ok(Request {
        variants,
        scenario: crate::config::scenario::find(&scenarios, &scenario)?,
        runs,
        kernels: dir("kernels", a.dirs.kernels, lab.as_ref().map(|l| &l.kernels))?,
        store: a
            .store
            .unwrap_or_else(|| crate::cache::root().join("compare")),
        fresh: a.fresh,
        how: a.how,
        suppressions: std::sync::Arc::new(match (a.dirs.suppressions, &lab) {
            (None, Some(lab)) => lab.suppressions.clone(),
            (given, _) => crate::config::locate::suppressions(given)?,
        }),
    })
}

/// (variants, scenario, runs): the command line's where given, else lab.toml's [compare].
pub fn names(
    variants: Vec<String>,
    scenario: Option<String>,
    runs: Option<runner::quantity::RunCount>,
    defaults: Option<&Defaults>,
) -> Result<(Vec<String>, String, runner::quantity::RunCount)> {
    let runs = runs
        .or(defaults.map(|d| d.runs))
        .unwrap_or(runner::quantity::RunCount::new(DEFAULT_RUNS.into())?);
    match (defaults, variants.is_empty(), scenario) {
        (_, false, Some(s)) => Ok((variants, s, runs)),
        (Some(d), empty, s) => Ok((
            if empty { d.variants.clone() } else { variants },
            s.unwrap_or_else(|| d.scenario.clone()),
            runs,
        )),
        (None, _, _) => anyhow::bail!(
            "name --variants A,B and --scenario S, or give lab.toml a [compare] section"
        ),
    }
}

pub struct Comparison {
    pub scenario: Scenario,
    pub rows: Vec<Row>,
    /// Where this scenario's runs are stored.
    pub store: PathBuf,
}

/// One variant's kernel, its stored runs, and how many more it needs.
struct Planned {
    variant: String,
    target: Target,
    dir: PathBuf,
    before: Vec<RunResult>,
    need: u32,
}

async fn plan(req: &Request, store: &Path) -> Result<Vec<Planned>> {
    let mut planned = Vec::new();
    for asked in &req.variants {
        let target = Target::resolve(None, Some(asked.clone()), Some(req.kernels.clone())).await?;
        // As the catalog names it (`x+kasan` is `x`), once.
        let variant = &target.name;
        if planned.iter().any(|p: &Planned| p.variant == *variant) {
            continue;
        }
        let id = target
            .kernel
            .parent()
            .and_then(|d| d.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = store.join(format!("{variant}-{id}"));
        let before = run::stored(&dir)?;
        let reuse = if req.fresh {
            0
        } else {
            before
                .iter()
                .filter(|r| r.evidence.counts())
                .count()
                .min(req.runs.count())
        };
        if reuse > 0 {
            crate::events::emit(crate::events::Event::RunsReused {
                label: variant.clone(),
                runs: reuse,
                dir: dir.clone(),
            });
        }
        planned.push(Planned {
            variant: variant.clone(),
            target,
            dir,
            before,
            need: req.runs.get() - reuse as u32,
        });
    }
    Ok(planned)
}

/// The runs a variant is judged on: the new ones when fresh; else the first `runs` stored
/// runs that count, and the new runs that say nothing (shown as errors).
fn kept(req: &Request, p: &Planned, all: Vec<RunResult>) -> Vec<RunResult> {
    let new = &all[p.before.len().min(all.len())..];
    if req.fresh {
        return new.to_vec();
    }
    let mut kept: Vec<RunResult> = all
        .iter()
        .filter(|r| r.evidence.counts())
        .take(req.runs.count())
        .cloned()
        .collect();
    kept.extend(new.iter().filter(|r| !r.evidence.counts()).cloned());
    kept
}

/// A variant's batch, as the progress display names it.
fn label(p: &Planned, req: &Request) -> String {
    format!("{} × {}", p.variant, req.scenario.name)
}

pub async fn compare(req: &Request) -> Result<Comparison> {
    let key = run::scenario_key(&req.scenario, req.how.duration)?;
    let store = req.store.join(format!("{}-{key}", req.scenario.name));
    let planned = plan(req, &store).await?;
    let duration = req.how.duration.unwrap_or(req.scenario.duration).get();
    let pool = Pool::sized(
        req.how.jobs,
        req.scenario.cpus.get(),
        req.scenario.memory_mib,
    );
    let progress = Progress::new(pool.jobs);
    for p in &planned {
        progress.plan(&label(p, req), p.need, duration);
    }
    crate::events::note(format!(
        "{} × {} per variant ({duration:?} each, {} VM(s) at a time) in {}",
        req.runs,
        req.scenario.name,
        pool.jobs,
        store.display()
    ));
    let batches = planned.iter().map(|p| {
        // A variant whose stored runs are enough runs nothing more.
        let Ok(runs) = runner::quantity::RunCount::new(p.need.into()) else {
            return futures::future::Either::Left(std::future::ready(Ok(p.before.clone())));
        };
        let opts = BatchOptions {
            runs,
            how: req.how,
            out: p.dir.clone(),
            append: true,
            first: None,
            pool: pool.clone(),
            progress: progress.clone(),
            label: label(p, req),
            suppressions: req.suppressions.clone(),
            source: None,
        };
        futures::future::Either::Right(
            async move { run::batch(&req.scenario, &p.target, &opts).await },
        )
    });
    let done = futures::future::join_all(batches).await;
    progress.clear();
    // An interrupted comparison gives no verdict: its runs are stored for the next one.
    crate::interrupt::check()?;
    let mut arms = Vec::new();
    for (p, all) in planned.iter().zip(done) {
        arms.push(Arm {
            name: p.variant.clone(),
            detector: p.target.build.as_ref().and_then(|(v, _)| v.detector),
            results: kept(req, p, all?),
        });
    }
    Ok(Comparison {
        scenario: req.scenario.clone(),
        rows: stats::rows(&arms),
        store,
    })
}

/// The comparison as `lab compare` prints it: the table, the UAPI and test differences, a verdict
/// per variant in plain words, where the runs are.
impl Comparison {
    /// 0 when every variant has runs that count; 1 when one has none (a comparison with
    /// nothing run on a side gives no verdict, and says so).
    pub fn exit_status(&self) -> i32 {
        i32::from(self.rows.iter().any(|r| r.runs == 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(runs: u32) -> runner::quantity::RunCount {
        runner::quantity::RunCount::new(runs.into()).unwrap()
    }

    #[test]
    fn the_command_line_wins_over_lab_toml() {
        let d = Defaults {
            variants: vec!["a".into(), "b".into()],
            scenario: "s".into(),
            runs: n(20),
        };
        assert_eq!(
            names(vec![], None, None, Some(&d)).unwrap(),
            (
                vec!["a".to_string(), "b".to_string()],
                "s".to_string(),
                n(20)
            )
        );
        assert_eq!(
            names(vec!["c".into()], None, Some(n(3)), Some(&d)).unwrap(),
            (vec!["c".to_string()], "s".to_string(), n(3))
        );
        assert_eq!(
            names(vec!["c".into()], Some("t".into()), None, None).unwrap(),
            (vec!["c".to_string()], "t".to_string(), n(DEFAULT_RUNS))
        );
        let e = names(vec![], Some("t".into()), None, None).unwrap_err();
        assert!(e.to_string().contains("[compare]"), "{e}");
    }
}
