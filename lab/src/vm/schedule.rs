//! Forcing a schedule on a running guest through QEMU's gdbstub, and the record of what was
//! executed: every attempt, applied (each step reached, in order, with its time) or not (the
//! step that missed its deadline, and why).
//!
//! The controller is armed when the workload says where its threads run (`positioned`): the
//! steps' roles become vCPUs, it connects to the gdbstub (which stops the machine), arms the
//! first attempt and lets the threads go; then it repeats the schedule until the run ends,
//! the machine running freely between attempts for `gap`, and at least as long as the attempt
//! kept vCPUs stopped. One attempt: stop the machine, set the step's breakpoints, resume
//! the vCPUs that may run during the step, and wait; a stop at the location on the step's vCPU
//! reaches the step (that vCPU stays stopped) when the task running there is the step's (by its
//! name, read from the kernel's `current`); any other stop is stepped over. After the last
//! step, or a missed deadline, every vCPU resumes and no breakpoint is left.

use super::gdb::{Action, Cpu, Gdb, Gone, Stop, GS_BASE, K_GS_BASE, RIP, RSP};
use crate::config::schedule::{CpuRef, Step};
use anyhow::Result;
use runner::protocol::Position;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// Names a code address of the kernel (`symbol+0xoffset`).
pub type Namer = Arc<dyn Fn(u64) -> Option<String> + Send + Sync>;

/// A schedule with its locations resolved in one kernel: each step with the addresses its
/// location has there.
#[derive(Clone)]
pub struct Plan {
    pub steps: Vec<(Step, Vec<u64>)>,
    pub gap: Duration,
    /// To say where a vCPU was when a step missed its deadline.
    pub name_of: Namer,
    /// Where the kernel keeps each CPU's current task.
    pub tasks: Tasks,
    /// The kernel's code (`_stext` to `_etext`): a value on a stack in it is taken for a
    /// return address when the machine is sampled.
    pub text: Option<(u64, u64)>,
    /// Interleavings handed out attempt by attempt (an exploration) instead of `steps`
    /// repeated.
    pub source: Option<Arc<dyn Source>>,
}

/// One interleaving: its steps, resolved.
pub type Resolved = Vec<(Step, Vec<u64>)>;

/// What a source asks of the controller.
pub enum Next {
    /// Attempt interleaving `id`.
    Attempt(u64, Resolved),
    /// Stop the machine, note where each vCPU is and which task it runs, and let it go on
    /// (for `interval` before the next ask).
    Sample(Duration),
    /// Nothing left: stop attempting.
    Done,
}

/// Where one vCPU was when the machine was stopped to look.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub at_ms: u64,
    pub cpu: Cpu,
    pub pc: u64,
    /// `symbol+0xoffset` in the kernel; `None` in user space or outside System.map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    pub task: String,
    /// The code addresses found on the kernel stack above the stack pointer, named, in the
    /// order found (the callers, as a conservative scan finds them: some may be stale).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stack: Vec<String>,
}

/// How much of a kernel stack a sample scans, and the most callers it keeps.
const STACK_SCAN: usize = 0x800;
const STACK_KEEP: usize = 24;

/// Where an exploration's attempts come from: each attempt asks for the next interleaving
/// and says how it went; with none left, the controller stops attempting and lets the
/// machine run.
pub trait Source: Send + Sync {
    /// What to do next.
    fn next(&self) -> Next;
    /// The attempt of interleaving `id` ended, applied or not.
    fn attempted(&self, id: u64, applied: bool);
    /// The machine was looked at, as asked.
    fn sampled(&self, samples: &[Sample]);
}

/// What it takes to name the task a vCPU runs: the per-CPU offset of the current task's
/// pointer (`current_task`, or `pcpu_hot` whose first field it is in 6.2 to 6.14) and the
/// address of `init_task` (whose name, "swapper/0", tells where a task keeps its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tasks {
    pub current: u64,
    pub init_task: u64,
}

/// Where in a task_struct its name is: the offset at which `init_task` (`bytes`, read from its
/// start) has "swapper" followed by a short NUL-terminated rest ("/0").
fn comm_offset(bytes: &[u8]) -> Option<usize> {
    let at = bytes.windows(7).position(|w| w == b"swapper")?;
    let name = bytes.get(at..at + 16)?;
    let nul = name.iter().position(|&b| b == 0)?;
    name[..nul]
        .iter()
        .all(|b| b.is_ascii_graphic())
        .then_some(at)
}

