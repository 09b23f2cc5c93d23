//! `lab boot`: one workload on one kernel, booted (or restored from its snapshot), its
//! program's output read and the record returned.

use super::{snapshots::Snapshots, Target};
use crate::results::RunRecord;
use crate::units;
use crate::vm::accel::AccelChoice;
use crate::vm::session::{self, Backend, BootSpec};
use anyhow::Result;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Kernel image to boot (bzImage or a distro vmlinuz).
    #[arg(long, required_unless_present = "variant", conflicts_with = "variant")]
    pub kernel: Option<PathBuf>,
    /// Boot a variant from kernels/*.toml instead (built first if the cache lacks it).
    #[arg(long)]
    pub variant: Option<String>,
    /// Directory of variant definitions, for --variant.
    #[arg(long)]
    pub kernels: Option<PathBuf>,
    /// vCPUs (1 to 64).
    #[arg(long, default_value = "2")]
    pub cpus: runner::quantity::Vcpus,
    /// Guest memory (512M, 1G, ...).
    #[arg(long, default_value = "1G", value_parser = units::parse_mib)]
    pub memory: u64,
    /// Accelerator: auto uses KVM only where a probe guest runs under it.
    #[arg(long, value_enum, default_value_t = AccelChoice::Auto)]
    pub accel: AccelChoice,
    /// Which program starts the guest.
    #[arg(long, value_enum, default_value_t = Backend::Qemu)]
    pub backend: Backend,
    /// Restore this machine's snapshot instead of booting (made first, by a boot, when the
    /// cache lacks it): what `lab run` does for every run unless --no-snapshot.
    #[arg(long, conflicts_with = "backend")]
    pub snapshot: bool,
    /// Whole-run limit (default: boot timeout + duration + heartbeat timeout).
    #[arg(long, value_parser = units::parse_duration)]
    pub timeout: Option<Duration>,
    /// Longest wait from QEMU's start to the agent's hello.
    #[arg(long, default_value = "120s", value_parser = units::parse_duration)]
    pub boot_timeout: Duration,
    /// Longest silence from the agent once it is up before the run counts as hung.
    #[arg(long, default_value = "20s", value_parser = units::parse_duration)]
    pub heartbeat_timeout: Duration,
    /// Extra kernel command line (it must fit the kernel's 2048 bytes with the lab's own words).
    #[arg(long, default_value = "")]
    pub cmdline: crate::units::CmdlineExtra,
    /// Workload the agent runs (`runner --list`): syscall_count, hang, sysrq_crash; `selftest`
    /// runs a test program shipped with --extra (--param path=/bin/x, args=[...],
    /// timeout_ms=N) and records one result per test of its TAP/KTAP output.
    #[arg(long, default_value = "syscall_count")]
    pub workload: String,
    /// How long the workload runs.
    #[arg(long, default_value = "5s", value_parser = units::parse_work_duration)]
    pub duration: runner::quantity::WorkDuration,
    /// Worker threads, 1 to 1024 (default: one per vCPU).
    #[arg(long)]
    pub threads: Option<runner::quantity::Threads>,
    /// Workload parameter KEY=VALUE (VALUE parsed as JSON when it is JSON); repeatable.
    #[arg(long = "param", value_parser = parse_param)]
    pub params: Vec<(String, serde_json::Value)>,
    /// Add a host file to the initramfs as GUEST_PATH=HOST_PATH (executable); repeatable.
    #[arg(long = "extra", value_parser = parse_extra)]
    pub extras: Vec<(String, PathBuf)>,
    /// Run directory (default: a new one under the cache's runs/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print outcome.json instead of the summary.
    #[arg(long)]
    pub json: bool,
}

fn parse_param(s: &str) -> Result<(String, serde_json::Value), String> {
    let (k, v) = s.split_once('=').ok_or("expected KEY=VALUE")?;
    let value = serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.into()));
    Ok((k.to_string(), value))
}

fn parse_extra(s: &str) -> Result<(String, PathBuf), String> {
    let (guest, host) = s.split_once('=').ok_or("expected GUEST_PATH=HOST_PATH")?;
    let host = PathBuf::from(host);
    crate::files::check_regular(&host).map_err(|e| e.to_string())?;
    Ok((guest.to_string(), host))
}

/// Boot (or restore) the kernel `a` names and run its workload; the record and the run's
/// directory.
pub async fn boot(a: Args) -> Result<(RunRecord, PathBuf)> {
    let request = session::request(
        a.workload,
        a.duration,
        a.threads,
        a.params.into_iter().collect(),
        Default::default(),
    );
    // What the agent would refuse is refused here, before a kernel is built or booted.
    request.check().map_err(anyhow::Error::msg)?;
    let kernel = Target::resolve(a.kernel, a.variant, a.kernels)
        .await?
        .kernel;
    let run_dir = crate::cache::out_or_run_dir(a.out, "boot")?;
    let mut spec = BootSpec {
        accel: a.accel,
        backend: a.backend,
        cmdline_extra: a.cmdline,
        boot_timeout: a.boot_timeout,
        heartbeat_timeout: a.heartbeat_timeout,
        timeout: a.timeout,
        extra_files: a.extras,
        ..BootSpec::new(kernel, a.cpus, a.memory, request, run_dir.clone())
    };
    crate::events::note(format!(
        "booting {} ({} vCPUs, {} MiB, {:?} backend) in {}",
        spec.kernel.display(),
        spec.cpus,
        spec.memory_mib,
        spec.backend,
        run_dir.display()
    ));
    let snapshots = match a.snapshot {
        true => Snapshots::on("boot".into()),
        false => Snapshots::off(),
    };
    let record = snapshots.run_and_read(&mut spec, Vec::new).await?;
    Ok((record, run_dir))
}
