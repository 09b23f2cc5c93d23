//! The runs display (a batch, a comparison, a night). On a terminal: a live bar with runs
//! done of all, runs that printed a kernel report so far, an ETA, and the runs in flight.
//! Plain lines otherwise: each finished run's line and a tally after it.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One batch's runs (a cell of a night, a variant of a comparison): alike in what they take.
#[derive(Default)]
struct Batch {
    /// Runs planned and not started.
    left: u64,
    /// Each run's planned workload time.
    each_s: f64,
    /// Wall times of its finished runs.
    walls: Vec<f64>,
}

#[derive(Default)]
pub struct State {
    total: u64,
    done: u64,
    reported: u64,
    /// VMs at a time, for the ETA.
    jobs: usize,
    batches: BTreeMap<String, Batch>,
    /// What a run adds to its workload (boot or restore, power-off), measured on finished
    /// runs that ran their whole workload (no kernel report stopped them).
    overheads: Vec<f64>,
    /// Wall times of finished runs a kernel report may have cut short.
    reported_walls: Vec<f64>,
    /// Runs in flight: batch, label, start.
    in_flight: BTreeMap<u64, (String, String, Instant)>,
}

fn median(v: &[f64]) -> Option<f64> {
    crate::results::stats::median(v.to_vec())
}

impl State {
    /// What a run adds to its workload (restore or boot, power-off): the median measured on
    /// runs no report cut short, else (every finished run reported) the median of their
    /// walls, an upper bound. None until a run has finished.
    fn overhead_s(&self) -> Option<f64> {
        median(&self.overheads).or_else(|| median(&self.reported_walls))
    }

    /// What one more run of `batch` will take, as a range: the median of its finished runs
    /// when it has some (a racy cell stops early, a clean one runs its whole workload), else
    /// from the overhead alone (a run that stops at once) to its whole workload and the
    /// overhead. None until a run has finished: nothing measured, nothing claimed.
    fn expected_s(&self, batch: &Batch) -> Option<(f64, f64)> {
        if let Some(m) = median(&batch.walls) {
            return Some((m, m));
        }
        let overhead = self.overhead_s()?;
        Some((overhead, batch.each_s + overhead))
    }

    /// Seconds until every planned run is done (least, most), the runs shared among `jobs`
    /// VMs; none before the first run finished. The two meet once every batch with runs to
    /// come has a finished run.
    fn eta_s(&self) -> Option<(f64, f64)> {
        let (mut low, mut high) = (0.0, 0.0);
        for b in self.batches.values() {
            let (l, h) = self.expected_s(b)?;
            low += b.left as f64 * l;
            high += b.left as f64 * h;
        }
        for (batch, _, started) in self.in_flight.values() {
            let (l, h) = self.batches.get(batch).and_then(|b| self.expected_s(b))?;
            let ran = started.elapsed().as_secs_f64();
            low += (l - ran).max(0.0);
            high += (h - ran).max(0.0);
        }
        let jobs = self.jobs.max(1) as f64;
        Some((low / jobs, high / jobs))
    }

    pub fn tally(&self) -> String {
        let show = |s: f64| humantime::format_duration(Duration::from_secs(s.round() as u64));
        let eta = match self.eta_s() {
            None => "after the first run".to_string(),
            Some((low, high)) if high - low < 1.0 => show(high).to_string(),
            Some((low, high)) => format!("{}–{} (cells not run yet)", show(low), show(high)),
        };
        format!(
            "{}/{} runs, {} with a kernel report, eta {eta}",
            self.done, self.total, self.reported
        )
    }

    pub fn planned(&mut self, batch: &str, runs: u32, each: Duration, jobs: usize) {
        self.total += runs as u64;
        let b = self.batches.entry(batch.to_string()).or_default();
        b.left += runs as u64;
        b.each_s = each.as_secs_f64();
        self.jobs = self.jobs.max(jobs);
    }

    pub fn dropped(&mut self, batch: &str, runs: u32) {
        self.total = self.total.saturating_sub(runs as u64);
        if let Some(b) = self.batches.get_mut(batch) {
            b.left = b.left.saturating_sub(runs as u64);
        }
    }

    pub fn started(&mut self, id: u64, batch: &str, label: String) {
        if let Some(b) = self.batches.get_mut(batch) {
            b.left = b.left.saturating_sub(1);
        }
        self.in_flight
            .insert(id, (batch.to_string(), label, Instant::now()));
    }

