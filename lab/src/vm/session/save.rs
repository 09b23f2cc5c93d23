//! Making a snapshot: boot the guest as a run would, wait for the agent's hello (it then
//! waits, idle, for a request), pause the guest, save its state, and stop QEMU. A boot the
//! caller's [`BootCheck`] refuses (one that printed a kernel report) is not saved: every run
//! boots instead, and sees what it printed.

use super::state::Exit;
use super::{build_command, prepare_run_dir, recv_opt, Backend, BootSpec, Vm};
use crate::vm::agent::AgentEvent;
use crate::vm::console::ConsoleEvent;
use crate::vm::outcome::GuestInfo;
use crate::vm::qemu::{Accel, Machine, Sockets};
use crate::vm::snapshot::{self, Meta, Snapshot, ZSTD};
use crate::vm::{accel, initramfs};
use anyhow::{bail, Context, Result};
use runner::protocol::GuestMsg;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A snapshot ready to restore.
pub struct Prepared {
    pub snapshot: Arc<Snapshot>,
    /// Made now, not found in the cache.
    pub made: bool,
    /// Why the one the cache had was discarded.
    pub replaced: Option<String>,
    /// Why the first boot that was to make it failed (the second made it).
    pub first_boot_failed: Option<String>,
}

/// The guest panicked before the agent's hello: the kernel's own verdict on this boot.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GuestPanicked(pub String);

/// Whether a boot may be saved, from its console log: `Ok(Some(why))` when it may not.
pub type BootCheck = fn(&Path) -> Result<Option<String>>;

/// How long the compressor gets to finish the state file once QEMU has sent it all.
const WRITE_WAIT: Duration = Duration::from_secs(60);

/// The snapshot of the guest `spec` boots (its kernel, vCPUs, memory, accelerator, command
/// line and initramfs files), from `root` or made there now, when `check` lets its boot be
/// saved; `Err(why)` when there can be none.
pub async fn snapshot(
    spec: &BootSpec,
    root: &Path,
    check: BootCheck,
) -> std::result::Result<Prepared, String> {
    if spec.backend != Backend::Qemu {
        return Err("the vng backend boots every run".into());
    }
    if !snapshot::on_path(ZSTD) {
        return Err(format!(
            "{ZSTD} is not on the PATH (apt-get install zstd; the README's set-up installs it)"
        ));
    }
    prepare(spec, root, check)
        .await
        .map_err(|e| format!("{e:#}"))?
}

