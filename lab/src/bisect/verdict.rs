//! Verdicts under flaky reproduction. A commit is *racy* as soon as one run prints the target
//! report (a report is evidence; its absence is not). It is *clean* only after enough clean
//! runs that a race reproducing at the rate measured on the racy end would have shown with
//! the step's confidence. Builds that fail and runs that say nothing make it *skipped*.
//! The answer's confidence is the product, over clean verdicts, of the chance that the race
//! would have shown had the commit been racy: 1 − (1 − p)^trials.
//!
//! A trial is a run for a stress scenario. For a scenario with a schedule it is an applied
//! attempt: the rate is measured per applied attempt at the racy end (a report right after
//! the k-th applied attempt of a run is 1 hit in k trials; a run that reported before any
//! attempt was applied is stress, not evidence of the schedule), and a clean run counts the
//! attempts it applied. A schedule is not assumed to be certain: it is measured like stress.

use crate::results::stats::{wilson, Z95};
use serde::{Deserialize, Serialize};

/// What one run says about the commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunClass {
    /// The target report appeared.
    Target,
    /// The workload ran its whole duration without the target report.
    Clean,
    /// Another kernel report ended the run: it did not test the race for its duration.
    Other,
    /// The run said nothing about the kernel (no output, QEMU died, agent lost).
    Infra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", content = "why", rename_all = "kebab-case")]
pub enum CommitVerdict {
    Racy,
    Clean,
    Skip(String),
}

/// How hard to look at each commit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The reproduction rate assumed for a racy commit: the lower end of the 95 % Wilson
    /// interval measured on the racy end (a point estimate of 3/3 would claim certainty).
    pub rate: f64,
    /// Trials in clean runs that make a commit clean: runs, or, for a schedule, applied
    /// attempts.
    pub clean_runs: u32,
    /// Runs that say nothing before the commit is skipped.
    pub max_infra: u32,
    /// Runs ended by other reports before the commit is skipped.
    pub max_other: u32,
    /// The scenario forces the interleaving (a schedule): `rate` is per applied attempt and a
    /// clean run's trials are the attempts it applied.
    #[serde(default)]
    pub forced: bool,
}

/// Clean runs needed so that a race reproducing with probability `rate` per run shows at
/// least once with probability `confidence`.
pub fn runs_for(rate: f64, confidence: f64) -> u32 {
    if rate >= 1.0 {
        return 1;
    }
    if rate <= 0.0 {
        return u32::MAX;
    }
    ((1.0 - confidence).ln() / (1.0 - rate).ln())
        .ceil()
        .max(1.0) as u32
}

impl Plan {
    /// From the racy end's runs (`hits` of `runs` printed the target): each clean verdict
    /// gets confidence `target^(1/steps)`, so `steps` clean verdicts together keep `target`.
    pub fn from_racy_end(hits: u32, runs: u32, target: f64, steps: u32) -> Option<Plan> {
        if hits == 0 {
            return None;
        }
        let (rate, _) = wilson(hits as u64, runs as u64, Z95);
        let per_step = target.powf(1.0 / steps.max(1) as f64);
        Some(Plan {
            rate,
            clean_runs: runs_for(rate, per_step),
            max_infra: 3,
            max_other: 3,
            forced: false,
        })
    }

    /// For a scenario with a schedule, from the racy end's applied attempts: `hits` reports
    /// that followed an applied attempt in `trials` applied attempts. The same Wilson bound as
    /// for stress; a clean commit needs that many applied attempts in its clean runs.
    pub fn from_schedule(hits: u32, trials: u32, target: f64, steps: u32) -> Option<Plan> {
        Plan::from_racy_end(hits, trials, target, steps).map(|p| Plan { forced: true, ..p })
    }

    /// The verdict the runs so far give, or none while more runs are needed. Each run comes
    /// with its trials (1 for stress; the attempts it applied for a schedule).
    pub fn verdict(&self, runs: &[(RunClass, u32)]) -> Option<CommitVerdict> {
        let count = |c: RunClass| runs.iter().filter(|(r, _)| *r == c).count() as u32;
        if count(RunClass::Target) > 0 {
            return Some(CommitVerdict::Racy);
        }
        if clean_trials(runs) >= self.clean_runs {
            return Some(CommitVerdict::Clean);
        }
        if count(RunClass::Infra) >= self.max_infra {
            return Some(CommitVerdict::Skip(format!(
                "{} runs said nothing about the kernel",
                count(RunClass::Infra)
            )));
        }
        if count(RunClass::Other) >= self.max_other {
            return Some(CommitVerdict::Skip(format!(
                "{} runs ended in other kernel reports",
                count(RunClass::Other)
            )));
        }
        None
    }

