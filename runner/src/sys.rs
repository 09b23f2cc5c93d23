//! The guest's raw system calls, each wrapped once and checked: errors come back as
//! [`Errno`], new descriptors come back owned, and every `unsafe` of the agent lives here with
//! the reason it holds. Workloads call these and nothing raw.

use nix::errno::Errno;
use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub type SysResult<T> = Result<T, Errno>;

fn cvt(rc: libc::c_int) -> SysResult<libc::c_int> {
    if rc < 0 {
        Err(Errno::last())
    } else {
        Ok(rc)
    }
}

fn cvt_long(rc: libc::c_long) -> SysResult<libc::c_long> {
    if rc < 0 {
        Err(Errno::last())
    } else {
        Ok(rc)
    }
}

fn cvt_size(rc: libc::ssize_t) -> SysResult<usize> {
    if rc < 0 {
        Err(Errno::last())
    } else {
        Ok(rc as usize)
    }
}

/// Own a descriptor a system call just created.
fn fresh(fd: libc::c_int) -> OwnedFd {
    // SAFETY: `fd` was returned by a call that creates a new descriptor (checked ≥ 0 by the
    // caller through cvt); nothing else in the process knows it, so it has one owner.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

pub fn eventfd(initval: u32, flags: libc::c_int) -> SysResult<OwnedFd> {
    // SAFETY: eventfd takes plain integers.
    cvt(unsafe { libc::eventfd(initval, flags) }).map(fresh)
}

pub fn epoll_create(flags: libc::c_int) -> SysResult<OwnedFd> {
    // SAFETY: epoll_create1 takes a plain integer.
    cvt(unsafe { libc::epoll_create1(flags) }).map(fresh)
}

/// epoll_ctl with an event of `events` carrying `data` (ignored for EPOLL_CTL_DEL).
pub fn epoll_ctl(ep: RawFd, op: libc::c_int, fd: RawFd, events: u32, data: u64) -> SysResult<()> {
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: `ev` is a valid epoll_event that lives for the call; the kernel only reads it.
    cvt(unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) }).map(drop)
}

