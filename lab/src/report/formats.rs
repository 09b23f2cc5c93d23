//! The report formats the kernel prints, as a table: the header that opens a report, its
//! type, how its title is formed (syzkaller's conventions), where its guilty function comes
//! from, and what closes it. Written from the kernel's printing code: mm/kasan/report.c,
//! mm/kfence/report.c, lib/ubsan.c, kernel/panic.c (__warn), lib/bug.c, kernel/locking/
//! lockdep.c, kernel/sched/core.c (__might_resched, __schedule_bug), arch/x86/mm/fault.c,
//! arch/x86/kernel/traps.c, kernel/watchdog.c, kernel/rcu/tree_stall.h, kernel/hung_task.c.

use regex::Regex;
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportType {
    MemorySafety,
    Warning,
    Locking,
    Atomicity,
    Crash,
    Hang,
    Panic,
    Lab,
}

/// Where the function in the title comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guilty {
    /// The first call-trace frame that is not reporting machinery.
    Stack,
    /// The function named in the header (capture `func`), unless it is machinery.
    Header,
    /// The `RIP: 0010:` function of the register dump, else the stack.
    Rip,
    /// No function: the title is complete as formed.
    None,
    /// Lockdep's lock sites (`at:` lines: the lock taken, then the one held), then the stack.
    Sites,
    /// A stall or lockup: the code the timer interrupt found looping, named by where it was
    /// entered (see `guilty::stall`).
    Stall,
    /// The first frame of the call trace outside the machinery, ignoring frames printed
    /// before it (`Preemption disabled at:`).
    Trace,
    /// A lockup: the same as a stall, from the register dump's instruction pointer on.
    Lockup,
    /// Where the code at fault was entered (see `guilty::stall`) in the call trace: a
    /// stack overflow is about the path that went deep, not the frame that hit the end.
    Entry,
    /// A hung task: where it waits, past the waiting primitives (see `guilty::hang`).
    Hang,
}

pub struct Format {
    pub name: &'static str,
    pub kind: ReportType,
    /// Literals a header of this format starts with: lines without one skip the regex.
    pub prefixes: &'static [&'static str],
    pub header: LazyLock<Regex>,
    /// `{1}`.. are header captures, `{access}` Read/Write, `{func}` the guilty function.
    pub title: &'static str,
    pub guilty: Guilty,
    /// A line that ends the report (after the header).
    pub ends: &'static [&'static str],
}

macro_rules! re {
    ($s:expr) => {
        LazyLock::new(|| Regex::new($s).unwrap())
    };
}

const END_TRACE: &[&str] = &["---[ end trace"];
const END_KASAN: &[&str] = &["=================================================================="];
const END_STACK: &[&str] = &["</TASK>", "---[ end trace"];

