//! The one typed outcome every VM run ends in, and the record written as `outcome.json`.

use runner::protocol::ThreadResult;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How a run ended. Exactly one per run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Outcome {
    /// The agent reported `done` and the guest powered off.
    Completed,
    /// The kernel panicked (console `Kernel panic - not syncing` or a pvpanic event).
    GuestPanic { message: String },
    /// Neither the console nor the agent said anything within the boot bound.
    TimeoutNoOutput { after_ms: u64 },
    /// The guest went quiet: no heartbeat (or, while booting, no agent) within the bound.
    TimeoutNoHeartbeat { after_ms: u64, last_heard_ms: u64 },
    /// The run was still making progress when the overall `--timeout` expired.
    Timeout { after_ms: u64 },
    /// The agent vanished or spoke nonsense: channel closed, guest off before `done`,
    /// protocol error.
    AgentLost { detail: String },
    /// The agent itself reported a fatal error (unknown workload, missing device, ...).
    AgentError { error: String },
    /// QEMU (or vng) exited on its own, not because the guest powered off.
    QemuExited {
        status: Option<i32>,
        signal: Option<i32>,
        stderr: String,
    },
    /// The user interrupted `lab` (Ctrl-C, SIGTERM).
    Interrupted,
    /// A console scanner asked to end the run (a kernel report, with `stop_on_report`).
    StoppedOnReport { report: String },
    /// The run's records (console.log, agent.jsonl) could not be written — a full disk —
    /// so the run was stopped at once: what it did cannot be known.
    RecordFailed { detail: String },
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::GuestPanic { .. } => "guest-panic",
            Outcome::TimeoutNoOutput { .. } => "timeout-no-output",
            Outcome::TimeoutNoHeartbeat { .. } => "timeout-no-heartbeat",
            Outcome::Timeout { .. } => "timeout",
            Outcome::AgentLost { .. } => "agent-lost",
            Outcome::AgentError { .. } => "agent-error",
            Outcome::QemuExited { .. } => "qemu-exited",
            Outcome::Interrupted => "interrupted",
            Outcome::StoppedOnReport { .. } => "stopped-on-report",
            Outcome::RecordFailed { .. } => "record-failed",
        }
    }

    /// One line for humans.
    pub fn summary(&self) -> String {
        let detail = match self {
            Outcome::Completed | Outcome::Interrupted => String::new(),
            Outcome::GuestPanic { message } => message.clone(),
            Outcome::TimeoutNoOutput { after_ms } => {
                format!("nothing on the console or agent port after {after_ms} ms")
            }
            Outcome::TimeoutNoHeartbeat {
                after_ms,
                last_heard_ms,
            } => format!("silent since {last_heard_ms} ms, gave up at {after_ms} ms"),
            Outcome::Timeout { after_ms } => format!("still running at {after_ms} ms"),
            Outcome::AgentLost { detail } => detail.clone(),
            Outcome::AgentError { error } => error.clone(),
            Outcome::StoppedOnReport { report } => report.clone(),
            Outcome::RecordFailed { detail } => detail.clone(),
            Outcome::QemuExited {
                status,
                signal,
                stderr,
            } => {
                let how = match (status, signal) {
                    (_, Some(sig)) => format!("killed by signal {sig}"),
                    (Some(code), None) => format!("exit status {code}"),
                    (None, None) => "unknown status".into(),
                };
                let last = stderr
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                format!("{how} {last}").trim_end().to_string()
            }
        };
        if detail.is_empty() {
            self.name().to_string()
        } else {
            format!("{}: {detail}", self.name())
        }
    }
}

#[cfg(test)]
impl Outcome {
    /// One outcome of each kind, for tables over every way a run ends.
    pub(crate) fn one_of_each() -> Vec<Outcome> {
        vec![
            Outcome::Completed,
            Outcome::GuestPanic {
                message: "Kernel panic - not syncing: x".into(),
            },
            Outcome::TimeoutNoOutput { after_ms: 120_000 },
            Outcome::TimeoutNoHeartbeat {
                after_ms: 40_000,
                last_heard_ms: 10_000,
            },
            Outcome::Timeout { after_ms: 200_000 },
            Outcome::AgentLost {
                detail: "channel closed".into(),
            },
            Outcome::AgentError {
                error: "unknown workload".into(),
            },
            Outcome::QemuExited {
                status: Some(1),
                signal: None,
                stderr: String::new(),
            },
            Outcome::Interrupted,
            Outcome::StoppedOnReport {
                report: "kasan report: BUG: KASAN".into(),
            },
            Outcome::RecordFailed {
                detail: "cannot write console.log: No space left on device".into(),
            },
        ]
    }
}

