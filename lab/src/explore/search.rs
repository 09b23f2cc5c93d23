//! The search: which interleavings of a scenario's roles to attempt, in what order, and what
//! became of each. It hands the schedule's controller one attempt at a time
//! ([`crate::vm::schedule::Source`]), across as many runs as it takes.
//!
//! Three phases, in one machine:
//! 1. **Sampling**: the machine is stopped every few milliseconds and each vCPU's PC is
//!    resolved in System.map with the task it runs, and the code addresses on its kernel
//!    stack with it (its callers, its syscall): the functions each role's thread is seen in.
//! 2. **Probing**: each candidate location (from a report, a patch, `--at`) is tried on each
//!    role as a one-step schedule: the role's thread stopping there within the deadline says
//!    that role reaches it. Sampled functions need no probe.
//! 3. **Searching**: the stops found (role, location) are combined into interleavings,
//!    smallest first, in the manner of PCT's change points: an interleaving of depth d is
//!    d steps; the first lets every vCPU run until its role reaches its location and stops
//!    there; each later step lets its own role run (resuming it if an earlier step stopped
//!    it) with every role not stopped yet, until its location; after the last step every vCPU
//!    resumes. Depth 2 (one change point) before depth 3, and within a depth by the sum of
//!    the stops' scores. Besides the stops found, each role's next syscall is one: the
//!    boundary where what the role did in the kernel is over. An interleaving is the sequence of its (role, location, hit) steps
//!    and is never attempted again once applied; one that misses is tried again up to
//!    [`TRIES`] times in all, then given up.

use crate::config::schedule::{CpuRef, Location, Step};
use crate::kernel::symbols::SymbolMap;
use crate::vm::schedule::{Next, Resolved, Sample, Source};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Attempts an interleaving (or a probe) gets before it is given up as not applicable.
pub const TRIES: u32 = 2;
/// How long each step of a probe or an interleaving waits for its location.
pub const STEP_DEADLINE: Duration = Duration::from_secs(1);
/// Looks at the machine in the sampling phase, and the time between two.
pub const SAMPLES: u32 = 150;
pub const SAMPLE_EVERY: Duration = Duration::from_millis(20);
/// The sampled functions kept per role (the most often seen).
pub const SAMPLED_PER_ROLE: usize = 5;
/// The stops the search combines (the best by score).
pub const MAX_STOPS: usize = 10;
/// Where every syscall enters, newest kernels first: a role stopped there has finished what it
/// was doing in the kernel.
pub const SYSCALL_ENTRY: &[&str] = &["x64_sys_call", "do_syscall_64"];
/// The score of a role's next syscall as a stop.
pub const BOUNDARY_SCORE: f64 = 0.25;
/// The deepest interleaving generated.
pub const MAX_DEPTH: usize = 3;

/// A candidate location before it is known which role reaches it.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub function: String,
    pub score: f64,
    /// Where it came from, in words ("report 1, free stack, depth 2").
    pub from: Vec<String>,
}

/// A role's thread reaching a location.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stop {
    pub role: String,
    pub function: String,
    pub score: f64,
    pub from: Vec<String>,
}

/// One interleaving: (index into the stops, hit number) per step.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Interleaving(pub Vec<(usize, u32)>);

/// What was tried under one id.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Trial {
    Probe { role: String, function: String },
    Interleaving { steps: Vec<String> },
}

/// What became of one trial.
#[derive(Debug, Clone, Serialize)]
pub struct Tried {
    pub id: u64,
    pub trial: Trial,
    pub attempts: u32,
    pub applied: u32,
}

/// The budget of a search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Budget {
    /// Distinct interleavings done (applied, or given up).
    Schedules(u32),
    Time(Duration),
}

impl std::str::FromStr for Budget {
    type Err = String;
    fn from_str(text: &str) -> Result<Budget, String> {
        if let Ok(n) = text.trim().parse::<u32>() {
            return match n {
                0 => Err("a budget of 0 schedules tries nothing".into()),
                n => Ok(Budget::Schedules(n)),
            };
        }
        match humantime::parse_duration(text.trim()) {
            Ok(d) if d >= Duration::from_secs(10) && d <= Duration::from_secs(7 * 86_400) => {
                Ok(Budget::Time(d))
            }
            _ => Err(format!(
                "{text:?}: a number of schedules (40) or a time from 10s to 7 days (15m)"
            )),
        }
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Budget::Schedules(n) => write!(f, "{n} schedules"),
            Budget::Time(d) => write!(f, "{}", humantime::format_duration(*d)),
        }
    }
}

