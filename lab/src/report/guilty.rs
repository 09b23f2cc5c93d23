//! Which function a report is about when it is not simply the first frame outside the
//! reporting machinery: stalls and lockups (the code that looped, named by where it was
//! entered), hung tasks (where the task waits, past the waiting primitives), and lockdep
//! reports (the lock sites lockdep names). Syzkaller's rules, so titles match syzbot's.

use super::frames::Frame;

/// Where work enters the kernel or is dispatched (syscall entry and exit, file and socket
/// operations, netlink and packet receive, softirqs, timers, workqueues, kthreads, cross-CPU calls). A
/// stalled CPU loops somewhere inside one of these; the function just before the first of
/// them in the interrupted stack names the stall: for `read` it is the device's read, for a
/// timer its callback. Entries are whole names, `x*` prefixes and `*x` parts of names.
#[rustfmt::skip]
const STALL_ANCHORS: &[&str] = &[
    // syscall entry and exit
    "do_syscall*", "entry_SYSCALL*", "entry_SYSENTER*", "do_fast_syscall*", "syscall_exit*",
    "exit_to_usermode_loop", "exit_to_user_mode*", "syscall_trace_enter", "invoke_syscall",
    "el0_svc*", "do_el0_svc", "ret_fast_syscall", "ret_from_fork", "sysenter_dispatch",
    "system_call_fastpath", "tracesys*", "ksys_*",
    // files and sockets
    "vfs_read", "vfs_write", "__vfs_read", "__vfs_write", "new_sync_read", "new_sync_write",
    "vfs_readv", "vfs_writev", "vfs_iter_read", "vfs_iter_write", "do_iter_read",
    "do_iter_write", "do_iter_readv_writev", "do_loop_readv_writev", "vfs_ioctl",
    "do_vfs_ioctl", "*compat_ioctl", "sock_ioctl", "sock_do_ioctl", "sock_sendmsg*",
    "sock_recvmsg*", "sock_write_iter", "sock_read_iter", "kernel_sendmsg", "kernel_recvmsg",
    "task_work_run", "get_signal", "do_signal",
    // the routing and netfilter netlink families' dispatch, the receive path's
    "rtnetlink_rcv_msg", "nfnetlink_rcv_msg", "__netif_receive_skb*",
    // bottom halves, timers, workqueues, kthreads, cross-CPU calls
    "__do_softirq", "do_softirq*", "handle_softirqs", "run_ksoftirqd", "net_rx_action",
    "__napi_poll", "napi_poll", "process_backlog", "call_timer_fn", "expire_timers",
    "__run_timers", "run_timer_softirq", "tasklet_action*", "process_one_work",
    "worker_thread", "kthread", "apply_workqueue_attrs", "smp_call_function*",
];

/// Whether `name` is listed in a table of whole names, `x*` prefixes and `*x` parts.
fn listed(table: &[&str], name: &str) -> bool {
    let name = name.split('.').next().unwrap_or(name);
    table.iter().any(|entry| {
        if let Some(part) = entry.strip_prefix('*') {
            name.contains(part)
        } else if let Some(prefix) = entry.strip_suffix('*') {
            name.starts_with(prefix)
        } else {
            name == *entry
        }
    })
}

/// The frame a stall is titled by: the one before the first anchor in the interrupted
/// stack (or the first frame, when it is an anchor itself); a cross-CPU call is titled by
/// its interface, `smp_call_function`.
pub fn stall(frames: &[&str]) -> Option<String> {
    let mut prev = *frames.first()?;
    for &frame in frames {
        if listed(STALL_ANCHORS, frame) {
            if frame.starts_with("smp_call_function") {
                return Some("smp_call_function".to_string());
            }
            return Some(prev.to_string());
        }
        prev = frame;
    }
    None
}

/// Locks and grace periods that many hung tasks wait in for reasons elsewhere: the hang is
/// titled by the lock (all RCU waits as `synchronize_rcu`) so they gather in one place.
const HANG_ANCHORS: &[(&str, &str)] = &[
    ("rtnl_lock", "rtnl_lock"),
    ("synchronize_rcu", "synchronize_rcu"),
    ("synchronize_srcu", "synchronize_rcu"),
    ("synchronize_net", "synchronize_rcu"),
    ("synchronize_sched", "synchronize_rcu"),
];

/// Parts of names of the functions a task waits in (locks, completions, scheduling).
const HANG_SKIP: &[&str] = &[
    "sched",
    "_lock",
    "_slowlock",
    "down",
    "rwsem",
    "completion",
    "kthread",
    "wait",
    "synchronize",
    "context_switch",
    "__switch_to",
    "cancel_delayed_work",
    "cancel_work",
    "flush_work",
    "rcu_barrier",
];

/// The frame a hung task is titled by.
pub fn hang(frames: &[&str]) -> Option<String> {
    for &frame in frames {
        if let Some((_, name)) = HANG_ANCHORS.iter().find(|(a, _)| frame.contains(a)) {
            return Some(name.to_string());
        }
    }
    frames
        .iter()
        .find(|f| !HANG_SKIP.iter().any(|s| f.contains(s)))
        .map(|f| f.to_string())
}

/// Function names of the reliable frames of a stack.
pub fn names(frames: &[Frame]) -> Vec<&str> {
    frames
        .iter()
        .filter(|f| f.reliable)
        .map(|f| f.function.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stall_is_named_by_the_function_entered() {
        let frames = [
            "mousedev_write",
            "__vfs_write",
            "vfs_write",
            "ksys_write",
            "do_syscall_64",
        ];
        assert_eq!(stall(&frames).as_deref(), Some("mousedev_write"));
        assert_eq!(
            stall(&["smp_call_function_many", "on_each_cpu"]).as_deref(),
            Some("smp_call_function")
        );
        assert_eq!(stall(&["a", "b"]), None);
        assert_eq!(stall(&[]), None);
    }

    #[test]
    fn a_hang_skips_waiting_and_gathers_rcu_waits() {
        assert_eq!(
            hang(&["synchronize_net", "unregister_netdevice"]).as_deref(),
            Some("synchronize_rcu")
        );
        assert_eq!(
            hang(&["__lock_page", "mpage_prepare_extent_to_map"]).as_deref(),
            Some("mpage_prepare_extent_to_map")
        );
    }
}
