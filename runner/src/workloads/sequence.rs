//! Several workloads one after the other in the same boot (e.g. a workload and the C
//! fixture it is measured against). Parameter `steps`: a list of
//! `{ workload, duration_ms?, threads?, params? }`.

use super::Ctx;
use runner::protocol::RunRequest;
use runner::quantity::param;

pub fn run(ctx: &Ctx) -> Result<(), String> {
    let steps = ctx
        .req
        .params
        .get("steps")
        .and_then(|v| v.as_array())
        .ok_or("sequence needs params.steps")?;
    for (i, step) in steps.iter().enumerate() {
        let step = step.as_object().ok_or(format!("step {i} is not a table"))?;
        let workload = step
            .get("workload")
            .and_then(|v| v.as_str())
            .ok_or(format!("step {i} has no workload"))?;

        let request = RunRequest {
            workload: workload.to_string(),
            duration_ms: param(step, "duration_ms")
                .map_err(|e| format!("step {i}: {e}"))?
                .unwrap_or(ctx.req.duration_ms),
            heartbeat_ms: ctx.req.heartbeat_ms,
            threads: param(step, "threads").map_err(|e| format!("step {i}: {e}"))?,
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
