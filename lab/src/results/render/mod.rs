//! Every output a night or the history is rendered to: Markdown (`summary.md`), JUnit
//! (`junit.xml`), HTML (`report.html`), KCIDB JSON, and the history's trend table. Each reads
//! only the results model; the rules it shows (tallies, expectations, evidence) are the
//! model's.

pub mod history;
pub mod html;
pub mod kcidb;
pub mod night;

use super::night::{
    as_expected, first_failure, survived, tally, unproven, CellResult, NightResults, NOT_RUN,
};
use super::Verdict;

/// The matrix cell: the outcome, then whether it was expected.
pub fn cell_with_expectation(cell: &CellResult) -> String {
    let text = cell_text(cell);
    match (as_expected(cell), cell.expect.as_deref()) {
        (Some(true), _) => format!("{text} ✓"),
        (Some(false), Some(e)) => format!("{text} ✗ expected {e}"),
        _ => text,
    }
}

/// One line of the matrix: "FAIL 3/3: WARNING in dma_buf_poll", "pass 3/3", ...
pub fn cell_text(cell: &CellResult) -> String {
    if let Some(note) = &cell.note {
        return note.clone();
    }
    let (fail, error, skipped, pass) = tally(cell);
    let n = cell.runs.len();
    if n == 0 {
        return format!("{NOT_RUN}no run was made");
    }
    if let Some((_, detail)) = first_failure(cell) {
        let mut t = format!("FAIL {fail}/{n}: {detail}");
        if error > 0 {
            t.push_str(&format!(" ({error} error)"));
        }
        t
    } else if error > 0 {
        let first = cell
            .runs
            .iter()
            .find_map(|r| match r.verdict() {
                Verdict::Error(d) => Some(d),
                _ => None,
            })
            .unwrap_or_default();
        format!("error {error}/{n}: {first}")
    } else if skipped == n && n > 0 {
        format!("skipped: {}", cell.runs[0].verdict().parts().1)
    } else {
        let notes: Vec<String> = [survived(cell), unproven(cell)]
            .into_iter()
            .flatten()
            .collect();
        match notes.is_empty() {
            true => format!("pass {pass}/{n}"),
            false => format!("pass {pass}/{n} ({})", notes.join("; ")),
        }
    }
}

/// The matrix's axes: (variants, scenarios), each in the order of first appearance.
pub fn axes(night: &NightResults) -> (Vec<&str>, Vec<&str>) {
    let mut scenarios: Vec<&str> = Vec::new();
    let mut variants: Vec<&str> = Vec::new();
    for c in &night.cells {
        if !scenarios.contains(&c.scenario.as_str()) {
            scenarios.push(&c.scenario);
        }
        if !variants.contains(&c.variant.as_str()) {
            variants.push(&c.variant);
        }
    }
    (variants, scenarios)
}