async fn prepare(
    spec: &BootSpec,
    root: &Path,
    check: BootCheck,
) -> Result<std::result::Result<Prepared, String>> {
    let accel = accel::resolve(spec.accel, &spec.kernel).await?;
    std::fs::create_dir_all(root).with_context(|| format!("create {}", root.display()))?;
    // The initramfs is part of the key: made first, in a directory of its own.
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(root)
        .with_context(|| format!("create a directory in {}", root.display()))?;
    let (dir, extras) = (staging.path().to_path_buf(), spec.extra_files.clone());
    let initrd =
        tokio::task::spawn_blocking(move || initramfs::with_extras(&dir, &extras)).await??;
    let machine = Machine {
        kernel: spec.kernel.clone(),
        initrd: Some(initrd),
        cpus: spec.cpus,
        memory_mib: spec.memory_mib,
        accel,
        cmdline_extra: spec.cmdline_extra.clone(),
    };
    let (m, root_dir) = (machine.clone(), root.to_path_buf());
    let (keyed, _lock) = tokio::task::spawn_blocking(move || {
        let keyed = snapshot::key(&m, &snapshot::qemu_version()?)?;
        // One lab makes a given snapshot; the others wait for it.
        let lock = crate::cache::lock(&root_dir.join(format!("{}.lock", keyed.key)), true)?;
        anyhow::Ok((keyed, lock))
    })
    .await??;
    let dir = root.join(&keyed.key);
    let replaced = match snapshot::open(&dir, &keyed) {
        Ok(Some(found)) => {
            crate::cache::touch(&dir);
            return Ok(Ok(Prepared {
                snapshot: Arc::new(found),
                made: false,
                replaced: None,
                first_boot_failed: None,
            }));
        }
        Ok(None) => None,
        Err(why) => {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("remove the unusable {}", dir.display()))?;
            Some(why)
        }
    };
    // A boot that failed for no reason the kernel gave (the agent's port closed, no hello in
    // time) is tried once more; one the kernel refused (it panicked, or printed a report) is not.
    let mut failed_before: Option<String> = None;
    for attempt in 1.. {
        let work = root.join(format!("{}.tmp-{}", keyed.key, std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).with_context(|| format!("create {}", work.display()))?;
        let (why, again) = match make(spec, accel, &machine, &keyed, &work, check).await {
            Ok(Ok(meta)) => {
                std::fs::rename(&work, &dir)
                    .with_context(|| format!("rename {} to {}", work.display(), dir.display()))?;
                return Ok(Ok(Prepared {
                    snapshot: Arc::new(Snapshot { dir, meta }),
                    made: true,
                    replaced,
                    first_boot_failed: failed_before,
                }));
            }
            Ok(Err(refused)) => (refused, false),
            Err(e) => (format!("{e:#}"), boot_again(&e)),
        };
        // The boot's console and QEMU's output stay with the run.
        let why = format!("{why}{}", keep_failed_boot(&work, &spec.run_dir, attempt));
        let _ = std::fs::remove_dir_all(&work);
        if again && failed_before.is_none() {
            failed_before = Some(why);
            continue;
        }
        // Why the cached snapshot was discarded is not lost in what went wrong next.
        let mut said: Vec<String> = replaced.into_iter().collect();
        said.extend(failed_before.map(|first| format!("the first boot failed: {first}")));
        said.push(match said.is_empty() {
            true => why,
            false => format!("then: {why}"),
        });
        return Ok(Err(said.join("; ")));
    }
    unreachable!("the loop returns")
}

/// Whether a snapshot boot that failed with `e` is tried once more: not when the kernel
/// panicked (its own verdict, which every run will see too) or the user interrupted.
fn boot_again(e: &anyhow::Error) -> bool {
    !crate::interrupt::is(e) && !e.chain().any(|c| c.is::<GuestPanicked>())
}

/// Copy the logs of the failed snapshot boot `attempt` from `work` into `run_dir`; says where
/// they are.
fn keep_failed_boot(work: &Path, run_dir: &Path, attempt: u32) -> String {
    let mut kept = Vec::new();
    for (from, to) in [
        ("console.log", "console"),
        ("qemu-stderr.log", "qemu-stderr"),
    ] {
        let to = format!("snapshot-boot-{attempt}-{to}.log");
        let from = work.join(from);
        if from.exists() && crate::files::copy(&from, run_dir.join(&to)).is_ok() {
            kept.push(to);
        }
    }
    match kept.is_empty() {
        true => String::new(),
        false => format!(
            " (the boot's logs: {} in {})",
            kept.join(", "),
            run_dir.display()
        ),
    }
}

/// Boot and save into `work`; `Ok(Err(why))` when `check` refuses the boot.
async fn make(
    spec: &BootSpec,
    accel: Accel,
    machine: &Machine,
    keyed: &snapshot::Keyed,
    work: &Path,
    check: BootCheck,
) -> Result<std::result::Result<Meta, String>> {
    let initrd = machine.initrd.as_ref().expect("an initramfs");
    crate::files::copy(initrd, work.join("initrd"))
        .with_context(|| format!("copy {} into {}", initrd.display(), work.display()))?;
    let spec = BootSpec {
        run_dir: work.to_path_buf(),
        restore: None,
        schedule: None,
        ..spec.clone()
    };
    let (hello, boot_ms, save_ms, stream_bytes) = save(&spec, accel, work).await?;
    // What the boot printed would be in no restored run's console.
    if let Some(why) = check(&work.join("console.log"))? {
        return Ok(Err(why));
    }
    let state = work.join("state.zst");
    let file_bytes = std::fs::metadata(&state)?.len();
    let sha256 = tokio::task::spawn_blocking(move || snapshot::state_sha256(&state)).await??;
    let meta = Meta {
        format: snapshot::FORMAT,
        key: keyed.key.clone(),
        qemu: keyed.qemu.clone(),
        args: keyed.args.clone(),
        created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        boot_ms,
        save_ms,
        stream_bytes,
        file_bytes,
        sha256,
        hello,
    };
    snapshot::write_meta(work, &meta)?;
    Ok(Ok(meta))
}