/// Checked in order: the first header that matches a line opens a report of that format.
pub static FORMATS: [Format; 55] = [
    Format {
        name: "kasan",
        kind: ReportType::MemorySafety,
        prefixes: &["BUG: KASAN: "],
        header: re!(r"^BUG: KASAN: ([a-z0-9\- ]+?) in (?P<func>[A-Za-z0-9_.$]+)"),
        title: "KASAN: {1} {access}in {func}",
        guilty: Guilty::Header,
        ends: END_KASAN,
    },
    Format {
        name: "kfence",
        kind: ReportType::MemorySafety,
        prefixes: &["BUG: KFENCE: "],
        header: re!(r"^BUG: KFENCE: ([a-z\- ]+?) in (?P<func>[A-Za-z0-9_.$]+)"),
        title: "KFENCE: {1} in {func}",
        guilty: Guilty::Header,
        ends: END_KASAN,
    },
    Format {
        name: "kcsan",
        kind: ReportType::MemorySafety,
        prefixes: &["BUG: KCSAN: "],
        header: re!(
            r"^BUG: KCSAN: ([a-z\-]+(?:: [a-z\-]+)?) in (?P<func>[A-Za-z0-9_.$]+(?:\+0x[0-9a-f]+/0x[0-9a-f]+)?(?: / [A-Za-z0-9_.$]+)?)"
        ),
        title: "KCSAN: {1} in {func}",
        guilty: Guilty::Header,
        ends: END_KASAN,
    },
    Format {
        name: "kmsan",
        kind: ReportType::MemorySafety,
        prefixes: &["BUG: KMSAN: "],
        header: re!(r"^BUG: KMSAN: ([a-z\-]+) in (?P<func>[A-Za-z0-9_.$]+)"),
        title: "KMSAN: {1} in {func}",
        guilty: Guilty::Header,
        ends: &["====================================================="],
    },
    Format {
        name: "ubsan",
        kind: ReportType::MemorySafety,
        prefixes: &["UBSAN: "],
        header: re!(r"^UBSAN: ([A-Za-z0-9\- ]+?) in \S"),
        title: "UBSAN: {1-} in {func}",
        guilty: Guilty::Stack,
        ends: &["================================================================================"],
    },
    Format {
        name: "rcu-usage",
        kind: ReportType::Locking,
        prefixes: &[
            "WARNING: ",
            "BUG: ",
            "INFO: ",
            "[ WARNING: ",
            "[ BUG: ",
            "[ INFO: ",
        ],
        header: re!(r"^\[?\s*(WARNING|INFO): suspicious RCU usage"),
        title: "{1}: suspicious RCU usage in {func}",
        guilty: Guilty::Stack,
        ends: END_STACK,
    },
    Format {
        name: "lockdep-circular",
        kind: ReportType::Locking,
        prefixes: &[
            "WARNING: ",
            "BUG: ",
            "INFO: ",
            "[ WARNING: ",
            "[ BUG: ",
            "[ INFO: ",
        ],
        header: re!(r"^\[?\s*(?:WARNING|INFO): possible circular locking dependency detected"),
        title: "possible deadlock in {func}",
        guilty: Guilty::Sites,
        ends: END_STACK,
    },
    Format {
        name: "lockdep-recursive",
        kind: ReportType::Locking,
        prefixes: &[
            "WARNING: ",
            "BUG: ",
            "INFO: ",
            "[ WARNING: ",
            "[ BUG: ",
            "[ INFO: ",
        ],
        header: re!(r"^\[?\s*(?:WARNING|INFO): possible recursive locking detected"),
        title: "possible deadlock in {func}",
        guilty: Guilty::Sites,
        ends: END_STACK,
    },
    Format {
        name: "lockdep-inconsistent",
        kind: ReportType::Locking,
        prefixes: &[
            "WARNING: ",
            "BUG: ",
            "INFO: ",
            "[ WARNING: ",
            "[ BUG: ",
            "[ INFO: ",
        ],
        header: re!(r"^\[?\s*(?:WARNING|INFO): inconsistent lock state"),
        title: "inconsistent lock state in {func}",
        guilty: Guilty::Sites,
        ends: END_STACK,
    },
    Format {
        name: "lockdep-irq-unsafe",
        kind: ReportType::Locking,
        prefixes: &[
            "WARNING: ",
            "BUG: ",
            "INFO: ",
            "[ WARNING: ",
            "[ BUG: ",
            "[ INFO: ",
        ],
        header: re!(
            r"^\[?\s*(?:WARNING|INFO): (?:HARD|SOFT)IRQ-(?:safe|READ-safe) -> (?:HARD|SOFT)IRQ-(?:unsafe|READ-unsafe) lock order detected"
        ),
        title: "possible deadlock in {func}",
        guilty: Guilty::Stack,
        ends: END_STACK,
    },
    Format {
        name: "lockdep-wait-context",
        kind: ReportType::Locking,
        prefixes: &[
            "[ BUG: Invalid wait",
            "BUG: Invalid wait",
            "[BUG: Invalid wait",
        ],
        header: re!(r"^\[?\s*BUG: Invalid wait context\s*\]?"),
        title: "BUG: Invalid wait context in {func}",
        guilty: Guilty::Stack,
        ends: END_STACK,
    },
    Format {
        name: "lockdep-unlock-balance",
        kind: ReportType::Locking,
        prefixes: &[
            "WARNING: ",
            "BUG: ",
            "INFO: ",
            "[ WARNING: ",
            "[ BUG: ",
            "[ INFO: ",
        ],
        header: re!(r"^\[?\s*(WARNING|BUG): bad unlock balance detected!"),
        title: "{1}: bad unlock balance in {func}",
        guilty: Guilty::Stack,
        ends: END_STACK,
    },
    Format {
        name: "lockdep-held-on-exit",
        kind: ReportType::Locking,
        prefixes: &[
            "WARNING: ",
            "BUG: ",
            "INFO: ",
            "[ WARNING: ",
            "[ BUG: ",
            "[ INFO: ",
        ],
        header: re!(r"^\[?\s*(WARNING|BUG): lock held when returning to user space!"),
        title: "{1}: lock held when returning to user space in {func}",
        guilty: Guilty::Sites,
        ends: END_STACK,
    },
    Format {
        name: "refcount",
        kind: ReportType::MemorySafety,
        prefixes: &["refcount_t: "],
        header: re!(r"^refcount_t: ([a-z\-]+)"),
        title: "WARNING: refcount bug in {func}",
        guilty: Guilty::Stack,
        ends: END_TRACE,
    },
    Format {
        name: "warning-new",
        kind: ReportType::Warning,
        prefixes: &["WARNING: "],
        header: re!(r"^WARNING: \S+:\d+ at (?P<func>[A-Za-z0-9_.$]+)\+0x"),
        title: "WARNING in {func}",
        guilty: Guilty::Header,
        ends: END_TRACE,
    },
    Format {
        name: "non-static-key",
        kind: ReportType::Locking,
        prefixes: &["INFO: trying to register non-static key"],
        header: re!(r"^INFO: trying to register non-static key"),
        title: "INFO: trying to register non-static key in {func}",
        guilty: Guilty::Stack,
        ends: END_STACK,
    },
    Format {
        name: "workqueue-leak",
        kind: ReportType::Locking,
        prefixes: &["BUG: workqueue leaked lock"],
        header: re!(r"^BUG: workqueue leaked lock or atomic"),
        title: "BUG: workqueue leaked lock or atomic in {func}",
        guilty: Guilty::Sites,
        ends: END_STACK,
    },
    Format {
        name: "held-lock-freed",
        kind: ReportType::Locking,
        prefixes: &[
            "WARNING: ",
            "BUG: ",
            "INFO: ",
            "[ WARNING: ",
            "[ BUG: ",
            "[ INFO: ",
        ],
        header: re!(r"^\[?\s*(WARNING|BUG): held lock freed!"),
        title: "{1}: held lock freed in {func}",
        guilty: Guilty::Sites,
        ends: END_STACK,
    },
    Format {
        name: "locks-held",
        kind: ReportType::Locking,
        prefixes: &[
            "WARNING: ",
            "BUG: ",
            "INFO: ",
            "[ WARNING: ",
            "[ BUG: ",
            "[ INFO: ",
        ],
        header: re!(r"^\[?\s*(WARNING|BUG): \S+ still has locks held!"),
        title: "{1}: still has locks held in {func}",
        guilty: Guilty::Sites,
        ends: END_STACK,
    },
    Format {
        name: "stack-regs",
        kind: ReportType::Warning,
        prefixes: &["WARNING: kernel stack regs"],
        header: re!(r"^WARNING: kernel stack regs at\s+\S+ in \S+ has bad '(\w+)' value"),
        title: "WARNING: kernel stack regs has bad '{1}' value",
        guilty: Guilty::None,
        ends: END_STACK,
    },
    Format {
        name: "stack-frame-pointer",
        kind: ReportType::Warning,
        prefixes: &["WARNING: kernel stack frame"],
        header: re!(r"^WARNING: kernel stack frame pointer at\s+\S+ in \S+ has bad value"),
        title: "WARNING: kernel stack frame pointer has bad value",
        guilty: Guilty::None,
        ends: END_STACK,
    },
    Format {
        name: "usercopy",
        kind: ReportType::MemorySafety,
        prefixes: &["usercopy: "],
        header: re!(r"^usercopy: [Kk]ernel memory (?:overwrite|exposure) attempt detected"),
        title: "BUG: bad usercopy in {func}",
        guilty: Guilty::Stack,
        ends: END_TRACE,
    },
    Format {
        name: "list-corruption",
        kind: ReportType::MemorySafety,
        prefixes: &["list_add corruption", "list_del corruption"],
        header: re!(r"^list_(?:add|del) corruption"),
        title: "BUG: corrupted list in {func}",
        guilty: Guilty::Stack,
        ends: END_TRACE,
    },
    Format {
        name: "odebug",
        kind: ReportType::Warning,
        prefixes: &["ODEBUG: "],
        header: re!(r"^ODEBUG: .*object type:"),
        title: "WARNING: ODEBUG bug in {func}",
        guilty: Guilty::Stack,
        ends: END_TRACE,
    },
    Format {
        name: "memory-leak",
        kind: ReportType::MemorySafety,
        prefixes: &["BUG: memory leak"],
        header: re!(r"^BUG: memory leak"),
        title: "memory leak in {func}",
        guilty: Guilty::Stack,
        ends: &["BUG: memory leak"],
    },
    Format {
        name: "workqueue-lockup",
        kind: ReportType::Hang,
        prefixes: &["BUG: workqueue lockup"],
        header: re!(r"^BUG: workqueue lockup"),
        title: "BUG: workqueue lockup",
        guilty: Guilty::None,
        ends: END_STACK,
    },
    Format {
        name: "spinlock",
        kind: ReportType::Locking,
        prefixes: &["BUG: spinlock ", "BUG: rwlock "],
        header: re!(r"^BUG: (spinlock|rwlock) ([a-z ]+?) on CPU#\d+"),
        title: "BUG: {1} {2} in {func}",
        guilty: Guilty::Stack,
        ends: END_STACK,
    },
    Format {
        name: "preemptible",
        kind: ReportType::Atomicity,
        prefixes: &["BUG: using "],
        header: re!(r"^BUG: using ([a-z_]+\(\)) in preemptible"),
        title: "BUG: using {1} in preemptible code in {func}",
        guilty: Guilty::Stack,
        ends: END_STACK,
    },
    Format {
        name: "stack-guard",
        kind: ReportType::Crash,
        prefixes: &[
            "BUG: stack guard",
            "BUG: TASK stack guard",
            "BUG: IRQ stack guard",
        ],
        header: re!(r"^BUG: (?:\w+ )?stack guard page was hit"),
        title: "BUG: stack guard page was hit in {func}",
        guilty: Guilty::Stack,
        ends: END_TRACE,
    },
    Format {
        name: "bad-page",
        kind: ReportType::MemorySafety,
        prefixes: &["BUG: Bad page "],
        header: re!(r"^BUG: Bad page (state|map)"),
        title: "BUG: Bad page {1} in {func}",
        guilty: Guilty::Stack,
        ends: END_STACK,
    },
    Format {
        name: "dentry-in-use",
        kind: ReportType::MemorySafety,
        prefixes: &["BUG: Dentry "],
        header: re!(r"^BUG: Dentry .* still in use .*\[(unmount) of"),
        title: "BUG: Dentry still in use in {1}",
        guilty: Guilty::None,
        ends: END_TRACE,
    },
    Format {
        name: "stack-protector",
        kind: ReportType::Panic,
        prefixes: &["Kernel panic - not syncing: stack-protector"],
        header: re!(
            r"^Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: (?P<func>[A-Za-z_][A-Za-z0-9_.$]*)?"
        ),
        title: "kernel panic: stack is corrupted in {func}",
        guilty: Guilty::Header,
        ends: &["---[ end Kernel panic"],
    },
    Format {
        name: "stack-end",
        kind: ReportType::Panic,
        prefixes: &["Kernel panic - not syncing: corrupted stack end"],
        header: re!(r"^Kernel panic - not syncing: corrupted stack end"),
        title: "kernel panic: corrupted stack end in {func}",
        guilty: Guilty::Entry,
        ends: &["---[ end Kernel panic"],
    },
    Format {
        name: "warning",
        kind: ReportType::Warning,
        prefixes: &["WARNING: CPU: "],
        header: re!(r"^WARNING: CPU: \d+ PID: \d+ at \S+ (?P<func>[A-Za-z0-9_.$]+)"),
        title: "WARNING in {func}",
        guilty: Guilty::Header,
        ends: END_TRACE,
    },
    Format {
        name: "warning-old",
        kind: ReportType::Warning,
        prefixes: &["WARNING: at "],
        // The function may be on the line itself or, as old kernels print it, on the next.
        header: re!(r"^WARNING: at \S+(?: (?P<func>[A-Za-z0-9_.$]+))?"),
        title: "WARNING in {func}",
        guilty: Guilty::Header,
        ends: END_TRACE,
    },
    Format {
        name: "might-sleep",
        kind: ReportType::Atomicity,
        prefixes: &["BUG: sleeping function"],
        header: re!(r"^BUG: sleeping function called from invalid context"),
        title: "BUG: sleeping function called from invalid context in {func}",
        guilty: Guilty::Trace,
        ends: END_STACK,
    },
    Format {
        name: "scheduling-while-atomic",
        kind: ReportType::Atomicity,
        prefixes: &["BUG: scheduling while"],
        header: re!(r"^BUG: scheduling while atomic"),
        title: "BUG: scheduling while atomic in {func}",
        guilty: Guilty::Trace,
        ends: END_STACK,
    },
    Format {
        name: "gpf",
        kind: ReportType::Crash,
        prefixes: &[
            "general protection fault",
            "Oops: general protection fault",
            "segment-related general protection fault",
        ],
        header: re!(r"^(?:Oops: )?(?:segment-related )?general protection fault"),
        title: "general protection fault in {func}",
        guilty: Guilty::Rip,
        ends: END_TRACE,
    },
    Format {
        name: "divide-error",
        kind: ReportType::Crash,
        prefixes: &["divide error: ", "divide_error: ", "Oops: divide error: "],
        header: re!(r"^(?:Oops: )?divide[ _]error: "),
        title: "divide error in {func}",
        guilty: Guilty::Rip,
        ends: END_TRACE,
    },
    Format {
        name: "rust-overflow",
        kind: ReportType::Crash,
        prefixes: &["attempt to "],
        // Rust's overflow checks: `rust_kernel: panicked at FILE:LINE:COL:`, then this line.
        header: re!(
            r"^attempt to ((?:add|subtract|multiply|negate|divide|calculate the remainder|shift left|shift right)(?: [a-z]+)*) with overflow\s*$"
        ),
        title: "attempt to {1} with overflow in {func}",
        guilty: Guilty::Stack,
        ends: END_TRACE,
    },
    Format {
        name: "double-fault",
        kind: ReportType::Crash,
        prefixes: &["PANIC: double fault", "traps: PANIC: double fault"],
        header: re!(r"^(?:traps: )?PANIC: double fault"),
        title: "PANIC: double fault in {func}",
        guilty: Guilty::Rip,
        ends: END_TRACE,
    },
    Format {
        name: "null-deref",
        kind: ReportType::Crash,
        prefixes: &["BUG: kernel NULL", "BUG: unable to handle kernel NULL"],
        header: re!(r"^BUG: (?:unable to handle )?kernel NULL pointer dereference"),
        title: "BUG: unable to handle kernel NULL pointer dereference in {func}",
        guilty: Guilty::Rip,
        ends: END_TRACE,
    },
    Format {
        name: "page-fault",
        kind: ReportType::Crash,
        prefixes: &["BUG: unable to handle"],
        header: re!(r"^BUG: unable to handle (?:page fault|kernel paging request)"),
        title: "BUG: unable to handle kernel paging request in {func}",
        guilty: Guilty::Rip,
        ends: END_TRACE,
    },
    Format {
        name: "kernel-bug",
        kind: ReportType::Crash,
        prefixes: &["kernel BUG at "],
        header: re!(r"^kernel BUG at \S+!"),
        title: "kernel BUG in {func}",
        guilty: Guilty::Rip,
        ends: END_TRACE,
    },
    Format {
        name: "soft-lockup",
        kind: ReportType::Hang,
        prefixes: &[
            "watchdog: BUG: soft lockup",
            "NMI watchdog: BUG: soft lockup",
        ],
        header: re!(r"^(?:NMI )?watchdog: BUG: soft lockup - CPU#\d+ stuck for"),
        title: "BUG: soft lockup in {func}",
        guilty: Guilty::Lockup,
        ends: END_STACK,
    },
    Format {
        name: "rcu-stall",
        kind: ReportType::Hang,
        prefixes: &["INFO: rcu_", "rcu: INFO: rcu_"],
        header: re!(r"^(?:rcu: )?INFO: rcu_\w+ (?:self-)?detected (?:expedited )?stalls?"),
        title: "INFO: rcu detected stall in {func}",
        guilty: Guilty::Stall,
        ends: END_STACK,
    },
    Format {
        name: "hung-task",
        kind: ReportType::Hang,
        prefixes: &["INFO: task "],
        header: re!(r"^INFO: task \S+ blocked (?:in I/O wait )?for more than \d+ seconds"),
        title: "INFO: task hung in {func}",
        guilty: Guilty::Hang,
        ends: END_STACK,
    },
    Format {
        name: "task-cant-die",
        kind: ReportType::Hang,
        prefixes: &["INFO: task "],
        header: re!(r"^INFO: task \S+ can't die for more than \d+ seconds"),
        title: "INFO: task can't die in {func}",
        guilty: Guilty::Hang,
        ends: END_STACK,
    },
    Format {
        name: "busy-inodes",
        kind: ReportType::MemorySafety,
        prefixes: &["VFS: Busy inodes after unmount"],
        header: re!(r"^VFS: Busy inodes after unmount"),
        title: "VFS: Busy inodes after unmount (use-after-free)",
        guilty: Guilty::None,
        ends: END_TRACE,
    },
    Format {
        name: "panic",
        kind: ReportType::Panic,
        prefixes: &["Kernel panic - not syncing: "],
        header: re!(r"^Kernel panic - not syncing: (.*?)\s*$"),
        title: "kernel panic: {1}",
        guilty: Guilty::None,
        ends: &["---[ end Kernel panic"],
    },
    Format {
        name: "arm-page-fault",
        kind: ReportType::Crash,
        prefixes: &["Unable to handle kernel "],
        header: re!(
            r"^Unable to handle kernel (NULL pointer dereference|paging request|access to user memory|execute from non-executable memory) at virtual address"
        ),
        title: "BUG: unable to handle kernel {1} in {func}",
        guilty: Guilty::Rip,
        ends: END_TRACE,
    },
    Format {
        name: "arm-unhandled-fault",
        kind: ReportType::Crash,
        prefixes: &["Unhandled fault: "],
        header: re!(r"^Unhandled fault: "),
        title: "Unhandled fault in {func}",
        guilty: Guilty::Rip,
        ends: END_TRACE,
    },
    Format {
        name: "arm-internal-error",
        kind: ReportType::Crash,
        prefixes: &["Internal error: "],
        header: re!(r"^Internal error: "),
        title: "Internal error in {func}",
        guilty: Guilty::Rip,
        ends: END_TRACE,
    },
    // Anything else the kernel opens as a report, by its prefix alone.
    Format {
        name: "bug",
        kind: ReportType::Crash,
        prefixes: &["BUG: "],
        header: re!(r"^BUG: (\S.*?)(?: at \S+:\d+)?\s*$"),
        title: "BUG: {1}",
        guilty: Guilty::None,
        ends: END_STACK,
    },
    Format {
        name: "oops",
        kind: ReportType::Crash,
        prefixes: &["Oops: "],
        header: re!(r"^Oops: (\S.*?)\s*$"),
        title: "Oops: {1} in {func}",
        guilty: Guilty::Rip,
        ends: END_TRACE,
    },
];

