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
}

static FRAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^\s*(\? )?([A-Za-z0-9_.$]+)\+0x([0-9a-f]+)/0x([0-9a-f]+)(?: \[([A-Za-z0-9_]+)\])?\s*$",
    )
    .unwrap()
});
static RIP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^RIP: 0010:([A-Za-z0-9_.$]+)\+0x([0-9a-f]+)/0x([0-9a-f]+)").unwrap()
});

/// A frame line of a call trace (text already stripped of timestamp and caller).
pub fn parse_frame(text: &str) -> Option<Frame> {
    let c = FRAME.captures(text)?;
    Some(Frame {
        function: c[2].to_string(),
        offset: u64::from_str_radix(&c[3], 16).ok()?,
        size: u64::from_str_radix(&c[4], 16).ok()?,
        module: c.get(5).map(|m| m.as_str().to_string()),
        reliable: c.get(1).is_none(),
    })
}

/// The kernel-mode instruction pointer of a register dump (`RIP: 0010:func+0x1/0x2`).
pub fn parse_rip(text: &str) -> Option<Frame> {
    let c = RIP.captures(text.trim_start())?;
    Some(Frame {
        function: c[1].to_string(),
        offset: u64::from_str_radix(&c[2], 16).ok()?,
        size: u64::from_str_radix(&c[3], 16).ok()?,
        module: None,
        reliable: true,
    })
}

/// Function-name prefixes of the reporting machinery: printing, KASAN and slab internals,
/// WARN/BUG plumbing, might_sleep checks, lockdep and the lock primitives it instruments.
const SKIP: &[&str] = &[
    "dump_stack",
    "show_stack",
    "print_",
    "printk",
    "_printk",
    "vprintk",
    "kasan_",
    "__kasan",
    "check_memory_region",
    "__asan_",
    "memcpy",
    "memset",
    "memmove",
    "kfree",
    "kmem_cache_",
    "slab_",
    "__slab",
    "kmalloc",
    "__kmalloc",
    "krealloc",
    "__warn",
    "warn_",
    "report_bug",
    "handle_bug",
    "exc_invalid_op",
    "asm_exc_",
    "__might_sleep",
    "__might_resched",
    "___might_sleep",
    "might_sleep",
    "__might_fault",
    "lock_acquire",
    "__lock_acquire",
    "lock_release",
    "__lock_release",
    "lock_acquired",
    "lock_contended",
    "lock_sync",
    "lockdep_",
    "__lockdep",
    "validate_chain",
    "check_prev_add",
    "check_noncircular",
    "mark_lock",
    "__mutex_lock",
    "mutex_lock",
    "_raw_spin_",
    "_raw_read_",
    "_raw_write_",
    "do_raw_spin_",
    "spin_bug",
    "debug_check_",
    "refcount_warn",
    "__refcount_",
    "refcount_",
    "__schedule",
    "schedule",
    "preempt_schedule",
    "io_schedule",
    "panic",
    "nmi_",
    "rcu_dump",
    "sched_show_task",
];

pub fn is_machinery(function: &str) -> bool {
    SKIP.iter().any(|p| function.starts_with(p))
}

/// The reliable frames that are not reporting machinery, in stack order: the first is the
/// guilty one, the next are alternates.
pub fn candidates(frames: &[Frame]) -> impl Iterator<Item = &Frame> {
    frames
        .iter()
        .filter(|f| f.reliable && !is_machinery(&f.function))
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
