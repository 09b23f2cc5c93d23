//! Console capture: every byte the guest prints goes to `console.log` as it arrives, and every
//! line goes to the scanners (the report parser plugs in here) and to the run loop.

use crate::text::End;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// Longest line handed to scanners; longer ones are cut into pieces of this size.
const MAX_LINE: usize = 64 * 1024;

/// Console text that means the kernel panicked, whatever else it says.
const PANIC_MARKERS: &[&str] = &["Kernel panic - not syncing"];

/// What a scanner wants after a line.
#[derive(Debug, Clone, PartialEq)]
pub enum ScanAction {
    Continue,
    /// End the run (after the console drains); the reason is recorded in the outcome.
    Stop(String),
}

/// Something that wants to see console lines as they arrive.
pub trait ConsoleScanner: Send {
    /// `at` is the time since QEMU started.
    fn on_line(&mut self, at: Duration, line: &str) -> ScanAction;
}

/// What the run loop hears from the console.
#[derive(Debug, Clone, PartialEq)]
pub enum ConsoleEvent {
    Output,
    /// console.log could not be written (a full disk): the run cannot be recorded.
    WriteFailed(String),
    Panic(String),
    Stop(String),
    Closed,
}

/// The console file and scanners, shared by every source (QEMU's stdout; vng's stdout and
/// stderr).
pub struct Console {
    file: tokio::sync::Mutex<tokio::fs::File>,
    scanners: Mutex<Vec<Box<dyn ConsoleScanner>>>,
    lines: std::sync::atomic::AtomicU64,
    /// Set at the first failed write: said once, and nothing more is attempted.
    write_failed: std::sync::atomic::AtomicBool,
    path: std::path::PathBuf,
    start: Instant,
    events: mpsc::UnboundedSender<ConsoleEvent>,
}

impl Console {
    pub async fn create(
        path: &Path,
        scanners: Vec<Box<dyn ConsoleScanner>>,
        start: Instant,
    ) -> std::io::Result<(Arc<Console>, mpsc::UnboundedReceiver<ConsoleEvent>)> {
        let file = crate::files::create_stream_async(path).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let console = Console {
            file: tokio::sync::Mutex::new(file),
            scanners: Mutex::new(scanners),
            lines: Default::default(),
            write_failed: Default::default(),
            path: path.to_path_buf(),
            start,
            events: tx,
        };
        Ok((Arc::new(console), rx))
    }

    pub fn lines(&self) -> u64 {
        self.lines.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// One line's bytes as the guest sent them; `continued` when they are the tail of a line
    /// cut at MAX_LINE, which is kept in the file and never scanned as a line of its own.
    async fn line(&self, raw: &[u8], continued: bool) {
        // The file gets the bytes exactly as the guest sent them, flushed line by line so a
        // crash of `lab` loses nothing already printed.
        if !self.write_failed.load(std::sync::atomic::Ordering::Relaxed) {
            let mut file = self.file.lock().await;
            let written = match file.write_all(raw).await {
                Ok(()) => file.flush().await,
                Err(e) => Err(e),
            };
            if let Err(e) = written {
                self.write_failed
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                let _ = self.events.send(ConsoleEvent::WriteFailed(format!(
                    "cannot write {}: {e}",
                    self.path.display()
                )));
            }
        }
        if continued {
            return;
        }
        let first = self
            .lines
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            == 0;
        let text = crate::text::decode(raw);
        let text = text.as_str();
        let at = self.start.elapsed();
        let mut stops = Vec::new();
        for scanner in self.scanners.lock().unwrap().iter_mut() {
            if let ScanAction::Stop(reason) = scanner.on_line(at, text) {
                stops.push(reason);
            }
        }
        for reason in stops {
            let _ = self.events.send(ConsoleEvent::Stop(reason));
        }
        if first {
            let _ = self.events.send(ConsoleEvent::Output);
        }
        if let Some(pos) = PANIC_MARKERS.iter().find_map(|m| text.find(m)) {
            let _ = self
                .events
                .send(ConsoleEvent::Panic(text[pos..].to_string()));
        }
    }

    /// Read `source` to its end, line by line.
    pub async fn pump(self: Arc<Self>, source: impl AsyncRead + Unpin) {
        let mut reader = BufReader::new(source);
        let mut buf = Vec::new();
        let mut continued = false;
        loop {
            buf.clear();
            match read_bounded_line(&mut reader, &mut buf, MAX_LINE).await {
                Ok((0, _)) | Err(_) => break,
                Ok((_, end)) => {
                    self.line(&buf, continued).await;
                    continued = end == crate::text::End::Cut;
                }
            }
        }
        let _ = self.events.send(ConsoleEvent::Closed);
    }
}

/// Like `read_until(b'\n')`, but never holds more than `max` bytes: a longer line comes in
/// pieces of `max` bytes (guest output is untrusted), the first ending [`End::Cut`]. A bare
/// CR ends a line too.
pub async fn read_bounded_line<R: AsyncBufReadExt + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<(usize, End)> {
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok((buf.len(), End::More));
        }
        let (take, end) = crate::text::line_piece(available, max - buf.len());
        buf.extend_from_slice(&available[..take]);
        reader.consume(take);
        if end != End::More {
            return Ok((buf.len(), end));
        }
    }
}

