//! Run a program shipped in the initramfs (`--extra` files, benchmark fixtures) and report
//! its standard output as an observation (parsed as JSON when it is JSON).
//!
//! Parameters: `path`, `args` (list of strings), `name` (observation name; default "exec").

use super::Ctx;
use runner::protocol::GuestMsg;
use std::process::Command;

pub fn run(ctx: &Ctx) -> Result<(), String> {
    let p = &ctx.req.params;
    let (path, args) = ctx.program()?;
    let name = p.get("name").and_then(|v| v.as_str()).unwrap_or("exec");
    ctx.chan.send(&GuestMsg::Started {
        workload: ctx.req.workload.clone(),
        threads: 1,
    });
    let out = Command::new(path)
        .args(&args)
        .output()
        .map_err(|e| format!("exec {path}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let value = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::String(stdout));
    ctx.chan.send(&GuestMsg::Observation {
        name: name.to_string(),
        value,
    });
    if !out.status.success() {
        return Err(format!("{path} exited with {}", out.status));
    }
    Ok(())
}
