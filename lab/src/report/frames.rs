//! Stack frames as the kernel prints them (`func+0x12/0x34 [module]`, `? func+...`,
//! `RIP: 0010:func+...`), and the table of frames that belong to the reporting machinery
//! rather than to the code at fault.

use regex::Regex;
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    pub function: String,
    pub offset: u64,
    pub size: u64,
    pub module: Option<String>,
    /// False for `? func` frames the unwinder was not sure of.
    pub reliable: bool,
    /// `file:line`, as printed after the frame (KMSAN, decoded traces) or from `--vmlinux`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Functions inlined at this address, innermost first (from `--vmlinux`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inlined: Vec<Inlined>,
}

impl Frame {
    /// A frame as printed, before symbolization.
    fn printed(
        function: &str,
        offset: u64,
        size: u64,
        module: Option<String>,
        reliable: bool,
    ) -> Frame {
        Frame {
            function: demangled(function),
            offset,
            size,
            module,
            reliable,
            location: None,
            inlined: vec![],
        }
    }
}

/// A Rust symbol (v0 `_R…` or legacy `_ZN…E`) as Rust writes the path, without the crate
/// hashes (`<rust_binder::process::Process>::update_ref`); any other name as it is.
pub fn demangled(symbol: &str) -> String {
    if !(symbol.starts_with("_R") || symbol.starts_with("_ZN")) {
        return symbol.to_string();
    }
    match rustc_demangle::try_demangle(symbol) {
        Ok(d) => format!("{d:#}"),
        Err(_) => symbol.to_string(),
    }
}

/// Characters of a kernel symbol as stack traces print it (`dput.part.0`, `$x`).
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'$'))
}

/// A function the compiler inlined into a frame's function, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inlined {
    pub function: String,
    pub location: Option<String>,
}

/// The register-dump lines that name the faulting instruction: x86-64 (`RIP: 0010:`, older
/// kernels with `[<address>]`), i386 (`EIP:`, `IP: [<address>]`), arm64 (`pc : `), arm
/// (`PC is at `).
const RIP_PREFIXES: &[&str] = &["RIP: 0010:", "EIP: ", "IP: ", "pc : ", "PC is at "];
static RIP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:RIP: 0010:|EIP: (?:0060:)?|IP: |pc : |PC is at )(?:\[<[0-9a-f]+>\]\s+)*([A-Za-z0-9_.$]+)\+0x([0-9a-f]+)/0x([0-9a-f]+)",
    )
    .unwrap()
});

/// A frame line of a call trace (text already stripped of timestamp and caller):
/// `[<address>] [? ]function+0xOFFSET/0xSIZE[ [module]][ file:line]`, with older kernels'
/// `[<address>]` and a trailing `()` accepted. Scanned by hand: it runs on every line of
/// every report, and a regex here was most of the parser's time.
pub fn parse_frame(text: &str) -> Option<Frame> {
    let mut text = text.trim_ascii();
    // Older kernels: ` [<ffffffff815e6cd6>] ? func+0x45/0x5f`, after `<IRQ>` on a line.
    if let Some(rest) = text
        .strip_prefix("<IRQ>")
        .or_else(|| text.strip_prefix("<NMI>"))
    {
        text = rest.trim_start();
    }
    if let Some(rest) = text.strip_prefix("[<") {
        text = cut_at(rest, b']')?.1.trim_start();
    }
    // powerpc: `[c000000001bb3710] [c0000000000286fc] __switch_to+0x43c/0x6d0`, the stack
    // pointer and the address.
    for _ in 0..2 {
        if let Some((inner, rest)) = text.strip_prefix('[').and_then(|r| cut_at(r, b']')) {
            if inner.len() >= 8 && inner.bytes().all(|c| c.is_ascii_hexdigit()) {
                text = rest.trim_start();
            }
        }
    }
    // arm: `[<c0a73020>] (kmalloc_oob_right) from [<c0a7a140>] (kunit_try_run_case+0x98/0x120)`:
    // the frame is the first function; the second is its caller, the next line's frame.
    if let Some(rest) = text.strip_prefix('(') {
        let (inner, rest) = cut_at(rest, b')')?;
        rest.starts_with(" from ").then_some(())?;
        let function = inner.split('+').next()?;
        return is_name(function).then(|| Frame::printed(function, 0, 0, None, true));
    }
    let (mut reliable, text) = match text.strip_prefix("? ") {
        Some(rest) => (false, rest),
        None => (true, text),
    };
    let (function, rest) = cut_at(text, b'+')?;
    let rest = rest.strip_prefix("0x")?;
    if !is_name(function) {
        return None;
    }
    let (offset, rest) = cut_at(rest, b'/')?;
    let rest = rest.strip_prefix("0x")?;
    let (size, mut rest) = cut_at(rest, b' ').unwrap_or((rest, ""));
    let size = size.strip_suffix("()").unwrap_or(size);
    // arm64 marks the frames taken from registers: `func+0x70/0x170 (P)`.
    rest = rest
        .strip_prefix("(P)")
        .or_else(|| rest.strip_prefix("(L)"))
        .unwrap_or(rest)
        .trim_start();
    let mut module = None;
    if let Some(after) = rest.strip_prefix('[') {
        let (name, after) = cut_at(after, b']')?;
        if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
            return None;
        }
        module = Some(name.to_string());
        rest = after.trim_start();
    }
    // powerpc marks the frames it is not sure of at the end.
    if let Some(before) = rest.strip_suffix("(unreliable)") {
        reliable = false;
        rest = before.trim_end();
    }
    let location = match rest.split_whitespace().next() {
        None => None,
        Some(loc) if loc.contains(':') => Some(loc.to_string()),
        Some(_) => return None,
    };
    let hex = |s: &str| {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_hexdigit()))
            .then(|| u64::from_str_radix(s, 16).ok())
            .flatten()
    };
    Some(Frame {
        location,
        ..Frame::printed(function, hex(offset)?, hex(size)?, module, reliable)
    })
}

