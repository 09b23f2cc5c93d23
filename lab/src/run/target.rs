//! The kernel a batch runs on: a built variant, or any kernel image (a distro vmlinuz), with
//! its .config (for the scenario's requirements) and vmlinux (for symbolized reports).

use crate::kernel::variant::Variant;
use crate::kernel::{self, Built};
use crate::report::symbolize::{SymbolizeError, Symbolizer};
use anyhow::Result;
use std::path::{Path, PathBuf};

#[derive(Clone)]
pub struct Target {
    pub name: String,
    pub kernel: PathBuf,
    pub config: Option<PathBuf>,
    /// The kernel's vmlinux: with DWARF, reports get file:line and inline frames.
    pub vmlinux: Option<PathBuf>,
    /// The tree the kernel was built from: symbolized paths are shown relative to it.
    pub source_dir: Option<PathBuf>,
    /// The variant and its build, when the kernel is one: programs a scenario brings
    /// (selftests, reproducers) are built from and for it.
    pub build: Option<(Variant, Built)>,
}

impl Target {
    /// The kernel's System.map: beside its vmlinux, or beside the image.
    pub fn system_map(&self) -> Option<PathBuf> {
        let dir = match &self.vmlinux {
            Some(v) => v.parent()?,
            None => self.kernel.parent()?,
        };
        Some(dir.join("System.map")).filter(|p| p.is_file())
    }

    /// A variant the cache has built.
    pub fn built(name: &str, variant: &Variant, b: &Built) -> Target {
        Target {
            build: Some((variant.clone(), b.clone())),
            name: name.to_string(),
            kernel: b.bzimage(),
            config: Some(b.dir.join(".config")),
            vmlinux: Some(b.dir.join("vmlinux")).filter(|p| p.is_file()),
            source_dir: b.metadata.source_dir.clone(),
        }
    }

    /// A kernel the cache has built, known by its build alone (no programs are built for it).
    pub fn of_build(b: &Built) -> Target {
        Target {
            build: None,
            name: b.metadata.variant.clone(),
            kernel: b.bzimage(),
            config: Some(b.dir.join(".config")),
            vmlinux: Some(b.dir.join("vmlinux")).filter(|p| p.is_file()),
            source_dir: b.metadata.source_dir.clone(),
        }
    }

    /// Any kernel image; its .config and vmlinux looked for next to it.
    pub fn image(kernel: PathBuf) -> Result<Target> {
        if !kernel.is_file() {
            anyhow::bail!("kernel image {} does not exist", kernel.display());
        }
        Ok(Target {
            name: kernel.display().to_string(),
            config: config_near(&kernel),
            vmlinux: kernel
                .parent()
                .map(|d| d.join("vmlinux"))
                .filter(|p| p.is_file()),
            kernel,
            source_dir: None,
            build: None,
        })
    }

    /// The kernel named by `--kernel PATH` or `--variant NAME` (built first if the cache
    /// lacks it; variants from `kernels`, else kernels/ here or above).
    pub async fn resolve(
        kernel: Option<PathBuf>,
        variant: Option<String>,
        kernels: Option<PathBuf>,
    ) -> Result<Target> {
        match (kernel, variant) {
            (Some(kernel), _) => Target::image(kernel),
            (None, Some(name)) => {
                let dir = crate::config::locate::dir("kernels", kernels)?;
                let variant = kernel::variant::Catalog::load(&dir)?.get(&name)?;
                // As the catalog names it: `baseline+kasan` is `baseline`.
                let name = variant.name.clone();
                let (n, v) = (name.clone(), variant.clone());
                let built = tokio::task::spawn_blocking(move || {
                    let b = kernel::build(&v, &kernel::BuildOptions::default())?;
                    crate::events::emit(kernel::ready(&n, &b));
                    anyhow::Ok(b)
                })
                .await??;
                Ok(Target::built(&name, &variant, &built))
            }
            (None, None) => anyhow::bail!("name a kernel: --kernel PATH or --variant NAME"),
        }
    }

    /// A symbolizer for the vmlinux when it has debug info; none (silently) when it has
    /// not, none with a warning when it cannot be read. The vmlinux is read off the
    /// runtime's thread (it can be hundreds of MiB).
    pub async fn symbolizer(&self) -> Option<Symbolizer> {
        let (vmlinux, source_dir) = (self.vmlinux.clone()?, self.source_dir.clone());
        let opened =
            tokio::task::spawn_blocking(move || Symbolizer::open(&vmlinux, source_dir.as_deref()))
                .await
                .ok()?;
        match opened {
            Ok(s) => Some(s),
            Err(SymbolizeError::NoDebugInfo { .. }) => None,
            Err(e) => {
                crate::events::warn(format!("reports stay unsymbolized: {e}"));
                None
            }
        }
    }
}

/// A distro kernel's config: /boot/vmlinuz-X → /boot/config-X; a build's: next to it.
pub fn config_near(kernel: &Path) -> Option<PathBuf> {
    let dir = kernel.parent()?;
    let name = kernel.file_name()?.to_string_lossy().into_owned();
    [
        dir.join(".config"),
        dir.join(name.replacen("vmlinuz-", "config-", 1)),
    ]
    .into_iter()
    .find(|p| p.is_file() && p.file_name().unwrap().to_string_lossy() != name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_next_to_a_distro_kernel() {
        let dir = tempfile::tempdir().unwrap();
        let kernel = dir.path().join("vmlinuz-6.12.1-amd64");
        std::fs::write(&kernel, "").unwrap();
        assert_eq!(config_near(&kernel), None);
        std::fs::write(dir.path().join("config-6.12.1-amd64"), "").unwrap();
        assert_eq!(
            config_near(&kernel),
            Some(dir.path().join("config-6.12.1-amd64"))
        );
    }
}
