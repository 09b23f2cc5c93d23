//! What a bisection knows, saved after every build and run as `state.json`: the commits
//! between the ends, the target report, the plan, and each tested commit's build and verdict.
//! An interrupted step is saved without a verdict, so the same command resumes it.

use super::verdict::{CommitVerdict, Plan};
use super::{BisectOptions, TargetReport};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One tested commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    pub commit: String,
    pub subject: String,
    /// Build: seconds (none for a cache hit), files compiled, or why it failed.
    pub build_s: Option<f64>,
    pub files_compiled: Option<u64>,
    pub build_error: Option<String>,
    pub verdict: Option<CommitVerdict>,
}

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
    /// What decided the verdicts (the scenario file, configuration, runs…): see
    /// [`super::inputs_key`]. None in a state saved before it was kept.
    #[serde(default)]
    pub inputs: Option<String>,
}

impl State {
    /// Each commit's verdict so far, in `commits` order.
    pub fn verdicts(&self) -> Vec<Option<CommitVerdict>> {
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

    pub fn step_mut(&mut self, commit: &str) -> Option<&mut Step> {
        self.steps.iter_mut().find(|s| s.commit == commit)
    }

    /// The subject line of a commit, from the steps or from git.
    pub fn subject(&self, commit: &str) -> String {
        self.steps
            .iter()
            .find(|s| s.commit == commit)
            .map(|s| s.subject.clone())
            .or_else(|| git(&self.repo, &["log", "-1", "--format=%s", commit]).ok())
            .unwrap_or_default()
    }
}

pub fn git(repo: &Path, args: &[&str]) -> Result<String> {
    let out = crate::child::output(Command::new("git").arg("-C").arg(repo).args(args))
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

pub fn resolve(repo: &Path, rev: &str) -> Result<String> {
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

/// What a new state is made from (owned: it is made off the runtime's thread).
pub struct Ends {
    pub repo: PathBuf,
    pub good: String,
    pub bad: String,
    pub fix: bool,
    pub target: Option<TargetReport>,
    pub inputs: String,
}

impl Ends {
    pub fn of(o: &BisectOptions) -> Ends {
        Ends {
            repo: o.repo.clone(),
            good: o.good.clone(),
            bad: o.bad.clone(),
            fix: o.fix,
            target: o.target.clone(),
            inputs: o.inputs.clone(),
        }
    }
}

fn new_state(o: &Ends) -> Result<State> {
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
        inputs: Some(o.inputs.clone()),
    })
}

/// The saved state of the bisection in `dir`, or a new one (git is asked: blocking).
pub fn load(dir: &Path, o: &Ends) -> Result<State> {
    let file = dir.join("state.json");
    match crate::files::read(&file) {
        Ok(bytes) => {
            let state: State = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} (delete it to start over)", file.display()))?;
            if state.inputs.as_ref().is_some_and(|i| *i != o.inputs) {
                bail!(
                    "{} holds a bisection made with another scenario file, configuration, run \
                     count, duration, target or confidence: its verdicts do not hold for this \
                     one (delete the directory to start over, or give another --out)",
                    dir.display()
                );
            }
            crate::events::note(format!("resuming the bisection in {}", dir.display()));
            Ok(state)
        }
        Err(_) => new_state(o),
    }
}

pub fn save(dir: &Path, state: &State) -> Result<()> {
    crate::files::write(dir.join("state.json"), &serde_json::to_vec_pretty(state)?)
}
