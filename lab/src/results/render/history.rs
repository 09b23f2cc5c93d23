//! `lab history`: the trend of cells over the stored nights, as a Markdown table.

use super::super::history::TrendRow;

/// The trend as `lab history` prints it (Markdown).
pub fn table(rows: &[TrendRow]) -> String {
    let mut s = String::from(
        "| night | started | variant | scenario | failed/runs | first reports |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let titles: Vec<String> = r.titles.iter().map(|(t, n)| format!("{t} ({n})")).collect();
        s.push_str(&format!(
            "| {} | {} | {} | {} | {}/{} | {} |\n",
            r.night,
            r.started,
            r.variant,
            r.scenario,
            r.failed,
            r.runs,
            if titles.is_empty() {
                "-".to_string()
            } else {
                titles.join("; ").replace('|', "\\|")
            }
        ));
    }
    s
}
