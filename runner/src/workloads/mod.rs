//! Workloads the agent can run, one file each, listed in [`WORKLOADS`].

mod epoll_add_close_race;
mod epoll_close_race;
mod eventfd_notifier_race;
mod exec;
mod hang;
mod hung_task;
mod pollable;
mod provoke;
mod repro;
mod selftest;
mod sequence;
mod stress;
mod syscall_count;
mod sysrq_crash;
pub mod uapi_epoll;

use crate::channel::Channel;
use runner::protocol::RunRequest;

/// Kill a program the agent started and what it started: its process group (the program
/// leads one: `process_group(0)`), and under the lab's own init (where nothing else runs in
/// the guest) every process but init and the agent, whatever group or session the program
/// moved its children to. Processes already gone are fine.
pub fn stop_all(child: u32, whole_guest: bool) {
    let _ = crate::sys::kill(-(child as i32), libc::SIGKILL);
    if whole_guest {
        // -1: every process the agent may signal, which spares init and the agent.
        let _ = crate::sys::kill(-1, libc::SIGKILL);
    }
}

/// What a workload gets to work with.
pub struct Ctx<'a> {
    pub req: &'a RunRequest,
    pub chan: &'a Channel,
    pub nproc: u32,
    /// The agent runs under the lab's own init: nothing else runs in the guest.
    pub pid1: bool,
}

impl Ctx<'_> {
    /// The program a workload runs and its arguments: `params.path`, `params.args` (strings;
    /// other JSON values as written).
    pub fn program(&self) -> Result<(&str, Vec<String>), String> {
        let p = &self.req.params;
        let path = p
            .get("path")
            .and_then(|v| v.as_str())
            .ok_or_else(|| format!("{} needs params.path", self.req.workload))?;
        let args = p
            .get("args")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| x.to_string())
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok((path, args))
    }

    /// Worker threads requested, or one per vCPU.
    pub fn threads(&self) -> u32 {
        self.req
            .threads
            .map_or(self.nproc, runner::quantity::Threads::get)
            .max(1)
    }
}

pub struct Workload {
    pub name: &'static str,
    pub about: &'static str,
    pub run: fn(&Ctx) -> Result<(), String>,
}

pub const WORKLOADS: &[Workload] = &[
    Workload {
        name: "epoll_close_race",
        about: "closers create/EPOLL_CTL_ADD/close pollable files while pollers spin epoll_wait",
        run: epoll_close_race::run,
    },
    Workload {
        name: "epoll_add_close_race",
        about: "EPOLL_CTL_ADD of an fd racing with its close() on another thread, pollers spinning",
        run: epoll_add_close_race::run,
    },
    Workload {
        name: "syscall_count",
        about: "one pinned thread per vCPU counting getppid() calls for the duration",
        run: syscall_count::run,
    },
    Workload {
        name: "eventfd_notifier_race",
        about: "eventfds registered with io_uring or aio closed while completions signal them",
        run: eventfd_notifier_race::run,
    },
    Workload {
        name: "uapi_epoll",
        about: "deterministic epoll UAPI checks (fork, dup+close, kcmp trick, cloexec), as values",
        run: uapi_epoll::run,
    },
    Workload {
        name: "exec",
        about: "run a program from the initramfs (--extra) and report its output",
        run: exec::run,
    },
    Workload {
        name: "selftest",
        about: "run a test program (kselftest, KTAP) and stream its output lines with times",
        run: selftest::run,
    },
    Workload {
        name: "repro",
        about: "a reproducer program for the duration, started again whenever it exits",
        run: repro::run,
    },
    Workload {
        name: "sequence",
        about: "several workloads one after the other in one boot (params.steps)",
        run: sequence::run,
    },
    Workload {
        name: "hang",
        about: "pinned threads that block forever and never report progress",
        run: hang::run,
    },
    Workload {
        name: "hung_task",
        about: "a task in D state past hung_task_timeout_secs, released at the deadline",
        run: hung_task::run,
    },
    Workload {
        name: "provoke",
        about: "one fault provoked through LKDTM (params.type), for the detector canary",
        run: provoke::run,
    },
    Workload {
        name: "sysrq_crash",
        about: "crash the kernel through /proc/sysrq-trigger after duration_ms",
        run: sysrq_crash::run,
    },
];

pub fn run(req: &RunRequest, chan: &Channel, nproc: u32, pid1: bool) -> Result<(), String> {
    let workload = WORKLOADS
        .iter()
        .find(|w| w.name == req.workload)
        .ok_or_else(|| {
            let known: Vec<_> = WORKLOADS.iter().map(|w| w.name).collect();
            format!(
                "unknown workload {:?}; this runner knows: {}",
                req.workload,
                known.join(", ")
            )
        })?;
    (workload.run)(&Ctx {
        req,
        chan,
        nproc,
        pid1,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_host_knows_exactly_the_workloads_the_agent_runs() {
        let ours: Vec<&str> = super::WORKLOADS.iter().map(|w| w.name).collect();
        assert_eq!(ours, runner::protocol::WORKLOAD_NAMES);
    }
}
