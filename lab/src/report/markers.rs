//! A first report detector: console lines that open a kernel report (`BUG:`, `WARNING:`,
//! `KASAN:`-style headers and panics), with the time each was seen. It knows nothing about
//! how the console was captured.

use std::time::Duration;

/// Console line prefixes (after the printk timestamp and caller tags) that open a report.
const OPENERS: &[&str] = &[
    "BUG: ",
    "WARNING: ",
    "KASAN: ",
    "UBSAN: ",
    "Oops: ",
    "general protection fault",
    "Kernel panic - not syncing",
    "kernel BUG at ",
    "INFO: task ",
    "INFO: rcu_",
    "watchdog: BUG: soft lockup",
];

/// The line with its `[    1.234567][    T1] ` prefix removed.
pub fn strip_prefix(line: &str) -> &str {
    let mut rest = line.trim_start();
    // Up to two bracketed fields: the timestamp and the PRINTK_CALLER tag.
    for _ in 0..2 {
        if let Some(after) = rest.strip_prefix('[') {
            if let Some(end) = after.find(']') {
                rest = after[end + 1..].trim_start();
                continue;
            }
        }
        break;
    }
    rest
}

/// The report header this line is, if it opens one.
pub fn opener(line: &str) -> Option<&str> {
    let text = strip_prefix(line);
    OPENERS.iter().any(|o| text.starts_with(o)).then_some(text)
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Marker {
    /// Since QEMU started.
    pub at_ms: u64,
    pub line: String,
}

/// Collects every report-opening line (bounded).
#[derive(Debug, Default, Clone)]
pub struct MarkerScanner {
    pub found: Vec<Marker>,
}

const MAX_MARKERS: usize = 200;

impl MarkerScanner {
    pub fn on_line(&mut self, at: Duration, line: &str) -> bool {
        match opener(line) {
            Some(text) if self.found.len() < MAX_MARKERS => {
                self.found.push(Marker {
                    at_ms: at.as_millis() as u64,
                    line: text.chars().take(300).collect(),
                });
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openers_after_timestamp_and_caller() {
        assert_eq!(
            opener("[   12.345678][  T123] BUG: KASAN: slab-use-after-free in __fput+0x1/0x2"),
            Some("BUG: KASAN: slab-use-after-free in __fput+0x1/0x2")
        );
        assert_eq!(
            opener("[    1.0][    C1] WARNING: CPU: 1 PID: 77 at drivers/dma-buf/dma-buf.c:1 dma_buf_poll+0x1"),
            Some("WARNING: CPU: 1 PID: 77 at drivers/dma-buf/dma-buf.c:1 dma_buf_poll+0x1")
        );
        assert_eq!(
            opener("BUG: sleeping function called from invalid context at x"),
            Some("BUG: sleeping function called from invalid context at x")
        );
        assert_eq!(
            opener("[    0.1][    T0] kasan: KernelAddressSanitizer initialized"),
            None
        );
        assert_eq!(opener("[    0.1][    T1] Run /init as init process"), None);
        assert_eq!(opener(""), None);
    }

    /// Consoles captured from the lab's own runs (lab/tests/corpus/console/) and the line
    /// that opens their first report.
    const CORPUS: &[(&str, &str)] = &[
        (
            "epoll-unpinned-poll-dmabuf.log",
            "WARNING: CPU: 1 PID: 40 at include/linux/fs.h:1127 dma_buf_poll+0x563/0x6d0",
        ),
        (
            "eventfd-no-kref-uring.log",
            "BUG: KASAN: slab-use-after-free in __lock_acquire+0x4288/0x63d0",
        ),
        (
            "eventfd-no-kref-aio.log",
            "BUG: KASAN: slab-use-after-free in __lock_acquire+0x4288/0x63d0",
        ),
        (
            "epoll-release-on-close-naive-dmabuf.log",
            "BUG: sleeping function called from invalid context at kernel/locking/mutex.c:586",
        ),
        (
            "distro-sysrq-panic.log",
            "Kernel panic - not syncing: sysrq triggered crash",
        ),
    ];

    #[test]
    fn first_report_of_each_captured_console() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/console");
        for (file, first) in CORPUS {
            let text = std::fs::read(dir.join(file)).unwrap();
            let mut s = MarkerScanner::default();
            for line in String::from_utf8_lossy(&text).lines() {
                s.on_line(Duration::ZERO, line);
            }
            assert_eq!(
                s.found.first().map(|m| m.line.as_str()),
                Some(*first),
                "{file}"
            );
        }
    }

    #[test]
    fn scanner_keeps_time_and_text() {
        let mut s = MarkerScanner::default();
        assert!(!s.on_line(Duration::from_millis(5), "[ 0.1] hello"));
        assert!(s.on_line(
            Duration::from_millis(1500),
            "[ 1.5][ T9] WARNING: CPU: 0 PID: 9 at x"
        ));
        assert_eq!(
            s.found,
            vec![Marker {
                at_ms: 1500,
                line: "WARNING: CPU: 0 PID: 9 at x".into()
            }]
        );
    }
}
