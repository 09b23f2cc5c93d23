//! QEMU and vng as children: contained (own process group, SIGKILL when `lab` dies, killed
//! when dropped; see [`crate::child`]), their output piped to the run's console and logs.

use std::ffi::OsStr;
use std::process::Stdio;
use tokio::process::Command;

pub fn command(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    crate::child::contain_async(&mut cmd);
    cmd
}

/// SIGKILL the whole process group led by `pid` (QEMU and anything it started).
pub fn kill_group(pid: u32) {
    crate::child::signal_group(pid, nix::sys::signal::Signal::SIGKILL);
}
