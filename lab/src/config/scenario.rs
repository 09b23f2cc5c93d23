//! Scenarios: `scenarios/<name>.toml` — a workload and its parameters, the machine it wants,
//! the kernel options it needs, and the rule that turns a run into a verdict.

use runner::quantity::{Threads, Vcpus, WorkDuration};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

use super::error::line_of;
pub use super::error::ConfigError as ScenarioError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Stress a race; the verdict is about kernel reports.
    Race,
    /// Deterministic checks; the verdict compares observed values with expected ones.
    Uapi,
    /// Test programs of the kernel tree (a selftest directory): the verdict is their results.
    Suite,
}

/// Programs a scenario brings into the guest, built for each kernel it runs on.
#[derive(Debug, Clone, PartialEq)]
pub enum Programs {
    /// A selftest directory of the kernel tree under test
    /// (`tools/testing/selftests/filesystems/epoll`): its programs, built from the variant's
    /// own tree, run one after the other, each for at most `timeout`.
    Suite {
        dir: String,
        /// Only these programs of the directory (all when empty).
        only: Vec<String>,
        timeout: Option<Duration>,
        /// Tests (`program/test`) known to fail now and then for reasons other than the
        /// kernel (timing under TCG): their results are recorded and shown, and do not fail
        /// the run.
        flaky: Vec<String>,
    },
    /// A C reproducer in syzbot's style, compiled against the kernel's UAPI headers and run
    /// for the duration.
    Repro { file: PathBuf },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    description: String,
    kind: Kind,
    /// Implied by `suite` (selftest) and `repro` (repro).
    workload: Option<Spanned<String>>,
    /// suite: a selftest directory of the kernel tree.
    suite: Option<Spanned<String>>,
    /// suite: only these programs of the directory.
    #[serde(default)]
    programs: Vec<String>,
    /// suite: the time limit of each program.
    timeout: Option<Spanned<String>>,
    /// suite: tests whose failures are recorded but do not fail the run.
    #[serde(default)]
    flaky: Vec<String>,
    /// A C reproducer, relative to the scenario file.
    repro: Option<Spanned<String>>,
    #[serde(default = "default_cpus")]
    cpus: Vcpus,
    #[serde(default = "default_memory")]
    memory: Spanned<String>,
    #[serde(default = "default_duration")]
    duration: Spanned<String>,
    threads: Option<Threads>,
    #[serde(default = "no_requirements")]
    requires: Spanned<Vec<String>>,
    stop_on_report: Option<bool>,
    #[serde(default = "no_cmdline")]
    cmdline: Spanned<String>,
    #[serde(default)]
    params: serde_json::Map<String, serde_json::Value>,
    /// Run-time kernel parameters the agent sets before the workload, `module.param` →
    /// value (`/sys/module/<module>/parameters/<param>`): KCSAN's delays, for one.
    #[serde(default)]
    kernel_params: Option<Spanned<BTreeMap<String, toml::Value>>>,
    /// uapi: expected value of each check on upstream semantics.
    #[serde(default)]
    expect: BTreeMap<String, serde_json::Value>,
    /// uapi: the first Linux version a check's call exists in (`"6.10"`), when it is newer
    /// than the oldest series the lab runs.
    #[serde(default)]
    since: Option<Spanned<BTreeMap<String, String>>>,
    /// race: an interleaving forced through QEMU's gdbstub.
    schedule: Option<Spanned<super::schedule::RawSchedule>>,
    /// The detectors a clean run relies on (default: a race's, every one the kernel builds;
    /// a uapi or suite scenario's, none).
    detectors: Option<Spanned<Vec<String>>>,
}

