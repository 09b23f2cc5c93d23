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

/// One console of syzkaller's annotated collection: its header, then the console.
struct Annotated {
    name: String,
    titles: Vec<String>,
    kind: String,
    corrupted: bool,
    console: String,
}

/// The consoles of a syzkaller collection under `tests/corpus/`: the files named by a number,
/// in number order.
fn numbered(collection: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(collection);
    let number = |p: &Path| p.file_name()?.to_str()?.parse::<u32>().ok();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| number(p).is_some())
        .collect();
    files.sort_by_key(|p| number(p));
    files
}

fn syzkaller_corpus() -> Vec<Annotated> {
    numbered("syzkaller")
        .into_iter()
        .map(|path| {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            let (header, console) = text.split_once("\n\n").unwrap_or(("", &text));
            let value = |key: &str| {
                header
                    .lines()
                    .filter_map(|l| l.strip_prefix(key))
                    .map(|v| v.trim().to_string())
                    .collect::<Vec<_>>()
            };
            Annotated {
                name: path.file_name().unwrap().to_string_lossy().into_owned(),
                // `TITLE: ` with nothing after it: the console has no report.
                titles: value("TITLE:")
                    .into_iter()
                    .filter(|t| !t.is_empty())
                    .collect(),
                kind: value("TYPE:").first().cloned().unwrap_or_default(),
                corrupted: value("CORRUPTED:").iter().any(|v| v == "Y"),
                console: console.to_string(),
            }
        })
        .collect()
}

/// The floors the syzkaller corpus must keep (raised as the parser learns): exact first titles
/// over the titled, uncorrupted consoles, and reports found in the report-free ones.
const SYZKALLER_EXACT_FLOOR: f64 = 0.95;
const SYZKALLER_FALSE_REPORTS_CEILING: f64 = 0.05;

/// syzkaller's collection (`tests/corpus/syzkaller/`, see its README): the first report's
/// title must be syzbot's, and a console without a report must give none.
#[test]
fn syzkaller_consoles_score() {
    let corpus = syzkaller_corpus();
    assert!(corpus.len() >= 370, "corpus went missing: {}", corpus.len());
    let (mut exact, mut scored, mut free, mut false_reports) = (0, 0, 0, 0);
    // The two halves a rule's generalization is measured on: file number mod 4 is 0 or 2.
    let mut halves = [(0, 0); 2];
    let mut misses: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for c in &corpus {
        let reports = parse(&c.console);
        let first = reports.first();
        let half = &mut halves[(c.name.parse::<usize>().unwrap_or(0) / 2) % 2];
        match (c.titles.first(), c.corrupted) {
            (Some(want), false) => {
                scored += 1;
                half.1 += 1;
                if first.is_some_and(|r| &r.title == want) {
                    exact += 1;
                    half.0 += 1;
                } else {
                    misses.entry(c.kind.clone()).or_default().push(format!(
                        "{}: want {want:?}, got {:?}",
                        c.name,
                        first.map(|r| &r.title)
                    ));
                }
            }
            (None, false) => {
                free += 1;
                if let Some(r) = first {
                    false_reports += 1;
                    misses
                        .entry("(no report)".into())
                        .or_default()
                        .push(format!("{}: got {:?}", c.name, r.title));
                }
            }
            _ => {}
        }
    }
    let score = exact as f64 / scored as f64;
    let false_rate = false_reports as f64 / free.max(1) as f64;
    println!(
        "syzkaller corpus: {exact}/{scored} exact first titles ({:.1} %), \
         {false_reports}/{free} report-free consoles given a report",
        score * 100.0
    );
    println!(
        "  by half (file number mod 4): 0: {}/{}, 2: {}/{}",
        halves[0].0, halves[0].1, halves[1].0, halves[1].1
    );
    for (kind, list) in &misses {
        println!("  {kind}: {} missed", list.len());
        for m in list {
            println!("    {m}");
        }
    }
    assert!(
        scored >= 280 && free >= 10,
        "{scored} scored, {free} report-free"
    );
    assert!(score >= SYZKALLER_EXACT_FLOOR, "{exact}/{scored} exact");
    assert!(
        false_rate <= SYZKALLER_FALSE_REPORTS_CEILING,
        "{false_reports}/{free}"
    );
}

/// syzkaller's guilty-file tests (`tests/corpus/syzkaller-guilty/`, see its README): the file
/// the first report blames must be the one syzbot blames, on at least 90 %.
#[test]
fn guilty_files_of_syzkallers_consoles() {
    let files = numbered("syzkaller-guilty");
    let (mut exact, mut scored) = (0, 0);
    let mut misses = Vec::new();
    for path in &files {
        let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
        let (header, console) = text.split_once("\n\n").unwrap();
        let want = header.strip_prefix("FILE:").unwrap().trim();
        let reports = parse(console);
        let got = reports.first().and_then(|r| r.guilty_file.as_deref());
        scored += 1;
        if got.unwrap_or("") == want {
            exact += 1;
        } else {
            misses.push(format!(
                "{}: want {want:?}, got {got:?} ({:?})",
                path.file_name().unwrap().to_string_lossy(),
                reports.first().map(|r| &r.title)
            ));
        }
    }
    println!(
        "syzkaller guilty files: {exact}/{scored} exact ({:.1} %)",
        100.0 * exact as f64 / scored as f64
    );
    for m in &misses {
        println!("  miss: {m}");
    }
    assert!(scored >= 68, "corpus went missing: {scored}");
    assert!(exact as f64 >= 0.90 * scored as f64, "{exact}/{scored}");
}
