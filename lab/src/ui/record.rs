//! The human summary of one run, as `lab boot` prints it.

use crate::results::RunRecord;
use std::fmt::Write;
use std::path::Path;

fn ms(v: Option<u64>) -> String {
    v.map(|v| format!("{:.2}s", v as f64 / 1000.0))
        .unwrap_or_else(|| "-".into())
}

pub fn render(r: &RunRecord, run_dir: &Path) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "outcome:  {}", r.outcome.summary());
    let _ = writeln!(
        s,
        "machine:  {} backend, {}, {} vCPUs, {} MiB",
        r.backend, r.accel, r.cpus, r.memory_mib
    );
    if let Some(g) = &r.guest {
        let _ = writeln!(
            s,
            "guest:    {} nproc={} pid1={}",
            g.kernel_release, g.nproc, g.pid1
        );
    }
    let start = match (&r.start.snapshot, r.timing.restored_ms) {
        (Some(key), Some(at)) => format!(
            "restored from snapshot {key} (loaded and running at {})",
            ms(Some(at))
        ),
        (Some(key), None) => format!("restoring snapshot {key} did not finish"),
        (None, _) => "booted".to_string(),
    };
    let _ = writeln!(s, "start:    {start}");
    if let Some(note) = &r.start.note {
        let _ = writeln!(s, "          {note}");
    }
    let t = &r.timing;
    let _ = writeln!(
        s,
        "timing:   console {}  agent ready {}  workload {}  done {}  ended {}",
        ms(t.console_first_ms),
        ms(t.agent_hello_ms),
        ms(t.workload_started_ms),
        ms(t.done_ms),
        ms(Some(t.ended_ms))
    );
    if !r.threads.is_empty() {
        let _ = writeln!(s, "threads:  {} ({})", r.threads.len(), r.workload);
        let mut threads = r.threads.clone();
        threads.sort_by_key(|t| t.thread);
        for t in threads {
            let cpus: Vec<String> = t.cpus_seen.iter().map(|c| c.to_string()).collect();
            let pinned = t.pinned_cpu.map(|c| c.to_string()).unwrap_or("-".into());
            let errors: Vec<String> = t.errors.iter().map(|(e, n)| format!("{e}×{n}")).collect();
            let _ = writeln!(
                s,
                "  thread {:>2}  {:<8} pinned {:>2}  ran on [{}]  count {}{}",
                t.thread,
                t.role,
                pinned,
                cpus.join(","),
                t.count,
                if errors.is_empty() {
                    String::new()
                } else {
                    format!("  errors {}", errors.join(" "))
                }
            );
        }
    } else if !r.last_progress.is_empty() {
        let _ = writeln!(s, "progress: last heartbeat counts {:?}", r.last_progress);
    }
    if let Some(suite) = &r.tests {
        let (counts, missing) = suite.counts();
        let mut parts: Vec<String> = counts
            .iter()
            .map(|(s, n)| format!("{n} {}", s.name()))
            .collect();
        if missing > 0 {
            parts.push(format!("{missing} without a result"));
        }
        let leaves = suite.leaves();
        // A plan counts the top level: programs, when they nest their tests.
        let planned = suite
            .planned
            .filter(|_| leaves.len() == suite.tests.len())
            .map(|p| format!(" of {p} planned"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "tests:    {}{planned}: {}",
            leaves.len(),
            parts.join(", ")
        );
        for (name, t) in leaves
            .iter()
            .filter(|(_, t)| t.status != crate::tap::Status::Pass)
        {
            let took = t
                .duration_ms()
                .map(|d| format!(" ({:.2}s)", d as f64 / 1000.0))
                .unwrap_or_default();
            let why = t
                .reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            let _ = writeln!(s, "  {} {} {name}{took}{why}", t.status.name(), t.number);
            for title in &t.kernel_reports {
                let _ = writeln!(s, "    kernel report while it ran: {title}");
            }
        }
        if let Some(reason) = &suite.bailed {
            let _ = writeln!(s, "  bailed out: {reason}");
        }
    }
    for (name, value) in &r.observations {
        let _ = writeln!(s, "observed: {name} = {value}");
    }
    let _ = writeln!(s, "run dir:  {}", run_dir.display());
    s
}
