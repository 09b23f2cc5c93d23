//! `lab canary`'s table: each detector, what it was expected to print, what it printed.

use crate::run::canary::Canary;
use std::path::Path;
use std::time::Duration;

/// The line a canary run leaves in a command's output.
pub fn ran(kernel: &str, passed: bool, silent: &[String], file: &Path, took: Duration) -> String {
    let what = match passed {
        true => "every detector it builds fired".to_string(),
        false => format!("did NOT fire: {}", silent.join(", ")),
    };
    format!(
        "lab: {kernel}: detector canary: {what} ({:.0} s; {})",
        took.as_secs_f64(),
        file.display()
    )
}

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