    /// The chance a racy commit would have shown in `clean` clean trials.
    pub fn detection(&self, clean: u32) -> f64 {
        1.0 - (1.0 - self.rate).powi(clean as i32)
    }
}

/// The trials of the clean runs among `runs`.
pub fn clean_trials(runs: &[(RunClass, u32)]) -> u32 {
    runs.iter()
        .filter(|(r, _)| *r == RunClass::Clean)
        .map(|(_, n)| n)
        .sum()
}

/// Where the search stands over `commits` (oldest first; the old end is not in the list, the
/// new end is its last element). `before` is the state of the old end: racy when looking
/// for a fix, clean when looking for the commit that brought the race in.
pub struct Search<'a> {
    pub verdicts: &'a [Option<CommitVerdict>],
    /// The state the search looks for the first commit of (racy for a regression).
    pub after: CommitVerdict,
}

impl Search<'_> {
    fn is_after(&self, v: &Option<CommitVerdict>) -> bool {
        v.as_ref() == Some(&self.after)
    }

    fn is_before(&self, v: &Option<CommitVerdict>) -> bool {
        matches!(v, Some(CommitVerdict::Racy | CommitVerdict::Clean)) && !self.is_after(v)
    }

    /// (index after the last commit known to be in the old state or 0, index of the first
    /// commit known to be in the new state).
    pub fn bounds(&self) -> (usize, usize) {
        let n = self.verdicts.len();
        let first_after = self
            .verdicts
            .iter()
            .position(|v| self.is_after(v))
            .unwrap_or(n.saturating_sub(1));
        let lo = self.verdicts[..first_after]
            .iter()
            .rposition(|v| self.is_before(v))
            .map_or(0, |i| i + 1);
        (lo, first_after)
    }

    /// The next commit to test: the untested one nearest the middle of what is left, or
    /// none when the first commit of the new state is found (or only skipped ones are left).
    pub fn next(&self) -> Option<usize> {
        let (lo, hi) = self.bounds();
        let open: Vec<usize> = (lo..hi).filter(|&i| self.verdicts[i].is_none()).collect();
        if open.is_empty() {
            return None;
        }
        let mid = (lo + hi) as f64 / 2.0 - 0.5;
        open.into_iter().min_by(|a, b| {
            (*a as f64 - mid)
                .abs()
                .total_cmp(&(*b as f64 - mid).abs())
                .then(a.cmp(b))
        })
    }

    /// The answer once `next` is none: the first commit of the new state, and the skipped
    /// commits before it that could be it instead.
    pub fn answer(&self) -> (usize, Vec<usize>) {
        let (lo, hi) = self.bounds();
        let doubt = (lo..hi)
            .filter(|&i| matches!(self.verdicts[i], Some(CommitVerdict::Skip(_))))
            .collect();
        (hi, doubt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RunClass::*;

    #[test]
    fn runs_needed_follow_the_rate() {
        // p = 0.5, 95 %: 1 − 0.5^5 = 0.969 ≥ 0.95 > 1 − 0.5^4.
        assert_eq!(runs_for(0.5, 0.95), 5);
        assert_eq!(runs_for(0.1, 0.95), 29);
        assert_eq!(runs_for(1.0, 0.99), 1);
        assert_eq!(runs_for(0.0, 0.5), u32::MAX);
        // A low rate asks for many runs per step.
        assert!(runs_for(0.02, 0.99) > 200);
    }

    #[test]
    fn the_plan_is_conservative_about_a_perfect_racy_end() {
        // 5/5 at the racy end: Wilson's lower bound is 0.566, not 1.
        let plan = Plan::from_racy_end(5, 5, 0.95, 5).unwrap();
        assert!((plan.rate - 0.5655).abs() < 1e-3, "{}", plan.rate);
        // Per step 0.95^(1/5) = 0.98979: ln(0.01021)/ln(0.4345) = 5.51 → 6 clean runs.
        assert_eq!(plan.clean_runs, 6);
        // Five clean verdicts of 6 runs each keep ≥ 0.95 together.
        assert!(plan.detection(6).powi(5) >= 0.95);
        assert!(Plan::from_racy_end(0, 5, 0.95, 5).is_none());
    }

    /// A schedule is measured, not assumed: 17 reports right after the first applied attempt
    /// in 20 runs (3 needed a second) give a rate per applied attempt below 1, a confidence
    /// below 1 for one applied attempt, and a clean verdict only after enough applied attempts.
    #[test]
    fn a_schedule_is_measured_per_applied_attempt() {
        let plan = Plan::from_schedule(20, 23, 0.95, 6).unwrap();
        assert!(plan.forced);
        assert!(plan.rate < 0.87 && plan.rate > 0.6, "{}", plan.rate);
        assert!(plan.detection(1) < 0.9, "{}", plan.detection(1));
        assert!(plan.clean_runs > 1, "{}", plan.clean_runs);
        // One clean run that applied too few attempts does not make a commit clean; a run that
        // applied many does.
        assert_eq!(plan.verdict(&[(Clean, 1)]), None);
        assert_eq!(
            plan.verdict(&[(Clean, 1), (Clean, plan.clean_runs)]),
            Some(CommitVerdict::Clean)
        );
        assert_eq!(plan.verdict(&[(Target, 1)]), Some(CommitVerdict::Racy));
        assert!(plan.detection(plan.clean_runs).powi(6) >= 0.95);
        assert!(Plan::from_schedule(0, 5, 0.95, 6).is_none());
    }

    #[test]
    fn one_report_is_enough_and_silence_needs_numbers() {
        let plan = Plan {
            rate: 0.5,
            clean_runs: 3,
            max_infra: 2,
            max_other: 2,
            forced: false,
        };
        let one = |c: &[RunClass]| c.iter().map(|c| (*c, 1)).collect::<Vec<_>>();
        assert_eq!(
            plan.verdict(&one(&[Clean, Clean, Target])),
            Some(CommitVerdict::Racy)
        );
        assert_eq!(plan.verdict(&one(&[Clean, Clean])), None);
        assert_eq!(
            plan.verdict(&one(&[Clean, Infra, Clean, Clean])),
            Some(CommitVerdict::Clean)
        );
        assert!(matches!(
            plan.verdict(&one(&[Infra, Clean, Infra])),
            Some(CommitVerdict::Skip(_))
        ));
        assert!(matches!(
            plan.verdict(&one(&[Other, Other])),
            Some(CommitVerdict::Skip(why)) if why.contains("other kernel reports")
        ));
    }

    /// Bisect a synthetic history: commits 0..n, the race from `first` on, with skips.
    fn bisect(
        n: usize,
        first: usize,
        unbuildable: &[usize],
        after: CommitVerdict,
    ) -> (usize, Vec<usize>, usize) {
        let mut verdicts: Vec<Option<CommitVerdict>> = vec![None; n];
        let mut steps = 0;
        loop {
            let search = Search {
                verdicts: &verdicts,
                after: after.clone(),
            };
            let Some(i) = search.next() else {
                let (found, doubt) = search.answer();
                return (found, doubt, steps);
            };
            steps += 1;
            let racy = if after == CommitVerdict::Racy {
                i >= first
            } else {
                i < first
            };
            verdicts[i] = Some(if unbuildable.contains(&i) {
                CommitVerdict::Skip("build failed".into())
            } else if racy {
                CommitVerdict::Racy
            } else {
                CommitVerdict::Clean
            });
        }
    }

    #[test]
    fn midpoints_find_the_first_racy_commit_in_log2_steps() {
        for first in 0..30 {
            let (found, doubt, steps) = bisect(30, first, &[], CommitVerdict::Racy);
            assert_eq!(found, first.min(29));
            assert!(doubt.is_empty());
            assert!(steps <= 5, "first {first}: {steps} steps");
        }
    }

    #[test]
    fn a_commit_that_does_not_build_is_stepped_around() {
        for broken in [9usize, 10, 13, 14] {
            let (found, doubt, steps) = bisect(30, 12, &[broken], CommitVerdict::Racy);
            assert_eq!(found, 12, "broken {broken}");
            assert!(doubt.is_empty(), "broken {broken}: {doubt:?}");
            assert!(steps <= 6, "broken {broken}: {steps}");
        }
        // The commit right before the answer does not build: it may be the answer instead.
        let (found, doubt, _) = bisect(30, 12, &[11], CommitVerdict::Racy);
        assert_eq!((found, doubt), (12, vec![11]));
    }

    #[test]
    fn a_fix_is_found_the_same_way() {
        // Racy before commit 20 (the old end too), clean from 20 on.
        let (found, doubt, steps) = bisect(30, 20, &[], CommitVerdict::Clean);
        assert_eq!((found, doubt.len()), (20, 0));
        assert!(steps <= 5);
    }
}
