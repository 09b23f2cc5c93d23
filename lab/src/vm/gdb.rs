//! A client of the GDB remote serial protocol, the subset a schedule needs from QEMU's
//! gdbstub: every vCPU is a thread (id = vCPU index + 1), `Z0`/`z0` set and clear a breakpoint
//! on every vCPU, `vCont` resumes some vCPUs while the others stay stopped, and a stop reply
//! names the vCPU that stopped the machine (all-stop mode: one stop stops them all).
//!
//! No maintained crate speaks the client side of the protocol; this one is small: packets
//! (`$data#checksum`, escapes and run-length encoding in replies), no-ack mode once the stub
//! agrees to it, and a reader task that hands over whole packets, so that waiting for a stop
//! with a deadline never cuts a packet in half.

use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::mpsc;

/// How long the stub gets to answer a command (the machine is stopped then: it answers at
/// once).
const REPLY: Duration = Duration::from_secs(5);
/// Longest packet taken from the stub (QEMU's are at most 4 KiB).
const MAX_PACKET: usize = 64 * 1024;

/// The machine went away (QEMU exited, or the guest powered off): not a protocol failure.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Gone(pub String);

/// A failed write: the machine went away when the stub's socket is closed.
fn write_error(e: std::io::Error) -> anyhow::Error {
    use std::io::ErrorKind::{BrokenPipe, ConnectionReset, NotConnected};
    match e.kind() {
        BrokenPipe | ConnectionReset | NotConnected => {
            Gone(format!("the gdbstub closed the connection: {e}")).into()
        }
        _ => anyhow!("writing to the gdbstub: {e}"),
    }
}

/// A vCPU as the protocol numbers it (thread id - 1).
pub type Cpu = u32;

/// Why the machine stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    /// The signal of the stop reply: 5 (SIGTRAP) at a breakpoint or after a step, 2 (SIGINT)
    /// after an interrupt.
    pub signal: u8,
    /// The vCPU the stub reports the stop for.
    pub cpu: Option<Cpu>,
}

/// What one `vCont` action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    Step,
}

/// The packet for resuming these vCPUs (`None`: every vCPU) with these actions; vCPUs not
/// named stay stopped.
pub fn vcont(actions: &[(Action, Option<Cpu>)]) -> String {
    let mut packet = String::from("vCont");
    for (action, cpu) in actions {
        packet.push(';');
        packet.push(match action {
            Action::Continue => 'c',
            Action::Step => 's',
        });
        if let Some(cpu) = cpu {
            packet.push_str(&format!(":{:x}", cpu + 1));
        }
    }
    packet
}

/// The packet for a payload: `$payload#checksum`.
pub fn frame(payload: &str) -> Vec<u8> {
    let sum = payload.bytes().fold(0u8, |s, b| s.wrapping_add(b));
    format!("${payload}#{sum:02x}").into_bytes()
}

/// A reply's payload with escapes (`}` then the byte xor 0x20) and run-length encoding
/// (`*` then the repeat count + 29) undone.
pub fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter().copied();
    while let Some(b) = bytes.next() {
        match b {
            b'}' => out.extend(bytes.next().map(|e| e ^ 0x20)),
            b'*' => {
                if let (Some(&last), Some(n)) = (out.last(), bytes.next()) {
                    let count = n.saturating_sub(29) as usize;
                    out.extend(std::iter::repeat_n(last, count));
                }
            }
            b => out.push(b),
        }
    }
    out
}

/// A stop reply (`S05`, `T05thread:02;swbreak:;`, `T02thread:p01.01;`); `None` for anything
/// else (`W`/`X`: the machine is gone, `O`: output).
pub fn parse_stop(reply: &str) -> Option<Stop> {
    let kind = reply.chars().next()?;
    if kind != 'S' && kind != 'T' {
        return None;
    }
    let signal = u8::from_str_radix(reply.get(1..3)?, 16).ok()?;
    let cpu = reply.get(3..).unwrap_or("").split(';').find_map(|pair| {
        let id = pair.strip_prefix("thread:")?;
        // Multiprocess form: pPID.TID.
        let tid = id.rsplit('.').next()?;
        let tid = u32::from_str_radix(tid.trim_start_matches('p'), 16).ok()?;
        tid.checked_sub(1)
    });
    Some(Stop { signal, cpu })
}

