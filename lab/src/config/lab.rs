//! `lab.toml`: the lab a night runs — where variants and scenarios live, which variant ×
//! scenario cells to run and how often, where nights and their history go, and the default
//! comparison. Names are checked against kernels/ and scenarios/ with file:line errors.

use super::error::{line_of, ConfigError};
use super::variant::Known;
use super::{detector, series};
use runner::quantity::RunCount;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    name: String,
    kernels: Option<Spanned<String>>,
    scenarios: Option<Spanned<String>>,
    results: Option<String>,
    history: Option<String>,
    suppressions: Option<Spanned<String>>,
    runs: Option<Spanned<RunCount>>,
    duration: Option<Spanned<String>>,
    #[serde(default)]
    matrix: Vec<RawCells>,
    compare: Option<RawCompare>,
    bisect: Option<RawBisect>,
    cache: Option<RawCache>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCache {
    limit: Option<Spanned<String>>,
}

/// The cache's size limit when lab.toml sets none: a default night, a KCSAN build and a
/// bisection's repository and builds come to about 8 GB.
pub const DEFAULT_CACHE_LIMIT_MIB: u64 = 20 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBisect {
    #[serde(default)]
    off: bool,
    builds: Option<Spanned<i64>>,
    wall: Option<Spanned<String>>,
    confidence: Option<Spanned<f64>>,
    runs: Option<Spanned<RunCount>>,
}

/// `[bisect]`: what a night may spend finding the commits behind its regressions and fixes
/// on git sources (every bisection of the night together).
#[derive(Debug, Clone, PartialEq)]
pub struct BisectConfig {
    /// `off = true`: a night never bisects.
    pub off: bool,
    /// New kernel builds per night.
    pub builds: u32,
    /// Wall time per night.
    pub wall: std::time::Duration,
    /// The confidence a culprit must have to be named.
    pub confidence: f64,
    /// Runs at the racy end to measure the rate.
    pub runs: RunCount,
}

impl Default for BisectConfig {
    fn default() -> Self {
        BisectConfig {
            off: false,
            builds: 12,
            wall: std::time::Duration::from_secs(4 * 3600),
            confidence: 0.95,
            runs: default_runs(5),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCells {
    variants: Vec<Spanned<String>>,
    /// Each variant on each of these series (`6.12`, `6.1`: the variants' own and those they
    /// declare): a cell per variant × series × scenario.
    #[serde(default)]
    series: Vec<Spanned<String>>,
    /// Each variant under each of these detectors (`kasan`, `kcsan`): a cell per variant ×
    /// detector × scenario.
    #[serde(default)]
    detectors: Vec<Spanned<String>>,
    scenarios: Vec<Spanned<String>>,
    runs: Option<Spanned<RunCount>>,
    /// What each variant is expected to do in these scenarios: "pass", "fail", or text the
    /// first failing run's verdict contains (a report title).
    #[serde(default)]
    expect: std::collections::BTreeMap<String, Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCompare {
    variants: Vec<Spanned<String>>,
    #[serde(default)]
    series: Vec<Spanned<String>>,
    #[serde(default)]
    detectors: Vec<Spanned<String>>,
    scenario: Spanned<String>,
    runs: Option<Spanned<RunCount>>,
}

const DEFAULT_RUNS: u32 = 3;
const DEFAULT_COMPARE_RUNS: u32 = 20;

fn default_runs(n: u32) -> RunCount {
    RunCount::new(n.into()).expect("a default run count is one")
}

/// One variant × scenario cell of the matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub variant: String,
    pub scenario: String,
    pub runs: RunCount,
    /// The expected outcome ("pass", "fail", or text of the first failure), when stated.
    pub expect: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compare {
    pub variants: Vec<String>,
    pub scenario: String,
    pub runs: RunCount,
}

#[derive(Debug, Clone)]
pub struct LabConfig {
    pub file: PathBuf,
    pub name: String,
    pub kernels: PathBuf,
    pub scenarios: PathBuf,
    /// Nights go to `<results>/<stamp>/`.
    pub results: PathBuf,
    pub history: PathBuf,
    /// Overrides every scenario's duration when set.
    pub duration: Option<runner::quantity::WorkDuration>,
    pub cells: Vec<Cell>,
    pub compare: Option<Compare>,
    pub bisect: BisectConfig,
    /// `[cache] limit`: the size (MiB) a night keeps the cache within, evicting the least
    /// recently used kernels, snapshots, object trees and bisections.
    pub cache_limit_mib: u64,
    /// Reports the lab leaves out of verdicts (`suppressions = "FILE"`, default
    /// suppressions.toml beside lab.toml when there is one).
    pub suppressions: super::suppress::Suppressions,
}

/// Relative paths in lab.toml are relative to its directory; `~/` is the home directory.
fn resolve(base: &Path, p: &str) -> PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(rest),
        None => base.join(p),
    }
}

/// The variants defined in a kernels directory: every name they may be given (on each
/// series, under each detector) with the variant it stands for (none when it cannot be read:
/// the names in lab.toml are then reported as unknown, with the directory).
pub fn variant_names(dir: &Path) -> Known {
    super::variant::Catalog::load(dir)
        .map(|c| c.known())
        .unwrap_or_default()
}

/// What checking a lab.toml needs at hand: its file and text, and the names it may use.
struct Checker<'a> {
    file: &'a Path,
    text: &'a str,
    variants: Known,
    scenarios: Vec<String>,
}

impl Checker<'_> {
    fn at(&self, span: std::ops::Range<usize>, message: String) -> ConfigError {
        ConfigError::At {
            file: self.file.into(),
            line: line_of(self.text, span.start),
            message,
        }
    }