/// A task's name from its 16 bytes.
fn comm(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("steps", &self.steps)
            .field("gap", &self.gap)
            .finish_non_exhaustive()
    }
}

/// One step reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reached {
    pub step: String,
    pub cpu: Cpu,
    /// The name of the task that reached it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// Since QEMU started.
    pub at_ms: u64,
}

/// One attempt of the schedule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub started_ms: u64,
    /// The steps reached, in order.
    pub reached: Vec<Reached>,
    /// The step that was not reached, and why; `None` when every step was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed: Option<(String, String)>,
    /// Stops at a step's location on vCPUs, or of tasks, the step does not wait for
    /// (stepped over).
    pub passes: u32,
    /// Of those, the stops on the step's own vCPU by another task: how many, by task name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other_tasks: BTreeMap<String, u32>,
    /// When every vCPU ran again.
    pub resumed_ms: u64,
    /// The interleaving attempted, in an exploration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interleaving: Option<u64>,
}

impl Attempt {
    pub fn applied(&self) -> bool {
        self.missed.is_none()
    }

    /// How long some vCPU was kept stopped.
    pub fn held(&self) -> Duration {
        let first = self.reached.first().map_or(self.resumed_ms, |r| r.at_ms);
        Duration::from_millis(self.resumed_ms.saturating_sub(first))
    }
}

/// The `schedule` of `outcome.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScheduleRecord {
    /// Each step as resolved: name, vCPUs, location.
    pub steps: Vec<String>,
    /// When the workload's threads were in position and the schedule was armed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub armed_ms: Option<u64>,
    pub attempts: Vec<Attempt>,
    /// Where the vCPUs were each time a source asked to look.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<Sample>,
    /// Why the controller stopped before the run ended (the gdbstub went away, a role the
    /// workload does not have).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When its source had nothing more to attempt: the workload was then asked to end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exhausted_ms: Option<u64>,
}

impl ScheduleRecord {
    pub fn applied(&self) -> usize {
        self.attempts.iter().filter(|a| a.applied()).count()
    }

    /// The distinct interleavings among the applied attempts (a written schedule's is one).
    pub fn interleavings_applied(&self) -> usize {
        let mut ids: Vec<Option<u64>> = self
            .attempts
            .iter()
            .filter(|a| a.applied())
            .map(|a| a.interleaving)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }

    /// Applied attempts that ended before `ms` (since QEMU started).
    pub fn applied_before(&self, ms: u64) -> usize {
        self.attempts
            .iter()
            .filter(|a| a.applied() && a.resumed_ms <= ms)
            .count()
    }

    /// Why no attempt was applied, naming the step (for a verdict).
    pub fn never_applied(&self) -> String {
        if let Some(e) = &self.error {
            return format!("the schedule was never applied: {e}");
        }
        if self.armed_ms.is_none() {
            return "the schedule was never armed: the workload did not say where its threads run"
                .into();
        }
        // The step missed most often, with its last reason.
        let mut by_step: Vec<(&str, usize, &str)> = Vec::new();
        for (step, why) in self.attempts.iter().filter_map(|a| a.missed.as_ref()) {
            match by_step.iter_mut().find(|(s, _, _)| *s == step) {
                Some(entry) => {
                    entry.1 += 1;
                    entry.2 = why;
                }
                None => by_step.push((step, 1, why)),
            }
        }
        by_step.sort_by_key(|s| std::cmp::Reverse(s.1));
        match by_step.first() {
            Some((step, n, why)) => format!(
                "the schedule was never applied: step {step:?} missed in {n} of {} attempts ({why})",
                self.attempts.len()
            ),
            None => "the schedule was never applied: the run ended before the first attempt".into(),
        }
    }
}

/// A step with its vCPUs known.
struct Armed {
    name: String,
    cpus: BTreeSet<Cpu>,
    run: Option<BTreeSet<Cpu>>,
    addrs: Vec<u64>,
    deadline: Duration,
    /// The task whose stop counts; `None`: any.
    task: Option<String>,
    /// Which counted stop reaches the step.
    hit: u32,
}

