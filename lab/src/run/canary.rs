//! The detector canary: one fault per detector provoked through LKDTM, each in a guest of its
//! own (KASAN and lockdep report once per boot), on the machine a scenario runs on — its
//! kernel, vCPUs, memory, command line and kernel parameters, what decides what reaches the
//! console — and whether the kernel reported it with the title expected. What it proves: that
//! the detector is built, armed and heard on that machine. What it cannot: that it catches a
//! bug of another shape.

use super::{BatchOptions, How, Pool, Progress, RunResult, Target};
use crate::config::scenario::{self, Scenario};
pub use crate::results::canary::{Canary, Detectors, Proof};
use anyhow::Result;
use runner::quantity::{RunCount, WorkDuration};
use std::path::Path;
use std::sync::Arc;

/// A detector's trigger: what provokes it, and what it must print.
pub struct Trigger {
    pub detector: &'static str,
    /// The options that build the detector (and its trigger): a kernel without one has
    /// nothing to prove.
    pub options: &'static [&'static str],
    pub provoke: Provoke,
}

pub enum Provoke {
    /// An LKDTM crash type written to `provoke-crash/DIRECT` in a guest of its own, the
    /// thresholds `params` set first; the run's first report must have a title starting with
    /// one of `titles` (the kernel's names for it differ between series), within `within_s`.
    Lkdtm {
        crash: &'static str,
        params: &'static [(&'static str, u64)],
        titles: &'static [&'static str],
        within_s: u64,
    },
    /// A boot self-test's summary line on the machine's boot console (its snapshot's, or a
    /// booted trigger run's): `expected` says which, `passed` checks it.
    BootLine {
        /// How the line starts, whatever it says.
        prefix: &'static str,
        expected: &'static str,
        passed: fn(&str) -> bool,
    },
}

pub const TRIGGERS: &[Trigger] = &[
    Trigger {
        detector: "kasan",
        options: &["CONFIG_KASAN"],
        provoke: Provoke::Lkdtm {
            crash: "READ_AFTER_FREE",
            params: &[],
            // mm/kasan names an access to a freed slab object "slab-use-after-free" since
            // 6.2 and "use-after-free" before (6.1's report_generic.c).
            titles: &[
                "KASAN: slab-use-after-free Read in ",
                "KASAN: use-after-free Read in ",
            ],
            within_s: 10,
        },
    },
    Trigger {
        detector: "warning",
        options: &["CONFIG_BUG"],
        provoke: Provoke::Lkdtm {
            crash: "WARNING",
            params: &[],
            titles: &["WARNING in "],
            within_s: 10,
        },
    },
    Trigger {
        detector: "hung-task",
        options: &["CONFIG_DETECT_HUNG_TASK"],
        provoke: Provoke::Lkdtm {
            crash: "HUNG_TASK",
            params: &[("hung_task_timeout_secs", 2)],
            titles: &["INFO: task hung in "],
            within_s: 15,
        },
    },
    Trigger {
        detector: "soft-lockup",
        options: &["CONFIG_SOFTLOCKUP_DETECTOR"],
        provoke: Provoke::Lkdtm {
            crash: "SOFTLOCKUP",
            params: &[("watchdog_thresh", 1)],
            titles: &["BUG: soft lockup in "],
            within_s: 15,
        },
    },
    // SPINLOCKUP takes a spinlock and returns to user space holding it: lockdep's check on
    // the way out reports it, once per boot (debug_locks_off), so this proves lockdep still
    // armed on the machine, not only built.
    Trigger {
        detector: "lockdep",
        options: &["CONFIG_PROVE_LOCKING"],
        provoke: Provoke::Lkdtm {
            crash: "SPINLOCKUP",
            params: &[],
            titles: &["WARNING: lock held when returning to user space in "],
            within_s: 10,
        },
    },
    // LKDTM has no data race: KCSAN's boot self-test (its watchpoint encoding and matching)
    // must have printed its summary, every test passed, on the machine's console.
    Trigger {
        detector: "kcsan",
        options: &["CONFIG_KCSAN", "CONFIG_KCSAN_SELFTEST"],
        provoke: Provoke::BootLine {
            prefix: "kcsan: selftest: ",
            expected: "kcsan: selftest: N/N tests passed",
            passed: kcsan_selftest_passed,
        },
    },
];

