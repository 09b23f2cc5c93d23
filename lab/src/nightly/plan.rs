//! A night's plan: every cell of lab.toml's matrix with its scenario, runs, source line and
//! the commit its git source points at now. Each variant is pinned to that commit here, so
//! every variant of a line is built from the commit the history records even if the branch
//! moves during the night.

use super::shard::{CellCost, ShardSpec, RUN_OVERHEAD_MS};
use crate::config::lab::LabConfig;
use crate::config::scenario::Scenario;
use crate::kernel::variant::{Catalog, Source, Variant};
use crate::results::history::History;
use crate::results::night::{CellResult, NightResults};
use crate::results::shard::{PlanCell, PlanIdentity, Share};
use anyhow::Result;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// One cell, ready to build and run.
pub struct PlannedCell {
    /// The cell as results.json shows it (runs come later).
    pub result: CellResult,
    pub scenario: Scenario,
    pub runs: u32,
    /// The first run's index (1 but on a shard, which runs a range of a cell's runs).
    pub first: u32,
    /// Expected wall time of one run: what shards are balanced by.
    pub run_ms: u64,
    /// What to build: the variant with its git source pinned to the planned commit.
    pub variant: Variant,
}

pub struct Plan {
    pub cells: Vec<PlannedCell>,
    /// Source line → the commit it was resolved to (none for non-git sources).
    pub commits: BTreeMap<String, Option<String>>,
    /// Source lines that could not be resolved.
    pub errors: Vec<String>,
}

/// The line of development a variant's kernel comes from: nights are compared along it.
pub fn source_line(source: &Source) -> String {
    match source {
        Source::Debian { package } => format!("debian:{package}"),
        Source::Git { repo, reference } => format!("git:{repo}@{reference}"),
        Source::Path { path } => format!("path:{}", path.display()),
    }
}

/// The source a line of [`source_line`] names (a path line's path as written).
pub fn source_of_line(line: &str) -> Option<Source> {
    let (kind, rest) = line.split_once(':')?;
    Some(match kind {
        "debian" => Source::Debian {
            package: rest.to_string(),
        },
        "git" => {
            let (repo, reference) = rest.rsplit_once('@')?;
            Source::Git {
                repo: repo.to_string(),
                reference: reference.to_string(),
            }
        }
        "path" => Source::Path { path: rest.into() },
        _ => return None,
    })
}

/// Everything besides the kernel that shapes a cell's result: the scenario, its duration
/// and the number of runs.
pub fn plan_key(
    scenario: &Scenario,
    runs: u32,
    duration: Option<runner::quantity::WorkDuration>,
) -> Result<String> {
    let mut h = Sha256::new();
    h.update(crate::run::scenario_key(scenario, duration)?);
    h.update(format!("runs={runs}"));
    Ok(hex::encode(&h.finalize()[..8]))
}

/// The commit a git source's ref points at now (none for other sources).
fn commit_of(source: &Source) -> Result<Option<String>> {
    Ok(match source {
        Source::Git { .. } => match crate::kernel::source::identify(source)?.kind {
            crate::kernel::source::Kind::Git { commit, .. } => Some(commit),
            _ => None,
        },
        _ => None,
    })
}

/// `variant` built from exactly `commit` when it has a git source.
pub fn pinned(mut variant: Variant, commit: Option<&str>) -> Variant {
    if let (Source::Git { reference, .. }, Some(commit)) = (&mut variant.source, commit) {
        *reference = commit.to_string();
    }
    variant
}

