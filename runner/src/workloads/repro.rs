//! Run a reproducer the way syzbot's repro runs do: the program (a syzkaller C reproducer:
//! threads, no harness: its threads spread over the vCPUs) runs for the whole duration,
//! started again whenever it exits early; `procs` copies at once (default one, as syzbot runs
//! a C reproducer). Its output is not read (reproducers print little; the
//! kernel's console is the result). What it did comes back as one thread result per copy:
//! how many times it was started, and how its runs ended.
//!
//! Parameters: `path`, `args` (list of strings), `procs` (copies at once; default 1).

use super::{stop_all, Ctx};
use runner::protocol::{GuestMsg, ThreadResult};
use std::collections::BTreeMap;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Copy {
    child: Option<Child>,
    starts: u64,
    /// How its runs ended: `exit=N`, `signal=N`.
    ends: BTreeMap<String, u64>,
}

fn start(path: &str, args: &[String]) -> Result<Child, String> {
    Command::new(path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {path}: {e}"))
}

fn how(status: std::process::ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit={code}"),
        (None, Some(signal)) => format!("signal={signal}"),
        _ => "unknown".into(),
    }
}

pub fn run(ctx: &Ctx) -> Result<(), String> {
    let (path, args) = ctx.program()?;
    let procs = runner::quantity::param::<runner::quantity::Threads>(&ctx.req.params, "procs")
        .map_err(|e| e.to_string())?
        .map_or(1, runner::quantity::Threads::get);
    // The program's directory is the working directory, as for test programs.
    if let Some(dir) = std::path::Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::env::set_current_dir(dir).map_err(|e| format!("cd {}: {e}", dir.display()))?;
    }
    let mut copies = Vec::new();
    for _ in 0..procs {
        copies.push(Copy {
            child: Some(start(path, &args)?),
            starts: 1,
            ends: BTreeMap::new(),
        });
    }
    ctx.chan.send(&GuestMsg::Started {
        workload: ctx.req.workload.clone(),
        threads: procs,
    });
    let began = Instant::now();
    let deadline = began + ctx.req.duration_ms.get();
    let heartbeat = Duration::from_millis(ctx.req.heartbeat_ms.max(100));
    let mut last_beat = Instant::now();
    while Instant::now() < deadline {
        for copy in &mut copies {
            let ended = match copy.child.as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => Some(how(status)),
                Some(Err(e)) => Some(format!("wait: {e}")),
                _ => None,
            };
            if let Some(how) = ended {
                // What the copy left behind in its group goes with it.
                if let Some(child) = copy.child.take() {
                    stop_all(child.id(), false);
                }
                *copy.ends.entry(how).or_default() += 1;
                copy.child = Some(start(path, &args)?);
                copy.starts += 1;
            }
        }
        if last_beat.elapsed() >= heartbeat {
            ctx.chan.send(&GuestMsg::Progress {
                elapsed_ms: began.elapsed().as_millis() as u64,
                counts: copies.iter().map(|c| c.starts).collect(),
            });
            last_beat = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for copy in &mut copies {
        if let Some(mut child) = copy.child.take() {
            stop_all(child.id(), ctx.pid1);
            let _ = child.wait();
        }
    }
    for (i, copy) in copies.into_iter().enumerate() {
        ctx.chan.send(&GuestMsg::ThreadResult(ThreadResult {
            thread: i as u32,
            role: "repro".into(),
            pinned_cpu: None,
            cpus_seen: vec![],
            count: copy.starts,
            errors: copy.ends,
        }));
    }
    Ok(())
}
