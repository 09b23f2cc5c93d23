//! A night in KCIDB v5 form (KernelCI's common database): a checkout per source and patch
//! series, a build per kernel, a test per run (and one per test of a suite's run), an issue
//! per kernel report signature and an incident per run that printed it.
//!
//! Identifiers are stable where the object is: a build is its kernel's cache key, a checkout
//! its source and series, an issue its report signature (KCIDB merges objects by id, so a
//! kernel tested on many nights is one build). Tests are per night.

use super::super::night::{CellResult, NightResults};
use super::super::{Evidence, RunResult};
use crate::tap::Status;
use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The schema version written.
pub const VERSION: (u32, u32) = (5, 3);

/// KCIDB's status of a run, from what the run is evidence of.
fn run_status(r: &RunResult) -> &'static str {
    match &r.evidence {
        Evidence::KernelReport { .. }
        | Evidence::MachineFinding { .. }
        | Evidence::Differs { .. } => "FAIL",
        Evidence::Clean { .. } | Evidence::Survived { .. } => "PASS",
        Evidence::Skipped { .. } => "SKIP",
        // The guest never reached the agent: the harness, not the test, failed.
        Evidence::Inconclusive { .. }
            if r.record
                .as_ref()
                .is_none_or(|rec| rec.timing.agent_hello_ms.is_none()) =>
        {
            "MISS"
        }
        Evidence::Inconclusive { .. } => "ERROR",
        Evidence::Interrupted => "MISS",
    }
}

/// KCIDB's status of one test of a suite.
fn test_status(s: Status) -> &'static str {
    match s {
        Status::Pass | Status::Xfail => "PASS",
        Status::Fail => "FAIL",
        Status::Timeout => "ERROR",
        Status::Skip | Status::NotRun => "SKIP",
    }
}

/// One node of a KCIDB path: letters, digits, `_` and `-`.
fn node(name: &str) -> String {
    let n: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if n.is_empty() {
        "_".into()
    } else {
        n
    }
}

/// A test name as path nodes: `epoll_wakeup_test/global.epoll58` → three nodes.
fn nodes(name: &str) -> String {
    name.split(['/', '.'])
        .filter(|p| !p.is_empty())
        .map(node)
        .collect::<Vec<_>>()
        .join(".")
}

/// Everything a test object says about where its run's files are.
struct Logs<'a> {
    base: &'a str,
}

impl Logs<'_> {
    fn url(&self, cell: &CellResult, r: &RunResult, file: &str) -> String {
        let run = crate::name::run_dir_name(r.index);
        format!(
            "{}/{}",
            self.base.trim_end_matches('/'),
            url_path(&[&cell.variant, &cell.scenario, &run, file])
        )
    }
}