/// The vCPUs a reference names, given where the workload's threads run.
fn cpus_of(cpu: &CpuRef, positions: &[Position]) -> Result<BTreeSet<Cpu>, String> {
    match cpu {
        CpuRef::Index(i) => Ok([*i].into()),
        CpuRef::Role(role) => {
            let threads: Vec<&Position> = positions.iter().filter(|p| &p.role == role).collect();
            if threads.is_empty() {
                let mut roles: Vec<&str> = positions.iter().map(|p| p.role.as_str()).collect();
                roles.dedup();
                return Err(format!(
                    "no thread of the workload has the role {role:?} (its roles: {})",
                    roles.join(", ")
                ));
            }
            threads
                .iter()
                .map(|p| {
                    p.cpu.ok_or_else(|| {
                        format!("the {role} thread is not pinned: a schedule needs pinned threads")
                    })
                })
                .collect()
        }
    }
}

fn arm(steps: &[(Step, Vec<u64>)], positions: &[Position]) -> Result<Vec<Armed>, String> {
    steps
        .iter()
        .map(|(step, addrs)| {
            let within = |e: String| format!("step {:?}: {e}", step.name);
            let run = match &step.run {
                None => None,
                Some(list) => Some(
                    list.iter()
                        .map(|c| cpus_of(c, positions))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(within)?
                        .into_iter()
                        .flatten()
                        .collect(),
                ),
            };
            let cpus = cpus_of(&step.cpu, positions).map_err(within)?;
            if run
                .as_ref()
                .is_some_and(|r: &BTreeSet<Cpu>| r.is_disjoint(&cpus))
            {
                return Err(within(format!(
                    "run does not let vCPU {} (the step's {}) run: the step could never be \
                     reached",
                    list(&cpus),
                    step.cpu
                )));
            }
            Ok(Armed {
                name: step.name.clone(),
                cpus,
                run,
                addrs: addrs.clone(),
                deadline: step.deadline,
                task: step.cpu.task(step.task.as_deref()),
                hit: step.hit,
            })
        })
        .collect()
}

/// How one wait of a step ended.
enum Waited {
    Stop(Stop),
    Deadline,
    Ended,
}

/// Runs attempts over one gdbstub connection.
struct Driver {
    gdb: Gdb,
    name_of: Namer,
    start: Instant,
    all: Vec<Cpu>,
    end: watch::Receiver<bool>,
    tasks: Tasks,
    text: Option<(u64, u64)>,
    /// Where a task_struct has its name, once read from `init_task`.
    comm_at: Option<u64>,
}

/// How far into `init_task` its name is looked for, and in what pieces.
const TASK_SEARCH: usize = 0x4000;
const READ_CHUNK: usize = 0x400;

/// How long a single step over a breakpoint may take.
const STEP_OVER: Duration = Duration::from_secs(2);

impl Driver {
    fn ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn ended(&self) -> bool {
        *self.end.borrow()
    }

    async fn wait(&mut self, deadline: Instant) -> Result<Waited> {
        let mut end = self.end.clone();
        tokio::select! {
            stop = self.gdb.wait_stop(deadline) => Ok(match stop? {
                Some(stop) => Waited::Stop(stop),
                None => Waited::Deadline,
            }),
            _ = end.wait_for(|e| *e) => Ok(Waited::Ended),
        }
    }

    async fn resume(&mut self, cpus: &BTreeSet<Cpu>) -> Result<()> {
        let actions: Vec<(Action, Option<Cpu>)> = if cpus.len() == self.all.len() {
            vec![(Action::Continue, None)]
        } else {
            cpus.iter().map(|c| (Action::Continue, Some(*c))).collect()
        };
        self.gdb.resume(&actions).await
    }

    async fn set(&mut self, addrs: &[u64], on: bool) -> Result<()> {
        for &a in addrs {
            if on {
                self.gdb.insert_breakpoint(a).await?;
            } else {
                self.gdb.remove_breakpoint(a).await?;
            }
        }
        Ok(())
    }

