//! Crash the guest kernel on purpose through /proc/sysrq-trigger ('c'), after `duration_ms`.

use super::Ctx;
use runner::protocol::GuestMsg;

pub fn run(ctx: &Ctx) -> Result<(), String> {
    ctx.chan.send(&GuestMsg::Started {
        workload: ctx.req.workload.clone(),
        threads: 1,
    });
    std::thread::sleep(ctx.req.duration_ms.get());
    std::fs::write("/proc/sysrq-trigger", b"c")
        .map_err(|e| format!("write /proc/sysrq-trigger: {e} (CONFIG_MAGIC_SYSRQ?)"))?;
    Err("the kernel survived a sysrq crash".into())
}