/// `kcsan: selftest: 3/3 tests passed` (kernel/kcsan/selftest.c), every test passed.
fn kcsan_selftest_passed(line: &str) -> bool {
    line.strip_prefix("kcsan: selftest: ")
        .and_then(|rest| rest.strip_suffix(" tests passed"))
        .and_then(|counts| counts.split_once('/'))
        .is_some_and(|(passed, total)| passed == total && passed.parse::<u32>().is_ok())
}

/// What every LKDTM trigger needs.
const LKDTM: &str = "CONFIG_LKDTM";

/// Bumped when the triggers or what a canary.json holds change: older canaries run again.
const FORMAT: u32 = 4;

/// The canary's key on `target` under `base`'s machine: what decides what reaches the
/// console — the kernel image, the command line and the kernel parameters (not the vCPUs or
/// the memory).
pub fn key(target: &Target, base: Option<&Scenario>) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(format!("canary={FORMAT}\0"));
    let mut image = crate::files::open(&target.kernel)?;
    std::io::copy(&mut image, &mut h)?;
    // The lab's default machine is a scenario with no command line and no parameters.
    let none = Default::default();
    let (cmdline, params) = base.map_or(("", &none), |b| (b.cmdline.as_str(), &b.kernel_params));
    h.update(format!("\0cmdline={cmdline}\0"));
    for (k, v) in params {
        h.update(format!("{k}={v}\0"));
    }
    Ok(hex::encode(&h.finalize()[..12]))
}

/// Where the canary of `key` is kept: its runs and canary.json.
fn dir(key: &str) -> Result<std::path::PathBuf> {
    Ok(crate::cache::dir("canaries")?.join(key))
}

/// One machine's canary at a time in this process (the file lock keeps other labs out).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What the detectors of `scenario`'s machine on `target` (whose `.config` the caller has
/// read) let a clean run claim: its canary, found in the cache or run now (`pool` and
/// `progress` shared with the caller's runs).
pub async fn detectors(
    scenario: &Scenario,
    (target, config): (&Target, Option<&str>),
    how: How,
    pool: &Pool,
    progress: &Progress,
) -> Result<Detectors> {
    if !scenario.detectors.any() {
        return Ok(Detectors::Proven);
    }
    let Some(config) = config else {
        return Ok(unproven(
            "no canary can run on a kernel whose .config is unknown",
        ));
    };
    if !has_lkdtm(config) {
        return Ok(unproven(
            "the kernel has no CONFIG_LKDTM, so no canary could run",
        ));
    }
    match cached_or_run(target, Some(scenario), how, pool, progress).await? {
        Some(canary) => Ok(canary.covers(&scenario.detectors)),
        None => Ok(unproven(
            "this machine has no canary, and --no-canary kept one from running",
        )),
    }
}

/// The canary of `target` under `base`'s machine: the one cached under its key, or one run
/// now and cached (none when there is none and `how` says not to run one).
async fn cached_or_run(
    target: &Target,
    base: Option<&Scenario>,
    how: How,
    pool: &Pool,
    progress: &Progress,
) -> Result<Option<Canary>> {
    let _one = ONE_AT_A_TIME.lock().await;
    let key = key(target, base)?;
    let dir = dir(&key)?;
    let lock = dir.with_extension("lock");
    std::fs::create_dir_all(dir.parent().expect("in the cache"))?;
    let _lock = tokio::task::spawn_blocking(move || crate::cache::lock(&lock, true)).await??;
    match stored(&dir)? {
        Some(c) => Ok(Some(c)),
        None if how.no_canary => Ok(None),
        None => Ok(Some(canary(target, base, how, &dir, pool, progress).await?)),
    }
}

