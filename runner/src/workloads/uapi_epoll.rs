//! Deterministic epoll UAPI checks, each reported as an observed value so that two kernels
//! can be compared check by check. The values a current upstream kernel gives are in
//! scenarios/uapi-epoll.toml; release-on-close changes some of them.

use super::Ctx;
use crate::sys::{self, ForkResult};
use nix::errno::Errno;
use runner::protocol::GuestMsg;
use serde_json::{json, Value};
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// fcntl(2) F_DUPFD_QUERY (Linux 6.10+).
const F_DUPFD_QUERY: libc::c_int = 1024 + 3;

fn eventfd(initial: u32, flags: libc::c_int) -> Result<OwnedFd, String> {
    sys::eventfd(initial, flags).map_err(|e| format!("eventfd: {e}"))
}

fn epoll(flags: libc::c_int) -> Result<OwnedFd, String> {
    sys::epoll_create(flags).map_err(|e| format!("epoll_create1: {e}"))
}

fn ctl(ep: RawFd, op: libc::c_int, fd: RawFd, data: u64) -> Result<(), Errno> {
    sys::epoll_ctl(ep, op, fd, libc::EPOLLIN as u32, data)
}

/// "ok" or the errno name.
fn outcome(r: Result<(), Errno>) -> Value {
    match r {
        Ok(()) => json!("ok"),
        Err(e) => json!(format!("{e:?}")),
    }
}

/// The data words of the events ready within `timeout_ms`.
fn wait(ep: RawFd, timeout_ms: i32) -> Result<Vec<u64>, Errno> {
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 8];
    let n = sys::epoll_wait(ep, &mut events, timeout_ms)?;
    Ok(events[..n].iter().map(|e| e.u64).collect())
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    sys::pipe().map_err(|e| format!("pipe: {e}"))
}

fn fork() -> Result<ForkResult, String> {
    sys::fork_single_threaded().map_err(|e| format!("fork: {e}"))
}

/// Run `child` in a forked process whose only way out is `_exit`; the JSON it writes to
/// the pipe it is given comes back. The agent is single-threaded while uapi checks run.
fn in_child(child: impl FnOnce(&mut std::fs::File) -> Value) -> Result<Value, String> {
    let (read_end, write_end) = pipe()?;
    match fork()? {
        ForkResult::Child => {
            drop(read_end);
            let mut out = std::fs::File::from(write_end);
            let value = child(&mut out);
            let _ = out.write_all(value.to_string().as_bytes());
            sys::exit_now(0)
        }
        ForkResult::Parent { child } => {
            drop(write_end);
            let mut text = String::new();
            let _ = std::fs::File::from(read_end).read_to_string(&mut text);
            let _ = nix::sys::wait::waitpid(child, None);
            serde_json::from_str(&text).map_err(|e| format!("child result {text:?}: {e}"))
        }
    }
}

/// Fork a child that runs `f` and exits with its status; returns that status.
fn fork_wait(f: impl FnOnce() -> i32) -> Result<i32, String> {
    match fork()? {
        ForkResult::Child => sys::exit_now(f()),
        ForkResult::Parent { child } => match nix::sys::wait::waitpid(child, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => Ok(code),
            other => Err(format!("child ended with {other:?}")),
        },
    }
}

type Observations = Vec<(&'static str, Value)>;

/// The child's EPOLL_CTL_DEL on the shared epoll instance removes the parent's registration.
fn fork_child_del(obs: &mut Observations) -> Result<(), String> {
    let ep = epoll(libc::EPOLL_CLOEXEC)?;
    let efd = eventfd(1, libc::EFD_CLOEXEC)?;
    ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, efd.as_raw_fd(), 1)
        .map_err(|e| format!("add: {e}"))?;
    let code = fork_wait(
        || match ctl(ep.as_raw_fd(), libc::EPOLL_CTL_DEL, efd.as_raw_fd(), 0) {
            Ok(()) => 0,
            Err(e) => e as i32,
        },
    )?;
    obs.push((
        "fork_child_del_result",
        outcome(if code == 0 {
            Ok(())
        } else {
            Err(Errno::from_raw(code))
        }),
    ));
    let ready = wait(ep.as_raw_fd(), 0).map_err(|e| format!("epoll_wait: {e}"))?;
    obs.push((
        "fork_child_del_removes_parent_registration",
        json!(ready.is_empty()),
    ));
    Ok(())
}

/// A child that exits without closing anything leaves the parent's registration intact.
fn fork_child_exit(obs: &mut Observations) -> Result<(), String> {
    let ep = epoll(libc::EPOLL_CLOEXEC)?;
    let efd = eventfd(1, libc::EFD_CLOEXEC)?;
    ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, efd.as_raw_fd(), 7)
        .map_err(|e| format!("add: {e}"))?;
    fork_wait(|| 0)?;
    let ready = wait(ep.as_raw_fd(), 0).map_err(|e| format!("epoll_wait: {e}"))?;
    obs.push((
        "fork_child_exit_keeps_parent_registration",
        json!(ready == [7]),
    ));
    Ok(())
}

