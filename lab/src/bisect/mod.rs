//! `lab bisect`: the commit that brought a race in (or took it out), flaky-aware.
//!
//! The racy end is built and run first to measure how often the race shows there; that rate
//! decides how many clean runs make a commit clean. Then midpoints of `git rev-list
//! --ancestry-path` are built (through the kernel cache: one work tree per repository, so each
//! step recompiles only what changed since the previous one) and run until a verdict. Every
//! run is stored, and the state after every run, so the same command resumes after Ctrl-C.

mod config;
pub mod state;
pub mod steps;
pub mod verdict;

pub use config::config_variant;
pub use state::{State, Step};
pub use steps::classify;

use crate::config::scenario::Scenario;
use crate::kernel::variant::Variant;
use crate::run::{How, Progress};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use verdict::{CommitVerdict, Search};

/// What counts as the race.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum TargetReport {
    Signature(String),
    TitleRegex(String),
    /// Any finding: a kernel report, or a hang the machine saw.
    Any,
}

impl TargetReport {
    /// From `--signature`, `--title-regex` (checked here) and `--any-report`; none when no
    /// flag says (the racy end's most frequent finding becomes the target).
    pub fn from_flags(
        signature: Option<String>,
        title_regex: Option<String>,
        any: bool,
    ) -> Result<Option<TargetReport>> {
        if let Some(re) = &title_regex {
            regex::Regex::new(re).map_err(|e| anyhow::anyhow!("--title-regex: {e}"))?;
        }
        Ok(match (signature, title_regex, any) {
            (Some(s), _, _) => Some(TargetReport::Signature(s)),
            (_, Some(re), _) => Some(TargetReport::TitleRegex(re)),
            (_, _, true) => Some(TargetReport::Any),
            _ => None,
        })
    }
}

/// `lab bisect`'s flags.
#[derive(clap::Args)]
pub struct Args {
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
    /// Runs at the racy end to measure the reproduction rate (at least one; with a schedule
    /// the rate is per applied attempt: a schedule is measured, not assumed to be certain).
    #[arg(long, default_value = "5")]
    pub runs: runner::quantity::RunCount,
    /// The target report's signature (default: the most frequent first finding at the racy
    /// end). Other findings do not make a commit racy.
    #[arg(long, conflicts_with_all = ["title_regex", "any_report"])]
    pub signature: Option<String>,
    /// The target report's title, as a regular expression.
    #[arg(long, conflicts_with = "any_report")]
    pub title_regex: Option<String>,
    /// Any finding (a kernel report, or a hang the machine saw) makes a commit racy.
    #[arg(long)]
    pub any_report: bool,
    /// Find the commit that made the race go away.
    #[arg(long)]
    pub fix: bool,
    /// The confidence the clean verdicts together must keep.
    #[arg(long, default_value_t = 0.95)]
    pub confidence: f64,
    #[command(flatten)]
    pub how: How,
    #[command(flatten)]
    pub dirs: crate::config::locate::Dirs,
    /// Where the state, runs and log go (default: <cache>/bisect/<scenario>-<hash>).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl Args {
    /// The bisection the flags ask for, checked (ends, scenario, configuration, target).
    pub fn options(self) -> Result<BisectOptions> {
        let repo = self
            .repo
            .canonicalize()
            .map_err(|e| anyhow::anyhow!("{}: {e}", self.repo.display()))?;
        let target = TargetReport::from_flags(self.signature, self.title_regex, self.any_report)?;
        let scenario = crate::config::locate::scenario(self.dirs.scenarios, &self.scenario)?;
        let kernels = crate::config::locate::dir("kernels", self.dirs.kernels)?;
        let catalog = crate::kernel::variant::Catalog::load(&kernels)?;
        let inputs = inputs_key(&Inputs {
            scenario: &scenario,
            variant_config: &self.variant_config,
            runs: self.runs.get().into(),
            duration: self.how.duration.map(|d| d.get()),
            target: &target,
            confidence: self.confidence,
            patches: false,
        })?;
        let dir = match self.out {
            Some(d) => d,
            None => default_dir(
                &repo,
                &self.good,
                &self.bad,
                (&scenario.name, &inputs),
                self.fix,
            )?,
        };
        Ok(BisectOptions {
            repo,
            good: self.good,
            bad: self.bad,
            fix: self.fix,
            config_variant: config_variant(&catalog, &self.variant_config)?,
            scenario,
            runs: self.runs,
            target,
            confidence: self.confidence,
            // The runs of one commit are sequential: each decides whether another is needed.
            how: How {
                jobs: Some(1),
                ..self.how
            },
            dir,
            inputs,
            suppressions: std::sync::Arc::new(crate::config::locate::suppressions(
                self.dirs.suppressions,
            )?),
            keep_patches: false,
            budget: Budget::default(),
        })
    }
}

