//! Kernel variants: `kernels/<name>.toml` + `kernels/patches/<name>/NNNN-*.patch` +
//! `kernels/configs/*.config`. Loading resolves `base` chains into one flat [`Variant`];
//! every error names the file and line at fault.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The embedded default tree.
pub const DEFAULT_DEBIAN_PACKAGE: &str = "linux-source-6.12";

/// Fragments every variant builds with unless it lists its own.
pub const DEFAULT_FRAGMENTS: &[&str] =
    &["qemu-guest", "scenarios", "selftests", "kasan", "lockdep"];

pub use super::error::ConfigError as VariantError;
use super::{detector, series as axis};

/// Where the tree comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// A Debian linux-source package: /usr/src/<package>.tar.xz.
    pub debian: Option<String>,
    /// A git repository (path or URL) at a ref.
    pub git: Option<GitSpec>,
    /// A tree on disk, built out of tree and never modified.
    pub path: Option<PathBuf>,
    /// The name of this series (`[source]` only): `NAME@<it>` is then `NAME` itself.
    pub series: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitSpec {
    pub repo: String,
    #[serde(rename = "ref")]
    pub reference: String,
}

/// The resolved source of a variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Debian { package: String },
    Git { repo: String, reference: String },
    Path { path: PathBuf },
}

/// How the configuration starts before fragments are merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigBase {
    Allnoconfig,
    Defconfig,
    File(PathBuf),
}

/// A patch of a series, with the variant that contributes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchRef {
    pub variant: String,
    pub path: PathBuf,
}

/// A config fragment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    pub name: String,
    pub path: PathBuf,
}

/// A variant with its `base` chain resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    pub name: String,
    pub file: PathBuf,
    pub description: String,
    pub expect: String,
    pub source: Source,
    pub config_base: ConfigBase,
    pub fragments: Vec<Fragment>,
    /// Base patches first, then the variant's own.
    pub patches: Vec<PatchRef>,
    /// The detector its fragments bring (`kasan`, `kcsan`), if any.
    pub detector: Option<&'static str>,
    /// The series it builds on, when named (see [`series`](super::series)).
    pub series: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariant {
    #[serde(default)]
    description: String,
    #[serde(default)]
    expect: String,
    base: Option<Spanned<String>>,
    source: Option<Spanned<SourceSpec>>,
    config_base: Option<Spanned<String>>,
    fragments: Option<Spanned<Vec<String>>>,
    /// Other series this variant and those based on it build on, each with its source.
    #[serde(default)]
    series: BTreeMap<String, Spanned<SourceSpec>>,
}

fn line_of(text: &str, span: Range<usize>) -> usize {
    super::error::line_of(text, span.start)
}

/// The names a variant may be given, each with the name of the variant it stands for.
pub type Known = BTreeMap<String, String>;

/// Names joined for a message ("none" when there are none).
fn listed(names: &[String]) -> String {
    match names.is_empty() {
        true => "none".into(),
        false => names.join(", "),
    }
}

/// All variants under `dir` (`dir/*.toml`), by name.
pub struct Catalog {
    dir: PathBuf,
    raw: BTreeMap<String, (PathBuf, String, RawVariant)>,
}

