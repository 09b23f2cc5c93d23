//! EPOLL_CTL_ADD racing with the close() of the fd it names, on another thread, while pollers
//! spin epoll_wait(..., 0) on the same epoll instance. Round by round: the closer creates a
//! pollable file and hands its fd over; the adder EPOLL_CTL_ADDs it while the closer closes it;
//! the next round starts once both are done. An ADD that took its reference before the close and
//! inserts after it registers a file no fd refers to any more: on a kernel that detaches files
//! from epoll at close (release-on-close), that registration lives until the ADD's own reference
//! is dropped, and __fput() meets a concurrent epoll_wait as before the fix.
//!
//! Parameters: `file_kind` (as epoll_close_race; default dmabuf-heap), `pollers` (threads;
//! default 1), `closer_cpus` / `adder_cpus` / `poller_cpus` (pinning lists; default vCPUs 0, 1,
//! 2 and on, modulo the guest's), `pin` (default true).

use super::epoll_close_race::{file_kind, param_u32, poller};
use super::pollable::Maker;
use super::stress::{place, run_slots, Worker};
use super::Ctx;
use crate::sys;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

/// What the closer and the adder share.
#[derive(Default)]
struct Round {
    /// The fd of the current round.
    fd: AtomicI32,
    /// The round the closer has handed over, the adder has taken, the adder has finished.
    published: AtomicU64,
    taken: AtomicU64,
    done: AtomicU64,
}

/// Spin until `flag` reaches `round` or the worker is told to stop; false when stopped.
fn wait_for(worker: &Worker, flag: &AtomicU64, round: u64) -> bool {
    let mut spins = 0u32;
    while flag.load(Ordering::Acquire) < round {
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(1024) && worker.should_stop() {
            return false;
        }
        std::hint::spin_loop();
    }
    true
}

fn closer(worker: &mut Worker, shared: &Round, kind: &str) -> Result<(), String> {
    let maker = Maker::new(kind)?;
    let mut round = 0u64;
    while !worker.should_stop() {
        let (fd, peer): (OwnedFd, Option<OwnedFd>) = match maker.make() {
            Ok(made) => made,
            Err(e) => {
                worker.error(e);
                continue;
            }
        };
        round += 1;
        shared.fd.store(fd.as_raw_fd(), Ordering::Relaxed);
        shared.published.store(round, Ordering::Release);
        if !wait_for(worker, &shared.taken, round) {
            break;
        }
        // The close the ADD races with.
        drop(fd);
        drop(peer);
        if !wait_for(worker, &shared.done, round) {
            break;
        }
        worker.set_count(round);
        if round.is_multiple_of(64) {
            worker.sample_cpu();
        }
        worker.pace();
    }
    // An adder waiting for a round that will not come is told to stop by its own deadline.
    Ok(())
}

fn adder(worker: &mut Worker, shared: &Round, epfd: &OwnedFd) -> Result<(), String> {
    let mut round = 0u64;
    while !worker.should_stop() {
        if !wait_for(worker, &shared.published, round + 1) {
            break;
        }
        round = shared.published.load(Ordering::Acquire);
        let fd = shared.fd.load(Ordering::Relaxed);
        shared.taken.store(round, Ordering::Release);
        // EBADF when the close came first: counted with the errors.
        if let Err(e) = sys::epoll_ctl(
            epfd.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            fd,
            (libc::EPOLLIN | libc::EPOLLOUT) as u32,
            fd as u64,
        ) {
            worker.error(e);
        }
        shared.done.store(round, Ordering::Release);
        worker.set_count(round);
        if round.is_multiple_of(64) {
            worker.sample_cpu();
        }
        worker.pace();
    }
    Ok(())
}

pub fn run(ctx: &Ctx) -> Result<(), String> {
    let kind = file_kind(ctx)?;
    let pollers = param_u32(ctx, "pollers")?.unwrap_or(1);
    let mut slots = place(ctx, "closer", 1, "closer_cpus", 0)?;
    slots.extend(place(ctx, "adder", 1, "adder_cpus", 1)?);
    slots.extend(place(ctx, "poller", pollers, "poller_cpus", 2)?);
    let epfd = sys::epoll_create(libc::EPOLL_CLOEXEC).map_err(|e| format!("epoll_create1: {e}"))?;
    let shared = Round::default();
    run_slots(ctx, &slots, |worker| match worker.role {
        "closer" => closer(worker, &shared, &kind),
        "adder" => adder(worker, &shared, &epfd),
        _ => poller(worker, &epfd),
    })
}