enum Phase {
    Sampling(u32),
    Probing,
    Searching,
    Done,
}

struct Inner {
    phase: Phase,
    candidates: Vec<Candidate>,
    /// (role, function) → times seen in samples.
    sampled: BTreeMap<(String, String), u32>,
    probes: Vec<(String, String)>,
    stops: Vec<Stop>,
    interleavings: Vec<Interleaving>,
    /// Trials by id, in order.
    tried: Vec<Tried>,
    /// Probe or interleaving index → its id.
    probe_ids: BTreeMap<usize, u64>,
    interleaving_ids: BTreeMap<usize, u64>,
    /// Interleavings done: applied or given up.
    done: u32,
}

/// A search over one scenario's roles on one kernel.
pub struct Search {
    inner: Mutex<Inner>,
    map: Arc<SymbolMap>,
    roles: Vec<String>,
    budget: Budget,
    started: Instant,
}

/// The symbol of a resolved `symbol+0xoff`.
fn symbol(function: &str) -> &str {
    function.split('+').next().unwrap_or(function)
}

/// Sampled functions that decide nothing: reporting machinery, the places tasks wait in, and
/// syscall plumbing.
fn worth_stopping_at(function: &str) -> bool {
    !crate::report::frames::is_skipped_in_stack(function)
        && !super::candidates::PLUMBING.contains(&function)
        && !function.starts_with("entry_")
        && !function.starts_with("asm_")
}

impl Search {
    /// `candidates`: the locations to probe, best first; `roles`: the workload's thread roles.
    pub fn new(
        candidates: Vec<Candidate>,
        roles: Vec<String>,
        map: Arc<SymbolMap>,
        budget: Budget,
    ) -> Search {
        let candidates: Vec<Candidate> = candidates
            .into_iter()
            .filter(|c| map.resolve(&location(&c.function)).is_ok())
            .collect();
        let probes = candidates
            .iter()
            .flat_map(|c| roles.iter().map(|r| (r.clone(), c.function.clone())))
            .collect();
        Search {
            inner: Mutex::new(Inner {
                phase: Phase::Sampling(SAMPLES),
                candidates,
                sampled: BTreeMap::new(),
                probes,
                stops: vec![],
                interleavings: vec![],
                tried: vec![],
                probe_ids: BTreeMap::new(),
                interleaving_ids: BTreeMap::new(),
                done: 0,
            }),
            map,
            roles,
            budget,
            started: Instant::now(),
        }
    }

    fn resolve(&self, function: &str) -> Vec<u64> {
        self.map.resolve(&location(function)).unwrap_or_default()
    }

    /// A run reported before any applied attempt. While sampling, the workload reaches its
    /// report before the samples are done: looking on would only meet the report again, so
    /// the search goes on to probing with the samples it has.
    pub fn stress_hit(&self) {
        let mut inner = self.inner.lock().unwrap();
        if matches!(inner.phase, Phase::Sampling(_)) {
            inner.phase = Phase::Probing;
        }
    }

    /// Whether `function` is a place the kernel's System.map can stop at.
    pub fn resolves(&self, function: &str) -> bool {
        self.map.resolve(&location(function)).is_ok()
    }

    /// Whether the budget is spent.
    pub fn spent(&self) -> bool {
        let done = self.inner.lock().unwrap().done;
        match self.budget {
            Budget::Schedules(n) => done >= n,
            Budget::Time(d) => self.started.elapsed() >= d,
        }
    }

    /// What is left of the budget, in words, and the time it may still take.
    pub fn left(&self) -> (String, Option<Duration>) {
        let inner = self.inner.lock().unwrap();
        let elapsed = self.started.elapsed();
        match self.budget {
            Budget::Schedules(n) => {
                let left = n.saturating_sub(inner.done);
                let eta = (inner.done > 0)
                    .then(|| elapsed.mul_f64(f64::from(left) / f64::from(inner.done)));
                (format!("{left} of {n} schedules left"), eta)
            }
            Budget::Time(d) => {
                let left = d.saturating_sub(elapsed);
                (
                    format!("{} left", humantime::format_duration(round(left))),
                    Some(left),
                )
            }
        }
    }

    /// Nothing more to try.
    pub fn exhausted(&self) -> bool {
        matches!(self.inner.lock().unwrap().phase, Phase::Done)
    }

    /// The trial attempted under `id`.
    pub fn trial(&self, id: u64) -> Option<Tried> {
        let inner = self.inner.lock().unwrap();
        inner.tried.iter().find(|t| t.id == id).cloned()
    }