/// Little-endian hex (as the stub sends registers and memory) to bytes.
fn hex_bytes(text: &str) -> Result<Vec<u8>> {
    hex::decode(text).map_err(|e| anyhow!("not hex from the stub ({e}): {text:.80}"))
}

/// An error reply (`E01`) as an error naming the command.
fn check(reply: String, command: &str) -> Result<String> {
    if reply.len() == 3 && reply.starts_with('E') {
        bail!("the gdbstub refused {command}: {reply}");
    }
    Ok(reply)
}

/// What the reader task hands over.
enum Incoming {
    Packet(String),
    Closed(String),
}

/// Read packets off the stub and hand them over whole.
async fn read_packets(
    mut read: BufReader<tokio::net::unix::OwnedReadHalf>,
    tx: mpsc::UnboundedSender<Incoming>,
) {
    let why = loop {
        let mut byte = [0u8; 1];
        match read.read(&mut byte).await {
            Ok(0) => break "the gdbstub closed the connection".to_string(),
            Err(e) => break format!("reading the gdbstub: {e}"),
            Ok(_) => {}
        }
        if byte[0] != b'$' {
            continue; // '+', '-' and noise between packets
        }
        let mut raw = Vec::new();
        loop {
            match read.read_u8().await {
                Ok(b'#') => break,
                Ok(b) if raw.len() < MAX_PACKET => raw.push(b),
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.send(Incoming::Closed(format!("reading the gdbstub: {e}")));
                    return;
                }
            }
        }
        let mut sum = [0u8; 2];
        if let Err(e) = read.read_exact(&mut sum).await {
            break format!("reading the gdbstub: {e}");
        }
        let payload = String::from_utf8_lossy(&unescape(&raw)).into_owned();
        if tx.send(Incoming::Packet(payload)).is_err() {
            return;
        }
    };
    let _ = tx.send(Incoming::Closed(why));
}

/// A connection to a gdbstub.
pub struct Gdb {
    write: OwnedWriteHalf,
    incoming: mpsc::UnboundedReceiver<Incoming>,
    no_ack: bool,
    /// The vCPU registers are read from (`Hg`).
    selected: Option<Cpu>,
}

impl Gdb {
    /// Connect to the stub's unix socket and agree on the protocol. QEMU stops the machine
    /// when a debugger connects: it stays stopped until [`Gdb::resume`].
    pub async fn connect(path: &Path) -> Result<Gdb> {
        let stream = UnixStream::connect(path)
            .await
            .with_context(|| format!("cannot connect to the gdbstub at {}", path.display()))?;
        let (read, write) = stream.into_split();
        let (tx, incoming) = mpsc::unbounded_channel();
        tokio::spawn(read_packets(BufReader::new(read), tx));
        let mut gdb = Gdb {
            write,
            incoming,
            no_ack: false,
            selected: None,
        };
        gdb.command("qSupported:swbreak+;vContSupported+").await?;
        if gdb.command("QStartNoAckMode").await? == "OK" {
            gdb.no_ack = true;
        }
        // QEMU answers register reads only to a client that has read the target's
        // description.
        let features = gdb.command("qXfer:features:read:target.xml:0,ffb").await?;
        if !features.starts_with(['l', 'm']) {
            bail!("the gdbstub has no target description (qXfer answered {features:.40?})");
        }
        let actions = gdb.command("vCont?").await?;
        if !actions.contains(";c") || !actions.contains(";s") {
            bail!("the gdbstub cannot resume single vCPUs (vCont? answered {actions:?})");
        }
        Ok(gdb)
    }

    async fn send(&mut self, payload: &str) -> Result<()> {
        self.write
            .write_all(&frame(payload))
            .await
            .map_err(write_error)
    }

