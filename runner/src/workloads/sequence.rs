//! Several workloads one after the other in the same boot (e.g. a workload and the C
//! fixture it is measured against). Parameter `steps`: a list of
//! `{ workload, duration_ms?, threads?, params? }`.

use super::Ctx;
use runner::protocol::RunRequest;

pub fn run(ctx: &Ctx) -> Result<(), String> {
    let steps = ctx
        .req
        .params
        .get("steps")
        .and_then(|v| v.as_array())
        .ok_or("sequence needs params.steps")?;
    for (i, step) in steps.iter().enumerate() {
        let workload = step
            .get("workload")
            .and_then(|v| v.as_str())
            .ok_or(format!("step {i} has no workload"))?;
        let request = RunRequest {
            workload: workload.to_string(),
            duration_ms: step
                .get("duration_ms")
                .and_then(|v| v.as_u64())
                .unwrap_or(ctx.req.duration_ms),
            heartbeat_ms: ctx.req.heartbeat_ms,
            threads: step
                .get("threads")
                .and_then(|v| v.as_u64())
                .map(|t| t as u32),
            params: step
                .get("params")
                .and_then(|v| v.as_object())
                .cloned()
                .unwrap_or_default(),
            wait_for_go: false,
            seed: None,
            kernel_params: Default::default(),
        };
        super::run(&request, ctx.chan, ctx.nproc, ctx.pid1)
            .map_err(|e| format!("step {i} ({workload}): {e}"))?;
    }
    Ok(())
}