    /// The steps of interleaving trial `id`, as a schedule's steps.
    pub fn steps_of(&self, id: u64) -> Option<Vec<Step>> {
        let inner = self.inner.lock().unwrap();
        let (&index, _) = inner.interleaving_ids.iter().find(|(_, &i)| i == id)?;
        Some(steps(
            &inner.stops,
            &inner.interleavings[index],
            &self.roles,
        ))
    }

    /// The stops of interleaving trial `id`, in step order.
    pub fn stops_of(&self, id: u64) -> Vec<Stop> {
        let inner = self.inner.lock().unwrap();
        let Some((&index, _)) = inner.interleaving_ids.iter().find(|(_, &i)| i == id) else {
            return vec![];
        };
        inner.interleavings[index]
            .0
            .iter()
            .map(|&(s, _)| inner.stops[s].clone())
            .collect()
    }

    /// Everything the search knows, for its record.
    pub fn record(&self) -> SearchRecord {
        let inner = self.inner.lock().unwrap();
        SearchRecord {
            budget: self.budget.to_string(),
            roles: self.roles.clone(),
            candidates: inner.candidates.clone(),
            sampled: inner
                .sampled
                .iter()
                .map(|((role, function), n)| (format!("{role} in {function}"), *n))
                .collect(),
            stops: inner.stops.clone(),
            interleavings_generated: inner.interleavings.len(),
            trials: inner.tried.clone(),
        }
    }

    /// Counts for the progress line: (attempts, distinct interleavings attempted, applied
    /// ones, given up).
    pub fn counts(&self) -> (u32, usize, usize, usize) {
        let inner = self.inner.lock().unwrap();
        let interleavings = inner
            .tried
            .iter()
            .filter(|t| matches!(t.trial, Trial::Interleaving { .. }));
        let (mut distinct, mut applied, mut given_up) = (0, 0, 0);
        for t in interleavings {
            distinct += 1;
            if t.applied > 0 {
                applied += 1;
            } else if t.attempts >= TRIES {
                given_up += 1;
            }
        }
        let attempts = inner.tried.iter().map(|t| t.attempts).sum();
        (attempts, distinct, applied, given_up)
    }

    fn new_id(inner: &mut Inner, trial: Trial) -> u64 {
        let id = inner.tried.len() as u64 + 1;
        inner.tried.push(Tried {
            id,
            trial,
            attempts: 0,
            applied: 0,
        });
        id
    }

    /// The next probe not settled, or none.
    fn next_probe(&self, inner: &mut Inner) -> Option<(u64, Resolved)> {
        let known: Vec<(String, String)> = inner.stops_known();
        for (i, (role, function)) in inner.probes.clone().into_iter().enumerate() {
            if known.contains(&(role.clone(), function.clone())) {
                continue;
            }
            let id = match inner.probe_ids.get(&i) {
                Some(&id) => {
                    let t = &inner.tried[id as usize - 1];
                    if t.applied > 0 || t.attempts >= TRIES {
                        continue;
                    }
                    id
                }
                None => {
                    let id = Search::new_id(
                        inner,
                        Trial::Probe {
                            role: role.clone(),
                            function: function.clone(),
                        },
                    );
                    inner.probe_ids.insert(i, id);
                    id
                }
            };
            let step = Step {
                name: "probe".into(),
                cpu: CpuRef::Role(role),
                at: location(&function),
                at_series: Default::default(),
                run: None,
                deadline: STEP_DEADLINE,
                task: None,
                hit: 1,
                line: 0,
            };
            let addrs = self.resolve(&function);
            return Some((id, vec![(step, addrs)]));
        }
        None
    }

