//! `lab compare`'s text: the table (Markdown, readable as plain text), the table by
//! detector, what differs from the first variant, and a verdict per variant in plain words.

use crate::compare::Comparison;
use crate::results::compare::{test_differences, uapi_differences, Row};
use crate::results::stats;
use std::collections::BTreeMap;

/// The whole comparison as `lab compare` prints it.
pub fn render(c: &Comparison) -> String {
    let mut s = format!("{} — {}\n\n", c.scenario.name, c.scenario.description);
    s.push_str(&table(&c.rows));
    if let Some(pivot) = by_detector(&c.rows) {
        s.push_str("\nby detector:\n\n");
        s.push_str(&pivot);
    }
    if let Some(first) = c.rows.first() {
        for r in c.rows.iter().skip(1) {
            for (check, a, b) in uapi_differences(first, r) {
                s.push_str(&format!("{}: {check}: {a} → {b}\n", r.name));
            }
            for (test, a, b) in test_differences(first, r) {
                s.push_str(&format!("{}: {test}: {a} → {b}\n", r.name));
            }
        }
    }
    s.push('\n');
    for line in verdicts(&c.rows) {
        s.push_str(&line);
        s.push('\n');
    }
    s.push_str(&format!("runs: {}\n", c.store.display()));
    s
}

/// With rows of more than one detector: a row per variant and a column per detector, each
/// cell the runs with a finding, the median time to the first report, and the title most runs
/// found first-or-otherwise (as Markdown). None when every row has one detector.
pub fn by_detector(rows: &[Row]) -> Option<String> {
    let mut detectors: Vec<&str> = rows.iter().filter_map(|r| r.detector).collect();
    detectors.sort();
    detectors.dedup();
    if detectors.len() < 2 {
        return None;
    }
    let plain = |r: &Row| crate::config::detector::split(&r.name).0.to_string();
    let mut variants: Vec<String> = Vec::new();
    for r in rows {
        if !variants.contains(&plain(r)) {
            variants.push(plain(r));
        }
    }
    let mut s = format!("| variant | {} |\n|---|", detectors.join(" | "));
    s.push_str(&"---|".repeat(detectors.len()));
    s.push('\n');
    for v in &variants {
        s.push_str(&format!("| {v} |"));
        for d in &detectors {
            let cell = rows
                .iter()
                .find(|r| plain(r) == *v && r.detector == Some(d))
                .map(|r| {
                    let first = r
                        .median_first_report_s
                        .map(|s| format!(", first report {s:.2} s"))
                        .unwrap_or_default();
                    let title = r
                        .titles
                        .first()
                        .map(|(t, n)| format!(": {t} ({n})"))
                        .unwrap_or_default();
                    format!("{}/{}{first}{title}", r.detected, r.runs)
                })
                .unwrap_or_else(|| "-".into());
            s.push_str(&format!(" {cell} |"));
        }
        s.push('\n');
    }
    Some(s)
}

fn p_text(p: f64) -> String {
    if p < 1e-9 {
        "p < 1e-9".into()
    } else if p < 0.001 {
        format!("p = {p:.1e}")
    } else {
        format!("p = {p:.3}")
    }
}

/// The table, as Markdown (readable as plain text too).
pub fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| variant | detected | rate (95 % CI) | vs first | median first report | ops/s (overhead vs first) | reports |\n|---|---|---|---|---|---|---|\n",
    );
    let first_ops: BTreeMap<&str, f64> = rows
        .first()
        .map(|f| f.throughput.iter().map(|(r, x)| (r.as_str(), *x)).collect())
        .unwrap_or_default();
    for r in rows {
        let rate = if r.runs == 0 {
            "-".to_string()
        } else {
            format!(
                "{:.0} % ({:.0}–{:.0} %)",
                100.0 * r.detected as f64 / r.runs as f64,
                100.0 * r.interval.0,
                100.0 * r.interval.1
            )
        };
        let ops: Vec<String> = r
            .throughput
            .iter()
            .map(|(role, x)| match first_ops.get(role.as_str()) {
                Some(base) if *base > 0.0 && r.p_vs_first.is_some() => {
                    format!(
                        "{role} {} ({:+.1} %)",
                        stats::rate(*x),
                        100.0 * (base - x) / base
                    )
                }
                _ => format!("{role} {}", stats::rate(*x)),
            })
            .collect();
        let mut titles: Vec<String> = r.titles.iter().map(|(t, n)| format!("{t} ({n})")).collect();
        titles.extend(
            r.suppressed
                .iter()
                .map(|(t, n)| format!("suppressed: {t} ({n})")),
        );
        s.push_str(&format!(
            "| {} | {}/{}{} | {} | {} | {} | {} | {} |\n",
            r.name,
            r.detected,
            r.runs,
            if r.errors > 0 {
                format!(" ({} error)", r.errors)
            } else {
                String::new()
            },
            rate,
            r.p_vs_first.map(p_text).unwrap_or_else(|| "-".into()),
            r.median_first_report_s
                .map(|s| format!("{s:.2} s"))
                .unwrap_or_else(|| "-".into()),
            if ops.is_empty() {
                "-".into()
            } else {
                ops.join(", ")
            },
            if titles.is_empty() {
                "none".into()
            } else {
                titles.join("; ")
            },
        ));
    }
    s
}

