//! `lab canary`'s table: each detector, what it was expected to print, what it printed.

use crate::run::canary::Canary;
use std::path::Path;

pub fn table(c: &Canary, out: &Path) -> String {
    let mut s = format!(
        "canary of {}{}\n\n| detector | LKDTM fault | expected | seen | first report | fired |\n|---|---|---|---|---|---|\n",
        c.kernel,
        c.snapshot
            .as_deref()
            .map(|k| format!(" (snapshot {k})"))
            .unwrap_or_default()
    );
    for p in &c.proofs {
        s.push_str(&format!(
            "| {} | {} | {}… | {} | {} | {} |\n",
            p.detector,
            p.crash,
            p.expected.trim_end(),
            p.seen.as_deref().unwrap_or("nothing").replace('|', "\\|"),
            p.first_report_ms
                .map(|ms| format!("{:.2} s", ms as f64 / 1000.0))
                .unwrap_or_else(|| "-".into()),
            match (p.fired, p.absent) {
                (true, _) => "yes",
                (false, true) => "not built",
                (false, false) => "NO",
            }
        ));
    }
    s.push_str(&format!(
        "\ncanary: {}\n",
        out.join("canary.json").display()
    ));
    s
}
