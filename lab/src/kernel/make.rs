//! Running kbuild: the log, progress (files compiled against the expected count), and on
//! failure the first compiler error and the log's tail.

use crate::events::{self, Event};
use anyhow::{Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// kbuild's quiet-mode tags that mean "one translation unit compiled".
const COMPILE_TAGS: &[&str] = &["CC", "AS", "CC [M]"];

/// Lines in a build log that are the first thing worth showing, in order of preference.
const ERROR_FORMS: &[&str] = &[
    ": error: ",
    ": fatal error: ",
    "undefined reference to",
    "*** ",
];

#[derive(Debug, Clone, Default)]
pub struct MakeStats {
    pub compiled: u64,
}

/// `kbuild` says it compiled a file.
pub fn is_compile_line(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("  ") else {
        return false;
    };
    COMPILE_TAGS.iter().any(|tag| {
        rest.strip_prefix(tag)
            .is_some_and(|r| r.starts_with(' ') && r.trim_start().len() < r.len())
    })
}

/// The first line of `log` that explains a failure, if any.
pub fn first_error(log: &str) -> Option<&str> {
    ERROR_FORMS
        .iter()
        .find_map(|form| log.lines().find(|l| l.contains(form)))
}

pub fn tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The longest a make may print nothing before it counts as stuck.
const SILENCE_LIMIT: Duration = Duration::from_secs(15 * 60);

/// Run `cmd` (a make invocation), logging to `log_path`, showing progress as `label`.
pub fn run(
    mut cmd: Command,
    log_path: &Path,
    label: &str,
    expected: Option<u64>,
) -> Result<MakeStats> {
    let start = Instant::now();
    let mut log = crate::files::create_stream(log_path)?;
    writeln!(log, "$ {cmd:?}")?;
    crate::child::contain(&mut cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run make (apt-get install make gcc; scripts/setup.sh does)")?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let readers: Vec<_> = [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ]
    .into_iter()
    .map(|stream| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        })
    })
    .collect();
    drop(tx);

    events::emit(Event::BuildStarted {
        label: label.to_string(),
        expected,
    });
    let ended = || {
        events::emit(Event::BuildEnded {
            label: label.to_string(),
        })
    };
    let mut compiled = 0u64;
    let mut last_output = Instant::now();
    loop {
        // A cold build takes 10–25 min but prints a line every few seconds: a make silent
        // for this long waits on something that will not come (a FIFO among the sources).
        if last_output.elapsed() > SILENCE_LIMIT {
            crate::child::terminate(&mut child);
            ended();
            let _ = writeln!(log, "lab: no output for {SILENCE_LIMIT:?}: stopped");
            anyhow::bail!(
                "{label}: make printed nothing for {} min and was stopped (a source it reads \
                 may be a FIFO or a device); its log: {}",
                SILENCE_LIMIT.as_secs() / 60,
                log_path.display()
            );
        }
        if crate::interrupt::requested() {
            // make deletes the targets it was writing when it gets SIGTERM: the object tree
            // stays consistent for the next build.
            crate::child::terminate(&mut child);
            ended();
            let _ = writeln!(log, "lab: interrupted");
            return Err(crate::interrupt::Interrupted.into());
        }
        let line = match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                last_output = Instant::now();
                line
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        };
        writeln!(log, "{line}")?;
        if is_compile_line(&line) {
            compiled += 1;
            events::emit(Event::BuildProgress {
                label: label.to_string(),
                compiled,
                elapsed: start.elapsed(),
            });
        }
    }
    for r in readers {
        let _ = r.join();
    }
    let status = crate::child::wait(&mut child, "make");
    ended();
    let status = status?;
    log.flush()?;
    if !status.success() {
        let text = crate::files::read_to_string(log_path).unwrap_or_default();
        let first = first_error(&text).unwrap_or("(no compiler error found in the log)");
        anyhow::bail!(
            "{label}: make failed ({status}).\nfirst error: {first}\nlast lines of {}:\n{}",
            log_path.display(),
            tail(&text, 20)
        );
    }
    Ok(MakeStats { compiled })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compile_lines() {
        assert!(is_compile_line("  CC      fs/eventpoll.o"));
        assert!(is_compile_line("  AS      arch/x86/entry/entry_64.o"));
        assert!(!is_compile_line("  LD      vmlinux"));
        assert!(!is_compile_line("  CCC     x"));
        assert!(!is_compile_line("CC fs/x.o"));
    }

    #[test]
    fn first_error_prefers_the_compiler() {
        let log = "  CC      fs/a.o\nmake[2]: *** [scripts/Makefile.build:229: fs/a.o] Error 1\nfs/a.c:12:5: error: 'x' undeclared\n";
        assert_eq!(first_error(log), Some("fs/a.c:12:5: error: 'x' undeclared"));
        assert_eq!(
            first_error("make: *** [Makefile:1] Error 2\n"),
            Some("make: *** [Makefile:1] Error 2")
        );
        assert_eq!(first_error("all good\n"), None);
    }
}
