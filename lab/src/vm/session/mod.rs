//! One VM run, from spawning QEMU to `outcome.json`: the run loop that listens to the console,
//! the agent, QMP, the QEMU process, the clock and the user, and decides the outcome.
//! Three phases: start (QEMU and its channels), drive (the loop until an outcome is due),
//! finish (stop QEMU, drain its output, write the record).

mod links;
mod save;
mod state;

pub use save::{snapshot, BootCheck, Prepared};

use super::accel::{self, AccelChoice};
use super::agent::AgentEvent;
use super::console::{self, Console, ConsoleEvent, ConsoleScanner};
use super::outcome::{Outcome, RunRecord, Start, StartKind};
use super::qemu::{self, Accel, Machine, Sockets};
use super::qmp::QmpEvent;
use super::schedule::{Controller, Plan, Signal};
use super::snapshot::Snapshot;
use super::{initramfs, process, vng};
use anyhow::{bail, Context, Result};
use links::Links;
use runner::protocol::{GuestMsg, HostMsg, RunRequest};
use state::{Exit, State};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
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
    pub cmdline_extra: crate::units::CmdlineExtra,
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
    /// A schedule to force through QEMU's gdbstub once the workload's threads are in position.
    pub schedule: Option<Plan>,
    /// Load this snapshot instead of booting (the QEMU backend only).
    pub restore: Option<Arc<Snapshot>>,
    /// Recorded with the run: why it booted although snapshots were on, or what went wrong
    /// with an earlier restore.
    pub start_note: Option<String>,
}

impl BootSpec {
    /// `request` on `kernel` with `cpus` vCPUs and `memory_mib` of memory, recorded in
    /// `run_dir`: booted by QEMU (no snapshot, no schedule) on the accelerator the probe
    /// picks, with the lab's bounds (120 s to the agent's hello, 30 s of silence after it,
    /// no overall limit beyond those).
    pub fn new(
        kernel: PathBuf,
        cpus: runner::quantity::Vcpus,
        memory_mib: u64,
        request: RunRequest,
        run_dir: PathBuf,
    ) -> BootSpec {
        BootSpec {
            kernel,
            cpus: cpus.get(),
            memory_mib,
            accel: AccelChoice::Auto,
            backend: Backend::Qemu,
            cmdline_extra: Default::default(),
            request,
            boot_timeout: Duration::from_secs(120),
            heartbeat_timeout: Duration::from_secs(30),
            timeout: None,
            run_dir,
            extra_files: Vec::new(),
            schedule: None,
            restore: None,
            start_note: None,
        }
    }
}

/// A request to run `workload` for `duration` with a heartbeat every 500 ms and a fresh
/// seed; it starts at once (a schedule's run sets `wait_for_go`).
pub fn request(
    workload: String,
    duration: runner::quantity::WorkDuration,
    threads: Option<runner::quantity::Threads>,
    params: serde_json::Map<String, serde_json::Value>,
    kernel_params: BTreeMap<String, String>,
) -> RunRequest {
    RunRequest {
        workload,
        duration_ms: duration,
        heartbeat_ms: 500,
        threads,
        params,
        wait_for_go: false,
        seed: Some(fresh_seed()),
        kernel_params,
    }
}

/// A snapshot could not be loaded: nothing ran in the guest (the caller may boot instead).
#[derive(Debug)]
pub struct RestoreFailed(pub String);

impl std::fmt::Display for RestoreFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RestoreFailed {}

/// A fresh seed for a run request, from the host's random source.
pub fn fresh_seed() -> u64 {
    use std::io::Read;
    let mut bytes = [0u8; 8];
    match std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)) {
        Ok(()) => u64::from_le_bytes(bytes),
        // No /dev/urandom: the clock's nanoseconds still differ from run to run.
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default(),
    }
}

/// How long the guest gets to power itself off after `done`, a panic or a fatal error.
pub(crate) const WIND_DOWN: Duration = Duration::from_secs(10);
/// How long the console gets to finish a report before a stop-on-report run is ended.
const REPORT_DRAIN: Duration = Duration::from_secs(3);
/// How long each step of stopping QEMU (powerdown, quit) is given before the next.
pub(crate) const STOP_STEP: Duration = Duration::from_secs(3);
/// How long QEMU gets to create its sockets.
pub(crate) const SOCKET_WAIT: Duration = Duration::from_secs(20);

