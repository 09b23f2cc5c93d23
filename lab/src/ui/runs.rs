//! The runs display (a batch, a comparison, a night). On a terminal: a live bar with runs
//! done of all, runs that printed a kernel report so far, an ETA, and the runs in flight.
//! Plain lines otherwise: each finished run's line and a tally after it.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What a run adds to its workload's duration (boot, agent start, power-off) before any run
/// has finished to measure it: a 2-vCPU TCG boot of the seed kernels.
const FIRST_GUESS_OVERHEAD_S: f64 = 20.0;

#[derive(Default)]
pub struct State {
    total: u64,
    done: u64,
    reported: u64,
    /// VMs at a time, for the ETA.
    jobs: usize,
    /// Workload time of the runs not finished yet.
    planned_left_s: f64,
    /// Sum over finished runs of (wall time − workload time).
    overhead_s: f64,
    /// Runs in flight: label, start, planned workload time.
    in_flight: BTreeMap<u64, (String, Instant, Duration)>,
}

impl State {
    fn eta_s(&self) -> f64 {
        let left = self.total.saturating_sub(self.done) as f64;
        let overhead = if self.done == 0 {
            FIRST_GUESS_OVERHEAD_S
        } else {
            self.overhead_s / self.done as f64
        };
        let running: f64 = self
            .in_flight
            .values()
            .map(|(_, t, _)| t.elapsed().as_secs_f64())
            .sum();
        ((self.planned_left_s + left * overhead - running) / self.jobs.max(1) as f64).max(0.0)
    }

    pub fn tally(&self) -> String {
        format!(
            "{}/{} runs, {} with a kernel report, eta {}",
            self.done,
            self.total,
            self.reported,
            humantime::format_duration(Duration::from_secs(self.eta_s().round() as u64))
        )
    }

    pub fn planned(&mut self, runs: u32, each: Duration, jobs: usize) {
        self.total += runs as u64;
        self.planned_left_s += runs as f64 * each.as_secs_f64();
        self.jobs = self.jobs.max(jobs);
    }

    pub fn dropped(&mut self, runs: u32, each: Duration) {
        self.total = self.total.saturating_sub(runs as u64);
        self.planned_left_s = (self.planned_left_s - runs as f64 * each.as_secs_f64()).max(0.0);
    }

    pub fn started(&mut self, id: u64, label: String, planned: Duration) {
        self.in_flight.insert(id, (label, Instant::now(), planned));
    }

    pub fn ended(&mut self, id: u64, kernel_report: bool) {
        let (wall, planned) = self
            .in_flight
            .remove(&id)
            .map(|(_, t, p)| (t.elapsed().as_secs_f64(), p.as_secs_f64()))
            .unwrap_or((0.0, 0.0));
        self.done += 1;
        self.reported += kernel_report as u64;
        self.planned_left_s = (self.planned_left_s - planned).max(0.0);
        self.overhead_s += wall - planned;
    }
}

/// The live bar of the runs, while there are runs.
pub struct Live {
    bar: ProgressBar,
}

impl Live {
    pub fn new(multi: &MultiProgress) -> Live {
        let bar = multi.add(
            ProgressBar::new(0).with_style(
                ProgressStyle::with_template("{elapsed_precise} [{bar:25}] {prefix}\n  {wide_msg}")
                    .unwrap()
                    .progress_chars("=> "),
            ),
        );
        bar.enable_steady_tick(Duration::from_millis(500));
        Live { bar }
    }

    pub fn redraw(&self, s: &State) {
        self.bar.set_length(s.total);
        self.bar.set_position(s.done);
        self.bar.set_prefix(s.tally());
        let flying: Vec<String> = s
            .in_flight
            .values()
            .map(|(label, t, _)| format!("{label} ({}s)", t.elapsed().as_secs()))
            .collect();
        self.bar.set_message(if flying.is_empty() {
            "starting".to_string()
        } else {
            format!("running: {}", flying.join(", "))
        });
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_uses_the_measured_overhead_once_runs_finished() {
        let mut s = State {
            total: 4,
            planned_left_s: 40.0,
            jobs: 1,
            ..Default::default()
        };
        // Nothing measured: 4 × 10 s of workload + 4 × the first guess.
        assert_eq!(s.eta_s(), 40.0 + 4.0 * FIRST_GUESS_OVERHEAD_S);
        // Two runs done, each 10 s of workload in 16 s of wall time.
        s.done = 2;
        s.planned_left_s = 20.0;
        s.overhead_s = 12.0;
        assert_eq!(s.eta_s(), 20.0 + 2.0 * 6.0);
        // Two VMs at a time halve it.
        s.jobs = 2;
        assert_eq!(s.eta_s(), 16.0);
        s.jobs = 1;
        assert!(s
            .tally()
            .starts_with("2/4 runs, 0 with a kernel report, eta 32s"));
    }
}