/// Milliseconds since QEMU was spawned at which things happened, and what came before.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Spent by `lab` before spawning QEMU (accelerator verdict, initramfs).
    pub prepare_ms: u64,
    pub console_first_ms: Option<u64>,
    /// A restored guest: when its saved state was loaded and its vCPUs ran again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_ms: Option<u64>,
    /// The agent's hello: after its boot, or after the restore when the host asked again.
    pub agent_hello_ms: Option<u64>,
    pub workload_started_ms: Option<u64>,
    pub done_ms: Option<u64>,
    pub ended_ms: u64,
}

/// How a run's guest came to be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartKind {
    /// QEMU booted the kernel.
    #[default]
    Booted,
    /// QEMU loaded a snapshot of a guest booted earlier, its agent idle and ready.
    Restored,
}

/// How a run's guest started, and why it booted when snapshots were asked for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Start {
    pub how: StartKind,
    /// The snapshot's key (its directory under the cache's `snapshots/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// Why the run booted although snapshots were on, or what went wrong before a restore
    /// that worked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What the guest agent said about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuestInfo {
    pub kernel_release: String,
    pub nproc: u32,
    pub cmdline: String,
    pub pid1: bool,
    pub agent_version: String,
}

/// A line the workload's program printed (the `selftest` workload), as the agent carried it:
/// milliseconds since the agent's start, and the line.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramLine {
    pub at_ms: u64,
    pub line: String,
}

/// What a machine record's `tests` holds before the layer above has read the program's
/// output: nothing (the machine knows no test format).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Unread {}

/// `outcome.json`, and the record of a run in runs.json. `Tests` is what the program's output
/// (the `selftest` workload) was read as: [`Unread`] as the machine leaves it, per-test results
/// once `run/` has read it (see [`RunRecord::read_tests`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord<Tests = Unread> {
    pub outcome: Outcome,
    /// When QEMU was started (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    pub backend: String,
    pub accel: String,
    pub kernel: String,
    pub cpus: u32,
    pub memory_mib: u64,
    pub workload: String,
    pub duration_ms: u64,
    /// Booted or restored from a snapshot (records from before snapshots: booted).
    #[serde(default)]
    pub start: Start,
    /// The seed the run request carried (the guest reseeded its random pool with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    pub timing: Timing,
    pub guest: Option<GuestInfo>,
    /// Host thread id of each vCPU (QMP query-cpus-fast), by vCPU index.
    pub vcpu_threads: BTreeMap<u32, i64>,
    /// Last per-thread counts seen in a heartbeat.
    pub last_progress: Vec<u64>,
    pub threads: Vec<ThreadResult>,
    pub observations: BTreeMap<String, serde_json::Value>,
    pub console_lines: u64,
    /// Per-test results of a test program's output (the `selftest` workload).
    #[serde(default = "Option::default", skip_serializing_if = "Option::is_none")]
    pub tests: Option<Tests>,
    /// What a schedule executed: every attempt, applied or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<super::schedule::ScheduleRecord>,
    /// The program's output, for the layer above to read (agent.jsonl keeps it on disk).
    #[serde(skip)]
    pub program_output: Vec<ProgramLine>,
}

impl RunRecord<Unread> {
    /// The record with the program's output read by `read` (none when it printed nothing).
    pub fn read_tests<T>(self, read: impl FnOnce(&Self) -> T) -> RunRecord<T> {
        let tests = match self.program_output.is_empty() {
            true => None,
            false => Some(read(&self)),
        };
        RunRecord {
            tests,
            outcome: self.outcome,
            started: self.started,
            backend: self.backend,
            accel: self.accel,
            kernel: self.kernel,
            cpus: self.cpus,
            memory_mib: self.memory_mib,
            workload: self.workload,
            duration_ms: self.duration_ms,
            start: self.start,
            seed: self.seed,
            timing: self.timing,
            guest: self.guest,
            vcpu_threads: self.vcpu_threads,
            last_progress: self.last_progress,
            threads: self.threads,
            observations: self.observations,
            console_lines: self.console_lines,
            schedule: self.schedule,
            program_output: self.program_output,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_names_match_their_wire_form() {
        let all = Outcome::one_of_each();
        let names: std::collections::BTreeSet<&str> = all.iter().map(Outcome::name).collect();
        assert_eq!(names.len(), all.len(), "one of each kind");
        for outcome in all {
            let json = serde_json::to_value(&outcome).unwrap();
            assert_eq!(json["kind"], outcome.name());
            let back: Outcome = serde_json::from_value(json).unwrap();
            assert_eq!(back, outcome);
        }
    }

    #[test]
    fn qemu_exit_summary_names_the_signal_and_last_stderr_line() {
        let o = Outcome::QemuExited {
            status: None,
            signal: Some(9),
            stderr: "warning: x\nqemu: fatal thing\n\n".into(),
        };
        assert_eq!(
            o.summary(),
            "qemu-exited: killed by signal 9 qemu: fatal thing"
        );
    }
}