/// A function inlined into the next frame, as symbolized traces print it:
/// `ip6_dst_store include/net/ip6_fib.h:176 [inline]`.
pub fn parse_inlined(text: &str) -> Option<Inlined> {
    let text = text.trim_ascii().strip_suffix("[inline]")?.trim_end();
    let (function, location) = text.split_once(' ')?;
    let location = location.trim();
    (is_name(function) && location.contains(':') && !location.contains(' ')).then(|| Inlined {
        function: function.to_string(),
        location: Some(location.to_string()),
    })
}

/// The caller in an arm backtrace line, `[<c0a73020>] (callee) from [<c0a7a140>]
/// (caller+0x98/0x120)`: the frame the next line repeats, or the last frame when none does.
pub fn parse_arm_caller(text: &str) -> Option<Frame> {
    static FROM: LazyLock<memchr::memmem::Finder<'static>> =
        LazyLock::new(|| memchr::memmem::Finder::new(") from [<"));
    let rest = &text[FROM.find(text.as_bytes())? + ") from [<".len()..];
    let (_, rest) = cut_at(rest, b'(')?;
    let (inner, _) = cut_at(rest, b')')?;
    let (function, rest) = cut_at(inner, b'+')?;
    let (offset, size) = cut_at(rest.strip_prefix("0x")?, b'/')?;
    let hex = |s: &str| u64::from_str_radix(s.strip_prefix("0x").unwrap_or(s), 16).ok();
    is_name(function).then_some(())?;
    Some(Frame::printed(
        function,
        hex(offset)?,
        hex(size)?,
        None,
        true,
    ))
}

/// `s` split around the first `byte`.
fn cut_at(s: &str, byte: u8) -> Option<(&str, &str)> {
    let i = memchr::memchr(byte, s.as_bytes())?;
    Some((&s[..i], &s[i + 1..]))
}

/// The kernel-mode instruction pointer of a register dump (`RIP: 0010:func+0x1/0x2`).
pub fn parse_rip(text: &str) -> Option<Frame> {
    let text = text.trim_start();
    let first = *text.as_bytes().first()?;
    if !RIP_PREFIXES
        .iter()
        .any(|p| p.as_bytes()[0] == first && text.starts_with(p))
    {
        return None;
    }
    let c = RIP.captures(text)?;
    let hex = |i: usize| u64::from_str_radix(&c[i], 16).ok();
    Some(Frame::printed(&c[1], hex(2)?, hex(3)?, None, true))
}

