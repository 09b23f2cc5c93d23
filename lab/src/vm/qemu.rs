//! The QEMU command line for a lab guest, as a pure function of what is being booted.

use runner::protocol::AGENT_PORT_NAME;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub const QEMU: &str = "qemu-system-x86_64";

/// The accelerator a guest runs under (`accel` decides which one a run gets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// Sockets that live in the (0700) run directory.
#[derive(Debug, Clone)]
pub struct Sockets {
    pub qmp: PathBuf,
    pub agent: PathBuf,
    /// QEMU's gdbstub, for a run with a schedule.
    pub gdb: Option<PathBuf>,
}

/// Longest path a unix socket address holds (sun_path is 108 bytes with its NUL).
const SUN_PATH_MAX: usize = 107;

impl Sockets {
    pub fn in_dir(dir: &Path) -> Self {
        Sockets {
            qmp: dir.join("qmp.sock"),
            agent: dir.join("agent.sock"),
            gdb: None,
        }
    }

    /// The same sockets and a gdbstub's beside them.
    pub fn with_gdb(mut self) -> Self {
        self.gdb = self.agent.parent().map(|d| d.join("gdb.sock"));
        self
    }

    /// The run directory's sockets; when its path is too long for a socket address, a short
    /// private (0700) directory under /tmp instead, kept alive by the returned guard.
    pub fn for_run(run_dir: &Path) -> std::io::Result<(Self, Option<tempfile::TempDir>)> {
        let sockets = Sockets::in_dir(run_dir);
        if sockets.agent.as_os_str().len() <= SUN_PATH_MAX {
            return Ok((sockets, None));
        }
        let short = tempfile::Builder::new().prefix("lab-").tempdir_in("/tmp")?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(short.path(), std::fs::Permissions::from_mode(0o700))?;
        Ok((Sockets::in_dir(short.path()), Some(short)))
    }
}

/// Everything that decides a guest's command line.
#[derive(Debug, Clone)]
pub struct Machine {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub cpus: u32,
    pub memory_mib: u64,
    pub accel: Accel,
    pub cmdline_extra: crate::units::CmdlineExtra,
}

/// Kernel command line: serial console, panic stops the guest (with -no-reboot QEMU exits).
pub fn kernel_cmdline(extra: &str) -> String {
    let base = crate::units::CMDLINE_BASE;
    if extra.trim().is_empty() {
        base.to_string()
    } else {
        format!("{base} {}", extra.trim())
    }
}

/// The machine type. q35 routes PCI interrupts without ACPI link devices: on the i440fx `pc`
/// machine, enabling the first virtio-pci device in a KASAN+lockdep guest under TCG spends
/// ~10 s evaluating the interrupt links' AML (measured: virtio_pci_driver_init 10.4 s on pc,
/// 0.14 s on q35).
pub const MACHINE: [&str; 2] = ["-machine", "q35"];

/// `-accel` and `-cpu` for the chosen accelerator.
pub fn accel_args(accel: Accel) -> [&'static str; 4] {
    match accel {
        Accel::Kvm => ["-accel", "kvm", "-cpu", "host"],
        Accel::Tcg => ["-accel", "tcg,thread=multi", "-cpu", "max"],
    }
}

/// QMP monitor, the agent's virtio-serial port and a pvpanic device: the devices every lab
/// guest has, whichever backend starts QEMU.
pub fn lab_devices(sockets: &Sockets) -> Vec<OsString> {
    let mut qmp = OsString::from("unix:");
    qmp.push(&sockets.qmp);
    qmp.push(",server=on,wait=off");
    let mut agent = OsString::from("socket,id=labagent,path=");
    agent.push(&sockets.agent);
    agent.push(",server=on,wait=off");
    let port = format!("virtserialport,bus=labser.0,chardev=labagent,name={AGENT_PORT_NAME}");
    let mut devices: Vec<OsString> = [
        "-qmp".into(),
        qmp,
        "-device".into(),
        "virtio-serial-pci,id=labser,max_ports=2".into(),
        "-chardev".into(),
        agent,
        "-device".into(),
        port.into(),
        "-device".into(),
        "pvpanic".into(),
    ]
    .into();
    if let Some(gdb) = &sockets.gdb {
        let mut dev = OsString::from("unix:");
        dev.push(gdb);
        dev.push(",server=on,wait=off");
        devices.extend(["-gdb".into(), dev]);
    }
    devices
}

