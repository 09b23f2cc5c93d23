//! Host end of the agent channel: the unix socket QEMU serves for the guest's virtio-serial
//! port. Every line the guest sends is appended to `agent.jsonl` before it is decoded, so the
//! run directory keeps whatever was counted even if `lab` dies next.

use super::console::read_bounded_line;
use runner::protocol::{self, GuestMsg, HostMsg};
use std::path::Path;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::mpsc;

#[derive(Debug)]
pub enum AgentEvent {
    Msg(GuestMsg),
    /// A line that is not a valid frame.
    Garbage(String),
    /// agent.jsonl could not be written (a full disk): the run cannot be recorded.
    WriteFailed(String),
    Closed,
}

/// Longest frame the agent may send; a longer line is a protocol error, and is never held
/// whole in memory.
pub const MAX_FRAME: usize = 64 * 1024;

pub struct AgentWriter(OwnedWriteHalf);

impl AgentWriter {
    pub async fn send(&mut self, msg: &HostMsg) -> std::io::Result<()> {
        self.0.write_all(&protocol::encode(msg)).await?;
        self.0.flush().await
    }
}

/// Start reading the connected channel; returns the writer and the event stream.
pub async fn start(
    stream: UnixStream,
    log: &Path,
) -> std::io::Result<(AgentWriter, mpsc::UnboundedReceiver<AgentEvent>)> {
    let (read, write) = stream.into_split();
    let log_path = log.to_path_buf();
    let mut log = crate::files::create_stream_async(log).await?;
    let mut log_failed = false;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut reader = BufReader::new(read);
        let mut line = Vec::new();
        loop {
            line.clear();
            match read_bounded_line(&mut reader, &mut line, MAX_FRAME).await {
                Ok((0, _)) | Err(_) => break,
                Ok(_) => {}
            }
            if !log_failed {
                let written = match log.write_all(&line).await {
                    Ok(()) => log.flush().await,
                    Err(e) => Err(e),
                };
                if let Err(e) = written {
                    log_failed = true;
                    let _ = tx.send(AgentEvent::WriteFailed(format!(
                        "cannot write {}: {e}",
                        log_path.display()
                    )));
                }
            }
            let event = match protocol::decode::<GuestMsg>(&line) {
                Ok(msg) => AgentEvent::Msg(msg),
                Err(e) => AgentEvent::Garbage(format!(
                    "{e}: {:?}",
                    String::from_utf8_lossy(&line[..line.len().min(200)])
                )),
            };
            if tx.send(event).is_err() {
                return;
            }
        }
        let _ = tx.send(AgentEvent::Closed);
    });
    Ok((AgentWriter(write), rx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn an_endless_line_is_garbage_not_memory() {
        let (host, mut guest) = UnixStream::pair().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (_writer, mut events) = start(host, &dir.path().join("agent.jsonl")).await.unwrap();
        let flood = vec![b'x'; MAX_FRAME * 4];
        tokio::spawn(async move {
            let _ = guest.write_all(&flood).await;
        });
        match events.recv().await {
            Some(AgentEvent::Garbage(text)) => assert!(text.len() < 1024, "{}", text.len()),
            other => panic!("expected garbage, got {other:?}"),
        }
    }
}