impl Catalog {
    pub fn load(dir: &Path) -> Result<Catalog, VariantError> {
        let file_err = |file: &Path, message: String| VariantError::File {
            file: file.to_path_buf(),
            message,
        };
        // Patches and fragments are used from inside the kernel tree: absolute paths only.
        let dir = &dir
            .canonicalize()
            .map_err(|e| file_err(dir, e.to_string()))?;
        let entries = std::fs::read_dir(dir).map_err(|e| file_err(dir, e.to_string()))?;
        let mut raw = BTreeMap::new();
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        for file in files {
            let text =
                crate::files::read_to_string(&file).map_err(|e| file_err(&file, e.to_string()))?;
            let parsed: RawVariant = toml::from_str(&text).map_err(|e| {
                let line = e.span().map(|s| line_of(&text, s)).unwrap_or(1);
                VariantError::At {
                    file: file.clone(),
                    line,
                    message: e.message().to_string(),
                }
            })?;
            let name = file.file_stem().unwrap().to_string_lossy().into_owned();
            // A variant's name becomes a directory of every night and batch.
            crate::name::PathName::new(&name, "variant").map_err(|m| file_err(&file, m))?;
            raw.insert(name, (file, text, parsed));
        }
        // A patch folder no variant claims is a variant renamed without its patches (which
        // would then build without them): refused, naming the folder.
        let patches = dir.join("patches");
        if let Ok(folders) = std::fs::read_dir(&patches) {
            let mut unclaimed: Vec<String> = folders
                .flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| !raw.contains_key(name))
                .collect();
            unclaimed.sort();
            let catalog = Catalog {
                dir: dir.to_path_buf(),
                raw,
            };
            for name in unclaimed {
                let (variant, series) = axis::split(&name);
                let why = match (catalog.raw.get(variant), series) {
                    (Some(_), Some(s))
                        if catalog.declared_series(variant).iter().any(|d| d == s) =>
                    {
                        continue
                    }
                    (Some(_), Some(s)) => format!(
                        "variant {variant} builds on no series {s:?}: neither it nor its bases \
                         declare [series.\"{s}\"] (declared: {})",
                        listed(&catalog.declared_series(variant))
                    ),
                    _ => format!(
                        "no variant claims these patches: there is no {variant}.toml in {} \
                         (was the variant renamed? a variant's patches are patches/<its \
                         name>/, or patches/<its name>{}<series>/ for another series)",
                        dir.display(),
                        axis::SEPARATOR
                    ),
                };
                return Err(file_err(&patches.join(&name), why));
            }
            return catalog.checked();
        }
        Catalog {
            dir: dir.to_path_buf(),
            raw,
        }
        .checked()
    }

    /// Every variant's patch folders hold only patches, for every series, whichever variant
    /// is asked for; every series is named as a path part may be.
    fn checked(self) -> Result<Catalog, VariantError> {
        for (name, (file, text, raw)) in &self.raw {
            let err = |m: String| VariantError::File {
                file: file.clone(),
                message: m,
            };
            let at = |span: Range<usize>, message: String| VariantError::At {
                file: file.clone(),
                line: line_of(text, span),
                message,
            };
            patch_folder(&self.dir, name, name).map_err(err)?;
            if let Some(source) = &raw.source {
                if let Some(s) = &source.get_ref().series {
                    axis::check_name(s).map_err(|m| at(source.span(), m))?;
                }
            }
            for (s, spec) in &raw.series {
                axis::check_name(s).map_err(|m| at(spec.span(), m))?;
                if spec.get_ref().series.is_some() {
                    return Err(at(
                        spec.span(),
                        format!("[series.\"{s}\"] is named by its key: `series = ` belongs in [source] only"),
                    ));
                }
                resolve_source(spec.get_ref()).map_err(|m| at(spec.span(), m))?;
            }
            for s in self.declared_series(name) {
                patch_folder(&self.dir, &axis::with(name, &s), name).map_err(err)?;
            }
        }
        Ok(self)
    }

    /// The series `name` builds on besides its default: those its own file and its bases'
    /// declare, up to the variant whose `[source]` it builds from (a variant with a source of
    /// its own starts another tree: its bases' series are not its own).
    pub fn declared_series(&self, name: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut at = Some(name.to_string());
        let mut seen = Vec::new();
        while let Some(n) = at.take() {
            let Some((_, _, raw)) = self.raw.get(&n) else {
                break;
            };
            if seen.contains(&n) {
                break;
            }
            seen.push(n);
            for k in raw.series.keys() {
                if !out.contains(k) {
                    out.push(k.clone());
                }
            }
            if raw.source.is_none() {
                at = raw.base.as_ref().map(|b| b.get_ref().clone());
            }
        }
        out.sort();
        out
    }

    pub fn names(&self) -> Vec<String> {
        self.raw.keys().cloned().collect()
    }

    /// Every name a command line or lab.toml may give a variant, with the variant it stands
    /// for: each variant (`baseline`), on each series it declares (`baseline@6.1`), each of
    /// those under each detector (`baseline+kcsan`, `baseline@6.1+kcsan`); a variant on its
    /// own series or under its own detector stands for the variant itself (`baseline@6.12`,
    /// `baseline+kasan` → `baseline`).
    pub fn known(&self) -> Known {
        let mut known = Known::new();
        for name in self.raw.keys() {
            let Ok(plain) = self.resolve(name, None, &mut Vec::new()) else {
                known.insert(name.clone(), name.clone());
                continue;
            };
            let mut on = vec![(name.clone(), name.clone())];
            if let Some(own) = &plain.series {
                on.push((axis::with(name, own), name.clone()));
            }
            for s in self.declared_series(name) {
                if plain.series.as_deref() != Some(s.as_str()) {
                    let full = axis::with(name, &s);
                    on.push((full.clone(), full));
                }
            }
            for (written, stands_for) in on {
                for d in detector::DETECTORS {
                    let (w, f) = match Some(d.name) == plain.detector {
                        true => (detector::with(&written, Some(d.name)), stands_for.clone()),
                        false => {
                            let f = detector::with(&stands_for, Some(d.name));
                            (detector::with(&written, Some(d.name)), f)
                        }
                    };
                    known.insert(w, f);
                }
                known.insert(written, stands_for);
            }
        }
        known
    }

    /// Resolve one variant: its base chain, source, fragments and patch series. A variant
    /// that changes nothing of its base (no patches of its own, the same source and
    /// configuration) is refused: it would build its base's kernel under its own name.
    /// `name+detector` is the variant built with that detector's fragment in place of its
    /// own (see [`detector`]); under its own detector it is the variant itself.
    pub fn get(&self, name: &str) -> Result<Variant, VariantError> {
        if let (plain, Some(wanted)) = detector::split(name) {
            let mut variant = self.get(plain)?;
            if variant.detector == Some(wanted.name) {
                return Ok(variant);
            }
            let names: Vec<String> = variant.fragments.iter().map(|f| f.name.clone()).collect();
            variant.fragments = detector::swap(&names, wanted)
                .iter()
                .map(|n| fragment(&self.dir, n))
                .collect::<Result<_, _>>()
                .map_err(|m| VariantError::File {
                    file: variant.file.clone(),
                    message: format!("{name}: {m}"),
                })?;
            variant.name = name.to_string();
            variant.detector = Some(wanted.name);
            return Ok(variant);
        }
        if let (plain, Some(wanted)) = axis::split(name) {
            let variant = self.get(plain)?;
            if variant.series.as_deref() == Some(wanted) {
                return Ok(variant);
            }
            let declared = self.declared_series(plain);
            if !declared.iter().any(|s| s == wanted) {
                return Err(VariantError::File {
                    file: variant.file,
                    message: format!(
                        "{name}: variant {plain} builds on no series {wanted:?}: neither it nor \
                         its bases declare [series.\"{wanted}\"] (its own series: {}; declared: \
                         {})",
                        variant.series.as_deref().unwrap_or("unnamed"),
                        listed(&declared)
                    ),
                });
            }
            let mut variant = self.resolve(plain, Some(wanted), &mut Vec::new())?;
            variant.name = name.to_string();
            return Ok(variant);
        }
        let variant = self.resolve(name, None, &mut Vec::new())?;
        let (file, _, raw) = &self.raw[name];
        if let Some(base) = &raw.base {
            let base = self.resolve(base.get_ref(), None, &mut Vec::new())?;
            let same = |a: &Variant, b: &Variant| {
                a.patches == b.patches
                    && a.source == b.source
                    && a.config_base == b.config_base
                    && a.fragments == b.fragments
            };
            if same(&variant, &base) {
                return Err(VariantError::File {
                    file: file.clone(),
                    message: format!(
                        "variant {name} changes nothing of its base {}: no patches in {} and \
                         the same source and configuration, so it would be {}'s kernel",
                        base.name,
                        self.dir.join("patches").join(name).display(),
                        base.name
                    ),
                });
            }
        }
        Ok(variant)
    }

    /// `name` with its base chain, on its default series or `on` another.
    fn resolve(
        &self,
        name: &str,
        on: Option<&str>,
        chain: &mut Vec<String>,
    ) -> Result<Variant, VariantError> {
        let (file, text, raw) = self.raw.get(name).ok_or_else(|| VariantError::Unknown {
            what: "variant",
            name: name.to_string(),
            dir: self.dir.clone(),
            known: self.names().join(", "),
        })?;
        let at = |span: Range<usize>, message: String| VariantError::At {
            file: file.clone(),
            line: line_of(text, span),
            message,
        };
        chain.push(name.to_string());
        // The base builds on `on` where it knows the series; a series declared here
        // replaces the base's source.
        let base_on = on.filter(|s| {
            raw.base
                .as_ref()
                .is_some_and(|b| self.declared_series(b.get_ref()).iter().any(|d| d == s))
        });
        let base = match &raw.base {
            Some(base) if chain.contains(base.get_ref()) => {
                return Err(at(
                    base.span(),
                    format!(
                        "base chain loops: {} -> {}",
                        chain.join(" -> "),
                        base.get_ref()
                    ),
                ))
            }
            Some(base) => Some(self.resolve(base.get_ref(), base_on, chain).map_err(
                |e| match e {
                    VariantError::Unknown { known, .. } => at(
                        base.span(),
                        format!(
                            "base variant {:?} does not exist; known: {known}",
                            base.get_ref()
                        ),
                    ),
                    other => other,
                },
            )?),
            None => None,
        };
        chain.pop();

        let (source, series) =
            source_on(raw, on, base.as_ref()).map_err(|(span, m)| at(span, m))?;
        let kernels = self.dir.as_path();
        let config_base = match &raw.config_base {
            Some(v) => match v.get_ref().as_str() {
                "allnoconfig" => ConfigBase::Allnoconfig,
                "defconfig" => ConfigBase::Defconfig,
                path => {
                    let p = kernels.join(path);
                    if !p.is_file() {
                        return Err(at(
                            v.span(),
                            format!(
                                "config_base {path:?} is neither allnoconfig, defconfig nor a file \
                                 (looked for {})",
                                p.display()
                            ),
                        ));
                    }
                    ConfigBase::File(p)
                }
            },
            None => base
                .as_ref()
                .map(|b| b.config_base.clone())
                .unwrap_or(ConfigBase::Allnoconfig),
        };
        let fragments = match &raw.fragments {
            Some(list) => list
                .get_ref()
                .iter()
                .map(|n| fragment(kernels, n))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|m| at(list.span(), m))?,
            None => match &base {
                Some(b) => b.fragments.clone(),
                None => DEFAULT_FRAGMENTS
                    .iter()
                    .map(|n| fragment(kernels, n))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|m| VariantError::File {
                        file: file.clone(),
                        message: m,
                    })?,
            },
        };
        let mut patches = base.map(|b| b.patches).unwrap_or_default();
        patches.extend(
            own_patches(kernels, name, on).map_err(|m| VariantError::File {
                file: file.clone(),
                message: m,
            })?,
        );
        Ok(Variant {
            name: name.to_string(),
            file: file.clone(),
            description: raw.description.trim().to_string(),
            expect: raw.expect.trim().to_string(),
            source,
            config_base,
            detector: detector::of_fragments(fragments.iter().map(|f| f.name.as_str()))
                .map(|d| d.name),
            fragments,
            patches,
            series,
        })
    }
}