/// Headers printed inside another report rather than opening one: x86's `Oops:` line
/// follows the `BUG:` line of a NULL dereference, page fault or `kernel BUG at`.
const CONTINUES: &[(&str, &[&str])] = &[
    // The checks that print their message, then WARN or BUG.
    ("refcount", &["warning", "warning-new"]),
    (
        "usercopy",
        &["kernel-bug", "oops", "warning", "warning-new"],
    ),
    (
        "list-corruption",
        &["kernel-bug", "oops", "warning", "warning-new"],
    ),
    ("odebug", &["warning", "warning-new"]),
    ("stack-guard", &["oops"]),
    // The message a warning's check prints after it.
    ("warning", &["odebug"]),
    // A warning raised while a stall is being dumped is part of the dump.
    ("rcu-stall", &["warning", "warning-new"]),
    ("null-deref", &["oops", "gpf"]),
    ("page-fault", &["oops", "gpf"]),
    ("kernel-bug", &["oops", "arm-internal-error"]),
    // A Rust panic BUGs in its helper after printing where and why.
    (
        "rust-overflow",
        &["kernel-bug", "oops", "arm-internal-error"],
    ),
    ("arm-page-fault", &["arm-internal-error", "oops"]),
    ("arm-unhandled-fault", &["arm-internal-error", "oops"]),
];