/// What decides a commit's verdict besides the commit: a saved bisection is resumed only
/// with the same.
pub struct Inputs<'a> {
    pub scenario: &'a Scenario,
    pub variant_config: &'a str,
    pub runs: u64,
    pub duration: Option<std::time::Duration>,
    pub target: &'a Option<TargetReport>,
    pub confidence: f64,
    /// The configuration variant's patches are applied at every commit (a night's cell).
    pub patches: bool,
}

/// The hash of `inputs`: the scenario file's bytes (its schedule, parameters and duration),
/// the configuration, the runs, the duration override, the target report, the confidence and
/// whether the variant's patches are applied.
pub fn inputs_key(inputs: &Inputs<'_>) -> Result<String> {
    let mut h = Sha256::new();
    h.update(crate::files::read(&inputs.scenario.file)?);
    h.update(format!(
        "\0{}\0{}\0{:?}\0{:?}\0{}",
        inputs.variant_config, inputs.runs, inputs.duration, inputs.target, inputs.confidence
    ));
    // Only when set: the keys of bisections made before it existed stay as they were.
    if inputs.patches {
        h.update("\0patches");
    }
    Ok(hex::encode(&h.finalize()[..12]))
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
    pub runs: runner::quantity::RunCount,
    pub target: Option<TargetReport>,
    pub confidence: f64,
    /// How runs are executed (one VM at a time: runs of a commit are sequential).
    pub how: How,
    /// Where the state, the runs and the log go.
    pub dir: PathBuf,
    /// What decides the verdicts ([`inputs_key`]): a saved state made with others is not
    /// resumed.
    pub inputs: String,
    /// Reports left out of verdicts (a suppressed report is not the target's).
    pub suppressions: std::sync::Arc<crate::config::suppress::Suppressions>,
    /// Apply the configuration variant's patches at every commit (a night's cell on its own
    /// git source: the variant's series belongs to that tree).
    pub keep_patches: bool,
    /// What the bisection may spend before it stops undecided.
    pub budget: Budget,
}

/// What a bisection may spend: new builds and wall time (none: no limit). A night's
/// bisections share one budget.
#[derive(Debug, Clone, Copy, Default)]
pub struct Budget {
    pub builds: Option<u32>,
    pub deadline: Option<std::time::Instant>,
}

impl Budget {
    /// Why no further commit may be built after `builds` builds, if it may not.
    pub fn spent(&self, builds: u32) -> Option<String> {
        if let Some(max) = self.builds.filter(|max| builds >= *max) {
            return Some(format!("budget spent: {max} builds"));
        }
        match self.deadline {
            Some(d) if std::time::Instant::now() >= d => Some("budget spent: wall time".into()),
            _ => None,
        }
    }
}

