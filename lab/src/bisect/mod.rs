//! `lab bisect`: the commit that brought a race in (or took it out), flaky-aware.
//!
//! The racy end is built and run first to measure how often the race shows there; that rate
//! decides how many clean runs make a commit clean. Then midpoints of `git rev-list
//! --ancestry-path` are built (through the kernel cache: one work tree per repository, so each
//! step recompiles only what changed since the previous one) and run until a verdict. Every
//! run is stored, and the state after every run, so the same command resumes after Ctrl-C.

pub mod verdict;

use crate::config::scenario::Scenario;
use crate::kernel::{self, variant::Source, variant::Variant};
use crate::report::formats::ReportType;
use crate::results::Evidence;
use crate::run::{batch, BatchOptions, Pool, Progress, RunResult, Target};
use crate::vm::accel::AccelChoice;

use crate::vm::session::Backend;
use anyhow::{bail, Context, Result};
use regex::Regex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use verdict::{Plan, RunClass, Search, Verdict};

/// What counts as the race.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum TargetReport {
    Signature(String),
    TitleRegex(String),
    /// Any kernel report.
    Any,
}

pub struct BisectOptions {
    pub repo: PathBuf,
    pub good: String,
    pub bad: String,
    /// Look for the commit that made the race go away (bad is the older end).
    pub fix: bool,
    pub scenario: Scenario,
    /// The variant whose configuration (base and fragments) every step builds with; its
    /// patches are not applied (they belong to another tree).
    pub config_variant: Variant,
    /// Runs at the racy end to measure the reproduction rate.
    pub runs: u32,
    pub target: Option<TargetReport>,
    pub confidence: f64,
    pub duration: Option<Duration>,
    pub accel: AccelChoice,
    pub backend: Backend,
    /// Where the state, the runs and the log go.
    pub dir: PathBuf,
}

/// One tested commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    pub commit: String,
    pub subject: String,
    /// Build: seconds (none for a cache hit), files compiled, or why it failed.
    pub build_s: Option<f64>,
    pub files_compiled: Option<u64>,
    pub build_error: Option<String>,
    pub verdict: Option<Verdict>,
}

/// What is saved after every run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub repo: PathBuf,
    pub fix: bool,
    /// Oldest first, without the old end; the new end last.
    pub commits: Vec<String>,
    pub racy_end: String,
    pub target: Option<TargetReport>,
    pub plan: Option<Plan>,
    pub rate_runs: (u32, u32),
    pub steps: Vec<Step>,
}

impl State {
    /// Each commit's verdict so far, in `commits` order.
    fn verdicts(&self) -> Vec<Option<Verdict>> {
        self.commits
            .iter()
            .map(|c| {
                self.steps
                    .iter()
                    .find(|s| &s.commit == c)
                    .and_then(|s| s.verdict.clone())
            })
            .collect()
    }
}

