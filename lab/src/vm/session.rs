//! One VM run, from spawning QEMU to `outcome.json`: the run loop that listens to the console,
//! the agent, QMP, the QEMU process, the clock and the user, and decides the outcome.

use super::accel::{self, Accel, AccelChoice};
use super::agent::{self, AgentEvent, AgentWriter};
use super::console::{self, Console, ConsoleEvent, ConsoleScanner};
use super::outcome::{GuestInfo, Outcome, RunRecord, Timing};
use super::qemu::{self, Machine, Sockets};
use super::qmp::{Qmp, QmpEvent};
use super::{initramfs, process, vng};
use anyhow::{bail, Context, Result};
use runner::protocol::{GuestMsg, HostMsg, RunRequest};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio::time::sleep_until;

/// Which program starts the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// qemu-system-x86_64 with the lab's initramfs (the agent is PID 1).
    Qemu,
    /// virtme-ng over the host's root filesystem (the agent runs under vng's init).
    Vng,
}

/// Everything one run needs.
#[derive(Debug, Clone)]
pub struct BootSpec {
    pub kernel: PathBuf,
    pub cpus: u32,
    pub memory_mib: u64,
    pub accel: AccelChoice,
    pub backend: Backend,
    pub cmdline_extra: String,
    pub request: RunRequest,
    /// From QEMU's start to the agent's hello.
    pub boot_timeout: Duration,
    /// Longest silence from the agent once it is up.
    pub heartbeat_timeout: Duration,
    /// Whole run, from QEMU's start; `None` = boot + duration + heartbeat bound.
    pub timeout: Option<Duration>,
    pub run_dir: PathBuf,
    /// Extra files for the initramfs: (guest path, host file).
    pub extra_files: Vec<(String, PathBuf)>,
}

/// How long the guest gets to power itself off after `done`, a panic or a fatal error.
const WIND_DOWN: Duration = Duration::from_secs(10);
/// How long the console gets to finish a report before a stop-on-report run is ended.
const REPORT_DRAIN: Duration = Duration::from_secs(3);
/// How long each step of stopping QEMU (powerdown, quit) is given before the next.
const STOP_STEP: Duration = Duration::from_secs(3);
/// How long QEMU gets to create its sockets.
const SOCKET_WAIT: Duration = Duration::from_secs(20);

/// Create the run directory, private to the user (it holds sockets into the guest).
pub fn prepare_run_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create run dir {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("chmod 0700 {}", dir.display()))?;
    for stale in ["qmp.sock", "agent.sock"] {
        let _ = std::fs::remove_file(dir.join(stale));
    }
    Ok(())
}

/// What has happened so far in a run.
#[derive(Default)]
struct State {
    timing: Timing,
    guest: Option<GuestInfo>,
    last_heard: Option<Instant>,
    last_progress: Vec<u64>,
    threads: Vec<runner::protocol::ThreadResult>,
    observations: BTreeMap<String, serde_json::Value>,
    done: bool,
    panic: Option<String>,
    fatal: Option<String>,
    guest_shutdown: Option<String>,
    /// Decided by the loop (timeouts, protocol errors, interrupts) before QEMU is gone.
    decided: Option<Outcome>,
    /// When the guest is expected to be gone by (after done / panic / fatal).
    wind_down_until: Option<Instant>,
    /// A scanner asked to stop the run.
    report_stop: Option<String>,
}

impl State {
    fn ms(start: Instant) -> u64 {
        start.elapsed().as_millis() as u64
    }

