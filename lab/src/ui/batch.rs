//! The text of a batch of runs: each run's line as it ends, and `lab run`'s summary (how the
//! guests started, what the schedule did, reports, throughput, tests, UAPI checks).

use crate::config::scenario::{Kind, Scenario};
use crate::events::RunEnd;
use crate::results::{stats, RunRecord, RunResult, Verdict};
use crate::run::{scheduled, Target};
use crate::tap::Status;

/// One line per run: "  baseline × epoll-dmabuf-race: run   2  pass ...".
pub fn run_line(r: &RunEnd) -> String {
    let first = r
        .first_report_ms
        .map(|ms| format!("{:.2}s", ms as f64 / 1000.0))
        .unwrap_or_else(|| "-".into());
    let ops: Vec<String> = r
        .throughput
        .iter()
        .map(|(role, v)| format!("{role} {}/s", stats::rate(*v)))
        .collect();
    let schedule = match r.schedule {
        Some((applied, attempts, Some(before))) => {
            format!("  schedule {applied}/{attempts} applied, report after {before}")
        }
        Some((applied, attempts, None)) => format!("  schedule {applied}/{attempts} applied"),
        None => String::new(),
    };
    format!(
        "  {}: run {:>3}  {:<7} {:<18} first report {:>7}  {}{schedule}  {}",
        r.batch,
        r.index,
        r.verdict,
        r.outcome,
        first,
        ops.join(" "),
        r.detail
    )
}

/// What the schedule of a batch executed, in two lines.
fn schedule_summary(results: &[RunResult]) -> String {
    let runs: Vec<(usize, usize, Option<usize>)> = results.iter().filter_map(scheduled).collect();
    if runs.is_empty() {
        return String::new();
    }
    let applied = runs.iter().filter(|(a, _, _)| *a > 0).count();
    let per_run = stats::median(runs.iter().map(|(a, _, _)| *a as f64).collect());
    let mut s = format!(
        "schedule applied in {applied}/{} runs (median {:.0} applied attempts per run)\n",
        runs.len(),
        per_run.unwrap_or(0.0)
    );
    let reported: Vec<usize> = runs.iter().filter_map(|(_, _, b)| *b).collect();
    if !reported.is_empty() {
        let first = reported.iter().filter(|b| **b == 1).count();
        let none = reported.iter().filter(|b| **b == 0).count();
        s.push_str(&format!(
            "runs with a report: {}; it followed the first applied attempt in {first}, \
             came before any attempt was applied in {none}\n",
            reported.len()
        ));
    }
    s
}

/// How the batch's guests started: how many were restored and how fast, why others booted.
fn start_summary(results: &[RunResult]) -> String {
    use crate::vm::outcome::StartKind;
    let records: Vec<&RunRecord> = results.iter().filter_map(|r| r.record.as_ref()).collect();
    let restored: Vec<&RunRecord> = records
        .iter()
        .copied()
        .filter(|r| r.start.how == StartKind::Restored)
        .collect();
    let mut s = String::new();
    if !restored.is_empty() {
        let hello: Vec<f64> = restored
            .iter()
            .filter_map(|r| r.timing.agent_hello_ms.map(|ms| ms as f64 / 1000.0))
            .collect();
        s.push_str(&format!(
            "restored from a snapshot: {}/{} runs (median {:.2} s from QEMU's start to the \
             agent's hello)\n",
            restored.len(),
            records.len(),
            stats::median(hello).unwrap_or(0.0)
        ));
    }
    let notes: std::collections::BTreeSet<&str> = records
        .iter()
        .filter(|r| r.start.how == StartKind::Booted)
        .filter_map(|r| r.start.note.as_deref())
        .collect();
    for note in notes {
        s.push_str(&format!("{note}\n"));
    }
    s
}

