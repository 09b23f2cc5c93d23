//! A streaming parser from console lines to kernel reports. Bounded memory, never panics on
//! arbitrary input. With CONFIG_PRINTK_CALLER every line carries `[T123]` or `[C1]`, and a
//! report's lines are those of the caller of its header; untagged consoles fall back to
//! contiguity.

use super::formats::{self, Format, Guilty, ReportType};
use super::frames::{self, Frame};
use super::scan::lines;
pub use super::scan::Access;
use super::{guilty, paths, race, scan};
use regex::Regex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// Lines kept per report, reports open at once, characters kept per line.
const MAX_REPORT_LINES: usize = 600;
const MAX_OPEN: usize = 16;
const MAX_LINE: usize = 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub title: String,
    pub alt_titles: Vec<String>,
    #[serde(rename = "type")]
    pub kind: ReportType,
    pub format: String,
    pub corrupted: bool,
    pub corrupted_reason: Option<String>,
    /// The PRINTK_CALLER tag of the header line (`T39`, `C1`).
    pub caller: Option<String>,
    /// 1-based console line of the header.
    pub line: usize,
    pub frames: Vec<Frame>,
    pub access: Option<Access>,
    pub alloc_frames: Vec<Frame>,
    pub free_frames: Vec<Frame>,
    /// Stable across runs: derived from the title alone.
    pub signature: String,
    pub text: String,
    /// KCSAN's two accesses, their stacks and the value change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub race: Option<super::race::Race>,
    /// Why the lab's suppression list leaves this report out of the verdict (it is kept and
    /// shown, never dropped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<String>,
    /// When a live run's console printed the header, in ms since the workload started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
    /// The source file to blame (as syzbot routes a bug): from the title's frame down, the
    /// first file that is neither shared machinery nor a generic layer ([`super::paths`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guilty_file: Option<String>,
}

impl Report {
    /// Whether the report is the kernel's and not suppressed: what makes a run a finding.
    pub fn counts(&self) -> bool {
        self.kind != ReportType::Lab && self.suppressed.is_none()
    }
}

static TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\[\s*\d+\.\d+\]").unwrap());

/// (caller tag, text without timestamp and tag): `[  12.345678][  T123] text`, either
/// bracket optional.
pub fn split(line: &str) -> (Option<&str>, &str) {
    let (caller, text, _) = split_stamped(line);
    (caller, text)
}

/// [`split`], and whether the line carried the kernel's timestamp or caller tag: the marks of
/// a printk line. Scanned by hand in one pass: it runs on every console line.
fn split_stamped(line: &str) -> (Option<&str>, &str, bool) {
    let b = line.as_bytes();
    let mut stamped = true;
    let mut i = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    // A capturing tool's wall clock (`2018/01/09 14:28:48 `, Go's log format).
    if b.len() >= i + 20
        && b[i..i + 20]
            .iter()
            .zip(b"dddd/dd/dd dd:dd:dd ")
            .all(|(c, p)| match p {
                b'd' => c.is_ascii_digit(),
                p => c == p,
            })
    {
        i += 20;
    }
    // A syslog level (`<3>[   33.9] ...`, as `dmesg -r` and some CI consoles print).
    if b.get(i) == Some(&b'<') && b.get(i + 2) == Some(&b'>') && b[i + 1].is_ascii_digit() {
        i += 3;
    }
    if let Some(end) = timestamp(b, i) {
        i = end;
    } else if let Some(end) = memchr::memchr_iter(b'[', &b[i..]).find_map(|at| timestamp(b, i + at))
    {
        // User-space output sharing the serial line: the kernel's text starts after its
        // timestamp (`-wait-wouldblock[  347.42] invalid opcode: 0000 [#1]`).
        i = end;
    } else {
        stamped = false;
    }
    let mut caller = None;
    if let Some((start, end)) = caller_tag(b, i) {
        caller = Some(&line[start..end - 1]);
        i = end;
        stamped = true;
    }
    if b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    let mut text = &line[i..];
    // Kernel messages some versions print without their newline, so that the next message
    // (a report's header) runs on after them.
    for partial in UNTERMINATED {
        if let Some(rest) = text.strip_prefix(partial) {
            text = rest;
        }
    }
    (caller, text, stamped)
}

/// Kernel messages printed without a newline before a report: x86 KASAN's hint before a
/// general protection fault (arch/x86/mm/kasan_init_64.c, 4.x kernels).
const UNTERMINATED: &[&str] =
    &["kasan: GPF could be caused by NULL-ptr deref or user memory access"];

/// Blanks then ASCII digits from `i`: the index after them, and whether any digit was seen.
fn digits(b: &[u8], mut i: usize) -> (usize, bool) {
    while i < b.len() && b[i] == b' ' {
        i += 1;
    }
    let start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    (i, i > start)
}

/// `[  12.345678]` at `i`: the index after `]`.
fn timestamp(b: &[u8], i: usize) -> Option<usize> {
    (b.get(i) == Some(&b'[')).then_some(())?;
    let (dot, whole) = digits(b, i + 1);
    (whole && b.get(dot) == Some(&b'.')).then_some(())?;
    let (close, frac) = digits(b, dot + 1);
    (frac && b.get(close) == Some(&b']') && b[dot + 1] != b' ').then_some(close + 1)
}

/// The kernel's timestamp of a console line (`[   12.345678] …`), in milliseconds.
pub fn timestamp_ms(line: &str) -> Option<u64> {
    let b = line.as_bytes();
    let i = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    let end = timestamp(b, i)?;
    let secs: f64 = line[i + 1..end - 1].trim().parse().ok()?;
    Some((secs * 1000.0) as u64)
}

