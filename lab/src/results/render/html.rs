//! `report.html`: a night on one self-contained static page — the matrix, what changed,
//! detection rates with their 95 % intervals (inline SVG), and every cell's runs with their
//! reports: title, signature, the (symbolized) stack and the report's console text, with links
//! to each run's console.log. No script, no external resource. Guest output is untrusted:
//! every string goes through maud's escaping, and control characters are dropped first.

use super::super::night::{self, CellResult, NightResults};
use super::super::stats::{wilson, Z95};
use super::super::{RunResult, Verdict};
use super::{axes, cell_text, cell_with_expectation};
use crate::report::formats::ReportType;
use crate::report::parser::Report;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use std::path::Path;

const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:1200px}
h1{font-size:1.4em;margin-bottom:0}h2{font-size:1.15em;margin-top:1.6em}
.meta{color:#666;margin-top:.2em}
table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}
.pass{background:#e6f4e6}.fail{background:#fbe3e3}.error{background:#fff1d6}.skip{background:#eee}
.bad{color:#a00;font-weight:bold}.good{color:#070}
pre{background:#f7f7f7;border:1px solid #ddd;padding:.5em;overflow-x:auto;font-size:12px;max-height:30em}
details{margin:.4em 0}summary{cursor:pointer}
code{font-size:12px}.sig{color:#666}
";

/// Text from a guest or a kernel: control characters other than newline and tab removed
/// (maud escapes markup).
fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect()
}

/// One part of a link, percent-encoded beyond a safe set; `.` and `..` are encoded too, so a
/// part never climbs out of the night.
fn encode(part: &str) -> String {
    let all_dots = !part.is_empty() && part.bytes().all(|b| b == b'.');
    part.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => (b as char).to_string(),
            b'.' if !all_dots => ".".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The link from the night's page to a run's console, from the night's own layout
/// (`variant/scenario/run-NNN/console.log`) rather than the directory stored with the run:
/// it stays inside the night whatever results.json says, and survives moving the night.
fn console_href(cell: &CellResult, r: &RunResult) -> String {
    [
        encode(&cell.variant),
        encode(&cell.scenario),
        crate::name::run_dir_name(r.index),
        "console.log".to_string(),
    ]
    .join("/")
}

fn class(cell: &CellResult) -> &'static str {
    let t = cell_text(cell);
    if t.starts_with(night::NOT_RUN) || t.starts_with("error") {
        "error"
    } else if cell.note.is_some() || t.starts_with("skipped") {
        "skip"
    } else if t.starts_with("FAIL") {
        "fail"
    } else if t.starts_with("error") {
        "error"
    } else {
        "pass"
    }
}

/// A cell's anchor: one for each (variant, scenario), never shared. Letters, digits and `-`
/// stand as they are, every other byte as `_XX`, and the two names are joined by `.` (which
/// the encoding never yields).
fn anchor(cell: &CellResult) -> String {
    let encode = |name: &str| -> String {
        name.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' => (b as char).to_string(),
                _ => format!("_{b:02x}"),
            })
            .collect()
    };
    format!("{}.{}", encode(&cell.variant), encode(&cell.scenario))
}

/// (failed runs, runs that said something about the kernel): a failure is a finding (a
/// kernel report, a hang), or in a uapi scenario a check with another value.
fn detection(cell: &CellResult) -> (u64, u64) {
    let counted = cell.runs.iter().filter(|r| r.evidence.counts());
    let hit = counted
        .clone()
        .filter(|r| matches!(r.verdict(), Verdict::Fail(_)))
        .count();
    (hit as u64, counted.count() as u64)
}

/// Horizontal bars: the failure rate of each cell that ran, its Wilson interval as a line.
/// A cell's last nights, oldest on the left: a column per night (its start, commit, runs with
/// a finding), then each signature with a mark in the nights that found it and its first and
/// last seen, then the culprits the history knows.
fn timeline(t: &night::Timeline) -> Markup {
    let nights: Vec<_> = t.nights.iter().rev().collect();
    html! {
        details open {
            summary { b { (t.variant) " × " (t.scenario) } }
            table {
                tr {
                    th { "night" }
                    @for n in &nights { th { (n.night) br; span.sig { (n.started) } } }
                    th { "first seen" } th { "last seen" }
                }
                tr {
                    th { "commit" }
                    @for n in &nights { td { code { (n.commit.as_deref().map_or("-", |c| &c[..c.len().min(12)])) } } }
                    td {} td {}
                }
                tr {
                    th { "runs with a finding" }
                    @for n in &nights { td class=(if n.failed > 0 { "fail" } else { "pass" }) { (n.failed) "/" (n.runs) } }
                    td {} td {}
                }
                @for (sig, title, first, last) in t.signatures() {
                    tr {
                        th { (clean(title)) br; span.sig { (sig) } }
                        @for n in &nights {
                            @if n.signatures.contains_key(sig) { td.fail { "●" } } @else { td {} }
                        }
                        td { (first) } td { (last) }
                    }
                }
            }
            @if !t.culprits.is_empty() {
                ul { @for k in &t.culprits { li { (clean(&k.title)) ": " (clean(&k.line())) } } }
            }
        }
    }
}

fn chart(cells: &[&CellResult]) -> Markup {
    const W: f64 = 300.0;
    const ROW: f64 = 22.0;
    const LABEL: f64 = 330.0;
    let rows: Vec<(&CellResult, u64, u64)> = cells
        .iter()
        .map(|c| (*c, detection(c).0, detection(c).1))
        .filter(|(_, _, n)| *n > 0)
        .collect();
    let height = ROW * rows.len() as f64 + 24.0;
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(LABEL + W + 130.0) height=(height)
            role="img" aria-label="failed runs per cell with 95 % Wilson interval" {
            @for (i, (cell, hit, n)) in rows.iter().enumerate() {
                @let y = ROW * i as f64;
                @let rate = *hit as f64 / *n as f64;
                @let (lo, hi) = wilson(*hit, *n, Z95);
                text x=(LABEL - 6.0) y=(y + 15.0) text-anchor="end" font-size="12" {
                    (cell.variant) " × " (cell.scenario)
                }
                rect x=(LABEL) y=(y + 4.0) width=(W) height="14" fill="#eee" {}
                rect x=(LABEL) y=(y + 4.0) width=(W * rate) height="14"
                    fill=(if *hit > 0 { "#d9534f" } else { "#5cb85c" }) {}
                line x1=(LABEL + W * lo) x2=(LABEL + W * hi) y1=(y + 11.0) y2=(y + 11.0)
                    stroke="#222" stroke-width="2" {}
                line x1=(LABEL + W * lo) x2=(LABEL + W * lo) y1=(y + 6.0) y2=(y + 16.0) stroke="#222" {}
                line x1=(LABEL + W * hi) x2=(LABEL + W * hi) y1=(y + 6.0) y2=(y + 16.0) stroke="#222" {}
                text x=(LABEL + W + 8.0) y=(y + 15.0) font-size="12" {
                    (hit) "/" (n) " (" (format!("{:.0}–{:.0} %", lo * 100.0, hi * 100.0)) ")"
                }
            }
            @for (x, label) in [(0.0, "0 %"), (0.5, "50 %"), (1.0, "100 %")] {
                text x=(LABEL + W * x) y=(height - 4.0) text-anchor="middle" font-size="11" fill="#666" { (label) }
            }
        }
    }
}

