//! A night's culprits. For every regression (a new signature) and every fix (a signature
//! gone that was there every recent night) of a cell on a git source, the commit behind it:
//! bisected between the commit of the cell's previous night and tonight's, with the cell's
//! variant (its patches applied at every commit), its scenario (its schedule, when it has
//! one) and the signature as the target, within lab.toml's `[bisect]` budget for the whole
//! night. A change already bisected (same cell, signature, direction and range, or an answer
//! that lies inside tonight's range) is not bisected again: the earlier answer is reported.
//! A signature still there tonight shows the culprit an earlier night found for it. A flaky
//! change (the history's rule) is never bisected: it claims nothing.

use super::NightOutcome;
use crate::bisect::{self, BisectOptions, Budget, TargetReport};
use crate::config::lab::LabConfig;
use crate::kernel::variant::Catalog;
use crate::results::culprit::{Culprit, Direction};
use crate::results::history::{Cell, History};
use crate::results::night::{CellResult, NightResults};
use crate::run::How;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One change to find the commit of.
struct Wanted {
    direction: Direction,
    cell: Cell,
    signature: String,
    title: String,
    /// (old end, new end): the previous night's commit and tonight's.
    old: String,
    new: String,
    /// This night's id in the history for the cell's source line.
    night: i64,
}

/// Find the culprits of `outcome`'s changes, keep them in the history and the night's files
/// (rewritten in `out`). A bisection's failure is the culprit's "undecided", not the night's
/// error; an interruption ends the night as any other does.
pub async fn find(lab: &LabConfig, how: How, outcome: &mut NightOutcome, out: &Path) -> Result<()> {
    let results = &mut outcome.results;
    if results.shard.is_some() || results.night.is_none() {
        return Ok(());
    }
    let path = lab.history.clone();
    let mut history = match History::open(&path) {
        Ok(h) => h,
        Err(e) => {
            results.errors.push(format!(
                "no culprit was looked for: {:#}",
                anyhow::Error::from(e)
            ));
            return super::record::write_files(results, out);
        }
    };
    if let Err(e) = bisect_changes(lab, how, &mut history, results).await {
        if crate::interrupt::is(&e) {
            return Err(e);
        }
        // The night is recorded: a failure here is the night's error, its files still written.
        results
            .errors
            .push(format!("looking for the culprits: {e:#}"));
    }
    super::record::write_files(results, out)
}

/// Bisect the night's changes (or find their earlier answers), then each cell's timeline.
async fn bisect_changes(
    lab: &LabConfig,
    how: How,
    history: &mut History,
    results: &mut NightResults,
) -> Result<()> {
    let (wanted, notes) = wanted(history, results)?;
    for note in notes {
        crate::events::note(note);
    }
    let mut budget = Budget {
        builds: Some(lab.bisect.builds),
        deadline: Some(Instant::now() + lab.bisect.wall),
    };
    for w in wanted {
        let known = history.culprits(&w.cell, &w.signature, w.direction)?;
        if let Some(k) = known.iter().find(|k| same_range(&k.culprit, &w)) {
            crate::events::note(format!(
                "{} × {}: {} already bisected by the night of {}",
                w.cell.variant, w.cell.scenario, w.title, k.night_started
            ));
            results.culprits.push(Culprit {
                earlier: Some(k.night_started.clone()),
                wall_s: 0.0,
                ..k.culprit.clone()
            });
            continue;
        }
        if lab.bisect.off {
            crate::events::note(format!(
                "{} × {}: not bisected ([bisect] off = true in {})",
                w.cell.variant,
                w.cell.scenario,
                lab.file.display()
            ));
            continue;
        }
        let started = Instant::now();
        let culprit = bisect_one(lab, how, &w, budget).await?;
        budget.builds = budget.builds.map(|b| b.saturating_sub(culprit.builds));
        let culprit = Culprit {
            wall_s: started.elapsed().as_secs_f64(),
            ..culprit
        };
        crate::events::note(format!(
            "{} × {}: {}",
            w.cell.variant,
            w.cell.scenario,
            culprit.line()
        ));
        history.record_culprit(w.night, &culprit)?;
        results.culprits.push(culprit);
    }
    earlier_answers(history, results)?;
    timelines(history, results)
}