    fn on_guest(&mut self, msg: GuestMsg, start: Instant) {
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
            GuestMsg::ThreadResult(result) => self.threads.push(result),
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

    fn wind_down(&mut self) {
        self.wind_down_until
            .get_or_insert_with(|| Instant::now() + WIND_DOWN);
    }

    /// The outcome once QEMU is gone.
    fn outcome(&self, exit: Option<ExitStatus>, stderr: &str) -> Outcome {
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
        Outcome::QemuExited {
            status: exit.and_then(|s| s.code()),
            signal: exit.and_then(|s| s.signal()),
            stderr: stderr.to_string(),
        }
    }
}

/// Wait for a socket QEMU serves, while watching that QEMU is still alive.
async fn connect(
    path: &Path,
    exited: &mut mpsc::UnboundedReceiver<ExitStatus>,
) -> Result<UnixStream> {
    let deadline = Instant::now() + SOCKET_WAIT;
    loop {
        match UnixStream::connect(path).await {
            Ok(stream) => return Ok(stream),
            Err(e) if Instant::now() >= deadline => {
                bail!(
                    "cannot connect to {} within {SOCKET_WAIT:?}: {e}",
                    path.display()
                )
            }
            Err(_) => {}
        }
        if !exited.is_empty() {
            bail!("QEMU exited before creating {}", path.display());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Everything that talks to the running guest.
struct Links {
    qmp: Qmp,
    qmp_events: mpsc::UnboundedReceiver<QmpEvent>,
    agent: AgentWriter,
    agent_events: mpsc::UnboundedReceiver<AgentEvent>,
}

async fn open_links(
    sockets: &Sockets,
    run_dir: &Path,
    exited: &mut mpsc::UnboundedReceiver<ExitStatus>,
) -> Result<Links> {
    let qmp_stream = connect(&sockets.qmp, exited).await?;
    let (qmp, qmp_events) = Qmp::start(qmp_stream).await?;
    let agent_stream = connect(&sockets.agent, exited).await?;
    let (agent, agent_events) = agent::start(agent_stream, &run_dir.join("agent.jsonl")).await?;
    Ok(Links {
        qmp,
        qmp_events,
        agent,
        agent_events,
    })
}

/// Stop QEMU: ACPI power button (when `graceful`), then `quit`, then SIGKILL to its
/// process group.
async fn stop(
    qmp: Option<&Qmp>,
    graceful: bool,
    pid: u32,
    exited: &mut mpsc::UnboundedReceiver<ExitStatus>,
) -> Option<ExitStatus> {
    if let Some(qmp) = qmp {
        if graceful {
            let _ = tokio::time::timeout(STOP_STEP, qmp.system_powerdown()).await;
            if let Ok(Some(status)) = tokio::time::timeout(STOP_STEP, exited.recv()).await {
                return Some(status);
            }
        }
        let _ = tokio::time::timeout(STOP_STEP, qmp.quit()).await;
        if let Ok(Some(status)) = tokio::time::timeout(STOP_STEP, exited.recv()).await {
            return Some(status);
        }
    }
    process::kill_group(pid);
    tokio::time::timeout(STOP_STEP, exited.recv())
        .await
        .ok()
        .flatten()
}

fn build_command(
    spec: &BootSpec,
    accel: Accel,
    sockets: &Sockets,
) -> Result<tokio::process::Command> {
    Ok(match spec.backend {
        Backend::Qemu => {
            let machine = Machine {
                kernel: spec.kernel.clone(),
                initrd: Some(initramfs::with_extras(&spec.run_dir, &spec.extra_files)?),
                cpus: spec.cpus,
                memory_mib: spec.memory_mib,
                accel,
                cmdline_extra: spec.cmdline_extra.clone(),
            };
            let mut cmd = process::command(qemu::QEMU);
            cmd.args(qemu::args(&machine, sockets));
            cmd
        }
        Backend::Vng => {
            if spec.run_dir.to_string_lossy().contains(char::is_whitespace) {
                bail!(
                    "run dir {} contains whitespace, which vng --qemu-opts cannot carry; \
                     choose another --out",
                    spec.run_dir.display()
                );
            }
            let runner = initramfs::write_runner(&spec.run_dir)?;
            let machine = vng::VngMachine {
                kernel: &spec.kernel,
                runner: &runner,
                cpus: spec.cpus,
                memory_mib: spec.memory_mib,
                accel,
                cmdline_extra: &spec.cmdline_extra,
            };
            let mut cmd = process::command(vng::VNG);
            cmd.args(vng::args(&machine, sockets));
            cmd
        }
    })
}

fn program_missing_hint(backend: Backend) -> &'static str {
    match backend {
        Backend::Qemu => "install it with: apt-get install qemu-system-x86",
        Backend::Vng => "install it with: pip install virtme-ng (the README's set-up does)",
    }
}

/// Boot, run the request, and return the record also written to `outcome.json`.
pub async fn run(spec: &BootSpec, scanners: Vec<Box<dyn ConsoleScanner>>) -> Result<RunRecord> {
    if !spec.kernel.is_file() {
        bail!("kernel image {} does not exist", spec.kernel.display());
    }
    let entered = Instant::now();
    prepare_run_dir(&spec.run_dir)?;
    let accel = accel::resolve(spec.accel, &spec.kernel).await?;
    let (sockets, _socket_dir) = Sockets::for_run(&spec.run_dir)?;
    let mut cmd = build_command(spec, accel, &sockets)?;
    let program = match spec.backend {
        Backend::Qemu => qemu::QEMU,
        Backend::Vng => vng::VNG,
    };

    let start = Instant::now();
    let mut child = cmd.spawn().with_context(|| {
        format!(
            "cannot start {program}; {}",
            program_missing_hint(spec.backend)
        )
    })?;
    let pid = child.id().context("QEMU exited at once")?;
    let (console, mut console_events) =
        Console::create(&spec.run_dir.join("console.log"), scanners, start).await?;
    let stderr_tail = Arc::new(Mutex::new(String::new()));
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    tokio::spawn(console.clone().pump(stdout));
    match spec.backend {
        // QEMU's own stderr is diagnostics, kept apart from the guest console.
        Backend::Qemu => {
            tokio::spawn(console::capture_tail(
                stderr,
                spec.run_dir.join("qemu-stderr.log"),
                stderr_tail.clone(),
            ));
        }
        // vng prints the guest console on stderr too.
        Backend::Vng => {
            tokio::spawn(console.clone().pump(stderr));
        }
    }
    let (exit_tx, mut exited) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        if let Ok(status) = child.wait().await {
            let _ = exit_tx.send(status);
        }
    });

    let mut state = State::default();
    state.timing.prepare_ms = start.duration_since(entered).as_millis() as u64;
    let mut exit_status = None;
    let mut links = match open_links(&sockets, &spec.run_dir, &mut exited).await {
        Ok(links) => Some(links),
        Err(e) => {
            tracing::warn!("{e:#}");
            None
        }
    };
    let mut vcpu_threads = BTreeMap::new();
    if let Some(links) = links.as_ref() {
        if let Ok(threads) = links.qmp.vcpu_threads().await {
            vcpu_threads = threads;
        }
        if let Ok(status) = links.qmp.status().await {
            tracing::debug!("QMP status after start: {status}");
        }
    }

    let boot_deadline = start + spec.boot_timeout;
    let overall = start
        + spec.timeout.unwrap_or(
            spec.boot_timeout
                + Duration::from_millis(spec.request.duration_ms)
                + spec.heartbeat_timeout,
        );
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut request_sent = false;

    while exit_status.is_none() && state.decided.is_none() {
        let now = Instant::now();
        // The next moment something is due.
        let mut due = overall;
        if state.guest.is_none() {
            due = due.min(boot_deadline);
        } else if let Some(heard) = state.last_heard {
            due = due.min(heard + spec.heartbeat_timeout);
        }
        if let Some(until) = state.wind_down_until {
            due = due.min(until);
        }
        if now >= due {
            let after_ms = State::ms(start);
            if state.wind_down_until.is_some_and(|t| now >= t) {
                // The guest did not power off by itself: stop it; the outcome stays as is.
                break;
            }
            state.decided = Some(if now >= overall {
                Outcome::Timeout { after_ms }
            } else if state.guest.is_none() && console.lines() == 0 {
                Outcome::TimeoutNoOutput { after_ms }
            } else {
                let last_heard_ms = state
                    .last_heard
                    .map(|t| t.duration_since(start).as_millis() as u64)
                    .unwrap_or(0);
                Outcome::TimeoutNoHeartbeat {
                    after_ms,
                    last_heard_ms,
                }
            });
            break;
        }

        let (qmp_events, agent_events) = match links.as_mut() {
            Some(l) => (Some(&mut l.qmp_events), Some(&mut l.agent_events)),
            None => (None, None),
        };
        tokio::select! {
            status = exited.recv() => exit_status = status.or(Some(ExitStatus::from_raw(0))),
            _ = sleep_until(due.into()) => {}
            _ = tokio::signal::ctrl_c() => state.decided = Some(Outcome::Interrupted),
            _ = sigterm.recv() => state.decided = Some(Outcome::Interrupted),
            Some(event) = console_events.recv() => match event {
                ConsoleEvent::Output => {
                    state.timing.console_first_ms.get_or_insert(State::ms(start));
                }
                ConsoleEvent::Panic(message) => {
                    state.panic.get_or_insert(message);
                    state.wind_down();
                }
                ConsoleEvent::Stop(reason) => {
                    if state.report_stop.is_none() {
                        state.report_stop = Some(reason);
                        let drain = Instant::now() + REPORT_DRAIN;
                        state.wind_down_until =
                            Some(state.wind_down_until.map_or(drain, |t| t.min(drain)));
                    }
                }
                ConsoleEvent::Closed => {}
            },
            Some(event) = recv_opt(qmp_events) => match event {
                QmpEvent::GuestPanicked => {
                    state.panic.get_or_insert_with(|| "pvpanic: guest reported a panic".into());
                    state.wind_down();
                }
                QmpEvent::Shutdown { guest: true, reason } => {
                    state.guest_shutdown = Some(reason);
                    state.wind_down();
                }
                QmpEvent::Shutdown { .. } | QmpEvent::Stop | QmpEvent::Closed => {}
            },
            Some(event) = recv_opt(agent_events) => match event {
                AgentEvent::Msg(msg) => {
                    let hello = matches!(msg, GuestMsg::Hello { .. });
                    state.on_guest(msg, start);
                    if hello && !request_sent {
                        request_sent = true;
                        let request = HostMsg::RunRequest(spec.request.clone());
                        if let Some(l) = links.as_mut() {
                            if let Err(e) = l.agent.send(&request).await {
                                state.decided = Some(Outcome::AgentLost {
                                    detail: format!("cannot send the run request: {e}"),
                                });
                            }
                        }
                    }
                }
                AgentEvent::Garbage(line) => {
                    state.decided = Some(Outcome::AgentLost { detail: line });
                }
                AgentEvent::Closed => {}
            },
        }
    }

    if exit_status.is_none() {
        let qmp = links.as_ref().map(|l| &l.qmp);
        let graceful = state.decided != Some(Outcome::Interrupted);
        exit_status = stop(qmp, graceful, pid, &mut exited).await;
    }
    // Let the console readers drain what QEMU printed last.
    tokio::time::sleep(Duration::from_millis(50)).await;
    state.timing.ended_ms = State::ms(start);
    let stderr = stderr_tail.lock().unwrap().clone();
    let record = RunRecord {
        outcome: state.outcome(exit_status, &stderr),
        backend: format!("{:?}", spec.backend).to_lowercase(),
        accel: accel.name().into(),
        kernel: spec.kernel.display().to_string(),
        cpus: spec.cpus,
        memory_mib: spec.memory_mib,
        workload: spec.request.workload.clone(),
        duration_ms: spec.request.duration_ms,
        timing: state.timing,
        guest: state.guest,
        vcpu_threads,
        last_progress: state.last_progress,
        threads: state.threads,
        observations: state.observations,
        console_lines: console.lines(),
    };
    std::fs::write(
        spec.run_dir.join("outcome.json"),
        serde_json::to_vec_pretty(&record)?,
    )
    .with_context(|| format!("write {}/outcome.json", spec.run_dir.display()))?;
    Ok(record)
}

async fn recv_opt<T>(rx: Option<&mut mpsc::UnboundedReceiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
