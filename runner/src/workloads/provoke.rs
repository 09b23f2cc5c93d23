//! One fault provoked through LKDTM (drivers/misc/lkdtm), for the detector canary: the kernel
//! is expected to report it. `params.type` is the crash type (`WARNING`, `READ_AFTER_FREE`,
//! `HUNG_TASK`, `SOFTLOCKUP`, …), written to /sys/kernel/debug/provoke-crash/DIRECT from a
//! thread of its own: a fault that never returns (a task in D state, a CPU spinning with
//! preemption off) leaves the agent free to keep its heartbeats. `hung_task_timeout_secs`
//! and `watchdog_thresh`, when given, are written to /proc/sys/kernel/ first, so the
//! detectors report within seconds. Observation `provoke`: the type, and whether the write
//! returned.

use super::Ctx;
use runner::protocol::GuestMsg;
use std::time::Duration;

const DIRECT: &str = "/sys/kernel/debug/provoke-crash/DIRECT";

/// How long the write gets to return before the fault counts as one that does not.
const RETURNS_WITHIN: Duration = Duration::from_secs(1);

pub fn run(ctx: &Ctx) -> Result<(), String> {
    let kind = ctx
        .req
        .params
        .get("type")
        .and_then(|v| v.as_str())
        .ok_or("params.type: an LKDTM crash type (WARNING, READ_AFTER_FREE, HUNG_TASK, ...)")?;
    if kind.is_empty()
        || !kind
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(format!("params.type: {kind:?} is not an LKDTM crash type"));
    }
    for (param, file) in [
        (
            "hung_task_timeout_secs",
            "/proc/sys/kernel/hung_task_timeout_secs",
        ),
        ("watchdog_thresh", "/proc/sys/kernel/watchdog_thresh"),
    ] {
        // Checked (1 to 86400 s) with the other quantities when the request came.
        let value =
            runner::quantity::param::<u64>(&ctx.req.params, param).map_err(|e| e.to_string())?;
        if let Some(value) = value {
            std::fs::write(file, value.to_string()).map_err(|e| format!("write {file}: {e}"))?;
        }
    }
    ctx.chan.send(&GuestMsg::Started {
        workload: ctx.req.workload.clone(),
        threads: 1,
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let crash = kind.to_string();
    std::thread::spawn(move || {
        let _ = tx.send(std::fs::write(DIRECT, crash.as_bytes()));
    });
    let returned = match rx.recv_timeout(RETURNS_WITHIN) {
        Ok(Ok(())) => true,
        Ok(Err(e)) => return Err(format!("write {kind} to {DIRECT}: {e} (CONFIG_LKDTM?)")),
        Err(_) => false,
    };
    ctx.chan.send(&GuestMsg::Observation {
        name: "provoke".into(),
        value: serde_json::json!({ "type": kind, "returned": returned }),
    });
    std::thread::sleep(ctx.req.duration_ms.get().saturating_sub(RETURNS_WITHIN));
    Ok(())
}
