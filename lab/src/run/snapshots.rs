//! Whether a batch's runs restore a snapshot or boot: the snapshot is made (or found and
//! checked) when the first run needs it; one that fails to restore is rebuilt once, and after
//! a second failure every run boots. Each run's record says which it was, and why it booted.

use crate::vm::console::ConsoleScanner;
use crate::vm::outcome::RunRecord;
use crate::vm::session::{self, BootSpec};
use crate::vm::snapshot::Snapshot;
use std::sync::Arc;

/// Where a batch stands with its snapshot.
enum Current {
    /// Not made or checked yet.
    Unknown,
    Ready(Arc<Snapshot>),
    /// Every run boots: asked to (`None`), or for this reason.
    Off(Option<String>),
}

pub struct Snapshots {
    current: tokio::sync::Mutex<(Current, Rebuilt)>,
    label: String,
}

/// Whether the snapshot was already rebuilt after a failed restore (and why it had to be).
type Rebuilt = Option<String>;

impl Snapshots {
    /// Runs restore a snapshot (made when the first run needs it).
    pub fn on(label: String) -> Self {
        Snapshots {
            current: tokio::sync::Mutex::new((Current::Unknown, None)),
            label,
        }
    }

    /// Every run boots: `--no-snapshot` says so.
    pub fn off() -> Self {
        Snapshots {
            current: tokio::sync::Mutex::new((Current::Off(None), None)),
            label: String::new(),
        }
    }

    /// Set up `spec` to restore the snapshot, or to boot with the reason noted.
    async fn choose(&self, spec: &mut BootSpec) {
        let mut current = self.current.lock().await;
        if let Current::Unknown = current.0 {
            current.0 = self.prepare(spec, None).await;
        }
        spec.restore = None;
        spec.start_note = current
            .1
            .as_ref()
            .map(|why| format!("rebuilt after: {why}"));
        match &current.0 {
            Current::Ready(snapshot) => spec.restore = Some(snapshot.clone()),
            Current::Off(None) => {}
            Current::Off(Some(why)) => spec.start_note = Some(format!("booted: {why}")),
            Current::Unknown => unreachable!("prepared above"),
        }
    }

    /// One VM run of `spec`: restored when it can be, booted otherwise; a restore that fails
    /// (nothing ran) is retried on the rebuilt snapshot, then booted. `scanners` gives each
    /// attempt its console scanners.
    pub async fn run(
        &self,
        spec: &mut BootSpec,
        mut scanners: impl FnMut() -> Vec<Box<dyn ConsoleScanner>>,
    ) -> anyhow::Result<RunRecord> {
        loop {
            self.choose(spec).await;
            let e = match session::run(spec, scanners()).await {
                Ok(record) => return Ok(record),
                Err(e) => e,
            };
            match (e.downcast_ref::<session::RestoreFailed>(), &spec.restore) {
                (Some(failed), Some(snapshot)) => {
                    // The failed attempt's QEMU output is kept beside the run's.
                    let _ = std::fs::rename(
                        spec.run_dir.join("qemu-stderr.log"),
                        spec.run_dir.join("restore-failed-stderr.log"),
                    );
                    let (snapshot, why) = (snapshot.clone(), failed.0.clone());
                    self.failed(&snapshot, why, spec).await;
                }
                _ => return Err(e),
            }
        }
    }

    /// [`Snapshots::run`], then the program's output (the `selftest` workload's, under the
    /// name the request gives it) read as per-test results.
    pub async fn run_and_read(
        &self,
        spec: &mut BootSpec,
        scanners: impl FnMut() -> Vec<Box<dyn ConsoleScanner>>,
    ) -> anyhow::Result<crate::results::RunRecord> {
        let machine = self.run(spec, scanners).await?;
        let program = spec.request.params.get("name").and_then(|v| v.as_str());
        super::suite::with_tests(machine, program, &spec.run_dir)
    }

    /// `snapshot` could not be restored (`why`): rebuild it once; after that, boot.
    async fn failed(&self, snapshot: &Arc<Snapshot>, why: String, spec: &BootSpec) {
        let mut current = self.current.lock().await;
        // Another run of the batch reported it first.
        if !matches!(&current.0, Current::Ready(s) if Arc::ptr_eq(s, snapshot)) {
            return;
        }
        crate::events::emit(crate::events::Event::RestoreFailed {
            label: self.label.clone(),
            why: why.clone(),
        });
        if current.1.is_some() {
            current.0 = Current::Off(Some(format!("the rebuilt snapshot failed too: {why}")));
            return;
        }
        let _ = std::fs::remove_dir_all(&snapshot.dir);
        current.0 = self.prepare(spec, Some(&why)).await;
        current.1 = Some(why);
    }

    async fn prepare(&self, spec: &BootSpec, after: Option<&str>) -> Current {
        let root = match crate::cache::dir("snapshots") {
            Ok(root) => root,
            Err(e) => return self.off_because(format!("{e:#}")),
        };
        let mut spec = spec.clone();
        spec.restore = None;
        match session::snapshot(&spec, &root, boot_check).await {
            Ok(prepared) => {
                let m = &prepared.snapshot.meta;
                // A snapshot found in the cache is news only when one was replaced.
                if prepared.made {
                    crate::events::emit(crate::events::Event::SnapshotMade {
                        label: self.label.clone(),
                        key: m.key.clone(),
                        boot_ms: m.boot_ms,
                        stream_bytes: m.stream_bytes,
                        file_bytes: m.file_bytes,
                        save_ms: m.save_ms,
                        replaced: prepared.replaced.or(after.map(str::to_string)),
                        first_boot_failed: prepared.first_boot_failed,
                    });
                }
                Current::Ready(prepared.snapshot)
            }
            Err(why) => self.off_because(why),
        }
    }

    fn off_because(&self, why: String) -> Current {
        crate::events::emit(crate::events::Event::SnapshotOff {
            label: self.label.clone(),
            why: why.clone(),
        });
        Current::Off(Some(why))
    }
}

/// A boot that printed a kernel report is not saved: its report would be in no restored run's
/// console, so every run boots instead, and sees it.
fn boot_check(console: &std::path::Path) -> anyhow::Result<Option<String>> {
    let file = crate::files::open(console)?;
    let (reports, _) = crate::report::parser::parse_reader(std::io::BufReader::new(file))?;
    Ok(reports.first().map(|first| {
        format!(
            "the kernel's boot printed a report ({}): every run boots, so that each one sees it",
            first.title
        )
    }))
}