    pub fn ended(&mut self, id: u64, kernel_report: bool) {
        let Some((batch, _, started)) = self.in_flight.remove(&id) else {
            return;
        };
        self.finished(&batch, started.elapsed().as_secs_f64(), kernel_report);
    }

    /// A run of `batch` finished after `wall` seconds.
    fn finished(&mut self, batch: &str, wall: f64, kernel_report: bool) {
        self.done += 1;
        self.reported += kernel_report as u64;
        if let Some(b) = self.batches.get_mut(batch) {
            b.walls.push(wall);
            if kernel_report {
                self.reported_walls.push(wall);
            } else {
                self.overheads.push((wall - b.each_s).max(0.0));
            }
        }
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
            .map(|(_, label, t)| format!("{label} ({}s)", t.elapsed().as_secs()))
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

    /// A night as it was recorded (tests/data/night-runs.json, made by bench/eta-fixture.py:
    /// its runs in the order they ran, one VM at a time, each with its cell's planned
    /// workload, its wall time and whether it printed a kernel report), replayed: after
    /// the first run, what the remaining runs really took lies in the ETA's range at every
    /// step, the range is never 0 while a minute or more is left, and once every cell to come
    /// has run once the ETA is one figure within a factor of two. Before the first run it is
    /// not shown.
    #[test]
    fn the_eta_of_a_recorded_night_follows_what_the_runs_took() {
        let text = include_str!("../../tests/data/night-runs.json");
        let night: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut s = State::default();
        let mut order = Vec::new();
        for r in night["runs"].as_array().unwrap() {
            let batch = r["cell"].as_str().unwrap().to_string();
            let each = Duration::from_millis(r["duration_ms"].as_u64().unwrap());
            s.planned(&batch, 1, each, 1);
            order.push((
                batch,
                r["wall_s"].as_f64().unwrap(),
                r["reported"].as_bool().unwrap(),
            ));
        }
        assert_eq!(s.eta_s(), None);
        assert!(s.tally().ends_with("eta after the first run"));
        let mut worst: f64 = 1.0;
        for (i, (batch, wall, reported)) in order.iter().enumerate() {
            if let Some(b) = s.batches.get_mut(batch) {
                b.left -= 1;
            }
            s.finished(batch, *wall, *reported);
            let truth: f64 = order[i + 1..].iter().map(|(_, w, _)| w).sum();
            let (low, high) = s.eta_s().unwrap();
            if truth < 60.0 {
                continue;
            }
            assert!(high > 0.0, "step {i}: eta 0 with {truth:.0} s left");
            if high - low >= 1.0 {
                // Cells still to run once: what is left lies in the range (a tenth of
                // slack: a cell's first run also makes its snapshot).
                assert!(
                    low <= truth * 1.1 && truth <= high * 1.1,
                    "step {i}: eta {low:.0}–{high:.0} s, truth {truth:.0} s"
                );
            } else {
                // Every cell to come has run once: one figure, within a factor of two.
                let ratio = (high / truth).max(truth / high);
                worst = worst.max(ratio);
                assert!(
                    ratio <= 2.0,
                    "step {i}: eta {high:.0} s, truth {truth:.0} s"
                );
            }
        }
        eprintln!("worst eta/truth ratio once every cell had run: {worst:.2}");
    }

    /// The old estimate's two faults, planted: a race that stops at its first report must not
    /// make the overhead negative (eta 0 with half the night left), nor a planned 30 s
    /// workload count in full for a cell whose runs stop after 1 s.
    #[test]
    fn early_stops_neither_zero_nor_inflate_the_eta() {
        let mut s = State::default();
        s.planned("race", 10, Duration::from_secs(30), 1);
        s.planned("clean", 10, Duration::from_secs(5), 1);
        for _ in 0..5 {
            s.batches.get_mut("race").unwrap().left -= 1;
            s.finished("race", 12.0, true);
        }
        s.batches.get_mut("clean").unwrap().left -= 1;
        s.finished("clean", 15.0, false);
        // 5 races × 12 s + 9 clean × 15 s.
        let both = 5.0 * 12.0 + 9.0 * 15.0;
        assert_eq!(s.eta_s(), Some((both, both)));
    }
}