/// `lab build`: the canary of each kernel built that has LKDTM, on the lab's default machine
/// (cached: a kernel already proven is not run again). Whether every one passed.
pub async fn after_build(built: &[crate::kernel::Built], how: How) -> Result<bool> {
    let pool = pool_for(None, how);
    let progress = Progress::new(pool.jobs);
    let mut passed = true;
    for b in built {
        let target = Target::of_build(b);
        let config = crate::files::read_to_string(b.dir.join(".config"))?;
        if !has_lkdtm(&config) {
            continue;
        }
        let canary = cached_or_run(&target, None, how, &pool, &progress).await;
        progress.clear();
        passed &= canary?.is_some_and(|c| c.passed());
    }
    Ok(passed)
}

fn unproven(why: &str) -> Detectors {
    Detectors::Unproven(format!("detectors unproven: {why}"))
}

/// The canary kept in `dir`, when there is one of this format.
fn stored(dir: &Path) -> Result<Option<Canary>> {
    let file = dir.join("canary.json");
    match crate::files::read(&file) {
        Ok(bytes) => Ok(serde_json::from_slice::<Canary>(&bytes)
            .ok()
            .filter(|c| c.proofs.len() == TRIGGERS.len() && c.answers())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", file.display())),
    }
}

/// Provoke every trigger on `target` under the machine of `base` (or the lab's default), one
/// run each under `out/<detector>/`; `canary.json` goes to `out`, to the cache under the
/// machine's key (where runs find it) and beside the snapshot.
pub async fn canary(
    target: &Target,
    base: Option<&Scenario>,
    how: How,
    out: &Path,
    pool: &Pool,
    progress: &Progress,
) -> Result<Canary> {
    let started = std::time::Instant::now();
    let config = match &target.config {
        Some(file) => Some(crate::files::read_to_string(file)?),
        None => None,
    };
    let machine = target.name.rsplit('/').next().unwrap_or("kernel");
    let ctx = Provoking {
        target,
        base,
        how,
        out,
        pool,
        progress,
        machine,
    };
    let mut proofs = Vec::new();
    let (mut snapshot, mut booted) = (None, None);
    for t in TRIGGERS {
        if config.as_deref().is_some_and(|c| !built(t, c)) {
            proofs.push(Proof {
                absent: true,
                unheard: None,
                ..proof(t, None, out)
            });
        } else if let Provoke::Lkdtm { .. } = t.provoke {
            let (r, dir) = ctx.heard(t).await?;
            let record = r.as_ref().and_then(|r| r.record.as_ref());
            snapshot = snapshot.or_else(|| record.and_then(|rec| rec.start.snapshot.clone()));
            booted = booted.or_else(|| r.as_ref().map(boot_console));
            proofs.push(proof(t, r.as_ref(), &dir));
        }
    }
    // The boot lines, read from the boot console of the machine the runs above started on.
    for t in TRIGGERS {
        if !proofs.iter().any(|p| p.detector == t.detector) {
            proofs.push(boot_proof(t, booted.as_deref(), out)?);
        }
    }
    proofs.sort_by_key(|p| TRIGGERS.iter().position(|t| t.detector == p.detector));
    let canary = Canary {
        kernel: target.name.clone(),
        key: key(target, base)?,
        snapshot,
        at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        proofs,
        file: None,
    };
    let canary = keep(canary, out)?;
    crate::events::emit(crate::events::Event::CanaryRan {
        kernel: machine.to_string(),
        passed: canary.passed(),
        silent: canary
            .proofs
            .iter()
            .filter(|p| !p.fired && !p.absent)
            .map(|p| p.detector.clone())
            .collect(),
        file: out.join("canary.json"),
        elapsed: started.elapsed(),
    });
    Ok(canary)
}

/// What every trigger's run shares.
struct Provoking<'a> {
    target: &'a Target,
    base: Option<&'a Scenario>,
    how: How,
    out: &'a Path,
    pool: &'a Pool,
    progress: &'a Progress,
    /// What the progress lines call the machine.
    machine: &'a str,
}