fn git(repo: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .context("cannot run git")?;
    if !out.status.success() {
        bail!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn resolve(repo: &Path, rev: &str) -> Result<String> {
    git(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ],
    )
    .with_context(|| format!("{rev:?} is not a commit in {}", repo.display()))
}

/// The default directory of a bisection: one per repository, ends, scenario and direction.
pub fn default_dir(
    repo: &Path,
    good: &str,
    bad: &str,
    scenario: &str,
    fix: bool,
) -> Result<PathBuf> {
    let (g, b) = (resolve(repo, good)?, resolve(repo, bad)?);
    let mut h = Sha256::new();
    h.update(format!("{}\n{g}\n{b}\n{scenario}\n{fix}", repo.display()));
    Ok(crate::cache::root()
        .join("bisect")
        .join(format!("{scenario}-{}", &hex::encode(h.finalize())[..12])))
}

fn new_state(o: &BisectOptions) -> Result<State> {
    let good = resolve(&o.repo, &o.good)?;
    let bad = resolve(&o.repo, &o.bad)?;
    let (old, new) = if o.fix { (&bad, &good) } else { (&good, &bad) };
    if git(&o.repo, &["merge-base", "--is-ancestor", old, new]).is_err() {
        bail!(
            "{} must be an ancestor of {} ({}): with --fix, --bad is the older end where the race shows",
            if o.fix { "--bad" } else { "--good" },
            if o.fix { "--good" } else { "--bad" },
            if o.fix { "looking for the fix" } else { "looking for the commit that brought the race in" },
        );
    }
    let list = git(
        &o.repo,
        &[
            "rev-list",
            "--reverse",
            "--ancestry-path",
            &format!("{old}..{new}"),
        ],
    )?;
    let commits: Vec<String> = list.lines().map(String::from).collect();
    if commits.is_empty() {
        bail!("no commits between {} and {}", o.good, o.bad);
    }
    Ok(State {
        repo: o.repo.clone(),
        fix: o.fix,
        commits,
        racy_end: bad,
        target: o.target.clone(),
        plan: None,
        rate_runs: (0, 0),
        steps: vec![],
    })
}

fn save(dir: &Path, state: &State) -> Result<()> {
    crate::cache::write_atomic(&dir.join("state.json"), &serde_json::to_vec_pretty(state)?)
}

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
            .filter(|rep| rep.kind != ReportType::Lab)
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

/// Build `commit` with the configuration variant's settings.
async fn build(o: &BisectOptions, commit: &str) -> Result<kernel::Built> {
    let mut variant = o.config_variant.clone();
    variant.name = format!("bisect-{}", &commit[..12]);
    variant.source = Source::Git {
        repo: o.repo.display().to_string(),
        reference: commit.to_string(),
    };
    variant.patches.clear();
    tokio::task::spawn_blocking(move || kernel::build(&variant, &kernel::BuildOptions::default()))
        .await?
}

/// The step of `commit`, built (or found in the state).
async fn step<'a>(
    o: &BisectOptions,
    state: &'a mut State,
    commit: &str,
) -> Result<(&'a mut Step, Option<kernel::Built>)> {
    let idx = match state.steps.iter().position(|s| s.commit == commit) {
        Some(i) => i,
        None => {
            state.steps.push(Step {
                commit: commit.to_string(),
                subject: git(&o.repo, &["log", "-1", "--format=%s", commit])?,
                build_s: None,
                files_compiled: None,
                build_error: None,
                verdict: None,
            });
            state.steps.len() - 1
        }
    };
    let s = &mut state.steps[idx];
    if s.build_error.is_some() {
        return Ok((s, None));
    }
    eprintln!("lab: building {} {}", &commit[..12], s.subject);
    match build(o, commit).await {
        Ok(b) => {
            if s.build_s.is_none() && !b.cache_hit {
                s.build_s = Some(b.metadata.duration_s);
                s.files_compiled = Some(b.metadata.files_compiled);
            }
            eprintln!("lab: {}", kernel::describe(&b));
            Ok((s, Some(b)))
        }
        Err(e) => {
            let text = format!("{e:#}");
            let first = text
                .lines()
                .find(|l| l.starts_with("first error:"))
                .unwrap_or_else(|| text.lines().next().unwrap_or("build failed"))
                .to_string();
            eprintln!("lab: {} does not build: {first}", &commit[..12]);
            s.build_error = Some(first);
            s.verdict = Some(Verdict::Skip("does not build".into()));
            Ok((s, None))
        }
    }
}

/// Run `runs` more runs of the scenario on `b`, stored under the commit's directory.
async fn run(
    o: &BisectOptions,
    b: &kernel::Built,
    commit: &str,
    runs: u32,
    progress: &Progress,
) -> Result<Vec<RunResult>> {
    let target = Target {
        name: commit[..12].to_string(),
        kernel: b.bzimage(),
        config: Some(b.dir.join(".config")),
        vmlinux: Some(b.dir.join("vmlinux")).filter(|p| p.is_file()),
    };
    let duration = o.duration.unwrap_or(o.scenario.duration);
    progress.plan(runs, duration);
    let opts = BatchOptions {
        runs,
        accel: o.accel,
        backend: o.backend,
        duration: o.duration,
        out: o.dir.join(&commit[..12]),
        append: true,
        pool: Pool::new(1),
        progress: progress.clone(),
        label: format!("{} × {}", &commit[..12], o.scenario.name),
    };
    batch(&o.scenario, &target, &opts).await
}

