//! The two phases of a bisection: the racy end (how often does the race show there?), then
//! midpoints until the first commit of the new state is pinned down. Each commit is built
//! through the kernel cache and run until its runs give a verdict; state and runs are saved
//! as they come. An interruption returns [`Interrupted`] with no verdict stored for the
//! commit it cut.

use super::state::{self, git, State, Step};
use super::verdict::{CommitVerdict, Plan, RunClass, Search};
use super::{BisectOptions, TargetReport};
use crate::interrupt::Interrupted;
use crate::kernel::{self, variant::Source};
use crate::results::Evidence;
use crate::run::{batch, BatchOptions, Pool, Progress, RunResult, Target};
use anyhow::{bail, Result};
use regex::Regex;

/// What a run says, given the target (the evidence rule decides what a run found).
pub fn classify(r: &RunResult, target: &TargetReport) -> RunClass {
    if r.evidence.finding().is_none() {
        return if r.evidence.counts() {
            RunClass::Clean
        } else {
            RunClass::Infra
        };
    }
    // (signature, title) of everything the run found: every kernel report it printed, or
    // what the machine saw.
    let found: Vec<(&str, &str)> = match &r.evidence {
        Evidence::KernelReport { .. } => r
            .reports
            .iter()
            .filter(|rep| rep.counts())
            .map(|rep| (rep.signature.as_str(), rep.title.as_str()))
            .collect(),
        other => other.finding().map(|(t, s)| (s, t)).into_iter().collect(),
    };
    let hit = match target {
        TargetReport::Any => true,
        TargetReport::Signature(s) => found.iter().any(|(sig, _)| sig == s),
        TargetReport::TitleRegex(re) => Regex::new(re)
            .map(|re| found.iter().any(|(_, title)| re.is_match(title)))
            .unwrap_or(false),
    };
    if hit {
        RunClass::Target
    } else {
        RunClass::Other
    }
}

/// A run's (hits, trials) toward the rate and the verdicts: a stress run is one trial; a run
/// with a schedule counts its applied attempts, up to the one its report followed (a report
/// before any applied attempt is stress: no trial of the schedule, no hit).
pub fn trials(r: &RunResult, class: RunClass, forced: bool) -> (u32, u32) {
    let hit = u32::from(class == RunClass::Target);
    if !forced {
        return (
            hit,
            u32::from(matches!(class, RunClass::Target | RunClass::Clean)),
        );
    }
    let Some((applied, _, before)) = crate::run::scheduled(r) else {
        return (0, 0);
    };
    match class {
        RunClass::Target => match before.unwrap_or(applied) as u32 {
            0 => (0, 0),
            k => (1, k),
        },
        RunClass::Clean => (0, applied as u32),
        _ => (0, 0),
    }
}

/// Each run's class and trials.
pub fn observed(runs: &[RunResult], target: &TargetReport, forced: bool) -> Vec<(RunClass, u32)> {
    runs.iter()
        .map(|r| {
            let class = classify(r, target);
            (class, trials(r, class, forced).1)
        })
        .collect()
}

/// `commit` with the configuration variant's settings.
fn commit_variant(o: &BisectOptions, commit: &str) -> kernel::variant::Variant {
    let mut variant = o.config_variant.clone();
    variant.name = format!("bisect-{}", &commit[..12]);
    // A night's cell keeps its source's repository as written: its builds share the work
    // tree and object tree of the night's.
    let repo = match &o.config_variant.source {
        Source::Git { repo, .. } if o.keep_patches => repo.clone(),
        _ => o.repo.display().to_string(),
    };
    variant.source = Source::Git {
        repo,
        reference: commit.to_string(),
    };
    if !o.keep_patches {
        variant.patches.clear();
    }
    variant
}

/// Build `commit` with the configuration variant's settings.
async fn build(o: &BisectOptions, commit: &str) -> Result<kernel::Built> {
    let variant = commit_variant(o, commit);
    tokio::task::spawn_blocking(move || kernel::build(&variant, &kernel::BuildOptions::default()))
        .await?
}

