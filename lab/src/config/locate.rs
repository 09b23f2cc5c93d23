//! Where the lab's inputs are when the command line does not say: `lab.toml`, `kernels/` and
//! `scenarios/` in the current directory or the nearest parent that has them.

use super::lab::LabConfig;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// `given`, or `name` in the current directory or the nearest parent where `found` holds.
fn find_up(given: Option<PathBuf>, name: &str, found: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    given.or_else(|| {
        std::env::current_dir()
            .ok()?
            .ancestors()
            .map(|d| d.join(name))
            .find(|p| found(p))
    })
}

/// Where variants and scenarios are defined (the command line's `--kernels`/`--scenarios`).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Dirs {
    /// Directory of variant definitions (default: kernels/ here or in a parent directory).
    #[arg(long)]
    pub kernels: Option<PathBuf>,
    /// Directory of scenarios (default: scenarios/ here or in a parent directory).
    #[arg(long)]
    pub scenarios: Option<PathBuf>,
    /// The lab's suppression list: reports it knows and leaves out of verdicts, each with
    /// its reason (default: suppressions.toml here or in a parent directory; none if absent).
    #[arg(long, value_name = "FILE")]
    pub suppressions: Option<PathBuf>,
}

/// `given`, or the directory `name/` here or above (`kernels`, `scenarios`).
pub fn dir(name: &str, given: Option<PathBuf>) -> Result<PathBuf> {
    find_up(given, name, Path::is_dir)
        .ok_or_else(|| anyhow::anyhow!("no {name}/ directory here or above; pass --{name} DIR"))
}

/// The scenario `name` of the scenarios directory `given` (else scenarios/ here or above).
pub fn scenario(given: Option<PathBuf>, name: &str) -> Result<super::scenario::Scenario> {
    Ok(super::scenario::find(&dir("scenarios", given)?, name)?)
}

/// The suppression list `given` (which must exist), else suppressions.toml here or above,
/// else none.
pub fn suppressions(given: Option<PathBuf>) -> Result<super::suppress::Suppressions> {
    match find_up(given, "suppressions.toml", Path::is_file) {
        Some(file) => Ok(super::suppress::Suppressions::load(&file)?),
        None => Ok(Default::default()),
    }
}

/// The lab `given`, or lab.toml here or above, loaded and checked.
pub fn lab(given: Option<PathBuf>) -> Result<LabConfig> {
    let file = find_up(given, "lab.toml", Path::is_file)
        .ok_or_else(|| anyhow::anyhow!("no lab.toml here or above; pass --config FILE"))?;
    let file = file
        .canonicalize()
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    Ok(LabConfig::load(
        &file,
        super::lab::variant_names,
        super::scenario::names,
    )?)
}
