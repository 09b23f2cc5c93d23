//! The guest end of the agent channel: find the named virtio-serial port, send frames on it.

use runner::protocol::{self, GuestMsg, HostMsg, AGENT_PORT_NAME};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the agent waits for a host that closed the port to connect again.
const HOST_GONE: Duration = Duration::from_secs(10);

/// Writer shared by every thread of the agent; one `write` per message keeps lines whole.
#[derive(Clone)]
pub struct Channel {
    port: Arc<Mutex<File>>,
}

impl Channel {
    pub fn new(port: File) -> Self {
        Channel {
            port: Arc::new(Mutex::new(port)),
        }
    }

    /// Send one message. Errors are swallowed after the first: a vanished host cannot be told.
    pub fn send(&self, msg: &GuestMsg) {
        let line = protocol::encode(msg);
        let mut port = self.port.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = port.write_all(&line) {
            eprintln!("lab-runner: cannot write to the agent port: {e}");
        }
    }

    /// Block until the host sends its next message (the request, then `go` when asked for).
    pub fn receive(&self) -> Result<HostMsg, String> {
        let port = self.port.lock().unwrap_or_else(|p| p.into_inner());
        let read_half = port
            .try_clone()
            .map_err(|e| format!("cannot duplicate the agent port: {e}"))?;
        drop(port);
        let mut line = Vec::new();
        let mut reader = BufReader::new(read_half);
        let since = Instant::now();
        loop {
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| format!("cannot read the agent port: {e}"))?;
            if line.ends_with(b"\n") {
                break;
            }
            // Nothing connected on the host's side (the port reads as closed): a restored
            // guest can see this for a moment while the new host connects.
            if n == 0 && since.elapsed() >= HOST_GONE {
                return Err(format!(
                    "the host closed the agent port and did not come back within {HOST_GONE:?}"
                ));
            }
            if n == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        protocol::decode(&line).map_err(|e| e.to_string())
    }
}

/// Path of the device node of the virtio-serial port named [`AGENT_PORT_NAME`].
fn find_port() -> Option<PathBuf> {
    let entries = fs::read_dir("/sys/class/virtio-ports").ok()?;
    entries.flatten().find_map(|entry| {
        let name = fs::read_to_string(entry.path().join("name")).ok()?;
        (name.trim() == AGENT_PORT_NAME).then(|| PathBuf::from("/dev").join(entry.file_name()))
    })
}

/// Open the agent port, waiting for the device to be probed.
pub fn open_port(wait: Duration) -> Result<File, String> {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(path) = find_port() {
            return OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| format!("cannot open agent port {}: {e}", path.display()));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "no virtio-serial port named {AGENT_PORT_NAME} after {wait:?} \
                 (is CONFIG_VIRTIO_CONSOLE=y and the port on the QEMU command line?)"
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