/// `[  T123]` or `[C1]` at `i`: where the tag starts, and the index after `]`.
fn caller_tag(b: &[u8], i: usize) -> Option<(usize, usize)> {
    (b.get(i) == Some(&b'[')).then_some(())?;
    let start = i + 1 + b[i + 1..].iter().take_while(|&&c| c == b' ').count();
    matches!(b.get(start), Some(b'T' | b'C')).then_some(())?;
    let close = start
        + 1
        + b[start + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
    (close > start + 1 && b.get(close) == Some(&b']')).then_some((start, close + 1))
}

pub use crate::text::without_control;

/// `func.cold`, `func.isra.0`, `func.constprop.0`, `func.part.0`, `func+0x1/0x2` → `func`
/// (each side of KCSAN's `a / b`, in the byte order of the symbols as the kernel's
/// sym_strcmp() prints them and syzbot's titles keep them: a race is one bug whichever side
/// hit the watchpoint; syscall entry points are then named as syzbot names them).
fn base_name(function: &str) -> String {
    let symbol = |f: &str| f.split(['.', '+']).next().unwrap_or(f).to_string();
    match function
        .contains(' ')
        .then(|| function.split_once(" / "))
        .flatten()
    {
        Some((a, b)) => {
            let (a, b) = (symbol(a), symbol(b));
            let (a, b) = if a <= b { (a, b) } else { (b, a) };
            format!("{} / {}", syscall_name(&a), syscall_name(&b))
        }
        None => syscall_name(&symbol(function)),
    }
}

/// Syscall entry points as syzbot names them: the architecture's wrappers (`__x64_sys_read`,
/// `__arm64_sys_read`, `SyS_read`) are `sys_read`; the internal ones (`__se_sys_read`,
/// `__do_sys_read`) are the call itself, `read`.
fn syscall_name(function: &str) -> String {
    const INTERNAL: &[&str] = &[
        "__se_sys_",
        "__do_sys_",
        "__se_compat_sys_",
        "__do_compat_sys_",
    ];
    const ENTRY: &[&str] = &[
        "__x64_sys_",
        "__ia32_sys_",
        "__arm64_sys_",
        "__x64_compat_sys_",
        "__ia32_compat_sys_",
        "__arm64_compat_sys_",
        "__riscv_sys_",
        "__s390x_sys_",
        "SyS_",
    ];
    if let Some(rest) = ["compat_SyS_", "compat_sys_"]
        .iter()
        .find_map(|p| function.strip_prefix(p))
    {
        return rest.to_string();
    }
    if let Some(rest) = INTERNAL.iter().find_map(|p| function.strip_prefix(p)) {
        return rest.to_string();
    }
    if let Some(rest) = ENTRY.iter().find_map(|p| function.strip_prefix(p)) {
        return format!("sys_{rest}");
    }
    function.to_string()
}

/// The most header lines one symbolized report spends on inlined levels.
const MAX_INLINED_LEVELS: usize = 8;

struct Open {
    format: &'static Format,
    /// The header's captures; a capture next to bytes that were not text (U+FFFD) is a cut
    /// name, dropped (and the report marked corrupted): a title never names half a symbol.
    captures: Vec<Option<String>>,
    garbled: bool,
    caller: Option<String>,
    line: usize,
    /// The report's lines, header first, joined by newlines.
    text: String,
    lines: usize,
}

impl Open {
    fn ended_by(&self, text: &str) -> bool {
        let text = text.trim_start();
        self.lines > 1 && self.format.ends.iter().any(|e| text.starts_with(e))
    }

    fn push(&mut self, text: &str) {
        self.text.push('\n');
        self.text.push_str(text);
        self.lines += 1;
    }
}

/// Feed console lines one at a time; completed reports come out as they close.
#[derive(Default)]
pub struct Parser {
    open: Vec<Open>,
    line_no: usize,
    /// The console carries printk timestamps or caller tags: from then on a line without
    /// them is user space sharing the console, and cannot open a report.
    stamped: bool,
    counting: bool,
}

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn feed(&mut self, line: &str) -> Vec<Report> {
        self.line_no += 1;
        let cleaned = without_control(line);
        let mut line = cleaned.trim_end_matches(['\r', '\n']);
        if line.len() > MAX_LINE {
            let cut = (0..=MAX_LINE)
                .rev()
                .find(|&i| line.is_char_boundary(i))
                .unwrap_or(0);
            line = &line[..cut];
        }
        let (caller, text, stamped) = split_stamped(line);
        self.stamped |= stamped;
        let mut done = Vec::new();
        // Some kernels indent a header by a blank.
        let kernel = stamped || !self.stamped;
        let header = kernel.then(|| formats::header(text.trim_start())).flatten();
        let header = header.filter(|(format, _)| {
            self.owner(caller).is_none_or(|i| {
                let open = &self.open[i];
                // A symbolized header names each inlined level on a line of its own
                // (`… in ip6_dst_store include/net/ip6_fib.h:176 [inline]`, then the
                // function it is inlined in): one report.
                let inlined_level = std::ptr::eq(open.format, *format)
                    && open.lines <= MAX_INLINED_LEVELS
                    && lines(&open.text).all(|l| l.contains(" [inline]"));
                !formats::continues(open.format, format) && !inlined_level
            })
        });
        if let Some((format, caps)) = header {
            // A new header from the same caller closes that caller's open report.
            if let Some(i) = self.owner(caller) {
                done.push(self.close(i));
            }
            if self.open.len() >= MAX_OPEN {
                done.push(self.close(0));
            }
            self.open.push(Open {
                format,
                captures: caps
                    .iter()
                    .map(|m| m.filter(|m| !next_to_garbage(text.trim_start(), m)))
                    .map(|m| m.map(|m| m.as_str().to_string()))
                    .collect(),
                garbled: caps
                    .iter()
                    .flatten()
                    .any(|m| next_to_garbage(text.trim_start(), &m)),
                caller: caller.map(str::to_string),
                line: self.line_no,
                text: text.to_string(),
                lines: 1,
            });
            return done;
        }
        if let Some(i) = self.owner(caller) {
            let open = &mut self.open[i];
            open.push(text);
            if open.ended_by(text) || open.lines >= MAX_REPORT_LINES {
                done.push(self.close(i));
            }
        }
        done
    }

    /// Close every open report (end of console).
    pub fn finish(mut self) -> Vec<Report> {
        (0..self.open.len()).map(|_| self.close(0)).collect()
    }

    /// Close open report `i`: titled and all, or only counted once the caller has all the
    /// reports it keeps ([`Parser::only_count`]).
    fn close(&mut self, i: usize) -> Report {
        let open = self.open.remove(i);
        match self.counting {
            false => finish(open),
            true => Report::lab("", String::new()),
        }
    }

    /// From now on, reports are only counted: the caller keeps no more of them.
    pub fn only_count(&mut self) {
        self.counting = true;
    }

    /// The open report a line from `caller` belongs to.
    fn owner(&self, caller: Option<&str>) -> Option<usize> {
        match caller {
            Some(c) => self
                .open
                .iter()
                .rposition(|o| o.caller.as_deref() == Some(c)),
            None => self.open.iter().rposition(|o| o.caller.is_none()),
        }
    }
}

