//! Choosing the accelerator. `auto` uses KVM only when a probe guest (the kernel to be booted,
//! with the agent in probe mode) reaches userspace under it; the verdict is cached per host
//! and QEMU version. Some hosts expose a /dev/kvm on which real guests die with
//! "KVM internal error"; those fall back to TCG.

use super::qemu::{self, Accel, Machine};
use super::{initramfs, process};
use crate::cache;
use anyhow::{bail, Context, Result};
use runner::protocol::{PROBE_CMDLINE_FLAG, PROBE_MARKER};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Once;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccelChoice {
    Auto,
    Kvm,
    Tcg,
}

/// Whether KVM runs guests on this host, and why (not).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KvmProbe {
    pub usable: bool,
    pub reason: String,
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// Lines that mean KVM itself failed, as QEMU prints them.
const KVM_FAILURES: &[&str] = &[
    "KVM internal error",
    "failed to initialize kvm",
    "Could not access KVM kernel module",
    "kvm run failed",
    "KVM: entry failed",
];

/// Cache key: the verdict holds for one host kernel and one QEMU build.
async fn host_key() -> String {
    let uname = nix::sys::utsname::uname().ok();
    let host = uname
        .as_ref()
        .map(|u| {
            format!(
                "{} {}",
                u.nodename().to_string_lossy(),
                u.release().to_string_lossy()
            )
        })
        .unwrap_or_default();
    let qemu = tokio::process::Command::new(qemu::QEMU)
        .arg("--version")
        .output()
        .await
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default();
    format!("{host} | {qemu}")
}

/// Boot `kernel` under KVM with the agent in probe mode and see whether userspace runs.
pub async fn probe_kvm(kernel: &Path) -> Result<KvmProbe> {
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        return Ok(KvmProbe {
            usable: false,
            reason: format!("/dev/kvm cannot be opened: {e}"),
        });
    }
    let initrd = tokio::task::spawn_blocking(initramfs::path).await??;
    let machine = Machine {
        kernel: kernel.to_path_buf(),
        initrd: Some(initrd),
        cpus: 1,
        memory_mib: 256,
        accel: Accel::Kvm,
        cmdline_extra: crate::units::CmdlineExtra::new(PROBE_CMDLINE_FLAG).expect("a short word"),
    };
    // The same command line as every guest's, without the lab's devices.
    let mut cmd = process::command(qemu::QEMU);
    cmd.args(qemu::args(&machine, None));
    let mut child = cmd
        .spawn()
        .with_context(|| format!("start {}", qemu::QEMU))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let scan = async {
        let mut out = BufReader::new(stdout).lines();
        let mut err = BufReader::new(stderr).lines();
        let (mut out_open, mut err_open) = (true, true);
        while out_open || err_open {
            tokio::select! {
                line = out.next_line(), if out_open => match line {
                    Ok(Some(l)) if l.contains(PROBE_MARKER) => return Ok(()),
                    Ok(Some(l)) if KVM_FAILURES.iter().any(|f| l.contains(f)) => return Err(l),
                    Ok(Some(_)) => {}
                    _ => out_open = false,
                },
                line = err.next_line(), if err_open => match line {
                    Ok(Some(l)) if KVM_FAILURES.iter().any(|f| l.contains(f)) => return Err(l),
                    Ok(Some(_)) => {}
                    _ => err_open = false,
                },
            }
        }
        Err("QEMU exited before the probe reached userspace".to_string())
    };
    let verdict = match tokio::time::timeout(PROBE_TIMEOUT, scan).await {
        Ok(Ok(())) => KvmProbe {
            usable: true,
            reason: "probe guest reached userspace under KVM".into(),
        },
        Ok(Err(line)) => KvmProbe {
            usable: false,
            reason: line.trim().to_string(),
        },
        Err(_) => KvmProbe {
            usable: false,
            reason: format!("probe guest did not reach userspace within {PROBE_TIMEOUT:?}"),
        },
    };
    let _ = child.start_kill();
    let _ = child.wait().await;
    Ok(verdict)
}

/// This process's verdict, once known: runs after the first need no file or QEMU lookups.
static PROCESS_VERDICT: std::sync::OnceLock<KvmProbe> = std::sync::OnceLock::new();

/// The cached verdict for this host, probing with `kernel` if there is none.
pub async fn kvm_verdict(kernel: &Path) -> Result<KvmProbe> {
    if let Some(v) = PROCESS_VERDICT.get() {
        return Ok(v.clone());
    }
    let verdict = stored_or_probed_verdict(kernel).await?;
    Ok(PROCESS_VERDICT.get_or_init(|| verdict).clone())
}

async fn stored_or_probed_verdict(kernel: &Path) -> Result<KvmProbe> {
    let file = cache::dir("accel")?.join("kvm-probe.json");
    let key = host_key().await;
    let mut verdicts: BTreeMap<String, KvmProbe> = crate::files::read(&file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if let Some(v) = verdicts.get(&key) {
        return Ok(v.clone());
    }
    tracing::info!("probing KVM with {}", kernel.display());
    let verdict = probe_kvm(kernel).await?;
    verdicts.insert(key, verdict.clone());
    crate::files::write(&file, &serde_json::to_vec_pretty(&verdicts)?)?;
    Ok(verdict)
}

static FALLBACK_NOTICE: Once = Once::new();

pub async fn resolve(choice: AccelChoice, kernel: &Path) -> Result<Accel> {
    match choice {
        AccelChoice::Tcg => Ok(Accel::Tcg),
        AccelChoice::Kvm => {
            let v = kvm_verdict(kernel).await?;
            if !v.usable {
                bail!(
                    "KVM is not usable on this host: {}. Run with --accel tcg (or --accel auto \
                     to fall back automatically); the verdict is cached in {}",
                    v.reason,
                    cache::root().join("accel/kvm-probe.json").display()
                );
            }
            Ok(Accel::Kvm)
        }
        AccelChoice::Auto => {
            let v = kvm_verdict(kernel).await?;
            if v.usable {
                return Ok(Accel::Kvm);
            }
            FALLBACK_NOTICE.call_once(|| {
                crate::events::emit(crate::events::Event::KvmUnusable {
                    reason: v.reason.clone(),
                });
            });
            Ok(Accel::Tcg)
        }
    }
}