/// How long the console must stay quiet before a guest counts as settled, and the most a
/// guest gets to settle.
const SETTLE_QUIET: Duration = Duration::from_secs(2);
const SETTLE_MAX: Duration = Duration::from_secs(15);

/// Wait until the guest's console has been quiet for [`SETTLE_QUIET`] (at most
/// [`SETTLE_MAX`]). The kernel's own work after boot must be done before the state is saved:
/// it would otherwise run again in every restored guest, at the same moment. x86's TSC
/// refinement, for one, switches the clocksource through stop_machine about a second after
/// the agent is up (6.12.118 under TCG); in a restored run whose schedule holds one vCPU,
/// stop_machine then waits for that vCPU and the step on the other is never reached.
async fn settle(console: &super::console::Console) {
    let start = Instant::now();
    let (mut seen, mut quiet_since) = (console.lines(), Instant::now());
    while start.elapsed() < SETTLE_MAX {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = console.lines();
        if now != seen {
            (seen, quiet_since) = (now, Instant::now());
        } else if quiet_since.elapsed() >= SETTLE_QUIET {
            return;
        }
    }
}

/// Boot the guest in `dir`, save it to `dir/state.zst` once the agent is ready and the
/// guest has settled, stop QEMU.
/// Returns the hello, the boot's and the save's milliseconds, and the stream's bytes.
async fn save(spec: &BootSpec, accel: Accel, dir: &Path) -> Result<(GuestInfo, u64, u64, u64)> {
    prepare_run_dir(dir)?;
    let (sockets, _socket_dir) = Sockets::for_run(dir)?;
    let cmd = build_command(spec, accel, &sockets, dir.join("initrd"))?;
    let mut vm = Vm::start(spec, &sockets, cmd, Vec::new()).await?;
    let saved = async {
        let hello = vm.ready(spec).await?;
        let boot_ms = vm.start.elapsed().as_millis() as u64;
        settle(&vm.console).await;
        let qmp = &vm.links.as_ref().context("no QMP connection")?.qmp;
        let t = Instant::now();
        qmp.stop().await.context("stop")?;
        // The compressor writes a temporary file and renames it once it has all of it.
        let (partial, state) = (dir.join("state.partial"), dir.join("state.zst"));
        let uri = format!(
            "{} && mv {} {}",
            snapshot::outgoing_uri(&partial),
            snapshot::shell_quote(&partial),
            snapshot::shell_quote(&state)
        );
        let bytes = qmp.migrate(&uri).await?;
        let written = Instant::now() + WRITE_WAIT;
        while !state.exists() {
            if Instant::now() >= written {
                bail!(
                    "{ZSTD} did not finish {} within {WRITE_WAIT:?}",
                    state.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        anyhow::Ok((hello, boot_ms, t.elapsed().as_millis() as u64, bytes))
    }
    .await;
    vm.shut(false).await;
    for socket in [&sockets.qmp, &sockets.agent] {
        let _ = std::fs::remove_file(socket);
    }
    saved.map_err(|e| match vm.qemu_said() {
        Some(last) => e.context(format!("QEMU: {last}")),
        None => e,
    })
}

impl Vm {
    /// Wait for the agent's hello after a boot.
    async fn ready(&mut self, spec: &BootSpec) -> Result<GuestInfo> {
        let deadline = self.start + spec.boot_timeout;
        loop {
            let agent = self.links.as_mut().map(|l| &mut l.agent_events);
            tokio::select! {
                exit = self.exited.recv() => {
                    self.exit = exit;
                    return Err(self.gone(None, "QEMU exited before the agent was ready", spec).await);
                }
                _ = tokio::time::sleep_until(deadline.into()) => {
                    bail!("no hello from the agent within {:?}", spec.boot_timeout);
                }
                _ = crate::interrupt::wait() => bail!(crate::interrupt::Interrupted),
                Some(ConsoleEvent::Panic(message)) = self.console_events.recv() => {
                    return Err(self.gone(Some(message), "the guest panicked", spec).await);
                }
                Some(event) = recv_opt(agent) => match event {
                    AgentEvent::Msg(GuestMsg::Hello {
                        kernel_release,
                        nproc,
                        cmdline,
                        pid1,
                        agent_version,
                    }) => {
                        return Ok(GuestInfo {
                            kernel_release,
                            nproc,
                            cmdline,
                            pid1,
                            agent_version,
                        })
                    }
                    AgentEvent::Msg(GuestMsg::Fatal { error }) => bail!("the agent failed: {error}"),
                    AgentEvent::Garbage(line) => bail!("the agent sent garbage: {line}"),
                    AgentEvent::WriteFailed(detail) => bail!("{detail}"),
                    AgentEvent::Closed => {
                        return Err(self.gone(None, "the agent's port closed before its hello", spec).await)
                    }
                    AgentEvent::Msg(_) => {}
                },
            }
        }
    }

    /// `what` went wrong before the hello (`panic`: the console saw the guest panic); what
    /// the guest and QEMU said about it: the panic, how QEMU ended, its last words and the
    /// console's last line. The events race (the agent's port closes as QEMU exits, a panicked
    /// guest's QEMU exits a moment later), so all are read once QEMU is gone, whichever came
    /// first: a panic is always [`GuestPanicked`].
    async fn gone(
        &mut self,
        mut panic: Option<String>,
        what: &str,
        spec: &BootSpec,
    ) -> anyhow::Error {
        if self.exit.is_none() {
            if let Ok(exit) = tokio::time::timeout(EXIT_WAIT, self.exited.recv()).await {
                self.exit = exit;
            }
        }
        self.shut(false).await;
        while let Ok(event) = self.console_events.try_recv() {
            if let (ConsoleEvent::Panic(message), None) = (event, &panic) {
                panic = Some(message);
            }
        }
        let mut why = String::new();
        match &self.exit {
            Some(Exit::Status(status)) => why.push_str(&format!("QEMU {status}")),
            Some(Exit::WaitFailed(e)) => why.push_str(&format!("waiting for QEMU failed: {e}")),
            None => why.push_str("QEMU still ran"),
        }
        if let Some(said) = self.qemu_said() {
            why.push_str(&format!("; QEMU said: {said}"));
        }
        if let Some(line) = last_line(&spec.run_dir.join("console.log")) {
            why.push_str(&format!("; the console's last line: {line}"));
        }
        match panic {
            Some(message) => GuestPanicked(format!(
                "the guest panicked while booting: {message}; {what}; {why}"
            ))
            .into(),
            None => anyhow::anyhow!("{what}; {why}"),
        }
    }
}

/// How long a guest that went away before its hello gets for its QEMU to exit by itself
/// (a panicked guest reboots, and `-no-reboot` ends QEMU) before it is stopped.
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// The last non-empty line of a log, from its last 4 KiB.
fn last_line(path: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = crate::files::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(4096))).ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    let text = String::from_utf8_lossy(&tail);
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    Some(line.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_boot_that_failed_for_no_reason_of_the_kernel_is_tried_again() {
        let panicked = || anyhow::Error::from(GuestPanicked("Kernel panic".into()));
        let table: [(anyhow::Error, bool); 5] = [
            (
                anyhow::anyhow!("the agent's port closed before its hello"),
                true,
            ),
            (anyhow::anyhow!("no hello from the agent within 300s"), true),
            (panicked(), false),
            (panicked().context("QEMU: terminating on signal 15"), false),
            (anyhow::Error::from(crate::interrupt::Interrupted), false),
        ];
        for (e, again) in table {
            assert_eq!(boot_again(&e), again, "{e:#}");
        }
    }
}
