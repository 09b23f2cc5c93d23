//! What the engine reports while it works, as typed events. Library code never prints: it
//! emits an [`Event`], and the one sink the program installed (the `ui` module: a live
//! display on a terminal, plain lines in CI) turns it into output. With no sink installed
//! (tests, benchmarks, library use) events go nowhere.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// One line of a workflow's progress ("baseline: cache hit", "racy end: 5/5 runs").
    Note(String),
    /// Something went wrong that did not stop the work.
    Warning(String),
    /// KVM cannot run guests here; runs use TCG (said once per process).
    KvmUnusable { reason: String },
    /// A source tarball is being extracted into the cache (once per version).
    Extracting { tarball: PathBuf },
    /// A kernel build's make started; `expected` files to compile when known.
    BuildStarted {
        label: String,
        expected: Option<u64>,
    },
    /// make compiled another file.
    BuildProgress {
        label: String,
        compiled: u64,
        elapsed: Duration,
    },
    /// make ended (whatever the result).
    BuildEnded { label: String },
    /// Runs that will come, each running its workload for `each`, `jobs` VMs at a time.
    /// `batch` names the runs' batch (a cell: runs alike in what they take).
    RunsPlanned {
        batch: String,
        runs: u32,
        each: Duration,
        jobs: usize,
    },
    /// Runs planned that are not going to happen (a skipped cell, an interrupted batch).
    RunsDropped { batch: String, runs: u32 },
    RunStarted {
        id: u64,
        batch: String,
        label: String,
    },
    /// A machine's detector canary ran: whether every detector it builds fired, those that
    /// did not, where canary.json is, and how long it took.
    CanaryRan {
        kernel: String,
        passed: bool,
        silent: Vec<String>,
        file: PathBuf,
        elapsed: Duration,
    },
    /// An exploration's attempt ended: attempts so far, distinct interleavings attempted,
    /// those applied, those given up, the budget left and the time it may still take.
    Explored {
        attempts: u32,
        distinct: usize,
        applied: usize,
        given_up: usize,
        left: String,
        eta: Option<Duration>,
    },
    /// A run ended, with what its one-line summary shows.
    RunEnded { id: u64, run: RunEnd },
    /// The runs of a command are over: a live display can go.
    RunsDone,
    /// A kernel is ready: found in the cache or built now.
    KernelReady { label: String, kernel: KernelReady },
    /// Stored runs are reused instead of new ones (`lab compare`).
    RunsReused {
        label: String,
        runs: usize,
        dir: PathBuf,
    },
    /// A snapshot was made (`replaced`: why the one before it went; `first_boot_failed`: why
    /// the boot before the one that made it failed).
    SnapshotMade {
        label: String,
        key: String,
        boot_ms: u64,
        stream_bytes: u64,
        file_bytes: u64,
        save_ms: u64,
        replaced: Option<String>,
        first_boot_failed: Option<String>,
    },
    /// A snapshot could not be restored: nothing ran; it is rebuilt once, then runs boot.
    RestoreFailed { label: String, why: String },
    /// There is no snapshot for these runs: every run boots.
    SnapshotOff { label: String, why: String },
}

/// A kernel that is ready, as its build's metadata says.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelReady {
    pub dir: PathBuf,
    /// Found in the cache, and how long the lookup took.
    pub cache_hit: bool,
    pub elapsed_s: f64,
    /// What the build that made it did.
    pub release: String,
    pub build_s: f64,
    pub files_compiled: u64,
    pub files_rewritten: usize,
    pub ccache_hit_rate: Option<f64>,
    /// (artifact, bytes).
    pub artifacts: Vec<(String, u64)>,
}

/// What a run that ended shows in its one-line summary.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    /// The batch's label ("baseline × epoll-dmabuf-race").
    pub batch: String,
    pub index: u32,
    /// The verdict's name ("pass", "FAIL", ...) and its detail.
    pub verdict: String,
    pub detail: String,
    /// The outcome's name ("completed", "stopped-on-report", ...).
    pub outcome: String,
    /// From the workload's start to the first report.
    pub first_report_ms: Option<u64>,
    /// (role, operations per second).
    pub throughput: Vec<(String, f64)>,
    /// A schedule's (attempts applied, attempts, applied before the first report).
    pub schedule: Option<(usize, usize, Option<usize>)>,
    /// Whether the run found a kernel report.
    pub kernel_report: bool,
}

type Sink = Arc<dyn Fn(&Event) + Send + Sync>;

static SINK: RwLock<Option<Sink>> = RwLock::new(None);

/// Send every event of this process to `sink` from now on.
pub fn install(sink: impl Fn(&Event) + Send + Sync + 'static) {
    *SINK.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(sink));
}

pub fn emit(event: Event) {
    let sink = SINK.read().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some(sink) = sink {
        sink(&event);
    }
}

pub fn note(text: impl Into<String>) {
    emit(Event::Note(text.into()));
}

pub fn warn(text: impl Into<String>) {
    emit(Event::Warning(text.into()));
}

/// A fresh id for a run's events.
pub fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
