//! Scenarios: `scenarios/<name>.toml` — a workload and its parameters, the machine it wants,
//! the kernel options it needs, and the rule that turns a run into a verdict.

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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    description: String,
    kind: Kind,
    workload: Spanned<String>,
    #[serde(default = "default_cpus")]
    cpus: u32,
    #[serde(default = "default_memory")]
    memory: Spanned<String>,
    #[serde(default = "default_duration")]
    duration: Spanned<String>,
    threads: Option<u32>,
    #[serde(default = "no_requirements")]
    requires: Spanned<Vec<String>>,
    stop_on_report: Option<bool>,
    #[serde(default)]
    cmdline: String,
    #[serde(default)]
    params: serde_json::Map<String, serde_json::Value>,
    /// uapi: expected value of each check on upstream semantics.
    #[serde(default)]
    expect: BTreeMap<String, serde_json::Value>,
}

fn no_requirements() -> Spanned<Vec<String>> {
    Spanned::new(0..0, Vec::new())
}
fn default_cpus() -> u32 {
    2
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
    pub cpus: u32,
    pub memory_mib: u64,
    pub duration: Duration,
    pub threads: Option<u32>,
    /// Kernel options (`CONFIG_X`) that must be `y` in the kernel's .config.
    pub requires: Vec<String>,
    /// End a run once a kernel report has been printed (default: true for races).
    pub stop_on_report: bool,
    pub cmdline: String,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub expect: BTreeMap<String, serde_json::Value>,
}

/// The machines a scenario can ask for.
pub const MAX_CPUS: u32 = 64;
pub const MIN_MEMORY_MIB: u64 = 64;
pub const MAX_MEMORY_MIB: u64 = 256 * 1024;
/// Most worker threads a workload is asked for.
pub const MAX_THREADS: u32 = 1024;

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
    if !(1..=MAX_CPUS).contains(&raw.cpus) {
        return Err((
            offset_of("cpus"),
            format!("cpus = {}: a guest has 1 to {MAX_CPUS} vCPUs", raw.cpus),
        ));
    }
    if let Some(t) = raw.threads.filter(|t| !(1..=MAX_THREADS).contains(t)) {
        return Err((
            offset_of("threads"),
            format!("threads = {t}: 1 to {MAX_THREADS} worker threads"),
        ));
    }
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
                Some(c) if c < raw.cpus as u64 => {}
                _ => {
                    return Err((
                        offset_in(key, params),
                        format!(
                            "{key} names vCPU {cpu}, but the guest has {} (0 to {})",
                            raw.cpus,
                            raw.cpus - 1
                        ),
                    ))
                }
            }
        }
    }
    Ok(())
}

pub fn load(file: &Path) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(file).map_err(|e| ScenarioError::File {
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
    let duration = humantime::parse_duration(raw.duration.get_ref())
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
    let workload = raw.workload.get_ref();
    if !runner::protocol::WORKLOAD_NAMES.contains(&workload.as_str()) {
        return Err(at(
            raw.workload.span().start,
            format!(
                "no workload named {workload:?}; the agent runs: {}",
                runner::protocol::WORKLOAD_NAMES.join(", ")
            ),
        ));
    }
    machine(&raw, &text).map_err(|(offset, m)| at(offset, m))?;
    if raw.kind == Kind::Uapi && raw.expect.is_empty() {
        return Err(at(0, "a uapi scenario needs an [expect] table".into()));
    }
    Ok(Scenario {
        name: file.file_stem().unwrap().to_string_lossy().into_owned(),
        file: file.to_path_buf(),
        description: raw.description.trim().to_string(),
        kind: raw.kind,
        workload: raw.workload.into_inner(),
        cpus: raw.cpus,
        memory_mib,
        duration,
        threads: raw.threads,
        requires: raw.requires.into_inner(),
        stop_on_report: raw.stop_on_report.unwrap_or(raw.kind == Kind::Race),
        cmdline: raw.cmdline,
        params: raw.params,
        expect: raw.expect,
    })
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
        assert_eq!(s.cpus, 2);
        assert_eq!(s.memory_mib, 1024);
        assert_eq!(s.duration, Duration::from_secs(30));
        assert!(s.stop_on_report);
        assert_eq!(s.params["file_kind"], "pipe");
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
            ("kind = \"race\"\nworkload = \"hang\"\ncpus = 0\n", 3, "cpus = 0"),
            ("kind = \"race\"\nworkload = \"hang\"\ncpus = 100000\n", 3, "1 to 64 vCPUs"),
            ("kind = \"race\"\nworkload = \"hang\"\nmemory = \"99999999T\"\n", 3, "MiB to"),
            ("kind = \"race\"\nworkload = \"hang\"\nmemory = \"1K\"\n", 3, "below 1 MiB"),
            ("kind = \"race\"\nworkload = \"hang\"\nmemory = \"32M\"\n", 3, "MiB to"),
            ("kind = \"race\"\nworkload = \"hang\"\nthreads = 0\n", 3, "threads = 0"),
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
    }

    #[test]
    fn uapi_needs_expectations() {
        let (_d, f) = write("kind = \"uapi\"\nworkload = \"uapi_epoll\"\n");
        assert!(load(&f).unwrap_err().to_string().contains("[expect]"));
    }
}