    async fn next_packet(&mut self, deadline: Instant) -> Result<Option<String>> {
        match tokio::time::timeout_at(deadline.into(), self.incoming.recv()).await {
            Err(_) => Ok(None),
            Ok(Some(Incoming::Packet(p))) => {
                // Until no-ack mode, every packet is acknowledged (the stub's '+' for ours
                // are skipped by the reader).
                if !self.no_ack {
                    self.write.write_all(b"+").await.map_err(write_error)?;
                }
                Ok(Some(p))
            }
            Ok(Some(Incoming::Closed(why))) => Err(Gone(why).into()),
            Ok(None) => bail!("the gdbstub reader is gone"),
        }
    }

    /// Send a command and wait for its reply (the machine is stopped).
    pub async fn command(&mut self, payload: &str) -> Result<String> {
        self.send(payload).await?;
        let deadline = Instant::now() + REPLY;
        loop {
            match self.next_packet(deadline).await? {
                None => bail!("the gdbstub did not answer {payload:?} within {REPLY:?}"),
                // Console output packets are not replies.
                Some(p) if p.starts_with('O') && p.len() > 1 && p != "OK" => continue,
                // Nor is a stop reply, but to '?': connecting to a running machine stops it,
                // and the stub says so unasked.
                Some(p) if payload != "?" && parse_stop(&p).is_some() => continue,
                Some(p) => return Ok(p),
            }
        }
    }

    /// The vCPUs of the machine (`qfThreadInfo`/`qsThreadInfo`).
    pub async fn cpus(&mut self) -> Result<Vec<Cpu>> {
        let mut cpus = Vec::new();
        let mut reply = self.command("qfThreadInfo").await?;
        while let Some(list) = reply.strip_prefix('m') {
            for id in list.split(',') {
                let tid = id.rsplit('.').next().unwrap_or(id).trim_start_matches('p');
                let tid = u32::from_str_radix(tid, 16)
                    .map_err(|_| anyhow!("thread id {id:?} from the gdbstub"))?;
                cpus.extend(tid.checked_sub(1));
            }
            reply = self.command("qsThreadInfo").await?;
        }
        Ok(cpus)
    }

    /// Why the machine is stopped now (`?`).
    pub async fn stopped(&mut self) -> Result<Stop> {
        let reply = self.command("?").await?;
        parse_stop(&reply).ok_or_else(|| anyhow!("not a stop reply to '?': {reply:?}"))
    }

    /// A breakpoint at `addr` on every vCPU.
    pub async fn insert_breakpoint(&mut self, addr: u64) -> Result<()> {
        let command = format!("Z0,{addr:x},1");
        match check(self.command(&command).await?, &command)?.as_str() {
            "OK" => Ok(()),
            "" => bail!("the gdbstub does not support breakpoints ({command})"),
            other => bail!("{command}: unexpected reply {other:?}"),
        }
    }

    pub async fn remove_breakpoint(&mut self, addr: u64) -> Result<()> {
        let command = format!("z0,{addr:x},1");
        check(self.command(&command).await?, &command).map(drop)
    }

    /// Resume these vCPUs (the others stay stopped); the next stop arrives through
    /// [`Gdb::wait_stop`].
    pub async fn resume(&mut self, actions: &[(Action, Option<Cpu>)]) -> Result<()> {
        self.selected = None;
        self.send(&vcont(actions)).await
    }

    /// The next stop reply, or `None` once `deadline` passed with the machine still running.
    pub async fn wait_stop(&mut self, deadline: Instant) -> Result<Option<Stop>> {
        loop {
            match self.next_packet(deadline).await? {
                None => return Ok(None),
                Some(p) => {
                    if let Some(stop) = parse_stop(&p) {
                        return Ok(Some(stop));
                    }
                    if p.starts_with('W') || p.starts_with('X') {
                        return Err(Gone(format!("the machine is gone ({p})")).into());
                    }
                }
            }
        }
    }

    /// Stop a running machine (the protocol's interrupt byte) and return its stop reply.
    pub async fn interrupt(&mut self) -> Result<Stop> {
        self.interrupt_within(REPLY)
            .await?
            .ok_or_else(|| anyhow!("the machine did not stop within {REPLY:?} of an interrupt"))
    }

