//! `lab merge`: the shards of one night put back together. Checks that they belong to one
//! plan and that none is missing or there twice, copies their runs into one night directory
//! (laid out as an unsharded night's), then records it exactly as `lab nightly` records a
//! night it ran itself: the same files, the history, regressions decided once.

use super::record::{self, Ran};
use super::NightOutcome;
use crate::config::lab::LabConfig;
use crate::results::night::NightResults;
use crate::results::shard::{Merged, Shard};
use crate::results::RunResult;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub struct MergeOptions {
    pub shards: Vec<PathBuf>,
    pub out: PathBuf,
    /// Merge what is there when shards are missing; the night is marked incomplete.
    pub allow_partial: bool,
    /// How the merged night's bisections run their runs.
    pub how: crate::run::How,
}

/// A shard's partial night as read from its directory.
#[derive(Debug)]
struct Partial {
    dir: PathBuf,
    results: NightResults,
    shard: Shard,
}

fn read(dir: &Path) -> Result<Partial> {
    let results = NightResults::read(dir)
        .context("a shard's directory is the --out of `lab nightly --shard K/N`")?;
    let Some(shard) = results.shard.clone() else {
        bail!(
            "{} is a whole night, not a shard (it was run without --shard)",
            dir.display()
        );
    };
    let partial = Partial {
        dir: dir.to_path_buf(),
        results,
        shard,
    };
    against_its_plan(&partial)?;
    Ok(partial)
}

/// A shard as its own plan says it must be, checked before anything is copied: a schema
/// this lab reads, names that stay inside the night, the share the assignment gives its
/// index, and in each cell exactly the runs of that share (none missing, none added, none
/// renumbered).
fn against_its_plan(p: &Partial) -> Result<()> {
    let what = format!("shard {} ({})", p.shard.name(), p.dir.display());
    if p.results.schema > crate::results::night::SCHEMA_VERSION {
        bail!(
            "{what}: results.json schema {} is newer than this lab reads ({}): merge with \
             the lab that ran the shards",
            p.results.schema,
            crate::results::night::SCHEMA_VERSION
        );
    }
    let plan = &p.shard.plan;
    for c in &plan.cells {
        crate::name::cell_dir(Path::new(""), &c.variant, &c.scenario)
            .map_err(|e| anyhow::anyhow!("{what}: its plan's {e}"))?;
    }
    let costs: Vec<super::shard::CellCost> = plan
        .cells
        .iter()
        .map(|c| super::shard::CellCost {
            variant: &c.variant,
            scenario: &c.scenario,
            runs: c.runs,
            run_ms: c.run_ms,
        })
        .collect();
    let spec = super::ShardSpec::try_new(p.shard.index, p.shard.count)
        .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    let share = super::shard::share(&costs, spec);
    if share != p.shard.share {
        bail!("{what}: the share it says it ran is not the one its plan gives shard {spec}");
    }
    for cell in &p.results.cells {
        let mut expected: Vec<u32> = share
            .iter()
            .filter(|s| s.variant == cell.variant && s.scenario == cell.scenario)
            .flat_map(|s| s.first..s.first + s.runs)
            .collect();
        expected.sort_unstable();
        let mut found: Vec<u32> = cell.runs.iter().map(|r| r.index).collect();
        found.sort_unstable();
        if cell.note.is_none() && !cell.runs.is_empty() && found != expected {
            let missing: Vec<u32> = expected
                .iter()
                .filter(|i| !found.contains(i))
                .copied()
                .collect();
            let foreign: Vec<u32> = found
                .iter()
                .filter(|i| !expected.contains(i))
                .copied()
                .collect();
            bail!(
                "{what}: {} × {} holds runs {found:?}, its share is {expected:?} (missing \
                 {missing:?}, not its own {foreign:?}): a shard's runs are merged only as \
                 they were run",
                cell.variant,
                cell.scenario
            );
        }
    }
    Ok(())
}