/// How many times a trigger is provoked while its runs say nothing about the kernel, or
/// another report comes before its detector's.
const ATTEMPTS: usize = 2;

impl Provoking<'_> {
    /// The trigger provoked until a run says something about the kernel, at most
    /// [`ATTEMPTS`] times: a run that QEMU or the agent failed is not the detector's silence.
    /// A run in which another report came first is provoked again too: on a busy host the
    /// way out of SPINLOCKUP's syscall can meet a reschedule before lockdep's check ("BUG:
    /// scheduling while atomic"), and the run stops at that first report.
    async fn heard(&self, t: &Trigger) -> Result<(Option<RunResult>, std::path::PathBuf)> {
        let mut last = self.provoke(t, 1).await?;
        for attempt in 2..=ATTEMPTS {
            let r = last.0.as_ref();
            let pre_empted =
                r.is_some_and(|r| r.reports.iter().any(|rep| rep.counts())) && !fired(t, r);
            if unheard(r).is_none() && !pre_empted {
                break;
            }
            last = self.provoke(t, attempt).await?;
        }
        Ok(last)
    }

    /// One LKDTM trigger's run under `out/<detector>/` (`out/<detector>.<attempt>/` after
    /// the first attempt, which is kept): its result (none when it was not made) and its
    /// directory.
    async fn provoke(
        &self,
        t: &Trigger,
        attempt: usize,
    ) -> Result<(Option<RunResult>, std::path::PathBuf)> {
        let Provoke::Lkdtm {
            crash,
            params: thresholds,
            within_s,
            ..
        } = &t.provoke
        else {
            anyhow::bail!("{}: not an LKDTM trigger", t.detector);
        };
        let mut params = serde_json::Map::new();
        params.insert("type".into(), (*crash).into());
        for (k, v) in *thresholds {
            params.insert(k.to_string(), (*v).into());
        }
        let duration = WorkDuration::from_millis(within_s * 1000).expect("seconds");
        let probe = scenario::probe(
            self.base,
            &format!("canary-{}", t.detector),
            "provoke",
            params,
            duration,
            &[LKDTM],
        );
        let name = match attempt {
            1 => t.detector.to_string(),
            n => format!("{}.{n}", t.detector),
        };
        let dir = crate::cache::empty_dir(&self.out.join(name))?;
        let label = format!("{} canary {}", self.machine, t.detector);
        self.progress.plan(&label, 1, duration.get());
        let opts = BatchOptions {
            runs: RunCount::new(1).expect("one"),
            // The trigger's own time, whatever the caller's override.
            how: How {
                duration: None,
                ..self.how
            },
            out: dir.clone(),
            append: false,
            first: None,
            pool: self.pool.clone(),
            progress: self.progress.clone(),
            label,
            suppressions: Arc::default(),
            source: None,
        };
        // Boxed: a batch asks for its machine's canary, which runs batches.
        let results = Box::pin(super::batch(&probe, self.target, &opts)).await?;
        Ok((results.into_iter().next(), dir))
    }
}

/// A boot-line trigger's proof: its line looked for on the machine's boot console.
fn boot_proof(t: &Trigger, booted: Option<&Path>, out: &Path) -> Result<Proof> {
    let Provoke::BootLine { prefix, passed, .. } = &t.provoke else {
        anyhow::bail!("{}: not a boot line", t.detector);
    };
    let console = booted.map(crate::files::read_to_string).transpose()?;
    let line = console.as_deref().and_then(|c| {
        c.lines()
            .map(|l| crate::report::parser::split(l).1.trim())
            .find(|l| l.starts_with(prefix))
            .map(str::to_string)
    });
    Ok(Proof {
        fired: line.as_deref().is_some_and(passed),
        seen: line,
        outcome: match booted {
            Some(_) => "boot console read".into(),
            None => "not-run: no trigger's run booted the machine".into(),
        },
        run: booted.map_or_else(|| out.to_path_buf(), Path::to_path_buf),
        unheard: booted
            .is_none()
            .then(|| "no trigger's run booted the machine".to_string()),
        ..proof(t, None, out)
    })
}