/// What a URL's path segment may hold as it is (RFC 3986's unreserved characters); every
/// other byte is percent-encoded.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The one URL encoder: path segments, each percent-encoded, joined by `/`.
pub fn url_path(segments: &[&str]) -> String {
    segments
        .iter()
        .map(|s| percent_encoding::utf8_percent_encode(s, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// A local directory as a `file://` URL, through the same encoder.
pub fn file_url(dir: &Path) -> String {
    let segments: Vec<String> = dir
        .iter()
        .skip(1)
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let refs: Vec<&str> = segments.iter().map(String::as_str).collect();
    format!("file:///{}", url_path(&refs))
}

/// A culprit as KCIDB's misc carries it.
fn culprit_misc(c: &crate::results::culprit::Culprit) -> Value {
    json!({
        "direction": c.direction.name(),
        "commit": c.commit,
        "subject": c.subject,
        "confidence": c.confidence,
        "builds": c.builds,
        "undecided": c.undecided,
        "range": [c.old, c.new],
        "cell": format!("{} × {}", c.variant, c.scenario),
    })
}

/// Whether the export holds the whole night, for every object's misc: a single shard or a
/// merge with shards missing says so.
fn night_misc(night: &NightResults) -> Value {
    let incomplete = match (&night.shard, &night.merged) {
        (Some(s), _) => Some(format!(
            "shard {} of a night: the other shards' runs are not in it",
            s.name()
        )),
        (_, Some(m)) if !m.missing.is_empty() => Some(m.describe()),
        _ => None,
    };
    json!({
        "id": night.identity(),
        "complete": incomplete.is_none(),
        "incomplete": incomplete,
    })
}

fn checkout_id(origin: &str, cell: &CellResult) -> String {
    match &cell.kernel {
        Some(k) => format!(
            "{origin}:{}+{}",
            k.inputs.source_id,
            &k.inputs.series_hash[..16.min(k.inputs.series_hash.len())]
        ),
        // Not built: the series is not known; the variant names it.
        None => format!("{origin}:{}+{}", cell.source, cell.variant),
    }
}

fn build_id(origin: &str, cell: &CellResult) -> String {
    match &cell.kernel {
        Some(k) => format!("{origin}:{}", k.key),
        None => format!("{origin}:{}:{}", cell.source, cell.variant),
    }
}

fn checkout(origin: &str, night: &NightResults, cell: &CellResult) -> Value {
    let mut c = Map::new();
    c.insert("id".into(), json!(checkout_id(origin, cell)));
    c.insert("origin".into(), json!(origin));
    c.insert("tree_name".into(), json!(cell.source));
    c.insert("start_time".into(), json!(night.started));
    if let Some(commit) = cell.commit.as_deref().filter(|c| is_sha1(c)) {
        c.insert("git_commit_hash".into(), json!(commit));
    }
    let repo = cell
        .source
        .strip_prefix("git:")
        .and_then(|s| s.rsplit_once('@'));
    if let Some((url, branch)) = repo {
        if url.starts_with("https://") {
            c.insert("git_repository_url".into(), json!(url));
        }
        c.insert("git_repository_branch".into(), json!(branch));
    }
    let mut misc = Map::new();
    if let Some(k) = &cell.kernel {
        c.insert("git_commit_name".into(), json!(k.kernel_release));
        // KCIDB: an empty hash for a checkout with no patches applied.
        let hash = if k.inputs.patches.is_empty() {
            String::new()
        } else {
            k.inputs.series_hash.clone()
        };
        c.insert("patchset_hash".into(), json!(hash));
        misc.insert("source_id".into(), json!(k.inputs.source_id));
        misc.insert("patches".into(), json!(k.inputs.patches));
        c.insert("valid".into(), json!(true));
    }
    misc.insert("night".into(), night_misc(night));
    c.insert("misc".into(), Value::Object(misc));
    Value::Object(c)
}

fn build(origin: &str, night: &NightResults, cell: &CellResult) -> Value {
    let mut b = Map::new();
    b.insert("id".into(), json!(build_id(origin, cell)));
    b.insert("origin".into(), json!(origin));
    b.insert("checkout_id".into(), json!(checkout_id(origin, cell)));
    b.insert("start_time".into(), json!(night.started));
    match &cell.kernel {
        Some(k) => {
            b.insert("architecture".into(), json!(node(&k.inputs.arch)));
            b.insert("compiler".into(), json!(k.inputs.compiler));
            let fragments: Vec<&str> = k.inputs.fragments.iter().map(|(n, _)| n.as_str()).collect();
            b.insert(
                "config_name".into(),
                json!(format!("{}+{}", k.inputs.config_base, fragments.join("+"))),
            );
            b.insert("duration".into(), json!(k.duration_s));
            b.insert("status".into(), json!("PASS"));
            b.insert(
                "misc".into(),
                json!({
                    "variants": [cell.variant],
                    "kernel_release": k.kernel_release,
                    "config_sha256": k.config_hash,
                    "files_compiled": k.files_compiled,
                }),
            );
        }
        None => {
            b.insert("status".into(), json!("FAIL"));
            b.insert("misc".into(), json!({ "variants": [cell.variant] }));
        }
    }
    Value::Object(b)
}

fn is_sha1(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The kernel reports a run printed, one per signature: (signature, title, type).
fn findings(r: &RunResult) -> Vec<(String, String, String)> {
    let mut out: BTreeMap<String, (String, String)> = BTreeMap::new();
    for rep in r.reports.iter().filter(|r| r.counts()) {
        out.entry(rep.signature.clone())
            .or_insert_with(|| (rep.title.clone(), format!("{:?}", rep.kind).to_lowercase()));
    }
    if let Evidence::MachineFinding {
        title, signature, ..
    } = &r.evidence
    {
        out.entry(signature.clone())
            .or_insert_with(|| (title.clone(), "hang".into()));
    }
    out.into_iter().map(|(s, (t, k))| (s, t, k)).collect()
}

/// A run as a KCIDB test.
fn run_test(
    origin: &str,
    (logs, night): (&Logs, &NightResults),
    cell: &CellResult,
    r: &RunResult,
    id: &str,
) -> Value {
    let path = format!("lab.{}.{}", node(&cell.scenario), node(&cell.variant));
    let mut t = Map::new();
    t.insert("id".into(), json!(id));
    t.insert("origin".into(), json!(origin));
    t.insert("build_id".into(), json!(build_id(origin, cell)));
    t.insert("path".into(), json!(path));
    t.insert("status".into(), json!(run_status(r)));
    let verdict = r.verdict();
    let comment: Vec<String> = [r.evidence.survived(), Some(verdict.parts().1.to_string())]
        .into_iter()
        .flatten()
        .filter(|c| !c.is_empty())
        .collect();
    if !comment.is_empty() {
        t.insert("comment".into(), json!(comment.join("; ")));
    }
    if let Some(rec) = &r.record {
        if let Some(started) = &rec.started {
            t.insert("start_time".into(), json!(started));
        }
        t.insert(
            "duration".into(),
            json!(rec.timing.ended_ms as f64 / 1000.0),
        );
        t.insert("log_url".into(), json!(logs.url(cell, r, "console.log")));
        t.insert(
            "output_files".into(),
            json!(["agent.jsonl", "outcome.json"]
                .iter()
                .map(|f| json!({"name": f, "url": logs.url(cell, r, f)}))
                .collect::<Vec<_>>()),
        );
        t.insert(
            "environment".into(),
            json!({
                "comment": format!("QEMU ({}), {} vCPUs, {} MiB", rec.accel, rec.cpus, rec.memory_mib),
                "misc": {"accel": rec.accel, "cpus": rec.cpus, "memory_mib": rec.memory_mib, "backend": rec.backend},
            }),
        );
    }
    t.insert(
        "misc".into(),
        json!({
            "run": r.index,
            "outcome": r.outcome_name(),
            "first_report_ms": r.first_report_ms,
            "survived": match &r.evidence {
                Evidence::Survived { applied, interleavings, .. } => {
                    json!({"applied": applied, "interleavings": interleavings})
                }
                _ => Value::Null,
            },
            "expect": cell.expect,
            "night": night_misc(night),
        }),
    );
    Value::Object(t)
}

/// The night as one KCIDB v5 document.
pub fn export(night: &NightResults, origin: &str, log_base: &str) -> Result<Value> {
    if origin.is_empty()
        || !origin
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        bail!("--origin {origin:?}: KCIDB origins are lowercase letters, digits and _");
    }
    let logs = Logs { base: log_base };
    let mut checkouts: BTreeMap<String, Value> = BTreeMap::new();
    let mut builds: BTreeMap<String, Value> = BTreeMap::new();
    let mut tests = Vec::new();
    let mut issues: BTreeMap<String, Value> = BTreeMap::new();
    let mut incidents = Vec::new();
    // Cells the plan skipped (their commit was already tested) ran nothing tonight.
    for cell in night.cells.iter().filter(|c| {
        c.kernel.is_some()
            || !c.runs.is_empty()
            || c.note
                .as_deref()
                .is_some_and(|n| n.starts_with(super::super::night::NOT_RUN))
    }) {
        checkouts
            .entry(checkout_id(origin, cell))
            .or_insert_with(|| checkout(origin, night, cell));
        // Variants with the same series and configuration are one kernel: one build.
        let b = builds
            .entry(build_id(origin, cell))
            .or_insert_with(|| build(origin, night, cell));
        if let Some(variants) = b["misc"]["variants"].as_array_mut() {
            if !variants.iter().any(|v| v == &json!(cell.variant)) {
                variants.push(json!(cell.variant));
            }
        }
        let path = format!("lab.{}.{}", node(&cell.scenario), node(&cell.variant));
        for r in &cell.runs {
            // The night's unique identity: nights started in the same second stay apart.
            let id = format!(
                "{origin}:{}:{}:{}:{}",
                night.identity(),
                cell.variant,
                cell.scenario,
                r.index
            );
            tests.push(run_test(origin, (&logs, night), cell, r, &id));
            for (signature, title, kind) in findings(r) {
                let issue_id = format!("{origin}:{signature}");
                // The commit a bisection named for this cell's signature, if one did.
                let culprit = night
                    .culprits
                    .iter()
                    .find(|c| c.is_about(&cell.variant, &cell.scenario, &signature));
                let issue = issues.entry(issue_id.clone()).or_insert_with(|| {
                    json!({
                        "id": issue_id,
                        "version": 1,
                        "origin": origin,
                        "report_subject": title,
                        "culprit": {"code": true, "tool": false, "harness": false},
                        "comment": format!("{kind} report, signature {signature}"),
                        "misc": {"signature": signature},
                    })
                });
                if let Some(c) = culprit.filter(|_| issue["misc"].get("culprits").is_none()) {
                    issue["comment"] = json!(format!(
                        "{kind} report, signature {signature}; {}",
                        c.line()
                    ));
                    issue["misc"]["culprits"] = json!([culprit_misc(c)]);
                }
                let mut incident = json!({
                    "id": format!("{id}:{signature}"),
                    "origin": origin,
                    "issue_id": issue_id,
                    "issue_version": 1,
                    "test_id": id,
                    "present": true,
                });
                if let Some(c) = culprit {
                    incident["comment"] = json!(c.line());
                    incident["misc"] = json!({ "culprit": culprit_misc(c) });
                }
                incidents.push(incident);
            }
            // A suite's tests, each under the run's path.
            if let Some(suite) = r.record.as_ref().and_then(|rec| rec.tests.as_ref()) {
                for (name, result) in suite.leaves() {
                    tests.push(json!({
                        "id": format!("{id}:{name}"),
                        "origin": origin,
                        "build_id": build_id(origin, cell),
                        "path": format!("{path}.{}", nodes(&name)),
                        "status": test_status(result.status),
                        "log_url": logs.url(cell, r, "console.log"),
                        "misc": {"run": r.index, "test": name, "reason": result.reason},
                    }));
                }
            }
        }
    }
    Ok(json!({
        "version": {"major": VERSION.0, "minor": VERSION.1},
        "checkouts": checkouts.into_values().collect::<Vec<_>>(),
        "builds": builds.into_values().collect::<Vec<_>>(),
        "tests": tests,
        "issues": issues.into_values().collect::<Vec<_>>(),
        "incidents": incidents,
    }))
}

/// `lab export kcidb NIGHT_DIR`: the night's results.json as KCIDB JSON text.
pub fn export_dir(dir: &Path, origin: &str, log_base: Option<&str>) -> Result<String> {
    let night = NightResults::read(dir)?;
    let base = match log_base {
        Some(b) => b.to_string(),
        None => {
            let abs = std::fs::canonicalize(dir)
                .with_context(|| format!("cannot resolve {}", dir.display()))?;
            file_url(&abs)
        }
    };
    let doc = export(&night, origin, &base)?;
    Ok(serde_json::to_string_pretty(&doc)? + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_names_become_kcidb_path_nodes() {
        assert_eq!(
            nodes("epoll_wakeup_test/global.epoll58"),
            "epoll_wakeup_test.global.epoll58"
        );
        assert_eq!(nodes("a b/c:d"), "a_b.c_d");
        assert_eq!(node(""), "_");
    }

    /// Whatever a directory or a name holds, a URL made of it holds only unreserved
    /// characters, `/`, `:` of the scheme and %XX escapes that decode back to it.
    #[test]
    fn urls_are_percent_encoded_by_one_encoder() {
        for dir in ["/tmp/a b/#night%20/ü", "/n/100%/x?y", "/plain/dir"] {
            let url = file_url(Path::new(dir));
            let rest = url.strip_prefix("file:///").unwrap();
            assert!(
                rest.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~/%".contains(&b)),
                "{url}"
            );
            let decoded = percent_encoding::percent_decode_str(rest)
                .decode_utf8()
                .unwrap();
            assert_eq!(format!("/{decoded}"), dir);
        }
        assert_eq!(
            url_path(&["v 1", "s#2", "run-001", "console.log"]),
            "v%201/s%232/run-001/console.log"
        );
    }

    /// Two nights started in the same second, and a shard, export distinct ids; the shard
    /// says it is not the whole night.
    #[test]
    fn test_ids_carry_the_nights_identity_and_a_shard_says_it_is_partial() {
        let night = |uid: &str| -> NightResults {
            serde_json::from_value(json!({
                "schema": crate::results::night::SCHEMA_VERSION, "lab": "l", "config": "lab.toml",
                "started": "2026-12-06T10:00:00Z", "ended": "2026-12-06T10:01:00Z", "uid": uid,
                "night": null, "changes": [], "errors": [],
                "cells": [{
                    "variant": "v", "scenario": "s", "source": "debian:x", "plan_key": "k",
                    "kernel": null, "commit": null, "expect": null, "note": null,
                    "runs_planned": 1, "duration_ms": 1000,
                    "counts": {"pass": 0, "fail": 0, "error": 0, "skipped": 1},
                    "runs": [serde_json::to_value(RunResult::skipped(1, "/n/v/s/run-001".into(), "x".into())).unwrap()],
                }],
            }))
            .unwrap()
        };
        let ids = |n: &NightResults| -> Vec<String> {
            export(n, "lab", "file:///n").unwrap()["tests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_string())
                .collect()
        };
        let (a, b) = (night("aaaa"), night("bbbb"));
        assert_ne!(ids(&a), ids(&b));
        let doc = export(&a, "lab", "file:///n").unwrap();
        assert_eq!(doc["tests"][0]["misc"]["night"]["complete"], true);
        let mut shard = night("cccc");
        shard.shard = Some(crate::results::shard::Shard {
            index: 1,
            count: 2,
            plan: crate::results::shard::PlanIdentity {
                lab_sha256: String::new(),
                commits: Default::default(),
                cells: vec![],
            },
            share: vec![],
        });
        let doc = export(&shard, "lab", "file:///n").unwrap();
        let misc = &doc["tests"][0]["misc"]["night"];
        assert_eq!(misc["complete"], false, "{misc}");
        assert!(
            misc["incomplete"].as_str().unwrap().contains("shard 1/2"),
            "{misc}"
        );
    }

    #[test]
    fn an_origin_outside_kcidbs_alphabet_is_refused() {
        let night: NightResults = serde_json::from_value(json!({
            "schema": 1, "lab": "l", "config": "lab.toml", "started": "s", "ended": "e",
            "night": null, "cells": [], "changes": [], "errors": []
        }))
        .unwrap();
        assert!(export(&night, "My-Lab", "file:///x").is_err());
        let doc = export(&night, "my_lab", "file:///x").unwrap();
        assert_eq!(doc["version"]["major"], 5);
        assert_eq!(doc["tests"], json!([]));
    }
}
