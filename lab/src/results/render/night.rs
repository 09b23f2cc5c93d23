//! `summary.md` (the matrix, then what changed) and `junit.xml` (one testcase per variant ×
//! scenario) of a night.

use super::super::night::{
    as_expected, first_failure, tally, CellResult, ChangeOut, NightResults, NOT_RUN,
};
use super::{axes, cell_text, cell_with_expectation};
use quick_junit::{NonSuccessKind, Report as Junit, TestCase, TestCaseStatus, TestSuite};
use std::collections::BTreeMap;

/// Console text kept in a JUnit failure: the first report, cut to this many bytes.
const EXCERPT: usize = 8 * 1024;

/// Where a night's runs come from when not from one whole run: one shard, or a merge.
fn provenance(night: &NightResults) -> Option<String> {
    if let Some(shard) = &night.shard {
        let runs: u32 = shard.share.iter().map(|s| s.runs).sum();
        return Some(format!(
            "Shard {} of this night's plan: {runs} run(s); `lab merge` makes the night of \
             all its shards and decides what regressed.",
            shard.name()
        ));
    }
    night.merged.as_ref().map(|m| format!("{}.", m.describe()))
}

/// Each cell's suppressed reports: (variant, scenario, title) → (runs that printed it, why).
type Suppressed<'a> = BTreeMap<(&'a str, &'a str, &'a str), (usize, &'a str)>;

fn suppressed(night: &NightResults) -> Suppressed<'_> {
    let mut out: Suppressed = BTreeMap::new();
    for cell in &night.cells {
        for r in &cell.runs {
            for (title, why) in r.suppressed_titles() {
                out.entry((&cell.variant, &cell.scenario, title))
                    .or_insert((0, why))
                    .0 += 1;
            }
        }
    }
    out
}

/// Guest text in Markdown: no pipe or newline may break a table or a list.
fn md_text(s: String) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// The night's changes by kind, each with its culprit, then the culprits of reports still
/// there.
fn changes_md(night: &NightResults) -> String {
    // One line per cell's signature: "- variant × scenario: title [signature] — culprit".
    let item = |(variant, scenario, title, signature): (&str, &str, &str, &str),
                culprit: Option<&crate::results::culprit::Culprit>| {
        format!(
            "- {variant} × {scenario}: {} [{signature}]{}\n",
            md_text(title.to_string()),
            culprit
                .map(|k| format!(" — {}", md_text(k.line())))
                .unwrap_or_default()
        )
    };
    let mut s = String::new();
    for (kind, heading) in [
        ("regression", "Regressions"),
        ("fixed", "Fixed"),
        (
            "flaky",
            "Flaky (seen in some recent nights, not alarmed on)",
        ),
    ] {
        let items: Vec<&ChangeOut> = night.changes.iter().filter(|c| c.kind == kind).collect();
        if items.is_empty() {
            continue;
        }
        s.push_str(&format!("\n## {heading}\n\n"));
        for c in items {
            let cell = (c.variant.as_str(), c.scenario.as_str(), c.title.as_str());
            s.push_str(&item(
                (cell.0, cell.1, cell.2, &c.signature),
                night.culprit_of(c),
            ));
        }
    }
    // Answers for signatures still there (an earlier night bisected them).
    let still = night.culprits_still_there();
    if !still.is_empty() {
        s.push_str("\n## Culprits of reports still there\n\n");
        for k in still {
            s.push_str(&item(
                (&k.variant, &k.scenario, &k.title, &k.signature),
                Some(k),
            ));
        }
    }
    s
}

