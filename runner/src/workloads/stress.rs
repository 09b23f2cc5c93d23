//! Shared harness for multi-threaded workloads: threads with roles, each pinned to a vCPU,
//! per-thread counters streamed as heartbeats, per-thread results sent as each finishes.

use super::Ctx;
use nix::sched::{sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use runner::protocol::{GuestMsg, Position, ThreadResult};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

/// Where one thread runs and what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub role: &'static str,
    /// `None` = not pinned.
    pub cpu: Option<u32>,
}

/// Handed to each worker.
pub struct Worker<'a> {
    pub role: &'static str,
    /// Set when the worker starts working.
    pub deadline: Instant,
    counter: &'a AtomicU64,
    stop: &'a AtomicBool,
    cpus_seen: BTreeSet<u32>,
    errors: BTreeMap<String, u64>,
    /// The scenario's `pace_us`: a sleep after each round.
    pace: Option<Duration>,
}

impl Worker<'_> {
    /// The end of a round: with `pace_us` set, sleep that long, so that rounds come at an
    /// application's rate and not a spin loop's.
    pub fn pace(&self) {
        if let Some(pause) = self.pace {
            std::thread::sleep(pause);
        }
    }

    /// Publish the running count (read by the heartbeat loop).
    pub fn set_count(&self, count: u64) {
        self.counter.store(count, Ordering::Relaxed);
    }

    /// True once the deadline passed or another worker failed.
    pub fn should_stop(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || Instant::now() >= self.deadline
    }

    /// Record the CPU this thread is on right now (getcpu(2)).
    pub fn sample_cpu(&mut self) {
        if let Some(cpu) = crate::sys::getcpu() {
            self.cpus_seen.insert(cpu);
        }
    }

    /// Count a failed syscall by its errno name.
    pub fn error(&mut self, errno: nix::errno::Errno) {
        *self.errors.entry(format!("{errno:?}")).or_default() += 1;
    }
}

fn pin(cpu: u32) -> Result<(), String> {
    let mut set = CpuSet::new();
    set.set(cpu as usize)
        .map_err(|e| format!("cpu {cpu} out of range: {e}"))?;
    sched_setaffinity(Pid::from_raw(0), &set).map_err(|e| format!("pin to cpu {cpu}: {e}"))
}

/// `count` threads of one role on the vCPUs listed in `params[cpus_key]` (cycled), or spread
/// from `first_cpu` on, or unpinned when `params.pin` is false. A listed vCPU the guest does
/// not have is an error: a thread is never pinned elsewhere than the scenario asked.
pub fn place(
    ctx: &Ctx,
    role: &'static str,
    count: u32,
    cpus_key: &str,
    first_cpu: u32,
) -> Result<Vec<Slot>, String> {
    let pinned = ctx
        .req
        .params
        .get("pin")
        .and_then(|v| v.as_bool())
        .unwrap_or(true);
    let listed: Vec<u32> = match ctx.req.params.get(cpus_key) {
        None => Vec::new(),
        Some(v) => v
            .as_array()
            .ok_or_else(|| format!("{cpus_key} must be a list of vCPU numbers, not {v}"))?
            .iter()
            .map(|c| match c.as_u64() {
                Some(c) if c < ctx.nproc as u64 => Ok(c as u32),
                _ => Err(format!(
                    "{cpus_key} names vCPU {c}, but the guest has {} vCPU(s)",
                    ctx.nproc
                )),
            })
            .collect::<Result<_, _>>()?,
    };
    Ok((0..count)
        .map(|i| Slot {
            role,
            cpu: pinned.then(|| {
                if listed.is_empty() {
                    (first_cpu + i) % ctx.nproc
                } else {
                    listed[i as usize % listed.len()]
                }
            }),
        })
        .collect())
}

/// One thread per vCPU, all with the same role.
pub fn one_per_cpu(ctx: &Ctx, role: &'static str) -> Result<Vec<Slot>, String> {
    place(ctx, role, ctx.threads(), "cpus", 0)
}

