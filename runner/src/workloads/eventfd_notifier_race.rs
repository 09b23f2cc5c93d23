//! The 2009 eventfd notifier race: eventfds registered with an in-kernel client that signals
//! them on completions, closed on one vCPU while completions are driven from another. A
//! kernel whose eventfd context dies with its file lets the client signal freed memory.
//!
//! Parameters: `client` = `io_uring` (IORING_REGISTER_EVENTFD, NOP completions; default) or
//! `aio` (IOCB_CMD_POLL with IOCB_FLAG_RESFD on a pipe, completed by writing to the pipe);
//! `closer_cpus` / `driver_cpus` (pinning lists), `pin` (default true).

use super::stress::{place, run_slots, Worker};
use super::Ctx;
use crate::sys::{self, Aio};
use nix::errno::Errno;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

fn eventfd() -> Result<OwnedFd, Errno> {
    sys::eventfd(0, libc::EFD_CLOEXEC)
}

fn uring_closer(worker: &mut Worker, ring: RawFd) -> Result<(), String> {
    let mut iterations = 0u64;
    while !worker.should_stop() {
        let efd = match eventfd() {
            Ok(fd) => fd,
            Err(e) => {
                worker.error(e);
                continue;
            }
        };
        if let Err(e) = sys::io_uring_register_eventfd(ring, efd.as_raw_fd()) {
            worker.error(e);
        }
        // The ring keeps signalling this eventfd after its only fd is gone.
        drop(efd);
        std::thread::yield_now();
        if let Err(e) = sys::io_uring_unregister_eventfd(ring) {
            worker.error(e);
        }
        iterations += 1;
        worker.set_count(iterations);
        if iterations.is_multiple_of(64) {
            worker.sample_cpu();
        }
        worker.pace();
    }
    Ok(())
}

fn uring_driver(worker: &mut Worker, ring: &Mutex<io_uring::IoUring>) -> Result<(), String> {
    let mut ring = ring.lock().unwrap();
    let mut completions = 0u64;
    while !worker.should_stop() {
        sys::push_nops(&mut ring, 8);
        if let Err(e) = ring.submit_and_wait(1) {
            worker.error(Errno::from_raw(e.raw_os_error().unwrap_or(0)));
        }
        completions += ring.completion().count() as u64;
        worker.set_count(completions);
        worker.sample_cpu();
        worker.pace();
    }
    Ok(())
}

fn aio_closer(
    worker: &mut Worker,
    aio: &Aio,
    to_driver: &Mutex<mpsc::Sender<OwnedFd>>,
) -> Result<(), String> {
    let mut iterations = 0u64;
    while !worker.should_stop() {
        let (efd, (read_end, write_end)) = match (eventfd(), sys::pipe()) {
            (Ok(efd), Ok(pipe)) => (efd, pipe),
            (Err(e), _) | (_, Err(e)) => {
                worker.error(e);
                continue;
            }
        };
        if let Err(e) = aio.submit_poll(read_end.as_raw_fd(), efd.as_raw_fd()) {
            worker.error(e);
            continue;
        }
        // The pending poll keeps this eventfd as its completion notifier; its fd goes now.
        drop(efd);
        if to_driver.lock().unwrap().send(write_end).is_err() {
            break;
        }
        match aio.get_one(Duration::from_secs(1)) {
            Ok(true) => {}
            Ok(false) => worker.error(Errno::ETIMEDOUT),
            Err(e) => worker.error(e),
        }
        drop(read_end);
        iterations += 1;
        worker.set_count(iterations);
        if iterations.is_multiple_of(64) {
            worker.sample_cpu();
        }
        worker.pace();
    }
    Ok(())
}

fn aio_driver(
    worker: &mut Worker,
    from_closer: &Mutex<mpsc::Receiver<OwnedFd>>,
) -> Result<(), String> {
    let from_closer = from_closer.lock().unwrap();
    let mut writes = 0u64;
    while !worker.should_stop() {
        let Ok(write_end) = from_closer.recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        match sys::write(write_end.as_raw_fd(), b"x") {
            Ok(1) => {}
            Ok(_) => worker.error(Errno::EAGAIN),
            Err(e) => worker.error(e),
        }
        writes += 1;
        worker.set_count(writes);
        if writes.is_multiple_of(64) {
            worker.sample_cpu();
        }
        worker.pace();
    }
    Ok(())
}

pub fn run(ctx: &Ctx) -> Result<(), String> {
    let client = ctx
        .req
        .params
        .get("client")
        .and_then(|v| v.as_str())
        .unwrap_or("io_uring");
    let mut slots = place(ctx, "closer", 1, "closer_cpus", 0)?;
    slots.extend(place(ctx, "driver", 1, "driver_cpus", 1)?);
    match client {
        "io_uring" => {
            let ring = io_uring::IoUring::new(64)
                .map_err(|e| format!("io_uring_setup: {e} (CONFIG_IO_URING?)"))?;
            let fd = ring.as_raw_fd();
            let ring = Mutex::new(ring);
            run_slots(ctx, &slots, |worker| match worker.role {
                "closer" => uring_closer(worker, fd),
                _ => uring_driver(worker, &ring),
            })
        }
        "aio" => {
            let aio = Aio::setup(128).map_err(|e| format!("io_setup: {e} (CONFIG_AIO?)"))?;
            let (tx, rx) = mpsc::channel();
            let (tx, rx) = (Mutex::new(tx), Mutex::new(rx));
            run_slots(ctx, &slots, |worker| match worker.role {
                "closer" => aio_closer(worker, &aio, &tx),
                _ => aio_driver(worker, &rx),
            })
        }
        other => Err(format!("unknown client {other:?}; known: io_uring, aio")),
    }
}
