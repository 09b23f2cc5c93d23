//! Where an exploration may stop, from what a race left in its reports: every function of
//! their stacks that is not reporting machinery or syscall plumbing, ranked. KASAN gives the
//! access stack and the free and alloc stacks; KCSAN both sides of the race; any other report
//! its call trace, and the reports that follow the first one in the same run add theirs.
//!
//! The function the title names (a WARNING's faulting function is above its call trace) counts
//! as a stack of its own. The ranking, written down with each candidate: a function scores 1 / (1 + depth) for each
//! stack it is in, `depth` counting only the frames kept above it in that stack, so the top
//! of a stack weighs most and a function in two stacks (both sides of the race, or the access
//! and the free) outranks one in a single stack; ties keep the order of first appearance.

use crate::report::frames::{candidates as kept, Frame};
use crate::report::parser::Report;

/// Syscall dispatch and the return to user space: in every stack a syscall makes, a place no
/// interleaving is decided at. By name, since their files (arch/x86/entry, kernel/entry)
/// also hold the syscalls' own entry points.
pub const PLUMBING: &[&str] = &[
    "x64_sys_call",
    "do_syscall_64",
    "entry_SYSCALL_64_after_hwframe",
    "syscall_exit_to_user_mode",
    "task_work_run",
];

/// Which stack of which report a function was found in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The report's index in the run (0: the first).
    pub report: usize,
    /// "title" (the function the report's title names), "access", "free", "alloc", "race
    /// side N (cpu C, TASK)", or "stack".
    pub stack: String,
    /// Kept frames above it in that stack.
    pub depth: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub function: String,
    pub score: f64,
    pub seen: Vec<Seen>,
}

/// The functions a report's title names as guilty (`WARNING in dma_buf_poll`; KCSAN's `in a /
/// b`): the faulting function itself, which a WARNING's call trace starts below.
fn titled(r: &Report) -> Vec<Frame> {
    let Some((_, functions)) = r.title.rsplit_once(" in ") else {
        return vec![];
    };
    functions
        .split(" / ")
        .map(str::trim)
        .filter(|f| !f.is_empty() && f.chars().all(|c| c.is_alphanumeric() || "_.".contains(c)))
        .map(|f| Frame {
            function: f.to_string(),
            offset: 0,
            size: 0,
            module: None,
            reliable: true,
            location: None,
            inlined: vec![],
        })
        .collect()
}

/// The stacks of one report, each named.
fn stacks<'a>(r: &'a Report, title: &'a [Frame]) -> Vec<(String, &'a [Frame])> {
    let mut all: Vec<(String, &[Frame])> = vec![("title".into(), title)];
    match &r.race {
        Some(race) if !race.accesses.is_empty() => {
            for (i, a) in race.accesses.iter().enumerate() {
                all.push((
                    format!("race side {} (cpu {}, {})", i + 1, a.cpu, a.by),
                    a.frames.as_slice(),
                ));
            }
        }
        _ => {
            let name = if r.alloc_frames.is_empty() && r.free_frames.is_empty() {
                "stack"
            } else {
                "access"
            };
            all.push((name.into(), r.frames.as_slice()));
        }
    }
    all.push(("free".into(), r.free_frames.as_slice()));
    all.push(("alloc".into(), r.alloc_frames.as_slice()));
    all.retain(|(_, frames)| !frames.is_empty());
    all
}

/// The candidates of a run's reports, best first.
pub fn from_reports(reports: &[Report]) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    for (i, r) in reports.iter().enumerate() {
        let title = titled(r);
        for (stack, frames) in stacks(r, &title) {
            let functions = kept(frames)
                .map(|f| base_name(&f.function))
                .filter(|f| !PLUMBING.contains(f));
            let mut depth = 0;
            let mut in_this_stack: Vec<&str> = Vec::new();
            for function in functions {
                if in_this_stack.contains(&function) {
                    continue;
                }
                in_this_stack.push(function);
                let seen = Seen {
                    report: i,
                    stack: stack.clone(),
                    depth,
                };
                let score = 1.0 / (1.0 + depth as f64);
                match out.iter_mut().find(|c| c.function == function) {
                    Some(c) => {
                        c.score += score;
                        c.seen.push(seen);
                    }
                    None => out.push(Candidate {
                        function: function.to_string(),
                        score,
                        seen: vec![seen],
                    }),
                }
                depth += 1;
            }
        }
    }
    // Stable: ties keep the order of first appearance.
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    out
}

/// Where a step at `function` may be widened to: the function that called it in each stack
/// of `reports` it is in (the next kept frame outward; the title's function is called by the
/// top of its report's first stack), each with where it was seen, in the order found. A
/// step at the caller is reached before the code the bug changed decides anything, so a
/// schedule stopped there applies on a kernel without the bug too.
pub fn callers(reports: &[Report], function: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, r) in reports.iter().enumerate() {
        let title = titled(r);
        let all = stacks(r, &title);
        for (k, (stack, frames)) in all.iter().enumerate() {
            let mut names: Vec<&str> = kept(frames)
                .map(|f| base_name(&f.function))
                .filter(|f| !PLUMBING.contains(f))
                .collect();
            // The title's function: its callers are the next stack's frames.
            if stack == "title" {
                if let Some((_, below)) = all.get(k + 1) {
                    names.extend(
                        kept(below)
                            .map(|f| base_name(&f.function))
                            .filter(|f| !PLUMBING.contains(f)),
                    );
                }
            }
            names.dedup();
            let Some(at) = names.iter().position(|f| *f == function) else {
                continue;
            };
            let Some(caller) = names.get(at + 1) else {
                continue;
            };
            if !out.iter().any(|(c, _)| c == caller) {
                out.push((
                    caller.to_string(),
                    format!(
                        "the caller of {function} in report {}'s {stack} stack",
                        i + 1
                    ),
                ));
            }
        }
    }
    out
}

