//! Run a test program (a kselftest binary, a KTAP-printing test) and stream every line it
//! prints, standard output and error in the order written, to the host with the time it was
//! read. The program's own result is its output; this workload fails only when the program
//! cannot be started. A program still running at `timeout_ms` (default: the run's duration)
//! is killed with everything it started, and the host is told so.
//!
//! Parameters: `path`, `args` (list of strings), `timeout_ms`, `name` (observation name;
//! default "selftest").
//!
//! A suite — `programs` (guest paths) and `collection` (the selftest directory) instead of
//! `path` — runs each program in turn as the kernel's kselftest runner does and prints what
//! it prints: a TAP plan of one result per program (`ok 1 selftests: dir: prog`, `# SKIP` for
//! exit status 4, `# TIMEOUT` past `timeout_ms`, `# exit=N`), each program's own output
//! nested under it with `# `. A program that cannot be started (a script: the guest has no
//! shell) is a skip that says why.

use super::{stop_all, Ctx};
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

/// How one program ended.
struct Ended {
    status: Option<std::process::ExitStatus>,
    timed_out: bool,
    lines: u64,
    elapsed_ms: u64,
}

impl Ended {
    fn json(&self, path: &str) -> serde_json::Value {
        serde_json::json!({
            "path": path,
            "exit_status": self.status.and_then(|s| s.code()),
            "signal": self.status.and_then(|s| s.signal()),
            "timed_out": self.timed_out,
            "lines": self.lines,
            "elapsed_ms": self.elapsed_ms,
        })
    }
}

fn timeout(ctx: &Ctx) -> Result<Duration, String> {
    let limit = runner::quantity::param(&ctx.req.params, "timeout_ms")
        .map_err(|e| e.to_string())?
        .unwrap_or(ctx.req.duration_ms);
    Ok(limit.get())
}

/// A line of the runner's own, sent as the program's lines are.
fn say(ctx: &Ctx, line: String) {
    ctx.chan.send(&GuestMsg::Output {
        at_ms: monotonic_ms(),
        line,
        continued: false,
    });
}

pub fn run(ctx: &Ctx) -> Result<(), String> {
    let p = &ctx.req.params;
    let name = p
        .get("name")
        .and_then(|v| v.as_str())
        .unwrap_or(runner::protocol::SELFTEST_OBSERVATION);
    if let Some(programs) = p.get("programs").and_then(|v| v.as_array()) {
        let programs: Vec<&str> = programs.iter().filter_map(|v| v.as_str()).collect();
        return suite(ctx, name, &programs);
    }
    let (path, args) = ctx.program()?;
    ctx.chan.send(&GuestMsg::Started {
        workload: ctx.req.workload.clone(),
        threads: 1,
    });
    let ended = run_one(ctx, path, &args, timeout(ctx)?, "")?;
    ctx.chan.send(&GuestMsg::Observation {
        name: name.to_string(),
        value: ended.json(path),
    });
    Ok(())
}

/// The programs one after the other, in the kselftest runner's form.
fn suite(ctx: &Ctx, name: &str, programs: &[&str]) -> Result<(), String> {
    let collection = ctx
        .req
        .params
        .get("collection")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let limit = timeout(ctx)?;
    ctx.chan.send(&GuestMsg::Started {
        workload: ctx.req.workload.clone(),
        threads: 1,
    });
    say(ctx, "TAP version 13".into());
    say(ctx, format!("1..{}", programs.len()));
    let mut ends = Vec::new();
    for (i, path) in programs.iter().enumerate() {
        let base = path.rsplit('/').next().unwrap_or(path);
        let title = format!("selftests: {collection}: {base}");
        say(ctx, format!("# {title}"));
        let n = i + 1;
        match run_one(ctx, path, &[], limit, "# ") {
            Err(e) => say(ctx, format!("ok {n} {title} # SKIP {e}")),
            Ok(ended) => {
                let line = match (ended.timed_out, ended.status.and_then(|s| s.code())) {
                    (true, _) => {
                        format!("not ok {n} {title} # TIMEOUT {} seconds", limit.as_secs())
                    }
                    (false, Some(0)) => format!("ok {n} {title}"),
                    (false, Some(KSFT_SKIP)) => format!("ok {n} {title} # SKIP"),
                    (false, Some(code)) => format!("not ok {n} {title} # exit={code}"),
                    (false, None) => format!(
                        "not ok {n} {title} # killed by signal {}",
                        ended.status.and_then(|s| s.signal()).unwrap_or(0)
                    ),
                };
                say(ctx, line);
                ends.push(ended.json(path));
            }
        }
    }
    ctx.chan.send(&GuestMsg::Observation {
        name: name.to_string(),
        value: serde_json::json!({ "programs": ends }),
    });
    Ok(())
}

/// The kselftest convention for "skipped" as an exit status.
const KSFT_SKIP: i32 = 4;

/// Read `reader` line by line, each line in pieces of at most `max` bytes: `send(text,
/// continued)` for each piece, `continued` for every piece after a line's first. Returns how
/// many lines (not pieces) were read.
fn pieces(mut reader: impl BufRead, max: usize, mut send: impl FnMut(String, bool)) -> u64 {
    let mut count = 0u64;
    let mut buf = Vec::new();
    let mut continued = false;
    loop {
        buf.clear();
        match (&mut reader).take(max as u64).read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let ended = buf.last() == Some(&b'\n');
                let line = String::from_utf8_lossy(&buf);
                send(line.trim_end_matches(['\n', '\r']).to_string(), continued);
                if !continued {
                    count += 1;
                }
                continued = !ended;
            }
        }
    }
    count
}

/// Run one program to its end or `timeout`, its lines sent with `prefix` before each.
fn run_one(
    ctx: &Ctx,
    path: &str,
    args: &[String],
    timeout: Duration,
    prefix: &'static str,
) -> Result<Ended, String> {
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
        .args(args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(stderr)
        .process_group(0);
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {path}: {e}"))?;
    // The command holds the pipe's write ends: the reader sees the end only once they go.
    drop(command);
    let chan = ctx.chan.clone();
    let (lines_done, lines_count) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let count = pieces(BufReader::new(reader), MAX_LINE, |line, continued| {
            chan.send(&GuestMsg::Output {
                at_ms: monotonic_ms(),
                line: if continued {
                    line
                } else {
                    format!("{prefix}{line}")
                },
                continued,
            });
        });
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
    Ok(Ended {
        status,
        timed_out,
        lines,
        elapsed_ms: start.elapsed().as_millis() as u64,
    })
}

#[cfg(test)]
mod tests {
    /// A line past the bound comes as a first piece and continued pieces; the next line is
    /// a line again.
    #[test]
    fn a_long_line_comes_in_pieces_marked_as_continued() {
        let text = format!("{}Bail out! phantom\nok 1 x\n", "x".repeat(10));
        let mut got = Vec::new();
        let lines = super::pieces(text.as_bytes(), 8, |l, c| got.push((l, c)));
        assert_eq!(lines, 2);
        assert!(!got[0].1 && got[1..got.len() - 1].iter().all(|(_, c)| *c));
        assert_eq!(got.last().unwrap(), &("ok 1 x".to_string(), false));
        let joined: String = got[..got.len() - 1]
            .iter()
            .map(|(l, _)| l.as_str())
            .collect();
        assert_eq!(joined, format!("{}Bail out! phantom", "x".repeat(10)));
    }
}
