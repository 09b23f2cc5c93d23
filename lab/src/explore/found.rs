//! The scenario a search writes: the explored scenario's own text, and the interleaving found
//! as its `[schedule]`, each step with a comment saying where its location came from.

use super::search::Stop;
use crate::config::scenario::Scenario;
use crate::config::schedule::Step;
use anyhow::Result;
use std::path::Path;

/// Where a found schedule came from, for its header.
pub struct Provenance<'a> {
    pub variant: &'a str,
    pub kernel: &'a str,
    /// The interleaving's id in the search's record.
    pub id: u64,
    pub title: &'a str,
    /// The run in which it made the kernel report.
    pub run: &'a Path,
    /// Distinct interleavings attempted up to it.
    pub tried: usize,
}

fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// One `[[schedule.step]]` table, with its comment.
fn step_table(step: &Step, stop: Option<&Stop>) -> String {
    let mut t = String::new();
    if let Some(stop) = stop {
        for from in &stop.from {
            t.push_str(&format!("# {}: {from}\n", stop.function));
        }
    }
    t.push_str("[[schedule.step]]\n");
    t.push_str(&format!("name = {}\n", quoted(&step.name)));
    t.push_str(&format!("cpu = {}\n", quoted(&step.cpu.to_string())));
    t.push_str(&format!("at = {}\n", quoted(&step.at.to_string())));
    if let Some(run) = &step.run {
        let run: Vec<String> = run.iter().map(|c| quoted(&c.to_string())).collect();
        t.push_str(&format!("run = [{}]\n", run.join(", ")));
    }
    t.push_str(&format!(
        "deadline = {}\n",
        quoted(&humantime::format_duration(step.deadline).to_string())
    ));
    if step.hit != 1 {
        t.push_str(&format!("hit = {}\n", step.hit));
    }
    t
}

/// The scenario's text with the search's pace: its own `pace_us` line replaced, or one added
/// at the top of `[params]`; with none, any pace_us line goes.
fn with_pace(text: &str, pace: Option<u64>) -> String {
    let line = pace.map(|us| {
        format!("pace_us = {us}  # the pace lab explore searched at: a sleep after each round")
    });
    let mut out = String::new();
    let mut placed = false;
    for l in text.lines() {
        if l.trim_start().starts_with("pace_us") && l.contains('=') {
            if let Some(line) = &line {
                out.push_str(line);
                out.push('\n');
            }
            placed = true;
            continue;
        }
        out.push_str(l);
        out.push('\n');
        if l.trim() == "[params]" && !text.contains("\npace_us") {
            if let Some(line) = &line {
                out.push_str(line);
                out.push('\n');
            }
            placed = true;
        }
    }
    if !placed {
        if let Some(line) = &line {
            out.push_str("\n[params]\n");
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The text of the found scenario.
pub fn scenario_text(
    scenario: &Scenario,
    p: &Provenance<'_>,
    steps: &[Step],
    stops: &[Stop],
) -> Result<String> {
    let original = with_pace(
        &crate::files::read_to_string(&scenario.file)?,
        scenario.params.get("pace_us").and_then(|v| v.as_u64()),
    );
    let mut text = format!(
        "# Found by `lab explore --variant {} --scenario {}` on kernel {}: interleaving {} (the \
         {}th distinct one tried)\n# made the kernel report \"{}\" in {}.\n# No location below \
         was written by hand: each step's comment says where it came from.\n#\n",
        p.variant,
        scenario.name,
        p.kernel,
        p.id,
        p.tried,
        p.title,
        p.run.display()
    );
    text.push_str(&original);
    text.push_str(
        "\n[schedule]\n# The first step lets every vCPU run until its role reaches its location; \
         each later one\n# runs its own role and the roles not stopped yet; then every vCPU \
         resumes.\n",
    );
    for (i, step) in steps.iter().enumerate() {
        text.push('\n');
        text.push_str(&step_table(step, stops.get(i)));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schedule::{CpuRef, Location};
    use std::time::Duration;

    #[test]
    fn the_pace_replaces_the_scenarios_own_or_goes_first_in_params() {
        let plain = "kind = \"race\"\n[params]\nfile_kind = \"x\"\n";
        let added = with_pace(plain, Some(500));
        assert!(added.contains("[params]\npace_us = 500  #"), "{added}");
        let own = "[params]\npace_us = 7\nfile_kind = \"x\"\n";
        let replaced = with_pace(own, Some(500));
        assert_eq!(replaced.matches("pace_us").count(), 1, "{replaced}");
        assert!(replaced.contains("pace_us = 500"));
        assert!(!with_pace(own, None).contains("pace_us"));
        let no_params = with_pace("kind = \"race\"\n", Some(9));
        assert!(no_params.ends_with(
            "[params]\npace_us = 9  # the pace lab explore searched at: a sleep after each round\n"
        ));
    }

    /// The scenario written reads back through the lab's own loader, schedule and pace
    /// included, with each step's provenance in its comments.
    #[test]
    fn a_found_scenario_loads_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("race.toml");
        std::fs::write(
            &src,
            "description = \"d\"\nkind = \"race\"\nworkload = \"epoll_close_race\"\ncpus = 2\n\
             duration = \"30s\"\n[params]\ncloser_cpus = [0]\npoller_cpus = [1]\n",
        )
        .unwrap();
        let mut scenario = crate::config::scenario::load(&src).unwrap();
        scenario.params.insert("pace_us".into(), 2000.into());
        let step = |role: &str, at: &str, run: Option<Vec<&str>>| Step {
            name: format!("{role}-{at}"),
            cpu: CpuRef::Role(role.into()),
            at: at.parse::<Location>().unwrap(),
            at_series: Default::default(),
            run: run.map(|r| r.into_iter().map(|x| CpuRef::Role(x.into())).collect()),
            deadline: Duration::from_secs(1),
            task: None,
            hit: 1,
            line: 0,
        };
        let steps = [
            step("closer", "__fput", None),
            step("poller", "dma_buf_poll", Some(vec!["poller"])),
        ];
        let stops = [Stop {
            role: "closer".into(),
            function: "__fput".into(),
            score: 2.5,
            from: vec!["report 2, free stack (depth 1)".into()],
        }];
        let p = Provenance {
            variant: "v",
            kernel: "k",
            id: 31,
            title: "WARNING in dma_buf_poll",
            run: Path::new("/runs/run-004"),
            tried: 7,
        };
        let text = scenario_text(&scenario, &p, &steps, &stops).unwrap();
        assert!(text.contains("# __fput: report 2, free stack (depth 1)\n[[schedule.step]]"));
        let out = dir.path().join("race-v-found.toml");
        std::fs::write(&out, &text).unwrap();
        let found = crate::config::scenario::load(&out).unwrap();
        let schedule = found.schedule.expect("a schedule");
        assert_eq!(schedule.steps.len(), 2);
        assert_eq!(schedule.steps[0].at.to_string(), "__fput");
        assert_eq!(schedule.steps[1].run, steps[1].run);
        assert_eq!(found.params.get("pace_us"), Some(&2000.into()));
    }
}