/// `io_eventfd_signal.part.0` is `io_eventfd_signal` to a person and in System.map's sense of
/// where to stop (the compiler's clone is found from it).
fn base_name(function: &str) -> &str {
    function.split('.').next().unwrap_or(function)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn console(name: &str) -> Vec<Report> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/corpus/console")
            .join(name);
        crate::report::parser::parse(&std::fs::read_to_string(path).unwrap())
    }

    fn names(c: &[Candidate], n: usize) -> Vec<&str> {
        c.iter().take(n).map(|c| c.function.as_str()).collect()
    }

    fn stacks_of(c: &Candidate) -> Vec<&str> {
        c.seen.iter().map(|s| s.stack.as_str()).collect()
    }

    /// A captured KCSAN report of eventfd-no-kref (`race in do_raw_spin_lock / kfree`): the
    /// top of each side ranks first — eventfd_signal_mask (the signaller, under its lock) and
    /// eventfd_release (the closer, freeing) — not the lock or the allocator the title
    /// names, and no syscall plumbing is a candidate.
    #[test]
    fn kcsans_two_sides_rank_first() {
        let reports = console("eventfd-no-kref-kcsan-uring.log");
        let c = from_reports(&reports[..1]);
        assert_eq!(names(&c, 2), ["eventfd_signal_mask", "eventfd_release"]);
        assert_eq!(stacks_of(&c[0]), ["race side 1 (cpu 1, task 39)"]);
        assert_eq!(stacks_of(&c[1]), ["race side 2 (cpu 0, task 38)"]);
        assert!(c.iter().all(|c| !PLUMBING.contains(&c.function.as_str())
            && c.function != "kfree"
            && c.function != "do_raw_spin_lock"));
        // `io_eventfd_signal.part.0` is known by its own name.
        assert!(names(&c, 4).contains(&"io_eventfd_signal"));
    }

    /// A captured KASAN report of eventfd-no-kref: the function the title names and the
    /// access stack's top (eventfd_signal_mask, in both) ranks first, then the tops of the free
    /// and alloc stacks; KASAN's and the allocator's own frames are not candidates.
    #[test]
    fn kasans_three_stacks_give_candidates() {
        let reports = console("eventfd-no-kref-uring.log");
        let c = from_reports(&reports[..1]);
        assert_eq!(
            names(&c, 3),
            ["eventfd_signal_mask", "eventfd_release", "do_eventfd"]
        );
        assert_eq!(stacks_of(&c[0]), ["title", "access"]);
        assert!(c[0].score > c[1].score);
        assert_eq!(stacks_of(&c[1]), ["free"]);
        assert_eq!(stacks_of(&c[2]), ["alloc"]);
        assert!(c.iter().all(|c| !c.function.starts_with("kasan_")
            && !c.function.starts_with("__kasan")
            && !c.function.starts_with("kmem_cache")
            && c.function != "print_report"));
        for w in c.windows(2) {
            assert!(w[0].score >= w[1].score);
        }
    }

    /// A captured WARNING of epoll-unpinned-poll: its call trace starts below the faulting
    /// function, which the title names; both are candidates, the title's first.
    #[test]
    fn a_warnings_faulting_function_comes_from_its_title() {
        let reports = console("epoll-unpinned-poll-dmabuf.log");
        let c = from_reports(&reports[..1]);
        assert_eq!(names(&c, 2), ["dma_buf_poll", "ep_item_poll"]);
        assert_eq!(stacks_of(&c[0]), ["title"]);
        assert_eq!(stacks_of(&c[1]), ["stack"]);
        // The reports that follow in the run add their stacks, after the first's.
        let all = from_reports(&reports);
        assert!(all.len() >= c.len());
        assert!(all.iter().any(|c| c.seen.iter().any(|s| s.report > 0)));
    }

    /// A step is widened to its caller in the report's stacks: the WARNING's faulting
    /// function to the top of its call trace, a KASAN access to the frame below it; a
    /// function at the bottom of every stack it is in has none.
    #[test]
    fn a_steps_caller_comes_from_the_stacks_it_is_in() {
        let warning = console("epoll-unpinned-poll-dmabuf.log");
        let up = callers(&warning[..1], "dma_buf_poll");
        assert_eq!(up.first().map(|(c, _)| c.as_str()), Some("ep_item_poll"));
        assert_eq!(
            up[0].1,
            "the caller of dma_buf_poll in report 1's title stack"
        );
        let next = callers(&warning[..1], "ep_item_poll");
        assert!(!next.is_empty() && next[0].0 != "ep_item_poll", "{next:?}");
        let kasan = console("eventfd-no-kref-uring.log");
        let up = callers(&kasan[..1], "eventfd_signal_mask");
        assert!(!up.is_empty(), "{up:?}");
        assert!(up
            .iter()
            .all(|(c, _)| c != "eventfd_signal_mask" && !PLUMBING.contains(&c.as_str())));
        assert!(callers(&kasan[..1], "no_such_function").is_empty());
    }
}
