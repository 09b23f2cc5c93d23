//! Run a test program (a kselftest binary, a KTAP-printing test) and stream every line it
//! prints, standard output and error in the order written, to the host with the time it was
//! read. The program's own result is its output; this workload fails only when the program
//! cannot be started. A program still running at `timeout_ms` (default: the run's duration)
//! is killed with everything it started, and the host is told so.
//!
//! Parameters: `path`, `args` (list of strings), `timeout_ms`, `name` (observation name;
//! default "selftest").

use super::Ctx;
use runner::protocol::GuestMsg;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest line sent as one (a longer one comes in pieces).
const MAX_LINE: usize = 4096;

/// CLOCK_MONOTONIC in milliseconds: what the kernel's console timestamps count.
fn monotonic_ms() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1000 + t.tv_nsec() as u64 / 1_000_000)
        .unwrap_or(0)
}

/// Kill the program and what it started: its process group, and under the lab's own init
/// (where nothing else runs in the guest) every process but init and the agent, whatever
/// group or session the program moved its children to.
fn stop_all(child: u32, whole_guest: bool) {
    // SAFETY: kill(2) on the group the child leads (process_group(0)); no memory is
    // involved, ESRCH is fine.
    unsafe { libc::kill(-(child as i32), libc::SIGKILL) };
    if whole_guest {
        // SAFETY: as above; -1 spares init and the caller.
        unsafe { libc::kill(-1, libc::SIGKILL) };
    }
}

pub fn run(ctx: &Ctx) -> Result<(), String> {
    let p = &ctx.req.params;
    let (path, args) = ctx.program()?;
    let timeout = Duration::from_millis(
        p.get("timeout_ms")
            .and_then(|v| v.as_u64())
            .unwrap_or(ctx.req.duration_ms),
    );
    let name = p
        .get("name")
        .and_then(|v| v.as_str())
        .unwrap_or(runner::protocol::SELFTEST_OBSERVATION);
    let (reader, writer) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
    let stderr = writer.try_clone().map_err(|e| format!("pipe: {e}"))?;
    // The program's directory is the working directory (selftests open files beside them).
    // Set in the agent: a spawn that changes directory (posix_spawn's chdir action) answers
    // ENOSYS on the lab's minimal kernels.
    if let Some(dir) = std::path::Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::env::set_current_dir(dir).map_err(|e| format!("cd {}: {e}", dir.display()))?;
    }
    let mut command = Command::new(path);
    command
        .args(&args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(stderr)
        .process_group(0);
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {path}: {e}"))?;
    // The command holds the pipe's write ends: the reader sees the end only once they go.
    drop(command);
    ctx.chan.send(&GuestMsg::Started {
        workload: ctx.req.workload.clone(),
        threads: 1,
    });
    let chan = ctx.chan.clone();
    let (lines_done, lines_count) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(reader);
        let mut count = 0u64;
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match (&mut reader)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut buf)
            {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    chan.send(&GuestMsg::Output {
                        at_ms: monotonic_ms(),
                        line: line.trim_end_matches(['\n', '\r']).to_string(),
                    });
                    count += 1;
                }
            }
        }
        let _ = lines_done.send(count);
    });
    // Heartbeats while the program runs: a test may be silent for as long as its own timeout.
    let start = Instant::now();
    let mut last_beat = Instant::now();
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(_) => break None,
        }
        if start.elapsed() >= timeout {
            timed_out = true;
            stop_all(child.id(), ctx.pid1);
            break child.wait().ok();
        }
        if last_beat.elapsed() >= Duration::from_secs(1) {
            ctx.chan.send(&GuestMsg::Progress {
                elapsed_ms: start.elapsed().as_millis() as u64,
                counts: vec![start.elapsed().as_secs()],
            });
            last_beat = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Whatever the program left running still holds the pipe: it goes too.
    stop_all(child.id(), ctx.pid1);
    // A process that escaped the kill (another init's guest) may hold the pipe open: the
    // output read so far is what there is.
    let lines = lines_count
        .recv_timeout(Duration::from_secs(2))
        .unwrap_or_default();
    ctx.chan.send(&GuestMsg::Observation {
        name: name.to_string(),
        value: serde_json::json!({
            "path": path,
            "exit_status": status.and_then(|s| s.code()),
            "signal": status.and_then(|s| s.signal()),
            "timed_out": timed_out,
            "lines": lines,
            "elapsed_ms": start.elapsed().as_millis() as u64,
        }),
    });
    Ok(())
}