/// The shards by index, checked: one plan, N distinct shards; the missing ones (an error
/// unless `allow_partial`).
fn checked(partials: Vec<Partial>, allow_partial: bool) -> Result<(Vec<Partial>, Vec<u32>)> {
    let Some(first) = partials.first() else {
        bail!("no shard to merge");
    };
    let (plan, count) = (first.shard.plan.clone(), first.shard.count);
    let first_dir = first.dir.clone();
    let mut by_index: BTreeMap<u32, Partial> = BTreeMap::new();
    for p in partials {
        if p.shard.count != count {
            bail!(
                "shard {} ({}) is one of {} shards, {} is one of {count}: not the same night",
                p.shard.name(),
                p.dir.display(),
                p.shard.count,
                first_dir.display()
            );
        }
        if let Some(why) = plan.difference(&p.shard.plan) {
            bail!(
                "shard {} ({}) belongs to another plan than {}: {why}",
                p.shard.name(),
                p.dir.display(),
                first_dir.display()
            );
        }
        if let Some(other) = by_index.get(&p.shard.index) {
            bail!(
                "shard {} is there twice: {} and {}",
                p.shard.name(),
                other.dir.display(),
                p.dir.display()
            );
        }
        by_index.insert(p.shard.index, p);
    }
    let missing: Vec<u32> = (1..=count).filter(|i| !by_index.contains_key(i)).collect();
    if !missing.is_empty() && !allow_partial {
        let names: Vec<String> = missing.iter().map(|i| format!("{i}/{count}")).collect();
        bail!(
            "shard(s) {} of this night are missing (merged: {}); merge them all, or pass \
             --allow-partial for a night marked incomplete",
            names.join(", "),
            by_index
                .values()
                .map(|p| format!("{} from {}", p.shard.name(), p.dir.display()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok((by_index.into_values().collect(), missing))
}

/// Copy a run's directory (console, agent log, outcome) into the merged night.
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry?;
        let rel = entry.path().strip_prefix(from)?;
        let dest = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest)?;
        } else if entry.file_type().is_file() {
            crate::files::copy(entry.path(), &dest).with_context(|| {
                format!(
                    "cannot copy {} to {}",
                    entry.path().display(),
                    dest.display()
                )
            })?;
        }
    }
    Ok(())
}

/// Each planned cell with the runs of every shard at hand, their directories copied under
/// `out`; what is amiss (a kernel built differently on two shards, a run's files missing)
/// goes to `errors`.
fn combine(
    plan: &crate::results::shard::PlanIdentity,
    partials: &[Partial],
    out: &Path,
    errors: &mut Vec<String>,
) -> Result<Vec<Ran>> {
    let mut ran: Vec<Ran> = Vec::new();
    for planned in &plan.cells {
        let (variant, scenario) = (&planned.variant, &planned.scenario);
        let mut cell = None;
        let mut kernel: Option<(crate::kernel::Metadata, String)> = None;
        let mut runs: Vec<RunResult> = Vec::new();
        let dest = crate::name::cell_dir(out, variant, scenario).map_err(anyhow::Error::msg)?;
        for p in partials {
            let Some(c) = p
                .results
                .cells
                .iter()
                .find(|c| &c.variant == variant && &c.scenario == scenario)
            else {
                continue;
            };
            cell.get_or_insert_with(|| c.clone());
            if let Some(k) = &c.kernel {
                match &kernel {
                    Some((first, from)) if first.key != k.key => errors.push(format!(
                        "{variant} was built differently on shard {from} (kernel {}) and \
                         shard {} (kernel {}): another tree, series or compiler; the \
                         night's runs of it are not of one kernel",
                        first.key,
                        p.shard.name(),
                        k.key
                    )),
                    Some(_) => {}
                    None => kernel = Some((k.clone(), p.shard.name())),
                }
            }
            for run in &c.runs {
                let name = crate::name::run_dir_name(run.index);
                let from = crate::name::cell_dir(&p.dir, variant, scenario)
                    .map_err(anyhow::Error::msg)?
                    .join(&name);
                let to = dest.join(&name);
                if from.is_dir() {
                    copy_dir(&from, &to)?;
                } else if run.outcome.is_some() {
                    errors.push(format!(
                        "shard {}: {} is missing: run {} of {variant} × {scenario} has no \
                         console or logs in this night",
                        p.shard.name(),
                        from.display(),
                        run.index
                    ));
                }
                runs.push(RunResult {
                    dir: to,
                    ..run.clone()
                });
            }
        }
        // A cell no shard at hand ran: its runs were on a missing shard.
        let Some(mut cell) = cell else { continue };
        runs.sort_by_key(|r| r.index);
        // The assignment gives each run to one shard; two shards with one run is not a night.
        if let Some(w) = runs.windows(2).find(|w| w[0].index == w[1].index) {
            bail!(
                "run {} of {variant} × {scenario} is in two shards: they were not given their \
                 shares by one assignment (another lab version?)",
                w[0].index
            );
        }
        if !runs.is_empty() {
            std::fs::create_dir_all(&dest)?;
            crate::files::write(dest.join("runs.json"), serde_json::to_vec_pretty(&runs)?)?;
        }
        cell.note = None;
        cell.runs = vec![];
        ran.push(Ran {
            cell,
            kernel: kernel.map(|(k, _)| k),
            runs,
        });
    }
    Ok(ran)
}

