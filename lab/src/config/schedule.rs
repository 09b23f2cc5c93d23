//! Schedules: the `[schedule]` of a race scenario, an interleaving forced through QEMU's
//! gdbstub instead of waited for.
//!
//! ```toml
//! [schedule]
//! [[schedule.step]]
//! name = "poll"          # short, shown in verdicts
//! cpu = "poller"         # whose vCPU: a thread role of the workload, or a vCPU number
//! at = "dma_buf_poll"    # symbol[+offset] of the kernel under test
//! [[schedule.step]]
//! name = "close"
//! cpu = "closer"
//! at = "__fput"
//! run = ["closer"]       # only these vCPUs run while this step waits
//! deadline = "1s"
//! hit = 2                # the second stop there counts (default: the first)
//! ```
//!
//! A step on a role counts only a stop of that role's thread (the current task's name is the
//! role: the workload names its threads so); `task` names another (`comm`, as the kernel
//! keeps it: 15 characters at most), or `"*"` any task on the vCPU.
//!
//! Each step waits until its vCPU reaches its location; that vCPU then stays stopped while the
//! later steps run. While a step waits, every vCPU not stopped by an earlier step runs, or
//! only those `run` names. Passes of other vCPUs over the location do not count. After the
//! last step every vCPU resumes: one attempt applied. A run repeats attempts until its
//! duration ends or the kernel reports; between two, the machine runs freely for `gap`, and
//! at least as long as the attempt kept vCPUs stopped.

use serde::Deserialize;
use std::time::Duration;
use toml::Spanned;

/// The largest offset into a function a location may name: no kernel function is a MiB
/// long, and an offset is added to an address (it must never wrap).
pub const MAX_OFFSET: u64 = 0xf_ffff;

/// A location written as `symbol[+offset]`: offset in hex (`0x1a`) or decimal, at most
/// [`MAX_OFFSET`]; built only by its parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub symbol: String,
    pub offset: u64,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.offset {
            0 => write!(f, "{}", self.symbol),
            o => write!(f, "{}+{o:#x}", self.symbol),
        }
    }
}

impl std::str::FromStr for Location {
    type Err = String;
    fn from_str(text: &str) -> Result<Location, String> {
        let (symbol, offset) = match text.split_once('+') {
            Some((s, o)) => (s.trim(), Some(o.trim())),
            None => (text.trim(), None),
        };
        let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '$';
        if symbol.is_empty() || !symbol.chars().all(valid) {
            return Err(format!(
                "{text:?} is not a code location: write symbol or symbol+offset (dma_buf_poll, __fput+0x1a)"
            ));
        }
        let offset = match offset {
            None => 0,
            Some(o) => match o.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => o.parse(),
            }
            .map_err(|_| format!("{text:?}: offset {o:?} is not a number (0x1a or 26)"))?,
        };
        if offset > MAX_OFFSET {
            return Err(format!(
                "{text:?}: offset {offset:#x} is past any function (at most {MAX_OFFSET:#x})"
            ));
        }
        Ok(Location {
            symbol: symbol.to_string(),
            offset,
        })
    }
}

/// Longest a step may wait: the stopped vCPUs must stay far below the kernel's stall
/// detectors (RCU stall 21 s, soft lockup 20 s, hung task 120 s in the lab's kernels).
pub const MAX_DEADLINE: Duration = Duration::from_secs(5);
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(2);
/// Longest a vCPU may stay stopped in one attempt: the deadlines of the steps after the first
/// (the first stops nothing until it is reached).
pub const MAX_HOLD: Duration = Duration::from_secs(10);
pub const DEFAULT_GAP: Duration = Duration::from_millis(500);
pub const MAX_STEPS: usize = 16;
/// The kernel keeps a task's name in 16 bytes, the last a NUL.
pub const TASK_COMM_LEN: usize = 15;

/// A vCPU as a step names it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum CpuRef {
    /// The vCPU(s) the workload's threads of this role are pinned to.
    Role(String),
    Index(u32),
}