/// Markdown: the variant × scenario matrix, then regressions, fixes and flaky signatures.
pub fn summary_md(night: &NightResults) -> String {
    let (variants, scenarios) = axes(night);
    let by_cell: BTreeMap<(&str, &str), &CellResult> = night
        .cells
        .iter()
        .map(|c| ((c.variant.as_str(), c.scenario.as_str()), c))
        .collect();
    // Guest text goes into table cells: no pipes or newlines may break the table.
    let clean = md_text;
    let mut s = format!(
        "# {}\n\n{} → {}\n\n| variant | {} |\n|---|{}\n",
        if night.lab.is_empty() {
            "lab nightly"
        } else {
            &night.lab
        },
        night.started,
        night.ended,
        scenarios.join(" | "),
        "---|".repeat(scenarios.len())
    );
    if let Some(line) = provenance(night) {
        s = s.replacen("\n\n| variant", &format!("\n\n{line}\n\n| variant"), 1);
    }
    for v in &variants {
        let row: Vec<String> = scenarios
            .iter()
            .map(|sc| {
                by_cell
                    .get(&(*v, *sc))
                    .map(|c| clean(cell_with_expectation(c)))
                    .unwrap_or_else(|| "·".into())
            })
            .collect();
        s.push_str(&format!("| {v} | {} |\n", row.join(" | ")));
    }
    s.push_str(&changes_md(night));
    // A shard is not compared with anything: the merge decides.
    if night.shard.is_none() && night.changes.iter().all(|c| c.kind != "regression") {
        s.push_str("\nNo regression.\n");
    }
    // Suites: the tests whose result differs from the first variant's, per scenario.
    let mut differ = String::new();
    for sc in &scenarios {
        let mut ran = variants.iter().filter_map(|v| by_cell.get(&(*v, *sc)));
        let Some(first) = ran.next() else { continue };
        let reference = super::super::compare::test_results(&first.runs);
        if reference.is_empty() {
            continue;
        }
        for cell in ran {
            let tests = super::super::compare::test_results(&cell.runs);
            for (test, a, b) in super::super::compare::tests_that_differ(&reference, &tests) {
                differ.push_str(&format!(
                    "- {} × {sc}: {}: {a} → {b} (vs {})\n",
                    cell.variant,
                    clean(test),
                    first.variant
                ));
            }
        }
    }
    if !differ.is_empty() {
        s.push_str("\n## Tests whose result differs between variants\n\n");
        s.push_str(&differ);
    }
    let suppressed = suppressed(night);
    if !suppressed.is_empty() {
        s.push_str("\n## Suppressed (the lab's suppression list: kept, not findings)\n\n");
        for ((variant, scenario, title), (runs, why)) in suppressed {
            s.push_str(&format!(
                "- {variant} × {scenario}: {} ({runs} runs): {}\n",
                clean(title.to_string()),
                clean(why.to_string())
            ));
        }
    }
    let unexpected: Vec<&CellResult> = night
        .cells
        .iter()
        .filter(|c| as_expected(c) == Some(false))
        .collect();
    if !unexpected.is_empty() {
        s.push_str("\n## Not as lab.toml expects\n\n");
        for c in unexpected {
            s.push_str(&format!(
                "- {} × {}: {} (expected {})\n",
                c.variant,
                c.scenario,
                clean(cell_text(c)),
                c.expect.as_deref().unwrap_or("")
            ));
        }
    }
    if !night.errors.is_empty() {
        s.push_str("\n## Infrastructure errors\n\n");
        for e in &night.errors {
            s.push_str(&format!("- {}\n", clean(e.clone())));
        }
    }
    s
}

/// JUnit: a suite per scenario, a testcase per variant. A failure's message is the first
/// report's title; its description the report's console text (XML-escaped by quick-junit,
/// which also drops characters XML cannot carry).
pub fn junit_xml(night: &NightResults) -> Result<String, quick_junit::SerializeError> {
    let mut report = Junit::new("lab nightly");
    let mut suites: BTreeMap<&str, TestSuite> = BTreeMap::new();
    for cell in &night.cells {
        let (_, error, skipped, _) = tally(cell);
        let status = if let Some((r, detail)) = first_failure(cell) {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            // The commit behind the cell's reports, first where a reader looks.
            let culprits: Vec<String> = night
                .culprits
                .iter()
                .filter(|k| k.variant == cell.variant && k.scenario == cell.scenario)
                .map(|k| format!("{}: {}", k.title, k.line()))
                .collect();
            match culprits.is_empty() {
                true => st.set_message(detail),
                false => st.set_message(format!("{detail} ({})", culprits.join("; "))),
            };
            if let Some(rep) = r.reports.iter().find(|r| r.counts()).or(r.reports.first()) {
                let mut text = rep.text.clone();
                if text.len() > EXCERPT {
                    let cut = (0..=EXCERPT)
                        .rev()
                        .find(|&i| text.is_char_boundary(i))
                        .unwrap_or(0);
                    text.truncate(cut);
                }
                st.set_description(text);
            }
            st
        } else if error > 0
            || (cell.runs.is_empty() && cell.note.is_none())
            || cell.note.as_deref().is_some_and(|n| n.starts_with(NOT_RUN))
        {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
            st.set_message(cell_text(cell));
            st
        } else if skipped == cell.runs.len() {
            let mut st = TestCaseStatus::skipped();
            st.set_message(cell_text(cell));
            st
        } else {
            TestCaseStatus::success()
        };
        let mut case = TestCase::new(cell.variant.clone(), status);
        // A pass on unproven detectors says so where a reader of the JUnit looks; so does a
        // pass that survived applied interleavings.
        let survived = super::super::night::survived(cell);
        if let Some(what) = &survived {
            case.add_property(quick_junit::Property::new("survived", what.clone()));
        }
        let unproven = super::super::night::unproven(cell);
        if let Some(why) = &unproven {
            case.add_property(quick_junit::Property::new("qualifier", why.clone()));
        }
        let out: Vec<String> = [survived, unproven].into_iter().flatten().collect();
        if !out.is_empty() {
            case.set_system_out(out.join("\n"));
        }
        case.set_classname(format!("{}.{}", cell.scenario, cell.variant));
        suites
            .entry(cell.scenario.as_str())
            .or_insert_with(|| TestSuite::new(cell.scenario.clone()))
            .add_test_case(case);
    }
    report.add_test_suites(suites.into_values());
    report.to_string()
}

