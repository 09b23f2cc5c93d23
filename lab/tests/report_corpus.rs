//! The report parser over the whole console corpus.
//!
//! `tests/corpus/console/`: consoles captured from the lab's own runs plus hand-made edge
//! cases; every report must come out with exactly the annotated title and corrupted flag.
//! `tests/corpus/foreign/`: other people's kernels (the kernel's own documentation, Linaro's
//! LKFT logs shipped with tuxparse), judged as a score: exact titles on the reports annotated
//! as not corrupted, at least 95 %.
//!
//! Each `NAME.log` has a `NAME.expected`: one line per report in console order, the title,
//! then a tab and `(corrupted)` when the report is expected to be flagged so.

use lab::report::parser::{parse, Report};
use std::path::{Path, PathBuf};

struct Expected {
    title: String,
    corrupted: bool,
}

fn corpus(dir: &str) -> Vec<(PathBuf, Vec<Expected>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(dir);
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.into_iter()
        .map(|log| {
            let expected = log.with_extension("expected");
            let text = std::fs::read_to_string(&expected).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (every corpus log is annotated)",
                    expected.display()
                )
            });
            let entries = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| match l.split_once('\t') {
                    Some((title, flag)) => {
                        assert_eq!(flag, "(corrupted)", "{}: {l:?}", expected.display());
                        Expected {
                            title: title.to_string(),
                            corrupted: true,
                        }
                    }
                    None => Expected {
                        title: l.to_string(),
                        corrupted: false,
                    },
                })
                .collect();
            (log, entries)
        })
        .collect()
}

fn parse_file(path: &Path) -> Vec<Report> {
    parse(&String::from_utf8_lossy(&std::fs::read(path).unwrap()))
}

fn show(reports: &[Report]) -> String {
    reports
        .iter()
        .map(|r| {
            format!(
                "  {}:{}{}",
                r.line,
                r.title,
                if r.corrupted { " (corrupted)" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn own_consoles_give_exactly_their_annotated_reports() {
    let logs = corpus("console");
    assert!(logs.len() >= 8, "corpus went missing: {} logs", logs.len());
    for (log, expected) in logs {
        let got = parse_file(&log);
        let got_pairs: Vec<(&str, bool)> = got
            .iter()
            .map(|r| (r.title.as_str(), r.corrupted))
            .collect();
        let want: Vec<(&str, bool)> = expected
            .iter()
            .map(|e| (e.title.as_str(), e.corrupted))
            .collect();
        assert_eq!(got_pairs, want, "{}:\n{}", log.display(), show(&got));
    }
}

#[test]
fn foreign_consoles_score_at_least_95_percent() {
    let (mut matched, mut total) = (0, 0);
    let mut misses = Vec::new();
    for (log, expected) in corpus("foreign") {
        let got = parse_file(&log);
        for (i, want) in expected.iter().enumerate() {
            let got = got.get(i);
            if want.corrupted {
                // Not scored, but a report the annotation calls corrupted must be flagged.
                assert!(
                    got.is_some_and(|r| r.corrupted),
                    "{}: report {i} should be corrupted",
                    log.display()
                );
                continue;
            }
            total += 1;
            if got.is_some_and(|r| r.title == want.title && !r.corrupted) {
                matched += 1;
            } else {
                misses.push(format!(
                    "{} #{i}: want {:?}, got {:?}",
                    log.file_name().unwrap().to_string_lossy(),
                    want.title,
                    got.map(|r| (&r.title, r.corrupted))
                ));
            }
        }
    }
    let score = matched as f64 / total as f64;
    println!(
        "foreign corpus: {matched}/{total} exact titles ({:.1} %)",
        score * 100.0
    );
    for m in &misses {
        println!("  miss: {m}");
    }
    assert!(total >= 60, "foreign corpus shrank: {total} scored reports");
    assert!(score >= 0.95, "{matched}/{total}:\n{}", misses.join("\n"));
}