    /// Step `cpu` off a breakpoint at one of `addrs` while the others stay stopped.
    async fn step_over(&mut self, cpu: Cpu, addrs: &[u64]) -> Result<()> {
        self.set(addrs, false).await?;
        self.gdb.resume(&[(Action::Step, Some(cpu))]).await?;
        if self
            .gdb
            .wait_stop(Instant::now() + STEP_OVER)
            .await?
            .is_none()
        {
            self.gdb.interrupt().await?;
        }
        self.set(addrs, true).await
    }

    /// Where a task_struct keeps its name.
    async fn comm_at(&mut self) -> Result<u64> {
        if let Some(at) = self.comm_at {
            return Ok(at);
        }
        let mut bytes = Vec::new();
        while bytes.len() < TASK_SEARCH {
            let addr = self.tasks.init_task + bytes.len() as u64;
            bytes.extend(self.gdb.memory(addr, READ_CHUNK).await?);
            if let Some(at) = comm_offset(&bytes) {
                self.comm_at = Some(at as u64);
                return Ok(at as u64);
            }
        }
        anyhow::bail!(
            "no task name (\"swapper/0\") in the first {TASK_SEARCH:#x} bytes of init_task at {:#x}",
            self.tasks.init_task
        )
    }

    /// The name of the task `cpu` runs (stopped, at `pc`).
    async fn task_on(&mut self, cpu: Cpu, pc: u64) -> Result<String> {
        // In the kernel, GS is the CPU's own area; in user mode the kernel's is swapped out.
        let gs = if pc >= 1 << 63 { GS_BASE } else { K_GS_BASE };
        let base = self.gdb.register(cpu, gs).await?;
        let pointer = self.gdb.memory(base + self.tasks.current, 8).await?;
        let task = u64::from_le_bytes(
            pointer
                .try_into()
                .map_err(|_| anyhow::anyhow!("short read of vCPU {cpu}'s current task pointer"))?,
        );
        let at = self.comm_at().await?;
        Ok(comm(&self.gdb.memory(task + at, 16).await?))
    }

    /// Where each of `cpus` is, and what it runs: "vCPU 1 at native_safe_halt+0x5 (swapper/1)".
    async fn whereabouts(&mut self, cpus: &BTreeSet<Cpu>) -> Result<String> {
        let mut at = Vec::new();
        for &cpu in cpus {
            let pc = self.gdb.register(cpu, RIP).await?;
            let name = (self.name_of)(pc).unwrap_or_else(|| format!("{pc:#x}"));
            let task = match self.task_on(cpu, pc).await {
                Ok(task) => task,
                Err(e) => format!("task unknown: {e:#}"),
            };
            at.push(format!("vCPU {cpu} at {name} ({task})"));
        }
        Ok(at.join(", "))
    }

    /// The code addresses on `cpu`'s kernel stack, named: every 8-byte value from the stack
    /// pointer up that falls in the kernel's code.
    async fn callers(&mut self, cpu: Cpu, (start, end): (u64, u64)) -> Result<Vec<String>> {
        let sp = self.gdb.register(cpu, RSP).await?;
        // Not past the end of the stack's page run: a kernel stack is 16 KiB, aligned.
        let room = (0x4000 - (sp & 0x3fff)) as usize;
        let bytes = self.gdb.memory(sp, STACK_SCAN.min(room)).await?;
        let mut out: Vec<String> = Vec::new();
        for word in bytes.chunks_exact(8) {
            let value = u64::from_le_bytes(word.try_into().expect("8 bytes"));
            if value <= start || value >= end {
                continue;
            }
            if let Some(name) = (self.name_of)(value) {
                if !out.contains(&name) {
                    out.push(name);
                }
            }
            if out.len() == STACK_KEEP {
                break;
            }
        }
        Ok(out)
    }

    /// Stop the machine, read where each vCPU is and what it runs, and let it run again.
    async fn sample(&mut self, stopped: bool) -> Result<Vec<Sample>> {
        if !stopped {
            self.gdb.interrupt().await?;
        }
        let at_ms = self.ms();
        let mut seen = Vec::new();
        for cpu in self.all.clone() {
            let pc = self.gdb.register(cpu, RIP).await?;
            let task = match self.task_on(cpu, pc).await {
                Ok(task) => task,
                Err(e) => format!("task unknown: {e:#}"),
            };
            let function = (pc >= 1 << 63).then(|| (self.name_of)(pc)).flatten();
            let stack = match (function.is_some(), self.text) {
                (true, Some(text)) => self.callers(cpu, text).await.unwrap_or_default(),
                _ => vec![],
            };
            seen.push(Sample {
                at_ms,
                cpu,
                pc,
                function,
                task,
                stack,
            });
        }
        let all: BTreeSet<Cpu> = self.all.iter().copied().collect();
        self.resume(&all).await?;
        Ok(seen)
    }