/// The registering process forks and exits; the child keeps getting events on the
/// inherited epoll fd.
fn parent_exit(obs: &mut Observations) -> Result<(), String> {
    let (res_r, res_w) = pipe()?;
    // P registers, forks C and exits at once; C waits for P to be gone, makes the eventfd
    // readable and waits on the inherited epoll fd.
    let p = match fork()? {
        ForkResult::Parent { child } => child,
        ForkResult::Child => {
            drop(res_r);
            let (Ok(ep), Ok(efd), Ok((gone_r, gone_w))) = (epoll(0), eventfd(0, 0), pipe()) else {
                sys::exit_now(2)
            };
            if ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, efd.as_raw_fd(), 9).is_err() {
                sys::exit_now(3)
            }
            if let Ok(ForkResult::Child) = fork() {
                drop(gone_w);
                let mut byte = [0u8; 1];
                let _ = std::fs::File::from(gone_r).read(&mut byte); // EOF once P exited
                let _ = sys::write(efd.as_raw_fd(), &1u64.to_ne_bytes());
                let got = wait(ep.as_raw_fd(), 500).map(|d| d == [9]).unwrap_or(false);
                let _ = std::fs::File::from(res_w).write_all(if got { b"1" } else { b"0" });
                sys::exit_now(0)
            }
            sys::exit_now(0)
        }
    };
    drop(res_w);
    let _ = nix::sys::wait::waitpid(p, None);
    let mut text = String::new();
    let _ = std::fs::File::from(res_r).read_to_string(&mut text);
    obs.push(("parent_exit_child_keeps_events", json!(text == "1")));
    Ok(())
}

/// A signalfd registered by the parent, inherited with the epoll fd: does the child's own
/// signal make it ready through epoll (and through a direct poll)?
fn signalfd_fork(obs: &mut Observations) -> Result<(), String> {
    let value = in_child(|_| {
        let Ok(ep) = epoll(0) else {
            return json!({"error": "epoll"});
        };
        let sfd = match sys::blocked_signalfd(libc::SIGUSR1) {
            Ok(sfd) => sfd,
            Err(e) => return json!({"error": format!("signalfd: {e}")}),
        };
        if let Err(e) = ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, sfd.as_raw_fd(), 5) {
            return json!({"error": format!("signalfd/add: {e}")});
        }
        in_child(|_| {
            let _ = sys::kill(sys::getpid(), libc::SIGUSR1);
            let via_epoll = wait(ep.as_raw_fd(), 200).map(|d| d == [5]).unwrap_or(false);
            let direct = sys::readable(sfd.as_raw_fd()).unwrap_or(false);
            json!({ "epoll": via_epoll, "direct": direct })
        })
        .unwrap_or_else(|e| json!({ "error": e }))
    })?;
    if let Some(e) = value.get("error") {
        return Err(format!("signalfd check: {e}"));
    }
    obs.push((
        "signalfd_inherited_epoll_reports_child_signal",
        value["epoll"].clone(),
    ));
    obs.push((
        "signalfd_direct_poll_reports_child_signal",
        value["direct"].clone(),
    ));
    Ok(())
}

/// The "kcmp via epoll" trick and its proper replacements.
fn kcmp_trick(obs: &mut Observations) -> Result<(), String> {
    let ep = epoll(libc::EPOLL_CLOEXEC)?;
    let a = eventfd(0, libc::EFD_CLOEXEC)?;
    let other = eventfd(0, libc::EFD_CLOEXEC)?;
    let b = sys::dup_cloexec(a.as_raw_fd()).map_err(|e| format!("dup: {e}"))?;
    obs.push((
        "add_first",
        outcome(ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, a.as_raw_fd(), 1)),
    ));
    obs.push((
        "add_same_fd_twice",
        outcome(ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, a.as_raw_fd(), 1)),
    ));
    obs.push((
        "add_dup_under_other_fd",
        outcome(ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, b.as_raw_fd(), 2)),
    ));
    let query =
        |x: &OwnedFd, y: &OwnedFd| match sys::fcntl(x.as_raw_fd(), F_DUPFD_QUERY, y.as_raw_fd()) {
            Ok(v) => json!(v),
            Err(Errno::EINVAL) => json!("unsupported"),
            Err(e) => json!(format!("{e:?}")),
        };
    obs.push(("f_dupfd_query_dup", query(&a, &b)));
    obs.push(("f_dupfd_query_other_file", query(&a, &other)));
    let pid = sys::getpid();
    let kcmp = |x: &OwnedFd, y: &OwnedFd| match sys::kcmp_file(pid, x.as_raw_fd(), y.as_raw_fd()) {
        Ok(rc) => json!(rc),
        Err(e) => json!(format!("{e:?}")),
    };
    obs.push(("kcmp_file_dup", kcmp(&a, &b)));
    obs.push((
        "kcmp_file_other_is_equal",
        json!(kcmp(&a, &other) == json!(0)),
    ));
    Ok(())
}

