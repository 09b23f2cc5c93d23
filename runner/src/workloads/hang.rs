//! A workload that never makes progress: every pinned thread blocks in read(2) on a pipe
//! nobody writes to. The host must notice the missing heartbeats and end the run.

use super::stress::{one_per_cpu, run_slots};
use super::Ctx;
use std::io::Read;

pub fn run(ctx: &Ctx) -> Result<(), String> {
    let (reader, _writer) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
    run_slots(ctx, &one_per_cpu(ctx, "sleeper")?, |_worker| {
        let mut reader = reader.try_clone().map_err(|e| format!("dup pipe: {e}"))?;
        let mut byte = [0u8; 1];
        let _ = reader.read(&mut byte);
        Ok(())
    })
}
