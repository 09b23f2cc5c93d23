//! The night's runs: every cell whose kernel built, all queued at once on one pool of VMs
//! (runs of all cells interleave, so a change of host load falls on every cell alike).

use super::plan::Plan;
use super::NightOptions;
use crate::config::suppress::Suppressions;
use crate::kernel::{Built, Metadata};
use crate::results::night::CellResult;
use crate::run::{batch, BatchOptions, Pool, Progress, RunResult, Target};
use anyhow::Result;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Each cell's kernel metadata (none when it did not run) and runs, in plan order.
pub async fn cells(
    plan: &Plan,
    built: &BTreeMap<String, Built>,
    opts: &NightOptions,
    lab_duration: Option<runner::quantity::WorkDuration>,
    suppressions: &Arc<Suppressions>,
) -> Result<Vec<(Option<Metadata>, Vec<RunResult>)>> {
    let (cpus, memory) = plan.cells.iter().fold((1, 1), |(c, m), cell| {
        (
            cell.scenario.cpus.get().max(c),
            cell.scenario.memory_mib.max(m),
        )
    });
    let pool = Pool::sized(opts.how.jobs, cpus, memory);
    let progress = Progress::new(pool.jobs);
    let duration = opts.how.duration.or(lab_duration);
    let runnable = |cell: &super::plan::PlannedCell| {
        built
            .get(&cell.result.variant)
            .filter(|_| cell.result.note.is_none())
    };
    for cell in &plan.cells {
        if runnable(cell).is_some() {
            let batch = format!("{} × {}", cell.result.variant, cell.result.scenario);
            let each = duration.unwrap_or(cell.scenario.duration).get();
            progress.plan(&batch, cell.runs, each);
        }
    }
    let total = plan.cells.len();
    let work = plan.cells.iter().enumerate().map(|(i, cell)| {
        let b = runnable(cell);
        let (pool, progress) = (&pool, &progress);
        async move {
            let Some(b) = b else {
                return Ok((None, vec![]));
            };
            let result = &cell.result;
            let label = format!("{} × {}", result.variant, result.scenario);
            let batch_opts = BatchOptions {
                runs: runner::quantity::RunCount::new(cell.runs.into())?,
                how: crate::run::How {
                    duration,
                    ..opts.how
                },
                out: crate::name::cell_dir(&opts.out, &result.variant, &result.scenario)
                    .map_err(anyhow::Error::msg)?,
                append: false,
                first: Some(cell.first),
                pool: pool.clone(),
                progress: progress.clone(),
                label,
                suppressions: suppressions.clone(),
                source: None,
            };
            let target = Target::built(&result.variant, &cell.variant, b);
            let runs = batch(&cell.scenario, &target, &batch_opts).await?;
            // The cell's line as soon as its last run ends (cells interleave in the pool).
            let done = CellResult {
                runs: runs.clone(),
                ..result.clone()
            };
            progress.println(&format!(
                "[{}/{total}] {} → {}",
                i + 1,
                batch_opts.label,
                crate::results::render::cell_with_expectation(&done)
            ));
            anyhow::Ok((Some(b.metadata.clone()), runs))
        }
    });
    let done = futures::future::join_all(work).await;
    progress.clear();
    done.into_iter().collect()
}