/// Keeps the tail of a stream (QEMU's stderr) for error messages, and the whole of it in a file.
pub async fn capture_tail(
    source: impl AsyncRead + Unpin,
    path: std::path::PathBuf,
    tail: Arc<Mutex<String>>,
) {
    let mut file = crate::files::create_stream_async(&path).await.ok();
    let mut lines = BufReader::new(source).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(f) = file.as_mut() {
            let _ = f.write_all(format!("{line}\n").as_bytes()).await;
        }
        let mut tail = tail.lock().unwrap();
        tail.push_str(&line);
        tail.push('\n');
        if tail.len() > 8192 {
            let cut = tail.len() - 4096;
            let cut = (cut..tail.len())
                .find(|&i| tail.is_char_boundary(i))
                .unwrap_or(0);
            tail.drain(..cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Collect(Arc<Mutex<Vec<String>>>);
    impl ConsoleScanner for Collect {
        fn on_line(&mut self, _at: Duration, line: &str) -> ScanAction {
            self.0.lock().unwrap().push(line.to_string());
            if line == "stop here" {
                ScanAction::Stop("asked to".into())
            } else {
                ScanAction::Continue
            }
        }
    }

    #[tokio::test]
    async fn lines_reach_file_scanners_and_panic_is_flagged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.log");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (console, mut rx) =
            Console::create(&path, vec![Box::new(Collect(seen.clone()))], Instant::now())
                .await
                .unwrap();
        let input: &[u8] =
            b"[    0.1] hello\r\n\xff\xfe garbage\nstop here\n[    2.0] Kernel panic - not syncing: sysrq\nno newline";
        console.clone().pump(input).await;
        assert_eq!(std::fs::read(&path).unwrap(), input);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 5);
        assert_eq!(seen[0], "[    0.1] hello");
        assert_eq!(seen[4], "no newline");
        let mut events = Vec::new();
        while let Ok(e) = rx.try_recv() {
            events.push(e);
        }
        assert_eq!(
            events,
            vec![
                ConsoleEvent::Output,
                ConsoleEvent::Stop("asked to".into()),
                ConsoleEvent::Panic("Kernel panic - not syncing: sysrq".into()),
                ConsoleEvent::Closed
            ]
        );
        assert_eq!(console.lines(), 5);
    }

    #[tokio::test]
    async fn endless_line_is_cut_not_buffered() {
        let dir = tempfile::tempdir().unwrap();
        let (console, _rx) = Console::create(&dir.path().join("c.log"), vec![], Instant::now())
            .await
            .unwrap();
        let input = vec![b'x'; MAX_LINE * 3 + 5];
        console.clone().pump(&input[..]).await;
        assert_eq!(console.lines(), 1);
    }

    /// The tail of a cut line is never a line: a header at its start reaches no scanner,
    /// and the file keeps every byte.
    #[tokio::test]
    async fn the_tail_of_a_cut_line_is_not_read_as_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (console, mut rx) =
            Console::create(&path, vec![Box::new(Collect(seen.clone()))], Instant::now())
                .await
                .unwrap();
        let mut all = Vec::new();
        for pad in [MAX_LINE, MAX_LINE - 1, 2 * MAX_LINE] {
            seen.lock().unwrap().clear();
            let mut input = vec![b'x'; pad];
            input.extend_from_slice(b"Kernel panic - not syncing: forged\nstop here\n");
            console.clone().pump(&input[..]).await;
            all.extend_from_slice(&input);
            let seen = seen.lock().unwrap().clone();
            assert_eq!(seen.len(), 2, "{pad}");
            assert!(
                seen[0].starts_with("xxx") && !seen[0].contains("forged"),
                "{pad}"
            );
            assert_eq!(seen[1], "stop here", "{pad}");
        }
        assert_eq!(std::fs::read(&path).unwrap(), all);
        while let Ok(e) = rx.try_recv() {
            assert!(!matches!(e, ConsoleEvent::Panic(_)), "{e:?}");
        }
    }
}