/// Run one worker per slot. Returns when all are done; a worker's error stops the others.
/// Every worker is pinned before any starts working; then the host hears where each runs and,
/// with `wait_for_go`, the workers wait for its `go`.
pub fn run_slots<F>(ctx: &Ctx, slots: &[Slot], work: F) -> Result<(), String>
where
    F: Fn(&mut Worker) -> Result<(), String> + Sync,
{
    let start = Instant::now();
    let duration = ctx.req.duration_ms.get();
    let pace = runner::quantity::param::<u64>(&ctx.req.params, "pace_us")
        .map_err(|e| e.to_string())?
        .map(Duration::from_micros);
    let counters: Vec<AtomicU64> = slots.iter().map(|_| AtomicU64::new(0)).collect();
    // Shared with the thread that listens for the host's `stop`, which outlives the workload.
    let stop = Arc::new(AtomicBool::new(false));
    let (finished_tx, finished_rx) = mpsc::channel::<()>();
    let in_position = Barrier::new(slots.len() + 1);
    let go = Barrier::new(slots.len() + 1);
    let positions = Mutex::new(Vec::new());
    ctx.chan.send(&GuestMsg::Started {
        workload: ctx.req.workload.clone(),
        threads: slots.len() as u32,
    });
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for (index, slot) in slots.iter().enumerate() {
            let (counters, stop, work, chan) = (&counters, &*stop, &work, ctx.chan);
            let (in_position, positions, go) = (&in_position, &positions, &go);
            let finished = finished_tx.clone();
            // Named after its role: the kernel's name of the task (comm), which a schedule's
            // step checks, and which reports show.
            let thread = std::thread::Builder::new().name(slot.role.to_string());
            let handle = thread.spawn_scoped(scope, move || -> Result<(), String> {
                let mut worker = Worker {
                    role: slot.role,
                    deadline: Instant::now() + duration,
                    counter: &counters[index],
                    stop,
                    cpus_seen: BTreeSet::new(),
                    errors: BTreeMap::new(),
                    pace,
                };
                let pinned = slot.cpu.map(pin).transpose();
                positions.lock().unwrap().push(Position {
                    thread: index as u32,
                    role: slot.role.to_string(),
                    cpu: slot.cpu.filter(|_| pinned.is_ok()),
                    tid: nix::unistd::gettid().as_raw() as u32,
                });
                in_position.wait();
                go.wait();
                worker.deadline = Instant::now() + duration;
                let outcome = pinned.and_then(|_| {
                    worker.sample_cpu();
                    work(&mut worker)
                });
                if outcome.is_err() {
                    stop.store(true, Ordering::Relaxed);
                }
                worker.sample_cpu();
                chan.send(&GuestMsg::ThreadResult(ThreadResult {
                    thread: index as u32,
                    role: slot.role.to_string(),
                    pinned_cpu: slot.cpu,
                    cpus_seen: worker.cpus_seen.iter().copied().collect(),
                    count: worker.counter.load(Ordering::Relaxed),
                    errors: worker.errors,
                }));
                let _ = finished.send(());
                outcome
            });
            // As scope.spawn does: a thread the system cannot start is fatal.
            handles.push(handle.expect("cannot start a worker thread"));
        }
        drop(finished_tx);
        in_position.wait();
        let mut threads = std::mem::take(&mut *positions.lock().unwrap());
        threads.sort_by_key(|p| p.thread);
        ctx.chan.send(&GuestMsg::Positioned { threads });
        if ctx.req.wait_for_go {
            match ctx.chan.receive() {
                Ok(runner::protocol::HostMsg::Go) => {}
                other => {
                    eprintln!("lab-runner: expected the host's go, got {other:?}");
                    stop.store(true, Ordering::Relaxed);
                }
            }
        }
        go.wait();
        listen_for_stop(ctx.chan, &stop);
        heartbeat(ctx, &counters, finished_rx, start);
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("worker thread panicked".into()))
            })
            .collect::<Result<Vec<()>, String>>()
            .map(drop)
    })
}

/// From now on, the host's `stop` ends the workload as its deadline would. The listener stays
/// blocked on the port after the workload ends: the agent serves one request, then returns.
fn listen_for_stop(chan: &crate::channel::Channel, stop: &Arc<AtomicBool>) {
    let (chan, stop) = (chan.clone(), Arc::clone(stop));
    std::thread::spawn(move || {
        while let Ok(msg) = chan.receive() {
            if msg == runner::protocol::HostMsg::Stop {
                stop.store(true, Ordering::Relaxed);
                return;
            }
        }
    });
}

/// Send a `progress` frame every heartbeat interval in which some counter advanced, until
/// every worker has finished.
fn heartbeat(ctx: &Ctx, counters: &[AtomicU64], finished: mpsc::Receiver<()>, start: Instant) {
    let interval = Duration::from_millis(ctx.req.heartbeat_ms.max(10));
    let mut last: Vec<u64> = vec![0; counters.len()];
    let mut next = Instant::now() + interval;
    loop {
        let wait = next.saturating_duration_since(Instant::now());
        match finished.recv_timeout(wait) {
            Ok(()) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        next += interval;
        let counts: Vec<u64> = counters.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        if counts != last {
            ctx.chan.send(&GuestMsg::Progress {
                elapsed_ms: start.elapsed().as_millis() as u64,
                counts: counts.clone(),
            });
            last = counts;
        }
    }
}