/// Each cell's last nights and every culprit the history knows for its signatures: the
/// timeline report.html draws.
fn timelines(history: &History, results: &mut NightResults) -> Result<()> {
    let mut out = Vec::new();
    for cell in &results.cells {
        let hcell = history_cell(cell);
        let Some(night) = history.night_of(results.identity(), &cell.source)? else {
            continue;
        };
        let nights = history.timeline(&hcell, night, crate::results::history::TIMELINE_NIGHTS)?;
        if nights.is_empty() {
            continue;
        }
        let mut culprits = Vec::new();
        let signatures: std::collections::BTreeSet<&String> =
            nights.iter().flat_map(|n| n.signatures.keys()).collect();
        for sig in signatures {
            for direction in [Direction::Introduced, Direction::Fixed] {
                culprits.extend(
                    history
                        .culprits(&hcell, sig, direction)?
                        .into_iter()
                        .map(|k| k.culprit),
                );
            }
        }
        out.push(crate::results::night::Timeline {
            variant: cell.variant.clone(),
            scenario: cell.scenario.clone(),
            nights,
            culprits,
        });
    }
    results.timelines = out;
    Ok(())
}

/// Whether an earlier answer covers this change: the same range, or a commit found that lies
/// inside tonight's range (old end excluded, new end included).
fn same_range(known: &Culprit, w: &Wanted) -> bool {
    if (known.old.as_str(), known.new.as_str()) == (w.old.as_str(), w.new.as_str()) {
        return true;
    }
    let Some(commit) = &known.commit else {
        return false;
    };
    let Some(repo) = repo_of(&w.cell.source) else {
        return false;
    };
    // `git merge-base --is-ancestor` answers with its exit status: an error is "no".
    let is_ancestor = |a: &str, b: &str| {
        crate::bisect::state::git(&repo, &["merge-base", "--is-ancestor", a, b]).is_ok()
    };
    is_ancestor(commit, &w.new) && !is_ancestor(commit, &w.old)
}

/// The repository of a git source line, resolved as builds resolve it.
fn repo_of(line: &str) -> Option<PathBuf> {
    let source = super::plan::source_of_line(line)?;
    match crate::kernel::source::identify(&source).ok()?.kind {
        crate::kernel::source::Kind::Git { repo, .. } => Some(repo),
        _ => None,
    }
}

/// The changes of the night to find commits for, and why the others are left alone.
fn wanted(history: &History, results: &NightResults) -> Result<(Vec<Wanted>, Vec<String>)> {
    let (mut wanted, mut notes) = (Vec::new(), Vec::new());
    for change in &results.changes {
        let direction = match change.kind.as_str() {
            "regression" => Direction::Introduced,
            "fixed" => Direction::Fixed,
            _ => continue,
        };
        let Some(cell) = cell_of(results, &change.variant, &change.scenario) else {
            continue;
        };
        let Some(new) = cell
            .commit
            .clone()
            .filter(|_| cell.source.starts_with("git:"))
        else {
            continue;
        };
        let hcell = history_cell(cell);
        let night = history
            .night_of(results.identity(), &cell.source)?
            .context("the night is not in the history")?;
        let Some(old) = history.previous_commit(&hcell, night)? else {
            notes.push(format!(
                "{} × {}: {} — the cell's previous night knew no commit: nothing to bisect",
                change.variant, change.scenario, change.title
            ));
            continue;
        };
        if old == new {
            notes.push(format!(
                "{} × {}: {} changed at the same commit {}: no commit caused it (flaky, or \
                 the machine), nothing to bisect",
                change.variant,
                change.scenario,
                change.title,
                &new[..12.min(new.len())]
            ));
            continue;
        }
        wanted.push(Wanted {
            direction,
            cell: hcell,
            signature: change.signature.clone(),
            title: change.title.clone(),
            old,
            new,
            night,
        });
    }
    Ok((wanted, notes))
}