/// Functions skipped for a format's guilty frame besides the common tables: any function whose
/// name contains one of these (a leak is where the object was made, past every allocator).
const SKIP_CONTAINING: &[(&str, &[&str])] = &[
    // The allocators and the indexes and per-CPU areas that allocate for their users.
    (
        "memory-leak",
        &["alloc", "pcpu_", "idr_", "ida_", "radix_tree_"],
    ),
    ("odebug", ODEBUG_SKIP),
    // A bad page is found by the page allocator as it hands out or takes back a page.
    ("bad-page", &["alloc", "free"]),
];

/// An ODEBUG report is about the caller of the API that checked the object: the functions
/// that free memory, arm timers and queue RCU callbacks check the objects they are given.
const ODEBUG_SKIP: &[&str] = &[
    "debug_object",
    "rcu",
    "kfree",
    "vfree",
    "kvfree",
    "vunmap",
    "free_pages",
    "free_percpu",
    "hrtimer",
    "timer",
    "queue_work",
    "work_on_stack",
];

/// Header capture 1 as syzbot names it.
const RENAMES: &[(&str, &[(&str, &str)])] = &[(
    "kasan",
    &[
        ("double-free or invalid-free", "invalid-free"),
        ("double-free", "invalid-free"),
    ],
)];

/// The format's own extra skips.
pub fn skip_containing(format: &Format) -> &'static [&'static str] {
    SKIP_CONTAINING
        .iter()
        .find(|(name, _)| *name == format.name)
        .map_or(&[], |(_, skip)| skip)
}

