//! The programs a scenario brings into the guest (a selftest directory, a reproducer), built
//! for the batch's kernel, and what the workload is told about them.

use super::Target;
use crate::config::scenario::Programs;
use crate::kernel::programs;
use anyhow::{bail, Result};
use std::path::PathBuf;

/// Files for the guest and parameters for the workload; or why the batch cannot run.
#[derive(Debug, Default)]
pub struct Prepared {
    pub extra_files: Vec<(String, PathBuf)>,
    pub params: serde_json::Map<String, serde_json::Value>,
    /// The kernel lacks what the programs need (a selftest directory's `config`).
    pub skip: Option<String>,
}

/// Build what `programs` names for `target` (blocking: it may compile).
pub fn prepare(programs: &Programs, target: &Target) -> Result<Prepared> {
    let mut p = Prepared::default();
    match programs {
        Programs::Suite {
            dir, only, timeout, ..
        } => {
            let Some((variant, built)) = &target.build else {
                bail!(
                    "the suite {dir} is built from the kernel's own tree: run it on a variant \
                     (--variant NAME), not on a kernel image"
                );
            };
            let suite = programs::suite(variant, built, dir)?;
            let unknown: Vec<&String> = only
                .iter()
                .filter(|o| !suite.programs.contains(o))
                .collect();
            if !unknown.is_empty() {
                bail!(
                    "{dir} has no program {}; its Makefile lists: {}",
                    unknown
                        .iter()
                        .map(|u| u.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    suite.programs.join(", ")
                );
            }
            if let Some(config) = &target.config {
                let text = crate::files::read_to_string(config)?;
                let missing = crate::kernel::kconfig::missing(&suite.config, &text);
                if !missing.is_empty() {
                    p.skip = Some(format!(
                        "needs {} ({dir}/config): add them to a fragment in kernels/configs/",
                        missing.join(", ")
                    ));
                    return Ok(p);
                }
            }
            let collection = dir.trim_start_matches("tools/testing/selftests/");
            let guest_dir = format!("/selftests/{collection}");
            for e in std::fs::read_dir(&suite.dir)? {
                let e = e?;
                let name = e.file_name().to_string_lossy().into_owned();
                if e.file_type()?.is_file() && name != "manifest.json" {
                    p.extra_files
                        .push((format!("{guest_dir}/{name}"), e.path()));
                }
            }
            let run: Vec<serde_json::Value> = suite
                .programs
                .iter()
                .filter(|prog| only.is_empty() || only.contains(prog))
                .map(|prog| format!("{guest_dir}/{prog}").into())
                .collect();
            p.params.insert("programs".into(), run.into());
            p.params.insert("collection".into(), collection.into());
            if let Some(limit) = programs::suite_timeout(*timeout, &suite) {
                p.params
                    .insert("timeout_ms".into(), (limit.as_millis() as u64).into());
            }
        }
        Programs::Repro { file } => {
            let program = match &target.build {
                Some((variant, built)) => {
                    let include = programs::headers(variant, built)?;
                    programs::repro(file, Some(&include), &programs::repro_cache(built))?
                }
                // A kernel image without its tree: the host's headers.
                None => programs::repro(file, None, &crate::cache::dir("repros")?)?,
            };
            let name = program.file_name().unwrap().to_string_lossy().into_owned();
            let guest = format!("/repro/{name}");
            p.extra_files.push((guest.clone(), program));
            p.params.insert("path".into(), guest.into());
        }
    }
    Ok(p)
}