/// One line per variant after the first, in plain words.
pub fn verdicts(rows: &[Row]) -> Vec<String> {
    let Some(first) = rows.first() else {
        return vec![];
    };
    rows.iter()
        .skip(1)
        .map(|r| {
            let counts = format!(
                "{}/{} vs {}/{}",
                r.detected, r.runs, first.detected, first.runs
            );
            // A side with no run that counts gives no verdict (0/0 is not "as clean as").
            if let Some(empty) = [first, r].into_iter().find(|side| side.runs == 0) {
                return format!(
                    "{}: no verdict: {} has no run that counts ({counts}, {} error(s))",
                    r.name, empty.name, empty.errors
                );
            }
            let p = r.p_vs_first.unwrap_or(1.0);
            let race = if r.detected == 0 && first.detected == 0 {
                format!("prints no kernel report, as {} ({counts})", first.name)
            } else if p >= 0.05 {
                format!(
                    "no significant difference in detection from {} ({counts}, {})",
                    first.name,
                    p_text(p)
                )
            } else if r.detected == 0 {
                format!("removes the race ({counts}, {})", p_text(p))
            } else if r.detected < first.detected {
                format!("makes the race rarer ({counts}, {})", p_text(p))
            } else {
                format!("makes the race more frequent ({counts}, {})", p_text(p))
            };
            let diffs = uapi_differences(first, r).len();
            let uapi = match diffs {
                0 if first.observed.is_empty() => String::new(),
                0 => " and keeps every UAPI behaviour".to_string(),
                1 => " and changes 1 UAPI behaviour".to_string(),
                n => format!(" and changes {n} UAPI behaviours"),
            };
            let tests = match test_differences(first, r).len() {
                0 if first.tests.is_empty() => String::new(),
                0 => format!(
                    ", and every test ({}) has {}'s result",
                    r.tests.len(),
                    first.name
                ),
                n => format!(
                    ", and {n} test(s) have another result than on {}",
                    first.name
                ),
            };
            let hangs = match r.hangs {
                0 => String::new(),
                n => format!(
                    "; in {n}/{} runs the kernel stopped responding ({})",
                    r.runs,
                    r.titles
                        .iter()
                        .filter(|(t, _)| crate::results::evidence::is_machine_title(t))
                        .map(|(t, _)| t.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            // A clean side whose detectors no canary proved says so.
            let unproven = [first, r]
                .iter()
                .find_map(|side| Some(format!(" ({}: {})", side.name, side.unproven.as_ref()?)))
                .unwrap_or_default();
            // A side whose interleavings were applied and survived says what it survived.
            let survived: String = [first, r]
                .iter()
                .filter_map(|side| Some(format!("; {} {}", side.name, side.survived.as_ref()?)))
                .collect();
            format!("{}: {race}{uapi}{tests}{hangs}{unproven}{survived}", r.name)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::scenario::Kind;
    use crate::report::formats::ReportType;
    use crate::report::parser::Report;
    use crate::results::canary::Detectors::Proven;
    use crate::results::compare::{rows, tests_that_differ, Arm};
    use crate::results::evidence;
    use crate::results::RunResult;
    use crate::vm::outcome::Outcome;

    fn result(report: Option<&str>, first_ms: Option<u64>, ops: f64) -> RunResult {
        let reports: Vec<Report> = report
            .map(|t| {
                let mut r = Report::lab(t, String::new());
                r.kind = ReportType::Warning;
                vec![r]
            })
            .unwrap_or_default();
        RunResult {
            index: 1,
            dir: Default::default(),
            evidence: evidence::judge(
                Kind::Race,
                &Outcome::Completed,
                &reports,
                &vec![],
                None,
                &Proven,
            ),
            outcome: Some(Outcome::Completed),
            reports,
            first_report_ms: first_ms,
            throughput: vec![("closer".into(), ops)],
            differences: vec![],
            record: None,
        }
    }

    /// A run the kernel hung: the agent went silent after it was up.
    fn hung() -> RunResult {
        let outcome = Outcome::TimeoutNoHeartbeat {
            after_ms: 60_000,
            last_heard_ms: 20_000,
        };
        let reports: Vec<Report> = evidence::outcome_report(&outcome).into_iter().collect();
        RunResult {
            evidence: evidence::judge(Kind::Race, &outcome, &reports, &vec![], None, &Proven),
            outcome: Some(outcome),
            reports,
            ..result(None, None, 0.0)
        }
    }

    #[test]
    fn detectors_of_one_variant_get_a_column_each() {
        let with = |name: &str, detector, hits| Arm {
            detector: Some(detector),
            ..arm(name, hits, 4, 10.0)
        };
        let rows = rows(&[
            with("unpinned", "kasan", 4),
            with("unpinned+kcsan", "kcsan", 1),
            with("baseline", "kasan", 0),
        ]);
        let pivot = by_detector(&rows).unwrap();
        let lines: Vec<&str> = pivot.lines().collect();
        assert_eq!(lines[0], "| variant | kasan | kcsan |");
        assert!(
            lines[2].starts_with(
                "| unpinned | 4/4, first report 0.10 s: WARNING in dma_buf_poll (4) | 1/4"
            ),
            "{pivot}"
        );
        assert_eq!(lines[3], "| baseline | 0/4 | - |", "{pivot}");
        // One detector: no pivot.
        assert!(by_detector(&rows[..1]).is_none());
    }

    fn arm(name: &str, hits: usize, n: usize, ops: f64) -> Arm {
        Arm {
            detector: None,
            name: name.into(),
            results: (0..n)
                .map(|i| {
                    if i < hits {
                        result(Some("WARNING in dma_buf_poll"), Some(100 + i as u64), ops)
                    } else {
                        result(None, None, ops)
                    }
                })
                .collect(),
        }
    }

    /// Clean runs on a kernel no canary could prove count as clean, and the verdict says so.
    #[test]
    fn a_clean_side_on_unproven_detectors_is_named_in_the_verdict() {
        let why = "detectors unproven: the kernel has no CONFIG_LKDTM, so no canary could run";
        let unproven = evidence::judge(
            Kind::Race,
            &Outcome::Completed,
            &[],
            &vec![],
            None,
            &crate::results::canary::Detectors::Unproven(why.into()),
        );
        let mut fixed = arm("fixed", 0, 4, 10.0);
        fixed
            .results
            .iter_mut()
            .for_each(|r| r.evidence = unproven.clone());
        let with_fix = rows(&[arm("racy", 4, 4, 10.0), fixed]);
        assert_eq!((with_fix[1].runs, with_fix[1].detected), (4, 0));
        let lines = verdicts(&with_fix);
        assert!(lines[0].ends_with(&format!("(fixed: {why})")), "{lines:?}");
        assert!(
            !verdicts(&rows(&[arm("racy", 4, 4, 10.0), arm("fixed", 0, 4, 10.0)]))[0]
                .contains("unproven")
        );
    }

    #[test]
    fn a_fix_that_removes_the_race_reads_as_such() {
        let arms = [
            arm("epoll-unpinned-poll", 19, 20, 400.0),
            arm("baseline", 0, 20, 440.0),
        ];
        let rows = rows(&arms);
        assert_eq!((rows[0].detected, rows[0].runs), (19, 20));
        let p = rows[1].p_vs_first.unwrap();
        // [[0, 20], [19, 1]]: exact two-sided p = 3.05e-10.
        assert!(p < 1e-9 && p > 1e-11, "{p:e}");
        let v = verdicts(&rows);
        assert_eq!(v, ["baseline: removes the race (0/20 vs 19/20, p < 1e-9)"]);
        let t = table(&rows);
        assert!(
            t.contains("| epoll-unpinned-poll | 19/20 | 95 % (76–99 %) | - | 0.11 s |"),
            "{t}"
        );
        assert!(t.contains("closer 440 (-10.0 %)"), "{t}");
        assert!(t.contains("WARNING in dma_buf_poll (19)"), "{t}");
    }

    /// A side with nothing that counts, first or not, gives no verdict, whatever the other
    /// side saw.
    #[test]
    fn a_side_with_no_run_that_counts_gives_no_verdict() {
        let nothing = |name: &str| Arm {
            results: vec![],
            ..arm(name, 0, 0, 1.0)
        };
        let errors = |name: &str| {
            let mut a = arm(name, 0, 2, 1.0);
            for r in &mut a.results {
                r.evidence = evidence::Evidence::Inconclusive {
                    why: "no output".into(),
                };
            }
            a
        };
        for arms in [
            vec![nothing("a"), nothing("b")],
            vec![nothing("a"), arm("b", 3, 5, 1.0)],
            vec![arm("a", 0, 5, 1.0), nothing("b")],
            vec![errors("a"), arm("b", 0, 5, 1.0)],
        ] {
            let v = verdicts(&rows(&arms));
            assert!(v[0].starts_with("b: no verdict:"), "{v:?}");
        }
        assert!(
            !verdicts(&rows(&[arm("a", 0, 5, 1.0), arm("b", 0, 5, 1.0)]))[0].contains("no verdict")
        );
    }

    #[test]
    fn errors_are_not_counted_as_runs() {
        let mut a = arm("v", 2, 4, 1.0);
        a.results[3].evidence = evidence::Evidence::Inconclusive {
            why: "no output".into(),
        };
        let rows = rows(&[a]);
        assert_eq!((rows[0].runs, rows[0].errors, rows[0].detected), (3, 1, 2));
    }

    #[test]
    fn a_variant_that_hangs_the_kernel_is_a_finding_not_a_fix() {
        let hangs = Arm {
            detector: None,
            name: "hangs".into(),
            results: (0..20).map(|_| hung()).collect(),
        };
        let rows = rows(&[arm("epoll-unpinned-poll", 19, 20, 400.0), hangs]);
        assert_eq!(
            (rows[1].runs, rows[1].detected, rows[1].hangs),
            (20, 20, 20)
        );
        assert_eq!(
            rows[1].titles,
            [("no output from test machine".to_string(), 20)]
        );
        let v = verdicts(&rows);
        assert!(!v[0].contains("removes the race"), "{v:?}");
        assert!(
            v[0].ends_with(
                "; in 20/20 runs the kernel stopped responding (no output from test machine)"
            ),
            "{v:?}"
        );
        let t = table(&rows);
        assert!(t.contains("| hangs | 20/20 |"), "{t}");
        assert!(t.contains("no output from test machine (20)"), "{t}");
    }

    #[test]
    fn tests_with_another_result_are_listed_with_both() {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let first = map(&[("p/a", "ok"), ("p/b", "ok"), ("p/c", "ok")]);
        let other = map(&[("p/a", "ok"), ("p/b", "not ok"), ("p/d", "skip")]);
        let got = tests_that_differ(&first, &other);
        let want = [
            ("p/b", "ok", "not ok"),
            ("p/c", "ok", "not run"),
            ("p/d", "not run", "skip"),
        ]
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
        assert_eq!(got, want);
        assert!(tests_that_differ(&first, &first).is_empty());
    }

    #[test]
    fn uapi_values_that_differ_are_listed() {
        let with = |v: bool| {
            let mut r = result(None, None, 0.0);
            r.record = Some(
                serde_json::from_value(serde_json::json!({
                    "outcome": {"kind": "completed"}, "backend": "qemu", "accel": "tcg",
                    "kernel": "k", "cpus": 2, "memory_mib": 1024, "workload": "uapi_epoll",
                    "duration_ms": 0, "guest": null, "vcpu_threads": {}, "last_progress": [],
                    "threads": [], "console_lines": 0,
                    "timing": {"prepare_ms": 0, "console_first_ms": null, "agent_hello_ms": null,
                               "workload_started_ms": null, "done_ms": null, "ended_ms": 0},
                    "observations": {"dup_close_keeps_registration": v,
                                     "add_same_fd_twice": "EEXIST"},
                }))
                .unwrap(),
            );
            r
        };
        let rows = rows(&[
            Arm {
                detector: None,
                name: "baseline".into(),
                results: vec![with(true), with(true)],
            },
            Arm {
                detector: None,
                name: "epoll-release-on-close".into(),
                results: vec![with(false), with(false)],
            },
        ]);
        assert_eq!(
            uapi_differences(&rows[0], &rows[1]),
            [(
                "dup_close_keeps_registration".to_string(),
                "true".to_string(),
                "false".to_string()
            )]
        );
        assert!(
            verdicts(&rows)[0].ends_with("and changes 1 UAPI behaviour"),
            "{:?}",
            verdicts(&rows)
        );
    }
}