/// The default directory of a bisection: one per repository, ends, scenario (its name and
/// what decides its verdicts) and direction.
pub fn default_dir(
    repo: &Path,
    good: &str,
    bad: &str,
    (scenario, inputs): (&str, &str),
    fix: bool,
) -> Result<PathBuf> {
    let (g, b) = (state::resolve(repo, good)?, state::resolve(repo, bad)?);
    let mut h = Sha256::new();
    h.update(format!(
        "{}\n{g}\n{b}\n{scenario}\n{fix}\n{inputs}",
        repo.display()
    ));
    Ok(crate::cache::root()
        .join("bisect")
        .join(format!("{scenario}-{}", &hex::encode(h.finalize())[..12])))
}

pub struct Answer {
    pub state: State,
    /// Index in `state.commits` of the first commit in the new state (the first known one
    /// when the bisection could not decide).
    pub found: usize,
    /// Skipped commits that could be the answer instead.
    pub doubt: Vec<String>,
    pub confidence: f64,
    pub builds: usize,
    /// Why the bisection names no commit (the budget was spent, the confidence is below
    /// what was asked, the answer may be a commit that does not build), when it names none.
    pub undecided: Option<String>,
    /// The range the answer lies in: the last commit known in the old state (none: the old
    /// end) and the first known in the new state.
    pub range: (Option<String>, String),
}

impl Answer {
    /// The commit found, when the bisection decided.
    pub fn culprit(&self) -> Option<&str> {
        match self.undecided {
            None => Some(&self.state.commits[self.found]),
            Some(_) => None,
        }
    }
}

