//! The path-proving workload: each pinned thread counts real getppid(2) syscalls until the
//! deadline, sampling the CPU it runs on.

use super::stress::{one_per_cpu, run_slots, Worker};
use super::Ctx;

const BATCH: u64 = 256;

fn count(worker: &mut Worker) -> Result<(), String> {
    let mut n = 0u64;
    while !worker.should_stop() {
        for _ in 0..BATCH {
            // A real syscall on every iteration: getppid is never cached by libc.
            crate::sys::getppid_syscall();
        }
        n += BATCH;
        worker.set_count(n);
        worker.sample_cpu();
    }
    Ok(())
}

pub fn run(ctx: &Ctx) -> Result<(), String> {
    run_slots(ctx, &one_per_cpu(ctx, "counter")?, count)
}
