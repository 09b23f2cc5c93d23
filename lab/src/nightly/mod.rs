//! A night, in four phases: plan every variant × scenario cell of lab.toml (git sources
//! resolved to commits and pinned there; lines already tested skipped), build every variant
//! once, run every cell on one pool of VMs, then record the runs in the history, judge them
//! against each cell's last comparable night and write the night's directory (results.json,
//! junit.xml, summary.md, report.html). An interrupted night records nothing.
//!
//! A night can also run in pieces on many machines: a shard (`--shard K/N`) plans the whole
//! night, runs its share of the runs and writes a partial night without touching the history;
//! `merge` puts the shards back together and records the night as a whole one is recorded.

mod build;
mod culprit;
mod execute;
pub mod merge;
pub mod plan;
mod record;
pub mod shard;

pub use plan::{plan_key, source_line};
pub use shard::ShardSpec;

/// A night's directory: `out` (new or empty), else a new `<results>/<timestamp>`.
pub fn night_dir(
    lab: &crate::config::lab::LabConfig,
    out: Option<std::path::PathBuf>,
) -> anyhow::Result<std::path::PathBuf> {
    match out {
        Some(dir) => crate::cache::empty_dir(&dir),
        None => crate::cache::fresh_dir(&lab.results, &crate::cache::stamp()),
    }
}

use crate::config::lab::LabConfig;
use crate::results::history::History;
use crate::results::night::NightResults;
use crate::results::shard::Shard;
use crate::run::How;
use anyhow::{Context, Result};
use std::path::PathBuf;

pub struct NightOptions {
    pub out: PathBuf,
    /// Overrides every cell's runs.
    pub runs: Option<runner::quantity::RunCount>,
    pub how: How,
    /// Run cells whose git commit was already tested with the same plan.
    pub force: bool,
    /// Run only this share of the night's runs and leave a partial night (no history).
    pub shard: Option<ShardSpec>,
    /// A night of this lab whose runs' wall times the shares are balanced by.
    pub costs: Option<PathBuf>,
}

/// How a night ended.
pub struct NightOutcome {
    pub results: NightResults,
    pub regressions: usize,
    pub infrastructure_failed: bool,
}

