//! Shared harness for multi-threaded workloads: one worker per thread pinned to a vCPU,
//! per-thread counters streamed as heartbeats, per-thread results sent as each finishes.

use super::Ctx;
use nix::sched::{sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use runner::protocol::{GuestMsg, ThreadResult};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Handed to each worker.
pub struct Worker<'a> {
    pub deadline: Instant,
    counter: &'a AtomicU64,
    cpus_seen: BTreeSet<u32>,
    errors: BTreeMap<String, u64>,
}

impl Worker<'_> {
    /// Publish the running count (read by the heartbeat loop).
    pub fn set_count(&self, count: u64) {
        self.counter.store(count, Ordering::Relaxed);
    }

    /// Record the CPU this thread is on right now (getcpu(2)).
    pub fn sample_cpu(&mut self) {
        let mut cpu: libc::c_uint = 0;
        let rc = unsafe {
            libc::syscall(
                libc::SYS_getcpu,
                &mut cpu as *mut libc::c_uint,
                std::ptr::null_mut::<libc::c_uint>(),
                std::ptr::null_mut::<libc::c_void>(),
            )
        };
        if rc == 0 {
            self.cpus_seen.insert(cpu);
        }
    }
}

fn pin(cpu: u32) -> Result<(), String> {
    let mut set = CpuSet::new();
    set.set(cpu as usize)
        .map_err(|e| format!("cpu {cpu} out of range: {e}"))?;
    sched_setaffinity(Pid::from_raw(0), &set).map_err(|e| format!("pin to cpu {cpu}: {e}"))
}

/// Run `threads` workers, worker `i` pinned to vCPU `i % nproc`. Returns when all are done.
pub fn run_pinned<F>(ctx: &Ctx, work: F) -> Result<(), String>
where
    F: Fn(&mut Worker) + Sync,
{
    let threads = ctx.threads();
    let start = Instant::now();
    let deadline = start + Duration::from_millis(ctx.req.duration_ms);
    let counters: Arc<Vec<AtomicU64>> = Arc::new((0..threads).map(|_| AtomicU64::new(0)).collect());
    let (finished_tx, finished_rx) = mpsc::channel::<()>();
    ctx.chan.send(&GuestMsg::Started {
        workload: ctx.req.workload.clone(),
        threads,
    });
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for index in 0..threads {
            let cpu = index % ctx.nproc;
            let (counters, work, chan) = (&counters, &work, ctx.chan);
            let finished = finished_tx.clone();
            handles.push(scope.spawn(move || -> Result<(), String> {
                let pinned = pin(cpu);
                let mut worker = Worker {
                    deadline,
                    counter: &counters[index as usize],
                    cpus_seen: BTreeSet::new(),
                    errors: BTreeMap::new(),
                };
                worker.sample_cpu();
                let outcome = pinned.map(|()| work(&mut worker));
                chan.send(&GuestMsg::ThreadResult(ThreadResult {
                    thread: index,
                    pinned_cpu: outcome.is_ok().then_some(cpu),
                    cpus_seen: worker.cpus_seen.iter().copied().collect(),
                    count: worker.counter.load(Ordering::Relaxed),
                    errors: worker.errors,
                }));
                let _ = finished.send(());
                outcome
            }));
        }
        drop(finished_tx);
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