/// `v` in no more memory than it needs: a kept report holds its frames for the caller's life,
/// and a vector grown frame by frame has up to twice their room.
fn tight<T>(mut v: Vec<T>) -> Vec<T> {
    v.shrink_to_fit();
    v
}

fn finish(open: Open) -> Report {
    let format = open.format;
    let body = open.text.split_once('\n').map_or("", |(_, body)| body);
    let scanned = scan::scan(body);
    // A warning whose file names its kind (`lib/refcount.c`: a refcount bug) is titled by that
    // kind and by its caller: the function in the header is the checker's.
    let header_text = lines(&open.text).next().unwrap_or("");
    let warning_kind = format
        .name
        .starts_with("warning")
        .then(|| formats::warning_kind(header_text))
        .flatten();
    let guilty = match warning_kind {
        Some(_) => Guilty::Stack,
        None => format.guilty,
    };
    let race = (format.name == "kcsan").then(|| race::scan(body)).flatten();
    let header_func = open.captures.iter().skip(1).flatten().last();
    let skip = match warning_kind {
        Some(kind) => kind.skip,
        None => formats::skip_containing(format),
    };
    let mut candidates = candidates(skip, guilty, &scanned, header_func.map(String::as_str));
    // A race is titled by the functions KCSAN's header names, as syzbot titles it, even lock
    // or allocator internals (`do_raw_spin_lock / kfree`); each side's own guilty frame
    // (`eventfd_release / eventfd_signal_mask`) is the first alternate title.
    if let (Some(race), Some(header)) = (&race, header_func) {
        let sides = race::guilty_sides(race);
        let mut named = vec![base_name(header)];
        named.extend((!sides.is_empty()).then(|| base_name(&sides)));
        named.append(&mut candidates);
        candidates = named;
    }
    candidates.dedup();
    let capture = |i: usize| {
        let text = open.captures.get(i).cloned().flatten().unwrap_or_default();
        let text = text.trim();
        if i == 1 {
            formats::renamed(format, text).to_string()
        } else {
            text.to_string()
        }
    };
    let access_word = scanned
        .access
        .as_ref()
        .map(|a| format!("{} ", a.kind))
        .unwrap_or_default();
    let template = match warning_kind {
        Some(kind) if !kind.template.is_empty() => kind.template.to_string(),
        Some(kind) => format!("{} in {{func}}", kind.title),
        None => format.title.to_string(),
    };
    // The template with everything but the function filled in.
    let mut template = template.replace("{access}", &access_word);
    // `{1-}`: the capture as syzbot spells such names, lower case, words joined by `-`.
    if template.contains("{1-}") {
        template = template.replace("{1-}", &capture(1).to_lowercase().replace(' ', "-"));
    }
    for (i, key) in ["{1}", "{2}", "{3}"].into_iter().enumerate() {
        if template.contains(key) {
            template = template.replace(key, &capture(i + 1));
        }
    }
    let make_title = |func: Option<&str>| match func {
        Some(f) => template.replace("{func}", f),
        None => template.replace(" in {func}", "").replace("{func}", ""),
    };
    let needs_func = template.contains("{func}");
    let title = make_title(candidates.first().map(String::as_str));
    let guilty_file = guilty_file(
        candidates.first().map_or("", String::as_str),
        guilty,
        &scanned,
        &open.text,
    );
    let alt_titles: Vec<String> = candidates
        .iter()
        .skip(1)
        .take(2)
        .map(|f| make_title(Some(f)))
        .filter(|t| *t != title)
        .collect();
    let corrupted_reason = if open.garbled {
        Some("a name in the header holds bytes that are not text".to_string())
    } else if needs_func && candidates.is_empty() {
        Some("no stack frame outside the reporting machinery".to_string())
    } else if TIMESTAMP.is_match(&title) {
        Some("the title contains a timestamp (interleaved output)".to_string())
    } else {
        None
    };
    Report {
        signature: signature(&title),
        title,
        alt_titles,
        kind: format.kind,
        format: format.name.to_string(),
        corrupted: corrupted_reason.is_some(),
        corrupted_reason,
        caller: open.caller,
        line: open.line,
        frames: tight(scanned.frames),
        access: scanned.access,
        alloc_frames: tight(scanned.alloc_frames),
        free_frames: tight(scanned.free_frames),
        race,
        suppressed: None,
        at_ms: None,
        guilty_file,
        text: open.text.into_boxed_str().into(),
    }
}