/// The reporting machinery: printing, sanitizer and slab internals, WARN/BUG plumbing,
/// might_sleep checks, lockdep and the lock primitives, and the helpers that report for their
/// caller. Never the function at fault, wherever it appears. An entry is a whole function
/// name, a prefix when it ends in `*`, a part of names when it starts with `*`; matched
/// against the name without its `.isra.0`/`.cold` suffix.
#[rustfmt::skip]
const SKIP_ALWAYS: &[&str] = &[
    // printing and stack dumping
    "dump_stack", "dump_stack_lvl", "dump_backtrace", "show_stack", "show_trace_log_lvl",
    "print_*", "printk", "_printk", "vprintk*", "panic", "nmi_*", "rcu_dump*",
    "sched_show_task",
    // sanitizers and the allocator
    "kasan_report*", "kasan_check_*", "kasan_save_*", "kasan_set_*", "kasan_slab_*",
    "kasan_kmalloc*", "kasan_poison*", "kasan_unpoison*", "kasan_record_*", "kasan_print_*",
    "kasan_complete_mode_report_info", "kasan_addr_to_slab", "kasan_byte_accessible",
    "__kasan_*", "check_memory_region*", "__asan_*", "kmsan_*", "__msan_*",
    "kcsan_*", "__tsan_*", "ubsan_*", "__ubsan_*", "kfence_*", "__kfence_*",
    "save_stack", "stack_trace_save*", "stack_depot_save", "kfree", "kvfree", "kfree_sensitive",
    "kmem_cache_*", "slab_*", "__slab_*", "___slab_*", "kmalloc", "kmalloc_trace*",
    "kmalloc_node*", "kmalloc_noprof", "__kmalloc*", "kzalloc", "kvmalloc*", "__kvmalloc*",
    "krealloc*", "__do_kmalloc*", "do_slab_free", "free_debug_processing",
    // string and memory helpers the sanitizers instrument
    "memcpy", "memset", "memmove", "memchr", "memcmp", "strcmp", "strncmp", "strlen",
    "strnlen", "strscpy", "strcpy", "strncpy", "__memcpy", "__memset", "__memmove",
    // WARN/BUG and fault plumbing
    "__warn*", "warn_*", "report_bug", "handle_bug", "fixup_bug", "do_error_trap",
    "do_invalid_op", "exc_invalid_op", "asm_exc_*", "exc_page_fault", "do_user_addr_fault",
    "__do_page_fault", "do_page_fault", "handle_mm_fault", "page_fault", "invalid_op",
    "sysrq_*", "__handle_sysrq",
    // might_sleep checks
    "__might_sleep", "__might_resched", "___might_sleep", "might_sleep", "__might_fault",
    "might_fault",
    // lockdep and lock primitives
    "lock_acquire", "__lock_acquire", "lock_release", "__lock_release", "lock_acquired",
    "lock_contended", "lock_sync", "lockdep_*", "__lockdep_*", "validate_chain",
    "check_prev_add", "check_prevs_add", "check_noncircular", "mark_lock*", "__mutex_lock*",
    "mutex_lock*", "mutex_unlock", "__mutex_unlock*", "_raw_spin_*", "_raw_read_*",
    "_raw_write_*", "do_raw_spin_*", "spin_bug", "debug_check_*", "down_read*",
    "down_write*", "up_read", "up_write", "__down*", "rwsem_*", "percpu_down_*",
    "queued_spin_lock*", "native_queued_spin_lock*", "_spin_lock*", "_spin_unlock*",
    // refcount_t
    "refcount_*", "__refcount_*",
    // Rust's panic machinery and the C helpers Rust calls
    "core::panicking::*", "rust_begin_unwind", "rust_helper_*", "__rustc::*",
    "kernel::panic*",
    // coverage and address-check instrumentation, retpolines, function padding
    "__sanitizer_*", "__hwasan_*", "hwasan_*", "kasan_object_err", "__x86_indirect_thunk_*",
    "__x86_return_thunk", "__pfx_*",
    // data structure helpers and their integrity checks
    "__list_*", "list_*", "hlist_*", "rb_*", "__rb_*", "klist_*", "xa_*", "xas_*",
    "__xa_*", "test_and_set_bit", "test_and_clear_bit", "set_bit", "clear_bit",
    "__set_bit", "__clear_bit",
    // string, copy and formatting helpers
    "string", "strnstr", "strstr", "strchr", "strrchr", "strsep", "strlcpy", "strlcat",
    "vsnprintf", "snprintf", "sprintf", "scnprintf", "vscnprintf", "format_decode",
    "_copy_to_user", "_copy_from_user", "copy_to_user*", "copy_from_user*", "__copy_*",
    "*copy_to_iter", "*copy_from_iter", "copy_page_to_iter*", "copy_page_from_iter*",
    "copyout", "copyin", "raw_copy_*", "crc_*", "crc32*",
    // hardening checks that report for their caller
    "fortify_*", "__fortify_*", "usercopy_*", "__check_object_size", "check_object_size",
    "__check_heap_object", "check_heap_object", "check_stack_object", "skb_panic",
    "skb_over_panic", "skb_under_panic", "__reiserfs_panic", "assertfail",
    "btrfs_assertfail",
    // object debugging and the driver core
    "debug_print_object", "debug_object_*", "__debug_object_*", "debug_check_no_*",
    "timer_is_static_object", "work_is_static_object", "kobject_*", "kobj_*",
    "add_uevent_var", "device_del", "devres_*", "*sysfs_remove", "sysfs_create_*",
    "ref_tracker_*",
    // page and object allocation and freeing
    "__alloc_pages*", "alloc_pages*", "__alloc_frozen_pages*", "alloc_frozen_pages*",
    "__get_free_pages", "get_zeroed_page", "folio_alloc*", "__folio_alloc*", "folio_unlock",
    "free_large_kmalloc", "__kmem_cache_*", "kfree_skb*", "__kfree_skb", "consume_skb",
    "vmalloc", "vmalloc_noprof", "vmalloc_node*", "__vmalloc*", "vzalloc*", "kvfree*",
    "kmemleak_*", "__kmemleak_*",
    "create_object", "alloc_object",
    // timers and bottom halves
    "mod_timer", "__mod_timer", "lock_timer_base", "del_timer*", "timer_delete*",
    "__local_bh_enable_ip", "_local_bh_enable", "local_bh_enable",
    // inode link counts that warn for their caller
    "drop_nlink", "inc_nlink", "clear_nlink", "set_nlink",
    // stack walking
    "stack_trace_consume_entry", "arch_stack_walk", "unwind_*", "__unwind_*",
    // more lock primitives
    "osq_lock", "mutex_optimistic_spin", "rt_mutex*", "__rt_mutex*", "rtlock_*",
    "call_rwsem_*", "down", "up", "perf_trace_*",
    // arm64 and riscv fault entry
    "__do_kernel_fault", "do_bad_area", "do_tag_check_fault", "do_mem_abort",
    "do_translation_fault", "el1_abort", "el1_da", "el1h_64_sync*", "el1_sync*",
    // traps and panics reached on the way to a report
    "do_trap", "math_error", "*panic", "check_preemption_disabled", "debug_smp_processor_id",
    "spin_dump", "walk_stackframe", "register_lock_class", "*lock_class",
    // every allocator's entry, whatever its name's decoration
    "kmalloc_order*", "kmalloc_large*", "___kmalloc*", "kmalloc_array*", "kcalloc*",
    "kvcalloc*", "kzalloc_node", "kvzalloc*", "vzalloc*", "kmemdup*", "memdup_user*",
    "do_read_cache_folio", "read_cache_page*", "pagecache_get_page", "find_or_create_page",
    "grab_cache_page_write_begin", "__filemap_get_folio", "filemap_alloc_folio*",
    // workqueue and kthread plumbing that reports for its caller
    "try_to_grab_pending", "__cancel_work_timer", "cancel_work_sync", "*flush_work",
    "flush_workqueue", "drain_workqueue", "destroy_workqueue", "queue_work*",
    "finish_wait", "kthread_stop",
    // the driver core, sysfs and the USB core, which warn for the driver that called them
    "get_device_parent", "device_add", "device_unregister", "device_destroy",
    "device_release", "devres_release_all", "device_for_each_child", "hwrng_unregister",
    "i2c_del_adapter", "__unregister_client", "*rollback_registered", "*unregister_netdev",
    "__usb_create_hcd", "usb_deregister", "usb_remove_hcd", "usb_submit_urb",
    "usb_start_wait_urb", "usb_bulk_msg", "usb_interrupt_msg", "usb_control_msg",
    "usb_kill_urb", "dev_info", "dev_notice", "dev_warn", "dev_err", "dev_alert",
    "dev_crit", "dev_emerg", "_dev_*",
    // more lock, bit and counter primitives, user access, sk_buff growth
    "down_trylock", "down_interruptible", "down_killable", "down_timeout", "kref_*",
    "atomic_*", "atomic64_*", "put_user*", "get_user*", "__put_user*", "__get_user*",
    "__wake_up*", "__schedule_bug", "lock_sock*", "__lock_sock*", "__stack_chk_fail", "__this_cpu_preempt_check", "*rq_lock", "iput",
    "dput", "fast_dput", "insert_work", "*queue_work", "*queue_delayed_work", "__raw_read*", "__raw_write*", "logic_in*", "logic_out*",
    "trace_hardirqs_*",
    "kasprintf", "kvasprintf", "skb_put", "skb_push", "skb_pull", "*copy_to_user",
    "*copy_from_user", "*write_lock", "*read_lock", "*_atomic_dec_and",
];