#[cfg(test)]
mod tests {
    use super::super::super::night::{Counts, SCHEMA_VERSION};
    use super::super::super::{RunResult, Verdict};
    use super::*;
    use crate::report::parser::Report;
    use crate::vm::outcome::Outcome;

    fn run(verdict: Verdict, report_text: Option<&str>) -> RunResult {
        let reports: Vec<Report> = report_text
            .map(|t| {
                let mut r = Report::lab("WARNING in dma_buf_poll", t.to_string());
                r.kind = crate::report::formats::ReportType::Warning;
                vec![r]
            })
            .unwrap_or_default();
        RunResult {
            index: 1,
            dir: "/tmp/x".into(),
            evidence: crate::results::Evidence::from_verdict(
                &verdict,
                Some(&Outcome::Completed),
                &reports,
                &vec![],
            ),
            outcome: Some(Outcome::Completed),
            reports,
            first_report_ms: Some(120),
            throughput: vec![("closer".into(), 400.0)],
            differences: vec![],
            record: None,
        }
    }

    /// Guest output is untrusted: markup, control characters and table breakers.
    const HOSTILE: &str =
        "WARNING: CPU: 0 </failure><script>alert(1)</script> & \u{1b}[31m \u{0} | x\nnext";

    fn night() -> NightResults {
        NightResults {
            uid: String::new(),
            schema: SCHEMA_VERSION,
            lab: "seed lab".into(),
            config: "lab.toml".into(),
            started: "2026-11-26T01:00:00Z".into(),
            ended: "2026-11-26T01:30:00Z".into(),
            night: Some(7),
            cells: vec![
                CellResult {
                    variant: "epoll-unpinned-poll".into(),
                    scenario: "epoll-dmabuf-race".into(),
                    source: "debian:linux-source-6.12".into(),
                    plan_key: "k".into(),
                    kernel: None,
                    commit: None,
                    expect: Some("WARNING in dma_buf_poll".into()),
                    note: None,
                    runs_planned: 2,
                    duration_ms: 4000,
                    counts: Counts::default(),
                    runs: vec![
                        run(
                            Verdict::Fail("WARNING in dma_buf_poll".into()),
                            Some(HOSTILE),
                        ),
                        run(Verdict::Fail("WARNING in dma_buf_poll".into()), Some("x")),
                    ],
                },
                CellResult {
                    variant: "baseline".into(),
                    scenario: "epoll-dmabuf-race".into(),
                    source: "debian:linux-source-6.12".into(),
                    plan_key: "k".into(),
                    kernel: None,
                    commit: None,
                    expect: Some("pass".into()),
                    note: None,
                    runs_planned: 2,
                    duration_ms: 4000,
                    counts: Counts::default(),
                    runs: vec![run(Verdict::Pass, None), run(Verdict::Pass, None)],
                },
                CellResult {
                    variant: "baseline".into(),
                    scenario: "uapi-epoll".into(),
                    source: "debian:linux-source-6.12".into(),
                    plan_key: "k2".into(),
                    kernel: None,
                    commit: None,
                    expect: None,
                    note: None,
                    runs_planned: 2,
                    duration_ms: 4000,
                    counts: Counts::default(),
                    runs: vec![run(
                        Verdict::Error("no output from test machine".into()),
                        None,
                    )],
                },
            ],
            changes: vec![ChangeOut {
                kind: "regression".into(),
                variant: "epoll-unpinned-poll".into(),
                scenario: "epoll-dmabuf-race".into(),
                signature: "09739e8343941586".into(),
                title: "WARNING in dma_buf_poll".into(),
            }],
            culprits: vec![],
            timelines: vec![],
            errors: vec![],
            shard: None,
            merged: None,
        }
    }