/// The source file to blame: from the frame of `function` (a title's guilty function) on,
/// the file [`paths::blame`] picks: the first that is neither the kernel's shared machinery
/// nor a generic layer that calls into the code at fault. A frame's file is
/// the location printed beside it, or where the function map places it.
fn guilty_file(
    function: &str,
    guilty: Guilty,
    scanned: &scan::Scanned,
    text: &str,
) -> Option<String> {
    // Each stack as (function, printed location): a frame's inlined functions, innermost
    // first, then the frame.
    fn expand<'a>(frames: impl Iterator<Item = &'a Frame>) -> Vec<(&'a str, Option<&'a str>)> {
        frames
            .filter(|f| f.reliable)
            .flat_map(|f| {
                let inlined = f
                    .inlined
                    .iter()
                    .map(|i| (i.function.as_str(), i.location.as_deref()));
                inlined.chain(std::iter::once((
                    f.function.as_str(),
                    f.location.as_deref(),
                )))
            })
            .collect()
    }
    // Whether a printed name is the title's function, without building its title name for
    // every frame (only syscall entry points are renamed).
    let names = |f: &str| {
        let symbol = f.split(['.', '+']).next().unwrap_or(f);
        symbol == function || (symbol.contains("sys_") && base_name(f) == function)
    };
    let main = || {
        let mut main = expand(scanned.rip.iter().chain(&scanned.frames));
        main.extend(
            (scanned.dangling.iter()).map(|i| (i.function.as_str(), i.location.as_deref())),
        );
        main
    };
    // A stall is the looping code's: from the top of the interrupted stack (its title names
    // where the work was entered). A function only the header names (`WARNING …
    // spin_unlock_irqrestore … [inline]`): from the top of the main stack.
    let stall = matches!(guilty, Guilty::Stall | Guilty::Lockup) && !scanned.interrupted.is_empty();
    let stack = if stall {
        expand(scanned.interrupted.iter())
    } else {
        let mut main = main();
        match main.iter().position(|(f, _)| names(f)) {
            Some(at) => main.split_off(at),
            None => [
                &scanned.interrupted,
                &scanned.alloc_frames,
                &scanned.free_frames,
            ]
            .into_iter()
            .find_map(|frames| {
                let mut stack = expand(frames.iter());
                let at = stack.iter().position(|(f, _)| names(f))?;
                Some(stack.split_off(at))
            })
            .unwrap_or(main),
        }
    };
    // A frame the map does not place lies outside the machinery's directories: code at
    // fault whose file this console does not tell. Where the stack prints locations, a frame
    // without one has no line information (assembly entry code) and is passed over.
    let printed = stack.iter().any(|(_, location)| location.is_some());
    let mut files = stack
        .into_iter()
        .filter_map(|(function, location)| match location {
            Some(location) => Some(Some(paths::file_of_location(location))),
            None => match paths::file_of(function) {
                Some(file) => Some(Some(file)),
                None if printed => None,
                None => Some(None),
            },
        })
        .peekable();
    if files.peek().is_some() {
        return paths::blame(files).map(str::to_string);
    }
    // No frame with a file: the files the report's text names, in order (`at
    // kernel/locking/lockdep.c:3344`, a bare `path:line`).
    static FILE_LINE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?:^|\s)\(?([A-Za-z0-9_./-]+\.(?:c|h|S|rs)):\d+").unwrap());
    let named = FILE_LINE
        .captures_iter(text)
        .map(|c| Some(paths::file_of_location(c.get(1).map_or("", |m| m.as_str()))));
    paths::blame(named).map(str::to_string)
}

/// Whether a header capture touches a character that stands for bytes that were not text.
fn next_to_garbage(text: &str, m: &regex::Match) -> bool {
    let before = text[..m.start()].chars().next_back();
    let after = text[m.end()..].chars().next();
    [before, after].contains(&Some(char::REPLACEMENT_CHARACTER))
        || m.as_str().contains(char::REPLACEMENT_CHARACTER)
}

/// The guilty function first, then alternates, as titles name them.
fn candidates(
    own_skip: &[&str],
    guilty: Guilty,
    scanned: &scan::Scanned,
    header_func: Option<&str>,
) -> Vec<String> {
    let kept = |f: &&Frame| !own_skip.iter().any(|s| f.function.contains(s));
    // The guilty frame and two alternates are all a title needs.
    let stack = |frames: &[Frame]| -> Vec<String> {
        frames::candidates(frames)
            .filter(kept)
            .take(4)
            .map(|f| base_name(&f.function))
            .collect()
    };
    let not_machinery = |f: &str| !frames::is_machinery(f);
    let first = |found: Option<String>, rest: &[Frame]| -> Vec<String> {
        found
            .map(|f| base_name(&f))
            .into_iter()
            .chain(stack(rest))
            .collect()
    };
    match guilty {
        Guilty::None => vec![],
        // A header naming an address (`corrupted in: ffffffff8343632e`) names no function.
        Guilty::Header => first(
            header_func
                .filter(|f| not_machinery(f) && !f.bytes().all(|c| c.is_ascii_hexdigit()))
                .map(str::to_string),
            &scanned.frames,
        ),
        Guilty::Rip => first(
            scanned
                .rip
                .as_ref()
                .map(|r| r.function.clone())
                .filter(|f| not_machinery(f)),
            &scanned.frames,
        ),
        Guilty::Stack => stack(&scanned.frames),
        Guilty::Trace => stack(&scanned.frames[scanned.call_trace.min(scanned.frames.len())..]),
        Guilty::Sites => scanned
            .sites
            .iter()
            .filter(|f| !frames::is_skipped_in_stack(f))
            .map(|f| base_name(f))
            .chain(stack(&scanned.frames))
            .collect(),
        Guilty::Stall | Guilty::Lockup => {
            let looping: Vec<Frame> = match guilty {
                Guilty::Stall => scanned.interrupted.clone(),
                _ => scanned
                    .rip
                    .iter()
                    .chain(&scanned.frames[scanned.rip_at.min(scanned.frames.len())..])
                    .cloned()
                    .collect(),
            };
            let looping: Vec<&str> = guilty::names(&looping)
                .into_iter()
                .filter(|f| {
                    !frames::is_skipped_in_stack(f)
                        && !f.contains("rcu")
                        && !f.contains("apic_timer")
                })
                .collect();
            first(guilty::stall(&looping), &scanned.frames)
        }
        Guilty::Entry => {
            let stack: Vec<&str> = guilty::names(&scanned.frames)
                .into_iter()
                .filter(|f| !frames::is_skipped_in_stack(f))
                .collect();
            first(guilty::stall(&stack), &scanned.frames)
        }
        Guilty::Hang => {
            let trace = &scanned.frames[scanned.call_trace.min(scanned.frames.len())..];
            let waiting: Vec<&str> = guilty::names(trace)
                .into_iter()
                .filter(|f| not_machinery(f))
                .collect();
            first(guilty::hang(&waiting), trace)
        }
    }
}