    /// A scenario that exists.
    fn scenario(&self, name: &Spanned<String>) -> Result<String, ConfigError> {
        match self.scenarios.iter().any(|k| k == name.get_ref()) {
            true => Ok(name.get_ref().clone()),
            false => Err(self.at(
                name.span(),
                format!(
                    "no scenario named {:?}; known: {}",
                    name.get_ref(),
                    self.scenarios.join(", ")
                ),
            )),
        }
    }

    /// A variant that exists, by the name of the variant it stands for (`baseline+kasan`
    /// and `baseline@6.12` are `baseline` when those are its own detector and series).
    fn variant(&self, name: &Spanned<String>) -> Result<String, ConfigError> {
        if let Some(stands_for) = self.variants.get(name.get_ref()) {
            return Ok(stands_for.clone());
        }
        // Variants are listed by their plain names; each also exists under each detector
        // and on each series it declares.
        let plain: Vec<&str> = self
            .variants
            .keys()
            .map(String::as_str)
            .filter(|k| detector::split(k).1.is_none() && series::split(k).1.is_none())
            .collect();
        let on: Vec<&str> = self
            .variants
            .keys()
            .map(String::as_str)
            .filter(|k| detector::split(k).1.is_none() && series::split(k).1.is_some())
            .collect();
        Err(self.at(
            name.span(),
            format!(
                "no variant named {:?}; known: {} (each also as NAME{}DETECTOR: {}; by \
                 series: {})",
                name.get_ref(),
                plain.join(", "),
                detector::SEPARATOR,
                detector::names().collect::<Vec<_>>().join(", "),
                match on.is_empty() {
                    true => "none declared".to_string(),
                    false => on.join(", "),
                }
            ),
        ))
    }