    /// One attempt, from a running machine (or one the connection has just stopped); the
    /// machine runs when it returns, with no breakpoint.
    async fn attempt(&mut self, steps: &[Armed], stopped: bool) -> Result<Attempt> {
        let mut attempt = Attempt {
            started_ms: self.ms(),
            ..Attempt::default()
        };
        if !stopped {
            self.gdb.interrupt().await?;
        }
        let mut held: BTreeSet<Cpu> = BTreeSet::new();
        'steps: for step in steps {
            let mut hits = 0;
            let runnable: BTreeSet<Cpu> = match &step.run {
                Some(run) => run.clone(),
                None => self
                    .all
                    .iter()
                    .copied()
                    .filter(|c| !held.contains(c))
                    .collect(),
            };
            self.set(&step.addrs, true).await?;
            self.resume(&runnable).await?;
            let deadline = Instant::now() + step.deadline;
            loop {
                let why = match self.wait(deadline).await? {
                    Waited::Stop(stop) => {
                        let Some(cpu) = stop.cpu else {
                            self.resume(&runnable).await?;
                            continue;
                        };
                        let pc = self.gdb.register(cpu, RIP).await?;
                        if !step.addrs.contains(&pc) {
                            // Stopped for another reason: carry on.
                            self.resume(&runnable).await?;
                            continue;
                        }
                        let task = match step.cpus.contains(&cpu) {
                            true => Some(self.task_on(cpu, pc).await?),
                            false => None,
                        };
                        let counts = match (&task, &step.task) {
                            (None, _) => false,
                            (Some(_), None) => true,
                            (Some(running), Some(wanted)) => running == wanted,
                        };
                        if counts {
                            hits += 1;
                        }
                        if counts && hits == step.hit {
                            self.set(&step.addrs, false).await?;
                            held.insert(cpu);
                            attempt.reached.push(Reached {
                                step: step.name.clone(),
                                cpu,
                                task,
                                at_ms: self.ms(),
                            });
                            continue 'steps;
                        }
                        if !counts {
                            attempt.passes += 1;
                            if let Some(other) = task {
                                *attempt.other_tasks.entry(other).or_default() += 1;
                            }
                        }
                        self.step_over(cpu, &step.addrs).await?;
                        self.resume(&runnable).await?;
                        continue;
                    }
                    Waited::Deadline => {
                        self.gdb.interrupt().await?;
                        let counted = match hits {
                            0 => String::new(),
                            n => format!(" (stopped there {n} of the {} times)", step.hit),
                        };
                        format!(
                            "not reached within {:?}{counted}: {}",
                            step.deadline,
                            self.whereabouts(&runnable).await?
                        )
                    }
                    Waited::Ended => {
                        self.gdb.interrupt().await?;
                        "the run ended".to_string()
                    }
                };
                self.set(&step.addrs, false).await?;
                attempt.missed = Some((step.name.clone(), why));
                break 'steps;
            }
        }
        let all: BTreeSet<Cpu> = self.all.iter().copied().collect();
        self.resume(&all).await?;
        attempt.resumed_ms = self.ms();
        Ok(attempt)
    }
}

fn list(cpus: &BTreeSet<Cpu>) -> String {
    cpus.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The controller of one run.
pub struct Controller {
    positions: Option<oneshot::Sender<Vec<Position>>>,
    /// Fires once the first attempt is armed (or the controller gave up): the workload's
    /// threads may start.
    armed: Option<oneshot::Receiver<()>>,
    /// Fires when the source has nothing more to attempt.
    exhausted: Option<oneshot::Receiver<()>>,
    end: watch::Sender<bool>,
    task: JoinHandle<ScheduleRecord>,
}

/// What a run hears from its controller ([`Controller::signal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Armed,
    Exhausted,
}

