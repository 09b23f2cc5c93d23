//! Crash the guest kernel on purpose through /proc/sysrq-trigger ('c'), after `duration_ms`.

use super::Ctx;
use runner::protocol::GuestMsg;
use std::time::Duration;

pub fn run(ctx: &Ctx) -> Result<(), String> {
    ctx.chan.send(&GuestMsg::Started {
        workload: ctx.req.workload.clone(),
        threads: 1,
    });
    std::thread::sleep(Duration::from_millis(ctx.req.duration_ms));
    std::fs::write("/proc/sysrq-trigger", b"c")
        .map_err(|e| format!("write /proc/sysrq-trigger: {e} (CONFIG_MAGIC_SYSRQ?)"))?;
    Err("the kernel survived a sysrq crash".into())
}
