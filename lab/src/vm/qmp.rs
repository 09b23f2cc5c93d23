//! QMP through the `qapi` crate: negotiate, query, watch events, power down, quit.
//! The event stream is read by a task of its own for as long as the socket is open;
//! commands only complete while it is read.

use anyhow::{Context, Result};
use qapi::futures::{QapiService, QmpStreamTokio};
use qapi::qmp;
use std::collections::BTreeMap;
use tokio::io::WriteHalf;
use tokio::net::UnixStream;
use tokio::sync::mpsc;

type Service = QapiService<QmpStreamTokio<WriteHalf<UnixStream>>>;

/// The events the run loop cares about.
#[derive(Debug, Clone, PartialEq)]
pub enum QmpEvent {
    Shutdown { guest: bool, reason: String },
    GuestPanicked,
    Stop,
    Closed,
}

pub struct Qmp {
    service: Service,
}

fn enum_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

impl Qmp {
    /// Negotiate capabilities on a connected socket and start the event reader.
    pub async fn start(stream: UnixStream) -> Result<(Qmp, mpsc::UnboundedReceiver<QmpEvent>)> {
        let negotiation = QmpStreamTokio::open(stream).await.context("QMP greeting")?;
        let stream = negotiation
            .negotiate()
            .await
            .context("QMP capabilities negotiation")?;
        let (service, mut events) = stream.into_parts();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            use futures::StreamExt;
            while let Some(event) = events.next().await {
                let mapped = match event {
                    Ok(qmp::Event::SHUTDOWN { data, .. }) => QmpEvent::Shutdown {
                        guest: data.guest,
                        reason: enum_name(&data.reason),
                    },
                    Ok(qmp::Event::GUEST_PANICKED { .. }) => QmpEvent::GuestPanicked,
                    Ok(qmp::Event::STOP { .. }) => QmpEvent::Stop,
                    Ok(other) => {
                        tracing::debug!("QMP event {other:?}");
                        continue;
                    }
                    Err(e) => {
                        tracing::debug!("QMP stream error: {e}");
                        break;
                    }
                };
                if tx.send(mapped).is_err() {
                    break;
                }
            }
            let _ = tx.send(QmpEvent::Closed);
        });
        Ok((Qmp { service }, rx))
    }

    pub async fn status(&self) -> Result<String> {
        let info = self.service.execute(qmp::query_status {}).await?;
        Ok(enum_name(&info.status))
    }

    /// Host thread id of each vCPU, by vCPU index.
    pub async fn vcpu_threads(&self) -> Result<BTreeMap<u32, i64>> {
        let cpus = self.service.execute(qmp::query_cpus_fast {}).await?;
        // Every target variant flattens the same base fields; read them generically.
        Ok(cpus
            .iter()
            .filter_map(|cpu| {
                let v = serde_json::to_value(cpu).ok()?;
                Some((v["cpu-index"].as_u64()? as u32, v["thread-id"].as_i64()?))
            })
            .collect())
    }

    /// Pause the guest's vCPUs.
    pub async fn stop(&self) -> Result<()> {
        self.service.execute(qmp::stop {}).await?;
        Ok(())
    }

    /// Run the guest's vCPUs (again).
    pub async fn cont(&self) -> Result<()> {
        self.service.execute(qmp::cont {}).await?;
        Ok(())
    }

    /// Send the machine's state to `uri` (`exec:…`) at full speed and wait until it is all
    /// written; returns the bytes sent.
    pub async fn migrate(&self, uri: &str) -> Result<u64> {
        // The default bandwidth cap (32 MiB/s in QEMU 7.2) is for live migration over a network.
        let params: qmp::MigrateSetParameters =
            serde_json::from_value(serde_json::json!({ "max-bandwidth": 1u64 << 40 }))?;
        self.service
            .execute(qmp::migrate_set_parameters(params))
            .await
            .context("migrate-set-parameters")?;
        self.service
            .execute(qmp::migrate {
                uri: Some(uri.to_string()),
                channels: None,
                detach: None,
                resume: None,
            })
            .await
            .context("migrate")?;
        let info = self.migration_done().await?;
        Ok(info.ram.map(|r| r.transferred as u64).unwrap_or(0))
    }

    /// Load the machine's state from `uri` (a QEMU started with `-incoming defer`) and wait
    /// until it is all loaded; the guest stays paused.
    pub async fn migrate_incoming(&self, uri: &str) -> Result<()> {
        self.service
            .execute(qmp::migrate_incoming {
                uri: Some(uri.to_string()),
                channels: None,
                exit_on_error: None,
            })
            .await
            .context("migrate-incoming")?;
        self.migration_done().await.map(drop)
    }

    /// Poll the migration until it completed (its figures) or failed (why).
    async fn migration_done(&self) -> Result<qmp::MigrationInfo> {
        loop {
            let info = self.service.execute(qmp::query_migrate {}).await?;
            match info.status {
                Some(qmp::MigrationStatus::completed) => return Ok(info),
                Some(status @ (qmp::MigrationStatus::failed | qmp::MigrationStatus::cancelled)) => {
                    anyhow::bail!(
                        "migration {}: {}",
                        enum_name(&status),
                        info.error_desc.as_deref().unwrap_or("QEMU gave no reason")
                    )
                }
                _ => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
            }
        }
    }

    pub async fn system_powerdown(&self) -> Result<()> {
        self.service.execute(qmp::system_powerdown {}).await?;
        Ok(())
    }

    pub async fn quit(&self) -> Result<()> {
        self.service.execute(qmp::quit {}).await?;
        Ok(())
    }
}
