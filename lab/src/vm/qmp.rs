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

/// The QMP client. Every command runs on a task of its own and is never cancelled half-way:
/// the `qapi` crate numbers every command 0 without out-of-band support, and a command
/// dropped before QEMU answered leaves its number taken, so the next one would panic
/// ("duplicate command id") and abort the lab. A caller that stops waiting (a timeout)
/// leaves the command to finish on its task, and the client refuses further commands with
/// an error: QEMU did not answer.
pub struct Qmp {
    service: std::sync::Arc<Service>,
    /// A command whose caller stopped waiting before QEMU answered.
    unanswered: std::sync::Arc<std::sync::Mutex<Option<&'static str>>>,
}

/// Marks the command unanswered if its caller drops the wait before the answer.
struct Waiting<'a> {
    unanswered: &'a std::sync::Mutex<Option<&'static str>>,
    name: &'static str,
    answered: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if !self.answered {
            if let Ok(mut u) = self.unanswered.lock() {
                u.get_or_insert(self.name);
            }
        }
    }
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
        Ok((
            Qmp {
                service: std::sync::Arc::new(service),
                unanswered: Default::default(),
            },
            rx,
        ))
    }

    /// Run one command on a task of its own (see [`Qmp`]); QEMU's error, a closed socket, a
    /// fault of the client, or an earlier command left unanswered is an error, never a panic.
    async fn run<C>(&self, command: C) -> Result<C::Ok>
    where
        C: qapi::qmp::QmpCommand + Send + 'static,
        C::Ok: Send + 'static,
    {
        let name = C::NAME;
        if let Some(earlier) = *self.unanswered.lock().unwrap_or_else(|e| e.into_inner()) {
            anyhow::bail!("QMP {name}: QEMU did not answer an earlier command ({earlier})");
        }
        let mut waiting = Waiting {
            unanswered: &self.unanswered,
            name,
            answered: false,
        };
        let service = self.service.clone();
        let task = tokio::spawn(async move { service.execute(command).await });
        let result = task.await;
        waiting.answered = true;
        match result {
            Ok(answer) => answer.map_err(|e| anyhow::anyhow!("QMP {name}: {e}")),
            Err(e) => anyhow::bail!("QMP {name}: the QMP client failed ({e})"),
        }
    }

    pub async fn status(&self) -> Result<String> {
        let info = self.run(qmp::query_status {}).await?;
        Ok(enum_name(&info.status))
    }

    /// Host thread id of each vCPU, by vCPU index.
    pub async fn vcpu_threads(&self) -> Result<BTreeMap<u32, i64>> {
        let cpus = self.run(qmp::query_cpus_fast {}).await?;
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
        self.run(qmp::stop {}).await?;
        Ok(())
    }

    /// Run the guest's vCPUs (again).
    pub async fn cont(&self) -> Result<()> {
        self.run(qmp::cont {}).await?;
        Ok(())
    }

    /// Send the machine's state to `uri` (`exec:…`) at full speed and wait until it is all
    /// written; returns the bytes sent.
    pub async fn migrate(&self, uri: &str) -> Result<u64> {
        // The default bandwidth cap (32 MiB/s in QEMU 7.2) is for live migration over a network.
        let params: qmp::MigrateSetParameters =
            serde_json::from_value(serde_json::json!({ "max-bandwidth": 1u64 << 40 }))?;
        self.run(qmp::migrate_set_parameters(params))
            .await
            .context("migrate-set-parameters")?;
        self.run(qmp::migrate {
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
        self.run(qmp::migrate_incoming {
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
            let info = self.run(qmp::query_migrate {}).await?;
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
        self.run(qmp::system_powerdown {}).await?;
        Ok(())
    }

    pub async fn quit(&self) -> Result<()> {
        self.run(qmp::quit {}).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    /// A QEMU that stops answering: the command whose wait is given up, and every command
    /// after it, end in errors naming them; nothing panics (before, the next command hit
    /// the client's "duplicate command id" panic and the lab aborted).
    #[tokio::test]
    async fn a_qemu_that_stops_answering_gives_errors_never_a_panic() {
        let (lab, qemu) = UnixStream::pair().unwrap();
        let fake = tokio::spawn(async move {
            let (read, mut write) = tokio::io::split(qemu);
            let mut lines = BufReader::new(read).lines();
            write
                .write_all(
                    b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, \"package\": \"\"}, \"capabilities\": []}}\n",
                )
                .await
                .unwrap();
            // qmp_capabilities, answered; then query-status, never answered.
            lines.next_line().await.unwrap();
            write.write_all(b"{\"return\": {}}\n").await.unwrap();
            let mut seen = 0;
            while let Ok(Some(_)) = lines.next_line().await {
                seen += 1;
            }
            (seen, write)
        });
        let (qmp, _events) = Qmp::start(lab).await.unwrap();
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(200), qmp.status()).await;
        assert!(waited.is_err(), "QEMU answered");
        for _ in 0..3 {
            let e = format!("{:#}", qmp.quit().await.unwrap_err());
            assert!(e.contains("quit") && e.contains("query-status"), "{e}");
        }
        drop(qmp);
        fake.abort();
    }
}