    /// Interrupt, and wait at most `limit` for the stop (a stopped machine ignores it).
    pub async fn interrupt_within(&mut self, limit: Duration) -> Result<Option<Stop>> {
        self.write.write_all(&[0x03]).await.map_err(write_error)?;
        self.wait_stop(Instant::now() + limit).await
    }

    /// Register `regno` (gdb's numbering: 16 is rip on x86-64) of `cpu`, little-endian.
    pub async fn register(&mut self, cpu: Cpu, regno: u32) -> Result<u64> {
        if self.selected != Some(cpu) {
            let command = format!("Hg{:x}", cpu + 1);
            check(self.command(&command).await?, &command)?;
            self.selected = Some(cpu);
        }
        let command = format!("p{regno:x}");
        let reply = check(self.command(&command).await?, &command)?;
        if reply.is_empty() {
            bail!("the gdbstub does not read register {regno} ({command})");
        }
        let bytes = hex_bytes(&reply)?;
        let mut le = [0u8; 8];
        for (slot, b) in le.iter_mut().zip(bytes) {
            *slot = b;
        }
        Ok(u64::from_le_bytes(le))
    }

    /// `len` bytes of guest memory at virtual address `addr`, as the selected vCPU sees it.
    pub async fn memory(&mut self, addr: u64, len: usize) -> Result<Vec<u8>> {
        let command = format!("m{addr:x},{len:x}");
        hex_bytes(&check(self.command(&command).await?, &command)?)
    }

    /// Remove every breakpoint, resume every vCPU and let go of the machine.
    pub async fn detach(mut self) -> Result<()> {
        let reply = self.command("D").await?;
        check(reply, "D").map(drop)
    }
}

/// gdb's number of the instruction pointer on x86-64.
pub const RIP: u32 = 16;
/// gdb's number of the stack pointer on x86-64 (rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp).
pub const RSP: u32 = 7;
/// The GS base in use, and the one `swapgs` swaps in: QEMU's x86-64 target description
/// numbers them after the segment registers (`maint print remote-registers`: 25 and 26). In
/// the kernel, GS is the per-CPU area; in user mode the kernel's is the swapped-out one.
pub const GS_BASE: u32 = 25;
pub const K_GS_BASE: u32 = 26;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_carry_their_checksum() {
        assert_eq!(frame("?"), b"$?#3f");
        assert_eq!(frame("vCont;c:2"), b"$vCont;c:2#14".to_vec());
        assert_eq!(frame(""), b"$#00");
    }

    #[test]
    fn vcont_names_vcpus_by_thread_id() {
        assert_eq!(vcont(&[(Action::Continue, None)]), "vCont;c");
        assert_eq!(
            vcont(&[(Action::Continue, Some(0)), (Action::Continue, Some(15))]),
            "vCont;c:1;c:10"
        );
        assert_eq!(vcont(&[(Action::Step, Some(1))]), "vCont;s:2");
    }

    #[test]
    fn stop_replies_name_the_vcpu() {
        assert_eq!(
            parse_stop("T05thread:02;swbreak:;"),
            Some(Stop {
                signal: 5,
                cpu: Some(1)
            })
        );
        assert_eq!(
            parse_stop("T02thread:p01.0a;"),
            Some(Stop {
                signal: 2,
                cpu: Some(9)
            })
        );
        assert_eq!(
            parse_stop("S05"),
            Some(Stop {
                signal: 5,
                cpu: None
            })
        );
        for other in ["OK", "W00", "E01", "", "T", "Tzz"] {
            assert_eq!(parse_stop(other), None, "{other}");
        }
    }

    #[test]
    fn replies_are_unescaped_and_expanded() {
        assert_eq!(unescape(b"a}\x5db"), b"a}b");
        assert_eq!(unescape(b"0* "), b"0000");
        assert_eq!(unescape(b"*"), b"");
        assert_eq!(unescape(b"}"), b"");
    }
}