/// Resolves when `rx` fires, then never again; when its sender is dropped instead (the
/// controller ended without saying it), only if `dropped_fires` (for `armed`: the workload
/// goes anyway; a controller that failed did not run out of attempts).
async fn once(rx: &mut Option<oneshot::Receiver<()>>, dropped_fires: bool) {
    let Some(r) = rx.as_mut() else {
        return std::future::pending().await;
    };
    let fired = r.await.is_ok();
    *rx = None;
    if !fired && !dropped_fires {
        std::future::pending().await
    }
}

/// How long the controller gets to let go of the machine when the run ends.
const LET_GO: Duration = Duration::from_secs(10);

impl Controller {
    /// Start the controller of a run whose QEMU serves its gdbstub at `socket`; `start` is
    /// when QEMU started (the record's clock).
    pub fn start(plan: Plan, socket: PathBuf, start: Instant) -> Controller {
        let (positions, positioned) = oneshot::channel();
        let (end, ended) = watch::channel(false);
        let (armed_tx, armed) = oneshot::channel();
        let (exhausted_tx, exhausted) = oneshot::channel();
        let signals = Signals {
            armed: armed_tx,
            exhausted: exhausted_tx,
        };
        let task = tokio::spawn(control(plan, socket, start, positioned, ended, signals));
        Controller {
            armed: Some(armed),
            exhausted: Some(exhausted),
            positions: Some(positions),
            end,
            task,
        }
    }

    /// The workload's threads are in position: arm the schedule.
    pub fn positioned(&mut self, threads: Vec<Position>) {
        if let Some(tx) = self.positions.take() {
            let _ = tx.send(threads);
        }
    }

    /// The next thing the run hears from the controller: the first attempt is armed (or the
    /// controller gave up on it): the workload's threads may go; or the source has nothing
    /// more to attempt: the run may end. Each is heard once; after both, pending forever.
    pub async fn signal(&mut self) -> Signal {
        tokio::select! {
            () = once(&mut self.armed, true) => Signal::Armed,
            () = once(&mut self.exhausted, false) => Signal::Exhausted,
        }
    }

    /// Stop attempting (a report is being printed, or the run is over).
    pub fn end(&self) {
        let _ = self.end.send(true);
    }

    /// End, let go of the machine (every vCPU running, no breakpoint) and give the record.
    pub async fn finish(self) -> ScheduleRecord {
        self.end();
        let abort = self.task.abort_handle();
        match tokio::time::timeout(LET_GO, self.task).await {
            Ok(Ok(record)) => record,
            Ok(Err(e)) => ScheduleRecord {
                error: Some(format!("the schedule's controller failed: {e}")),
                ..ScheduleRecord::default()
            },
            Err(_) => {
                abort.abort();
                ScheduleRecord {
                    error: Some(format!("the controller did not let go within {LET_GO:?}")),
                    ..ScheduleRecord::default()
                }
            }
        }
    }
}

async fn control(
    plan: Plan,
    socket: PathBuf,
    start: Instant,
    positioned: oneshot::Receiver<Vec<Position>>,
    mut end: watch::Receiver<bool>,
    signals: Signals,
) -> ScheduleRecord {
    let mut record = ScheduleRecord::default();
    let positions = tokio::select! {
        p = positioned => p.ok(),
        _ = end.wait_for(|e| *e) => None,
    };
    let Some(positions) = positions else {
        return record;
    };
    let steps = match arm(&plan.steps, &positions) {
        Ok(steps) => steps,
        Err(e) => {
            record.error = Some(e);
            return record;
        }
    };
    // `arm` keeps the plan's order.
    record.steps = steps
        .iter()
        .zip(&plan.steps)
        .map(|(s, (step, _))| {
            let task = s.task.as_deref().unwrap_or("any task");
            format!(
                "{}: {task} on vCPU {} at {}",
                s.name,
                list(&s.cpus),
                step.at
            )
        })
        .collect();
    record.armed_ms = Some(start.elapsed().as_millis() as u64);
    let run = Run {
        plan: &plan,
        steps: &steps,
        positions: &positions,
    };
    if let Err(e) = drive(run, &socket, start, end, signals, &mut record).await {
        // A machine that went away ended the run; it did not fail the schedule.
        if e.downcast_ref::<Gone>().is_none() {
            record.error = Some(format!("{e:#}"));
        }
    }
    record
}