/// Register fd A, dup it to B, close A: the classic gotcha.
fn dup_close(obs: &mut Observations) -> Result<(), String> {
    let ep = epoll(libc::EPOLL_CLOEXEC)?;
    let a = eventfd(1, libc::EFD_CLOEXEC)?;
    ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, a.as_raw_fd(), 0xA)
        .map_err(|e| format!("add: {e}"))?;
    let b = sys::dup_cloexec(a.as_raw_fd()).map_err(|e| format!("dup: {e}"))?;
    drop(a);
    let ready = wait(ep.as_raw_fd(), 0).map_err(|e| format!("epoll_wait: {e}"))?;
    obs.push(("dup_close_keeps_registration", json!(!ready.is_empty())));
    obs.push((
        "dup_close_event_data",
        match ready.first() {
            Some(0xA) => json!("A"),
            Some(other) => json!(format!("{other:#x}")),
            None => json!(null),
        },
    ));
    obs.push((
        "dup_close_del_by_dup",
        outcome(ctl(ep.as_raw_fd(), libc::EPOLL_CTL_DEL, b.as_raw_fd(), 0)),
    ));
    Ok(())
}

/// EPOLL_CLOEXEC / O_CLOEXEC across execve, and whether a registration survives the
/// close-on-exec of the fd it was made with while the file lives on through another fd.
fn cloexec(obs: &mut Observations) -> Result<(), String> {
    let value = in_child(|out| {
        let (Ok(ep_cloexec), Ok(ep_plain)) = (epoll(libc::EPOLL_CLOEXEC), epoll(0)) else {
            return json!({"error": "epoll_create1"});
        };
        let Ok(efd) = eventfd(1, libc::EFD_CLOEXEC) else {
            return json!({"error": "eventfd"});
        };
        let keep = sys::dup_inheritable(efd.as_raw_fd());
        if ctl(
            ep_plain.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            efd.as_raw_fd(),
            3,
        )
        .is_err()
            || keep.is_err()
        {
            return json!({"error": "add/dup"});
        }
        // The exec'd image reports on this (inherited, non-cloexec) pipe.
        let Ok(out_fd) = sys::dup_inheritable(out.as_raw_fd()) else {
            return json!({"error": "dup"});
        };
        let exe = CString::new("/proc/self/exe").unwrap();
        let args: Vec<CString> = [
            "runner".to_string(),
            "--exec-probe".to_string(),
            out_fd.as_raw_fd().to_string(),
            ep_cloexec.as_raw_fd().to_string(),
            ep_plain.as_raw_fd().to_string(),
            efd.as_raw_fd().to_string(),
        ]
        .into_iter()
        .map(|a| CString::new(a).unwrap())
        .collect();
        let e = sys::execv(&exe, &args);
        json!({"error": format!("execv: {e}")})
    })?;
    if let Some(e) = value.get("error") {
        return Err(format!("cloexec check: {e}"));
    }
    for key in [
        "epoll_cloexec_closed_on_exec",
        "eventfd_cloexec_closed_on_exec",
        "plain_epoll_survives_exec",
        "registration_survives_cloexec_close",
    ] {
        obs.push((key, value[key].clone()));
    }
    Ok(())
}

/// The exec'd side of [`cloexec`]: `runner --exec-probe OUT EP_CLOEXEC EP_PLAIN EFD`.
pub fn exec_probe(args: &[String]) -> i32 {
    let fd = |i: usize| {
        args.get(i)
            .and_then(|a| a.parse::<RawFd>().ok())
            .unwrap_or(-1)
    };
    let (out, ep_cloexec, ep_plain, efd) = (fd(0), fd(1), fd(2), fd(3));
    let is_open = sys::is_open;
    let value = json!({
        "epoll_cloexec_closed_on_exec": !is_open(ep_cloexec),
        "eventfd_cloexec_closed_on_exec": !is_open(efd),
        "plain_epoll_survives_exec": is_open(ep_plain),
        "registration_survives_cloexec_close": wait(ep_plain, 0).map(|d| d == [3]).unwrap_or(false),
    });
    let Ok(out) = sys::adopt(out) else {
        return 1;
    };
    let _ = std::fs::File::from(out).write_all(value.to_string().as_bytes());
    0
}

type Check = fn(&mut Observations) -> Result<(), String>;

const CHECKS: &[(&str, Check)] = &[
    ("fork_child_del", fork_child_del),
    ("fork_child_exit", fork_child_exit),
    ("parent_exit", parent_exit),
    ("signalfd_fork", signalfd_fork),
    ("kcmp_trick", kcmp_trick),
    ("dup_close", dup_close),
    ("cloexec", cloexec),
];

pub fn run(ctx: &Ctx) -> Result<(), String> {
    ctx.chan.send(&GuestMsg::Started {
        workload: ctx.req.workload.clone(),
        threads: 1,
    });
    for (group, check) in CHECKS {
        let mut obs = Observations::new();
        let result = check(&mut obs);
        for (name, value) in obs {
            ctx.chan.send(&GuestMsg::Observation {
                name: name.to_string(),
                value,
            });
        }
        if let Err(e) = result {
            ctx.chan.send(&GuestMsg::Observation {
                name: format!("{group}_error"),
                value: json!(e),
            });
        }
    }
    Ok(())
}
