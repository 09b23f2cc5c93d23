//! What has happened so far in a run, and the outcome it adds up to once QEMU is gone.

use super::WIND_DOWN;
use crate::vm::outcome::{GuestInfo, Outcome, ProgramLine, Timing};
use runner::protocol::GuestMsg;
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Instant;

/// How QEMU's process ended, as its waiter saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Exit {
    Status(ExitStatus),
    /// waitpid itself failed: the status is unknown (never read as "exit status 0").
    WaitFailed(String),
}

/// What has happened so far in a run.
#[derive(Default)]
pub struct State {
    pub timing: Timing,
    pub guest: Option<GuestInfo>,
    pub last_heard: Option<Instant>,
    pub last_progress: Vec<u64>,
    pub threads: Vec<runner::protocol::ThreadResult>,
    pub observations: BTreeMap<String, serde_json::Value>,
    pub done: bool,
    pub panic: Option<String>,
    pub fatal: Option<String>,
    pub guest_shutdown: Option<String>,
    /// Decided by the loop (timeouts, protocol errors, interrupts) before QEMU is gone.
    pub decided: Option<Outcome>,
    /// When the guest is expected to be gone by (after done / panic / fatal).
    pub wind_down_until: Option<Instant>,
    /// A scanner asked to stop the run.
    pub report_stop: Option<String>,
    /// A test program's output (the `selftest` workload), line by line.
    pub output: Vec<ProgramLine>,
}

impl State {
    pub fn ms(start: Instant) -> u64 {
        start.elapsed().as_millis() as u64
    }

    pub fn on_guest(&mut self, msg: GuestMsg, start: Instant) {
        self.last_heard = Some(Instant::now());
        match msg {
            GuestMsg::Hello {
                kernel_release,
                nproc,
                cmdline,
                pid1,
                agent_version,
            } => {
                self.timing.agent_hello_ms = Some(Self::ms(start));
                self.guest = Some(GuestInfo {
                    kernel_release,
                    nproc,
                    cmdline,
                    pid1,
                    agent_version,
                });
            }
            GuestMsg::Started { .. } => self.timing.workload_started_ms = Some(Self::ms(start)),
            GuestMsg::Progress { counts, .. } => self.last_progress = counts,
            // For the schedule's controller (the run loop hands it over).
            GuestMsg::Positioned { .. } => {}
            GuestMsg::ThreadResult(result) => self.threads.push(result),
            // The tail of a cut line is kept in agent.jsonl, not read as a line of its own.
            GuestMsg::Output {
                continued: true, ..
            } => {}
            GuestMsg::Output { at_ms, line, .. } => self.output.push(ProgramLine { at_ms, line }),
            GuestMsg::Observation { name, value } => {
                self.observations.insert(name, value);
            }
            GuestMsg::Done { .. } => {
                self.timing.done_ms = Some(Self::ms(start));
                self.done = true;
                self.wind_down();
            }
            GuestMsg::Fatal { error } => {
                self.fatal.get_or_insert(error);
                self.wind_down();
            }
        }
    }

    pub fn wind_down(&mut self) {
        self.wind_down_until
            .get_or_insert_with(|| Instant::now() + WIND_DOWN);
    }

    /// The outcome once QEMU is gone.
    pub fn outcome(&self, exit: Option<&Exit>, stderr: &str) -> Outcome {
        if let Some(message) = &self.panic {
            return Outcome::GuestPanic {
                message: message.clone(),
            };
        }
        if let Some(decided) = &self.decided {
            return decided.clone();
        }
        if self.done {
            return Outcome::Completed;
        }
        if let Some(report) = &self.report_stop {
            return Outcome::StoppedOnReport {
                report: report.clone(),
            };
        }
        if let Some(error) = &self.fatal {
            return Outcome::AgentError {
                error: error.clone(),
            };
        }
        if let Some(reason) = &self.guest_shutdown {
            return Outcome::AgentLost {
                detail: format!("the guest went down ({reason}) before the agent reported done"),
            };
        }
        let status = match exit {
            Some(Exit::Status(s)) => Some(*s),
            _ => None,
        };
        let mut stderr = stderr.to_string();
        if let Some(Exit::WaitFailed(e)) = exit {
            stderr.push_str(&format!("lab: waiting for QEMU failed: {e}\n"));
        }
        Outcome::QemuExited {
            status: status.and_then(|s| s.code()),
            signal: status.and_then(|s| s.signal()),
            stderr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every way a run can end, each on top of all those below it: the first in the list
    /// that holds decides the outcome.
    #[test]
    fn the_outcome_follows_one_priority_order() {
        let exit = Exit::Status(ExitStatus::from_raw(0));
        type Step = (&'static str, fn(&mut State));
        let steps: [Step; 7] = [
            ("qemu-exited", |_| {}),
            ("agent-lost", |s| {
                s.guest_shutdown = Some("guest-shutdown".into())
            }),
            ("agent-error", |s| s.fatal = Some("unknown workload".into())),
            ("stopped-on-report", |s| {
                s.report_stop = Some("kasan".into())
            }),
            ("completed", |s| s.done = true),
            ("interrupted", |s| s.decided = Some(Outcome::Interrupted)),
            ("guest-panic", |s| s.panic = Some("Kernel panic".into())),
        ];
        let mut state = State::default();
        for (name, add) in steps {
            add(&mut state);
            assert_eq!(state.outcome(Some(&exit), "").name(), name);
        }
    }

    /// The tail of a cut line (a continued piece) is not a line of the program's output, so
    /// it is never read as TAP: neither a forged `Bail out!` nor a forged `ok`.
    #[test]
    fn a_continued_piece_is_not_a_tap_line() {
        let mut state = State::default();
        let start = Instant::now();
        let out = |line: &str, continued| GuestMsg::Output {
            at_ms: 1,
            line: line.into(),
            continued,
        };
        for msg in [
            out("TAP version 13", false),
            out("1..1", false),
            out(&format!("# {}", "x".repeat(4094)), false),
            out("Bail out! phantom", true),
            out(&format!("# {}", "y".repeat(4094)), false),
            out("ok 1 forged", true),
            out("not ok 1 real", false),
        ] {
            state.on_guest(msg, start);
        }
        let lines: Vec<&str> = state.output.iter().map(|l| l.line.as_str()).collect();
        assert_eq!(lines.len(), 5);
        assert!(!lines
            .iter()
            .any(|l| l.contains("phantom") || l.contains("forged")));
        assert_eq!(lines[4], "not ok 1 real");
    }

    #[test]
    fn a_failed_wait_is_not_an_exit_status_of_zero() {
        let o = State::default().outcome(Some(&Exit::WaitFailed("ECHILD".into())), "");
        let Outcome::QemuExited {
            status,
            signal,
            stderr,
        } = &o
        else {
            panic!("{o:?}");
        };
        assert_eq!((*status, *signal), (None, None));
        assert!(
            stderr.contains("waiting for QEMU failed: ECHILD"),
            "{stderr}"
        );
        assert!(o.summary().contains("unknown status"), "{}", o.summary());
    }
}