    /// A cell whose passes ran on unproven detectors says so in every rendering of the night:
    /// summary.md's matrix, JUnit (a property and the output), report.html and KCIDB.
    #[test]
    fn every_renderer_shows_a_pass_on_unproven_detectors_as_qualified() {
        let why = "detectors unproven: the kernel has no CONFIG_LKDTM, so no canary could run";
        let mut n = night();
        n.cells[1].runs = vec![
            run(Verdict::PassUnproven(why.into()), None),
            run(Verdict::PassUnproven(why.into()), None),
        ];
        assert!(summary_md(&n).contains(&format!("pass 2/2 ({why}) ✓")));
        let xml = junit_xml(&n).unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let case = doc
            .descendants()
            .find(|c| {
                c.has_tag_name("testcase")
                    && c.attribute("classname") == Some("epoll-dmabuf-race.baseline")
            })
            .unwrap();
        assert!(case.descendants().all(|c| !c.has_tag_name("failure")));
        assert!(case
            .descendants()
            .any(|p| p.has_tag_name("property") && p.attribute("value") == Some(why)));
        assert!(super::super::html::page(&n).contains(why));
        let kcidb = super::super::kcidb::export(&n, "lab", "file:///x").unwrap();
        let tests = kcidb["tests"].as_array().unwrap();
        assert!(tests
            .iter()
            .any(|t| t["status"] == "PASS" && t["comment"] == why));
        // Plain passes carry no qualifier.
        assert!(!summary_md(&night()).contains("unproven"));
        assert!(!junit_xml(&night()).unwrap().contains("unproven"));
    }

    /// A cell whose runs applied their interleavings and found nothing says what it survived
    /// in every rendering of the night; a plain pass does not claim it.
    #[test]
    fn every_renderer_shows_what_a_scheduled_pass_survived() {
        let mut n = night();
        for (r, applied) in n.cells[1].runs.iter_mut().zip([17, 3]) {
            r.evidence = crate::results::Evidence::Survived {
                applied,
                interleavings: 1,
                unproven: None,
            };
        }
        let what = "survived 20 applied attempts in 2 runs";
        assert!(summary_md(&n).contains(&format!("pass 2/2 ({what}) ✓")));
        let xml = junit_xml(&n).unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        assert!(doc.descendants().any(|p| p.has_tag_name("property")
            && p.attribute("name") == Some("survived")
            && p.attribute("value") == Some(what)));
        assert!(super::super::html::page(&n).contains(what));
        let kcidb = super::super::kcidb::export(&n, "lab", "file:///x").unwrap();
        let tests = kcidb["tests"].as_array().unwrap();
        assert!(tests.iter().any(|t| t["status"] == "PASS"
            && t["comment"] == "survived 17 applied attempts of 1 interleaving"
            && t["misc"]["survived"]["applied"] == 17));
        assert!(!summary_md(&night()).contains("survived"));
        assert!(!junit_xml(&night()).unwrap().contains("survived"));
    }

    #[test]
    fn results_json_round_trips() {
        let mut n = night();
        n.cells.iter_mut().for_each(CellResult::count);
        let text = serde_json::to_string_pretty(&n).unwrap();
        let back: NightResults = serde_json::from_str(&text).unwrap();
        assert_eq!(back, n);
        assert!(text.contains("\"schema\": 1"));
        assert_eq!(
            back.cells[0].counts,
            Counts {
                pass: 0,
                fail: 2,
                error: 0,
                skipped: 0
            }
        );
    }