/// Where a blocked or preempted task sits: skipped in call traces (a hung task is "hung in"
/// its caller), but a crash whose instruction pointer is here is a crash here.
#[rustfmt::skip]
const SKIP_IN_STACKS: &[&str] = &[
    "__schedule*", "schedule", "schedule_*", "preempt_schedule*", "io_schedule*",
    "_cond_resched", "__cond_resched", "wait_for_completion*", "__wait_for_common",
    "wait_for_common*", "prepare_to_wait*", "finish_wait",
    "context_switch", "__switch_to*", "switch_to", "finish_task_switch*",
    "wait_on_page*", "wait_on_bit*", "__wait_on_bit*", "out_of_line_wait_on_bit*",
    "folio_wait*", "__folio_lock*", "bit_wait*", "synchronize_rcu_expedited",
    "synchronize_rcu_tasks*", "rcu_barrier", "__flush_work", "flush_work",
    "flush_workqueue", "__flush_workqueue", "drain_workqueue", "kthread_stop",
    "usleep_range*", "msleep*", "schedule_timeout*",
    // coverage collection, on every edge of an instrumented kernel
    "write_comp_data",
];

/// A skip table indexed for lookup (the tables are checked for every frame of every report):
/// whole names hashed, prefixes bucketed by their first byte, parts in one automaton.
struct Listed {
    exact: std::collections::HashSet<&'static str>,
    prefixes: Vec<Vec<&'static str>>,
    parts: aho_corasick::AhoCorasick,
}