impl CpuRef {
    /// The name of the task whose stop a step on this vCPU counts, when `task` does not say:
    /// a role's thread is named after its role (cut as the kernel cuts it); any task on a
    /// numbered vCPU.
    pub fn task(&self, task: Option<&str>) -> Option<String> {
        match (task, self) {
            (Some("*"), _) | (None, CpuRef::Index(_)) => None,
            (Some(t), _) => Some(t.to_string()),
            (None, CpuRef::Role(r)) => Some(r.chars().take(TASK_COMM_LEN).collect()),
        }
    }
}

impl std::fmt::Display for CpuRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CpuRef::Role(r) => write!(f, "{r}"),
            CpuRef::Index(i) => write!(f, "vCPU {i}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    pub cpu: CpuRef,
    pub at: Location,
    /// Where the step stops on another series, when the function it names there differs
    /// (`at_series = { "6.1" = "kmem_cache_alloc" }`): by series name.
    pub at_series: std::collections::BTreeMap<String, Location>,
    /// The vCPUs that run while the step waits; `None`: every vCPU not stopped already.
    pub run: Option<Vec<CpuRef>>,
    pub deadline: Duration,
    /// Whose stop counts (the current task's name): `None` is the role's thread on a role's
    /// vCPU and any task on a numbered one; `Some("*")` any.
    pub task: Option<String>,
    /// Which of the counted stops reaches the step: 1 the first in the attempt, 2 the second
    /// (the ones before are stepped over).
    pub hit: u32,
    /// The line of the step in the scenario file (for errors found when it is resolved).
    pub line: usize,
}

