//! One pass over a report's lines after its header: the call-trace frames of each section
//! (the access stack, KASAN's allocation and free stacks), the access line, the register
//! dump's instruction pointer, lockdep's `at:` lock sites, and the code a timer interrupt
//! interrupted (what a stall report is about).

use super::formats::ACCESS;
use super::frames::{self, Frame};
use serde::{Deserialize, Serialize};

/// The memory access a KASAN-style report names: `Read of size 8 at addr … by task …`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Access {
    pub kind: String,
    pub size: u64,
    pub address: String,
    pub task: String,
}

/// Sections of a KASAN report after the access stack.
const ALLOC: &str = "Allocated by task";
const FREE: &str = "Freed by task";
const STACK_ENDS: &[&str] = &[
    ALLOC,
    FREE,
    "Last potentially related work creation",
    "The buggy address belongs to",
    "Second to last potentially related",
];

/// Lines that say the frames before them ran in a timer interrupt, and the frames after it
/// in the code it interrupted: x86's interrupt entry (`apic_timer_interrupt`,
/// `asm_sysvec_apic_timer_interrupt`), the end of the IRQ stack, arm64's IRQ entry, and old
/// kernels' exception-stack marker.
const INTERRUPT_MARKS: &[&str] = &[
    "apic_timer_interrupt",
    "</IRQ>",
    "<EOI>",
    "el1h_64_irq",
    "el1_irq",
    "Exception stack",
];

static INTERRUPT: std::sync::LazyLock<aho_corasick::AhoCorasick> = std::sync::LazyLock::new(|| {
    // Leftmost-first: the searcher that can use SIMD (Teddy) over a whole report.
    aho_corasick::AhoCorasick::builder()
        .match_kind(aho_corasick::MatchKind::LeftmostFirst)
        .build(INTERRUPT_MARKS)
        .expect("interrupt marks are plain text")
});

/// Lockdep's lock lines (`… (&lock){+.+.}-{3:3}, at: func+0x1/0x2 file.c:12`) and the
/// workqueue's `last function: func` line.
const SITE_MARKS: &[&str] = &[", at: ", "last function: "];

/// How many `at:` sites make the title's candidates: the lock being taken, then the one held.
const SITES: usize = 2;

#[derive(Default)]
pub struct Scanned {
    /// The main call trace (all of it, whatever the section markers inside it).
    pub frames: Vec<Frame>,
    pub alloc_frames: Vec<Frame>,
    pub free_frames: Vec<Frame>,
    pub access: Option<Access>,
    /// The first kernel-mode instruction pointer of a register dump.
    pub rip: Option<Frame>,
    /// Index into `frames` of the first frame after `rip`.
    pub rip_at: usize,
    /// Functions of lockdep's first `at:` lines.
    pub sites: Vec<String>,
    /// The interrupted code: the instruction pointer after the first interrupt mark, then the
    /// frames after it (empty when the report shows no interrupt).
    pub interrupted: Vec<Frame>,
    /// Index into `frames` of the first frame after the first `Call Trace:` line.
    pub call_trace: usize,
    /// `[inline]` lines of the main stack after its last frame (a console cut short).
    pub dangling: Vec<super::frames::Inlined>,
}

