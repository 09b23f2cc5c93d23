//! The host <-> guest protocol: line-delimited JSON over a named virtio-serial port.
//!
//! Every line is one [`Frame`]: a protocol version `v` plus one message, tagged by `type`.
//! The guest speaks first (`hello`), the host answers with one `run-request`, then the guest
//! streams `started`, `progress` heartbeats, `thread-result`s and finally `done` (or `fatal`).
//! A guest restored from a snapshot said its hello to the host that saved it: the new host
//! asks for another (`greet`) before it sends the request.
//! Everything the guest has counted is on the wire before the next heartbeat, so a guest that
//! dies mid-run still leaves its counts with the host.

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bumped whenever a message changes shape; both sides refuse other versions.
pub const PROTOCOL_VERSION: u32 = 1;

/// The workloads this agent runs (`RunRequest::workload`): the host checks a scenario's
/// against it when the scenario is loaded. The agent's own table must name the same ones.
pub const WORKLOAD_NAMES: &[&str] = &[
    "epoll_close_race",
    "epoll_add_close_race",
    "syscall_count",
    "eventfd_notifier_race",
    "uapi_epoll",
    "exec",
    "selftest",
    "repro",
    "sequence",
    "hang",
    "hung_task",
    "provoke",
    "sysrq_crash",
];

/// The observation the agent reports its reseeding under: the seed and the first random
/// bytes the kernel gave after it (or why the pool could not be reseeded).
pub const RESEED_OBSERVATION: &str = "kernel-rng";

/// The observation the agent reports the kernel parameters it set under: for each, the
/// value asked for and what the kernel reads back (or why it could not be set).
pub const KERNEL_PARAMS_OBSERVATION: &str = "kernel-params";

/// Observations the agent makes of the run itself (not a workload's checks): never compared
/// between variants.
pub const AGENT_OBSERVATIONS: &[&str] = &[RESEED_OBSERVATION, KERNEL_PARAMS_OBSERVATION];

/// The observation the `selftest` workload reports its program's end under, unless the
/// request names another (`params.name`).
pub const SELFTEST_OBSERVATION: &str = "selftest";

/// Name of the virtio-serial port the agent talks on (`-device virtserialport,name=...`).
pub const AGENT_PORT_NAME: &str = "lab.agent";

/// Kernel command-line flag that turns the runner into the acceleration probe:
/// print [`PROBE_MARKER`] on the console and power off.
pub const PROBE_CMDLINE_FLAG: &str = "lab.probe=1";

/// What the probe prints on the console once userspace runs.
pub const PROBE_MARKER: &str = "lab-probe: userspace reached";

/// One line on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frame<M> {
    pub v: u32,
    #[serde(flatten)]
    pub msg: M,
}

/// Messages from the guest agent to the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum GuestMsg {
    /// First message once the port is open.
    Hello {
        kernel_release: String,
        nproc: u32,
        cmdline: String,
        /// True when the agent runs as PID 1 of the lab's initramfs.
        pid1: bool,
        agent_version: String,
    },
    /// The workload accepted the request and is about to start its threads.
    Started { workload: String, threads: u32 },
    /// Every worker thread is pinned and about to start its work: where each one runs. A
    /// schedule is armed only once this arrives.
    Positioned { threads: Vec<Position> },
    /// Heartbeat: sent whenever any thread's counter advanced since the last one.
    Progress { elapsed_ms: u64, counts: Vec<u64> },
    /// A line a test program printed (standard output and error, in the order written), with
    /// the guest's CLOCK_MONOTONIC in milliseconds when the agent read it: the clock of the
    /// kernel's console timestamps.
    /// A line longer than the agent sends whole comes in pieces: every piece after the
    /// first is `continued`, the tail of the line before it, never a line of its own.
    Output {
        at_ms: u64,
        line: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        continued: bool,
    },
    /// One worker thread finished.
    ThreadResult(ThreadResult),
    /// A named observation (uapi checks and the like): value as JSON.
    Observation {
        name: String,
        value: serde_json::Value,
    },
    /// The workload finished; the guest powers off next.
    Done { elapsed_ms: u64 },
    /// Something went wrong in the agent itself; the guest powers off next.
    Fatal { error: String },
}

/// Where one worker thread runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub thread: u32,
    pub role: String,
    /// The vCPU it is pinned to (`None`: not pinned).
    pub cpu: Option<u32>,
    /// Its thread id in the guest.
    pub tid: u32,
}

/// Final figures of one worker thread.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThreadResult {
    pub thread: u32,
    /// What the thread did in the workload (closer, poller, ...).
    #[serde(default)]
    pub role: String,
    /// The CPU the thread was pinned to, if it was pinned.
    pub pinned_cpu: Option<u32>,
    /// Every CPU the thread was observed running on (getcpu samples).
    pub cpus_seen: Vec<u32>,
    pub count: u64,
    /// Failed syscalls by errno name.
    pub errors: BTreeMap<String, u64>,
}

/// Messages from the host to the guest agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum HostMsg {
    RunRequest(RunRequest),
    /// Say hello again: the guest was restored from a snapshot and this is a new host.
    Greet,
    /// The workload's threads may start (they wait for this with `wait_for_go`).
    Go,
    /// End the workload now, as at its deadline: the host has nothing more to try in this run
    /// (a search's budget is spent). Heard once the threads went.
    Stop,
}