    /// `variants` on each of `series` (as named when there are none), each under each of
    /// `detectors` (as named when there are none), checked: variant by variant, its series
    /// side by side, each series' detectors side by side.
    fn variants(
        &self,
        variants: &[Spanned<String>],
        on: &[Spanned<String>],
        detectors: &[Spanned<String>],
    ) -> Result<Vec<String>, ConfigError> {
        for d in detectors {
            detector::get(d.get_ref()).map_err(|m| self.at(d.span(), m))?;
        }
        for s in on {
            series::check_name(s.get_ref()).map_err(|m| self.at(s.span(), m))?;
        }
        let mut out = Vec::new();
        for v in variants {
            self.variant(v)?;
            let on_series: Vec<(std::ops::Range<usize>, String)> = match on.is_empty() {
                true => vec![(v.span(), v.get_ref().clone())],
                false => on
                    .iter()
                    .map(|s| (s.span(), series::with(v.get_ref(), s.get_ref())))
                    .collect(),
            };
            for (span, name) in on_series {
                let names: Vec<String> = match detectors.is_empty() {
                    true => vec![name],
                    false => detectors
                        .iter()
                        .map(|d| detector::with(&name, Some(d.get_ref())))
                        .collect(),
                };
                for name in names {
                    let name = self.variant(&Spanned::new(span.clone(), name))?;
                    if !out.contains(&name) {
                        out.push(name);
                    }
                }
            }
        }
        Ok(out)
    }

    /// A number of runs is at least one: a cell with nothing run would read as a pass.
    /// A run count as written (its type refused 0 and what is past its range, with the
    /// line), else the default.
    fn runs(
        &self,
        runs: &Option<Spanned<RunCount>>,
        default: u32,
    ) -> Result<RunCount, ConfigError> {
        Ok(runs
            .as_ref()
            .map_or_else(|| default_runs(default), |r| *r.get_ref()))
    }

    /// `[bisect]`, checked: at least one build (`off = true` turns bisection off), a wall
    /// time as durations are written, a confidence between 0 and 1.
    fn bisect(&self, b: RawBisect) -> Result<BisectConfig, ConfigError> {
        let default = BisectConfig::default();
        let builds = match b.builds {
            None => default.builds,
            Some(n) => match u32::try_from(*n.get_ref()) {
                Ok(v) if v >= 1 => v,
                _ => {
                    return Err(self.at(
                        n.span(),
                        format!(
                            "[bisect] builds = {}: a night's bisections need at least one \
                             build (to turn them off: off = true)",
                            n.get_ref()
                        ),
                    ))
                }
            },
        };
        let wall = match b.wall {
            None => default.wall,
            Some(w) => crate::units::parse_duration(w.get_ref())
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    self.at(
                        w.span(),
                        format!(
                            "[bisect] wall = {:?}: a wall time such as \"90m\" or \"4h\"",
                            w.get_ref()
                        ),
                    )
                })?,
        };
        let confidence = match b.confidence {
            None => default.confidence,
            Some(c) if *c.get_ref() > 0.0 && *c.get_ref() < 1.0 => *c.get_ref(),
            Some(c) => {
                return Err(self.at(
                    c.span(),
                    format!(
                        "[bisect] confidence = {}: a probability above 0 and below 1 \
                         (e.g. 0.95)",
                        c.get_ref()
                    ),
                ))
            }
        };
        Ok(BisectConfig {
            off: b.off,
            builds,
            wall,
            confidence,
            runs: b.runs.map_or(default.runs, |r| *r.get_ref()),
        })
    }

    /// The matrix's cells, each variant × scenario once.
    fn cells(&self, matrix: &[RawCells], lab_runs: RunCount) -> Result<Vec<Cell>, ConfigError> {
        let mut cells: Vec<Cell> = Vec::new();
        for m in matrix {
            let runs = self.runs(&m.runs, lab_runs.get())?;
            let variants = self.variants(&m.variants, &m.series, &m.detectors)?;
            // An expectation names a variant as the matrix does, or one of its builds on a
            // series or under a detector (`v@6.1`, `v+kcsan`, `v@6.1+kcsan`); the most
            // particular wins: the build's own, then its series', then its detector's.
            let expect = |variant: &str| -> Option<String> {
                let (on, d) = detector::split(variant);
                let plain = series::split(on).0;
                let d = d.map(|d| d.name);
                [
                    variant.to_string(),
                    on.to_string(),
                    detector::with(plain, d),
                    plain.to_string(),
                ]
                .iter()
                .find_map(|name| m.expect.get(name))
                .map(|e| e.get_ref().clone())
            };
            if let Some((name, value)) = m.expect.iter().find(|(name, _)| {
                !m.variants.iter().any(|v| v.get_ref() == *name)
                    && !variants.iter().any(|v| v == *name)
            }) {
                return Err(self.at(
                    value.span(),
                    format!(
                        "expect names {name:?}, which is not one of this matrix's variants ({})",
                        variants.join(", ")
                    ),
                ));
            }
            for variant in &variants {
                for s in &m.scenarios {
                    let scenario = self.scenario(s)?;
                    if cells
                        .iter()
                        .any(|c| c.variant == *variant && c.scenario == scenario)
                    {
                        continue;
                    }
                    cells.push(Cell {
                        expect: expect(variant),
                        variant: variant.clone(),
                        scenario,
                        runs,
                    });
                }
            }
        }
        if cells.is_empty() {
            return Err(ConfigError::File {
                file: self.file.into(),
                message: "no [[matrix]] cells: add variants = [...] and scenarios = [...]".into(),
            });
        }
        Ok(cells)
    }
}