/// The full argument list (without the program name); with `sockets`, the lab's devices
/// (QMP, agent port, pvpanic) too.
pub fn args(machine: &Machine, sockets: Option<&Sockets>) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut push = |a: &str| args.push(a.into());
    push("-nodefaults");
    push("-no-user-config");
    for a in MACHINE {
        push(a);
    }
    push("-display");
    push("none");
    for a in accel_args(machine.accel) {
        push(a);
    }
    push("-smp");
    push(&machine.cpus.to_string());
    push("-m");
    push(&format!("{}M", machine.memory_mib));
    push("-no-reboot");
    push("-serial");
    push("stdio");
    push("-append");
    push(&kernel_cmdline(machine.cmdline_extra.as_str()));
    args.push("-kernel".into());
    args.push(machine.kernel.clone().into());
    if let Some(initrd) = &machine.initrd {
        args.push("-initrd".into());
        args.push(initrd.clone().into());
    }
    if let Some(sockets) = sockets {
        args.extend(lab_devices(sockets));
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(accel: Accel) -> Machine {
        Machine {
            kernel: "/k/bzImage".into(),
            initrd: Some("/c/init.cpio.gz".into()),
            cpus: 2,
            memory_mib: 1024,
            accel,
            cmdline_extra: "kasan.fault=report".parse().unwrap(),
        }
    }

    fn joined(accel: Accel) -> String {
        let s = Sockets::in_dir(Path::new("/run/x"));
        args(&machine(accel), Some(&s))
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn tcg_guest_has_everything_the_lab_relies_on() {
        let line = joined(Accel::Tcg);
        for needle in [
            "-machine q35",
            "-accel tcg,thread=multi -cpu max",
            "-smp 2",
            "-m 1024M",
            "-no-reboot",
            "-serial stdio",
            "-append console=ttyS0 panic=-1 kasan.fault=report",
            "-kernel /k/bzImage",
            "-initrd /c/init.cpio.gz",
            "-qmp unix:/run/x/qmp.sock,server=on,wait=off",
            "socket,id=labagent,path=/run/x/agent.sock,server=on,wait=off",
            "virtserialport,bus=labser.0,chardev=labagent,name=lab.agent",
        ] {
            assert!(line.contains(needle), "missing {needle:?} in {line}");
        }
        assert!(!line.contains("-gdb"), "{line}");
    }

    #[test]
    fn a_scheduled_run_serves_a_gdbstub_beside_the_other_sockets() {
        let s = Sockets::in_dir(Path::new("/run/x")).with_gdb();
        let line = args(&machine(Accel::Tcg), Some(&s))
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            line.contains("-gdb unix:/run/x/gdb.sock,server=on,wait=off"),
            "{line}"
        );
    }

    #[test]
    fn long_run_dirs_get_short_private_socket_dirs() {
        let long = Path::new("/x").join("y".repeat(120));
        let (s, guard) = Sockets::for_run(&long).unwrap();
        let guard = guard.expect("a short directory");
        assert!(s.qmp.starts_with(guard.path()));
        assert!(s.agent.as_os_str().len() <= SUN_PATH_MAX);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(guard.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        let (s, guard) = Sockets::for_run(Path::new("/run/d")).unwrap();
        assert!(guard.is_none());
        assert_eq!(s.qmp, Path::new("/run/d/qmp.sock"));
    }

    #[test]
    fn without_sockets_there_are_no_lab_devices() {
        let line: Vec<String> = args(&machine(Accel::Kvm), None)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(line.contains(&"-kernel".to_string()));
        assert!(!line
            .iter()
            .any(|a| a.contains("qmp") || a.contains("pvpanic")));
    }

    #[test]
    fn kvm_guest_uses_the_host_cpu() {
        assert!(joined(Accel::Kvm).contains("-accel kvm -cpu host"));
    }

    #[test]
    fn empty_extra_cmdline_adds_nothing() {
        assert_eq!(kernel_cmdline("  "), "console=ttyS0 panic=-1");
    }
}