/// What the guest should run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRequest {
    pub workload: String,
    /// How long the workload runs, for time-bounded workloads (milliseconds on the wire).
    pub duration_ms: crate::quantity::WorkDuration,
    /// Interval between heartbeats.
    pub heartbeat_ms: u64,
    /// Worker threads; `None` = one per vCPU.
    pub threads: Option<crate::quantity::Threads>,
    /// Workload-specific parameters.
    #[serde(default)]
    pub params: serde_json::Map<String, serde_json::Value>,
    /// Threads in position wait for the host's `go` before they work (the host arms a
    /// schedule meanwhile); the duration counts from `go`.
    #[serde(default)]
    pub wait_for_go: bool,
    /// Mixed into the kernel's random pool (which is then reseeded) before the workload
    /// starts: guests restored from one snapshot start with the same pool, and must not
    /// make the same random choices.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Run-time kernel parameters to set before the workload, `module.param` → value
    /// (written to /sys/module/<module>/parameters/<param>); reported under
    /// [`KERNEL_PARAMS_OBSERVATION`] with what each reads back.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub kernel_params: std::collections::BTreeMap<String, String>,
}

impl RunRequest {
    /// What the agent refuses before running anything, checked by the host too before a
    /// guest boots: a workload it does not have, a workload parameter that is a quantity
    /// out of its range.
    pub fn check(&self) -> Result<(), String> {
        if !WORKLOAD_NAMES.contains(&self.workload.as_str()) {
            return Err(format!(
                "no workload named {:?}; the agent runs: {}",
                self.workload,
                WORKLOAD_NAMES.join(", ")
            ));
        }
        crate::quantity::check_params(&self.params).map_err(|e| e.to_string())
    }
}

/// Why a line could not be decoded.
#[derive(Debug)]
pub enum DecodeError {
    Json(serde_json::Error),
    Version { got: u32 },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Json(e) => write!(f, "malformed protocol line: {e}"),
            DecodeError::Version { got } => write!(
                f,
                "protocol version {got} on the wire, this build speaks {PROTOCOL_VERSION}"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Encode one message as a line (with the trailing newline).
pub fn encode<M: Serialize>(msg: &M) -> Vec<u8> {
    let frame = Frame {
        v: PROTOCOL_VERSION,
        msg,
    };
    let mut line = serde_json::to_vec(&frame).expect("protocol messages always serialize");
    line.push(b'\n');
    line
}

/// Decode one line (without or with its newline). Never panics on arbitrary bytes.
pub fn decode<M: DeserializeOwned>(line: &[u8]) -> Result<M, DecodeError> {
    #[derive(Deserialize)]
    struct Version {
        v: u32,
    }
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let version: Version = serde_json::from_slice(line).map_err(DecodeError::Json)?;
    if version.v != PROTOCOL_VERSION {
        return Err(DecodeError::Version { got: version.v });
    }
    let frame: Frame<M> = serde_json::from_slice(line).map_err(DecodeError::Json)?;
    Ok(frame.msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_messages_round_trip() {
        let msgs = vec![
            GuestMsg::Hello {
                kernel_release: "6.12.117".into(),
                nproc: 2,
                cmdline: "console=ttyS0".into(),
                pid1: true,
                agent_version: "0.1.0".into(),
            },
            GuestMsg::Progress {
                elapsed_ms: 500,
                counts: vec![1, 2],
            },
            GuestMsg::ThreadResult(ThreadResult {
                thread: 1,
                role: "closer".into(),
                pinned_cpu: Some(1),
                cpus_seen: vec![1],
                count: 42,
                errors: [("EBADF".to_string(), 3)].into_iter().collect(),
            }),
            GuestMsg::Output {
                at_ms: 4619,
                line: "not ok 1 global.epoll1 # \u{1b}[0m".into(),
                continued: false,
            },
            GuestMsg::Output {
                at_ms: 4620,
                line: "Bail out! the tail of a cut line".into(),
                continued: true,
            },
            GuestMsg::Positioned {
                threads: vec![Position {
                    thread: 0,
                    role: "poller".into(),
                    cpu: Some(1),
                    tid: 91,
                }],
            },
            GuestMsg::Done { elapsed_ms: 5000 },
        ];
        for msg in msgs {
            let line = encode(&msg);
            assert_eq!(line.last(), Some(&b'\n'));
            assert_eq!(decode::<GuestMsg>(&line).unwrap(), msg);
        }
    }

    #[test]
    fn wire_form_is_tagged_and_versioned() {
        let line = encode(&GuestMsg::Done { elapsed_ms: 7 });
        let text = String::from_utf8(line).unwrap();
        assert_eq!(text, "{\"v\":1,\"type\":\"done\",\"elapsed_ms\":7}\n");
    }

    #[test]
    fn other_versions_are_refused() {
        let err = decode::<GuestMsg>(br#"{"v":99,"type":"done","elapsed_ms":1}"#).unwrap_err();
        assert!(matches!(err, DecodeError::Version { got: 99 }), "{err}");
    }

    proptest::proptest! {
        /// Whatever arrives on the port, decoding returns, and what decodes re-encodes to a
        /// line that decodes to the same message.
        #[test]
        fn decoder_takes_any_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            if let Ok(msg) = decode::<GuestMsg>(&bytes) {
                proptest::prop_assert_eq!(decode::<GuestMsg>(&encode(&msg)).unwrap(), msg);
            }
            let _ = decode::<HostMsg>(&bytes);
        }

        #[test]
        fn decoder_takes_json_shaped_lines(
            ty in "hello|started|positioned|progress|output|thread-result|observation|done|fatal|run-request|x",
            body in "[ -~]{0,80}",
        ) {
            let line = format!("{{\"v\":1,\"type\":\"{ty}\",{body}}}");
            let _ = decode::<GuestMsg>(line.as_bytes());
            let _ = decode::<HostMsg>(line.as_bytes());
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for junk in [&b""[..], b"\xff\xfe", b"{", b"{\"v\":1}", b"[1,2]", b"null"] {
            assert!(decode::<GuestMsg>(junk).is_err());
        }
    }
}