impl Listed {
    fn new(table: &[&'static str]) -> Listed {
        let mut exact = std::collections::HashSet::new();
        let mut prefixes = vec![Vec::new(); 256];
        let mut parts = Vec::new();
        for p in table {
            if let Some(part) = p.strip_prefix('*') {
                parts.push(part);
            } else if let Some(prefix) = p.strip_suffix('*') {
                prefixes[prefix.as_bytes()[0] as usize].push(prefix);
            } else {
                exact.insert(*p);
            }
        }
        Listed {
            exact,
            prefixes,
            parts: aho_corasick::AhoCorasick::builder()
                // Leftmost-first: the searcher that can use SIMD.
                .match_kind(aho_corasick::MatchKind::LeftmostFirst)
                .build(parts)
                .expect("skip-table parts are plain text"),
        }
    }

    fn contains(&self, function: &str) -> bool {
        let name = memchr::memchr(b'.', function.as_bytes()).map_or(function, |i| &function[..i]);
        let Some(&first) = name.as_bytes().first() else {
            return false;
        };
        self.exact.contains(name)
            || self.prefixes[first as usize]
                .iter()
                .any(|p| name.starts_with(p))
            || self.parts.is_match(name)
    }
}

static ALWAYS: LazyLock<Listed> = LazyLock::new(|| Listed::new(SKIP_ALWAYS));
static IN_STACKS: LazyLock<Listed> = LazyLock::new(|| Listed::new(SKIP_IN_STACKS));

/// Reporting machinery wherever it appears (instruction pointer, header, stack).
pub fn is_machinery(function: &str) -> bool {
    ALWAYS.contains(function)
}

/// Machinery or a place tasks wait in: not the guilty frame of a call trace.
pub fn is_skipped_in_stack(function: &str) -> bool {
    ALWAYS.contains(function) || IN_STACKS.contains(function)
}

/// The reliable frames that are not reporting machinery, in stack order: the first is the
/// guilty one, the next are alternates.
pub fn candidates(frames: &[Frame]) -> impl Iterator<Item = &Frame> {
    frames
        .iter()
        .filter(|f| f.reliable && !is_skipped_in_stack(&f.function))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_of_all_shapes() {
        let f = parse_frame(" eventpoll_release_file+0xca/0x1c0").unwrap();
        assert_eq!(
            (f.function.as_str(), f.offset, f.size, f.reliable),
            ("eventpoll_release_file", 0xca, 0x1c0, true)
        );
        let f = parse_frame(" ? spin_bug+0x1c0/0x1c0").unwrap();
        assert!(!f.reliable);
        let f = parse_frame(" virtnet_poll+0x10/0x20 [virtio_net]").unwrap();
        assert_eq!(f.module.as_deref(), Some("virtio_net"));
        assert!(parse_frame(" <TASK>").is_none());
        assert!(parse_frame("RIP: 0033:0x7fdc20f2adaa").is_none());
        let r = parse_rip("RIP: 0010:dma_buf_poll+0x563/0x6d0").unwrap();
        assert_eq!(r.function, "dma_buf_poll");
        assert!(parse_rip("RIP: 0033:0x7fdc20f2adaa").is_none());
        let i = parse_inlined(" ip6_dst_store include/net/ip6_fib.h:176 [inline]").unwrap();
        assert_eq!(
            (i.function.as_str(), i.location.as_deref()),
            ("ip6_dst_store", Some("include/net/ip6_fib.h:176"))
        );
        assert!(parse_inlined(" dump_stack+0x292/0x395 lib/dump_stack.c:52").is_none());
    }

    #[test]
    fn rust_symbols_read_as_rust_paths() {
        let f = parse_frame(
            " _RNvMs3_NtCshgDM7dBCdno_11rust_binder7processNtB5_7Process10update_ref+0x17e5/0x1860",
        )
        .unwrap();
        assert_eq!(f.function, "<rust_binder::process::Process>::update_ref");
        assert_eq!(
            demangled("_ZN4core9panicking9panic_fmt17h0123456789abcdefE"),
            "core::panicking::panic_fmt"
        );
        assert_eq!(demangled("_raw_spin_lock"), "_raw_spin_lock");
        assert!(is_machinery(&demangled(
            "_RNvNtCs9jEwPDbx20M_4core9panicking9panic_fmt"
        )));
    }

    #[test]
    fn arm_callers_and_powerpc_frames() {
        let f = parse_arm_caller("[<c0a73020>] (dump_stack) from [<c0a7a140>] (__warn+0x98/0x120)")
            .unwrap();
        assert_eq!(
            (f.function.as_str(), f.offset, f.size),
            ("__warn", 0x98, 0x120)
        );
        assert!(parse_arm_caller("[<c0a73020>] (dump_stack+0x1/0x2)").is_none());
        let f = parse_frame("[c0000000f8e3fb50] [c000000000123456] do_sys_poll+0x4c/0x90").unwrap();
        assert_eq!((f.function.as_str(), f.reliable), ("do_sys_poll", true));
        let f =
            parse_frame("[c0000000f8e3fa70] [c0000000001d2a4c] show_stack+0x7c/0x190 (unreliable)")
                .unwrap();
        assert_eq!((f.function.as_str(), f.reliable), ("show_stack", false));
    }

    #[test]
    fn guilty_skips_machinery_and_unreliable_frames() {
        let frames: Vec<Frame> = [
            " dump_stack_lvl+0x7c/0x90",
            " __might_resched+0x2c1/0x510",
            " ? __schedule_bug+0xf0/0xf0",
            " __mutex_lock+0xfb/0x1c10",
            " ? eventpoll_release_file+0xca/0x1c0",
            " eventpoll_release_file+0xca/0x1c0",
            " file_close_fd_locked+0x144/0x240",
        ]
        .iter()
        .map(|l| parse_frame(l).unwrap())
        .collect();
        let mut c = candidates(&frames);
        assert_eq!(c.next().unwrap().function, "eventpoll_release_file");
        assert_eq!(c.next().unwrap().function, "file_close_fd_locked");
    }
}