/// The batch in a few lines.
pub fn summary(scenario: &Scenario, target: &Target, results: &[RunResult]) -> String {
    let verdicts: Vec<Verdict> = results.iter().map(RunResult::verdict).collect();
    let count = |f: fn(&Verdict) -> bool| verdicts.iter().filter(|v| f(v)).count();
    let fails = count(|v| matches!(v, Verdict::Fail(_)));
    let errors = count(|v| matches!(v, Verdict::Error(_)));
    let skipped = count(|v| matches!(v, Verdict::Skipped(_)));
    let passes = count(Verdict::is_pass);
    let mut s = format!(
        "{} on {}: {} runs: {passes} pass, {fails} fail, {errors} error, {skipped} skipped\n",
        scenario.name,
        target.name,
        results.len()
    );
    if let Some(Verdict::Skipped(why)) = verdicts.first() {
        s.push_str(&format!("skipped: {why}\n"));
        return s;
    }
    s.push_str(&start_summary(results));
    if let Some(why) = verdicts.iter().find_map(|v| match v {
        Verdict::PassUnproven(why) => Some(why),
        _ => None,
    }) {
        s.push_str(&format!("passes qualified: {why}\n"));
    }
    if scenario.kind == Kind::Race {
        let times: Vec<f64> = results
            .iter()
            .filter_map(|r| r.first_report_ms.map(|ms| ms as f64 / 1000.0))
            .collect();
        if let Some(m) = stats::median(times) {
            s.push_str(&format!(
                "median time from workload start to first report: {m:.2} s\n"
            ));
        }
        s.push_str(&schedule_summary(results));
        if let Some(what) = crate::results::survived(results) {
            s.push_str(&format!(
                "{what}: the interleavings were applied and the kernel did not report\n"
            ));
        }
        let roles: std::collections::BTreeSet<String> = results
            .iter()
            .flat_map(|r| r.throughput.iter().map(|(role, _)| role.clone()))
            .collect();
        for role in roles {
            let v: Vec<f64> = results
                .iter()
                .flat_map(|r| {
                    r.throughput
                        .iter()
                        .filter(|(x, _)| *x == role)
                        .map(|(_, v)| *v)
                })
                .collect();
            if let Some(m) = stats::median(v) {
                s.push_str(&format!(
                    "median {role} throughput: {} ops/s\n",
                    stats::rate(m)
                ));
            }
        }
        // Distinct reports by signature, with the number of runs that printed each (a
        // suppressed one with the suppression's reason).
        type Seen<'a> = (&'a str, usize, Option<&'a str>);
        let mut by_signature: std::collections::BTreeMap<&str, Seen> = Default::default();
        for r in results {
            let mut seen_here = std::collections::BTreeSet::new();
            for report in &r.reports {
                if seen_here.insert(report.signature.as_str()) {
                    by_signature
                        .entry(report.signature.as_str())
                        .or_insert((report.title.as_str(), 0, report.suppressed.as_deref()))
                        .1 += 1;
                }
            }
        }
        let mut titles: Vec<Seen> = by_signature.into_values().collect();
        titles.sort_by(|a, b| {
            a.2.is_some()
                .cmp(&b.2.is_some())
                .then(b.1.cmp(&a.1))
                .then(a.0.cmp(b.0))
        });
        for (title, runs, suppressed) in titles.iter().take(20) {
            match suppressed {
                None => s.push_str(&format!("report: {title} ({runs} runs)\n")),
                Some(why) => s.push_str(&format!("suppressed: {title} ({runs} runs): {why}\n")),
            }
        }
    } else if scenario.kind == Kind::Suite {
        s.push_str(&suite_summary(results));
    } else if let Some(r) = results.iter().find_map(|r| r.record.as_ref()) {
        for (check, expected) in &scenario.expect {
            let observed = r
                .observations
                .get(check)
                .cloned()
                .unwrap_or(serde_json::Value::Null);
            let mark = if observed == *expected { "  " } else { "≠ " };
            s.push_str(&format!(
                "{mark}{check}: {observed} (upstream {expected})\n"
            ));
        }
    }
    s
}