impl Report {
    /// A report the lab itself makes when the machine, not the kernel, ended the run
    /// ("no output from test machine"): titled and deduplicated like the kernel's.
    pub fn lab(title: &str, text: String) -> Report {
        Report {
            title: title.to_string(),
            alt_titles: vec![],
            kind: ReportType::Lab,
            format: "lab".into(),
            corrupted: false,
            corrupted_reason: None,
            caller: None,
            line: 0,
            frames: vec![],
            access: None,
            alloc_frames: vec![],
            free_frames: vec![],
            signature: signature(title),
            text,
            race: None,
            suppressed: None,
            at_ms: None,
            guilty_file: None,
        }
    }
}

/// Dedup key: the title with numbers that vary between runs normalized away.
pub fn signature(title: &str) -> String {
    static NUMBERS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"0x[0-9a-f]+|\b\d+\b").unwrap());
    let normal = NUMBERS.replace_all(title, "N");
    hex::encode(&Sha256::digest(normal.as_bytes())[..8])
}

/// Most reports kept from one console (a kernel falling over can print thousands).
pub const MAX_REPORTS: usize = 100;

/// Longest line read whole from a console file; a longer one comes in pieces (the parser
/// looks at the first MAX_LINE bytes of a line anyway).
const MAX_READ: usize = 64 * 1024;

/// Parse a console as a stream, in bounded memory whatever its size: the first
/// [`MAX_REPORTS`] reports, and how many more there were.
pub fn parse_reader(mut reader: impl std::io::BufRead) -> std::io::Result<(Vec<Report>, usize)> {
    let mut parser = Parser::new();
    let (mut reports, mut more) = (Vec::new(), 0);
    let mut keep = |done: Vec<Report>, reports: &mut Vec<Report>| {
        for r in done {
            if reports.len() < MAX_REPORTS {
                reports.push(r);
            } else {
                more += 1;
            }
        }
    };
    let mut buf = Vec::new();
    // Whether the piece read is the tail of a line cut at MAX_READ: never a line of its own.
    let mut continued = false;
    loop {
        buf.clear();
        // Like read_until(b'\n'), never holding more than MAX_READ bytes.
        let mut end = crate::text::End::More;
        loop {
            let available = reader.fill_buf()?;
            if available.is_empty() {
                break;
            }
            let (take, e) = crate::text::line_piece(available, MAX_READ - buf.len());
            buf.extend_from_slice(&available[..take]);
            reader.consume(take);
            end = e;
            if end != crate::text::End::More {
                break;
            }
        }
        if buf.is_empty() {
            break;
        }
        if !continued {
            keep(parser.feed(&crate::text::decode(&buf)), &mut reports);
            if reports.len() >= MAX_REPORTS {
                parser.only_count();
            }
        }
        continued = end == crate::text::End::Cut;
    }
    keep(parser.finish(), &mut reports);
    reports.sort_by_key(|r| r.line);
    Ok((reports, more))
}