fn cell_of<'a>(results: &'a NightResults, variant: &str, scenario: &str) -> Option<&'a CellResult> {
    results
        .cells
        .iter()
        .find(|c| c.variant == variant && c.scenario == scenario)
}

fn history_cell(cell: &CellResult) -> Cell {
    Cell {
        source: cell.source.clone(),
        variant: cell.variant.clone(),
        scenario: cell.scenario.clone(),
        plan_key: cell.plan_key.clone(),
    }
}

/// The signatures still there tonight (no change) whose introduction an earlier night
/// bisected: its answer, shown again.
fn earlier_answers(history: &History, results: &mut NightResults) -> Result<()> {
    let mut found = Vec::new();
    for cell in results
        .cells
        .iter()
        .filter(|c| c.source.starts_with("git:"))
    {
        let hcell = history_cell(cell);
        let signatures: std::collections::BTreeSet<&str> = cell
            .runs
            .iter()
            .filter_map(|r| r.evidence.finding().map(|(_, s)| s))
            .collect();
        for sig in signatures {
            let listed = |c: &Culprit| c.is_about(&cell.variant, &cell.scenario, sig);
            if results.culprits.iter().any(listed) || found.iter().any(listed) {
                continue;
            }
            if let Some(k) = history
                .culprits(&hcell, sig, Direction::Introduced)?
                .into_iter()
                .next()
            {
                found.push(Culprit {
                    earlier: Some(k.night_started),
                    wall_s: 0.0,
                    ..k.culprit
                });
            }
        }
    }
    results.culprits.extend(found);
    Ok(())
}

/// Bisect one change within what is left of the night's budget.
async fn bisect_one(lab: &LabConfig, how: How, w: &Wanted, budget: Budget) -> Result<Culprit> {
    let mut culprit = Culprit::new(
        w.direction,
        (
            (
                w.cell.source.as_str(),
                w.cell.variant.as_str(),
                w.cell.scenario.as_str(),
                w.cell.plan_key.as_str(),
            ),
            (w.signature.as_str(), w.title.as_str()),
        ),
        (&w.old, &w.new),
    );
    let options = match options(lab, how, w, budget) {
        Ok(o) => o,
        Err(e) => {
            culprit.undecided = Some(format!("{e:#}"));
            return Ok(culprit);
        }
    };
    culprit.dir = options.dir.display().to_string();
    crate::events::note(format!(
        "bisecting {} × {}: {} ({} {}..{}) in {}",
        w.cell.variant,
        w.cell.scenario,
        w.title,
        w.direction.name(),
        &w.old[..12.min(w.old.len())],
        &w.new[..12.min(w.new.len())],
        options.dir.display()
    ));
    match bisect::bisect(&options).await {
        Ok(Some(answer)) => {
            culprit.confidence = answer.confidence;
            culprit.builds = answer.builds as u32;
            culprit.commit = answer.culprit().map(str::to_string);
            culprit.subject = culprit
                .commit
                .as_deref()
                .map(|c| answer.state.subject(c))
                .unwrap_or_default();
            culprit.range = answer.undecided.is_some().then(|| answer.range.clone());
            culprit.undecided = answer.undecided;
        }
        Ok(None) => {
            crate::events::note(format!(
                "the bisection was interrupted: its state is kept in {}; the history has the \
                 night but no culprit for it",
                options.dir.display()
            ));
            return Err(crate::interrupt::Interrupted.into());
        }
        Err(e) if crate::interrupt::is(&e) => return Err(e),
        Err(e) => culprit.undecided = Some(format!("{e:#}")),
    }
    Ok(culprit)
}