/// A suite batch in a few lines: each run's counts, every test that did not pass in some
/// run (with what it did in each), and the slowest tests (median time over the runs).
fn suite_summary(results: &[RunResult]) -> String {
    use std::collections::BTreeMap;
    use std::fmt::Write;
    let mut s = String::new();
    let mut statuses: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut times: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in results {
        let Some(suite) = r.record.as_ref().and_then(|rec| rec.tests.as_ref()) else {
            continue;
        };
        let (counts, _) = suite.counts();
        let counts: Vec<String> = counts
            .iter()
            .map(|(st, n)| format!("{n} {}", st.name()))
            .collect();
        let _ = writeln!(
            s,
            "run {}: {} tests: {}",
            r.index,
            suite.leaves().len(),
            counts.join(", ")
        );
        for (name, t) in suite.leaves() {
            let mut status = t.status.name().to_string();
            if let Some(why) = &t.reason {
                status = format!("{status} ({why})");
            }
            statuses.entry(name.clone()).or_default().push(status);
            if let Some(ms) = t.duration_ms() {
                times.entry(name).or_default().push(ms as f64 / 1000.0);
            }
        }
    }
    for (name, all) in &statuses {
        if all.iter().any(|st| st != Status::Pass.name()) {
            let _ = writeln!(s, "  {name}: {}", all.join(" / "));
        }
    }
    let mut slow: Vec<(f64, &String)> = times
        .iter()
        .filter_map(|(n, xs)| Some((crate::results::stats::median(xs.clone())?, n)))
        .collect();
    slow.sort_by(|a, b| b.0.total_cmp(&a.0));
    if !slow.is_empty() {
        let top: Vec<String> = slow
            .iter()
            .take(5)
            .map(|(t, n)| format!("{n} {t:.1} s"))
            .collect();
        let all: Vec<f64> = slow.iter().map(|(t, _)| *t).collect();
        let _ = writeln!(
            s,
            "median time per test {:.2} s; slowest: {}",
            crate::results::stats::median(all).unwrap_or(0.0),
            top.join(", ")
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Evidence;
    use std::path::PathBuf;

    fn result(index: u32, first_ms: Option<u64>, throughput: &[(&str, f64)]) -> RunResult {
        RunResult {
            index,
            dir: PathBuf::new(),
            evidence: if first_ms.is_some() {
                Evidence::KernelReport {
                    title: "WARNING: x".into(),
                    signature: "s".into(),
                }
            } else {
                Evidence::Clean { unproven: None }
            },
            outcome: Some(crate::vm::outcome::Outcome::Completed),
            reports: vec![],
            first_report_ms: first_ms,
            throughput: throughput
                .iter()
                .map(|(r, v)| (r.to_string(), *v))
                .collect(),
            differences: vec![],
            record: None,
        }
    }

    #[test]
    fn summary_counts_verdicts_and_gives_one_median_per_role() {
        let scenario = crate::config::scenario::probe(
            None,
            "race",
            "epoll_close_race",
            Default::default(),
            runner::quantity::WorkDuration::from_millis(1000).unwrap(),
            &[],
        );
        let target = Target {
            name: "v".into(),
            kernel: PathBuf::new(),
            config: None,
            vmlinux: None,
            source_dir: None,
            build: None,
        };
        let results = vec![
            result(1, Some(100), &[("closer", 10.0), ("poller", 100.0)]),
            result(2, None, &[("closer", 30.0), ("poller", 300.0)]),
            result(3, Some(300), &[("closer", 20.0), ("poller", 200.0)]),
        ];
        let text = summary(&scenario, &target, &results);
        assert!(
            text.starts_with("race on v: 3 runs: 1 pass, 2 fail, 0 error, 0 skipped\n"),
            "{text}"
        );
        assert!(
            text.contains("median time from workload start to first report: 0.20 s"),
            "{text}"
        );
        assert_eq!(
            text.matches("median closer throughput: 20 ops/s").count(),
            1,
            "{text}"
        );
        assert_eq!(
            text.matches("median poller throughput: 200 ops/s").count(),
            1,
            "{text}"
        );
    }
}