    /// Every stop known once probing is over: probed and reached, or sampled.
    fn settle_stops(&self, inner: &mut Inner) {
        let mut stops: Vec<Stop> = Vec::new();
        for (i, (role, function)) in inner.probes.iter().enumerate() {
            let reached = inner
                .probe_ids
                .get(&i)
                .is_some_and(|&id| inner.tried[id as usize - 1].applied > 0);
            let sampled = inner
                .sampled
                .contains_key(&(role.clone(), function.clone()));
            if !(reached || sampled) {
                continue;
            }
            let c = inner.candidates.iter().find(|c| &c.function == function);
            let mut from = c.map(|c| c.from.clone()).unwrap_or_default();
            from.push(match reached {
                true => format!("probed: the {role} thread stopped there"),
                false => format!("sampled: the {role} thread was seen there"),
            });
            stops.push(Stop {
                role: role.clone(),
                function: function.clone(),
                score: c.map_or(0.0, |c| c.score),
                from,
            });
        }
        // The functions each role was seen in most, that no candidate named.
        for role in &self.roles {
            let total: u32 = inner
                .sampled
                .iter()
                .filter(|((r, _), _)| r == role)
                .map(|(_, n)| n)
                .sum();
            let mut seen: Vec<(&String, u32)> = inner
                .sampled
                .iter()
                .filter(|((r, f), _)| {
                    r == role && worth_stopping_at(f) && !stops.iter().any(|s| &s.function == f)
                })
                .map(|((_, f), n)| (f, *n))
                .collect();
            seen.sort_by_key(|(f, n)| (std::cmp::Reverse(*n), (*f).clone()));
            for (function, n) in seen.into_iter().take(SAMPLED_PER_ROLE) {
                stops.push(Stop {
                    role: role.clone(),
                    function: function.clone(),
                    score: 0.5 * f64::from(n) / f64::from(total.max(1)),
                    from: vec![format!(
                        "sampled: the {role} thread was seen in it (or below it) in {n} of its \
                         samples"
                    )],
                });
            }
        }
        stops.sort_by(|a, b| b.score.total_cmp(&a.score));
        stops.truncate(MAX_STOPS);
        // Each role's next syscall: where everything it was doing in the kernel is over (a
        // free done, a reference dropped), whatever it was.
        if let Some(entry) = SYSCALL_ENTRY.iter().find(|f| !self.resolve(f).is_empty()) {
            for role in &self.roles {
                stops.push(Stop {
                    role: role.clone(),
                    function: entry.to_string(),
                    score: BOUNDARY_SCORE,
                    from: vec![format!(
                        "the {role} thread's next syscall ({entry} dispatches every one): what \
                         it was doing in the kernel is over"
                    )],
                });
            }
        }
        inner.interleavings = interleavings(&stops, MAX_DEPTH);
        inner.stops = stops;
    }

    fn next_interleaving(&self, inner: &mut Inner) -> Option<(u64, Resolved)> {
        for i in 0..inner.interleavings.len() {
            let id = match inner.interleaving_ids.get(&i) {
                Some(&id) => {
                    let t = &inner.tried[id as usize - 1];
                    if t.applied > 0 || t.attempts >= TRIES {
                        continue;
                    }
                    id
                }
                None => {
                    let steps = steps(&inner.stops, &inner.interleavings[i], &self.roles)
                        .iter()
                        .map(describe)
                        .collect();
                    let id = Search::new_id(inner, Trial::Interleaving { steps });
                    inner.interleaving_ids.insert(i, id);
                    id
                }
            };
            let resolved = steps(&inner.stops, &inner.interleavings[i], &self.roles)
                .into_iter()
                .map(|s| {
                    let addrs = self.resolve(&s.at.symbol);
                    (s, addrs)
                })
                .collect();
            return Some((id, resolved));
        }
        None
    }
}

impl Inner {
    fn stops_known(&self) -> Vec<(String, String)> {
        self.sampled.keys().cloned().collect()
    }
}

