//! `lab compare`: the same scenario on several variants, side by side. Detection rate with a
//! Wilson 95 % interval, Fisher's exact test of each variant against the first, time to the
//! first report, distinct report titles, stress throughput and its overhead against the first,
//! and for uapi scenarios every check whose value differs from the first variant's.

use super::stats::{fisher_two_sided, median, wilson, Z95};
use super::RunResult;
use std::collections::BTreeMap;

/// One variant's runs.
pub struct Arm {
    pub name: String,
    /// The detector its kernel was built with (`kasan`, `kcsan`), when known.
    pub detector: Option<&'static str>,
    pub results: Vec<RunResult>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: String,
    pub detector: Option<&'static str>,
    /// Runs that say something about the kernel (the evidence rule's `counts`).
    pub runs: usize,
    /// Runs that say nothing: inconclusive, skipped, interrupted.
    pub errors: usize,
    /// Runs with a finding: a kernel report, or the machine saw the kernel hang.
    pub detected: usize,
    /// Of those, the runs where the machine, not a kernel report, found it (hangs).
    pub hangs: usize,
    pub interval: (f64, f64),
    /// Fisher's exact p against the first variant (none for the first).
    pub p_vs_first: Option<f64>,
    pub median_first_report_s: Option<f64>,
    /// Distinct finding titles (kernel reports, and what the machine saw) with the number of
    /// runs that had each.
    pub titles: Vec<(String, usize)>,
    /// Reports the lab's suppression list left out, with the number of runs that printed
    /// each.
    pub suppressed: Vec<(String, usize)>,
    /// Median ops/s per role.
    pub throughput: Vec<(String, f64)>,
    /// uapi: the value each check took in most runs.
    pub observed: BTreeMap<String, serde_json::Value>,
    /// suite: each test's result (`ok`, `not ok`, …), or its results and their counts
    /// (`ok ×2, not ok ×1`) when the runs disagree.
    pub tests: BTreeMap<String, String>,
    /// Why the clean runs' detectors are unproven (no canary could run), when they are.
    pub unproven: Option<String>,
    /// What the runs with a schedule survived, when some did.
    pub survived: Option<String>,
}