/// The step of `commit`, built (or found in the state): the kernel, or none when it does
/// not build (a skip, stored). An interrupted build stores nothing.
async fn step(o: &BisectOptions, state: &mut State, commit: &str) -> Result<Option<kernel::Built>> {
    if state.step_mut(commit).is_none() {
        let (repo, c) = (o.repo.clone(), commit.to_string());
        let subject =
            tokio::task::spawn_blocking(move || git(&repo, &["log", "-1", "--format=%s", &c]))
                .await??;
        state.steps.push(Step {
            commit: commit.to_string(),
            subject,
            build_s: None,
            files_compiled: None,
            build_error: None,
            verdict: None,
        });
    }
    let s = state.step_mut(commit).expect("just added");
    if s.build_error.is_some() {
        return Ok(None);
    }
    crate::events::note(format!("building {} {}", &commit[..12], s.subject));
    match build(o, commit).await {
        Ok(b) => {
            if s.build_s.is_none() && !b.cache_hit {
                s.build_s = Some(b.metadata.duration_s);
                s.files_compiled = Some(b.metadata.files_compiled);
            }
            crate::events::emit(kernel::ready(&commit[..12], &b));
            Ok(Some(b))
        }
        Err(e) if crate::interrupt::is(&e) => Err(e),
        Err(e) => {
            let text = format!("{e:#}");
            let first = text
                .lines()
                .find(|l| l.starts_with("first error:"))
                .unwrap_or_else(|| text.lines().next().unwrap_or("build failed"))
                .to_string();
            crate::events::note(format!("{} does not build: {first}", &commit[..12]));
            s.build_error = Some(first);
            s.verdict = Some(CommitVerdict::Skip("does not build".into()));
            Ok(None)
        }
    }
}

/// Run `runs` more runs of the scenario on `b`, stored under the commit's directory; the
/// runs of the commit that count. An interrupted run ends the bisection.
async fn run(
    o: &BisectOptions,
    b: &kernel::Built,
    commit: &str,
    runs: u32,
    progress: &Progress,
) -> Result<Vec<RunResult>> {
    let target = Target::built(&commit[..12], &commit_variant(o, commit), b);
    let duration = o.how.duration.unwrap_or(o.scenario.duration).get();
    let label = format!("{} × {}", &commit[..12], o.scenario.name);
    progress.plan(&label, runs, duration);
    let opts = BatchOptions {
        runs: runner::quantity::RunCount::new(runs.into())?,
        how: o.how,
        out: o.dir.join(&commit[..12]),
        append: true,
        first: None,
        pool: Pool::new(1),
        progress: progress.clone(),
        label,
        suppressions: o.suppressions.clone(),
        source: None,
    };
    let (runs, interrupted) = uninterrupted(batch(&o.scenario, &target, &opts).await?);
    if interrupted || crate::interrupt::requested() {
        return Err(Interrupted.into());
    }
    Ok(runs)
}

/// A commit's runs that count: an interrupted run (Ctrl-C) is kept on disk but says nothing,
/// not even "infrastructure"; the second value says whether the last run was interrupted.
pub fn uninterrupted(all: Vec<RunResult>) -> (Vec<RunResult>, bool) {
    let interrupted = all
        .last()
        .is_some_and(|r| r.evidence == Evidence::Interrupted);
    let runs = all
        .into_iter()
        .filter(|r| r.evidence != Evidence::Interrupted)
        .collect();
    (runs, interrupted)
}

/// The runs stored for a commit so far.
pub fn stored(o: &BisectOptions, commit: &str) -> Result<Vec<RunResult>> {
    Ok(uninterrupted(crate::run::stored(&o.dir.join(&commit[..12]))?).0)
}

/// The most frequent finding at the racy end becomes the target.
fn most_common_signature(runs: &[RunResult]) -> Option<(String, String)> {
    let mut counts: std::collections::BTreeMap<(String, String), usize> = Default::default();
    for r in runs {
        if let Some((title, signature)) = r.evidence.finding() {
            *counts
                .entry((signature.to_string(), title.to_string()))
                .or_default() += 1;
        }
    }
    counts.into_iter().max_by_key(|(_, n)| *n).map(|(k, _)| k)
}