fn no_cmdline() -> Spanned<String> {
    Spanned::new(0..0, String::new())
}
fn no_requirements() -> Spanned<Vec<String>> {
    Spanned::new(0..0, Vec::new())
}
fn default_cpus() -> Vcpus {
    Vcpus::new(2).expect("2 vCPUs")
}
fn default_memory() -> Spanned<String> {
    Spanned::new(0..0, "1G".into())
}
fn default_duration() -> Spanned<String> {
    Spanned::new(0..0, "30s".into())
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub file: PathBuf,
    pub description: String,
    pub kind: Kind,
    pub workload: String,
    pub cpus: Vcpus,
    pub memory_mib: u64,
    pub duration: WorkDuration,
    pub threads: Option<Threads>,
    /// Kernel options (`CONFIG_X`) that must be `y` in the kernel's .config.
    pub requires: Vec<String>,
    /// End a run once a kernel report has been printed (default: true for races).
    pub stop_on_report: bool,
    pub cmdline: crate::units::CmdlineExtra,
    pub params: serde_json::Map<String, serde_json::Value>,
    /// `module.param` → value, written to /sys/module/<module>/parameters/<param> by the
    /// agent before the workload (KCSAN's `kcsan.udelay_task`, `kcsan.skip_watch`, ...); the
    /// run records what each reads back. A module the kernel lacks is recorded as absent.
    pub kernel_params: BTreeMap<String, String>,
    pub expect: BTreeMap<String, serde_json::Value>,
    /// uapi: the first Linux version (major, minor) each check named here can run on.
    pub since: BTreeMap<String, (u32, u32)>,
    pub programs: Option<Programs>,
    /// race: the interleaving each run forces (and repeats) instead of waiting for it.
    pub schedule: Option<super::schedule::Schedule>,
    /// The detectors whose silence on the machine (its canary) makes a clean run say nothing.
    pub detectors: super::detector::Relied,
}

/// The memory a scenario can ask for.
pub const MIN_MEMORY_MIB: u64 = 64;
pub const MAX_MEMORY_MIB: u64 = 256 * 1024;

/// vCPUs, threads, and every CPU a pin list names (`params.cpus`, `params.*_cpus`) must
/// describe the machine: (offset in the file, why) otherwise.
fn machine(raw: &Raw, text: &str) -> Result<(), (usize, String)> {
    // The line a key is set on, looking from `from` on (params: from their table's header).
    let offset_in = |key: &str, from: usize| {
        let mut at = from;
        for line in text[from.min(text.len())..].split_inclusive('\n') {
            let t = line.trim_start();
            if t.starts_with(key) && t[key.len()..].trim_start().starts_with('=') {
                return at;
            }
            at += line.len();
        }
        0
    };
    let offset_of = |key: &str| offset_in(key, 0);
    let params = text.find("[params]").unwrap_or(0);
    // The quantities among the parameters, by the table the agent checks with.
    if let Err(e) = runner::quantity::check_params(&raw.params) {
        let key = e.0.split(['.', ':', '[']).nth(1).unwrap_or("");
        return Err((offset_in(key, params), e.to_string()));
    }
    let cpus = raw.cpus.get();
    for (key, value) in &raw.params {
        if key != "cpus" && !key.ends_with("_cpus") {
            continue;
        }
        let listed = value.as_array().ok_or_else(|| {
            (
                offset_of(key),
                format!("{key} must be a list of vCPU numbers, not {value}"),
            )
        })?;
        for cpu in listed {
            match cpu.as_u64() {
                Some(c) if c < u64::from(cpus) => {}
                _ => {
                    return Err((
                        offset_in(key, params),
                        format!(
                            "{key} names vCPU {cpu}, but the guest has {cpus} (0 to {})",
                            cpus - 1
                        ),
                    ))
                }
            }
        }
    }
    Ok(())
}