/// Create the run directory, private to the user (it holds sockets into the guest).
pub fn prepare_run_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create run dir {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("chmod 0700 {}", dir.display()))?;
    for stale in ["qmp.sock", "agent.sock", "gdb.sock"] {
        let _ = std::fs::remove_file(dir.join(stale));
    }
    Ok(())
}

/// The guest's files, made off the runtime's thread (reading extras and compressing them
/// can take a while): the initramfs for QEMU, the agent binary for vng.
async fn guest_files(spec: &BootSpec) -> Result<PathBuf> {
    let (backend, dir, extras) = (spec.backend, spec.run_dir.clone(), spec.extra_files.clone());
    tokio::task::spawn_blocking(move || match backend {
        Backend::Qemu => initramfs::with_extras(&dir, &extras),
        Backend::Vng => initramfs::write_runner(&dir),
    })
    .await?
}

fn build_command(
    spec: &BootSpec,
    accel: Accel,
    sockets: &Sockets,
    files: PathBuf,
) -> Result<tokio::process::Command> {
    Ok(match spec.backend {
        Backend::Qemu => {
            let machine = Machine {
                kernel: spec.kernel.clone(),
                initrd: Some(files),
                cpus: spec.cpus,
                memory_mib: spec.memory_mib,
                accel,
                cmdline_extra: spec.cmdline_extra.clone(),
            };
            let mut cmd = process::command(qemu::QEMU);
            cmd.args(qemu::args(&machine, Some(sockets)));
            if spec.restore.is_some() {
                // QEMU waits for `migrate-incoming` (the lab connects its channels first).
                cmd.args(["-incoming", "defer"]);
            }
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
            let runner = files;
            let machine = vng::VngMachine {
                kernel: &spec.kernel,
                runner: &runner,
                cpus: spec.cpus,
                memory_mib: spec.memory_mib,
                accel,
                cmdline_extra: spec.cmdline_extra.as_str(),
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

/// How long the console readers get, once QEMU is gone, to hand over what it printed last
/// (a process QEMU left behind could hold its pipes open).
const DRAIN: Duration = Duration::from_secs(5);

/// A started guest and everything listening to it.
struct Vm {
    start: Instant,
    /// The same moment on the wall clock (the record's `started`).
    started: std::time::SystemTime,
    pid: u32,
    console: Arc<Console>,
    console_events: mpsc::UnboundedReceiver<ConsoleEvent>,
    /// The tasks reading QEMU's stdout and stderr: awaited before the record is written.
    readers: Vec<JoinHandle<()>>,
    stderr_tail: Arc<Mutex<String>>,
    exited: mpsc::UnboundedReceiver<Exit>,
    links: Option<Links>,
    vcpu_threads: BTreeMap<u32, i64>,
    /// The schedule's controller, for a run with a schedule.
    controller: Option<Controller>,
    state: State,
    exit: Option<Exit>,
    request_sent: bool,
}

impl Vm {
    /// Spawn QEMU (or vng), start reading its output, open QMP and the agent port.
    async fn start(
        spec: &BootSpec,
        sockets: &Sockets,
        mut cmd: tokio::process::Command,
        scanners: Vec<Box<dyn ConsoleScanner>>,
    ) -> Result<Vm> {
        let program = match spec.backend {
            Backend::Qemu => qemu::QEMU,
            Backend::Vng => vng::VNG,
        };
        let (start, started) = (Instant::now(), std::time::SystemTime::now());
        let mut child = cmd.spawn().with_context(|| {
            format!(
                "cannot start {program}; {}",
                program_missing_hint(spec.backend)
            )
        })?;
        let pid = child.id().context("QEMU exited at once")?;
        let (console, console_events) =
            Console::create(&spec.run_dir.join("console.log"), scanners, start).await?;
        let stderr_tail = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let mut readers = vec![tokio::spawn(console.clone().pump(stdout))];
        readers.push(match spec.backend {
            // QEMU's own stderr is diagnostics, kept apart from the guest console.
            Backend::Qemu => tokio::spawn(console::capture_tail(
                stderr,
                spec.run_dir.join("qemu-stderr.log"),
                stderr_tail.clone(),
            )),
            // vng prints the guest console on stderr too.
            Backend::Vng => tokio::spawn(console.clone().pump(stderr)),
        });
        let (exit_tx, mut exited) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let _ = exit_tx.send(match child.wait().await {
                Ok(status) => Exit::Status(status),
                Err(e) => Exit::WaitFailed(e.to_string()),
            });
        });
        let links = match links::open_links(sockets, &spec.run_dir, &mut exited).await {
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
        }
        Ok(Vm {
            controller: None,
            start,
            started,
            pid,
            console,
            console_events,
            readers,
            stderr_tail,
            exited,
            links,
            vcpu_threads,
            state: State::default(),
            exit: None,
            request_sent: false,
        })
    }

    /// Start the schedule's controller: once the guest runs (a gdbstub client stops it).
    fn control(&mut self, spec: &BootSpec, sockets: &Sockets) {
        if let (Some(plan), Some(gdb)) = (&spec.schedule, &sockets.gdb) {
            self.controller = Some(Controller::start(plan.clone(), gdb.clone(), self.start));
        }
    }

    /// Load the snapshot into the paused QEMU, run it, and ask the agent for its hello.
    async fn resume(&mut self, snapshot: &Snapshot, spec: &BootSpec) -> Result<(), String> {
        let Some(links) = self.links.as_mut() else {
            process::kill_group(self.pid);
            return Err("QEMU's QMP and agent sockets could not be opened".into());
        };
        let load = async {
            links
                .qmp
                .migrate_incoming(&snapshot.incoming_uri())
                .await
                .map_err(|e| format!("{e:#}"))?;
            links.qmp.cont().await.map_err(|e| format!("cont: {e:#}"))
        };
        let loaded = tokio::select! {
            r = load => r,
            _ = tokio::time::sleep(spec.boot_timeout) => {
                Err(format!("not loaded within {:?}", spec.boot_timeout))
            }
            exit = self.exited.recv() => {
                self.exit = exit;
                Err("QEMU exited while loading it".into())
            }
        };
        if let Err(why) = loaded {
            // QEMU says why on its stderr: wait for it to be read.
            self.shut(false).await;
            // QEMU's own reason, when it gave one, says more than the lost connection.
            let why = match self.qemu_said() {
                Some(line) => format!("QEMU: {line}"),
                None => why,
            };
            return Err(format!(
                "cannot restore snapshot {}: {why}",
                snapshot.meta.key
            ));
        }
        self.state.timing.restored_ms = Some(State::ms(self.start));
        self.state.last_heard = Some(Instant::now());
        self.tell(
            &HostMsg::Greet,
            "cannot ask the restored agent for its hello",
        )
        .await;
        Ok(())
    }

    /// Stop QEMU if it still runs (`graceful`: the power button first) and let the readers
    /// hand over its last output: once QEMU is gone its pipes close and the readers end.
    async fn shut(&mut self, graceful: bool) {
        if self.exit.is_none() {
            let qmp = self.links.as_ref().map(|l| &l.qmp);
            self.exit = links::stop(qmp, graceful, self.pid, &mut self.exited).await;
        }
        let readers = futures::future::join_all(std::mem::take(&mut self.readers));
        if tokio::time::timeout(DRAIN, readers).await.is_err() {
            tracing::warn!("QEMU's output was still open {DRAIN:?} after it exited");
        }
    }

    /// QEMU's last non-empty line on stderr.
    fn qemu_said(&self) -> Option<String> {
        let stderr = self.stderr_tail.lock().unwrap();
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
        last.map(|l| l.trim().to_string())
    }

    /// The next moment something is due: the overall deadline, the boot or heartbeat
    /// bound, the end of a wind-down.
    fn due(&self, spec: &BootSpec, boot_deadline: Instant, overall: Instant) -> Instant {
        let mut due = overall;
        if self.state.guest.is_none() {
            due = due.min(boot_deadline);
        } else if let Some(heard) = self.state.last_heard {
            due = due.min(heard + spec.heartbeat_timeout);
        }
        if let Some(until) = self.state.wind_down_until {
            due = due.min(until);
        }
        due
    }

    /// What a deadline that passed means (none: a wind-down ended, the outcome stays).
    fn timed_out(&self, now: Instant, overall: Instant) -> Option<Outcome> {
        if self.state.wind_down_until.is_some_and(|t| now >= t) {
            return None;
        }
        let after_ms = State::ms(self.start);
        Some(if now >= overall {
            Outcome::Timeout { after_ms }
        } else if self.state.guest.is_none() && self.console.lines() == 0 {
            Outcome::TimeoutNoOutput { after_ms }
        } else {
            let last_heard_ms = self
                .state
                .last_heard
                .map(|t| t.duration_since(self.start).as_millis() as u64)
                .unwrap_or(0);
            Outcome::TimeoutNoHeartbeat {
                after_ms,
                last_heard_ms,
            }
        })
    }

    /// Listen to everything until QEMU is gone, an outcome is decided, or a wind-down ends.
    async fn drive(&mut self, spec: &BootSpec) {
        let boot_deadline = self.start + spec.boot_timeout;
        let overall = self.start
            + spec.timeout.unwrap_or(
                spec.boot_timeout + spec.request.duration_ms.get() + spec.heartbeat_timeout,
            );
        while self.exit.is_none() && self.state.decided.is_none() {
            let due = self.due(spec, boot_deadline, overall);
            let now = Instant::now();
            if now >= due {
                self.state.decided = self.timed_out(now, overall);
                break;
            }
            let (qmp_events, agent_events) = match self.links.as_mut() {
                Some(l) => (Some(&mut l.qmp_events), Some(&mut l.agent_events)),
                None => (None, None),
            };
            tokio::select! {
                exit = self.exited.recv() => {
                    self.exit = Some(exit.unwrap_or_else(|| Exit::WaitFailed("the waiter is gone".into())));
                }
                _ = sleep_until(due.into()) => {}
                _ = crate::interrupt::wait() => self.state.decided = Some(Outcome::Interrupted),
                Some(event) = self.console_events.recv() => self.on_console(event),
                Some(event) = recv_opt(qmp_events) => self.on_qmp(event),
                Some(event) = recv_opt(agent_events) => self.on_agent(event, spec).await,
                signal = signal(self.controller.as_mut()) => match signal {
                    // The threads may start; or nothing is left to attempt: the workload ends
                    // now, as at its deadline.
                    Signal::Armed => self.tell(&HostMsg::Go, "cannot send go").await,
                    Signal::Exhausted => self.tell(&HostMsg::Stop, "cannot send stop").await,
                },
            }
        }
    }

    fn on_console(&mut self, event: ConsoleEvent) {
        let state = &mut self.state;
        match event {
            ConsoleEvent::Output => {
                state
                    .timing
                    .console_first_ms
                    .get_or_insert(State::ms(self.start));
            }
            ConsoleEvent::Panic(message) => {
                state.panic.get_or_insert(message);
                state.wind_down();
            }
            ConsoleEvent::Stop(reason) => {
                if let Some(controller) = &self.controller {
                    controller.end();
                }
                if state.report_stop.is_none() {
                    state.report_stop = Some(reason);
                    let drain = Instant::now() + REPORT_DRAIN;
                    state.wind_down_until =
                        Some(state.wind_down_until.map_or(drain, |t| t.min(drain)));
                }
            }
            ConsoleEvent::WriteFailed(detail) => {
                state.decided = Some(Outcome::RecordFailed { detail });
            }
            ConsoleEvent::Closed => {}
        }
    }

    fn on_qmp(&mut self, event: QmpEvent) {
        match event {
            QmpEvent::GuestPanicked => {
                self.state
                    .panic
                    .get_or_insert_with(|| "pvpanic: guest reported a panic".into());
                self.state.wind_down();
            }
            QmpEvent::Shutdown {
                guest: true,
                reason,
            } => {
                self.state.guest_shutdown = Some(reason);
                self.state.wind_down();
            }
            QmpEvent::Shutdown { .. } | QmpEvent::Stop | QmpEvent::Closed => {}
        }
    }

    /// Send the agent `msg`; an agent that cannot be told is lost (`what`: the words for it).
    async fn tell(&mut self, msg: &HostMsg, what: &str) {
        if let Some(l) = self.links.as_mut() {
            if let Err(e) = l.agent.send(msg).await {
                self.state.decided = Some(Outcome::AgentLost {
                    detail: format!("{what}: {e}"),
                });
            }
        }
    }

    async fn on_agent(&mut self, event: AgentEvent, spec: &BootSpec) {
        match event {
            AgentEvent::Msg(msg) => {
                if let (GuestMsg::Positioned { threads }, Some(c)) = (&msg, &mut self.controller) {
                    c.positioned(threads.clone());
                }
                let hello = matches!(msg, GuestMsg::Hello { .. });
                self.state.on_guest(msg, self.start);
                if hello && !self.request_sent {
                    self.request_sent = true;
                    let request = HostMsg::RunRequest(spec.request.clone());
                    self.tell(&request, "cannot send the run request").await;
                }
            }
            AgentEvent::Garbage(line) => {
                self.state.decided = Some(Outcome::AgentLost { detail: line });
            }
            AgentEvent::WriteFailed(detail) => {
                self.state.decided = Some(Outcome::RecordFailed { detail });
            }
            AgentEvent::Closed => {}
        }
    }

    /// Stop QEMU if it still runs, let the readers hand over its last output, and write
    /// the record.
    async fn finish(
        mut self,
        spec: &BootSpec,
        sockets: &Sockets,
        accel: Accel,
    ) -> Result<RunRecord> {
        // The controller lets go of the machine (every vCPU running) before it is stopped.
        let schedule = match self.controller.take() {
            Some(controller) => Some(controller.finish().await),
            None => None,
        };
        self.shut(self.state.decided != Some(Outcome::Interrupted))
            .await;
        self.state.timing.ended_ms = State::ms(self.start);
        // The sockets lead nowhere now.
        for socket in [&sockets.qmp, &sockets.agent]
            .into_iter()
            .chain(&sockets.gdb)
        {
            let _ = std::fs::remove_file(socket);
        }
        let stderr = self.stderr_tail.lock().unwrap().clone();
        let record = RunRecord {
            outcome: self.state.outcome(self.exit.as_ref(), &stderr),
            started: Some(humantime::format_rfc3339_millis(self.started).to_string()),
            backend: format!("{:?}", spec.backend).to_lowercase(),
            accel: accel.name().into(),
            kernel: spec.kernel.display().to_string(),
            cpus: spec.cpus,
            memory_mib: spec.memory_mib,
            workload: spec.request.workload.clone(),
            duration_ms: spec.request.duration_ms.millis(),
            start: Start {
                how: match spec.restore {
                    Some(_) => StartKind::Restored,
                    None => StartKind::Booted,
                },
                snapshot: spec.restore.as_ref().map(|s| s.meta.key.clone()),
                note: spec.start_note.clone(),
            },
            seed: spec.request.seed,
            timing: self.state.timing,
            guest: self.state.guest,
            vcpu_threads: self.vcpu_threads,
            last_progress: self.state.last_progress,
            threads: self.state.threads,
            observations: self.state.observations,
            console_lines: self.console.lines(),
            tests: None,
            schedule,
            program_output: self.state.output,
        };
        // Whole or not at all: a full disk leaves no truncated outcome.json.
        crate::files::write(
            spec.run_dir.join("outcome.json"),
            &serde_json::to_vec_pretty(&record)?,
        )
        .with_context(|| format!("the run in {} cannot be recorded", spec.run_dir.display()))?;
        Ok(record)
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
    let (mut sockets, _socket_dir) = Sockets::for_run(&spec.run_dir)?;
    if spec.schedule.is_some() {
        sockets = sockets.with_gdb();
    }
    let files = match (&spec.restore, spec.backend) {
        (Some(snapshot), Backend::Qemu) => {
            // The run's console starts where the snapshot's boot ended: its boot is kept
            // beside it.
            let _ = crate::files::copy(
                snapshot.dir.join("console.log"),
                spec.run_dir.join("boot-console.log"),
            );
            snapshot.initrd()
        }
        (Some(_), Backend::Vng) => bail!("the vng backend boots every run: it cannot restore"),
        (None, _) => guest_files(spec).await?,
    };
    let cmd = build_command(spec, accel, &sockets, files)?;
    let mut vm = Vm::start(spec, &sockets, cmd, scanners).await?;
    vm.state.timing.prepare_ms = vm.start.duration_since(entered).as_millis() as u64;
    if let Some(snapshot) = &spec.restore {
        if let Err(why) = vm.resume(snapshot, spec).await {
            return Err(RestoreFailed(why).into());
        }
    }
    vm.control(spec, &sockets);
    vm.drive(spec).await;
    vm.finish(spec, &sockets, accel).await
}

async fn signal(controller: Option<&mut Controller>) -> Signal {
    match controller {
        Some(c) => c.signal().await,
        None => std::future::pending().await,
    }
}

async fn recv_opt<T>(rx: Option<&mut mpsc::UnboundedReceiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