/// The source a variant builds from on `on` (its default series when `None`) and that
/// series' name: a series it declares replaces its base's source; its own `[source]` starts
/// its default series; else its base's.
fn source_on(
    raw: &RawVariant,
    on: Option<&str>,
    base: Option<&Variant>,
) -> Result<(Source, Option<String>), (Range<usize>, String)> {
    let spec = on.and_then(|s| raw.series.get(s)).or(raw.source.as_ref());
    let source = match spec {
        Some(spec) => resolve_source(spec.get_ref()).map_err(|m| (spec.span(), m))?,
        None => base.map(|b| b.source.clone()).unwrap_or(Source::Debian {
            package: DEFAULT_DEBIAN_PACKAGE.into(),
        }),
    };
    let series = match (on, &raw.source) {
        (Some(s), _) => Some(s.to_string()),
        (None, Some(spec)) => spec.get_ref().series.clone(),
        (None, None) => base.and_then(|b| b.series.clone()),
    };
    Ok((source, series))
}

fn resolve_source(spec: &SourceSpec) -> Result<Source, String> {
    match (&spec.debian, &spec.git, &spec.path) {
        (Some(package), None, None) => Ok(Source::Debian {
            package: package.clone(),
        }),
        (None, Some(git), None) => Ok(Source::Git {
            repo: git.repo.clone(),
            reference: git.reference.clone(),
        }),
        (None, None, Some(path)) => {
            if !path.is_absolute() {
                return Err(format!("source path {} must be absolute", path.display()));
            }
            Ok(Source::Path { path: path.clone() })
        }
        _ => Err("[source] takes exactly one of debian = \"...\", \
                  git = { repo = \"...\", ref = \"...\" }, path = \"...\""
            .into()),
    }
}