/// Bisect; none when interrupted (the state is saved: the same command resumes).
pub async fn bisect(o: &BisectOptions) -> Result<Option<Answer>> {
    std::fs::create_dir_all(&o.dir)?;
    let _lock = crate::cache::lock(&o.dir.join("bisect.lock"), false)?;
    crate::cache::touch(&o.dir);
    let (dir, ends) = (o.dir.clone(), state::Ends::of(o));
    let mut state = tokio::task::spawn_blocking(move || state::load(&dir, &ends)).await??;
    let progress = Progress::new(1);
    let searched = async {
        if state.plan.is_none() {
            steps::racy_end(o, &mut state, &progress).await?;
        }
        steps::search(o, &mut state, &progress).await
    }
    .await;
    progress.clear();
    match searched {
        Ok(stopped) => Ok(Some(answer(o, state, stopped))),
        Err(e) if crate::interrupt::is(&e) => {
            state::save(&o.dir, &state)?;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The first commit of the new state, the skipped commits that could be it, and the
/// confidence the clean verdicts give together (each from the trials of its clean runs);
/// undecided when the search stopped early (`stopped`), when the confidence is below what
/// was asked, or when a skipped commit could be the answer.
fn answer(o: &BisectOptions, state: State, stopped: Option<String>) -> Answer {
    let plan = state.plan.expect("measured");
    let target = state.target.clone().expect("chosen");
    let verdicts = state.verdicts();
    let search = Search {
        verdicts: &verdicts,
        after: steps::after(&state),
    };
    let (found, doubt) = search.answer();
    let (lo, _) = search.bounds();
    let confidence = state
        .steps
        .iter()
        .filter(|s| s.verdict == Some(CommitVerdict::Clean))
        .map(|s| {
            let runs = steps::stored(o, &s.commit).unwrap_or_default();
            plan.detection(verdict::clean_trials(&steps::observed(
                &runs,
                &target,
                plan.forced,
            )))
        })
        .product();
    let builds = steps::builds(&state) as usize;
    let undecided = stopped
        .or_else(|| {
            (!doubt.is_empty()).then(|| {
                format!(
                    "{} skipped commit(s) before it could be the answer instead",
                    doubt.len()
                )
            })
        })
        .or_else(|| {
            (confidence < o.confidence).then(|| {
                format!(
                    "confidence {confidence:.3} is below the {:.2} asked for",
                    o.confidence
                )
            })
        });
    Answer {
        doubt: doubt.iter().map(|&i| state.commits[i].clone()).collect(),
        range: (
            lo.checked_sub(1).map(|i| state.commits[i].clone()),
            state.commits[found].clone(),
        ),
        state,
        found,
        confidence,
        builds,
        undecided,
    }
}

#[cfg(test)]
mod tests {
    use super::steps::uninterrupted;
    use super::verdict::RunClass;
    use super::*;
    use crate::report::formats::ReportType;
    use crate::report::parser::Report;
    use crate::results::evidence;
    use crate::run::RunResult;
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
            None,
            &crate::results::canary::Detectors::Proven,
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

    /// A clean run on a machine whose canary showed a detector silent is inconclusive for
    /// the commit: it counts toward a skip, never toward a clean verdict.
    #[test]
    fn a_clean_run_on_a_silent_machine_is_never_clean() {
        let mut r = run(Outcome::Completed, &[]);
        r.evidence = evidence::judge(
            crate::config::scenario::Kind::Race,
            &Outcome::Completed,
            &[],
            &vec![],
            None,
            &crate::results::canary::Detectors::Silent("lockdep did not fire".into()),
        );
        let sig = TargetReport::Signature("s".into());
        assert_eq!(classify(&r, &sig), RunClass::Infra);
        let plan = verdict::Plan::from_racy_end(5, 5, 0.95, 3).unwrap();
        let three = vec![(RunClass::Infra, 1); 3];
        assert!(matches!(plan.verdict(&three), Some(CommitVerdict::Skip(_))));
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

    /// A saved bisection holds only for what decided its verdicts: an edited scenario file
    /// (another schedule), another configuration, run count, duration or target gives another
    /// key, and a state saved under one key is refused under another, naming the directory.
    #[test]
    fn a_bisection_is_resumed_only_with_the_inputs_it_was_made_with() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("race.toml");
        std::fs::write(
            &file,
            "kind = \"race\"\nworkload = \"epoll_close_race\"\ncpus = 2\nduration = \"5s\"\n",
        )
        .unwrap();
        let scenario = crate::config::scenario::load(&file).unwrap();
        let none = None;
        let key = |scenario: &Scenario, runs: u64, target: &Option<TargetReport>| {
            inputs_key(&Inputs {
                scenario,
                variant_config: "baseline",
                runs,
                duration: None,
                target,
                confidence: 0.95,
                patches: false,
            })
            .unwrap()
        };
        let first = key(&scenario, 5, &none);
        assert_eq!(first, key(&scenario, 5, &none));
        // A night's bisection applies the variant's patches: never the same state as lab
        // bisect's of the same configuration without them.
        let patched = inputs_key(&Inputs {
            scenario: &scenario,
            variant_config: "baseline",
            runs: 5,
            duration: None,
            target: &none,
            confidence: 0.95,
            patches: true,
        })
        .unwrap();
        assert_ne!(first, patched);
        assert_ne!(first, key(&scenario, 6, &none));
        assert_ne!(first, key(&scenario, 5, &Some(TargetReport::Any)));
        std::fs::write(
            &file,
            "kind = \"race\"\nworkload = \"epoll_close_race\"\ncpus = 2\nduration = \"9s\"\n",
        )
        .unwrap();
        let edited = key(&scenario, 5, &none);
        assert_ne!(first, edited);

        let state = |inputs: &str| state::State {
            repo: dir.path().into(),
            fix: false,
            commits: vec!["c".into()],
            racy_end: "c".into(),
            target: None,
            plan: None,
            rate_runs: (0, 0),
            steps: vec![],
            inputs: Some(inputs.into()),
        };
        let ends = |inputs: &str| state::Ends {
            repo: dir.path().into(),
            good: "g".into(),
            bad: "b".into(),
            fix: false,
            target: None,
            inputs: inputs.into(),
        };
        state::save(dir.path(), &state(&first)).unwrap();
        assert!(state::load(dir.path(), &ends(&first)).is_ok());
        let refused = state::load(dir.path(), &ends(&edited))
            .unwrap_err()
            .to_string();
        assert!(
            refused.starts_with(&format!(
                "{} holds a bisection made with another",
                dir.path().display()
            )),
            "{refused}"
        );
    }
}