/// The bisection of one change: the cell's variant (patches kept) on its own repository,
/// its scenario for the night's duration, the signature as the target.
fn options(lab: &LabConfig, how: How, w: &Wanted, budget: Budget) -> Result<BisectOptions> {
    let catalog = Catalog::load(&lab.kernels)?;
    let variant = catalog.get(&w.cell.variant)?;
    let repo = repo_of(&w.cell.source).context("the source is not a git repository")?;
    let scenario = crate::config::scenario::find(&lab.scenarios, &w.cell.scenario)?;
    let target = Some(TargetReport::Signature(w.signature.clone()));
    let duration = how.duration.or(lab.duration);
    let fix = w.direction == Direction::Fixed;
    let inputs = bisect::inputs_key(&bisect::Inputs {
        scenario: &scenario,
        variant_config: &w.cell.variant,
        runs: lab.bisect.runs.get().into(),
        duration: duration.map(|d| d.get()),
        target: &target,
        confidence: lab.bisect.confidence,
        patches: true,
    })?;
    // For a fix the racy end is the old one: bisect's --bad.
    let (good, bad) = match fix {
        true => (w.new.clone(), w.old.clone()),
        false => (w.old.clone(), w.new.clone()),
    };
    let dir = bisect::default_dir(&repo, &good, &bad, (&scenario.name, &inputs), fix)?;
    Ok(BisectOptions {
        repo,
        good,
        bad,
        fix,
        scenario,
        config_variant: variant,
        runs: lab.bisect.runs,
        target,
        confidence: lab.bisect.confidence,
        how: How {
            duration,
            jobs: Some(1),
            ..how
        },
        dir,
        inputs,
        suppressions: std::sync::Arc::new(lab.suppressions.clone()),
        keep_patches: true,
        budget,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::history::RunRow;
    use crate::results::night::ChangeOut;

    const SOURCE: &str = "git:/r@main";

    fn row(reports: &[(&str, &str)]) -> RunRow {
        RunRow {
            variant: "branch".into(),
            scenario: "s".into(),
            plan_key: "k".into(),
            index: 1,
            verdict: if reports.is_empty() { "pass" } else { "fail" }.into(),
            outcome: "completed".into(),
            first_report_ms: None,
            reports: reports
                .iter()
                .map(|(s, t)| (s.to_string(), t.to_string()))
                .collect(),
        }
    }

    /// The night `uid` at `commit`, recorded with `reports`, as results whose changes are
    /// the history's.
    fn night(h: &mut History, uid: &str, commit: &str, reports: &[(&str, &str)]) -> NightResults {
        let id = h
            .record((uid, uid), SOURCE, Some(commit), &[row(reports)])
            .unwrap();
        let changes = h.changes(id).unwrap();
        let mut cell: CellResult = serde_json::from_value(serde_json::json!({
            "variant": "branch", "scenario": "s", "source": SOURCE, "plan_key": "k",
            "kernel": null, "runs": [], "commit": commit,
        }))
        .unwrap();
        cell.commit = Some(commit.into());
        serde_json::from_value::<NightResults>(serde_json::json!({
            "schema": 1, "lab": "l", "config": "lab.toml", "started": uid, "ended": uid,
            "uid": uid, "night": id, "cells": [], "changes": [], "errors": [],
        }))
        .map(|mut n| {
            n.cells = vec![cell];
            n.changes = changes.iter().map(ChangeOut::from).collect();
            n
        })
        .unwrap()
    }

    const UAF: (&str, &str) = ("sig", "KASAN: slab-use-after-free Read in f");

    /// What a night bisects: a regression between the previous night's commit and tonight's,
    /// a fix the other way; never a flaky change (a signature that merely stopped showing
    /// claims no fix), never a change at the commit the previous night tested.
    #[test]
    fn only_regressions_and_fixes_between_two_commits_are_bisected() {
        let mut h = History::in_memory().unwrap();
        night(&mut h, "n1", "c1", &[]);
        let n2 = night(&mut h, "n2", "c2", &[UAF]);
        let (w, _) = wanted(&h, &n2).unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!(
            (w[0].direction, w[0].old.as_str(), w[0].new.as_str()),
            (Direction::Introduced, "c1", "c2")
        );
        // Gone after one night of three: flaky, nothing claimed.
        let n3 = night(&mut h, "n3", "c3", &[]);
        assert_eq!(n3.changes[0].kind, "flaky");
        let (w, _) = wanted(&h, &n3).unwrap();
        assert!(w.is_empty());
        // New at the commit the night before tested: no commit's doing, said so.
        let mut h = History::in_memory().unwrap();
        night(&mut h, "k1", "c1", &[]);
        let k2 = night(&mut h, "k2", "c1", &[UAF]);
        assert_eq!(k2.changes[0].kind, "regression");
        let (w, notes) = wanted(&h, &k2).unwrap();
        assert!(w.is_empty());
        assert!(notes[0].contains("changed at the same commit"), "{notes:?}");

        // There in every night of the window, then gone: a fix, bisected from the last night
        // that had it.
        let mut h = History::in_memory().unwrap();
        night(&mut h, "m1", "c1", &[UAF]);
        night(&mut h, "m2", "c2", &[UAF]);
        let m3 = night(&mut h, "m3", "c3", &[]);
        let (w, _) = wanted(&h, &m3).unwrap();
        assert_eq!(
            (w[0].direction, w[0].old.as_str(), w[0].new.as_str()),
            (Direction::Fixed, "c2", "c3")
        );
    }

    /// Never twice: an earlier answer covers tonight's change when its range is tonight's, or
    /// when the commit it found lies inside tonight's range (after the old end, up to the new);
    /// not when it found nothing over another range, nor when its commit is outside.
    #[test]
    fn an_earlier_answer_covers_the_same_range_or_a_commit_inside_it() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path();
        let git = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .arg("-C")
                .arg(repo)
                .args(["-c", "user.name=t", "-c", "user.email=t@t"])
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        git(&["init", "-q", "-b", "main"]);
        let c: Vec<String> = (0..5)
            .map(|i| {
                git(&["commit", "-q", "--allow-empty", "-m", &format!("c{i}")]);
                git(&["rev-parse", "HEAD"])
            })
            .collect();
        let source = format!("git:{}@main", repo.display());
        let w = |old: &str, new: &str| Wanted {
            direction: Direction::Introduced,
            cell: Cell {
                source: source.clone(),
                variant: "v".into(),
                scenario: "s".into(),
                plan_key: "k".into(),
            },
            signature: "sig".into(),
            title: "t".into(),
            old: old.into(),
            new: new.into(),
            night: 1,
        };
        let known = |old: &str, new: &str, commit: Option<&str>| Culprit {
            commit: commit.map(str::to_string),
            ..Culprit::new(
                Direction::Introduced,
                ((&source, "v", "s", "k"), ("sig", "t")),
                (old, new),
            )
        };
        // The same range, decided or not.
        assert!(same_range(
            &known(&c[0], &c[3], Some(&c[2])),
            &w(&c[0], &c[3])
        ));
        assert!(same_range(&known(&c[0], &c[3], None), &w(&c[0], &c[3])));
        // Another range holding the commit found (the new end included).
        assert!(same_range(
            &known(&c[0], &c[2], Some(&c[2])),
            &w(&c[1], &c[4])
        ));
        // The commit found is the old end or before it: not tonight's cause.
        assert!(!same_range(
            &known(&c[0], &c[1], Some(&c[1])),
            &w(&c[1], &c[4])
        ));
        // Undecided over another range: bisected again.
        assert!(!same_range(&known(&c[0], &c[2], None), &w(&c[1], &c[4])));
    }
}