pub fn load(file: &Path) -> Result<Scenario, ScenarioError> {
    let text = crate::files::read_to_string(file).map_err(|e| ScenarioError::File {
        file: file.to_path_buf(),
        message: e.to_string(),
    })?;
    let at = |offset: usize, message: String| ScenarioError::At {
        file: file.to_path_buf(),
        line: line_of(&text, offset),
        message,
    };
    let raw: Raw = toml::from_str(&text).map_err(|e| {
        at(
            e.span().map(|s| s.start).unwrap_or(0),
            e.message().to_string(),
        )
    })?;
    let memory_mib = crate::units::parse_mib(raw.memory.get_ref())
        .map_err(|m| at(raw.memory.span().start, m))?;
    if !(MIN_MEMORY_MIB..=MAX_MEMORY_MIB).contains(&memory_mib) {
        return Err(at(
            raw.memory.span().start,
            format!(
                "memory {:?} is {memory_mib} MiB: a guest gets {MIN_MEMORY_MIB} MiB to {} GiB",
                raw.memory.get_ref(),
                MAX_MEMORY_MIB / 1024
            ),
        ));
    }
    let duration = crate::units::parse_work_duration(raw.duration.get_ref())
        .map_err(|e| at(raw.duration.span().start, format!("duration: {e}")))?;
    for option in raw.requires.get_ref() {
        let ok = option.starts_with("CONFIG_")
            && option[7..]
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            return Err(at(
                raw.requires.span().start,
                format!("requires: {option:?} is not a CONFIG_ option name"),
            ));
        }
    }
    let (workload, programs) = programs(&raw, file).map_err(|(offset, m)| at(offset, m))?;
    if !runner::protocol::WORKLOAD_NAMES.contains(&workload.as_str()) {
        return Err(at(
            raw.workload.as_ref().map_or(0, |w| w.span().start),
            format!(
                "no workload named {workload:?}; the agent runs: {}",
                runner::protocol::WORKLOAD_NAMES.join(", ")
            ),
        ));
    }
    machine(&raw, &text).map_err(|(offset, m)| at(offset, m))?;
    let cmdline = crate::units::CmdlineExtra::new(raw.cmdline.get_ref())
        .map_err(|m| at(raw.cmdline.span().start, format!("cmdline: {m}")))?;
    let kernel_params = match &raw.kernel_params {
        Some(table) => kernel_params(table.get_ref()).map_err(|m| at(table.span().start, m))?,
        None => BTreeMap::new(),
    };
    let since = uapi_checks(&raw).map_err(|(offset, m)| at(offset, m))?;
    let schedule = match raw.schedule {
        None => None,
        Some(s) if raw.kind != Kind::Race => {
            return Err(at(
                s.span().start,
                "a schedule belongs to a race scenario".into(),
            ))
        }
        Some(s) => {
            let start = s.span().start;
            let schedule =
                super::schedule::Schedule::from_raw(s.into_inner(), raw.cpus.get(), |o| {
                    line_of(&text, o)
                })
                .map_err(|(offset, m)| at(if offset == 0 { start } else { offset }, m))?;
            Some(schedule)
        }
    };
    let detectors = match &raw.detectors {
        None if raw.kind == Kind::Race => super::detector::Relied::AllBuilt,
        None => super::detector::Relied::These(vec![]),
        Some(names) => {
            if let Some(unknown) = names
                .get_ref()
                .iter()
                .find(|n| !super::detector::PROVABLE.contains(&n.as_str()))
            {
                return Err(at(
                    names.span().start,
                    format!(
                        "detectors: no detector named {unknown:?}; the canary proves: {}",
                        super::detector::PROVABLE.join(", ")
                    ),
                ));
            }
            super::detector::Relied::These(names.get_ref().clone())
        }
    };
    Ok(Scenario {
        name: file.file_stem().unwrap().to_string_lossy().into_owned(),
        file: file.to_path_buf(),
        description: raw.description.trim().to_string(),
        kind: raw.kind,
        workload,
        cpus: raw.cpus,
        memory_mib,
        duration,
        threads: raw.threads,
        requires: raw.requires.into_inner(),
        stop_on_report: raw.stop_on_report.unwrap_or(raw.kind == Kind::Race),
        cmdline,
        params: raw.params,
        kernel_params,
        expect: raw.expect,
        since,
        programs,
        schedule,
        detectors,
    })
}