/// What the controller tells the run: the first attempt is armed; nothing is left to attempt.
struct Signals {
    armed: oneshot::Sender<()>,
    exhausted: oneshot::Sender<()>,
}

/// What a controller attempts: the plan's steps armed, or, with a source, each interleaving it
/// hands out, armed where the workload's threads are.
#[derive(Clone, Copy)]
struct Run<'a> {
    plan: &'a Plan,
    steps: &'a [Armed],
    positions: &'a [Position],
}

async fn drive(
    run: Run<'_>,
    socket: &Path,
    start: Instant,
    end: watch::Receiver<bool>,
    signals: Signals,
    record: &mut ScheduleRecord,
) -> Result<()> {
    // Connecting stops the machine: the first attempt starts from there, and the workload's
    // threads go once it is armed.
    let mut gdb = Gdb::connect(socket).await?;
    let all = match gdb.cpus().await {
        Ok(all) => all,
        Err(e) => return let_go(gdb).await.and(Err(e)),
    };
    let _ = signals.armed.send(());
    let mut exhausted = Some(signals.exhausted);
    let mut stopped = true;
    let plan = run.plan;
    let mut driver = Driver {
        gdb,
        name_of: plan.name_of.clone(),
        start,
        all,
        end,
        tasks: plan.tasks,
        text: plan.text,
        comm_at: None,
    };
    let mut result = Ok(());
    while !driver.ended() {
        let (id, explored) = match plan.source.as_ref().map(|s| s.next()) {
            None => (None, None),
            Some(Next::Done) => {
                record.exhausted_ms = Some(start.elapsed().as_millis() as u64);
                if let Some(tx) = exhausted.take() {
                    let _ = tx.send(());
                }
                break;
            }
            Some(Next::Sample(interval)) => {
                match driver.sample(std::mem::take(&mut stopped)).await {
                    Ok(seen) => {
                        if let Some(source) = &plan.source {
                            source.sampled(&seen);
                        }
                        record.samples.extend(seen);
                    }
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
                let mut end = driver.end.clone();
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = end.wait_for(|e| *e) => {}
                }
                continue;
            }
            Some(Next::Attempt(id, steps)) => match arm(&steps, run.positions) {
                Ok(armed) => (Some(id), Some(armed)),
                Err(e) => {
                    if let Some(source) = &plan.source {
                        source.attempted(id, false);
                    }
                    result = Err(anyhow::anyhow!("interleaving {id}: {e}"));
                    break;
                }
            },
        };
        let steps = explored.as_deref().unwrap_or(run.steps);
        let free = match driver.attempt(steps, std::mem::take(&mut stopped)).await {
            Ok(mut attempt) => {
                if let (Some(id), Some(source)) = (id, &plan.source) {
                    source.attempted(id, attempt.applied());
                    attempt.interleaving = Some(id);
                }
                let free = attempt.held().max(plan.gap);
                record.attempts.push(attempt);
                free
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        // The machine runs freely between attempts: for `gap`, and at least as long as the
        // attempt kept vCPUs stopped — what they were needed for meanwhile (another vCPU's
        // stop_machine(), an IPI) gets done, and no vCPU is stopped more than half the time.
        let mut end = driver.end.clone();
        tokio::select! {
            _ = tokio::time::sleep(free) => {}
            _ = end.wait_for(|e| *e) => {}
        }
    }
    let released = let_go(driver.gdb).await;
    result.and(released)
}

/// Leave the machine as it was before the schedule: stop it if it runs (a stopped stub
/// ignores the interrupt), then detach — every breakpoint goes and every vCPU resumes.
async fn let_go(mut gdb: Gdb) -> Result<()> {
    let _ = gdb.interrupt_within(Duration::from_secs(1)).await;
    gdb.detach().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(thread: u32, role: &str, cpu: Option<u32>) -> Position {
        Position {
            thread,
            role: role.into(),
            cpu,
            tid: 100 + thread,
        }
    }

    #[test]
    fn roles_become_the_vcpus_their_threads_are_pinned_to() {
        let positions = [
            position(0, "closer", Some(0)),
            position(1, "poller", Some(1)),
            position(2, "poller", Some(2)),
        ];
        assert_eq!(
            cpus_of(&CpuRef::Role("poller".into()), &positions),
            Ok([1, 2].into())
        );
        assert_eq!(cpus_of(&CpuRef::Index(3), &positions), Ok([3].into()));
        let err = cpus_of(&CpuRef::Role("reader".into()), &positions).unwrap_err();
        assert!(err.contains("(its roles: closer, poller)"), "{err}");
        let err = cpus_of(&CpuRef::Role("x".into()), &[position(0, "x", None)]).unwrap_err();
        assert!(err.contains("not pinned"), "{err}");
    }

    #[test]
    fn a_task_keeps_its_name_where_init_task_has_swapper() {
        let mut init_task = vec![0xa5u8; 0x900];
        init_task[0x7d8..0x7e8].copy_from_slice(b"swapper/0\0\0\0\0\0\0\0");
        assert_eq!(comm_offset(&init_task), Some(0x7d8));
        assert_eq!(comm(&init_task[0x7d8..0x7e8]), "swapper/0");
        // A "swapper" that is not a NUL-terminated name is not it.
        let mut noise = vec![0xa5u8; 0x40];
        noise[0x10..0x17].copy_from_slice(b"swapper");
        assert_eq!(comm_offset(&noise), None);
        // A name of all 15 characters ends at the 16th byte.
        assert_eq!(comm(b"a-very-long-rol\0"), "a-very-long-rol");
    }

    #[test]
    fn a_step_whose_vcpu_may_not_run_is_refused_when_armed() {
        let text = "[schedule]\n[[schedule.step]]\nname = \"close\"\ncpu = \"closer\"\n\
                    at = \"f\"\nrun = [\"poller\"]\n";
        #[derive(serde::Deserialize)]
        struct File {
            schedule: crate::config::schedule::RawSchedule,
        }
        let file: File = toml::from_str(text).unwrap();
        let schedule =
            crate::config::schedule::Schedule::from_raw(file.schedule, 2, |_| 1).unwrap();
        let plan = Plan {
            steps: schedule
                .steps
                .into_iter()
                .map(|s| (s, vec![0x1000]))
                .collect(),
            gap: schedule.gap,
            name_of: Arc::new(|_| None),
            tasks: Tasks {
                current: 0x35000,
                init_task: 0xffff_ffff_8260_0000,
            },
            source: None,
            text: None,
        };
        let positions = [
            position(0, "closer", Some(0)),
            position(1, "poller", Some(1)),
        ];
        let err = arm(&plan.steps, &positions).err().unwrap();
        assert_eq!(
            err,
            "step \"close\": run does not let vCPU 0 (the step's closer) run: the step could \
             never be reached"
        );
    }

    fn attempt(missed: Option<(&str, &str)>, resumed_ms: u64) -> Attempt {
        Attempt {
            started_ms: resumed_ms - 10,
            reached: vec![],
            missed: missed.map(|(s, w)| (s.to_string(), w.to_string())),
            passes: 0,
            other_tasks: BTreeMap::new(),
            resumed_ms,
            interleaving: None,
        }
    }

    #[test]
    fn a_record_says_which_step_kept_it_from_being_applied() {
        let mut r = ScheduleRecord {
            armed_ms: Some(5),
            attempts: vec![
                attempt(Some(("close", "not reached within 1s")), 100),
                attempt(Some(("poll", "the run ended")), 200),
                attempt(
                    Some(("close", "not reached within 1s (vCPU(s) 0 ran)")),
                    300,
                ),
            ],
            ..ScheduleRecord::default()
        };
        assert_eq!(r.applied(), 0);
        assert_eq!(
            r.never_applied(),
            "the schedule was never applied: step \"close\" missed in 2 of 3 attempts \
             (not reached within 1s (vCPU(s) 0 ran))"
        );
        r.attempts.push(attempt(None, 400));
        r.attempts.push(attempt(None, 500));
        assert_eq!(r.applied(), 2);
        assert_eq!(r.applied_before(450), 1);
        let unarmed = ScheduleRecord::default();
        assert!(unarmed.never_applied().contains("never armed"));
    }
}