/// Parse a whole console.
pub fn parse(text: &str) -> Vec<Report> {
    let mut parser = Parser::new();
    let mut reports = Vec::new();
    for line in lines(text) {
        reports.extend(parser.feed(line));
    }
    reports.extend(parser.finish());
    reports.sort_by_key(|r| r.line);
    reports
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    fn corpus(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/corpus/console")
            .join(name);
        String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned()
    }

    #[test]
    fn a_kcsan_race_is_titled_with_its_functions_in_order_and_keeps_both_sides() {
        // Either side may hit the watchpoint: the title is the same race both ways.
        let console = |a: &str, b: &str| {
            format!(
                "[ 10.0][ T9] ==================================================================\n\
                 [ 10.0][ T9] BUG: KCSAN: data-race in {a}+0x1/0x2 / {b}.constprop.0+0x3/0x4\n\
                 [ 10.0][ T9] \n\
                 [ 10.0][ T9] write to 0xffff88800a1b2c30 of 4 bytes by task 77 on cpu 1:\n\
                 [ 10.0][ T9]  {a}+0x1/0x2\n\
                 [ 10.0][ T9]  x64_sys_call+0x9/0x10\n\
                 [ 10.0][ T9] \n\
                 [ 10.0][ T9] read to 0xffff88800a1b2c30 of 4 bytes by task 9 on cpu 0:\n\
                 [ 10.0][ T9]  {b}.constprop.0+0x3/0x4\n\
                 [ 10.0][ T9] \n\
                 [ 10.0][ T9] value changed: 0x00000000 -> 0x00000001\n\
                 [ 10.0][ T9] \n\
                 [ 10.0][ T9] Reported by Kernel Concurrency Sanitizer on:\n\
                 [ 10.0][ T9] ==================================================================\n"
            )
        };
        let one = parse(&console("ep_poll_callback", "dma_buf_poll"));
        let other = parse(&console("dma_buf_poll", "ep_poll_callback"));
        assert_eq!(one.len(), 1);
        assert_eq!(
            one[0].title,
            "KCSAN: data-race in dma_buf_poll / ep_poll_callback"
        );
        assert_eq!(other[0].title, one[0].title);
        assert_eq!(other[0].signature, one[0].signature);
        // Ordered by symbol, as the kernel prints them, before syscalls are renamed.
        let syscall = parse(&console(
            "io_eventfd_unregister",
            "__x64_sys_io_uring_enter",
        ));
        assert_eq!(
            syscall[0].title,
            "KCSAN: data-race in sys_io_uring_enter / io_eventfd_unregister"
        );
        let race = one[0].race.as_ref().unwrap();
        assert_eq!(race.accesses.len(), 2);
        assert_eq!(race.accesses[0].frames[0].function, "ep_poll_callback");
        assert_eq!(
            race.accesses[1].frames[0].function,
            "dma_buf_poll.constprop.0"
        );
        assert_eq!(
            race.value_changed.as_deref(),
            Some("0x00000000 -> 0x00000001")
        );
        assert!(one[0]
            .text
            .contains("value changed: 0x00000000 -> 0x00000001"));
    }

    #[test]
    fn split_timestamp_and_caller() {
        assert_eq!(
            split("[    6.283440][   T39] BUG: x"),
            (Some("T39"), "BUG: x")
        );
        assert_eq!(split("[    4.366592] Kernel panic"), (None, "Kernel panic"));
        assert_eq!(split("[    1.0][    C1] hi"), (Some("C1"), "hi"));
        assert_eq!(split("plain"), (None, "plain"));
        // A capturing tool's clock before the kernel's line, and a syslog level.
        assert_eq!(
            split("2018/01/09 14:28:48 [   33.900000] BUG: x"),
            (None, "BUG: x")
        );
        assert_eq!(split("<4>[   33.9][  T7] BUG: x"), (Some("T7"), "BUG: x"));
        // User space writing on the serial line before the kernel's timestamp.
        assert_eq!(split("-wouldblock[  347.42] Oops: x"), (None, "Oops: x"));
    }

    #[test]
    fn untimestamped_lines_of_a_timestamped_console_are_not_the_kernel() {
        // A test program printing a report-like line on the serial console opens nothing
        // and does not cut the kernel's open report short.
        let console = "\
[    1.0] WARNING: CPU: 0 PID: 1 at fs/a.c:1 alpha_fn+0x1/0x10
[    1.1] Call Trace:
BUG: KASAN: use-after-free in fake_fn+0x1/0x2
[    1.1]  alpha_caller+0x1/0x10
[    1.2] ---[ end trace 0000000000000000 ]---
WARNING: CPU: 1 PID: 2 at fs/b.c:2 beta_fn+0x1/0x10
";
        let reports = parse(console);
        assert_eq!(reports.len(), 1, "{reports:#?}");
        assert_eq!(reports[0].title, "WARNING in alpha_fn");
        assert_eq!(reports[0].frames[0].function, "alpha_caller");
        // A console without any timestamps is all the kernel's.
        let bare = parse("WARNING: CPU: 1 PID: 2 at fs/b.c:2 beta_fn+0x1/0x10\n");
        assert_eq!(bare[0].title, "WARNING in beta_fn");
    }

    #[test]
    fn a_panic_the_report_causes_stays_in_it() {
        let console = "\
[    1.0][   T10] WARNING: CPU: 0 PID: 10 at fs/a.c:1 alpha_fn+0x1/0x10
[    1.0][   T10] Kernel panic - not syncing: kernel: panic_on_warn set ...
[    1.1][   T10] Call Trace:
[    1.1][   T10]  alpha_caller+0x1/0x10
";
        let reports = parse(console);
        assert_eq!(reports.len(), 1, "{reports:#?}");
        assert_eq!(reports[0].title, "WARNING in alpha_fn");
        assert_eq!(reports[0].frames[0].function, "alpha_caller");
    }

    #[test]
    fn the_lab_kcsan_builds_report_keeps_both_sides_of_the_race() {
        // baseline+kcsan × eventfd-uring-race: two races of io_uring's eventfd registration.
        let reports = parse(&corpus("baseline-kcsan-io-uring.log"));
        assert_eq!(reports.len(), 2, "{reports:#?}");
        let race = reports[0].race.as_ref().unwrap();
        let sides: Vec<(&str, u64, &str, u32, &str)> = race
            .accesses
            .iter()
            .map(|a| {
                (
                    a.access.as_str(),
                    a.size,
                    a.by.as_str(),
                    a.cpu,
                    a.frames[0].function.as_str(),
                )
            })
            .collect();
        assert_eq!(
            sides,
            [
                ("write", 2, "task 39", 0, "io_eventfd_unregister"),
                ("read", 1, "task 40", 1, "__x64_sys_io_uring_enter"),
            ]
        );
        assert_eq!(race.value_changed.as_deref(), Some("0x10 -> 0x00"));
        let depth: Vec<usize> = race.accesses.iter().map(|a| a.frames.len()).collect();
        assert_eq!(depth, [5, 4]);
    }

    #[test]
    fn a_race_with_the_allocator_is_titled_by_its_header_and_its_callers_follow() {
        // eventfd-no-kref+kcsan: SLUB asserts nothing touches an object it frees; the header
        // names the lock and kfree (the title, as syzbot's), each side's caller the alternate.
        let reports = parse(&corpus("eventfd-no-kref-kcsan-uring.log"));
        assert!(reports[0]
            .text
            .contains("BUG: KCSAN: assert: race in do_raw_spin_lock / kfree"));
        assert_eq!(
            reports[0].title,
            "KCSAN: assert: race in do_raw_spin_lock / kfree"
        );
        assert_eq!(
            reports[0].alt_titles[0],
            "KCSAN: assert: race in eventfd_release / eventfd_signal_mask"
        );
        let race = reports[0].race.as_ref().unwrap();
        assert_eq!(race.accesses[1].access, "assert no accesses");
        assert_eq!(race.accesses[1].size, 128);
        assert_eq!(race.value_changed, None);
    }

    #[test]
    fn kasan_report_has_access_and_alloc_free_stacks() {
        let reports = parse(&corpus("eventfd-no-kref-uring.log"));
        let r = &reports[0];
        let a = r.access.as_ref().unwrap();
        assert_eq!((a.kind.as_str(), a.size), ("Read", 8));
        assert!(
            !r.alloc_frames.is_empty() && !r.free_frames.is_empty(),
            "{r:#?}"
        );
        assert_eq!(r.kind, ReportType::MemorySafety);
    }

    #[test]
    fn interleaved_callers_are_kept_apart() {
        let console = "\
[    1.0][   T10] WARNING: CPU: 0 PID: 10 at fs/a.c:1 alpha_fn+0x1/0x10
[    1.0][   T20] WARNING: CPU: 1 PID: 20 at fs/b.c:2 beta_fn+0x1/0x10
[    1.1][   T10] Call Trace:
[    1.1][   T20] Call Trace:
[    1.1][   T10]  alpha_caller+0x1/0x10
[    1.1][   T20]  beta_caller+0x1/0x10
[    1.2][   T20] ---[ end trace 0000000000000000 ]---
[    1.2][   T10] ---[ end trace 0000000000000000 ]---
";
        let reports = parse(console);
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[0].title, "WARNING in alpha_fn");
        assert_eq!(reports[0].frames[0].function, "alpha_caller");
        assert_eq!(reports[1].title, "WARNING in beta_fn");
        assert_eq!(reports[1].frames[0].function, "beta_caller");
        assert_eq!(reports[0].alt_titles, ["WARNING in alpha_caller"]);
    }

    #[test]
    fn truncated_report_without_stack_is_corrupted() {
        let reports =
            parse("[ 1.0][ T1] BUG: sleeping function called from invalid context at x.c:1\n");
        assert_eq!(reports.len(), 1);
        assert!(reports[0].corrupted);
        assert_eq!(
            reports[0].title,
            "BUG: sleeping function called from invalid context"
        );
    }

    #[test]
    fn signatures_ignore_varying_numbers_only() {
        assert_eq!(
            signature("kernel panic: Attempted to kill init! exitcode=0x00000009"),
            signature("kernel panic: Attempted to kill init! exitcode=0x0000000b")
        );
        assert_ne!(
            signature("WARNING in dma_buf_poll"),
            signature("WARNING in dma_buf_release")
        );
    }

    proptest::proptest! {
        /// Untrusted console bytes: any lines, report headers mixed in, never a panic, and
        /// every report keeps a title and a signature.
        #[test]
        fn arbitrary_consoles_parse(lines in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::string::string_regex("[ -~\\t]{0,120}").unwrap(),
                proptest::string::string_regex("(<[0-7]>)?[a-z#-]{0,6}\\[ *[0-9]{1,3}\\.[0-9]{6}\\](\\[ *[TC][0-9]{1,3}\\])? (BUG: KASAN: [a-z-]{1,20} in [a-z_]{1,12}\\+0x1/0x2|BUG: KCSAN: data-race in [a-z_]{1,9} / [a-z_]{1,9}|BUG: KFENCE: [a-z -]{1,20} in [a-z_]{1,9}|WARNING: CPU: 0 PID: 1 at a.c:1 [a-z_]{1,9}\\+0x1/0x2|Unable to handle kernel NULL pointer dereference at virtual address 0|Internal error: Oops: 0 \\[#1\\]|BUG: kernel NULL pointer dereference, address: 0|Oops: 0000 \\[#1\\] SMP|pc : [a-z_]{1,9}\\+0x[0-9a-f]{1,3}/0x[0-9a-f]{1,3}|RIP: 0010:[a-z_]{1,9}\\+0x1/0x2|\\[<[0-9a-f]{8}>\\] \\([a-z_]{1,9}\\) from \\[<[0-9a-f]{8}>\\] \\([a-z_]{1,9}\\+0x1/0x2\\)|Call Trace:| (\\? )?[a-z_.]{1,12}\\+0x[0-9a-f]{1,3}/0x[0-9a-f]{1,3}( \\[[a-z_]{1,6}\\])?( \\(P\\))?( [a-z/]{1,9}\\.c:[0-9]{1,3})?|---\\[ end trace [0-9]+ \\]---|Read of size [0-9] at addr [0-9a-f]{4} by task x)").unwrap(),
                proptest::collection::vec(proptest::num::u8::ANY, 0..64)
                    .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            ],
            0..200,
        )) {
            let text = lines.join("\n");
            for r in parse(&text) {
                proptest::prop_assert!(!r.title.is_empty());
                proptest::prop_assert_eq!(r.signature.len(), 16);
            }
        }
    }

    fn report_keys(reports: &[Report]) -> Vec<(String, String, Vec<String>)> {
        reports
            .iter()
            .map(|r| {
                let frames = r.frames.iter().map(|f| f.function.clone()).collect();
                (r.title.clone(), r.signature.clone(), frames)
            })
            .collect()
    }

    /// Control sequences in every form a console carries them, as bytes: 7-bit escapes,
    /// 8-bit CSI raw (0x9b) and UTF-8-encoded (C2 9B), other C0 and C1 controls raw and
    /// encoded, OSC strings.
    const CONTROL_BYTES: &[&[u8]] = &[
        b"\x00",
        b"\x01",
        b"\x07",
        b"\x08",
        b"\x0b",
        b"\x0c",
        b"\x0e",
        b"\x1a",
        b"\x1f",
        b"\x7f",
        b"\x1b[0m",
        b"\x1b[31;1m",
        b"\x1b[?25h\x1b[K",
        b"\x1b(B",
        b"\x1b]0;t\x07",
        b"\x9b1;31m",
        b"\x9b0K",
        b"\xc2\x9b1m",
        b"\xc2\x9b?25l",
        b"\x85",
        b"\x9d0;t\x9c",
        b"\xc2\x85",
        b"\xc2\x9d0;t\xc2\x9c",
        b"\xc2\x80",
        b"\x1b]8;;x\x1b\\",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]
        /// Any control sequence inserted anywhere (between any two characters of any line)
        /// of a captured console, and its lines ended by LF, CRLF or a bare CR, leaves every
        /// report's title, signature and frames as they were.
        #[test]
        fn control_sequences_anywhere_and_any_line_end_change_nothing(seed in proptest::num::u64::ANY) {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
            let mut state = seed | 1;
            let mut next = move || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            };
            for sub in ["console", "foreign"] {
                for entry in std::fs::read_dir(dir.join(sub)).unwrap().flatten() {
                    let path = entry.path();
                    if path.extension().is_some_and(|e| e == "expected") {
                        continue;
                    }
                    let clean = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
                    let mut dirty = Vec::new();
                    for line in lines(&clean) {
                        let bounds: Vec<usize> = (0..=line.len()).filter(|&i| line.is_char_boundary(i)).collect();
                        let mut at: Vec<usize> = (0..1 + next() % 3)
                            .map(|_| bounds[(next() % bounds.len() as u64) as usize])
                            .collect();
                        at.sort_unstable();
                        let mut from = 0;
                        for i in at {
                            dirty.extend_from_slice(&line.as_bytes()[from..i]);
                            dirty.extend_from_slice(CONTROL_BYTES[(next() % CONTROL_BYTES.len() as u64) as usize]);
                            from = i;
                        }
                        dirty.extend_from_slice(&line.as_bytes()[from..]);
                        dirty.extend_from_slice([&b"\n"[..], b"\r\n", b"\r"][(next() % 3) as usize]);
                    }
                    let (got, _) = parse_reader(&dirty[..]).unwrap();
                    let (want, _) = parse_reader(clean.as_bytes()).unwrap();
                    proptest::prop_assert_eq!(report_keys(&got), report_keys(&want), "{}", path.display());
                }
            }
        }
    }

    /// A byte that is not text inside a function name of the header never yields a title
    /// naming half a symbol: the report is titled by a whole frame and marked corrupted.
    #[test]
    fn a_garbled_function_name_is_never_a_title() {
        for (file, name) in [
            ("epoll-unpinned-poll-dmabuf.log", "dma_buf_poll"),
            ("eventfd-no-kref-uring.log", "eventfd_signal_mask"),
        ] {
            let bytes = std::fs::read(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/corpus/console")
                    .join(file),
            )
            .unwrap();
            for at in 1..name.len() {
                let garbled = [&name.as_bytes()[..at], b"\xff", &name.as_bytes()[at..]].concat();
                let text = String::from_utf8_lossy(&bytes);
                let dirty = bytes
                    .split(|&b| b == b'\n')
                    .map(|l| {
                        let s = String::from_utf8_lossy(l);
                        match s.contains(name) {
                            true => s
                                .replace(name, &String::from_utf8_lossy(&garbled))
                                .into_bytes(),
                            false => l.to_vec(),
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(&b'\n');
                let (reports, _) = parse_reader(&dirty[..]).unwrap();
                let clean = parse(&text);
                for r in &reports {
                    let func = r.title.rsplit(' ').next().unwrap();
                    assert!(
                        !name.starts_with(func) || func == name,
                        "{file} cut at {at}: {}",
                        r.title
                    );
                    assert!(!r.title.contains('\u{fffd}'), "{}", r.title);
                }
                assert_eq!(reports.len(), clean.len(), "{file}");
            }
        }
    }

    #[test]
    fn a_stream_gives_what_the_text_gives_and_keeps_at_most_the_cap() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/console");
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let bytes = std::fs::read(entry.path()).unwrap();
            let (streamed, more) = parse_reader(&bytes[..]).unwrap();
            assert_eq!(more, 0);
            assert_eq!(
                report_keys(&streamed),
                report_keys(&parse(&String::from_utf8_lossy(&bytes))),
                "{}",
                entry.path().display()
            );
        }
        let many = "[    1.0] WARNING: CPU: 0 PID: 1 at a.c:1 f+0x1/0x2\n[    1.1] ---[ end trace 0 ]---\n"
            .repeat(MAX_REPORTS + 7);
        let (reports, more) = parse_reader(many.as_bytes()).unwrap();
        assert_eq!((reports.len(), more), (MAX_REPORTS, 7));
    }

    #[test]
    fn garbage_never_panics() {
        let mut junk = String::new();
        for i in 0..2000u32 {
            junk.push(char::from_u32((i * 7919) % 0x2FFF).unwrap_or('?'));
            if i % 37 == 0 {
                junk.push_str("\nBUG: KASAN: x in \n[ 1.0][ T1] ");
            }
        }
        junk.push_str(&"A".repeat(5000));
        let _ = parse(&junk);
    }
}