fn frames(r: &Report) -> Markup {
    let lines: Vec<String> = r
        .frames
        .iter()
        .flat_map(crate::report::symbolize::decoded)
        .collect();
    html! {
        @if !lines.is_empty() {
            pre { (clean(&lines.join("\n"))) }
        }
    }
}

fn report(r: &Report) -> Markup {
    html! {
        details {
            summary {
                b { (clean(&r.title)) }
                " " span.sig { "[" (r.signature) "] " (format!("{:?}", r.kind).to_lowercase())
                    @if r.corrupted { " (corrupted)" } }
                @if let Some(why) = &r.suppressed { " " i { "suppressed: " (clean(why)) } }
            }
            (frames(r))
            pre { (clean(&r.text)) }
        }
    }
}

fn run_row(cell: &CellResult, r: &RunResult) -> Markup {
    let verdict = r.verdict();
    let (verdict, detail) = verdict.parts();
    let detail = clean(detail);
    let ops: Vec<String> = r
        .throughput
        .iter()
        .map(|(role, v)| format!("{} {v:.0}/s", clean(role)))
        .collect();
    html! {
        tr {
            td { (r.index) }
            td { (verdict) }
            td { (r.outcome_name()) }
            td { (r.first_report_ms.map(|ms| format!("{:.2} s", ms as f64 / 1000.0)).unwrap_or_else(|| "-".into())) }
            td { (ops.join(", ")) }
            td {
                @if r.record.is_some() {
                    a href=(console_href(cell, r)) { "console.log" }
                }
            }
            td {
                (detail)
                @for rep in r.reports.iter().filter(|rep| rep.kind != ReportType::Lab) {
                    (report(rep))
                }
            }
        }
    }
}

