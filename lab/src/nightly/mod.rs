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
    let history = History::open(&lab.history)
        .with_context(|| format!("cannot open the history {}", lab.history.display()))?;

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
