//! Child processes (make, git, tar, QEMU) that cannot outlive `lab` and that the terminal's
//! Ctrl-C does not reach behind its back: each runs in a process group of its own (so only
//! `lab` gets the signal, and `lab` decides how its children stop) and gets SIGKILL when the
//! thread that started it dies (`PR_SET_PDEATHSIG`: a `lab` killed with -9 takes them along).
//! A child waited for here is stopped when the user interrupts `lab`: SIGTERM to its group
//! (make then deletes the targets it was writing), SIGKILL if it lingers.

use crate::interrupt::{self, Interrupted};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a child's group gets between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(10);
/// How often a waiting loop looks at the child and at the interrupt flag.
const POLL: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// Its source is the [`Interrupted`], so `interrupt::is` finds it under any context.
    #[error("interrupted")]
    Interrupted(
        #[from]
        #[source]
        Interrupted,
    ),
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("waiting for {program}: {source}")]
    Wait {
        program: String,
        source: std::io::Error,
    },
    /// Stopped after its time limit (a compiler reading a FIFO would wait forever).
    #[error("{program} was stopped after {limit:?}, its time limit")]
    TimedOut { program: String, limit: Duration },
}

/// Runs between fork and exec of every child: die with the parent.
fn die_with_parent() -> std::io::Result<()> {
    // SAFETY: prctl and getppid are async-signal-safe and touch no memory of the parent;
    // nothing else runs between fork and exec.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // The parent may have died between fork and prctl.
        if libc::getppid() == 1 {
            libc::_exit(1);
        }
    }
    Ok(())
}

/// Contain a blocking child: own process group, dies with `lab`.
pub fn contain(cmd: &mut Command) -> &mut Command {
    cmd.process_group(0);
    // SAFETY: the closure only calls async-signal-safe functions (see die_with_parent).
    unsafe { cmd.pre_exec(die_with_parent) }
}

/// Contain an async child: own process group, dies with `lab`, killed when dropped.
pub fn contain_async(cmd: &mut tokio::process::Command) -> &mut tokio::process::Command {
    cmd.process_group(0).kill_on_drop(true);
    // SAFETY: the closure only calls async-signal-safe functions (see die_with_parent).
    unsafe { cmd.pre_exec(die_with_parent) }
}

/// Send `signal` to the whole process group led by `pid`.
pub fn signal_group(pid: u32, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid as i32), signal);
}

/// Stop a child's group: SIGTERM, then SIGKILL after [`TERM_GRACE`]; reaped.
pub fn terminate(child: &mut Child) {
    signal_group(child.id(), nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + TERM_GRACE;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            // The leader is gone; anything left in its group goes now.
            signal_group(child.id(), nix::sys::signal::Signal::SIGKILL);
            return;
        }
        std::thread::sleep(POLL);
    }
    signal_group(child.id(), nix::sys::signal::Signal::SIGKILL);
    let _ = child.wait();
}

fn program(cmd: &Command) -> String {
    cmd.get_program().to_string_lossy().into_owned()
}

/// Wait for a contained child, stopping it if the user interrupts `lab`.
pub fn wait(child: &mut Child, program: &str) -> Result<ExitStatus, ChildError> {
    wait_within(child, program, None)
}

/// [`wait`], and stop the child once `limit` has passed.
fn wait_within(
    child: &mut Child,
    program: &str,
    limit: Option<Duration>,
) -> Result<ExitStatus, ChildError> {
    let deadline = limit.map(|l| Instant::now() + l);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) => {}
            Err(source) => {
                return Err(ChildError::Wait {
                    program: program.to_string(),
                    source,
                })
            }
        }
        if interrupt::requested() {
            terminate(child);
            return Err(Interrupted.into());
        }
        if let (Some(deadline), Some(limit)) = (deadline, limit) {
            if Instant::now() >= deadline {
                terminate(child);
                return Err(ChildError::TimedOut {
                    program: program.to_string(),
                    limit,
                });
            }
        }
        std::thread::sleep(POLL);
    }
}

/// Run a short step contained and to its end even if the user interrupts `lab` meanwhile
/// (a read that must not come back empty because it was cut); its output captured.
pub fn output_to_end(cmd: &mut Command) -> std::io::Result<Output> {
    contain(cmd).stdin(Stdio::null()).output()
}

/// Run `cmd` contained, capturing its output; stopped if the user interrupts `lab`.
pub fn output(cmd: &mut Command) -> Result<Output, ChildError> {
    output_within(cmd, None)
}

/// [`output`], the child stopped once `limit` has passed.
pub fn output_within(cmd: &mut Command, limit: Option<Duration>) -> Result<Output, ChildError> {
    interrupt::check()?;
    let name = program(cmd);
    contain(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| ChildError::Spawn {
        program: name.clone(),
        source,
    })?;
    // Both pipes are drained while waiting, so a chatty child never blocks on a full pipe.
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .map(|stream| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut s) = stream {
                let _ = s.read_to_end(&mut bytes);
            }
            bytes
        })
    })
    .collect();
    let status = wait_within(&mut child, &name, limit);
    let mut streams = readers.into_iter().map(|r| r.join().unwrap_or_default());
    let status = status?;
    Ok(Output {
        status,
        stdout: streams.next().unwrap_or_default(),
        stderr: streams.next().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_past_its_time_limit_is_stopped_and_named() {
        let started = Instant::now();
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let e = output_within(&mut cmd, Some(Duration::from_millis(200))).unwrap_err();
        assert!(matches!(e, ChildError::TimedOut { .. }), "{e}");
        assert!(e.to_string().contains("sleep"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn output_captures_both_streams_and_the_status() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
        let out = output(&mut cmd).unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
    }

    #[test]
    fn an_interrupted_child_is_an_interruption() {
        let e = anyhow::Error::from(ChildError::from(Interrupted)).context("make bzImage");
        assert!(interrupt::is(&e));
    }

    #[test]
    fn a_missing_program_is_named() {
        let e = output(&mut Command::new("/nonexistent/lab-tool")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/lab-tool"), "{e}");
    }

    #[test]
    fn a_contained_child_leads_its_own_group() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "cut -d' ' -f5 /proc/$$/stat; echo $$"]);
        let out = output(&mut cmd).unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines().map(|l| l.trim().to_string());
        let (pgid, pid) = (lines.next().unwrap(), lines.next().unwrap());
        assert_eq!(pgid, pid, "{text}");
    }
}