fn cell_details(cell: &CellResult) -> Markup {
    html! {
        h3 id=(anchor(cell)) { (cell.variant) " × " (cell.scenario) }
        p {
            (cell_with_expectation(cell))
            @if let Some(k) = &cell.kernel {
                br; "kernel " (clean(&k.kernel_release)) ", .config " code { (k.config_hash.get(..12).unwrap_or(&k.config_hash)) }
            }
            br; "source " (clean(&cell.source))
            @if let Some(c) = &cell.commit { " at " code { (c) } }
        }
        @if !cell.runs.is_empty() {
            table {
                tr { th { "run" } th { "verdict" } th { "outcome" } th { "first report" } th { "throughput" } th { "console" } th { "reports" } }
                @for r in &cell.runs { (run_row(cell, r)) }
            }
        }
    }
}

/// Write the night's report.html again from its results.json; returns the page's path.
pub fn rewrite(night: &Path) -> anyhow::Result<std::path::PathBuf> {
    let results = NightResults::read(night)?;
    let page_path = night.join("report.html");
    crate::files::write(&page_path, page(&results))?;
    Ok(page_path)
}

/// The night's page (links to consoles are relative to the night's directory).
pub fn page(n: &NightResults) -> String {
    let (variants, scenarios) = axes(n);
    let cell = |v: &str, s: &str| n.cells.iter().find(|c| c.variant == v && c.scenario == s);
    let title = if n.lab.is_empty() {
        "lab nightly"
    } else {
        &n.lab
    };
    let regressions = n.changes.iter().filter(|c| c.kind == "regression").count();
    let cells: Vec<&CellResult> = n.cells.iter().collect();
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (clean(title)) " — " (n.started) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { (clean(title)) }
                p.meta {
                    (n.started) " → " (n.ended)
                    @if let Some(id) = n.night { " · night " (id) }
                    " · " (clean(&n.config))
                }
                p {
                    @if regressions > 0 {
                        span.bad { (regressions) " regression(s)" }
                    } @else {
                        span.good { "No regression" }
                    }
                    @if !n.errors.is_empty() { " · " span.bad { (n.errors.len()) " infrastructure error(s)" } }
                }
                h2 { "Matrix" }
                table {
                    tr { th { "variant" } @for s in &scenarios { th { (s) } } }
                    @for v in &variants {
                        tr {
                            th { (v) }
                            @for s in &scenarios {
                                @if let Some(c) = cell(v, s) {
                                    td class=(class(c)) { a href=(format!("#{}", anchor(c))) { (clean(&cell_with_expectation(c))) } }
                                } @else {
                                    td { "·" }
                                }
                            }
                        }
                    }
                }
                @if !n.changes.is_empty() {
                    h2 { "Changes since the last comparable night" }
                    table {
                        tr { th { "kind" } th { "cell" } th { "report" } th { "signature" } th { "culprit" } }
                        @for c in &n.changes {
                            tr {
                                td class=(if c.kind == "regression" { "fail" } else if c.kind == "fixed" { "pass" } else { "skip" }) { (c.kind) }
                                td { (c.variant) " × " (c.scenario) }
                                td { (clean(&c.title)) }
                                td { code { (c.signature) } }
                                td { @if let Some(k) = n.culprit_of(c) { (clean(&k.line())) } }
                            }
                        }
                    }
                }
                @if !n.culprits_still_there().is_empty() {
                    h2 { "Culprits of reports still there" }
                    table {
                        tr { th { "cell" } th { "report" } th { "culprit" } }
                        @for k in n.culprits_still_there() {
                            tr {
                                td { (k.variant) " × " (k.scenario) }
                                td { (clean(&k.title)) }
                                td { (clean(&k.line())) }
                            }
                        }
                    }
                }
                @if !n.timelines.is_empty() {
                    h2 { "History of each cell (last " (crate::results::history::TIMELINE_NIGHTS) " nights)" }
                    @for t in &n.timelines { (timeline(t)) }
                }
                @if !n.errors.is_empty() {
                    h2 { "Infrastructure errors" }
                    ul { @for e in &n.errors { li { pre { (clean(e)) } } } }
                }
                h2 { "Failed runs (a kernel report, or a uapi check that differs), 95 % Wilson interval" }
                (chart(&cells))
                h2 { "Cells" }
                @for c in &n.cells { (cell_details(c)) }
            }
        }
    };
    markup.into_string()
}

