//! Progress of runs (a batch, a comparison, a night). On a terminal: a live bar with runs
//! done of all, runs that printed a kernel report so far, an ETA, and the runs in flight.
//! Plain lines otherwise (stderr not a terminal, or CI=true): each finished run's line and a
//! tally after it.

use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a run adds to its workload's duration (boot, agent start, power-off) before any run
/// has finished to measure it: a 2-vCPU TCG boot of the seed kernels.
const FIRST_GUESS_OVERHEAD_S: f64 = 20.0;

/// Plain lines instead of a live display.
pub fn plain() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || !std::io::IsTerminal::is_terminal(&std::io::stderr())
}

#[derive(Clone)]
pub struct Progress {
    inner: Arc<Inner>,
}

struct Inner {
    bar: ProgressBar,
    plain: bool,
    /// VMs at a time (the pool's size), for the ETA.
    jobs: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    total: u64,
    done: u64,
    reported: u64,
    /// Workload time of the runs not finished yet.
    planned_left_s: f64,
    /// Sum over finished runs of (wall time − workload time).
    overhead_s: f64,
    in_flight: BTreeMap<u64, (String, Instant)>,
    next: u64,
}

/// A run in flight.
pub struct Ticket {
    id: u64,
    planned: Duration,
}

impl State {
    fn eta_s(&self, jobs: usize) -> f64 {
        let left = self.total.saturating_sub(self.done) as f64;
        let overhead = if self.done == 0 {
            FIRST_GUESS_OVERHEAD_S
        } else {
            self.overhead_s / self.done as f64
        };
        let running: f64 = self
            .in_flight
            .values()
            .map(|(_, t)| t.elapsed().as_secs_f64())
            .sum();
        ((self.planned_left_s + left * overhead - running) / jobs.max(1) as f64).max(0.0)
    }

    fn tally(&self, jobs: usize) -> String {
        format!(
            "{}/{} runs, {} with a kernel report, eta {}",
            self.done,
            self.total,
            self.reported,
            humantime::format_duration(Duration::from_secs(self.eta_s(jobs).round() as u64))
        )
    }
}

impl Progress {
    pub fn new(jobs: usize) -> Self {
        let plain = plain();
        let bar = if plain {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::new(0).with_style(
                ProgressStyle::with_template("{elapsed_precise} [{bar:25}] {prefix}\n  {wide_msg}")
                    .unwrap()
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(500));
            bar
        };
        let progress = Progress {
            inner: Arc::new(Inner {
                bar,
                plain,
                jobs,
                state: Mutex::new(State::default()),
            }),
        };
        if !plain {
            // The in-flight runs' times and the ETA move between events too.
            let weak = Arc::downgrade(&progress.inner);
            std::thread::spawn(move || loop {
                std::thread::sleep(Duration::from_secs(1));
                let Some(inner) = weak.upgrade() else { break };
                if inner.bar.is_finished() {
                    break;
                }
                let s = inner.state.lock().unwrap();
                Progress {
                    inner: inner.clone(),
                }
                .redraw(&s);
            });
        }
        progress
    }

    /// No display at all (library callers, benchmarks).
    pub fn hidden() -> Self {
        Progress {
            inner: Arc::new(Inner {
                bar: ProgressBar::hidden(),
                plain: false,
                jobs: 1,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Runs that will come, each running its workload for `planned`.
    pub fn plan(&self, runs: u32, planned: Duration) {
        let mut s = self.inner.state.lock().unwrap();
        s.total += runs as u64;
        s.planned_left_s += runs as f64 * planned.as_secs_f64();
        self.inner.bar.set_length(s.total);
        self.redraw(&s);
    }

    /// Runs planned but not going to happen (a skipped cell, an interrupted batch).
    pub fn unplan(&self, runs: u32, planned: Duration) {
        let mut s = self.inner.state.lock().unwrap();
        s.total = s.total.saturating_sub(runs as u64);
        s.planned_left_s = (s.planned_left_s - runs as f64 * planned.as_secs_f64()).max(0.0);
        self.inner.bar.set_length(s.total);
        self.redraw(&s);
    }

    pub fn start(&self, label: String, planned: Duration) -> Ticket {
        let mut s = self.inner.state.lock().unwrap();
        let id = s.next;
        s.next += 1;
        s.in_flight.insert(id, (label, Instant::now()));
        self.redraw(&s);
        Ticket { id, planned }
    }

    /// A run ended: its line goes above the bar (or to stderr), the tally moves.
    pub fn finish(&self, ticket: Ticket, line: &str, reported: bool) {
        let mut s = self.inner.state.lock().unwrap();
        let wall = s
            .in_flight
            .remove(&ticket.id)
            .map(|(_, t)| t.elapsed().as_secs_f64())
            .unwrap_or(0.0);
        let planned = ticket.planned.as_secs_f64();
        s.done += 1;
        s.reported += reported as u64;
        s.planned_left_s = (s.planned_left_s - planned).max(0.0);
        s.overhead_s += wall - planned;
        self.println(line);
        if self.inner.plain {
            eprintln!("lab: {}", s.tally(self.inner.jobs));
        }
        self.inner.bar.set_position(s.done);
        self.redraw(&s);
    }

    /// A line for the user, above the live display.
    pub fn println(&self, line: &str) {
        if self.inner.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.inner.bar.println(line);
        }
    }

    pub fn clear(&self) {
        self.inner.bar.finish_and_clear();
    }

    fn redraw(&self, s: &State) {
        if self.inner.bar.is_hidden() {
            return;
        }
        self.inner.bar.set_prefix(s.tally(self.inner.jobs));
        let flying: Vec<String> = s
            .in_flight
            .values()
            .map(|(label, t)| format!("{label} ({}s)", t.elapsed().as_secs()))
            .collect();
        self.inner.bar.set_message(if flying.is_empty() {
            "starting".to_string()
        } else {
            format!("running: {}", flying.join(", "))
        });
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
            ..Default::default()
        };
        // Nothing measured: 4 × 10 s of workload + 4 × the first guess.
        assert_eq!(s.eta_s(1), 40.0 + 4.0 * FIRST_GUESS_OVERHEAD_S);
        // Two runs done, each 10 s of workload in 16 s of wall time.
        s.done = 2;
        s.planned_left_s = 20.0;
        s.overhead_s = 12.0;
        assert_eq!(s.eta_s(1), 20.0 + 2.0 * 6.0);
        // Two VMs at a time halve it.
        assert_eq!(s.eta_s(2), 16.0);
        assert!(s
            .tally(1)
            .starts_with("2/4 runs, 0 with a kernel report, eta 32s"));
    }
}