/// A commit's runs that count: an interrupted run (Ctrl-C) is kept on disk but says nothing,
/// not even "infrastructure"; the second value says whether the last run was interrupted.
fn uninterrupted(all: Vec<RunResult>) -> (Vec<RunResult>, bool) {
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
fn stored(o: &BisectOptions, commit: &str) -> Result<Vec<RunResult>> {
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

pub struct Answer {
    pub state: State,
    /// Index in `state.commits` of the first commit in the new state.
    pub found: usize,
    /// Skipped commits that could be the answer instead.
    pub doubt: Vec<String>,
    pub confidence: f64,
    pub builds: usize,
}

pub async fn bisect(o: &BisectOptions) -> Result<Option<Answer>> {
    std::fs::create_dir_all(&o.dir)?;
    let _lock = crate::cache::lock(&o.dir.join("bisect.lock"), false)?;
    let mut state = match std::fs::read(o.dir.join("state.json")) {
        Ok(bytes) => {
            eprintln!("lab: resuming the bisection in {}", o.dir.display());
            serde_json::from_slice(&bytes).context("state.json")?
        }
        Err(_) => new_state(o)?,
    };
    let progress = Progress::new(1);

    // 1. The racy end: how often does the race show there?
    if state.plan.is_none() {
        let racy = state.racy_end.clone();
        let (s, built) = step(o, &mut state, &racy).await?;
        let Some(built) = built else {
            bail!(
                "the racy end {} does not build ({}): nothing to bisect",
                &racy[..12],
                s.build_error.as_deref().unwrap_or("")
            );
        };
        let mut runs = stored(o, &racy)?;
        let more = o.runs.saturating_sub(runs.len() as u32);
        let mut interrupted = false;
        if more > 0 {
            (runs, interrupted) = uninterrupted(run(o, &built, &racy, more, &progress).await?);
        }
        if interrupted {
            save(&o.dir, &state)?;
            progress.clear();
            return Ok(None);
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
            eprintln!("lab: target report: {title} [{signature}]");
            state.target = Some(TargetReport::Signature(signature));
        }
        let target = state.target.clone().unwrap();
        let hits = runs
            .iter()
            .filter(|r| classify(r, &target) == RunClass::Target)
            .count() as u32;
        let counted = runs
            .iter()
            .filter(|r| matches!(classify(r, &target), RunClass::Target | RunClass::Clean))
            .count() as u32;
        let steps = (state.commits.len() as f64).log2().ceil() as u32 + 1;
        let Some(plan) = Plan::from_racy_end(hits, counted, o.confidence, steps) else {
            bail!(
                "the target report did not appear in {} runs at the racy end {}",
                runs.len(),
                &racy[..12]
            );
        };
        eprintln!(
            "lab: racy end {}: {hits}/{counted} runs; assuming a rate of {:.2} (95 % lower bound), \
             a commit is clean after {} clean runs",
            &racy[..12],
            plan.rate,
            plan.clean_runs
        );
        if let Some(s) = state.steps.iter_mut().find(|s| s.commit == racy) {
            s.verdict = Some(Verdict::Racy);
        }
        state.rate_runs = (hits, counted);
        state.plan = Some(plan);
        save(&o.dir, &state)?;
    }
    let plan = state.plan.unwrap();
    let target = state.target.clone().unwrap();
    let after = if state.fix {
        Verdict::Clean
    } else {
        Verdict::Racy
    };

    // 2. Midpoints until the first commit of the new state is pinned down.
    loop {
        let verdicts = state.verdicts();
        let search = Search {
            verdicts: &verdicts,
            after: after.clone(),
        };
        let Some(next) = search.next() else { break };
        let commit = state.commits[next].clone();
        let (_, built) = step(o, &mut state, &commit).await?;
        save(&o.dir, &state)?;
        let Some(built) = built else { continue };
        let mut runs = stored(o, &commit)?;
        let v = loop {
            let classes: Vec<RunClass> = runs.iter().map(|r| classify(r, &target)).collect();
            if let Some(v) = plan.verdict(&classes) {
                break Some(v);
            }
            let interrupted;
            (runs, interrupted) = uninterrupted(run(o, &built, &commit, 1, &progress).await?);
            if interrupted {
                break None;
            }
        };
        let Some(v) = v else {
            save(&o.dir, &state)?;
            progress.clear();
            return Ok(None);
        };
        progress.println(&format!(
            "lab: {} {:?}: {}",
            &commit[..12],
            v,
            step_line(&runs, &target)
        ));
        if let Some(s) = state.steps.iter_mut().find(|s| s.commit == commit) {
            s.verdict = Some(v);
        }
        save(&o.dir, &state)?;
    }
    progress.clear();

    let verdicts = state.verdicts();
    let (found, doubt) = Search {
        verdicts: &verdicts,
        after,
    }
    .answer();
    let confidence = state
        .steps
        .iter()
        .filter(|s| s.verdict == Some(Verdict::Clean))
        .map(|s| {
            let runs = stored(o, &s.commit).unwrap_or_default();
            let clean = runs
                .iter()
                .filter(|r| classify(r, &target) == RunClass::Clean)
                .count();
            plan.detection(clean as u32)
        })
        .product();
    let builds = state
        .steps
        .iter()
        .filter(|s| s.build_s.is_some() || s.build_error.is_some())
        .count();
    Ok(Some(Answer {
        doubt: doubt.iter().map(|&i| state.commits[i].clone()).collect(),
        state,
        found,
        confidence,
        builds,
    }))
}

fn step_line(runs: &[RunResult], target: &TargetReport) -> String {
    let hits = runs
        .iter()
        .filter(|r| classify(r, target) == RunClass::Target)
        .count();
    format!("{} runs, {hits} with the target report", runs.len())
}

/// The per-step table (Markdown), in the order the steps were taken.
pub fn table(o: &BisectOptions, state: &State) -> Result<String> {
    let target = state.target.clone().unwrap_or(TargetReport::Any);
    let mut s = String::from("| # | commit | subject | build | runs | target reports | verdict |\n|---|---|---|---|---|---|---|\n");
    for (i, step) in state.steps.iter().enumerate() {
        let runs = stored(o, &step.commit)?;
        let hits = runs
            .iter()
            .filter(|r| classify(r, &target) == RunClass::Target)
            .count();
        let build = match (&step.build_error, step.build_s) {
            (Some(e), _) => format!("failed: {}", e.replace('|', "\\|")),
            (None, Some(secs)) => {
                format!("{secs:.1} s ({} files)", step.files_compiled.unwrap_or(0))
            }
            (None, None) => "cache hit".into(),
        };
        let verdict = match &step.verdict {
            Some(Verdict::Racy) => "racy".to_string(),
            Some(Verdict::Clean) => "clean".to_string(),
            Some(Verdict::Skip(why)) => format!("skip ({why})"),
            None => "-".into(),
        };
        s.push_str(&format!(
            "| {} | {} | {} | {build} | {} | {hits} | {verdict} |\n",
            i + 1,
            &step.commit[..12],
            step.subject.replace('|', "\\|"),
            runs.len()
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::parser::Report;
    use crate::results::evidence;
    use crate::vm::outcome::Outcome;

    fn run(outcome: Outcome, reports: &[(&str, &str)]) -> RunResult {
        let mut reports: Vec<Report> = reports
            .iter()
            .map(|(title, sig)| {
                let mut r = Report::lab(title, String::new());
                r.kind = ReportType::Warning;
                r.signature = sig.to_string();
                r
            })
            .collect();
        let evidence = evidence::judge(
            crate::config::scenario::Kind::Race,
            &outcome,
            &reports,
            &vec![],
        );
        if reports.is_empty() {
            reports.extend(evidence::outcome_report(&outcome));
        }
        RunResult {
            index: 1,
            dir: PathBuf::new(),
            evidence,
            outcome: Some(outcome),
            reports,
            first_report_ms: None,
            throughput: vec![],
            differences: vec![],
            record: None,
        }
    }

    #[test]
    fn interrupted_runs_do_not_count_and_only_the_last_one_stops() {
        let pass = || run(Outcome::Completed, &[]);
        let cut = || run(Outcome::Interrupted, &[]);
        let (runs, stop) = uninterrupted(vec![pass(), cut()]);
        assert_eq!((runs.len(), stop), (1, true));
        // Resumed: the earlier interruption stays on disk but stops nothing.
        let (runs, stop) = uninterrupted(vec![pass(), cut(), pass()]);
        assert_eq!((runs.len(), stop), (2, false));
    }

    #[test]
    fn runs_are_classified_against_the_target() {
        let warn = [("WARNING in dma_buf_poll", "09739e83")];
        let other = [("BUG: sleeping function called from invalid context", "aa")];
        let fail = |r: &[(&str, &str)]| {
            run(
                Outcome::StoppedOnReport {
                    report: String::new(),
                },
                r,
            )
        };
        let sig = TargetReport::Signature("09739e83".into());
        let re = TargetReport::TitleRegex("dma_buf_poll$".into());
        assert_eq!(classify(&fail(&warn), &sig), RunClass::Target);
        assert_eq!(classify(&fail(&warn), &re), RunClass::Target);
        assert_eq!(classify(&fail(&other), &sig), RunClass::Other);
        assert_eq!(
            classify(&fail(&other), &TargetReport::Any),
            RunClass::Target
        );
        assert_eq!(
            classify(&run(Outcome::Completed, &[]), &sig),
            RunClass::Clean
        );
        let silent = Outcome::TimeoutNoOutput { after_ms: 1 };
        assert_eq!(classify(&run(silent, &[]), &sig), RunClass::Infra);
        // A hang is a finding: not the target report, but not "nothing" either.
        let hang = || {
            run(
                Outcome::TimeoutNoHeartbeat {
                    after_ms: 60_000,
                    last_heard_ms: 20_000,
                },
                &[],
            )
        };
        assert_eq!(classify(&hang(), &sig), RunClass::Other);
        assert_eq!(classify(&hang(), &TargetReport::Any), RunClass::Target);
        let by_title = TargetReport::TitleRegex("^no output from test machine$".into());
        assert_eq!(classify(&hang(), &by_title), RunClass::Target);
    }
}
