//! PID 1 duties: mount the pseudo filesystems, run the agent in a child, reap every orphan,
//! and power the guest off whatever happens.

use crate::channel::{self, Channel};
use crate::sys::{self, ForkResult};
use nix::mount::{mount, MsFlags};
use nix::sys::reboot::{reboot, RebootMode};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use runner::protocol::{GuestMsg, PROBE_CMDLINE_FLAG, PROBE_MARKER};
use std::time::Duration;

/// (source, target, fstype, required)
const MOUNTS: &[(&str, &str, &str, bool)] = &[
    ("proc", "/proc", "proc", true),
    ("sysfs", "/sys", "sysfs", true),
    ("devtmpfs", "/dev", "devtmpfs", true),
    ("tmpfs", "/tmp", "tmpfs", true),
    ("debugfs", "/sys/kernel/debug", "debugfs", false),
];

fn mount_all() -> Result<(), String> {
    for &(source, target, fstype, required) in MOUNTS {
        let _ = std::fs::create_dir_all(target);
        let res = mount(
            Some(source),
            target,
            Some(fstype),
            MsFlags::MS_NOSUID,
            None::<&str>,
        );
        match res {
            Ok(()) | Err(nix::errno::Errno::EBUSY) => {}
            Err(e) if required => return Err(format!("mount {fstype} on {target}: {e}")),
            Err(_) => {}
        }
    }
    Ok(())
}

/// Never returns: PID 1 must not exit, or the kernel panics.
pub fn power_off() -> ! {
    nix::unistd::sync();
    let _ = reboot(RebootMode::RB_POWER_OFF);
    // Power-off failed (no ACPI?): halt is the next best thing.
    let _ = reboot(RebootMode::RB_HALT_SYSTEM);
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn fatal(chan: Option<&Channel>, error: String) -> ! {
    println!("lab-runner: fatal: {error}");
    if let Some(chan) = chan {
        chan.send(&GuestMsg::Fatal { error });
    }
    power_off()
}

pub fn run() -> ! {
    if let Err(e) = mount_all() {
        fatal(None, e);
    }
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    if cmdline.split_whitespace().any(|w| w == PROBE_CMDLINE_FLAG) {
        println!("{PROBE_MARKER}");
        power_off();
    }
    let port = match channel::open_port(Duration::from_secs(10)) {
        Ok(port) => port,
        Err(e) => fatal(None, e),
    };
    let chan = Channel::new(port);
    // The agent runs in a child so that PID 1 can reap every orphan without stealing the
    // exit statuses the workloads wait for.
    let agent = match sys::fork_single_threaded() {
        Ok(ForkResult::Child) => std::process::exit(crate::agent::serve(&chan, true)),
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => fatal(Some(&chan), format!("fork: {e}")),
    };
    reap_until(agent, &chan)
}

fn reap_until(agent: Pid, chan: &Channel) -> ! {
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, 0)) if pid == agent => power_off(),
            Ok(WaitStatus::Exited(pid, code)) if pid == agent => {
                fatal(Some(chan), format!("agent exited with status {code}"))
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == agent => {
                fatal(Some(chan), format!("agent killed by {sig}"))
            }
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => fatal(Some(chan), format!("waitpid: {e}")),
        }
    }
}