/// A directory lab.toml names (or its default next to it), which must be there: otherwise
/// every name in it would read as unknown, with an empty list of known ones.
fn directory(
    file: &Path,
    text: &str,
    given: &Option<Spanned<String>>,
    default: &str,
) -> Result<PathBuf, ConfigError> {
    let base = file.parent().unwrap_or(Path::new("."));
    let path = match given {
        Some(g) => resolve(base, g.get_ref()),
        None => base.join(default),
    };
    if path.is_dir() {
        return Ok(path);
    }
    let what = format!("the {default} directory {} does not exist", path.display());
    Err(match given {
        Some(g) => ConfigError::At {
            file: file.into(),
            line: line_of(text, g.span().start),
            message: what,
        },
        None => ConfigError::File {
            file: file.into(),
            message: format!("{what} (set {default} = \"DIR\")"),
        },
    })
}

impl LabConfig {
    /// What every shard of a night must share besides the commits: lab.toml's bytes, then
    /// the suppression list's (it decides which reports count).
    pub fn plan_bytes(&self) -> std::io::Result<Vec<u8>> {
        let mut bytes = crate::files::read(&self.file)?;
        if let Some(file) = &self.suppressions.file {
            bytes.extend(crate::files::read(file)?);
        }
        Ok(bytes)
    }

