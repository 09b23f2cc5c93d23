//! The night's kernels: every variant of the cells that run tonight, built once (cached),
//! each from the commit the plan pinned it to. A variant that does not build fails its cells,
//! not the night; an interruption ends the night.

use super::plan::Plan;
use crate::kernel::{self, Built};
use anyhow::Result;
use std::collections::BTreeMap;

/// The built variants by name, and the builds that failed.
pub async fn variants(plan: &Plan) -> Result<(BTreeMap<String, Built>, Vec<String>)> {
    let mut built: BTreeMap<String, Built> = BTreeMap::new();
    let mut errors = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for cell in plan.to_run() {
        let name = cell.variant.name.clone();
        if !seen.insert(name.clone()) {
            continue;
        }
        let variant = cell.variant.clone();
        let result = tokio::task::spawn_blocking(move || {
            kernel::build(&variant, &kernel::BuildOptions::default())
        })
        .await?;
        match result {
            Ok(b) => {
                crate::events::emit(kernel::ready(&name, &b));
                built.insert(name, b);
            }
            Err(e) if crate::interrupt::is(&e) => return Err(e),
            Err(e) => errors.push(format!("build of {name} failed: {e:#}")),
        }
    }
    Ok((built, errors))
}