impl Step {
    /// Where the step stops on `series` (the kernel's, when it has one): its own location
    /// there, else `at`.
    pub fn at_on(&self, series: Option<&str>) -> &Location {
        series
            .and_then(|s| self.at_series.get(s))
            .unwrap_or(&self.at)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub steps: Vec<Step>,
    /// Least time the machine runs freely between two attempts.
    pub gap: Duration,
}

impl Schedule {
    /// No steps: a schedule whose interleavings come from elsewhere (an exploration).
    pub fn none() -> Schedule {
        Schedule {
            steps: vec![],
            gap: DEFAULT_GAP,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSchedule {
    #[serde(default)]
    step: Vec<RawStep>,
    deadline: Option<Spanned<String>>,
    gap: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    name: Option<Spanned<String>>,
    cpu: Spanned<CpuRef>,
    at: Spanned<String>,
    #[serde(default)]
    at_series: std::collections::BTreeMap<String, Spanned<String>>,
    run: Option<Spanned<Vec<CpuRef>>>,
    deadline: Option<Spanned<String>>,
    task: Option<Spanned<String>>,
    hit: Option<Spanned<i64>>,
}

/// The most stops a step may step over before the one it waits for.
pub const MAX_HIT: u32 = 1000;

type Problem = (usize, String);

fn duration(
    field: &Option<Spanned<String>>,
    what: &str,
    default: Duration,
) -> Result<Duration, Problem> {
    let Some(text) = field else {
        return Ok(default);
    };
    let d = humantime::parse_duration(text.get_ref())
        .map_err(|e| (text.span().start, format!("{what}: {e}")))?;
    if what.ends_with("deadline") && (d.is_zero() || d > MAX_DEADLINE) {
        return Err((
            text.span().start,
            format!(
                "{what} {:?}: a step waits more than 0 and at most {MAX_DEADLINE:?} — the vCPUs it \
                 keeps stopped must stay far below the kernel's stall detectors (RCU 21 s, soft \
                 lockup 20 s)",
                text.get_ref()
            ),
        ));
    }
    Ok(d)
}

fn cpu_ok(cpu: &CpuRef, cpus: u32) -> Result<(), String> {
    match cpu {
        CpuRef::Index(i) if *i >= cpus => Err(format!(
            "vCPU {i}: the guest has {cpus} (0 to {})",
            cpus - 1
        )),
        CpuRef::Role(r) if r.trim().is_empty() => Err("an empty role".into()),
        _ => Ok(()),
    }
}

impl Schedule {
    /// Check a scenario's `[schedule]` for a guest of `cpus` vCPUs; `line` turns a byte offset
    /// of the file into its line.
    pub(crate) fn from_raw(
        raw: RawSchedule,
        cpus: u32,
        line: impl Fn(usize) -> usize,
    ) -> Result<Schedule, Problem> {
        if raw.step.is_empty() {
            return Err((
                0,
                "a schedule has steps: [[schedule.step]] with cpu and at".into(),
            ));
        }
        if raw.step.len() > MAX_STEPS {
            return Err((0, format!("a schedule has at most {MAX_STEPS} steps")));
        }
        let default = duration(&raw.deadline, "schedule.deadline", DEFAULT_DEADLINE)?;
        let gap = duration(&raw.gap, "schedule.gap", DEFAULT_GAP)?;
        let mut steps: Vec<Step> = Vec::new();
        for (i, s) in raw.step.into_iter().enumerate() {
            let name = match &s.name {
                Some(n) if n.get_ref().trim().is_empty() => {
                    return Err((n.span().start, "a step's name is not empty".into()))
                }
                Some(n) => n.get_ref().trim().to_string(),
                None => format!("step {}", i + 1),
            };
            if steps.iter().any(|t| t.name == name) {
                let at = s
                    .name
                    .as_ref()
                    .map_or(s.at.span().start, |n| n.span().start);
                return Err((at, format!("two steps are named {name:?}")));
            }
            cpu_ok(s.cpu.get_ref(), cpus)
                .map_err(|e| (s.cpu.span().start, format!("step {name:?}: cpu: {e}")))?;
            let at: Location =
                s.at.get_ref()
                    .parse()
                    .map_err(|e| (s.at.span().start, format!("step {name:?}: at: {e}")))?;
            let mut at_series = std::collections::BTreeMap::new();
            for (series, text) in &s.at_series {
                super::series::check_name(series)
                    .map_err(|e| (text.span().start, format!("step {name:?}: at_series: {e}")))?;
                let loc: Location = text.get_ref().parse().map_err(|e| {
                    (
                        text.span().start,
                        format!("step {name:?}: at_series.{series:?}: {e}"),
                    )
                })?;
                at_series.insert(series.clone(), loc);
            }
            let run = match s.run {
                None => None,
                Some(run) => {
                    if run.get_ref().is_empty() {
                        return Err((
                            run.span().start,
                            format!("step {name:?}: run names no vCPU"),
                        ));
                    }
                    for cpu in run.get_ref() {
                        cpu_ok(cpu, cpus)
                            .map_err(|e| (run.span().start, format!("step {name:?}: run: {e}")))?;
                    }
                    Some(run.into_inner())
                }
            };
            if let Some(task) = &s.task {
                let t = task.get_ref();
                if t.is_empty() || t.len() > TASK_COMM_LEN {
                    return Err((
                        task.span().start,
                        format!(
                            "step {name:?}: task {t:?}: a task name as the kernel keeps it \
                             (comm: 1 to {TASK_COMM_LEN} characters), or \"*\" for any task"
                        ),
                    ));
                }
            }
            let hit = match &s.hit {
                None => 1,
                Some(h) => match u32::try_from(*h.get_ref()) {
                    Ok(n @ 1..=MAX_HIT) => n,
                    _ => {
                        return Err((
                            h.span().start,
                            format!(
                                "step {name:?}: hit {}: which stop reaches the step, 1 (the first) \
                                 to {MAX_HIT}",
                                h.get_ref()
                            ),
                        ))
                    }
                },
            };
            let what = format!("step {name:?}: deadline");
            steps.push(Step {
                hit,
                task: s.task.map(Spanned::into_inner),
                deadline: duration(&s.deadline, &what, default)?,
                line: line(s.at.span().start),
                name,
                cpu: s.cpu.into_inner(),
                at,
                at_series,
                run,
            });
        }
        let hold: Duration = steps.iter().skip(1).map(|s| s.deadline).sum();
        if hold > MAX_HOLD {
            return Err((
                0,
                format!(
                    "the steps after the first may keep vCPUs stopped for {hold:?} in one attempt: \
                     at most {MAX_HOLD:?} (shorten their deadlines)"
                ),
            ));
        }
        Ok(Schedule { steps, gap })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Schedule, String> {
        #[derive(Deserialize)]
        struct File {
            schedule: RawSchedule,
        }
        let file: File = toml::from_str(text).map_err(|e| e.message().to_string())?;
        let line = |o: usize| crate::config::error::line_of(text, o);
        Schedule::from_raw(file.schedule, 2, line).map_err(|(o, m)| format!("{}: {m}", line(o)))
    }

    #[test]
    fn locations_are_symbols_with_an_optional_offset() {
        assert_eq!("__fput".parse::<Location>().unwrap().offset, 0);
        assert_eq!("__fput+0x1a".parse::<Location>().unwrap().offset, 0x1a);
        assert_eq!("__fput + 26".parse::<Location>().unwrap().offset, 26);
        // Offsets that would wrap an address, or lie past any function, are refused.
        for o in [
            "0x100000",
            "0xffffffffffffffff",
            "18446744073709551615",
            "0x10000000000000000",
        ] {
            let e = format!("__fput+{o}").parse::<Location>().unwrap_err();
            assert!(e.contains(o) || e.contains("past any function"), "{o}: {e}");
        }
        assert_eq!("f+0xfffff".parse::<Location>().unwrap().offset, MAX_OFFSET);
        assert_eq!(
            "__fput+0x1a".parse::<Location>().unwrap().to_string(),
            "__fput+0x1a"
        );
        for bad in ["", "+4", "a b", "f+x", "f+0xg"] {
            assert!(bad.parse::<Location>().is_err(), "{bad:?}");
        }
    }

    const SEED: &str = r#"
[schedule]
gap = "1s"
[[schedule.step]]
name = "poll"
cpu = "poller"
at = "dma_buf_poll"
[[schedule.step]]
cpu = 0
at = "__fput+0x4"
run = ["closer", 0]
deadline = "1s"
"#;

    #[test]
    fn the_seed_schedule_reads_as_written() {
        let s = parse(SEED).unwrap();
        assert_eq!(s.gap, Duration::from_secs(1));
        assert_eq!(s.steps.len(), 2);
        let (poll, close) = (&s.steps[0], &s.steps[1]);
        assert_eq!(poll.name, "poll");
        assert_eq!(poll.cpu, CpuRef::Role("poller".into()));
        assert_eq!(poll.at.to_string(), "dma_buf_poll");
        assert_eq!(poll.run, None);
        assert_eq!(poll.deadline, DEFAULT_DEADLINE);
        assert_eq!(poll.line, 7);
        assert_eq!(close.name, "step 2");
        assert_eq!(close.cpu, CpuRef::Index(0));
        assert_eq!(close.at.offset, 4);
        assert_eq!(
            close.run,
            Some(vec![CpuRef::Role("closer".into()), CpuRef::Index(0)])
        );
        assert_eq!(close.deadline, Duration::from_secs(1));
        assert_eq!((poll.hit, close.hit), (1, 1));
        // The poll counts only the poller thread's stop; the numbered vCPU's, any task's.
        assert_eq!(poll.task, None);
        assert_eq!(poll.cpu.task(poll.task.as_deref()), Some("poller".into()));
        assert_eq!(close.cpu.task(close.task.as_deref()), None);
    }

    #[test]
    fn a_step_stops_where_the_kernels_series_has_its_function() {
        let text = "[schedule]\n[[schedule.step]]\ncpu = \"adder\"\n\
                    at = \"kmem_cache_alloc_noprof\"\n\
                    at_series = { \"6.1\" = \"kmem_cache_alloc\" }\n";
        let s = parse(text).unwrap();
        let step = &s.steps[0];
        assert_eq!(step.at_on(Some("6.1")).to_string(), "kmem_cache_alloc");
        for other in [Some("6.12"), Some("5.10"), None] {
            assert_eq!(step.at_on(other).to_string(), "kmem_cache_alloc_noprof");
        }
        for (bad, says) in [
            (
                "{ \"6.1\" = \"f+zz\" }",
                "at_series.\"6.1\": \"f+zz\": offset",
            ),
            ("{ \"6/1\" = \"f\" }", "at_series: series name \"6/1\""),
        ] {
            let e = parse(&text.replace("{ \"6.1\" = \"kmem_cache_alloc\" }", bad)).unwrap_err();
            assert!(e.starts_with("5: ") && e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn a_step_can_name_the_task_whose_stop_counts() {
        let step = |task: &str| {
            let text =
                format!("[schedule]\n[[schedule.step]]\ncpu = \"closer\"\nat = \"f\"\n{task}");
            parse(&text).map(|s| {
                let step = &s.steps[0];
                step.cpu.task(step.task.as_deref())
            })
        };
        assert_eq!(step(""), Ok(Some("closer".into())));
        assert_eq!(
            step("task = \"kworker/0:1\""),
            Ok(Some("kworker/0:1".into()))
        );
        assert_eq!(step("task = \"*\""), Ok(None));
        let long = step("task = \"a-very-long-thread-name\"").unwrap_err();
        assert!(long.starts_with("5: step \"step 1\": task "), "{long}");
        assert!(long.contains("1 to 15 characters"), "{long}");
        // A role longer than the kernel keeps is cut as the kernel cuts its thread's name.
        let role = CpuRef::Role("a-very-long-role-name".into());
        assert_eq!(role.task(None), Some("a-very-long-rol".into()));
    }

    #[test]
    fn mistakes_are_named_with_their_line() {
        let cases = [
            ("[schedule]\n", "1: a schedule has steps"),
            (
                "[schedule]\n[[schedule.step]]\ncpu = 2\nat = \"f\"\n",
                "3: step \"step 1\": cpu: vCPU 2: the guest has 2 (0 to 1)",
            ),
            (
                "[schedule]\n[[schedule.step]]\ncpu = 0\nat = \"f+zz\"\n",
                "4: step \"step 1\": at: \"f+zz\": offset \"zz\" is not a number",
            ),
            (
                "[schedule]\n[[schedule.step]]\ncpu = 0\nat = \"f\"\ndeadline = \"30s\"\n",
                "5: step \"step 1\": deadline \"30s\": a step waits more than 0 and at most 5s",
            ),
            (
                "[schedule]\n[[schedule.step]]\nname = \"a\"\ncpu = 0\nat = \"f\"\n\
                 [[schedule.step]]\nname = \"a\"\ncpu = 1\nat = \"g\"\n",
                "7: two steps are named \"a\"",
            ),
            (
                "[schedule]\n[[schedule.step]]\ncpu = 0\nat = \"f\"\nrun = []\n",
                "5: step \"step 1\": run names no vCPU",
            ),
            (
                "[schedule]\n[[schedule.step]]\ncpu = 0\nat = \"f\"\nhit = 0\n",
                "5: step \"step 1\": hit 0: which stop reaches the step, 1 (the first) to 1000",
            ),
            (
                "[schedule]\n[[schedule.step]]\ncpu = 0\nat = \"f\"\nhit = 4294967297\n",
                "5: step \"step 1\": hit 4294967297",
            ),
            (
                "[schedule]\n[[schedule.step]]\ncpu = 0\nat = \"f\"\nwhen = 1\n",
                "unknown field `when`",
            ),
            (
                "[schedule]\ndeadline = \"4s\"\n[[schedule.step]]\ncpu = 0\nat = \"f\"\n\
                 [[schedule.step]]\ncpu = 1\nat = \"g\"\n[[schedule.step]]\ncpu = 1\nat = \"h\"\n\
                 [[schedule.step]]\ncpu = 0\nat = \"i\"\n",
                "1: the steps after the first may keep vCPUs stopped for 12s in one attempt: at most 10s",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err();
            assert!(
                err.contains(expected),
                "{text}\n→ {err}\nexpected {expected}"
            );
        }
    }
}
