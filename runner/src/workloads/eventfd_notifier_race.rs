//! The 2009 eventfd notifier race: eventfds registered with an in-kernel client that signals
//! them on completions, closed on one vCPU while completions are driven from another. A
//! kernel whose eventfd context dies with its file lets the client signal freed memory.
//!
//! Parameters: `client` = `io_uring` (IORING_REGISTER_EVENTFD, NOP completions; default) or
//! `aio` (IOCB_CMD_POLL with IOCB_FLAG_RESFD on a pipe, completed by writing to the pipe);
//! `closer_cpus` / `driver_cpus` (pinning lists), `pin` (default true).

use super::stress::{place, run_slots, Worker};
use super::Ctx;
use nix::errno::Errno;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

const IORING_REGISTER_EVENTFD: libc::c_uint = 4;
const IORING_UNREGISTER_EVENTFD: libc::c_uint = 5;

fn eventfd() -> Result<OwnedFd, Errno> {
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(Errno::last());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ring_register(
    ring: RawFd,
    op: libc::c_uint,
    arg: *const libc::c_void,
    nr: libc::c_uint,
) -> Result<(), Errno> {
    let rc = unsafe { libc::syscall(libc::SYS_io_uring_register, ring, op, arg, nr) };
    if rc < 0 {
        return Err(Errno::last());
    }
    Ok(())
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
        let raw = efd.as_raw_fd();
        if let Err(e) = ring_register(
            ring,
            IORING_REGISTER_EVENTFD,
            &raw as *const RawFd as *const _,
            1,
        ) {
            worker.error(e);
        }
        // The ring keeps signalling this eventfd after its only fd is gone.
        drop(efd);
        std::thread::yield_now();
        if let Err(e) = ring_register(ring, IORING_UNREGISTER_EVENTFD, std::ptr::null(), 0) {
            worker.error(e);
        }
        iterations += 1;
        worker.set_count(iterations);
        if iterations.is_multiple_of(64) {
            worker.sample_cpu();
        }
    }
    Ok(())
}

fn uring_driver(worker: &mut Worker, ring: &Mutex<io_uring::IoUring>) -> Result<(), String> {
    let mut ring = ring.lock().unwrap();
    let mut completions = 0u64;
    while !worker.should_stop() {
        for _ in 0..8 {
            let nop = io_uring::opcode::Nop::new().build();
            if unsafe { ring.submission().push(&nop) }.is_err() {
                break;
            }
        }
        if let Err(e) = ring.submit_and_wait(1) {
            worker.error(Errno::from_raw(e.raw_os_error().unwrap_or(0)));
        }
        completions += ring.completion().count() as u64;
        worker.set_count(completions);
        worker.sample_cpu();
    }
    Ok(())
}

/// struct iocb (include/uapi/linux/aio_abi.h), little-endian layout.
#[repr(C)]
#[derive(Default)]
struct Iocb {
    aio_data: u64,
    aio_key: u32,
    aio_rw_flags: i32,
    aio_lio_opcode: u16,
    aio_reqprio: i16,
    aio_fildes: u32,
    aio_buf: u64,
    aio_nbytes: u64,
    aio_offset: i64,
    aio_reserved2: u64,
    aio_flags: u32,
    aio_resfd: u32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct IoEvent {
    data: u64,
    obj: u64,
    res: i64,
    res2: i64,
}

const IOCB_CMD_POLL: u16 = 5;
const IOCB_FLAG_RESFD: u32 = 1;

fn aio_closer(
    worker: &mut Worker,
    aio: u64,
    to_driver: &Mutex<mpsc::Sender<OwnedFd>>,
) -> Result<(), String> {
    let mut iterations = 0u64;
    let mut events = [IoEvent::default(); 1];
    while !worker.should_stop() {
        let (efd, mut fds) = match (eventfd(), [0; 2]) {
            (Ok(efd), fds) => (efd, fds),
            (Err(e), _) => {
                worker.error(e);
                continue;
            }
        };
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
            worker.error(Errno::last());
            continue;
        }
        let (read_end, write_end) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let mut iocb = Iocb {
            aio_lio_opcode: IOCB_CMD_POLL,
            aio_fildes: read_end.as_raw_fd() as u32,
            aio_buf: libc::POLLIN as u64,
            aio_flags: IOCB_FLAG_RESFD,
            aio_resfd: efd.as_raw_fd() as u32,
            ..Default::default()
        };
        let mut list = [&mut iocb as *mut Iocb];
        let rc = unsafe { libc::syscall(libc::SYS_io_submit, aio, 1, list.as_mut_ptr()) };
        if rc < 1 {
            worker.error(Errno::last());
            continue;
        }
        // The pending poll keeps this eventfd as its completion notifier; its fd goes now.
        drop(efd);
        if to_driver.lock().unwrap().send(write_end).is_err() {
            break;
        }
        let timeout = libc::timespec {
            tv_sec: 1,
            tv_nsec: 0,
        };
        let got = unsafe {
            libc::syscall(
                libc::SYS_io_getevents,
                aio,
                1,
                1,
                events.as_mut_ptr(),
                &timeout,
            )
        };
        if got < 1 {
            worker.error(if got < 0 {
                Errno::last()
            } else {
                Errno::ETIMEDOUT
            });
        }
        drop(read_end);
        iterations += 1;
        worker.set_count(iterations);
        if iterations.is_multiple_of(64) {
            worker.sample_cpu();
        }
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
        if unsafe { libc::write(write_end.as_raw_fd(), b"x".as_ptr().cast(), 1) } != 1 {
            worker.error(Errno::last());
        }
        writes += 1;
        worker.set_count(writes);
        if writes.is_multiple_of(64) {
            worker.sample_cpu();
        }
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
    let mut slots = place(ctx, "closer", 1, "closer_cpus", 0);
    slots.extend(place(ctx, "driver", 1, "driver_cpus", 1));
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
            let mut aio: u64 = 0;
            if unsafe { libc::syscall(libc::SYS_io_setup, 128, &mut aio) } < 0 {
                return Err(format!("io_setup: {} (CONFIG_AIO?)", Errno::last()));
            }
            let (tx, rx) = mpsc::channel();
            let (tx, rx) = (Mutex::new(tx), Mutex::new(rx));
            let result = run_slots(ctx, &slots, |worker| match worker.role {
                "closer" => aio_closer(worker, aio, &tx),
                _ => aio_driver(worker, &rx),
            });
            unsafe { libc::syscall(libc::SYS_io_destroy, aio) };
            result
        }
        other => Err(format!("unknown client {other:?}; known: io_uring, aio")),
    }
}
