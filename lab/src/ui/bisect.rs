//! What a bisection prints and writes to bisect.log: the per-step table and the answer.

use crate::bisect::state::State;
use crate::bisect::steps::{classify, stored};
use crate::bisect::verdict::{CommitVerdict, RunClass};
use crate::bisect::{Answer, BisectOptions, TargetReport};
use anyhow::Result;

/// The per-step table (Markdown), in the order the steps were taken.
pub fn table(o: &BisectOptions, state: &State) -> Result<String> {
    let target = state.target.clone().unwrap_or(TargetReport::Any);
    let mut s = String::from("| # | commit | subject | build | runs | target reports | verdict |\n|---|---|---|---|---|---|---|\n");
    for (i, step) in state.steps.iter().enumerate() {
        let runs = stored(o, &step.commit)?;
        let hits = runs
            .iter()
            .filter(|r| classify(r, &target) == RunClass::Target)
            .count();
        let build = match (&step.build_error, step.build_s) {
            (Some(e), _) => format!("failed: {}", e.replace('|', "\\|")),
            (None, Some(secs)) => {
                format!("{secs:.1} s ({} files)", step.files_compiled.unwrap_or(0))
            }
            (None, None) => "cache hit".into(),
        };
        let verdict = match &step.verdict {
            Some(CommitVerdict::Racy) => "racy".to_string(),
            Some(CommitVerdict::Clean) => "clean".to_string(),
            Some(CommitVerdict::Skip(why)) => format!("skip ({why})"),
            None => "-".into(),
        };
        s.push_str(&format!(
            "| {} | {} | {} | {build} | {} | {hits} | {verdict} |\n",
            i + 1,
            &step.commit[..12],
            step.subject.replace('|', "\\|"),
            runs.len()
        ));
    }
    Ok(s)
}

/// The answer as printed and written to bisect.log: the table, the commit, the confidence.
pub fn answer_text(o: &BisectOptions, a: &Answer) -> Result<String> {
    let commit = &a.state.commits[a.found];
    let basis = match a.state.plan {
        Some(p) if p.forced => format!(
            "the schedule measured at the racy end: a report after {} of {} applied attempts, \
             assumed {:.2} per applied attempt",
            a.state.rate_runs.0, a.state.rate_runs.1, p.rate
        ),
        p => format!(
            "rate at the racy end {}/{}, assumed {:.2}",
            a.state.rate_runs.0,
            a.state.rate_runs.1,
            p.map_or(0.0, |p| p.rate)
        ),
    };
    let mut text = format!(
        "{}\n{} {commit} {}\nconfidence {} ({basis}; {})\n",
        table(o, &a.state)?,
        match (o.fix, a.undecided.is_some()) {
            (true, false) => "first fixed commit:",
            (false, false) => "first racy commit:",
            (true, true) => "first commit known fixed:",
            (false, true) => "first commit known racy:",
        },
        a.state.subject(commit),
        crate::text::confidence(a.confidence),
        crate::text::count(a.builds as u32, "build", "builds"),
    );
    if let Some(why) = &a.undecided {
        text.push_str(&format!(
            "could not decide: {why}; the answer lies after {} up to {}\n",
            a.range.0.as_deref().map_or("the old end", |c| &c[..12]),
            &a.range.1[..12]
        ));
    }
    if !a.doubt.is_empty() {
        let short: Vec<&str> = a.doubt.iter().map(|c| &c[..12]).collect();
        text.push_str(&format!(
            "or one of these skipped commits before it: {}\n",
            short.join(", ")
        ));
    }
    Ok(text)
}
