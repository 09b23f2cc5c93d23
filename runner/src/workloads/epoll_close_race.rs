//! The 2024 epoll/close race: closers create a pollable file, EPOLL_CTL_ADD it to a shared
//! epoll instance (EPOLLIN|EPOLLOUT, level-triggered) and close it; pollers spin
//! epoll_wait(..., 0) on the same instance. A kernel whose epoll polls a file without
//! pinning it lets ->poll() run on a file whose last reference is being dropped.
//!
//! Parameters: `file_kind` (dmabuf-heap, udmabuf, eventfd, pipe, timerfd; default
//! dmabuf-heap), `closers` / `pollers` (threads; default half the vCPUs each),
//! `closer_cpus` / `poller_cpus` (pinning lists), `pin` (default true).

use super::pollable::Maker;
use super::stress::{place, run_slots, Worker};
use super::Ctx;
use crate::sys;
use std::os::fd::{AsRawFd, OwnedFd};

const BATCH: u64 = 64;

/// A thread count among the parameters (`closers`, `pollers`), as checked by its type.
pub(super) fn param_u32(ctx: &Ctx, key: &str) -> Result<Option<u32>, String> {
    runner::quantity::param::<runner::quantity::Threads>(&ctx.req.params, key)
        .map(|t| t.map(runner::quantity::Threads::get))
        .map_err(|e| e.to_string())
}

fn closer(worker: &mut Worker, epfd: &OwnedFd, kind: &str) -> Result<(), String> {
    let maker = Maker::new(kind)?;
    let mut iterations = 0u64;
    while !worker.should_stop() {
        for _ in 0..BATCH {
            let (fd, peer) = match maker.make() {
                Ok(made) => made,
                Err(e) => {
                    worker.error(e);
                    continue;
                }
            };
            if let Err(e) = sys::epoll_ctl(
                epfd.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd.as_raw_fd(),
                (libc::EPOLLIN | libc::EPOLLOUT) as u32,
                fd.as_raw_fd() as u64,
            ) {
                worker.error(e);
            }
            drop(fd);
            drop(peer);
            iterations += 1;
            worker.pace();
        }
        worker.set_count(iterations);
        worker.sample_cpu();
    }
    Ok(())
}

/// Spin epoll_wait(..., 0) on `epfd` until the deadline.
pub(super) fn poller(worker: &mut Worker, epfd: &OwnedFd) -> Result<(), String> {
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 16];
    let mut polls = 0u64;
    while !worker.should_stop() {
        for _ in 0..BATCH {
            if let Err(e) = sys::epoll_wait(epfd.as_raw_fd(), &mut events, 0) {
                worker.error(e);
            }
            polls += 1;
            worker.pace();
        }
        worker.set_count(polls);
        worker.sample_cpu();
    }
    Ok(())
}

/// The scenario's `file_kind` (default dmabuf-heap), checked to be available here: an agent
/// error naming the device fails the run fast.
pub(super) fn file_kind(ctx: &Ctx) -> Result<String, String> {
    let kind = ctx
        .req
        .params
        .get("file_kind")
        .and_then(|v| v.as_str())
        .unwrap_or("dmabuf-heap")
        .to_string();
    drop(Maker::new(&kind)?);
    Ok(kind)
}

pub fn run(ctx: &Ctx) -> Result<(), String> {
    let kind = file_kind(ctx)?;
    let closers = param_u32(ctx, "closers")?.unwrap_or((ctx.nproc / 2).max(1));
    let pollers = param_u32(ctx, "pollers")?.unwrap_or((ctx.nproc - closers.min(ctx.nproc)).max(1));
    let mut slots = place(ctx, "closer", closers, "closer_cpus", 0)?;
    slots.extend(place(ctx, "poller", pollers, "poller_cpus", closers)?);
    let epfd = sys::epoll_create(libc::EPOLL_CLOEXEC).map_err(|e| format!("epoll_create1: {e}"))?;
    run_slots(ctx, &slots, |worker| match worker.role {
        "closer" => closer(worker, &epfd, &kind),
        _ => poller(worker, &epfd),
    })
}
