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
    fn uapi_needs_expectations() {
        let (_d, f) = write("kind = \"uapi\"\nworkload = \"uapi_epoll\"\n");
        assert!(load(&f).unwrap_err().to_string().contains("[expect]"));
    }
}