/// A uapi scenario's `[expect]` is there; `[since]` names its checks, each with a version.
fn uapi_checks(raw: &Raw) -> Result<BTreeMap<String, (u32, u32)>, (usize, String)> {
    if raw.kind == Kind::Uapi && raw.expect.is_empty() {
        return Err((0, "a uapi scenario needs an [expect] table".into()));
    }
    match &raw.since {
        None => Ok(BTreeMap::new()),
        Some(table) => since(table.get_ref(), &raw.expect).map_err(|m| (table.span().start, m)),
    }
}

/// `[since]`: each check an `[expect]` names, with the version its call came in.
fn since(
    table: &BTreeMap<String, String>,
    expect: &BTreeMap<String, serde_json::Value>,
) -> Result<BTreeMap<String, (u32, u32)>, String> {
    let mut out = BTreeMap::new();
    for (check, version) in table {
        if !expect.contains_key(check) {
            return Err(format!(
                "since: {check:?} is no check of [expect] ({})",
                expect.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        let v = version_of(version)
            .ok_or_else(|| format!("since.{check}: {version:?} is not a version like \"6.10\""))?;
        out.insert(check.clone(), v);
    }
    Ok(out)
}

/// A kernel release's (major, minor): "6.1.192" and "6.12.118+deb12-amd64" alike.
pub fn version_of(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

impl Scenario {
    /// The checks of `[expect]` that a kernel of `release` cannot run (their call is newer),
    /// each with the version it needs; none when the release is unknown or unreadable.
    pub fn checks_too_new(&self, release: Option<&str>) -> Vec<(String, (u32, u32))> {
        let Some(have) = release.and_then(version_of) else {
            return Vec::new();
        };
        self.since
            .iter()
            .filter(|(_, need)| **need > have)
            .map(|(check, need)| (check.clone(), *need))
            .collect()
    }

    /// `[expect]` less the checks a kernel of `release` cannot run.
    pub fn expect_on(&self, release: Option<&str>) -> BTreeMap<String, serde_json::Value> {
        let too_new = self.checks_too_new(release);
        self.expect
            .iter()
            .filter(|(check, _)| !too_new.iter().any(|(c, _)| c == *check))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// `[kernel_params]`: `module.param = value` (a number, a boolean or a string), as the
/// agent writes them to sysfs.
fn kernel_params(
    table: &BTreeMap<String, toml::Value>,
) -> Result<BTreeMap<String, String>, String> {
    let word = |w: &str| !w.is_empty() && w.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
    table
        .iter()
        .map(|(name, value)| {
            match name.split_once('.') {
                Some((module, param)) if word(module) && word(param) => {}
                _ => {
                    return Err(format!(
                        "[kernel_params] {name:?}: name a module's parameter as module.param \
                         (e.g. \"kcsan.udelay_task\"), set in /sys/module/<module>/parameters/"
                    ))
                }
            }
            let value = match value {
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => if *b { "Y" } else { "N" }.to_string(),
                toml::Value::String(s) => s.clone(),
                other => {
                    return Err(format!(
                        "[kernel_params] {name}: a number, a boolean or a string, not {}",
                        other.type_str()
                    ))
                }
            };
            Ok((name.clone(), value))
        })
        .collect()
}

/// The workload and the programs a scenario runs: a named workload, a selftest directory
/// (workload `selftest`) or a reproducer (workload `repro`).
fn programs(raw: &Raw, file: &Path) -> Result<(String, Option<Programs>), (usize, String)> {
    let offset = |s: &Option<Spanned<String>>| s.as_ref().map_or(0, |s| s.span().start);
    let implied = match (&raw.suite, &raw.repro) {
        (Some(_), Some(r)) => {
            return Err((
                r.span().start,
                "a scenario runs a suite or a repro, not both".into(),
            ))
        }
        (Some(dir), None) => {
            let d = dir.get_ref().trim_end_matches('/');
            let inside = d.starts_with("tools/testing/selftests/")
                && !d.split('/').any(|part| part == ".." || part.is_empty());
            if !inside {
                return Err((
                    dir.span().start,
                    format!(
                        "suite {d:?}: name a directory under tools/testing/selftests/ of the \
                         kernel tree (e.g. \"tools/testing/selftests/filesystems/epoll\")"
                    ),
                ));
            }
            let timeout = raw
                .timeout
                .as_ref()
                .map(|t| {
                    humantime::parse_duration(t.get_ref())
                        .map_err(|e| (t.span().start, format!("timeout: {e}")))
                })
                .transpose()?;
            if raw.kind != Kind::Suite {
                return Err((0, "a scenario with a suite has kind = \"suite\"".into()));
            }
            Some((
                "selftest",
                Programs::Suite {
                    dir: d.to_string(),
                    only: raw.programs.clone(),
                    timeout,
                    flaky: raw.flaky.clone(),
                },
            ))
        }
        (None, Some(repro)) => {
            let path = file
                .parent()
                .unwrap_or(Path::new("."))
                .join(repro.get_ref());
            if !path.is_file() {
                return Err((
                    repro.span().start,
                    format!("repro: {} is not a file", path.display()),
                ));
            }
            Some(("repro", Programs::Repro { file: path }))
        }
        (None, None) => None,
    };
    if raw.kind == Kind::Suite && raw.suite.is_none() {
        return Err((
            0,
            "a suite scenario names its selftest directory: suite = \"tools/testing/selftests/…\""
                .into(),
        ));
    }
    if raw.suite.is_none() && (raw.timeout.is_some() || !raw.programs.is_empty()) {
        return Err((
            offset(&raw.timeout),
            "timeout and programs belong to a suite".into(),
        ));
    }
    match (implied, &raw.workload) {
        (Some((implied, _)), Some(w)) if w.get_ref() != implied => Err((
            w.span().start,
            format!(
                "this scenario runs the {implied} workload, not {:?}",
                w.get_ref()
            ),
        )),
        (Some((implied, programs)), _) => Ok((implied.to_string(), Some(programs))),
        (None, Some(w)) => Ok((w.get_ref().clone(), None)),
        (None, None) => Err((
            0,
            "name what the scenario runs: workload, suite or repro".into(),
        )),
    }
}

/// The scenario of `lab run --repro FILE.c`: the reproducer alone on the lab's default
/// machine, judged as a race (by the kernel reports it causes).
pub fn repro(file: &Path) -> Result<Scenario, ScenarioError> {
    if !file.is_file() {
        return Err(ScenarioError::File {
            file: file.to_path_buf(),
            message: "no such file".into(),
        });
    }
    let name = file
        .file_stem()
        .map_or("repro".into(), |s| s.to_string_lossy().into_owned());
    let duration =
        crate::units::parse_work_duration(default_duration().get_ref()).expect("default");
    Ok(Scenario {
        file: file.to_path_buf(),
        description: format!("the reproducer {}", file.display()),
        programs: Some(Programs::Repro {
            file: file.to_path_buf(),
        }),
        ..probe(None, &name, "repro", Default::default(), duration, &[])
    })
}

/// A race scenario that runs `workload` with `params` for `duration` on `base`'s machine (its
/// vCPUs, memory, command line and kernel parameters: what decides what reaches the console),
/// or on the lab's default machine, and stops at the first report: how the lab probes a
/// machine (the detector canary).
pub fn probe(
    base: Option<&Scenario>,
    name: &str,
    workload: &str,
    params: serde_json::Map<String, serde_json::Value>,
    duration: WorkDuration,
    requires: &[&str],
) -> Scenario {
    let memory = || crate::units::parse_mib(default_memory().get_ref()).expect("default memory");
    Scenario {
        name: name.to_string(),
        file: base.map_or_else(PathBuf::new, |b| b.file.clone()),
        description: format!("{workload} {params:?}"),
        kind: Kind::Race,
        workload: workload.to_string(),
        cpus: base.map_or_else(default_cpus, |b| b.cpus),
        memory_mib: base.map_or_else(memory, |b| b.memory_mib),
        duration,
        threads: None,
        requires: requires.iter().map(|r| r.to_string()).collect(),
        stop_on_report: true,
        cmdline: base.map(|b| b.cmdline.clone()).unwrap_or_default(),
        params,
        kernel_params: base.map(|b| b.kernel_params.clone()).unwrap_or_default(),
        expect: Default::default(),
        since: Default::default(),
        programs: None,
        schedule: None,
        // A probe proves the machine; it relies on nothing.
        detectors: super::detector::Relied::These(vec![]),
    }
}

/// Every scenario under `dir`.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

pub fn find(dir: &Path, name: &str) -> Result<Scenario, ScenarioError> {
    let file = dir.join(format!("{name}.toml"));
    if !file.is_file() {
        return Err(ScenarioError::Unknown {
            what: "scenario",
            name: name.to_string(),
            dir: dir.to_path_buf(),
            known: names(dir).join(", "),
        });
    }
    load(&file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(&file, text).unwrap();
        (dir, file)
    }

    #[test]
    fn race_scenario_with_defaults() {
        let (_d, f) = write(
            "description = \"d\"\nkind = \"race\"\nworkload = \"epoll_close_race\"\n\
             requires = [\"CONFIG_EPOLL\"]\n[params]\nfile_kind = \"pipe\"\n",
        );
        let s = load(&f).unwrap();
        assert_eq!(s.name, "s");
        assert_eq!(s.kind, Kind::Race);
        assert_eq!(s.cpus.get(), 2);
        assert_eq!(s.memory_mib, 1024);
        assert_eq!(s.duration.get(), Duration::from_secs(30));
        assert!(s.stop_on_report);
        assert_eq!(s.params["file_kind"], "pipe");
    }

    #[test]
    fn kernel_params_are_module_parameters_with_plain_values() {
        let (_d, f) = write(
            "kind = \"race\"\nworkload = \"epoll_close_race\"\n\
             [kernel_params]\n\"kcsan.udelay_task\" = 400\n\"kcsan.skip_watch\" = 100\n\
             \"kcsan.weak_memory\" = false\n",
        );
        let s = load(&f).unwrap();
        assert_eq!(s.kernel_params["kcsan.udelay_task"], "400");
        assert_eq!(s.kernel_params["kcsan.skip_watch"], "100");
        assert_eq!(s.kernel_params["kcsan.weak_memory"], "N");
        let (_d, f) = write(
            "kind = \"race\"\nworkload = \"epoll_close_race\"\n\n[kernel_params]\nudelay = 4\n",
        );
        let e = load(&f).unwrap_err().to_string();
        assert!(e.contains("s.toml:4:") && e.contains("module.param"), "{e}");
    }

    #[test]
    fn errors_name_file_and_line() {
        for (text, line, needle) in [
            (
                "kind = \"race\"\nworkload = \"w\"\nduration = \"soon\"\n",
                3,
                "duration",
            ),
            (
                "kind = \"race\"\nworkload = \"w\"\n\nmemory = \"lots\"\n",
                4,
                "bad size",
            ),
            ("kind = \"fast\"\nworkload = \"w\"\n", 1, "unknown variant"),
            (
                "kind = \"race\"\nworkload = \"w\"\nrequires = [\"EPOLL\"]\n",
                3,
                "CONFIG_",
            ),
            (
                "kind = \"race\"\nworkload = \"w\"\nthreds = 3\n",
                3,
                "threds",
            ),
        ] {
            let (_d, f) = write(text);
            let e = load(&f).unwrap_err().to_string();
            assert!(e.contains(&format!("s.toml:{line}:")), "{text:?}: {e}");
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn values_that_cannot_describe_the_machine_are_refused_at_their_line() {
        for (text, line, needle) in [
            ("kind = \"race\"\nworkload = \"hang\"\ncpus = 0\n", 3, "0 is not a vCPU count: 1 to 64"),
            ("kind = \"race\"\nworkload = \"hang\"\ncpus = 100000\n", 3, "not a vCPU count: 1 to 64"),
            ("kind = \"race\"\nworkload = \"hang\"\ncpus = -1\n", 3, "not a vCPU count"),
            ("kind = \"race\"\nworkload = \"hang\"\nthreads = 4294967296\n", 3, "not a worker thread count"),
            ("kind = \"race\"\nworkload = \"hang\"\nduration = \"0s\"\n", 3, "1 ms to 7 days"),
            ("kind = \"race\"\nworkload = \"hang\"\nduration = \"100000h\"\n", 3, "1 ms to 7 days"),
            ("kind = \"race\"\nworkload = \"hang\"\nmemory = \"1e400\"\n", 3, "too large"),
            ("kind = \"race\"\nworkload = \"epoll_close_race\"\n[params]\nclosers = 0\n", 4, "params.closers: 0 is not a worker thread count"),
            ("kind = \"race\"\nworkload = \"epoll_close_race\"\n[params]\npollers = 4294967296\n", 4, "params.pollers"),
            ("kind = \"race\"\nworkload = \"sequence\"\n[params]\nsteps = []\n", 4, "params.steps: an empty list"),
            ("kind = \"race\"\nworkload = \"hang\"\nmemory = \"99999999T\"\n", 3, "too large"),
            ("kind = \"race\"\nworkload = \"hang\"\nmemory = \"1K\"\n", 3, "below 1 MiB"),
            ("kind = \"race\"\nworkload = \"hang\"\nmemory = \"32M\"\n", 3, "MiB to"),
            ("kind = \"race\"\nworkload = \"hang\"\nthreads = 0\n", 3, "0 is not a worker thread count"),
            (
                "kind = \"race\"\nworkload = \"epoll_close_race\"\ncpus = 2\n[params]\nfile_kind = \"pipe\"\npoller_cpus = [1, 2]\n",
                6,
                "poller_cpus names vCPU 2, but the guest has 2",
            ),
            (
                "kind = \"race\"\nworkload = \"syscall_count\"\ncpus = 1\n[params]\ncpus = [1]\n",
                5,
                "cpus names vCPU 1",
            ),
            (
                "kind = \"race\"\nworkload = \"epol_close_race\"\n",
                2,
                "no workload named \"epol_close_race\"",
            ),
        ] {
            let (_d, f) = write(text);
            let e = load(&f).unwrap_err().to_string();
            assert!(e.contains(&format!("s.toml:{line}:")), "{text:?}: {e}");
            assert!(e.contains(needle), "{text:?}: {e}");
        }
        let long = format!(
            "kind = \"race\"\nworkload = \"hang\"\ncmdline = \"{}\"\n",
            "x".repeat(3000)
        );
        let (_d, f) = write(&long);
        let e = load(&f).unwrap_err().to_string();
        assert!(
            e.contains("s.toml:3:") && e.contains("COMMAND_LINE_SIZE"),
            "{e}"
        );
    }

    #[test]
    fn a_suite_names_a_selftest_directory_and_a_repro_a_file() {
        let (d, f) = write(
            "kind = \"suite\"\nsuite = \"tools/testing/selftests/filesystems/epoll/\"\ntimeout = \"5m\"\n",
        );
        let s = load(&f).unwrap();
        assert_eq!(s.workload, "selftest");
        assert_eq!(
            s.programs,
            Some(Programs::Suite {
                dir: "tools/testing/selftests/filesystems/epoll".into(),
                only: vec![],
                timeout: Some(Duration::from_secs(300)),
                flaky: vec![],
            })
        );
        std::fs::write(d.path().join("r.c"), "int main(void) { return 0; }\n").unwrap();
        std::fs::write(&f, "kind = \"race\"\nrepro = \"r.c\"\n").unwrap();
        let s = load(&f).unwrap();
        assert_eq!(s.workload, "repro");
        assert!(s.stop_on_report);
        assert_eq!(
            s.programs,
            Some(Programs::Repro {
                file: d.path().join("r.c")
            })
        );
        let r = repro(&d.path().join("r.c")).unwrap();
        assert_eq!((r.name.as_str(), r.workload.as_str()), ("r", "repro"));
    }

    #[test]
    fn suite_and_repro_mistakes_are_refused_at_their_line() {
        for (text, line, needle) in [
            (
                "kind = \"suite\"\n\nsuite = \"../etc\"\n",
                3,
                "under tools/testing/selftests/",
            ),
            (
                "kind = \"suite\"\nsuite = \"tools/testing/selftests/../../x\"\n",
                2,
                "under tools/testing/selftests/",
            ),
            (
                "kind = \"suite\"\nworkload = \"exec\"\nsuite = \"tools/testing/selftests/x\"\n",
                2,
                "runs the selftest workload, not \"exec\"",
            ),
            (
                "kind = \"race\"\nsuite = \"tools/testing/selftests/x\"\n",
                1,
                "kind = \"suite\"",
            ),
            ("kind = \"suite\"\n", 1, "names its selftest directory"),
            (
                "kind = \"race\"\n\nrepro = \"missing.c\"\n",
                3,
                "is not a file",
            ),
            ("kind = \"race\"\n", 1, "workload, suite or repro"),
            (
                "kind = \"suite\"\nsuite = \"tools/testing/selftests/x\"\ntimeout = \"soon\"\n",
                3,
                "timeout",
            ),
        ] {
            let (_d, f) = write(text);
            let e = load(&f).unwrap_err().to_string();
            assert!(e.contains(&format!("s.toml:{line}:")), "{text:?}: {e}");
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }

    /// A check whose call a kernel predates is left out on that kernel, by the release the
    /// guest reports, whatever its suffix; an unknown release compares every check.
    #[test]
    fn a_check_newer_than_the_kernel_is_not_compared() {
        let text = "kind = \"uapi\"\nworkload = \"uapi_epoll\"\n\
                    [expect]\nold = 1\nnew = 1\n[since]\nnew = \"6.10\"\n";
        let (_d, f) = write(text);
        let s = load(&f).unwrap();
        let checks =
            |release: Option<&str>| -> Vec<String> { s.expect_on(release).into_keys().collect() };
        for (release, want) in [
            (Some("6.1.192"), vec!["old"]),
            (Some("6.9.12+deb12-amd64"), vec!["old"]),
            (Some("6.10"), vec!["new", "old"]),
            (Some("6.12.118+deb12-amd64"), vec!["new", "old"]),
            (Some("7.0.0-rc1"), vec!["new", "old"]),
            (Some("garbage"), vec!["new", "old"]),
            (None, vec!["new", "old"]),
        ] {
            assert_eq!(checks(release), want, "{release:?}");
        }
        assert_eq!(s.checks_too_new(Some("6.1.192")), [("new".into(), (6, 10))]);
        for (bad, says) in [
            ("[since]\nnew = \"six\"\n", "\"six\" is not a version"),
            (
                "[since]\nnone = \"6.10\"\n",
                "\"none\" is no check of [expect]",
            ),
        ] {
            let (_d, f) = write(&text.replace("[since]\nnew = \"6.10\"\n", bad));
            let e = load(&f).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn uapi_needs_expectations() {
        let (_d, f) = write("kind = \"uapi\"\nworkload = \"uapi_epoll\"\n");
        assert!(load(&f).unwrap_err().to_string().contains("[expect]"));
    }
}