/// The function of a lockdep `at:` line.
fn site(text: &str) -> Option<String> {
    let rest = SITE_MARKS
        .iter()
        .find_map(|m| text.split_once(m))
        .map(|(_, rest)| rest)?;
    let rest = rest.trim_start();
    let rest = match rest.strip_prefix("[<") {
        Some(r) => r.split_once("]")?.1.trim_start(),
        None => rest,
    };
    let name = rest.split(['+', ' ']).next()?;
    (!name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.')))
    .then(|| name.to_string())
}

/// Scan the lines after a report's header (`body`, lines joined by newlines).
pub fn scan(body: &str) -> Scanned {
    let mut s = Scanned::default();
    // Where the first interrupt mark is: searched once in the whole body.
    let mark = INTERRUPT.find(body).map(|m| m.start());
    let mut section = 0; // 0 main stack, 1 alloc, 2 free, 3 other
    let mut marked = false; // an interrupt mark seen
    let mut after_mark = Vec::new();
    let mut interrupted_rip: Option<(Frame, usize)> = None;
    let mut call_trace = None;
    let mut last_caller: Option<String> = None;
    // `[inline]` lines before a frame: the functions inlined at its address.
    let mut inlined = Vec::new();
    for text in lines(body) {
        let start = text.as_ptr() as usize - body.as_ptr() as usize;
        let t = text.trim_start();
        let rip = frames::parse_rip(t);
        if s.rip.is_none() && rip.is_some() {
            s.rip.clone_from(&rip);
            s.rip_at = s.frames.len();
        }
        // Section heads and the access line start with a capital; frames rarely do.
        if t.as_bytes().first().is_some_and(u8::is_ascii_uppercase) {
            if t.starts_with(ALLOC) {
                section = 1;
            } else if t.starts_with(FREE) {
                section = 2;
            } else if STACK_ENDS.iter().any(|e| t.starts_with(e)) {
                section = 3;
            } else if call_trace.is_none()
                && (t.starts_with("Call Trace") || t.starts_with("Call trace"))
            {
                call_trace = Some(s.frames.len());
            }
            if s.access.is_none() && (t.starts_with("Read ") || t.starts_with("Write ")) {
                s.access = access(t);
            }
        }
        let stack = match section {
            0 => &mut s.frames,
            1 => &mut s.alloc_frames,
            2 => &mut s.free_frames,
            _ => continue,
        };
        if let Some(function) = frames::parse_inlined(t.strip_prefix("<IRQ>").unwrap_or(t)) {
            inlined.push(function);
            if section == 0 && !marked {
                marked = mark.is_some_and(|at| (start..start + text.len()).contains(&at));
            }
            continue;
        }
        // arm prints each function with its caller (`(callee) from (caller+0x1/0x2)`), and
        // the next line starts from that caller: the callers are frames, once each.
        let mut frame = frames::parse_frame(text);
        if let Some(frame) = &mut frame {
            frame.inlined = std::mem::take(&mut inlined);
        } else {
            inlined.clear();
        }
        let mut caller = None;
        if let Some(callee) = &frame {
            if last_caller.take().as_deref() == Some(callee.function.as_str()) {
                frame = None;
            }
            caller = frames::parse_arm_caller(t);
            last_caller = caller.as_ref().map(|c| c.function.clone());
        }
        let frame = frame.into_iter().chain(caller);
        if section == 0 {
            if s.sites.len() < SITES && stack.is_empty() {
                s.sites.extend(site(t));
            }
            if marked {
                if let (Some(rip), None) = (rip, &interrupted_rip) {
                    interrupted_rip = Some((rip, after_mark.len()));
                }
                after_mark.extend(frame.clone());
            } else if mark.is_some_and(|at| (start..start + text.len()).contains(&at)) {
                marked = true;
            }
        }
        stack.extend(frame);
    }
    // Syzkaller's order: the instruction pointer after the mark and the frames after it, or
    // when the interrupted code has no register dump, every frame after the mark.
    s.interrupted = match interrupted_rip {
        Some((rip, at)) => std::iter::once(rip).chain(after_mark.drain(at..)).collect(),
        None => after_mark,
    };
    s.call_trace = call_trace.unwrap_or(0);
    if section == 0 {
        s.dangling = inlined;
    }
    s
}

fn access(t: &str) -> Option<Access> {
    ACCESS.captures(t).map(|c| Access {
        kind: c[1].to_string(),
        size: c.get(2).and_then(|m| m.as_str().parse().ok()).unwrap_or(0),
        address: c
            .get(3)
            .map_or_else(String::new, |m| m.as_str().to_string()),
        task: c[4].to_string(),
    })
}

/// The lines of a text, each line end (LF, CRLF, a bare CR) ending one.
pub use crate::text::lines;