/// Capture 1 of a format's header under syzbot's name for it.
pub fn renamed<'a>(format: &Format, capture: &'a str) -> &'a str {
    RENAMES
        .iter()
        .find(|(name, _)| *name == format.name)
        .and_then(|(_, pairs)| pairs.iter().find(|(from, _)| *from == capture))
        .map_or(capture, |(_, to)| to)
}

/// A kind of warning its file names (syzbot's titles): the header's path ends with `path`,
/// its function is `func` when that matters; titled `title` (`{func}`: the caller), skipping
/// `skip`.
pub struct WarningKind {
    path: &'static str,
    func: Option<&'static str>,
    pub title: &'static str,
    /// The title with `{func}`, when it is not `{title} in {func}`.
    pub template: &'static str,
    pub skip: &'static [&'static str],
}

/// `{title} in {func}`.
const fn kind(path: &'static str, title: &'static str) -> WarningKind {
    WarningKind {
        path,
        func: None,
        title,
        template: "",
        skip: &[],
    }
}

const WARNING_KINDS: &[WarningKind] = &[
    WarningKind {
        skip: ODEBUG_SKIP,
        ..kind("lib/debugobjects.c", "WARNING: ODEBUG bug")
    },
    kind("lib/kobject.c", "WARNING: kobject bug"),
    kind("lib/refcount.c", "WARNING: refcount bug"),
    kind("kernel/locking/lockdep.c", "WARNING: locking bug"),
    kind("fs/proc/generic.c", "WARNING: proc registration bug"),
    kind("mm/usercopy.c", "BUG: bad usercopy"),
    // usb_submit_urb's checks of the URB it is given: syzbot names the submitter and the check.
    WarningKind {
        template: "WARNING in {func}/usb_submit_urb",
        ..kind("drivers/usb/core/urb.c", "")
    },
    WarningKind {
        func: Some("kmalloc_slab"),
        ..kind("mm/slab_common.c", "WARNING: kmalloc bug")
    },
    WarningKind {
        func: Some("__vmalloc_node_range"),
        ..kind("mm/vmalloc.c", "WARNING: zero-size vmalloc")
    },
];