/// Write `canary` to `out`, to the cache under its key and beside its snapshot; as kept in
/// `out`.
fn keep(mut canary: Canary, out: &Path) -> Result<Canary> {
    let mut places = vec![out.to_path_buf(), dir(&canary.key)?];
    if let Some(key) = &canary.snapshot {
        let beside = crate::cache::dir("snapshots")?.join(key);
        if beside.is_dir() {
            places.push(beside);
        }
    }
    places.dedup();
    for place in &places {
        std::fs::create_dir_all(place)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", place.display()))?;
        canary.file = Some(place.join("canary.json"));
        crate::files::write(
            place.join("canary.json"),
            serde_json::to_vec_pretty(&canary)?,
        )?;
    }
    canary.file = Some(out.join("canary.json"));
    Ok(canary)
}

/// `lab canary`: the canary run now (whatever the cache holds), with VM slots and a progress
/// display of its own.
pub async fn on_demand(
    target: &Target,
    base: Option<&Scenario>,
    how: How,
    out: &Path,
) -> Result<Canary> {
    let pool = pool_for(base, how);
    let progress = Progress::new(pool.jobs);
    let canary = canary(target, base, how, out, &pool, &progress).await;
    progress.clear();
    canary
}

/// VM slots for a canary of its own (not one a batch asked for): sized for the probes'
/// machine.
fn pool_for(base: Option<&Scenario>, how: How) -> Pool {
    let second = WorkDuration::from_millis(1000).expect("a second");
    let shape = scenario::probe(base, "canary", "provoke", Default::default(), second, &[]);
    Pool::sized(how.jobs, shape.cpus.get(), shape.memory_mib)
}

/// Whether a kernel of this `.config` can run the canary's triggers.
fn has_lkdtm(config: &str) -> bool {
    crate::kernel::kconfig::missing(&[LKDTM.to_string()], config).is_empty()
}

/// Whether a kernel of this `.config` builds the trigger's detector.
fn built(t: &Trigger, config: &str) -> bool {
    let options: Vec<String> = t.options.iter().map(|o| o.to_string()).collect();
    crate::kernel::kconfig::missing(&options, config).is_empty()
}

/// The console a run's machine booted on: its snapshot's boot, or the run's own when it
/// booted.
fn boot_console(r: &RunResult) -> std::path::PathBuf {
    let snapshot = r.record.as_ref().and_then(|rec| rec.start.snapshot.clone());
    match snapshot.and_then(|key| Some(crate::cache::dir("snapshots").ok()?.join(key))) {
        Some(dir) => dir.join("console.log"),
        None => r.dir.join("console.log"),
    }
}

/// Why a trigger's run said nothing about the kernel, when it did not.
fn unheard(r: Option<&RunResult>) -> Option<String> {
    match r.map(|r| &r.evidence) {
        None => Some("no run was made".into()),
        Some(crate::results::Evidence::Inconclusive { why }) => Some(why.clone()),
        Some(_) => None,
    }
}

/// (what provokes it, the titles that prove it fired) of a trigger.
fn expected(t: &Trigger) -> (&'static str, &[&'static str]) {
    match &t.provoke {
        Provoke::Lkdtm { crash, titles, .. } => (crash, titles),
        Provoke::BootLine { expected, .. } => ("boot self-test", std::slice::from_ref(expected)),
    }
}

/// Whether the run's first counted report is one the trigger's detector prints.
fn fired(t: &Trigger, r: Option<&RunResult>) -> bool {
    let (_, titles) = expected(t);
    r.and_then(|r| r.reports.iter().find(|rep| rep.counts()))
        .is_some_and(|rep| titles.iter().any(|e| rep.title.starts_with(e)))
}