    /// Load and check a lab.toml. `known_variants` and `known_scenarios` list the names in
    /// the kernels and scenarios directories it names.
    pub fn load(
        file: &Path,
        known_variants: impl Fn(&Path) -> Known,
        known_scenarios: impl Fn(&Path) -> Vec<String>,
    ) -> Result<LabConfig, ConfigError> {
        let text = crate::files::read_to_string(file).map_err(|e| ConfigError::File {
            file: file.into(),
            message: e.to_string(),
        })?;
        let raw: Raw = toml::from_str(&text).map_err(|e| ConfigError::At {
            file: file.into(),
            line: line_of(&text, e.span().map_or(0, |s| s.start)),
            message: e.message().to_string(),
        })?;
        let base = file.parent().unwrap_or(Path::new("."));
        let kernels = directory(file, &text, &raw.kernels, "kernels")?;
        let scenarios = directory(file, &text, &raw.scenarios, "scenarios")?;
        let checker = Checker {
            file,
            text: &text,
            variants: known_variants(&kernels),
            scenarios: known_scenarios(&scenarios),
        };
        let lab_runs = checker.runs(&raw.runs, DEFAULT_RUNS)?;
        let cells = checker.cells(&raw.matrix, lab_runs)?;
        let duration = raw
            .duration
            .map(|d| {
                crate::units::parse_work_duration(d.get_ref())
                    .map_err(|e| checker.at(d.span(), format!("duration {:?}: {e}", d.get_ref())))
            })
            .transpose()?;
        let compare = raw
            .compare
            .map(|c| -> Result<Compare, ConfigError> {
                Ok(Compare {
                    variants: checker.variants(&c.variants, &c.series, &c.detectors)?,
                    scenario: checker.scenario(&c.scenario)?,
                    runs: checker.runs(&c.runs, DEFAULT_COMPARE_RUNS)?,
                })
            })
            .transpose()?;
        let bisect = raw
            .bisect
            .map(|b| checker.bisect(b))
            .transpose()?
            .unwrap_or_default();
        let cache_limit_mib = match raw.cache.and_then(|c| c.limit) {
            None => DEFAULT_CACHE_LIMIT_MIB,
            Some(l) => crate::units::parse_mib(l.get_ref())
                .ok()
                .filter(|mib| *mib > 0)
                .ok_or_else(|| {
                    checker.at(
                        l.span(),
                        format!(
                            "[cache] limit = {:?}: a size such as \"20G\" or \"500M\"",
                            l.get_ref()
                        ),
                    )
                })?,
        };
        let results = raw
            .results
            .map(|r| resolve(base, &r))
            .unwrap_or_else(|| crate::cache::root().join("nights"));
        let history = raw
            .history
            .map(|h| resolve(base, &h))
            .unwrap_or_else(|| results.join("history.sqlite"));
        let suppressions = match &raw.suppressions {
            Some(s) => {
                let path = resolve(base, s.get_ref());
                if !path.is_file() {
                    return Err(checker.at(
                        s.span(),
                        format!("the suppression list {} does not exist", path.display()),
                    ));
                }
                super::suppress::Suppressions::load(&path)?
            }
            None => match base.join("suppressions.toml") {
                p if p.is_file() => super::suppress::Suppressions::load(&p)?,
                _ => Default::default(),
            },
        };
        Ok(LabConfig {
            file: file.into(),
            name: raw.name,
            kernels,
            scenarios,
            results,
            history,
            duration,
            cells,
            compare,
            bisect,
            cache_limit_mib,
            suppressions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<LabConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lab.toml");
        std::fs::write(&file, text).unwrap();
        for d in ["kernels", "scenarios"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        LabConfig::load(
            &file,
            |_| {
                let mut known = Known::new();
                for v in ["baseline", "epoll-unpinned-poll"] {
                    for (written, stands_for) in [
                        (v.to_string(), v.to_string()),
                        (format!("{v}+kasan"), v.to_string()),
                        (format!("{v}+kcsan"), format!("{v}+kcsan")),
                        (format!("{v}@6.12"), v.to_string()),
                        (format!("{v}@6.12+kasan"), v.to_string()),
                        (format!("{v}@6.12+kcsan"), format!("{v}+kcsan")),
                        (format!("{v}@6.1+kasan"), format!("{v}@6.1")),
                        (format!("{v}@6.1"), format!("{v}@6.1")),
                        (format!("{v}@6.1+kcsan"), format!("{v}@6.1+kcsan")),
                    ] {
                        known.insert(written, stands_for);
                    }
                }
                known
            },
            |_| vec!["epoll-dmabuf-race".into(), "uapi-epoll".into()],
        )
    }

    #[test]
    fn matrix_expands_to_cells_with_runs() {
        let c = load(
            "runs = 2\nresults = \"out\"\n\
             [[matrix]]\nvariants = [\"baseline\", \"epoll-unpinned-poll\"]\nscenarios = [\"epoll-dmabuf-race\"]\n\
             [[matrix]]\nvariants = [\"baseline\"]\nscenarios = [\"uapi-epoll\", \"epoll-dmabuf-race\"]\nruns = 1\n",
        )
        .unwrap();
        let cells: Vec<(&str, &str, u32)> = c
            .cells
            .iter()
            .map(|c| (c.variant.as_str(), c.scenario.as_str(), c.runs.get()))
            .collect();
        assert_eq!(
            cells,
            [
                ("baseline", "epoll-dmabuf-race", 2),
                ("epoll-unpinned-poll", "epoll-dmabuf-race", 2),
                ("baseline", "uapi-epoll", 1),
            ]
        );
        assert!(c.results.ends_with("out"));
        assert_eq!(c.history, c.results.join("history.sqlite"));
    }

    /// Each cell's variant and expectation, in order.
    fn cells_of(c: &LabConfig) -> Vec<(&str, Option<&str>)> {
        c.cells
            .iter()
            .map(|c| (c.variant.as_str(), c.expect.as_deref()))
            .collect()
    }

    #[test]
    fn a_series_axis_gives_each_variant_a_cell_per_series_with_its_own_expectation() {
        let c = load(
            "[[matrix]]\nvariants = [\"baseline\", \"epoll-unpinned-poll\"]\n\
             series = [\"6.12\", \"6.1\"]\ndetectors = [\"kasan\", \"kcsan\"]\n\
             scenarios = [\"epoll-dmabuf-race\"]\n\
             expect = { baseline = \"pass\", epoll-unpinned-poll = \"WARNING\", \
             \"epoll-unpinned-poll@6.1\" = \"KASAN: use-after-free\", \
             \"epoll-unpinned-poll+kcsan\" = \"KCSAN: data-race\" }\n",
        )
        .unwrap();
        let cells = cells_of(&c);
        // The variants' own series is the plain name; another series' expectation wins over
        // the detector's, the build's own over both.
        assert_eq!(
            cells,
            [
                ("baseline", Some("pass")),
                ("baseline+kcsan", Some("pass")),
                ("baseline@6.1", Some("pass")),
                ("baseline@6.1+kcsan", Some("pass")),
                ("epoll-unpinned-poll", Some("WARNING")),
                ("epoll-unpinned-poll+kcsan", Some("KCSAN: data-race")),
                ("epoll-unpinned-poll@6.1", Some("KASAN: use-after-free")),
                (
                    "epoll-unpinned-poll@6.1+kcsan",
                    Some("KASAN: use-after-free")
                ),
            ]
        );
        let e = load(
            "[[matrix]]\nvariants = [\"baseline\"]\nseries = [\"5.10\"]\n\
             scenarios = [\"epoll-dmabuf-race\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("lab.toml:3:") && e.contains("baseline@5.10") && e.contains("baseline@6.1"),
            "{e}"
        );
    }

    #[test]
    fn a_detector_axis_gives_each_variant_a_cell_per_detector() {
        let c = load(
            "[[matrix]]\nvariants = [\"baseline\", \"epoll-unpinned-poll\"]\n\
             detectors = [\"kasan\", \"kcsan\"]\nscenarios = [\"epoll-dmabuf-race\"]\n\
             expect = { baseline = \"pass\", epoll-unpinned-poll = \"WARNING\", \
             \"epoll-unpinned-poll+kcsan\" = \"KCSAN: data-race\" }\n\
             [compare]\nvariants = [\"epoll-unpinned-poll\"]\ndetectors = [\"kasan\", \"kcsan\"]\n\
             scenario = \"epoll-dmabuf-race\"\n",
        )
        .unwrap();
        let cells = cells_of(&c);
        // A variant under its own detector (kasan) keeps its name; the plain expectation
        // holds for every detector unless a detector build has its own.
        assert_eq!(
            cells,
            [
                ("baseline", Some("pass")),
                ("baseline+kcsan", Some("pass")),
                ("epoll-unpinned-poll", Some("WARNING")),
                ("epoll-unpinned-poll+kcsan", Some("KCSAN: data-race")),
            ]
        );
        assert_eq!(
            c.compare.unwrap().variants,
            ["epoll-unpinned-poll", "epoll-unpinned-poll+kcsan"]
        );
        let e = load(
            "[[matrix]]\nvariants = [\"baseline\"]\ndetectors = [\"tsan\"]\n\
             scenarios = [\"epoll-dmabuf-race\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("lab.toml:3:") && e.contains("no detector named \"tsan\""),
            "{e}"
        );
    }

    #[test]
    fn expectations_belong_to_the_matrix_variants() {
        let c = load(
            "[[matrix]]\nvariants = [\"baseline\", \"epoll-unpinned-poll\"]\nscenarios = [\"epoll-dmabuf-race\"]\n\
             expect = { baseline = \"pass\", epoll-unpinned-poll = \"WARNING in dma_buf_poll\" }\n",
        )
        .unwrap();
        assert_eq!(c.cells[0].expect.as_deref(), Some("pass"));
        assert_eq!(
            c.cells[1].expect.as_deref(),
            Some("WARNING in dma_buf_poll")
        );
        let e = load(
            "[[matrix]]\nvariants = [\"baseline\"]\nscenarios = [\"uapi-epoll\"]\n\
             expect = { epoll-unpinned-poll = \"fail\" }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("lab.toml:4: expect names \"epoll-unpinned-poll\", which is not one of this matrix's variants"),
            "{e}"
        );
    }

    #[test]
    fn zero_runs_are_refused_at_their_line() {
        for (text, line) in [
            (
                "runs = 0\n[[matrix]]\nvariants = [\"baseline\"]\nscenarios = [\"uapi-epoll\"]\n",
                1,
            ),
            (
                "[[matrix]]\nvariants = [\"baseline\"]\nscenarios = [\"uapi-epoll\"]\nruns = 0\n",
                4,
            ),
            (
                "[[matrix]]\nvariants = [\"baseline\"]\nscenarios = [\"uapi-epoll\"]\n\
                 [compare]\nvariants = [\"baseline\"]\nscenario = \"uapi-epoll\"\nruns = 0\n",
                7,
            ),
            (
                "runs = 4294967295\n[[matrix]]\nvariants = [\"baseline\"]\nscenarios = [\"uapi-epoll\"]\n",
                1,
            ),
            (
                "runs = -1\n[[matrix]]\nvariants = [\"baseline\"]\nscenarios = [\"uapi-epoll\"]\n",
                1,
            ),
            (
                "duration = \"0s\"\n[[matrix]]\nvariants = [\"baseline\"]\nscenarios = [\"uapi-epoll\"]\n",
                1,
            ),
        ] {
            let e = load(text).unwrap_err().to_string();
            assert!(
                e.contains(&format!("lab.toml:{line}: "))
                    && (e.contains("is not a run count: 1 to 100000")
                        || e.contains("1 ms to 7 days")),
                "{text:?}: {e}"
            );
        }
    }

    /// `[bisect]`: defaults when absent; what is written, checked at its line (a table of
    /// values that must be refused, each naming the key).
    #[test]
    fn the_bisection_budget_is_read_and_checked_at_its_line() {
        let cells = "[[matrix]]\nvariants = [\"baseline\"]\nscenarios = [\"uapi-epoll\"]\n";
        assert_eq!(load(cells).unwrap().bisect, BisectConfig::default());
        let c = load(&format!(
            "{cells}[bisect]\nbuilds = 3\nwall = \"90m\"\nconfidence = 0.9\nruns = 2\n"
        ))
        .unwrap()
        .bisect;
        assert_eq!(
            (
                c.off,
                c.builds,
                c.wall.as_secs(),
                c.confidence,
                c.runs.get()
            ),
            (false, 3, 5400, 0.9, 2)
        );
        assert!(
            load(&format!("{cells}[bisect]\noff = true\n"))
                .unwrap()
                .bisect
                .off
        );
        for (text, says) in [
            (
                "builds = 0",
                "builds = 0: a night's bisections need at least one build",
            ),
            ("builds = -2", "builds = -2"),
            ("builds = 5000000000", "builds = 5000000000"),
            ("wall = \"0s\"", "wall = \"0s\""),
            ("wall = \"soon\"", "wall = \"soon\""),
            ("confidence = 1.0", "confidence = 1: a probability"),
            ("confidence = 0", "confidence = 0: a probability"),
            ("confidence = -0.5", "confidence = -0.5"),
            ("runs = 0", "is not a run count"),
            ("budget = 3", "unknown field `budget`"),
        ] {
            let e = load(&format!("{cells}[bisect]\n{text}\n"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("lab.toml:5: ") && e.contains(says),
                "{text:?}: {e}"
            );
        }
    }

    #[test]
    fn a_missing_directory_is_named_at_its_line() {
        let e = load("kernels = \"/nonexistent\"\n[[matrix]]\nvariants = [\"baseline\"]\nscenarios = [\"uapi-epoll\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("lab.toml:1: the kernels directory /nonexistent does not exist"),
            "{e}"
        );
    }

    #[test]
    fn unknown_names_point_at_their_line() {
        let e = load(
            "[[matrix]]\nvariants = [\"baseline\",\n  \"nope\"]\nscenarios = [\"uapi-epoll\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("lab.toml:3: no variant named \"nope\""), "{e}");
        assert!(e.contains("known: baseline, epoll-unpinned-poll"), "{e}");
        let e = load("[[matrix]]\nvariants = [\"baseline\"]\nscenarios = [\"x\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("lab.toml:3: no scenario named \"x\""), "{e}");
        let e = load("duration = \"soon\"\n[[matrix]]\nvariants = [\"baseline\"]\nscenarios = [\"uapi-epoll\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("lab.toml:1: duration \"soon\""), "{e}");
        assert!(load("")
            .unwrap_err()
            .to_string()
            .contains("no [[matrix]] cells"));
    }

    #[test]
    fn the_repo_lab_toml_loads() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let c = LabConfig::load(&root.join("lab.toml"), variant_names, |dir| {
            crate::config::scenario::names(dir)
        })
        .unwrap();
        assert_eq!(
            c.cells
                .iter()
                .map(|c| &c.variant)
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            5,
            "the five seed variants"
        );
        assert!(c.compare.is_some());
        // The repository's suppression list comes with it, every entry with a reason.
        assert!(!c.suppressions.is_empty());
        // The detector lab: each of its variants under both detectors.
        let k = LabConfig::load(&root.join("lab-kcsan.toml"), variant_names, |dir| {
            crate::config::scenario::names(dir)
        })
        .unwrap();
        let variants: Vec<&str> = k.cells.iter().map(|c| c.variant.as_str()).collect();
        assert_eq!(
            variants,
            [
                "baseline",
                "baseline+kcsan",
                "epoll-unpinned-poll",
                "epoll-unpinned-poll+kcsan",
                "baseline",
                "baseline+kcsan",
                "eventfd-no-kref",
                "eventfd-no-kref+kcsan"
            ]
        );
        assert_eq!(k.suppressions, c.suppressions);
        // The two-series lab: every cell of lab.toml on 6.12 and on 6.1, each variant on 6.1
        // ported (Catalog::get resolves it), with 6.1's own expectations where it differs.
        let lts = LabConfig::load(&root.join("lab-lts.toml"), variant_names, |dir| {
            crate::config::scenario::names(dir)
        })
        .unwrap();
        let catalog = super::super::variant::Catalog::load(&lts.kernels).unwrap();
        for cell in &lts.cells {
            let v = catalog.get(&cell.variant).unwrap();
            let on_61 = cell.variant.contains("@6.1");
            assert_eq!(
                v.series.as_deref(),
                Some(if on_61 { "6.1" } else { "6.12" })
            );
            let twin = cell.variant.replace("@6.1", "");
            assert!(
                c.cells
                    .iter()
                    .any(|d| d.variant == twin && d.scenario == cell.scenario)
                    || cell.scenario == "epoll-dmabuf-schedule",
                "{} × {} is not a cell of lab.toml",
                cell.variant,
                cell.scenario
            );
        }
        let expect = |v: &str, s: &str| {
            lts.cells
                .iter()
                .find(|c| c.variant == v && c.scenario == s)
                .and_then(|c| c.expect.clone())
        };
        assert_eq!(
            expect("eventfd-no-kref@6.1", "eventfd-uring-race").as_deref(),
            Some("KASAN: use-after-free Read in eventfd_signal_mask")
        );
        assert_eq!(
            expect("baseline@6.1", "epoll-dmabuf-race").as_deref(),
            Some("pass")
        );
    }
}