/// The kind of a `WARNING: CPU: … at FILE:LINE FUNC` header, when its file names one.
pub fn warning_kind(header: &str) -> Option<&'static WarningKind> {
    WARNING_KINDS.iter().find(|k| {
        header.contains(&format!("{}:", k.path))
            && k.func.is_none_or(|f| {
                header
                    .split_whitespace()
                    .any(|w| w.split('+').next() == Some(f))
            })
    })
}

/// Whether a header of format `inner` continues an open report of format `outer`.
pub fn continues(outer: &Format, inner: &Format) -> bool {
    // A panic the open report causes (panic_on_warn, panic_on_oops, hung_task_panic,
    // softlockup_panic) is printed inside it, before its stack.
    inner.name == "panic"
        || CONTINUES
            .iter()
            .any(|(o, inners)| *o == outer.name && inners.contains(&inner.name))
}

/// The KASAN/KFENCE access line: "Read of size 8 at addr ... by task ...".
pub static ACCESS: LazyLock<Regex> = LazyLock::new(|| {
    // Generic and software tags: "Read of size 8 at addr X by task T"; old kernels "Read of
    // size 8 by task T"; hardware tags: "Read at addr X by task T".
    Regex::new(r"^(Read|Write)(?: of size (\d+))?(?: at addr ([0-9a-fx]+))? by task (\S+)").unwrap()
});

