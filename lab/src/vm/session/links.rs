//! The channels to a running guest (QMP, the agent port) and stopping it in order.

use super::state::Exit;
use super::{SOCKET_WAIT, STOP_STEP};
use crate::vm::agent::{self, AgentEvent, AgentWriter};
use crate::vm::process;
use crate::vm::qemu::Sockets;
use crate::vm::qmp::{Qmp, QmpEvent};
use anyhow::{bail, Result};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::net::UnixStream;
use tokio::sync::mpsc;

/// Wait for a socket QEMU serves, while watching that QEMU is still alive.
async fn connect(path: &Path, exited: &mut mpsc::UnboundedReceiver<Exit>) -> Result<UnixStream> {
    let deadline = Instant::now() + SOCKET_WAIT;
    loop {
        match UnixStream::connect(path).await {
            Ok(stream) => return Ok(stream),
            Err(e) if Instant::now() >= deadline => {
                bail!(
                    "cannot connect to {} within {SOCKET_WAIT:?}: {e}",
                    path.display()
                )
            }
            Err(_) => {}
        }
        if !exited.is_empty() {
            bail!("QEMU exited before creating {}", path.display());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Everything that talks to the running guest.
pub struct Links {
    pub qmp: Qmp,
    pub qmp_events: mpsc::UnboundedReceiver<QmpEvent>,
    pub agent: AgentWriter,
    pub agent_events: mpsc::UnboundedReceiver<AgentEvent>,
}

pub async fn open_links(
    sockets: &Sockets,
    run_dir: &Path,
    exited: &mut mpsc::UnboundedReceiver<Exit>,
) -> Result<Links> {
    let qmp_stream = connect(&sockets.qmp, exited).await?;
    let (qmp, qmp_events) = Qmp::start(qmp_stream).await?;
    let agent_stream = connect(&sockets.agent, exited).await?;
    let (agent, agent_events) = agent::start(agent_stream, &run_dir.join("agent.jsonl")).await?;
    Ok(Links {
        qmp,
        qmp_events,
        agent,
        agent_events,
    })
}

/// Stop QEMU: ACPI power button (when `graceful`), then `quit`, then SIGKILL to its
/// process group.
pub async fn stop(
    qmp: Option<&Qmp>,
    graceful: bool,
    pid: u32,
    exited: &mut mpsc::UnboundedReceiver<Exit>,
) -> Option<Exit> {
    if let Some(qmp) = qmp {
        if graceful {
            let _ = tokio::time::timeout(STOP_STEP, qmp.system_powerdown()).await;
            if let Ok(Some(status)) = tokio::time::timeout(STOP_STEP, exited.recv()).await {
                return Some(status);
            }
        }
        let _ = tokio::time::timeout(STOP_STEP, qmp.quit()).await;
        if let Ok(Some(status)) = tokio::time::timeout(STOP_STEP, exited.recv()).await {
            return Some(status);
        }
    }
    process::kill_group(pid);
    tokio::time::timeout(STOP_STEP, exited.recv())
        .await
        .ok()
        .flatten()
}