impl NightOutcome {
    /// 0 clean, 1 a regression, 2 infrastructure failure.
    pub fn exit_status(&self) -> i32 {
        if self.infrastructure_failed {
            2
        } else if self.regressions > 0 {
            1
        } else {
            0
        }
    }
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// The history, checked page by page before the night runs anything. A damaged one is moved
/// aside, never reset in place: the night says where it went and starts a new one (and counts
/// that as an infrastructure error).
/// Its folder is created when missing; a path that is not a regular file (a folder, a FIFO)
/// or under a regular file is refused, naming what is in the way, and never moved aside.
fn checked_history(path: &std::path::Path, errors: &mut Vec<String>) -> Result<History> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Err(e) = std::fs::create_dir_all(dir) {
            let blocker = dir
                .ancestors()
                .find(|a| a.symlink_metadata().is_ok_and(|m| !m.is_dir()));
            match blocker {
                Some(b) => anyhow::bail!(
                    "the history {}: its folder cannot be made: {} is {}, not a folder \
                     (set `history =` in lab.toml to another path)",
                    path.display(),
                    b.display(),
                    crate::files::kind_of(&b.symlink_metadata()?)
                ),
                None => {
                    return Err(e).with_context(|| {
                        format!(
                            "the history {}: cannot create {}",
                            path.display(),
                            dir.display()
                        )
                    })
                }
            }
        }
    }
    if path.exists() {
        crate::files::check_regular(path).with_context(|| {
            format!(
                "the history {} (set `history =` in lab.toml to a file's path)",
                path.display()
            )
        })?;
    }
    let checked = History::open(path).and_then(|h| h.check().map(|()| h));
    match checked {
        Ok(h) => Ok(h),
        Err(e) if path.exists() => {
            // The error with its cause ("the history X: database disk image is malformed").
            let e = format!("{:#}", anyhow::Error::from(e));
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let aside = path.with_file_name(format!("{name}.damaged-{}", crate::cache::stamp()));
            std::fs::rename(path, &aside).with_context(|| {
                format!("{e}; and it cannot be moved aside to {}", aside.display())
            })?;
            let text = format!(
                "{e}: moved aside to {}; this night starts a new history there (earlier nights \
                 are not compared with). What the damaged file still holds can be read with \
                 `sqlite3 {} .recover`",
                aside.display(),
                aside.display()
            );
            crate::events::warn(text.clone());
            errors.push(text);
            Ok(History::open(path)?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Keep the cache within lab.toml's limit after a night: the least recently used kernels,
/// snapshots, object trees and bisections go, never one used since `since` (the night's own).
pub fn bound_cache(lab: &LabConfig, since: std::time::SystemTime) {
    let limit = lab.cache_limit_mib << 20;
    let root = crate::cache::root();
    match crate::cache::evict::evict(&root, limit, since) {
        Ok(out) if out.removed.is_empty() && out.after <= limit => {}
        Ok(out) => {
            let gb = |b: u64| b as f64 / (1u64 << 30) as f64;
            crate::events::note(format!(
                "cache {}: {:.1} GiB, limit {:.1} GiB: evicted {} least recently used ({:.1} GiB), \
                 {:.1} GiB left{}",
                root.display(),
                gb(out.before),
                gb(limit),
                crate::text::count(out.removed.len() as u32, "entry", "entries"),
                gb(out.before - out.after),
                gb(out.after),
                match out.after > limit {
                    true => format!(
                        "; still over: {:.1} GiB in use by this night or another lab, the rest \
                         work trees, sources and results, which are never evicted (raise \
                         [cache] limit in {})",
                        gb(out.kept_in_use),
                        lab.file.display()
                    ),
                    false => String::new(),
                }
            ))
        }
        Err(e) => crate::events::warn(format!("cache {}: {e:#}", root.display())),
    }
}

pub async fn night(lab: &LabConfig, opts: &NightOptions) -> Result<NightOutcome> {
    let began = std::time::SystemTime::now();
    let started = now();
    let uid = crate::results::night::NightResults::fresh_uid(&started, &opts.out);
    let what = match opts.shard {
        Some(spec) => format!("shard {spec} of the night"),
        None => "night".into(),
    };
    crate::events::note(format!(
        "{what} of {} ({} cells) in {}{}",
        lab.file.display(),
        lab.cells.len(),
        opts.out.display(),
        match opts.shard {
            Some(_) => String::new(),
            None => format!("; history {}", lab.history.display()),
        }
    ));
    // A shard leaves the history to the merge. The history is checked before the night's
    // directory is made: a refused night leaves nothing behind.
    let mut damaged = Vec::new();
    let mode = match opts.shard {
        Some(spec) => Mode::Shard(spec),
        None => Mode::Whole(checked_history(&lab.history, &mut damaged)?),
    };
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create {}", opts.out.display()))?;

    // Plan (git is asked off the runtime's thread).
    let (config, runs) = (lab.clone(), opts.runs);
    let duration = opts.how.duration;
    let mut plan =
        tokio::task::spawn_blocking(move || plan::plan(&config, runs, duration)).await??;
    let mode = match mode {
        Mode::Shard(spec) => {
            if let Some(dir) = &opts.costs {
                let night = NightResults::read(dir)?;
                let measured = plan.measured_costs(&night);
                crate::events::note(format!(
                    "shares balanced by the runs of {}: {measured} of {} cells measured there",
                    dir.display(),
                    plan.cells.len()
                ));
            }
            Mode::Shard(take_share(&mut plan, spec, lab)?)
        }
        Mode::Whole(history) => {
            if !opts.force {
                for note in plan.skip_tested(&history)? {
                    crate::events::note(note);
                }
            }
            Mode::Whole(history)
        }
    };
    let (built, mut errors) = build::variants(&plan).await?;
    errors.splice(0..0, plan.errors.drain(..));
    errors.splice(0..0, damaged);
    let suppressions = std::sync::Arc::new(lab.suppressions.clone());
    let runs = execute::cells(&plan, &built, opts, lab.duration, &suppressions).await?;
    // Nothing of an interrupted night goes into the history.
    if crate::interrupt::requested() {
        crate::events::note(format!(
            "nothing of this night goes into the history; its runs so far are in {}",
            opts.out.display()
        ));
        return Err(crate::interrupt::Interrupted.into());
    }
    let commits = plan.commits.clone();
    let ran = record::ran(plan, runs);
    match mode {
        Mode::Shard(shard) => {
            let outcome = record::shard(lab, &opts.out, ran, errors, (started, uid), shard)?;
            bound_cache(lab, began);
            Ok(outcome)
        }
        Mode::Whole(history) => {
            let mut outcome = record::night(
                lab,
                &opts.out,
                ran,
                &commits,
                errors,
                history,
                (started, uid),
                None,
            )?;
            culprit::find(lab, opts.how, &mut outcome, &opts.out).await?;
            bound_cache(lab, began);
            Ok(outcome)
        }
    }
}

/// A whole night, recorded in the history; or a shard (told which, then knowing its share).
enum Mode<S> {
    Whole(History),
    Shard(S),
}

/// Cut the plan down to shard `spec`'s runs; the shard's identity.
fn take_share(plan: &mut plan::Plan, spec: ShardSpec, lab: &LabConfig) -> Result<Shard> {
    let lab_toml = lab
        .plan_bytes()
        .with_context(|| format!("cannot read {} or its suppression list", lab.file.display()))?;
    let identity = plan.identity(&lab_toml);
    let share = plan.restrict(spec);
    let mut variants: Vec<&str> = Vec::new();
    for s in &share {
        if !variants.contains(&s.variant.as_str()) {
            variants.push(&s.variant);
        }
    }
    let expected_ms: u64 = plan.cells.iter().map(|c| c.runs as u64 * c.run_ms).sum();
    crate::events::note(format!(
        "shard {spec}: {} run(s) of {} cell(s), variants {}; expected {:.0} s of runs",
        share.iter().map(|s| s.runs).sum::<u32>(),
        share.len(),
        variants.join(", "),
        expected_ms as f64 / 1000.0
    ));
    Ok(Shard {
        index: spec.index,
        count: spec.count,
        plan: identity,
        share,
    })
}