    #[test]
    fn junit_parses_back_with_one_case_per_cell() {
        let xml = junit_xml(&night()).unwrap();
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let cases: Vec<roxmltree::Node> = doc
            .descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        assert_eq!(cases.len(), 3);
        let racy = cases
            .iter()
            .find(|c| c.attribute("name") == Some("epoll-unpinned-poll"))
            .unwrap();
        let failure = racy
            .children()
            .find(|n| n.has_tag_name("failure"))
            .expect("failure element");
        assert_eq!(
            failure.attribute("message"),
            Some("WARNING in dma_buf_poll")
        );
        // The hostile console text is carried as text, not markup.
        let text = failure.text().unwrap_or_default();
        assert!(text.contains("</failure><script>"), "{text:?}");
        assert!(!xml.contains("<script>"));
        let uapi = cases
            .iter()
            .find(|c| c.attribute("classname") == Some("uapi-epoll.baseline"))
            .unwrap();
        assert!(uapi.children().any(|n| n.has_tag_name("error")));
        let suites: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("testsuite"))
            .filter_map(|n| n.attribute("name"))
            .collect();
        assert_eq!(suites, ["epoll-dmabuf-race", "uapi-epoll"]);
    }

    #[test]
    fn report_html_carries_hostile_console_text_as_text() {
        let mut n = night();
        n.cells[0].runs[0].record = None;
        n.lab = "<b>lab</b>".into();
        let page = super::super::html::page(&n);
        assert!(page.starts_with("<!DOCTYPE html>"));
        // The guest's markup arrives escaped, its control characters dropped.
        assert!(
            page.contains("&lt;/failure&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp;"),
            "{page}"
        );
        assert!(
            !page.contains("<script>") && !page.contains("<b>lab"),
            "{page}"
        );
        assert!(!page.contains('\u{1b}') && !page.contains('\u{0}'));
        // Matrix, regression, chart rows for the cells that ran, a section per cell.
        assert!(page.contains("WARNING in dma_buf_poll ✓"), "{page}");
        assert!(page.contains("1 regression(s)"));
        assert!(page.contains("2/2 (34–100 %)"), "{page}");
        assert!(page.contains("id=\"epoll-unpinned-poll.epoll-dmabuf-race\""));
        // Self-contained: no script, no external resource.
        assert!(!page.contains("<script") && !page.contains(" src=") && !page.contains("<link"));
    }

    #[test]
    fn a_cell_with_nothing_run_is_not_a_pass() {
        let mut n = night();
        n.cells[1].runs.clear();
        assert_eq!(cell_text(&n.cells[1]), "not run: no run was made");
        assert_eq!(as_expected(&n.cells[1]), None);
        let xml = junit_xml(&n).unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let case = doc
            .descendants()
            .find(|c| c.attribute("classname") == Some("epoll-dmabuf-race.baseline"))
            .unwrap();
        assert!(case.children().any(|n| n.has_tag_name("error")), "{xml}");
    }

    /// A night's culprit is shown with its change in summary.md, report.html and the JUnit
    /// failure's message; an earlier night's answer for a report still there has its own
    /// section, naming the night that found it. Its text is the guest's: escaped.
    #[test]
    fn a_culprit_is_shown_with_its_change_in_every_rendering() {
        use crate::results::culprit::{Culprit, Direction};
        let mut n = night();
        let about = (
            (
                "git:/r@main",
                "epoll-unpinned-poll",
                "epoll-dmabuf-race",
                "k",
            ),
            ("09739e8343941586", "WARNING in dma_buf_poll"),
        );
        let culprit = Culprit {
            commit: Some("144d9e0b15971eeb63b2eff425469e10142d17ba".into()),
            subject: "epoll: poll <b>unpinned</b>".into(),
            confidence: 0.971,
            builds: 7,
            ..Culprit::new(
                Direction::Introduced,
                about,
                (&"a".repeat(40), &"b".repeat(40)),
            )
        };
        n.culprits.push(culprit.clone());
        let line =
            "introduced by `144d9e0b1597 epoll: poll <b>unpinned</b>` — confidence 0.971, 7 builds";
        let md = summary_md(&n);
        assert!(
            md.contains(&format!(
                "- epoll-unpinned-poll × epoll-dmabuf-race: WARNING in dma_buf_poll \
                 [09739e8343941586] — {line}\n"
            )),
            "{md}"
        );
        assert!(!md.contains("## Culprits of reports still there"), "{md}");
        let page = super::super::html::page(&n);
        assert!(
            page.contains("introduced by `144d9e0b1597 epoll: poll &lt;b&gt;unpinned&lt;/b&gt;`"),
            "{page}"
        );
        let xml = junit_xml(&n).unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let failure = doc
            .descendants()
            .find(|c| c.attribute("classname") == Some("epoll-dmabuf-race.epoll-unpinned-poll"))
            .and_then(|c| c.children().find(|n| n.has_tag_name("failure")))
            .unwrap();
        assert_eq!(
            failure.attribute("message"),
            Some(format!("WARNING in dma_buf_poll (WARNING in dma_buf_poll: {line})").as_str())
        );
        // No change tonight, an earlier night's answer: its own section.
        n.changes.clear();
        n.culprits[0].earlier = Some("2026-12-06T00:00:00Z".into());
        let md = summary_md(&n);
        assert!(
            md.contains(
                "## Culprits of reports still there\n\n- epoll-unpinned-poll × \
                 epoll-dmabuf-race: WARNING in dma_buf_poll [09739e8343941586] — introduced by \
                 `144d9e0b1597"
            ),
            "{md}"
        );
        assert!(
            md.contains("(bisected by the night of 2026-12-06T00:00:00Z)"),
            "{md}"
        );
        let page = super::super::html::page(&n);
        assert!(page.contains("Culprits of reports still there"), "{page}");
        // The cell's timeline: a column per night, the signature marked where it was found,
        // first and last seen, and the culprit.
        let night = |id: i64, started: &str, sigs: &[(&str, &str)]| {
            crate::results::history::TimelineNight {
                night: id,
                started: started.into(),
                commit: Some(format!("{id}").repeat(40)),
                runs: 3,
                failed: sigs.len() as u64,
                signatures: sigs
                    .iter()
                    .map(|(s, t)| (s.to_string(), t.to_string()))
                    .collect(),
            }
        };
        let warn = [("09739e8343941586", "WARNING in <dma_buf_poll>")];
        n.timelines.push(crate::results::night::Timeline {
            variant: "epoll-unpinned-poll".into(),
            scenario: "epoll-dmabuf-race".into(),
            nights: vec![
                night(3, "n3", &warn),
                night(2, "n2", &warn),
                night(1, "n1", &[]),
            ],
            culprits: vec![culprit],
        });
        assert_eq!(
            n.timelines[0].signatures(),
            [("09739e8343941586", "WARNING in <dma_buf_poll>", "n2", "n3")]
        );
        let page = super::super::html::page(&n);
        assert!(page.contains("History of each cell"), "{page}");
        assert!(page.contains("WARNING in &lt;dma_buf_poll&gt;"), "{page}");
        assert!(page.contains("<td>n2</td><td>n3</td>"), "{page}");
        assert!(page.contains("<code>111111111111</code>"), "{page}");
        assert_eq!(
            page.matches("<td class=\"fail\">●</td>").count(),
            2,
            "{page}"
        );
    }

    #[test]
    fn summary_is_a_matrix_then_the_changes() {
        let mut n = night();
        n.cells[1].runs[0].evidence = crate::results::Evidence::KernelReport {
            title: HOSTILE.into(),
            signature: "s".into(),
        };
        let md = summary_md(&n);
        assert!(
            md.contains("| variant | epoll-dmabuf-race | uapi-epoll |"),
            "{md}"
        );
        assert!(
            md.contains("| epoll-unpinned-poll | FAIL 2/2: WARNING in dma_buf_poll ✓ | · |"),
            "{md}"
        );
        assert!(md.contains("| baseline | FAIL 1/2: "), "{md}");
        // baseline was expected to pass: marked in the cell and listed.
        assert!(md.contains("✗ expected pass |"), "{md}");
        assert!(
            md.contains("## Not as lab.toml expects\n\n- baseline × epoll-dmabuf-race: FAIL 1/2"),
            "{md}"
        );
        assert!(
            md.contains("error 1/1: no output from test machine |"),
            "{md}"
        );
        assert!(md.contains(
            "## Regressions\n\n- epoll-unpinned-poll × epoll-dmabuf-race: WARNING in dma_buf_poll"
        ));
        // A pipe or newline from the guest cannot add columns or rows.
        let row = md
            .lines()
            .find(|l| l.starts_with("| baseline | FAIL"))
            .unwrap();
        assert_eq!(row.matches(" | ").count(), 2, "{row}");
    }
}