/// Merge the shards in `opts.shards` into `opts.out`, record the night in `lab`'s history,
/// then look for the commits behind its changes (the merged night bisects; shards never do).
pub async fn merge(lab: &LabConfig, opts: &MergeOptions) -> Result<NightOutcome> {
    let began = std::time::SystemTime::now();
    let mut outcome = merge_shards(lab, opts)?;
    super::culprit::find(lab, opts.how, &mut outcome, &opts.out).await?;
    super::bound_cache(lab, began);
    Ok(outcome)
}

/// The shards merged and recorded.
fn merge_shards(lab: &LabConfig, opts: &MergeOptions) -> Result<NightOutcome> {
    let partials = opts
        .shards
        .iter()
        .map(|d| read(d))
        .collect::<Result<Vec<_>>>()?;
    let (partials, missing) = checked(partials, opts.allow_partial)?;
    let plan = partials[0].shard.plan.clone();
    let count = partials[0].shard.count;
    crate::events::note(format!(
        "merging {} of {count} shards into {}; history {}",
        partials.len(),
        opts.out.display(),
        lab.history.display()
    ));
    let lab_toml = lab
        .plan_bytes()
        .with_context(|| format!("cannot read {} or its suppression list", lab.file.display()))?;
    if crate::results::shard::PlanIdentity::lab_sha256(&lab_toml) != plan.lab_sha256 {
        crate::events::warn(format!(
            "{} (with its suppression list) is not the lab the shards ran (sha256 {}); its \
             history is used, the shards' plan is merged",
            lab.file.display(),
            &plan.lab_sha256[..12]
        ));
    }

    let mut errors: Vec<String> = missing
        .iter()
        .map(|i| format!("shard {i}/{count} is missing: its runs are not in this night"))
        .collect();
    let ran = combine(&plan, &partials, &opts.out, &mut errors)?;
    for p in &partials {
        errors.extend(
            p.results
                .errors
                .iter()
                .map(|e| format!("shard {}: {e}", p.shard.name())),
        );
    }
    let started = partials
        .iter()
        .map(|p| p.results.started.clone())
        .min()
        .unwrap_or_else(super::now);
    let uids: Vec<&str> = partials.iter().map(|p| p.results.identity()).collect();
    let uid = NightResults::merged_uid(&uids);
    let merged = Merged {
        count,
        shards: partials
            .iter()
            .map(|p| (p.shard.index, p.dir.display().to_string()))
            .collect(),
        missing,
    };
    let mut damaged = Vec::new();
    let history = super::checked_history(&lab.history, &mut damaged)?;
    errors.splice(0..0, damaged);
    record::night(
        lab,
        &opts.out,
        ran,
        &plan.commits,
        errors,
        history,
        (started, uid),
        Some(merged),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::night::{CellResult, Counts, SCHEMA_VERSION};
    use crate::results::shard::{PlanCell, PlanIdentity};

    fn plan(lab: &str) -> PlanIdentity {
        PlanIdentity {
            lab_sha256: lab.repeat(64),
            commits: [("debian:linux-source-6.12".to_string(), None)].into(),
            cells: vec![PlanCell {
                variant: "baseline".into(),
                scenario: "epoll-dmabuf-race".into(),
                plan_key: "k".into(),
                runs: 4,
                run_ms: 40_000,
            }],
        }
    }

    /// A shard's directory with the runs of the one cell its plan gives it (the share as
    /// the assignment makes it; `first` is where that share starts, checked).
    fn shard_dir(
        root: &Path,
        name: &str,
        index: u32,
        count: u32,
        lab: &str,
        first: u32,
    ) -> PathBuf {
        let dir = root.join(name);
        let p = plan(lab);
        let costs: Vec<crate::nightly::shard::CellCost> = p
            .cells
            .iter()
            .map(|c| crate::nightly::shard::CellCost {
                variant: &c.variant,
                scenario: &c.scenario,
                runs: c.runs,
                run_ms: c.run_ms,
            })
            .collect();
        let share = crate::nightly::shard::share(
            &costs,
            crate::nightly::ShardSpec::try_new(index, count).unwrap(),
        );
        assert_eq!(share[0].first, first);
        let runs: Vec<RunResult> = share
            .iter()
            .flat_map(|s| s.first..s.first + s.runs)
            .map(|i| RunResult {
                // A run that counts: the history records it.
                evidence: crate::results::evidence::Evidence::Clean { unproven: None },
                ..RunResult::skipped(i, dir.join(format!("x/run-{i:03}")), String::new())
            })
            .collect();
        let results = NightResults {
            uid: format!("shard-{index}"),
            schema: SCHEMA_VERSION,
            lab: "l".into(),
            config: "lab.toml".into(),
            started: format!("2026-11-28T0{index}:00:00Z"),
            ended: "2026-11-28T09:00:00Z".into(),
            night: None,
            cells: vec![CellResult {
                variant: "baseline".into(),
                scenario: "epoll-dmabuf-race".into(),
                source: "debian:linux-source-6.12".into(),
                plan_key: "k".into(),
                kernel: None,
                runs,
                commit: None,
                expect: Some("pass".into()),
                note: None,
                runs_planned: 4,
                duration_ms: 1000,
                counts: Counts::default(),
            }],
            changes: vec![],
            culprits: vec![],
            timelines: vec![],
            errors: vec![],
            shard: Some(Shard {
                index,
                count,
                plan: p,
                share,
            }),
            merged: None,
        };
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("results.json"),
            serde_json::to_vec(&results).unwrap(),
        )
        .unwrap();
        dir
    }

    fn check(dirs: &[PathBuf], allow_partial: bool) -> Result<(Vec<Partial>, Vec<u32>)> {
        checked(
            dirs.iter().map(|d| read(d).unwrap()).collect(),
            allow_partial,
        )
    }

    #[test]
    fn shards_of_one_plan_are_accepted_and_a_missing_one_is_named() {
        let root = tempfile::tempdir().unwrap();
        let one = shard_dir(root.path(), "s1", 1, 2, "a", 1);
        let two = shard_dir(root.path(), "s2", 2, 2, "a", 3);
        let (ok, missing) = check(&[two.clone(), one.clone()], false).unwrap();
        assert_eq!(ok.iter().map(|p| p.shard.index).collect::<Vec<_>>(), [1, 2]);
        assert!(missing.is_empty());

        let e = check(std::slice::from_ref(&one), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("shard(s) 2/2") && e.contains("missing"), "{e}");
        let (_, missing) = check(std::slice::from_ref(&one), true).unwrap();
        assert_eq!(missing, [2]);
    }

    #[test]
    fn a_shard_of_another_plan_or_twice_the_same_shard_is_refused_by_name() {
        let root = tempfile::tempdir().unwrap();
        let one = shard_dir(root.path(), "s1", 1, 2, "a", 1);
        let other = shard_dir(root.path(), "other", 2, 2, "b", 3);
        let e = check(&[one.clone(), other.clone()], false)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&other.display().to_string()), "{e}");
        assert!(
            e.contains("shard 2/2") && e.contains("lab.toml or suppression list differs"),
            "{e}"
        );

        let again = shard_dir(root.path(), "again", 1, 2, "a", 1);
        let e = check(&[one.clone(), again.clone()], false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("shard 1/2 is there twice"), "{e}");
        assert!(e.contains(&again.display().to_string()), "{e}");

        let three = shard_dir(root.path(), "three", 1, 3, "a", 1);
        let e = check(&[one, three], false).unwrap_err().to_string();
        assert!(e.contains("one of 3 shards"), "{e}");

        let whole = root.path().join("whole");
        std::fs::create_dir_all(&whole).unwrap();
        let mut results: NightResults =
            serde_json::from_slice(&std::fs::read(root.path().join("s1/results.json")).unwrap())
                .unwrap();
        results.shard = None;
        std::fs::write(
            whole.join("results.json"),
            serde_json::to_vec(&results).unwrap(),
        )
        .unwrap();
        let e = read(&whole).err().unwrap().to_string();
        assert!(e.contains("not a shard"), "{e}");
    }

    /// A shard edited after its run, however: refused by name before anything is copied.
    #[test]
    fn a_shard_that_is_not_as_its_plan_says_is_refused_before_anything_is_copied() {
        type Edit = fn(&mut NightResults);
        let table: &[(Edit, &str)] = &[
            (
                |r| {
                    let shard = r.shard.as_mut().unwrap();
                    shard.plan.cells[0].variant = "../../ESCAPED-by-merge".into();
                    shard.share[0].variant = "../../ESCAPED-by-merge".into();
                    r.cells[0].variant = "../../ESCAPED-by-merge".into();
                },
                "cannot name a directory",
            ),
            (
                |r| {
                    r.cells[0].runs.pop();
                },
                "missing [2]",
            ),
            (|r| r.cells[0].runs[1].index = 999, "not its own [999]"),
            (|r| r.schema = 99, "schema 99 is newer"),
            (
                |r| r.shard.as_mut().unwrap().share[0].runs = 3,
                "the share it says it ran",
            ),
            (
                |r| r.shard.as_mut().unwrap().index = 7,
                "shard 7 of 2 does not exist",
            ),
        ];
        for (edit, needle) in table {
            let root = tempfile::tempdir().unwrap();
            let one = shard_dir(root.path(), "s1", 1, 2, "a", 1);
            let file = one.join("results.json");
            let mut r: NightResults =
                serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
            edit(&mut r);
            std::fs::write(&file, serde_json::to_vec(&r).unwrap()).unwrap();
            let e = format!("{:#}", read(&one).unwrap_err());
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn the_merged_night_has_every_run_once_in_order_in_its_own_directory() {
        let root = tempfile::tempdir().unwrap();
        let one = shard_dir(root.path(), "s1", 1, 2, "a", 1);
        let two = shard_dir(root.path(), "s2", 2, 2, "a", 3);
        let lab_file = root.path().join("lab.toml");
        std::fs::write(&lab_file, "").unwrap();
        let lab = LabConfig {
            file: lab_file,
            name: "l".into(),
            kernels: root.path().into(),
            scenarios: root.path().into(),
            results: root.path().into(),
            history: root.path().join("history.sqlite"),
            duration: None,
            cells: vec![],
            compare: None,
            bisect: Default::default(),
            cache_limit_mib: crate::config::lab::DEFAULT_CACHE_LIMIT_MIB,
            suppressions: Default::default(),
        };
        let out = root.path().join("night");
        let opts = MergeOptions {
            shards: vec![two, one],
            out: out.clone(),
            allow_partial: false,
            how: Default::default(),
        };
        let night = merge_shards(&lab, &opts).unwrap();
        // The same shards merged again are the same night: recorded once.
        let again = MergeOptions {
            out: root.path().join("night-again"),
            shards: opts.shards.clone(),
            allow_partial: false,
            how: Default::default(),
        };
        let second = merge_shards(&lab, &again).unwrap();
        assert_eq!(second.results.uid, night.results.uid);
        assert_eq!(second.results.night, night.results.night);
        let nights: i64 = rusqlite::Connection::open(&lab.history)
            .unwrap()
            .query_row("SELECT COUNT(*) FROM nights", [], |row| row.get(0))
            .unwrap();
        assert_eq!(nights, 1);
        let cell = &night.results.cells[0];
        let indices: Vec<u32> = cell.runs.iter().map(|r| r.index).collect();
        assert_eq!(indices, [1, 2, 3, 4]);
        assert!(cell.runs.iter().all(|r| r.dir.starts_with(&out)));
        assert_eq!(night.results.merged.as_ref().unwrap().shards.len(), 2);
        assert!(out.join("results.json").is_file() && out.join("report.html").is_file());
        assert!(std::fs::read_to_string(out.join("summary.md"))
            .unwrap()
            .contains("merged from 2 of 2 shards"));
        let stored: Vec<RunResult> = serde_json::from_slice(
            &std::fs::read(out.join("baseline/epoll-dmabuf-race/runs.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(stored.len(), 4);
    }
}
