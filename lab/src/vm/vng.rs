//! The virtme-ng backend: `vng --run KERNEL` boots the kernel over the host's root filesystem
//! and runs the agent binary from the run directory. The lab's QMP socket and agent port are
//! added with `--qemu-opts`, so the protocol and the outcomes are the same as with plain QEMU.

use super::qemu::{self, Accel, Sockets};
use std::ffi::OsString;
use std::path::Path;

pub const VNG: &str = "vng";

/// Quote a path for the guest shell that `vng --exec` uses.
fn shell_quote(path: &Path) -> String {
    let s = path.to_string_lossy();
    format!("'{}'", s.replace('\'', r"'\''"))
}

pub struct VngMachine<'a> {
    pub kernel: &'a Path,
    pub runner: &'a Path,
    pub cpus: u32,
    pub memory_mib: u64,
    pub accel: Accel,
    pub cmdline_extra: &'a str,
}

pub fn args(m: &VngMachine, sockets: &Sockets) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "--run".into(),
        m.kernel.into(),
        "--cpus".into(),
        m.cpus.to_string().into(),
        "--memory".into(),
        format!("{}M", m.memory_mib).into(),
        // The kernel console on vng's output, so console.log gets it.
        "--verbose".into(),
        "--exec".into(),
        shell_quote(m.runner).into(),
    ];
    if m.accel == Accel::Tcg {
        args.push("--disable-kvm".into());
    }
    if !m.cmdline_extra.trim().is_empty() {
        args.push("--append".into());
        args.push(m.cmdline_extra.trim().into());
    }
    let devices: Vec<String> = qemu::lab_devices(sockets)
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut opts = OsString::from("--qemu-opts=");
    opts.push(devices.join(" "));
    args.push(opts);
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vng_line_adds_the_lab_devices_and_disables_kvm_under_tcg() {
        let m = VngMachine {
            kernel: Path::new("/boot/vmlinuz"),
            runner: Path::new("/run/it's/runner"),
            cpus: 2,
            memory_mib: 1024,
            accel: Accel::Tcg,
            cmdline_extra: "",
        };
        let line: Vec<String> = args(&m, &Sockets::in_dir(Path::new("/run/d")))
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = line.join(" ");
        assert!(joined.starts_with("--run /boot/vmlinuz --cpus 2 --memory 1024M"));
        assert!(line.contains(&r"'/run/it'\''s/runner'".to_string()));
        assert!(line.contains(&"--disable-kvm".to_string()));
        assert!(!line.contains(&"--append".to_string()));
        let opts = line.last().unwrap();
        assert!(opts.starts_with("--qemu-opts=-qmp unix:/run/d/qmp.sock"));
        assert!(opts.contains("name=lab.agent"));
    }
}