/// epoll_wait into `events`; the number of events filled in.
pub fn epoll_wait(
    ep: RawFd,
    events: &mut [libc::epoll_event],
    timeout_ms: libc::c_int,
) -> SysResult<usize> {
    let max = events.len().min(libc::c_int::MAX as usize) as libc::c_int;
    // SAFETY: the kernel writes at most `max` events into `events`, which holds that many.
    cvt(unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), max, timeout_ms) }).map(|n| n as usize)
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> SysResult<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`, which has room for them.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    Ok((fresh(fds[0]), fresh(fds[1])))
}

pub fn memfd_create(name: &CStr, flags: libc::c_uint) -> SysResult<OwnedFd> {
    // SAFETY: `name` is a NUL-terminated string that lives for the call.
    cvt(unsafe { libc::memfd_create(name.as_ptr(), flags) }).map(fresh)
}

pub fn ftruncate(fd: RawFd, len: libc::off_t) -> SysResult<()> {
    // SAFETY: plain integers.
    cvt(unsafe { libc::ftruncate(fd, len) }).map(drop)
}

/// fcntl with an integer argument (F_ADD_SEALS, F_GETFD, F_DUPFD_QUERY...), not one that
/// creates a descriptor (see [`dup_cloexec`]).
pub fn fcntl(fd: RawFd, cmd: libc::c_int, arg: libc::c_int) -> SysResult<libc::c_int> {
    if matches!(cmd, libc::F_DUPFD | libc::F_DUPFD_CLOEXEC) {
        return Err(Errno::EINVAL);
    }
    // SAFETY: an integer argument, for commands that take one.
    cvt(unsafe { libc::fcntl(fd, cmd, arg) })
}

/// A close-on-exec duplicate of `fd`.
pub fn dup_cloexec(fd: RawFd) -> SysResult<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes an integer and returns a new descriptor.
    cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) }).map(fresh)
}

/// A duplicate of `fd` that survives execve.
pub fn dup_inheritable(fd: RawFd) -> SysResult<OwnedFd> {
    // SAFETY: dup takes an integer and returns a new descriptor.
    cvt(unsafe { libc::dup(fd) }).map(fresh)
}

/// Whether `fd` is an open descriptor.
pub fn is_open(fd: RawFd) -> bool {
    fcntl(fd, libc::F_GETFD, 0).is_ok()
}

/// Own a descriptor handed to this process on purpose (on its command line, across
/// execve); refused unless it is open.
pub fn adopt(fd: RawFd) -> SysResult<OwnedFd> {
    if !is_open(fd) {
        return Err(Errno::EBADF);
    }
    Ok(fresh(fd))
}

pub fn timerfd_create(clock: libc::clockid_t, flags: libc::c_int) -> SysResult<OwnedFd> {
    // SAFETY: plain integers.
    cvt(unsafe { libc::timerfd_create(clock, flags) }).map(fresh)
}

/// Write `bytes` with one write(2); the number written.
pub fn write(fd: RawFd, bytes: &[u8]) -> SysResult<usize> {
    // SAFETY: the kernel reads at most `bytes.len()` bytes from `bytes`.
    cvt_size(unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) })
}

/// Whether `fd` is readable now (poll with timeout 0).
pub fn readable(fd: RawFd) -> SysResult<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, which the kernel writes back.
    cvt(unsafe { libc::poll(&mut pfd, 1, 0) }).map(|n| n == 1)
}

/// getppid(2) as a real system call every time (libc may cache it).
pub fn getppid_syscall() {
    // SAFETY: getppid takes no arguments.
    unsafe { libc::syscall(libc::SYS_getppid) };
}

/// The CPU the calling thread runs on (getcpu(2)).
pub fn getcpu() -> Option<u32> {
    let mut cpu: libc::c_uint = 0;
    // SAFETY: the kernel writes one unsigned int to `cpu`; the other pointers may be null.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_getcpu,
            &mut cpu as *mut libc::c_uint,
            std::ptr::null_mut::<libc::c_uint>(),
            std::ptr::null_mut::<libc::c_void>(),
        )
    };
    (rc == 0).then_some(cpu)
}

pub fn getpid() -> libc::pid_t {
    std::process::id() as libc::pid_t
}

pub fn kill(pid: libc::pid_t, signal: libc::c_int) -> SysResult<()> {
    // SAFETY: plain integers.
    cvt(unsafe { libc::kill(pid, signal) }).map(drop)
}

/// kcmp(2) KCMP_FILE between two descriptors of `pid`.
pub fn kcmp_file(pid: libc::pid_t, a: RawFd, b: RawFd) -> SysResult<libc::c_long> {
    const KCMP_FILE: libc::c_int = 0;
    // SAFETY: kcmp takes plain integers.
    cvt_long(unsafe { libc::syscall(libc::SYS_kcmp, pid, pid, KCMP_FILE, a, b) })
}

/// Block `signal` for this thread and return a close-on-exec signalfd for it.
pub fn blocked_signalfd(signal: libc::c_int) -> SysResult<OwnedFd> {
    let mut mask = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initializes the set it is given; the rest read the initialized set.
    unsafe {
        cvt(libc::sigemptyset(mask.as_mut_ptr()))?;
        let mut mask = mask.assume_init();
        cvt(libc::sigaddset(&mut mask, signal))?;
        cvt(libc::sigprocmask(
            libc::SIG_BLOCK,
            &mask,
            std::ptr::null_mut(),
        ))?;
        cvt(libc::signalfd(-1, &mask, libc::SFD_CLOEXEC)).map(fresh)
    }
}

/// End this process now, without unwinding or flushing (a forked child's only way out).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions.
    unsafe { libc::_exit(code) }
}

/// execv(2); returns only when it failed.
pub fn execv(path: &CStr, args: &[CString]) -> Errno {
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: `path` and every argument are NUL-terminated strings that outlive the call,
    // and `argv` ends with a null pointer.
    unsafe { libc::execv(path.as_ptr(), argv.as_ptr()) };
    Errno::last()
}

pub use nix::unistd::ForkResult;

/// fork(2), refused unless this process has one thread: the child of a multi-threaded
/// process may only call async-signal-safe functions, and the agent's children do more.
pub fn fork_single_threaded() -> SysResult<ForkResult> {
    let threads = std::fs::read_dir("/proc/self/task")
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::ENOENT)))?
        .count();
    if threads != 1 {
        return Err(Errno::EBUSY);
    }
    // SAFETY: the process has a single thread (checked above), so the child is a complete
    // copy of it and may do anything the parent could.
    unsafe { nix::unistd::fork() }
}

/// struct dma_heap_allocation_data (include/uapi/linux/dma-heap.h).
#[repr(C)]
pub struct DmaHeapAllocation {
    len: u64,
    fd: u32,
    fd_flags: u32,
    heap_flags: u64,
}

/// struct udmabuf_create (include/uapi/linux/udmabuf.h).
#[repr(C)]
pub struct UdmabufCreate {
    memfd: u32,
    flags: u32,
    offset: u64,
    size: u64,
}

nix::ioctl_readwrite!(dma_heap_alloc_ioctl, b'H', 0x0, DmaHeapAllocation);
nix::ioctl_write_ptr!(udmabuf_create_ioctl, b'u', 0x42, UdmabufCreate);

/// A `len`-byte dma-buf from a dma-heap (DMA_HEAP_IOCTL_ALLOC).
pub fn dma_heap_alloc(heap: RawFd, len: u64) -> SysResult<OwnedFd> {
    let mut data = DmaHeapAllocation {
        len,
        fd: 0,
        fd_flags: (libc::O_RDWR | libc::O_CLOEXEC) as u32,
        heap_flags: 0,
    };
    // SAFETY: `data` is the struct this ioctl reads and writes back; it lives for the call.
    unsafe { dma_heap_alloc_ioctl(heap, &mut data) }?;
    Ok(fresh(data.fd as RawFd))
}

/// A close-on-exec dma-buf over `size` bytes of a sealed memfd (UDMABUF_CREATE).
pub fn udmabuf_create(dev: RawFd, memfd: RawFd, size: u64) -> SysResult<OwnedFd> {
    let create = UdmabufCreate {
        memfd: memfd as u32,
        flags: 0x01, // UDMABUF_FLAGS_CLOEXEC
        offset: 0,
        size,
    };
    // SAFETY: `create` is the struct this ioctl reads; it lives for the call.
    unsafe { udmabuf_create_ioctl(dev, &create) }.map(fresh)
}

/// IORING_REGISTER_EVENTFD: `ring` signals `efd` on its completions.
pub fn io_uring_register_eventfd(ring: RawFd, efd: RawFd) -> SysResult<()> {
    const IORING_REGISTER_EVENTFD: libc::c_uint = 4;
    // SAFETY: the kernel reads one int (the eventfd) from the pointer, valid for the call.
    cvt_long(unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring,
            IORING_REGISTER_EVENTFD,
            &efd as *const RawFd,
            1,
        )
    })
    .map(drop)
}

/// IORING_UNREGISTER_EVENTFD.
pub fn io_uring_unregister_eventfd(ring: RawFd) -> SysResult<()> {
    const IORING_UNREGISTER_EVENTFD: libc::c_uint = 5;
    // SAFETY: this operation takes no argument (null, 0).
    cvt_long(unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring,
            IORING_UNREGISTER_EVENTFD,
            std::ptr::null::<libc::c_void>(),
            0,
        )
    })
    .map(drop)
}

/// Queue up to `n` NOPs on `ring`'s submission queue; how many fit.
pub fn push_nops(ring: &mut io_uring::IoUring, n: usize) -> usize {
    let mut pushed = 0;
    for _ in 0..n {
        let nop = io_uring::opcode::Nop::new().build();
        // SAFETY: a NOP refers to no buffer or descriptor that could go away before it
        // completes.
        if unsafe { ring.submission().push(&nop) }.is_err() {
            break;
        }
        pushed += 1;
    }
    pushed
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

/// struct io_event.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct IoEvent {
    data: u64,
    obj: u64,
    res: i64,
    res2: i64,
}

/// A Linux AIO context (io_setup), destroyed when dropped.
pub struct Aio(u64);

impl Aio {
    pub fn setup(nr_events: u32) -> SysResult<Aio> {
        let mut ctx: u64 = 0;
        // SAFETY: the kernel writes the context id to `ctx`, valid for the call.
        cvt_long(unsafe { libc::syscall(libc::SYS_io_setup, nr_events, &mut ctx) })?;
        Ok(Aio(ctx))
    }

    /// IOCB_CMD_POLL for POLLIN on `fd`, completion signalled to the eventfd `resfd`
    /// (IOCB_FLAG_RESFD).
    pub fn submit_poll(&self, fd: RawFd, resfd: RawFd) -> SysResult<()> {
        const IOCB_CMD_POLL: u16 = 5;
        const IOCB_FLAG_RESFD: u32 = 1;
        let mut iocb = Iocb {
            aio_lio_opcode: IOCB_CMD_POLL,
            aio_fildes: fd as u32,
            aio_buf: libc::POLLIN as u64,
            aio_flags: IOCB_FLAG_RESFD,
            aio_resfd: resfd as u32,
            ..Default::default()
        };
        let mut list = [&mut iocb as *mut Iocb];
        // SAFETY: one pointer to an iocb that lives for the call (the kernel copies it); a
        // poll request refers to no user buffer.
        let n =
            cvt_long(unsafe { libc::syscall(libc::SYS_io_submit, self.0, 1, list.as_mut_ptr()) })?;
        if n < 1 {
            return Err(Errno::EAGAIN);
        }
        Ok(())
    }

    /// Wait up to `timeout` for one completion; whether one came.
    pub fn get_one(&self, timeout: std::time::Duration) -> SysResult<bool> {
        let mut events = [IoEvent::default(); 1];
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: room for one event in `events`; `ts` is valid for the call.
        let got = cvt_long(unsafe {
            libc::syscall(
                libc::SYS_io_getevents,
                self.0,
                1,
                1,
                events.as_mut_ptr(),
                &ts,
            )
        })?;
        Ok(got >= 1)
    }
}

impl Drop for Aio {
    fn drop(&mut self) {
        // SAFETY: destroys the context this value owns; nothing uses it afterwards.
        unsafe { libc::syscall(libc::SYS_io_destroy, self.0) };
    }
}

/// A private anonymous page, unmapped when dropped.
pub struct AnonPage {
    addr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the page is plain memory owned by this value; threads only hand its address to
// the kernel (write(2) reads it, userfaultfd fills it), never through Rust references.
unsafe impl Send for AnonPage {}
// SAFETY: as above: no Rust code reads or writes the page through shared references.
unsafe impl Sync for AnonPage {}

impl AnonPage {
    pub fn map() -> SysResult<AnonPage> {
        let len = page_size();
        // SAFETY: a new private anonymous mapping; no existing memory is touched.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        Ok(AnonPage { addr, len })
    }

    pub fn start(&self) -> u64 {
        self.addr as u64
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// pwrite(2) of the whole page to `fd` at `offset`: the kernel reads the page (and
    /// faults on it when it is registered with userfaultfd).
    pub fn pwrite_to(&self, fd: RawFd, offset: libc::off_t) -> SysResult<usize> {
        // SAFETY: the kernel reads `len` bytes from the mapping this value owns.
        cvt_size(unsafe { libc::pwrite(fd, self.addr, self.len, offset) })
    }
}

impl Drop for AnonPage {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping this value owns; nothing refers to it afterwards.
        unsafe { libc::munmap(self.addr, self.len) };
    }
}

pub fn page_size() -> usize {
    // SAFETY: sysconf takes an integer.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// A userfaultfd (close-on-exec) whose API handshake (UFFDIO_API) is done.
pub fn userfaultfd() -> SysResult<OwnedFd> {
    // SAFETY: userfaultfd takes an integer flag and returns a new descriptor.
    let fd = cvt_long(unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC) })?;
    let uffd = fresh(fd as libc::c_int);
    const UFFD_API: u64 = 0xAA;
    const UFFDIO_API: libc::c_ulong = 0xc018_aa3f;
    let mut api: [u64; 3] = [UFFD_API, 0, 0]; // struct uffdio_api { api, features, ioctls }
                                              // SAFETY: `api` has the layout of struct uffdio_api, which the ioctl reads and writes.
    cvt(unsafe { libc::ioctl(uffd.as_raw_fd(), UFFDIO_API, api.as_mut_ptr()) })?;
    Ok(uffd)
}

/// UFFDIO_REGISTER `page` for missing-page faults.
pub fn uffd_register_missing(uffd: RawFd, page: &AnonPage) -> SysResult<()> {
    const UFFDIO_REGISTER: libc::c_ulong = 0xc020_aa00;
    const MODE_MISSING: u64 = 1;
    // struct uffdio_register { struct uffdio_range { start, len }, mode, ioctls }
    let mut reg: [u64; 4] = [page.start(), page.len() as u64, MODE_MISSING, 0];
    // SAFETY: `reg` has the layout of struct uffdio_register; the range is a mapping `page`
    // owns.
    cvt(unsafe { libc::ioctl(uffd, UFFDIO_REGISTER, reg.as_mut_ptr()) }).map(drop)
}

/// UFFDIO_ZEROPAGE over `page`: map the zero page, waking whoever faulted on it.
pub fn uffd_zeropage(uffd: RawFd, page: &AnonPage) -> SysResult<()> {
    const UFFDIO_ZEROPAGE: libc::c_ulong = 0xc020_aa04;
    // struct uffdio_zeropage { struct uffdio_range { start, len }, mode, zeropage }
    let mut zero: [u64; 4] = [page.start(), page.len() as u64, 0, 0];
    // SAFETY: `zero` has the layout of struct uffdio_zeropage; the range is a mapping `page`
    // owns.
    cvt(unsafe { libc::ioctl(uffd, UFFDIO_ZEROPAGE, zero.as_mut_ptr()) }).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_come_back_owned_and_errors_as_errno() {
        let (r, w) = pipe().unwrap();
        assert_eq!(write(w.as_raw_fd(), b"x").unwrap(), 1);
        assert!(readable(r.as_raw_fd()).unwrap());
        let dup = dup_cloexec(r.as_raw_fd()).unwrap();
        assert_ne!(dup.as_raw_fd(), r.as_raw_fd());
        let ep = epoll_create(libc::EPOLL_CLOEXEC).unwrap();
        epoll_ctl(
            ep.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            r.as_raw_fd(),
            libc::EPOLLIN as u32,
            7,
        )
        .unwrap();
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 4];
        assert_eq!(epoll_wait(ep.as_raw_fd(), &mut events, 0).unwrap(), 1);
        assert_eq!({ events[0].u64 }, 7);
        assert_eq!(
            epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, r.as_raw_fd(), 0, 0),
            Err(Errno::EEXIST)
        );
        assert_eq!(fcntl(-1, libc::F_GETFD, 0), Err(Errno::EBADF));
        assert_eq!(fcntl(0, libc::F_DUPFD, 0), Err(Errno::EINVAL));
        assert!(adopt(-1).is_err());
    }

    #[test]
    fn an_anonymous_page_is_written_out_whole() {
        let page = AnonPage::map().unwrap();
        assert_eq!(page.len(), page_size());
        let (_r, w) = pipe().unwrap();
        // A pipe holds at least one page.
        assert_eq!(page.pwrite_to(w.as_raw_fd(), 0), Err(Errno::ESPIPE));
    }

    #[test]
    fn fork_is_refused_in_a_process_with_threads() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || rx.recv());
        assert_eq!(fork_single_threaded().err(), Some(Errno::EBUSY));
        drop(tx);
        let _ = other.join();
    }
}
