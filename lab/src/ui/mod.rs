//! The only place that prints. It installs itself as the sink of the engine's events and
//! shows them: on a terminal as live displays (builds, runs) with lines above them; with
//! `CI=true` or when stderr is not a terminal, as plain lines. Results of a command (tables,
//! summaries, JSON) go to stdout through [`print`].

pub mod batch;
pub mod bisect;
mod build;
pub mod cache;
pub mod canary;
pub mod compare;
pub mod explore;
pub mod listing;
pub mod record;
mod runs;

use crate::events::{self, Event};
use indicatif::MultiProgress;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// Plain lines instead of live displays.
pub fn plain() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || !std::io::IsTerminal::is_terminal(&std::io::stderr())
}

struct Ui {
    /// None: plain lines.
    multi: Option<MultiProgress>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    runs: runs::State,
    live_runs: Option<runs::Live>,
    builds: BTreeMap<String, build::Build>,
}

impl Ui {
    /// A line for the user, above any live display.
    fn line(&self, text: &str) {
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(text);
            }
            None => eprintln!("{text}"),
        }
    }

    fn handle(&self, event: &Event) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            Event::Note(text) => self.line(&format!("lab: {text}")),
            Event::Warning(text) => self.line(&format!("lab: warning: {text}")),
            Event::KvmUnusable { reason } => self.line(&format!(
                "lab: KVM is not usable here ({reason}); using TCG (-accel tcg,thread=multi)"
            )),
            Event::Extracting { tarball } => {
                self.line(&format!("lab: extracting {} (once)", tarball.display()))
            }
            Event::BuildStarted { label, expected } => {
                let b = build::Build::new(self.multi.as_ref(), label, *expected);
                s.builds.insert(label.clone(), b);
            }
            Event::BuildProgress {
                label,
                compiled,
                elapsed,
            } => {
                let line = s
                    .builds
                    .get_mut(label)
                    .and_then(|b| b.progress(label, *compiled, *elapsed));
                if let Some(line) = line {
                    self.line(&line);
                }
            }
            Event::BuildEnded { label } => {
                if let Some(b) = s.builds.remove(label) {
                    b.finish();
                }
            }
            Event::RunsPlanned {
                batch,
                runs,
                each,
                jobs,
            } => {
                s.runs.planned(batch, *runs, *each, *jobs);
                self.live(&mut s);
            }
            Event::RunsDropped { batch, runs } => {
                s.runs.dropped(batch, *runs);
                self.live(&mut s);
            }
            Event::RunStarted { id, batch, label } => {
                s.runs.started(*id, batch, label.clone());
                self.live(&mut s);
            }
            Event::RunEnded { id, run } => {
                s.runs.ended(*id, run.kernel_report);
                self.line(&batch::run_line(run));
                if self.multi.is_none() {
                    self.line(&format!("lab: {}", s.runs.tally()));
                }
                self.live(&mut s);
            }
            Event::CanaryRan {
                kernel,
                passed,
                silent,
                file,
                elapsed,
            } => self.line(&canary::ran(kernel, *passed, silent, file, *elapsed)),
            Event::Explored {
                attempts,
                distinct,
                applied,
                given_up,
                left,
                eta,
            } => self.line(&explore::progress(
                *attempts,
                (*distinct, *applied, *given_up),
                left,
                *eta,
            )),
            Event::KernelReady { label, kernel } => {
                self.line(&format!("lab: {label}: {}", build::ready(kernel)))
            }
            Event::RunsReused { label, runs, dir } => self.line(&format!(
                "lab: {label}: reusing {runs} stored runs from {}",
                dir.display()
            )),
            Event::SnapshotMade { .. } => self.line(&snapshot_made(event)),
            Event::RestoreFailed { label, why } => {
                self.line(&format!("lab: warning: {label}: {why}"))
            }
            Event::SnapshotOff { label, why } => self.line(&format!(
                "lab: warning: {label}: no snapshot, every run boots: {why}"
            )),
            Event::RunsDone => {
                if let Some(live) = s.live_runs.take() {
                    live.finish();
                }
                s.runs = runs::State::default();
            }
        }
    }

    /// The live runs display, created on the first runs event, redrawn.
    fn live(&self, s: &mut State) {
        let Some(multi) = &self.multi else { return };
        let live = s.live_runs.get_or_insert_with(|| runs::Live::new(multi));
        live.redraw(&s.runs);
    }
}

/// Show this process's events from now on.
pub fn install() {
    let ui = Arc::new(Ui {
        multi: (!plain()).then(MultiProgress::new),
        state: Mutex::new(State::default()),
    });
    if ui.multi.is_some() {
        // The in-flight runs' times and the ETA move between events too.
        let weak: Weak<Ui> = Arc::downgrade(&ui);
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_secs(1));
            let Some(ui) = weak.upgrade() else { break };
            let s = ui.state.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(live) = &s.live_runs {
                live.redraw(&s.runs);
            }
        });
    }
    events::install(move |e| ui.handle(e));
}

/// A command's result, on stdout.
pub fn print(text: &str) {
    print!("{text}");
}

/// An error that ends `lab`.
pub fn error(text: &str) {
    eprintln!("lab: error: {text}");
}

/// The last words of an interrupted `lab`.
pub fn interrupted() {
    eprintln!("lab: interrupted");
}

/// What a night's end shows (`lab nightly`, `lab merge`): its summary and where its files are.
pub fn night(results: &crate::results::night::NightResults, out: &std::path::Path) -> String {
    format!(
        "{}\nnight: {}\nreport: {}\n",
        crate::results::render::night::summary_md(results),
        out.display(),
        out.join("report.html").display()
    )
}

/// The line for [`Event::SnapshotMade`].
fn snapshot_made(event: &Event) -> String {
    let Event::SnapshotMade {
        label,
        key,
        boot_ms,
        stream_bytes,
        file_bytes,
        save_ms,
        replaced,
        first_boot_failed,
    } = event
    else {
        unreachable!("called for SnapshotMade")
    };
    let note = |what: &str, why: &Option<String>| {
        why.as_ref()
            .map(|why| format!(" ({what}: {why})"))
            .unwrap_or_default()
    };
    format!(
        "lab: {label}: snapshot {key} made: booted in {:.1} s, saved {} MiB ({} MiB compressed) \
         in {:.1} s{}{}",
        *boot_ms as f64 / 1000.0,
        stream_bytes >> 20,
        file_bytes >> 20,
        *save_ms as f64 / 1000.0,
        note("replacing the one before", replaced),
        note("at the second boot; the first failed", first_boot_failed),
    )
}
