//! A night, in four phases: plan every variant × scenario cell of lab.toml (git sources
//! resolved to commits and pinned there; lines already tested skipped), build every variant
//! once, run every cell on one pool of VMs, then record the runs in the history, judge them
//! against each cell's last comparable night and write the night's directory (results.json,
//! junit.xml, summary.md, report.html). An interrupted night records nothing.

mod build;
mod execute;
pub mod plan;
mod record;

pub use plan::{plan_key, source_line};

use crate::config::lab::LabConfig;
use crate::results::history::History;
use crate::results::night::NightResults;
use crate::run::How;
use anyhow::{Context, Result};
use std::path::PathBuf;

pub struct NightOptions {
    pub out: PathBuf,
    /// Overrides every cell's runs.
    pub runs: Option<u32>,
    pub how: How,
    /// Run cells whose git commit was already tested with the same plan.
    pub force: bool,
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
fn checked_history(path: &std::path::Path, errors: &mut Vec<String>) -> Result<History> {
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

pub async fn night(lab: &LabConfig, opts: &NightOptions) -> Result<NightOutcome> {
    let started = now();
    crate::events::note(format!(
        "night of {} ({} cells) in {}; history {}",
        lab.file.display(),
        lab.cells.len(),
        opts.out.display(),
        lab.history.display()
    ));
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create {}", opts.out.display()))?;
    if let Some(dir) = lab.history.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut damaged = Vec::new();
    let history = checked_history(&lab.history, &mut damaged)?;

    // Plan (git is asked off the runtime's thread).
    let (config, runs) = (lab.clone(), opts.runs);
    let duration = opts.how.duration;
    let mut plan =
        tokio::task::spawn_blocking(move || plan::plan(&config, runs, duration)).await??;
    if !opts.force {
        for note in plan.skip_tested(&history)? {
            crate::events::note(note);
        }
    }
    let (built, mut errors) = build::variants(&plan).await?;
    errors.splice(0..0, plan.errors.drain(..));
    errors.splice(0..0, damaged);
    let runs = execute::cells(&plan, &built, opts, lab.duration).await?;
    // Nothing of an interrupted night goes into the history.
    if crate::interrupt::requested() {
        crate::events::note(format!(
            "nothing of this night goes into the history; its runs so far are in {}",
            opts.out.display()
        ));
        return Err(crate::interrupt::Interrupted.into());
    }
    record::night(lab, opts, plan, runs, errors, history, started)
}