fn round(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

pub fn location(function: &str) -> Location {
    Location {
        symbol: function.to_string(),
        offset: 0,
    }
}

/// A step in words: "closer at __fput (hit 1), running closer, poller".
pub fn describe(step: &Step) -> String {
    let run = match &step.run {
        None => String::new(),
        Some(run) => format!(
            ", running {}",
            run.iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!("{} at {} (hit {}){run}", step.cpu, step.at, step.hit)
}

/// The steps of an interleaving: the first lets every vCPU run; each later one its own role
/// and every role not stopped by an earlier step.
pub fn steps(stops: &[Stop], interleaving: &Interleaving, roles: &[String]) -> Vec<Step> {
    let mut held: Vec<&str> = Vec::new();
    let mut out: Vec<Step> = Vec::new();
    for (k, &(s, hit)) in interleaving.0.iter().enumerate() {
        let stop = &stops[s];
        let run = (k > 0).then(|| {
            roles
                .iter()
                .filter(|r| **r == stop.role || !held.contains(&r.as_str()))
                .map(|r| CpuRef::Role(r.clone()))
                .collect()
        });
        held.retain(|r| *r != stop.role);
        held.push(&stop.role);
        let mut name = format!("{}-{}", stop.role, stop.function);
        if out.iter().any(|o| o.name == name) {
            name = format!("{name}-{}", k + 1);
        }
        out.push(Step {
            name,
            cpu: CpuRef::Role(stop.role.clone()),
            at: location(&stop.function),
            at_series: Default::default(),
            run,
            deadline: STEP_DEADLINE,
            task: None,
            hit,
            line: 0,
        });
    }
    out
}

/// Every interleaving of `stops` up to `depth` steps, in the order they are tried: by depth,
/// then by the sum of their stops' scores (ties in the order generated). A step's role
/// differs from the step before it's (the same role twice running on would be one step).
pub fn interleavings(stops: &[Stop], depth: usize) -> Vec<Interleaving> {
    let mut all: Vec<(usize, f64, Interleaving)> = Vec::new();
    let mut frontier: Vec<Vec<usize>> = (0..stops.len()).map(|i| vec![i]).collect();
    for d in 2..=depth {
        let mut next = Vec::new();
        for seq in &frontier {
            let last = &stops[*seq.last().expect("not empty")];
            for (i, stop) in stops.iter().enumerate() {
                if stop.role == last.role || seq.contains(&i) {
                    continue;
                }
                let mut s = seq.clone();
                s.push(i);
                next.push(s);
            }
        }
        for seq in &next {
            let score: f64 = seq.iter().map(|&i| stops[i].score).sum();
            all.push((
                d,
                score,
                Interleaving(seq.iter().map(|&i| (i, 1)).collect()),
            ));
        }
        frontier = next;
    }
    all.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
    all.into_iter().map(|(_, _, i)| i).collect()
}

impl Source for Search {
    fn next(&self) -> Next {
        if self.spent() {
            self.inner.lock().unwrap().phase = Phase::Done;
            return Next::Done;
        }
        let mut inner = self.inner.lock().unwrap();
        loop {
            match inner.phase {
                Phase::Sampling(0) => inner.phase = Phase::Probing,
                Phase::Sampling(left) => {
                    inner.phase = Phase::Sampling(left - 1);
                    return Next::Sample(SAMPLE_EVERY);
                }
                Phase::Probing => match self.next_probe(&mut inner) {
                    Some((id, steps)) => return Next::Attempt(id, steps),
                    None => {
                        self.settle_stops(&mut inner);
                        inner.phase = Phase::Searching;
                    }
                },
                Phase::Searching => match self.next_interleaving(&mut inner) {
                    Some((id, steps)) => return Next::Attempt(id, steps),
                    None => inner.phase = Phase::Done,
                },
                Phase::Done => return Next::Done,
            }
        }
    }

    fn attempted(&self, id: u64, applied: bool) {
        {
            let mut inner = self.inner.lock().unwrap();
            let Some(t) = inner.tried.get_mut(id as usize - 1) else {
                return;
            };
            t.attempts += 1;
            t.applied += u32::from(applied);
            let settled = t.applied == 1 && applied || (!applied && t.attempts == TRIES);
            if settled && matches!(t.trial, Trial::Interleaving { .. }) {
                inner.done += 1;
            }
        }
        let (attempts, distinct, applied, given_up) = self.counts();
        let (left, eta) = self.left();
        crate::events::emit(crate::events::Event::Explored {
            attempts,
            distinct,
            applied,
            given_up,
            left,
            eta,
        });
    }

    fn sampled(&self, samples: &[Sample]) {
        let mut inner = self.inner.lock().unwrap();
        for s in samples {
            let (Some(function), true) = (&s.function, self.roles.contains(&s.task)) else {
                continue;
            };
            // The function the vCPU is in and its callers on the stack, each once.
            let mut seen: Vec<&str> = vec![symbol(function)];
            for caller in &s.stack {
                let caller = symbol(caller);
                if !seen.contains(&caller) {
                    seen.push(caller);
                }
            }
            for f in seen {
                *inner
                    .sampled
                    .entry((s.task.clone(), f.to_string()))
                    .or_default() += 1;
            }
        }
    }
}

/// The search as its record shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SearchRecord {
    pub budget: String,
    pub roles: Vec<String>,
    pub candidates: Vec<Candidate>,
    /// "role in function" → samples.
    pub sampled: BTreeMap<String, u32>,
    /// The stops combined, best first: the ranking.
    pub stops: Vec<Stop>,
    pub interleavings_generated: usize,
    pub trials: Vec<Tried>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stop(role: &str, function: &str, score: f64) -> Stop {
        Stop {
            role: role.into(),
            function: function.into(),
            score,
            from: vec![],
        }
    }

    #[test]
    fn interleavings_go_by_depth_then_score_and_never_repeat() {
        let stops = [
            stop("poller", "dma_buf_poll", 2.0),
            stop("closer", "__fput", 1.0),
            stop("poller", "ep_item_poll", 0.5),
        ];
        let all = interleavings(&stops, 3);
        // Depth 2: each ordered pair of stops of different roles.
        let depth2: Vec<&Interleaving> = all.iter().filter(|i| i.0.len() == 2).collect();
        assert_eq!(depth2.len(), 4);
        assert!(all.iter().take(4).all(|i| i.0.len() == 2));
        assert_eq!(all[0].0, [(0, 1), (1, 1)]);
        // Depth 3: roles alternate, no stop twice.
        assert!(all.iter().skip(4).all(|i| i.0.len() == 3));
        assert!(all.iter().all(|i| i
            .0
            .windows(2)
            .all(|w| stops[w[0].0].role != stops[w[1].0].role)));
        let mut sorted = all.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len());
    }

    #[test]
    fn a_later_step_runs_its_role_and_the_roles_not_stopped() {
        let roles: Vec<String> = ["closer", "adder", "poller"].map(String::from).to_vec();
        let stops = [
            stop("adder", "do_epoll_ctl", 1.0),
            stop("closer", "filp_flush", 1.0),
            stop("adder", "__fput", 1.0),
        ];
        let s = steps(&stops, &Interleaving(vec![(0, 1), (1, 1), (2, 1)]), &roles);
        assert_eq!(s[0].run, None);
        let names = |s: &Step| {
            s.run
                .as_ref()
                .unwrap()
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&s[1]), ["closer", "poller"]);
        // The adder, stopped at step 1, runs again; the closer stays stopped.
        assert_eq!(names(&s[2]), ["adder", "poller"]);
        assert_eq!(
            describe(&s[2]),
            "adder at __fput (hit 1), running adder, poller"
        );
    }

    /// A search of two roles with no candidates, in its sampling phase.
    fn closer_and_poller() -> Search {
        Search::new(
            vec![],
            vec!["closer".into(), "poller".into()],
            Arc::new(SymbolMap::default()),
            Budget::Schedules(1),
        )
    }

    /// A sample counts the function a role's thread is in and each caller found on its stack,
    /// once each; other tasks' samples and user space count nothing.
    #[test]
    fn samples_count_a_roles_function_and_its_callers() {
        let search = closer_and_poller();
        let sample = |task: &str, function: Option<&str>, stack: &[&str]| Sample {
            at_ms: 0,
            cpu: 0,
            pc: 0xffff_ffff_8100_0000,
            function: function.map(String::from),
            task: task.into(),
            stack: stack.iter().map(|s| s.to_string()).collect(),
        };
        search.sampled(&[
            sample(
                "closer",
                Some("memset_orig+0x10"),
                &["__fput+0x9a", "task_work_run+0x5c", "__fput+0x9a"],
            ),
            sample("closer", Some("__fput+0x20"), &[]),
            sample("swapper/1", Some("default_idle+0x3"), &["do_idle+0x10"]),
            sample("poller", None, &[]),
        ]);
        let sampled = search.record().sampled;
        assert_eq!(sampled.get("closer in __fput"), Some(&2));
        assert_eq!(sampled.get("closer in memset_orig"), Some(&1));
        assert_eq!(sampled.get("closer in task_work_run"), Some(&1));
        assert_eq!(sampled.len(), 3, "{sampled:?}");
    }

    /// A report before the samples are done ends the sampling: the next ask is no sample.
    #[test]
    fn a_stress_hit_while_sampling_ends_the_sampling() {
        let search = closer_and_poller();
        assert!(matches!(search.next(), Next::Sample(_)));
        search.stress_hit();
        assert!(!matches!(search.next(), Next::Sample(_)));
        // Past sampling, a stress hit changes nothing.
        search.stress_hit();
        assert!(!matches!(search.next(), Next::Sample(_)));
    }

    #[test]
    fn budgets_are_schedules_or_time() {
        assert_eq!("40".parse::<Budget>(), Ok(Budget::Schedules(40)));
        assert_eq!(
            "15m".parse::<Budget>(),
            Ok(Budget::Time(Duration::from_secs(900)))
        );
        for bad in ["0", "-1", "1s", "8 days", "lots", ""] {
            assert!(bad.parse::<Budget>().is_err(), "{bad}");
        }
    }
}