#[cfg(test)]
mod tests {

    /// Distinct cells get distinct anchors, whatever their names hold.
    #[test]
    fn anchors_never_collide() {
        let cell = |v: &str, s: &str| -> CellResult {
            serde_json::from_value(serde_json::json!({
                "variant": v, "scenario": s, "source": "x", "plan_key": "k", "kernel": null,
                "runs": [], "commit": null, "expect": null, "note": null, "runs_planned": 0,
                "duration_ms": 0, "counts": {"pass": 0, "fail": 0, "error": 0, "skipped": 0},
            }))
            .unwrap()
        };
        let names = [
            ("v6.12", "s"),
            ("v6_12", "s"),
            ("v6-12", "s"),
            ("a--b", "c"),
            ("a", "b--c"),
            ("a.b", "c"),
            ("a", "b.c"),
            ("v_2e12", "s"),
            ("ü", "s"),
            ("u", "s"),
        ];
        let anchors: std::collections::BTreeSet<String> =
            names.iter().map(|(v, s)| anchor(&cell(v, s))).collect();
        assert_eq!(anchors.len(), names.len(), "{anchors:?}");
    }
    use super::*;

    #[test]
    fn control_characters_go_and_links_stay_inside_the_night() {
        assert_eq!(clean("a\u{1b}[31mb\u{0}\nc\td"), "a[31mb\nc\td");
        let cell = |variant: &str, scenario: &str| {
            let mut n: NightResults = serde_json::from_value(serde_json::json!({
                "schema": 1, "lab": "", "config": "", "started": "", "ended": "",
                "night": null, "changes": [], "errors": [],
                "cells": [{"variant": variant, "scenario": scenario, "source": "", "plan_key": "",
                           "kernel": null, "runs": []}],
            }))
            .unwrap();
            n.cells.remove(0)
        };
        // The stored directory says nothing: the link is the night's own layout.
        let mut run = crate::results::RunResult::skipped(7, "/etc/../../passwd".into(), "x".into());
        assert_eq!(
            console_href(&cell("base line", "race"), &run),
            "base%20line/race/run-007/console.log"
        );
        run.index = 1;
        assert_eq!(
            console_href(&cell("..", "x\"><script>"), &run),
            "%2E%2E/x%22%3E%3Cscript%3E/run-001/console.log"
        );
        assert_eq!(
            console_href(&cell("a.b", "/abs"), &run),
            "a.b/%2Fabs/run-001/console.log"
        );
    }
}