fn fragment(kernels: &Path, name: &str) -> Result<Fragment, String> {
    let stem = name.strip_suffix(".config").unwrap_or(name);
    let path = kernels.join("configs").join(format!("{stem}.config"));
    if !path.is_file() {
        return Err(format!(
            "config fragment {name:?} not found (looked for {})",
            path.display()
        ));
    }
    Ok(Fragment {
        name: stem.to_string(),
        path,
    })
}

/// A variant's own patches on its default series (`patches/<variant>/`) or on `on`
/// (`patches/<variant>@<on>/`). A variant with patches on its default series and no folder
/// for `on` is not ported there: an error naming the folder to port them into.
fn own_patches(kernels: &Path, variant: &str, on: Option<&str>) -> Result<Vec<PatchRef>, String> {
    let Some(s) = on else {
        return patch_folder(kernels, variant, variant);
    };
    let folder = axis::with(variant, s);
    let ported = kernels.join("patches").join(&folder);
    let default = patch_folder(kernels, variant, variant)?;
    if !ported.exists() && !default.is_empty() {
        return Err(format!(
            "variant {variant} is not ported to series {s}: it has {} on its default series \
             and no {} (a backport is a different patch: put the series' own there)",
            match default.len() {
                1 => "1 patch".to_string(),
                n => format!("{n} patches"),
            },
            ported.display()
        ));
    }
    patch_folder(kernels, &folder, variant)
}