/// The plan for lab.toml's matrix (reads kernels/, scenarios/ and git: blocking).
pub fn plan(
    lab: &LabConfig,
    runs: Option<runner::quantity::RunCount>,
    duration: Option<runner::quantity::WorkDuration>,
) -> Result<Plan> {
    let catalog = Catalog::load(&lab.kernels)?;
    let duration = duration.or(lab.duration);
    let mut commits: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut errors = Vec::new();
    let mut cells = Vec::new();
    for cell in &lab.cells {
        let variant = catalog.get(&cell.variant)?;
        let scenario = crate::config::scenario::find(&lab.scenarios, &cell.scenario)?;
        let runs = runs.unwrap_or(cell.runs).get();
        let source = source_line(&variant.source);
        if !commits.contains_key(&source) {
            let commit = commit_of(&variant.source).unwrap_or_else(|e| {
                errors.push(format!("{source}: {e:#}"));
                None
            });
            commits.insert(source.clone(), commit);
        }
        let commit = commits[&source].clone();
        let result = CellResult {
            variant: cell.variant.clone(),
            scenario: cell.scenario.clone(),
            commit: commit.clone(),
            source,
            plan_key: plan_key(&scenario, runs, duration)?,
            kernel: None,
            runs: vec![],
            expect: cell.expect.clone(),
            note: None,
            runs_planned: runs,
            duration_ms: duration.unwrap_or(scenario.duration).millis(),
            counts: Default::default(),
        };
        let run_ms = result.duration_ms + RUN_OVERHEAD_MS;
        cells.push(PlannedCell {
            result,
            scenario,
            runs,
            first: 1,
            run_ms,
            variant: pinned(variant, commit.as_deref()),
        });
    }
    Ok(Plan {
        cells,
        commits,
        errors,
    })
}

impl Plan {
    /// A git line whose commit every one of its cells already tested with this plan is not
    /// run again: its cells get a note saying so. Returns the notes, one per line.
    pub fn skip_tested(&mut self, history: &History) -> Result<Vec<String>> {
        let mut notes = Vec::new();
        for (source, commit) in &self.commits {
            let Some(commit) = commit else { continue };
            let keys: Vec<(String, String, String)> = self
                .cells
                .iter()
                .map(|c| &c.result)
                .filter(|c| &c.source == source)
                .map(|c| (c.variant.clone(), c.scenario.clone(), c.plan_key.clone()))
                .collect();
            if let Some(n) = history.tested(source, commit, &keys)? {
                let note = format!(
                    "already tested at {} (night {n}; --force runs it again)",
                    &commit[..commit.len().min(12)]
                );
                notes.push(format!("{source}: {note}"));
                for c in self.cells.iter_mut().filter(|c| &c.result.source == source) {
                    c.result.note = Some(note.clone());
                }
            }
        }
        Ok(notes)
    }

    /// What every shard of this plan agrees on (`lab_toml`: lab.toml's bytes and its
    /// suppression list's, `LabConfig::plan_bytes`).
    pub fn identity(&self, lab_toml: &[u8]) -> PlanIdentity {
        PlanIdentity {
            lab_sha256: PlanIdentity::lab_sha256(lab_toml),
            commits: self.commits.clone(),
            cells: self
                .cells
                .iter()
                .map(|c| PlanCell {
                    variant: c.result.variant.clone(),
                    scenario: c.result.scenario.clone(),
                    plan_key: c.result.plan_key.clone(),
                    runs: c.runs,
                    run_ms: c.run_ms,
                })
                .collect(),
        }
    }

    /// Expect each cell's runs to cost what they cost in `night` (a whole or merged night of
    /// this lab): the mean wall time of its runs there. Cells it did not run keep their
    /// scenario's duration plus the boot. Returns how many cells took a measured cost.
    pub fn measured_costs(&mut self, night: &NightResults) -> usize {
        let mut measured = 0;
        for cell in &mut self.cells {
            let Some(before) = night.cells.iter().find(|c| {
                c.variant == cell.result.variant
                    && c.scenario == cell.result.scenario
                    && c.plan_key == cell.result.plan_key
            }) else {
                continue;
            };
            let walls: Vec<u64> = before
                .runs
                .iter()
                .filter_map(|r| r.record.as_ref())
                .map(|rec| rec.timing.prepare_ms + rec.timing.ended_ms)
                .collect();
            if !walls.is_empty() {
                cell.run_ms = walls.iter().sum::<u64>() / walls.len() as u64;
                measured += 1;
            }
        }
        measured
    }

