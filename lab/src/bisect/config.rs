//! The configuration every step of a bisection builds with: a variant's (its config base and
//! fragments, not its patches), or a list of fragments of kernels/configs/ on allnoconfig.

use crate::config::detector;
use crate::kernel::variant::{Catalog, ConfigBase, Fragment, Variant};
use anyhow::Result;

/// `--variant-config`: a variant's configuration (`baseline+kcsan` under another detector), or
/// comma-separated fragments on allnoconfig.
pub fn config_variant(catalog: &Catalog, given: &str) -> Result<Variant> {
    if catalog.known().contains_key(given) {
        return Ok(catalog.get(given)?);
    }
    let base = catalog.get("baseline").or_else(|_| {
        catalog
            .names()
            .first()
            .map(|n| catalog.get(n))
            .unwrap_or_else(|| catalog.get(given))
    })?;
    let configs = base
        .fragments
        .first()
        .and_then(|f| f.path.parent())
        .map(std::path::Path::to_path_buf)
        .ok_or_else(|| anyhow::anyhow!("no kernels/configs/ to take fragments from"))?;
    let fragments = given
        .split(',')
        .map(|name| {
            let path = configs.join(format!("{}.config", name.trim()));
            if path.is_file() {
                Ok(Fragment {
                    name: name.trim().to_string(),
                    path,
                })
            } else {
                Err(anyhow::anyhow!(
                    "--variant-config {given:?}: no variant named {name:?} and no {}; variants: {}",
                    path.display(),
                    catalog.names().join(", ")
                ))
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Variant {
        config_base: ConfigBase::Allnoconfig,
        detector: detector::of_fragments(fragments.iter().map(|f| f.name.as_str())).map(|d| d.name),
        fragments,
        ..base
    })
}
