//! The path-proving workload: each pinned thread counts real getppid(2) syscalls until the
//! deadline, sampling the CPU it runs on.

use super::stress::{run_pinned, Worker};
use super::Ctx;
use std::time::Instant;

const BATCH: u64 = 256;

fn count(worker: &mut Worker) {
    let mut n = 0u64;
    while Instant::now() < worker.deadline {
        for _ in 0..BATCH {
            // A real syscall on every iteration: getppid is never cached by libc.
            unsafe { libc::syscall(libc::SYS_getppid) };
        }
        n += BATCH;
        worker.set_count(n);
        worker.sample_cpu();
    }
}

pub fn run(ctx: &Ctx) -> Result<(), String> {
    run_pinned(ctx, count)
}