/// Each test's result over the runs that count: one status, or each with its count when
/// they differ.
pub fn test_results<'a>(runs: impl IntoIterator<Item = &'a RunResult>) -> BTreeMap<String, String> {
    let mut seen: BTreeMap<String, BTreeMap<&'static str, usize>> = BTreeMap::new();
    for r in runs.into_iter().filter(|r| r.evidence.counts()) {
        if let Some(suite) = r.record.as_ref().and_then(|rec| rec.tests.as_ref()) {
            for (name, t) in suite.leaves() {
                *seen
                    .entry(name)
                    .or_default()
                    .entry(t.status.name())
                    .or_default() += 1;
            }
        }
    }
    seen.into_iter()
        .map(|(name, statuses)| {
            let text = if statuses.len() == 1 {
                statuses.into_keys().next().unwrap_or_default().to_string()
            } else {
                let mut all: Vec<(&str, usize)> = statuses.into_iter().collect();
                all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                all.iter()
                    .map(|(s, n)| format!("{s} ×{n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            (name, text)
        })
        .collect()
}

/// Tests whose result differs from the first variant's: (test, first's, this one's).
pub fn test_differences(first: &Row, row: &Row) -> Vec<(String, String, String)> {
    tests_that_differ(&first.tests, &row.tests)
}

/// Tests whose result in `other` is not the one in `first` (a test one of them did not run
/// is "not run").
pub fn tests_that_differ(
    first: &BTreeMap<String, String>,
    other: &BTreeMap<String, String>,
) -> Vec<(String, String, String)> {
    let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "not run".into());
    let mut names: Vec<&String> = first.keys().chain(other.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| first.get(*n) != other.get(*n))
        .map(|n| (n.clone(), show(first.get(n)), show(other.get(n))))
        .collect()
}

fn row(arm: &Arm) -> Row {
    let counted: Vec<&RunResult> = arm.results.iter().filter(|r| r.evidence.counts()).collect();
    let detected = counted
        .iter()
        .filter(|r| r.evidence.finding().is_some())
        .count();
    let hangs = counted
        .iter()
        .filter(|r| r.evidence.is_machine_finding())
        .count();
    let mut titles: BTreeMap<String, usize> = BTreeMap::new();
    for r in &counted {
        for t in r.finding_titles() {
            *titles.entry(t.to_string()).or_default() += 1;
        }
    }
    let by_count = |titles: BTreeMap<String, usize>| {
        let mut titles: Vec<(String, usize)> = titles.into_iter().collect();
        titles.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        titles
    };
    let titles = by_count(titles);
    let mut suppressed: BTreeMap<String, usize> = BTreeMap::new();
    for r in &counted {
        for (t, _) in r.suppressed_titles() {
            *suppressed.entry(t.to_string()).or_default() += 1;
        }
    }
    let suppressed = by_count(suppressed);
    let mut roles: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in &counted {
        for (role, ops) in &r.throughput {
            roles.entry(role.clone()).or_default().push(*ops);
        }
    }
    let mut values: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for r in &counted {
        // A test program's end (its exit status, its time) is not a UAPI value.
        if let Some(record) = r.record.as_ref().filter(|rec| rec.tests.is_none()) {
            let checks = record
                .observations
                .iter()
                .filter(|(name, _)| !runner::protocol::AGENT_OBSERVATIONS.contains(&name.as_str()));
            for (check, v) in checks {
                *values
                    .entry(check.clone())
                    .or_default()
                    .entry(v.to_string())
                    .or_default() += 1;
            }
        }
    }
    let observed = values
        .into_iter()
        .filter_map(|(check, counts)| {
            let (text, _) = counts.into_iter().max_by_key(|(_, n)| *n)?;
            Some((check, serde_json::from_str(&text).ok()?))
        })
        .collect();
    let unproven = counted.iter().find_map(|r| match r.verdict() {
        crate::results::Verdict::PassUnproven(why) => Some(why),
        _ => None,
    });
    Row {
        unproven,
        survived: super::survived(counted.iter().copied()),
        name: arm.name.clone(),
        detector: arm.detector,
        runs: counted.len(),
        errors: arm.results.len() - counted.len(),
        detected,
        hangs,
        interval: wilson(detected as u64, counted.len() as u64, Z95),
        p_vs_first: None,
        median_first_report_s: median(
            counted
                .iter()
                .filter_map(|r| r.first_report_ms.map(|ms| ms as f64 / 1000.0))
                .collect(),
        ),
        titles,
        suppressed,
        throughput: roles
            .into_iter()
            .filter_map(|(role, xs)| Some((role, median(xs)?)))
            .collect(),
        observed,
        tests: test_results(counted.iter().copied()),
    }
}

/// One row per variant, the first being the reference.
pub fn rows(arms: &[Arm]) -> Vec<Row> {
    let mut rows: Vec<Row> = arms.iter().map(row).collect();
    if let Some(first) = rows.first().cloned() {
        for r in rows.iter_mut().skip(1) {
            r.p_vs_first = Some(fisher_two_sided(
                r.detected as u64,
                (r.runs - r.detected) as u64,
                first.detected as u64,
                (first.runs - first.detected) as u64,
            ));
        }
    }
    rows
}

/// Checks whose value differs from the first variant's: (check, first's, this one's).
pub fn uapi_differences(first: &Row, row: &Row) -> Vec<(String, String, String)> {
    let show = |v: Option<&serde_json::Value>| v.map_or("none".to_string(), |v| v.to_string());
    let mut checks: Vec<&String> = first.observed.keys().chain(row.observed.keys()).collect();
    checks.sort();
    checks.dedup();
    checks
        .into_iter()
        .filter(|c| first.observed.get(*c) != row.observed.get(*c))
        .map(|c| {
            (
                c.clone(),
                show(first.observed.get(c)),
                show(row.observed.get(c)),
            )
        })
        .collect()
}