/// `kernels/patches/<folder>/*.patch`, in file-name order, as `variant`'s. Every entry of the
/// folder is a patch that is applied: anything else there (a `.diff`, a README, a folder, a
/// FIFO named `*.patch`) is an error naming it, never skipped.
fn patch_folder(kernels: &Path, folder: &str, variant: &str) -> Result<Vec<PatchRef>, String> {
    let dir = kernels.join("patches").join(folder);
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut patches: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    patches.sort();
    for p in &patches {
        if p.extension().is_none_or(|e| e != "patch") {
            return Err(format!(
                "variant {variant}: {} is not a patch: a variant's patch folder holds only \
                 git format-patch files named NNNN-*.patch, every one applied in name order \
                 (rename it, or move it out of {})",
                p.display(),
                dir.display()
            ));
        }
        crate::files::check_regular(p)
            .map_err(|e| format!("variant {variant}: patch cannot be read: {e}"))?;
    }
    Ok(patches
        .into_iter()
        .map(|path| PatchRef {
            variant: variant.to_string(),
            path,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernels(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("configs")).unwrap();
        for frag in DEFAULT_FRAGMENTS {
            std::fs::write(dir.path().join(format!("configs/{frag}.config")), "").unwrap();
        }
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn error(files: &[(&str, &str)], name: &str) -> String {
        let dir = kernels(files);
        match Catalog::load(dir.path()).and_then(|c| c.get(name)) {
            Ok(v) => panic!("expected an error, got {v:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_variant_under_another_detector_swaps_the_detector_fragment_only() {
        let catalog = Catalog::load(Path::new("../kernels")).unwrap();
        let kasan = catalog.get("epoll-unpinned-poll").unwrap();
        let kcsan = catalog.get("epoll-unpinned-poll+kcsan").unwrap();
        let names = |v: &Variant| {
            v.fragments
                .iter()
                .map(|f| f.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(kasan.detector, Some("kasan"));
        assert_eq!(kcsan.detector, Some("kcsan"));
        assert_eq!(kcsan.name, "epoll-unpinned-poll+kcsan");
        assert_eq!(
            names(&kcsan),
            names(&kasan)
                .iter()
                .map(|f| if f == "kasan" {
                    "kcsan".to_string()
                } else {
                    f.clone()
                })
                .collect::<Vec<_>>()
        );
        assert_eq!(kcsan.patches, kasan.patches);
        // Under its own detector a variant is itself, by its own name.
        assert_eq!(catalog.get("epoll-unpinned-poll+kasan").unwrap(), kasan);
        let known = catalog.known();
        assert_eq!(known["baseline+kcsan"], "baseline+kcsan");
        assert_eq!(known["baseline+kasan"], "baseline");
        // A kernels/ without the detector's fragment says which file it looked for.
        let dir = kernels(&[("v.toml", "description = \"v\"\n")]);
        let e = Catalog::load(dir.path())
            .unwrap()
            .get("v+kcsan")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("v+kcsan") && e.contains("configs/kcsan.config"),
            "{e}"
        );
    }

    /// A variant on another series: that series' source, each variant's patches for it,
    /// the default series by its name is the variant itself; a variant not ported, a series
    /// nobody declares and a patch folder for one are errors naming what is missing.
    #[test]
    fn a_variant_on_another_series_takes_its_source_and_its_ported_patches() {
        let files = [
            (
                "a.toml",
                "description = \"A\"\n[source]\ndebian = \"pkg-a\"\nseries = \"A\"\n\
                 [series.B]\ndebian = \"pkg-b\"\n",
            ),
            ("b.toml", "base = \"a\"\n"),
            ("patches/b/0001-b.patch", ""),
            ("patches/b@B/0001-b-backport.patch", ""),
            ("c.toml", "base = \"a\"\n"),
            ("patches/c/0001-c.patch", ""),
            ("d.toml", "base = \"a\"\nfragments = [\"kasan\"]\n"),
            ("configs/kcsan.config", ""),
        ];
        let dir = kernels(&files);
        let catalog = Catalog::load(dir.path()).unwrap();
        let b = catalog.get("b").unwrap();
        assert_eq!(b.series.as_deref(), Some("A"));
        assert_eq!(catalog.get("b@A").unwrap(), b);
        let on_b = catalog.get("b@B").unwrap();
        assert_eq!(on_b.name, "b@B");
        assert_eq!(on_b.series.as_deref(), Some("B"));
        assert_eq!(
            on_b.source,
            Source::Debian {
                package: "pkg-b".into()
            }
        );
        let names = |v: &Variant| -> Vec<String> {
            v.patches
                .iter()
                .map(|p| p.path.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(names(&on_b), ["0001-b-backport.patch"]);
        assert_eq!(names(&b), ["0001-b.patch"]);
        let kcsan = catalog.get("b@B+kcsan").unwrap();
        assert_eq!(
            (kcsan.source, kcsan.detector),
            (on_b.source.clone(), Some("kcsan"))
        );
        // The base on the series; a variant with no patches of its own exists there too.
        assert_eq!(catalog.get("a@B").unwrap().source, on_b.source);
        assert_eq!(catalog.get("d@B").unwrap().series.as_deref(), Some("B"));
        let e = catalog.get("c@B").unwrap_err().to_string();
        assert!(
            e.contains("not ported to series B") && e.contains("patches/c@B"),
            "{e}"
        );
        let e = catalog.get("b@C").unwrap_err().to_string();
        assert!(
            e.contains("no series \"C\"") && e.contains("declared: B"),
            "{e}"
        );
        let known = catalog.known();
        for (written, stands_for) in [
            ("b", "b"),
            ("b@A", "b"),
            ("b+kasan", "b"),
            ("b@A+kcsan", "b+kcsan"),
            ("b@B", "b@B"),
            ("b@B+kasan", "b@B"),
            ("b@B+kcsan", "b@B+kcsan"),
        ] {
            assert_eq!(
                known.get(written).map(String::as_str),
                Some(stands_for),
                "{written}"
            );
        }
        // A patch folder for a series nobody declares, or for no variant.
        for (folder, says) in [("b@C", "builds on no series \"C\""), ("z@B", "no z.toml")] {
            let mut planted = files.to_vec();
            let path = format!("patches/{folder}/0001-x.patch");
            planted.push((&path, ""));
            let e = match Catalog::load(kernels(&planted).path()) {
                Ok(_) => panic!("{folder}: loaded"),
                Err(e) => e.to_string(),
            };
            assert!(e.contains(folder) && e.contains(says), "{folder}: {e}");
        }
        // A series name that is no path part, with its line.
        let e = error(&[("a.toml", "[series.\"x/y\"]\ndebian = \"p\"\n")], "a");
        assert!(
            e.contains("a.toml:") && e.contains("series name \"x/y\""),
            "{e}"
        );
    }

    #[test]
    fn a_relative_kernels_dir_gives_absolute_patch_and_fragment_paths() {
        // The repository's own kernels/, named relative to the crate (the tests' cwd): kbuild
        // and patch run inside the tree, where a relative path would not resolve.
        let catalog = Catalog::load(Path::new("../kernels")).unwrap();
        let v = catalog.get("epoll-release-on-close").unwrap();
        assert!(!v.patches.is_empty() && !v.fragments.is_empty());
        assert!(
            v.patches.iter().all(|p| p.path.is_absolute()),
            "{:?}",
            v.patches
        );
        assert!(
            v.fragments.iter().all(|f| f.path.is_absolute()),
            "{:?}",
            v.fragments
        );
    }

    /// Every entry of a patch folder that is not a regular `*.patch` file is an error naming
    /// it, in a root variant and in a variant with a base alike; nothing is skipped.
    #[test]
    fn every_entry_of_a_patch_folder_is_applied_or_refused() {
        type Plant = fn(&Path);
        let table: &[(&str, Plant)] = &[
            ("0001-x.diff", |p| std::fs::write(p, "").unwrap()),
            ("README", |p| std::fs::write(p, "").unwrap()),
            (".0001-x.patch.swp", |p| std::fs::write(p, "").unwrap()),
            ("0002-x.patch", |p| std::fs::create_dir(p).unwrap()),
            ("0003-fifo.patch", |p| {
                nix::unistd::mkfifo(p, nix::sys::stat::Mode::S_IRWXU).unwrap()
            }),
        ];
        for (name, plant) in table {
            for (variant, toml) in [
                ("root", "description = \"r\"\n"),
                ("child", "base = \"a\"\n"),
            ] {
                let dir = kernels(&[
                    ("a.toml", "description = \"A\"\n"),
                    (&format!("{variant}.toml"), toml),
                    (&format!("patches/{variant}/0001-ok.patch"), ""),
                ]);
                plant(&dir.path().join("patches").join(variant).join(name));
                let e = match Catalog::load(dir.path()) {
                    Ok(_) => panic!("{variant}/{name}: loaded"),
                    Err(e) => e.to_string(),
                };
                assert!(e.contains(name), "{variant}/{name}: {e}");
            }
        }
    }

    #[test]
    fn defaults_and_base_chain() {
        let dir = kernels(&[
            ("a.toml", "description = \"A\"\n"),
            ("b.toml", "base = \"a\"\nexpect = \"race\"\n"),
            ("patches/a/0001-x.patch", ""),
            ("patches/b/0002-z.patch", ""),
            ("patches/b/0001-y.patch", ""),
        ]);
        let cat = Catalog::load(dir.path()).unwrap();
        let b = cat.get("b").unwrap();
        assert_eq!(
            b.source,
            Source::Debian {
                package: "linux-source-6.12".into()
            }
        );
        assert_eq!(b.config_base, ConfigBase::Allnoconfig);
        let frags: Vec<_> = b.fragments.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(frags, DEFAULT_FRAGMENTS);
        let series: Vec<_> = b
            .patches
            .iter()
            .map(|p| p.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(series, ["0001-x.patch", "0001-y.patch", "0002-z.patch"]);
        assert_eq!(b.expect, "race");
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let e = error(&[("a.toml", "description = \"x\"\nbase = \n")], "a");
        assert!(e.contains("a.toml:2:"), "{e}");
    }

    #[test]
    fn unknown_keys_name_file_and_line() {
        let e = error(
            &[("a.toml", "description = \"x\"\n\nfragmnets = []\n")],
            "a",
        );
        assert!(e.contains("a.toml:3:") && e.contains("fragmnets"), "{e}");
    }

    #[test]
    fn missing_base_names_the_line_of_base() {
        let e = error(&[("a.toml", "description = \"x\"\nbase = \"nope\"\n")], "a");
        assert!(
            e.contains("a.toml:2:") && e.contains("\"nope\" does not exist"),
            "{e}"
        );
    }

    #[test]
    fn base_loops_are_refused() {
        let e = error(
            &[
                ("a.toml", "base = \"b\"\n"),
                ("b.toml", "\n\nbase = \"a\"\n"),
            ],
            "a",
        );
        assert!(e.contains("loops"), "{e}");
    }

    #[test]
    fn missing_fragment_names_the_line_of_fragments() {
        let e = error(
            &[(
                "a.toml",
                "description = \"x\"\nfragments = [\"kasan\", \"nosuch\"]\n",
            )],
            "a",
        );
        assert!(e.contains("a.toml:2:") && e.contains("nosuch"), "{e}");
    }

    #[test]
    fn two_sources_at_once_are_refused() {
        let e = error(
            &[(
                "a.toml",
                "[source]\ndebian = \"linux-source-6.12\"\npath = \"/src\"\n",
            )],
            "a",
        );
        assert!(e.contains("a.toml:") && e.contains("exactly one"), "{e}");
    }

    #[test]
    fn git_source_parses() {
        let dir = kernels(&[(
            "g.toml",
            "[source]\ngit = { repo = \"/r\", ref = \"main\" }\n",
        )]);
        let v = Catalog::load(dir.path()).unwrap().get("g").unwrap();
        assert_eq!(
            v.source,
            Source::Git {
                repo: "/r".into(),
                reference: "main".into()
            }
        );
    }

    #[test]
    fn a_renamed_patch_folder_is_refused_by_folder_and_by_variant() {
        let files = [
            ("a.toml", "description = \"A\"\n"),
            ("b.toml", "base = \"a\"\n"),
            ("patches/b/0001-x.patch", "x"),
        ];
        let dir = kernels(&files);
        assert!(Catalog::load(dir.path()).unwrap().get("b").is_ok());
        // The folder renamed: it is nobody's, and b changes nothing of a.
        std::fs::rename(dir.path().join("patches/b"), dir.path().join("patches/bee")).unwrap();
        let e = Catalog::load(dir.path()).err().unwrap().to_string();
        assert!(
            e.contains("patches/bee") && e.contains("no variant claims these patches"),
            "{e}"
        );
        std::fs::remove_dir_all(dir.path().join("patches/bee")).unwrap();
        let e = Catalog::load(dir.path())
            .unwrap()
            .get("b")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("b.toml") && e.contains("changes nothing of its base a"),
            "{e}"
        );
        // Another source or configuration is a change.
        std::fs::write(
            dir.path().join("b.toml"),
            "base = \"a\"\nconfig_base = \"defconfig\"\n",
        )
        .unwrap();
        assert!(Catalog::load(dir.path()).unwrap().get("b").is_ok());
    }

    #[test]
    fn a_patch_that_cannot_be_read_is_named_with_its_variant() {
        let dir = kernels(&[("a.toml", "")]);
        std::fs::create_dir_all(dir.path().join("patches/a")).unwrap();
        std::os::unix::fs::symlink(
            "/nonexistent/x.patch",
            dir.path().join("patches/a/0001-gone.patch"),
        )
        .unwrap();
        // Refused when kernels/ is loaded, whichever variant a command asks for.
        let e = match Catalog::load(dir.path()) {
            Ok(_) => panic!("loaded"),
            Err(e) => e.to_string(),
        };
        assert!(
            e.contains("variant a: patch") && e.contains("0001-gone.patch"),
            "{e}"
        );
    }

    #[test]
    fn unknown_variant_lists_known_ones() {
        let e = error(&[("a.toml", "")], "zz");
        assert!(e.contains("\"zz\"") && e.contains("known: a"), "{e}");
    }
}