fn proof(t: &Trigger, r: Option<&RunResult>, dir: &Path) -> Proof {
    let seen = r
        .and_then(|r| r.reports.iter().find(|rep| rep.counts()))
        .map(|rep| rep.title.clone());
    let (crash, expected) = expected(t);
    Proof {
        detector: t.detector.into(),
        crash: crash.into(),
        // "A… or B" (the table adds the last ellipsis).
        expected: expected
            .iter()
            .map(|e| e.trim_end())
            .collect::<Vec<_>>()
            .join("… or "),
        fired: fired(t, r),
        absent: false,
        seen,
        outcome: r.map_or("not-run", |r| r.outcome_name()).into(),
        run: r.map_or_else(|| dir.to_path_buf(), |r| r.dir.clone()),
        first_report_ms: r.and_then(|r| r.first_report_ms),
        unheard: unheard(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scenarios' `detectors` names are exactly the triggers'.
    #[test]
    fn every_provable_detector_has_a_trigger() {
        let names: Vec<&str> = TRIGGERS.iter().map(|t| t.detector).collect();
        assert_eq!(names, crate::config::detector::PROVABLE);
    }

    #[test]
    fn kcsans_boot_line_passes_only_with_every_test_passed() {
        for (line, ok) in [
            ("kcsan: selftest: 3/3 tests passed", true),
            ("kcsan: selftest: 12/12 tests passed", true),
            ("kcsan: selftest: 2/3 tests passed", false),
            ("kcsan: selftest: x/x tests passed", false),
            ("kcsan: selftest: 3/3 tests passed!", false),
            ("kcsan: selftest: test_encode_decode failed", false),
        ] {
            assert_eq!(kcsan_selftest_passed(line), ok, "{line}");
        }
    }

    #[test]
    fn a_detector_the_kernel_does_not_build_is_absent_not_failed() {
        let kcsan = "CONFIG_KCSAN=y\nCONFIG_BUG=y\nCONFIG_DETECT_HUNG_TASK=y\nCONFIG_SOFTLOCKUP_DETECTOR=y\n";
        let built: Vec<&str> = TRIGGERS
            .iter()
            .filter(|t| built(t, kcsan))
            .map(|t| t.detector)
            .collect();
        assert_eq!(built, ["warning", "hung-task", "soft-lockup"]);
        let c = Canary {
            kernel: "k".into(),
            key: String::new(),
            snapshot: None,
            at: String::new(),
            file: None,
            proofs: vec![Proof {
                absent: true,
                ..proof(&TRIGGERS[0], None, Path::new("/x"))
            }],
        };
        assert!(c.passed());
        let failed = Canary {
            proofs: vec![proof(&TRIGGERS[0], None, Path::new("/x"))],
            ..c
        };
        assert!(!failed.passed());
    }

    /// lockdep's trigger is proven by lockdep's own title only: a run whose first report is
    /// the scheduler's ("BUG: scheduling while atomic", met first on the way out under load)
    /// did not show lockdep firing, and is what `heard` provokes again.
    #[test]
    fn a_trigger_fired_only_when_its_own_report_came_first() {
        let lockdep = TRIGGERS.iter().find(|t| t.detector == "lockdep").unwrap();
        let run = |title: &str| {
            let mut rep = crate::report::parser::Report::lab(title, String::new());
            rep.kind = crate::report::formats::ReportType::Warning;
            RunResult {
                reports: vec![rep],
                ..RunResult::skipped(1, std::path::PathBuf::from("/x"), String::new())
            }
        };
        let own = run("WARNING: lock held when returning to user space in lkdtm_do_action");
        let other = run("BUG: scheduling while atomic in syscall_exit_to_user_mode");
        assert!(fired(lockdep, Some(&own)));
        assert!(!fired(lockdep, Some(&other)));
        assert!(!fired(lockdep, None));
        assert!(!proof(lockdep, Some(&other), Path::new("/x")).fired);
    }
}