/// The format whose header this line is.
pub fn header(text: &str) -> Option<(&'static Format, regex::Captures<'_>)> {
    // Most console lines are not headers: their first byte starts no prefix. The prefixes
    // each first byte can start, in table order.
    static BY_FIRST: LazyLock<Vec<Vec<(&'static Format, &'static str)>>> = LazyLock::new(|| {
        let mut by_first = vec![Vec::new(); 256];
        for f in FORMATS.iter() {
            for p in f.prefixes {
                by_first[p.as_bytes()[0] as usize].push((f, *p));
            }
        }
        by_first
    });
    let first = *text.as_bytes().first()?;
    let mut tried: Option<&Format> = None;
    BY_FIRST[first as usize].iter().find_map(|&(f, p)| {
        if !text.starts_with(p) || tried.is_some_and(|t| std::ptr::eq(t, f)) {
            return None;
        }
        tried = Some(f);
        // Most tries fail: the cheaper search first.
        f.header
            .is_match(text)
            .then(|| f.header.captures(text).map(|c| (f, c)))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_name_the_parser_refers_to_exists_once() {
        let names: Vec<&str> = FORMATS.iter().map(|f| f.name).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "a format name twice: {names:?}");
        let extras = SKIP_CONTAINING
            .iter()
            .map(|(n, _)| n)
            .chain(RENAMES.iter().map(|(n, _)| n));
        for name in extras {
            assert!(
                names.contains(name),
                "a table names {name:?}, no such format"
            );
        }
        for (outer, inners) in CONTINUES {
            for name in std::iter::once(outer).chain(inners.iter()) {
                assert!(
                    names.contains(name),
                    "CONTINUES names {name:?}, no such format"
                );
            }
        }
    }

    #[test]
    fn headers_pick_their_format() {
        for (line, name) in [
            ("BUG: KASAN: slab-use-after-free in __lock_acquire+0x4288/0x63d0", "kasan"),
            ("WARNING: CPU: 1 PID: 40 at include/linux/fs.h:1127 dma_buf_poll+0x563/0x6d0", "warning"),
            ("WARNING: possible circular locking dependency detected", "lockdep-circular"),
            ("BUG: sleeping function called from invalid context at kernel/locking/mutex.c:586", "might-sleep"),
            ("Oops: general protection fault, probably for non-canonical address 0xfbd59c0000000021: 0000 [#1] SMP KASAN", "gpf"),
            ("BUG: kernel NULL pointer dereference, address: 0000000000000000", "null-deref"),
            ("kernel BUG at mm/slub.c:123!", "kernel-bug"),
            ("watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [a.out:123]", "soft-lockup"),
            ("INFO: task kworker/0:1:12 blocked for more than 143 seconds.", "hung-task"),
            ("Kernel panic - not syncing: sysrq triggered crash", "panic"),
            ("refcount_t: underflow; use-after-free.", "refcount"),
            ("[ BUG: Invalid wait context ]", "lockdep-wait-context"),
        ] {
            assert_eq!(header(line).map(|(f, _)| f.name), Some(name), "{line}");
        }
        assert_eq!(
            header("BUG: spinlock bad magic on CPU#0, x/1").map(|(f, _)| f.name),
            Some("spinlock")
        );
        assert_eq!(
            header("BUG: unexpected thing, x/1").map(|(f, _)| f.name),
            Some("bug")
        );
        assert!(header("kasan: KernelAddressSanitizer initialized").is_none());
        let format = |line| header(line).unwrap().0;
        let panic = format("Kernel panic - not syncing: hung_task: blocked tasks");
        for outer in [
            "INFO: task a:1 blocked for more than 143 seconds.",
            "BUG: kernel NULL pointer dereference, address: 0000000000000000",
        ] {
            assert!(continues(format(outer), panic), "{outer}");
        }
        let warning = format("WARNING: CPU: 0 PID: 1 at a.c:1 f+0x1/0x2");
        assert!(!continues(panic, warning));
        assert_eq!(
            header("rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:").map(|(f, _)| f.name),
            Some("rcu-stall")
        );
    }
}