/// Phase 1: build the racy end, run it `o.runs` times, choose the target report (unless
/// given) and the plan of how many clean runs make a commit clean.
pub async fn racy_end(o: &BisectOptions, state: &mut State, progress: &Progress) -> Result<()> {
    let racy = state.racy_end.clone();
    let Some(built) = step(o, state, &racy).await? else {
        bail!(
            "the racy end {} does not build ({}): nothing to bisect",
            &racy[..12],
            state
                .step_mut(&racy)
                .and_then(|s| s.build_error.clone())
                .unwrap_or_default()
        );
    };
    let mut runs = stored(o, &racy)?;
    let more = o.runs.get().saturating_sub(runs.len() as u32);
    if more > 0 {
        runs = run(o, &built, &racy, more, progress).await?;
    }
    if state.target.is_none() {
        let Some((signature, title)) = most_common_signature(&runs) else {
            bail!(
                "no kernel report in {} runs at the racy end {}: the race does not reproduce \
                 there; raise --runs or --duration, or check --bad",
                runs.len(),
                &racy[..12]
            );
        };
        crate::events::note(format!("target report: {title} [{signature}]"));
        state.target = Some(TargetReport::Signature(signature));
    }
    let target = state.target.clone().expect("chosen above");
    let forced = o.scenario.schedule.is_some();
    let (hits, counted) = runs
        .iter()
        .map(|r| trials(r, classify(r, &target), forced))
        .fold((0, 0), |(h, n), (dh, dn)| (h + dh, n + dn));
    let steps = (state.commits.len() as f64).log2().ceil() as u32 + 1;
    let plan = match forced {
        true => Plan::from_schedule(hits, counted, o.confidence, steps),
        false => Plan::from_racy_end(hits, counted, o.confidence, steps),
    };
    let Some(plan) = plan else {
        bail!(
            "the target report did not appear {}in {} runs at the racy end {}",
            if forced {
                "after an applied attempt of the schedule "
            } else {
                ""
            },
            runs.len(),
            &racy[..12]
        );
    };
    let unit = if forced { "applied attempts" } else { "runs" };
    crate::events::note(format!(
        "racy end {}: the target report after {hits} of {counted} {unit}; assuming a rate of \
         {:.2} per {} (95 % lower bound), a commit is clean after {} clean {unit}",
        &racy[..12],
        plan.rate,
        if forced { "applied attempt" } else { "run" },
        plan.clean_runs
    ));
    if let Some(s) = state.step_mut(&racy) {
        s.verdict = Some(CommitVerdict::Racy);
    }
    state.rate_runs = (hits, counted);
    state.plan = Some(plan);
    state::save(&o.dir, state)
}

/// The state the search looks for the first commit of.
pub fn after(state: &State) -> CommitVerdict {
    if state.fix {
        CommitVerdict::Clean
    } else {
        CommitVerdict::Racy
    }
}

/// The builds a bisection has made (a cache hit is not one; a failed build is).
pub fn builds(state: &State) -> u32 {
    state
        .steps
        .iter()
        .filter(|s| s.build_s.is_some() || s.build_error.is_some())
        .count() as u32
}

/// Phase 2: midpoints until the first commit of the new state is pinned down; or until the
/// budget is spent before a commit not yet built (why, then).
pub async fn search(
    o: &BisectOptions,
    state: &mut State,
    progress: &Progress,
) -> Result<Option<String>> {
    let plan = state.plan.expect("the racy end was measured");
    let target = state.target.clone().expect("the racy end chose a target");
    loop {
        let verdicts = state.verdicts();
        let search = Search {
            verdicts: &verdicts,
            after: after(state),
        };
        let Some(next) = search.next() else {
            return Ok(None);
        };
        let commit = state.commits[next].clone();
        if state.step_mut(&commit).is_none() {
            if let Some(why) = o.budget.spent(builds(state)) {
                crate::events::note(format!("{why}: the bisection stops undecided"));
                return Ok(Some(why));
            }
        }
        let built = step(o, state, &commit).await?;
        state::save(&o.dir, state)?;
        let Some(built) = built else { continue };
        let mut runs = stored(o, &commit)?;
        let v = loop {
            if let Some(v) = plan.verdict(&observed(&runs, &target, plan.forced)) {
                break v;
            }
            runs = run(o, &built, &commit, 1, progress).await?;
        };
        progress.println(&format!(
            "{} {v:?}: {}",
            &commit[..12],
            step_line(&runs, &target)
        ));
        if let Some(s) = state.step_mut(&commit) {
            s.verdict = Some(v);
        }
        state::save(&o.dir, state)?;
    }
}

fn step_line(runs: &[RunResult], target: &TargetReport) -> String {
    let hits = runs
        .iter()
        .filter(|r| classify(r, target) == RunClass::Target)
        .count();
    format!(
        "{}, {hits} with the target report",
        crate::text::count(runs.len() as u32, "run", "runs")
    )
}