    /// Keep only shard `spec`'s runs (cells with none are dropped); returns the share.
    pub fn restrict(&mut self, spec: ShardSpec) -> Vec<Share> {
        let costs: Vec<CellCost> = self
            .cells
            .iter()
            .map(|c| CellCost {
                variant: &c.result.variant,
                scenario: &c.result.scenario,
                runs: c.runs,
                run_ms: c.run_ms,
            })
            .collect();
        let share = super::shard::share(&costs, spec);
        let mut cells = Vec::new();
        for cell in std::mem::take(&mut self.cells) {
            let mine = share
                .iter()
                .find(|s| s.variant == cell.result.variant && s.scenario == cell.result.scenario);
            if let Some(s) = mine {
                cells.push(PlannedCell {
                    runs: s.runs,
                    first: s.first,
                    ..cell
                });
            }
        }
        self.cells = cells;
        share
    }

    /// The cells that will be built and run tonight.
    pub fn to_run(&self) -> impl Iterator<Item = &PlannedCell> {
        self.cells.iter().filter(|c| c.result.note.is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of source comes back from its line as it went in (a git repository whose
    /// path holds an `@` included: the reference is what follows the last one).
    #[test]
    fn a_source_line_names_its_source() {
        for source in [
            Source::Debian {
                package: "linux-source-6.12".into(),
            },
            Source::Git {
                repo: "/srv/a@b/linux".into(),
                reference: "main".into(),
            },
            Source::Path {
                path: "/src/linux".into(),
            },
        ] {
            assert_eq!(source_of_line(&source_line(&source)), Some(source));
        }
        assert_eq!(source_of_line("svn:x"), None);
        assert_eq!(source_of_line("git:no-reference"), None);
    }
    use std::path::Path;
    use std::process::Command;

    fn git(repo: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(["-c", "user.name=lab", "-c", "user.email=lab@localhost"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    #[test]
    fn variants_are_pinned_to_the_commit_planned_even_when_the_branch_moves() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(&tree).unwrap();
        git(&tree, &["init", "-q", "-b", "main"]);
        std::fs::write(tree.join("f"), "1").unwrap();
        git(&tree, &["add", "f"]);
        git(&tree, &["commit", "-q", "-m", "one"]);
        let planned = git(&tree, &["rev-parse", "HEAD"]);
        let kernels = dir.path().join("kernels");
        std::fs::create_dir_all(kernels.join("configs")).unwrap();
        for f in crate::kernel::variant::DEFAULT_FRAGMENTS {
            std::fs::write(kernels.join(format!("configs/{f}.config")), "").unwrap();
        }
        for v in ["a", "b"] {
            std::fs::write(
                kernels.join(format!("{v}.toml")),
                format!("[source]\ngit = {{ repo = {:?}, ref = \"main\" }}\n", tree),
            )
            .unwrap();
        }
        let scenarios = dir.path().join("scenarios");
        std::fs::create_dir_all(&scenarios).unwrap();
        std::fs::write(
            scenarios.join("s.toml"),
            "kind = \"race\"\nworkload = \"epoll_close_race\"\n",
        )
        .unwrap();
        let file = dir.path().join("lab.toml");
        std::fs::write(
            &file,
            "[[matrix]]\nvariants = [\"a\", \"b\"]\nscenarios = [\"s\"]\n",
        )
        .unwrap();
        let lab = LabConfig::load(
            &file,
            crate::config::lab::variant_names,
            crate::config::scenario::names,
        )
        .unwrap();
        let plan = plan(
            &lab,
            Some(runner::quantity::RunCount::new(1).unwrap()),
            None,
        )
        .unwrap();

        // The branch moves after planning (a push during the night).
        std::fs::write(tree.join("f"), "2").unwrap();
        git(&tree, &["commit", "-q", "-am", "two"]);
        assert_ne!(git(&tree, &["rev-parse", "HEAD"]), planned);

        for cell in &plan.cells {
            assert_eq!(cell.result.commit.as_deref(), Some(planned.as_str()));
            assert_eq!(cell.result.source, format!("git:{}@main", tree.display()));
            // What gets built identifies as the planned commit, not the branch's new head.
            let ident = crate::kernel::source::identify(&cell.variant.source).unwrap();
            assert_eq!(ident.id, format!("git:{}@{planned}", tree.display()));
        }
    }
}
