//! Pollable files for the race workloads, made with real syscalls: dma-buf from the system
//! heap, udmabuf from a sealed memfd, eventfd, pipe, timerfd.

use nix::errno::Errno;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// struct dma_heap_allocation_data (include/uapi/linux/dma-heap.h).
#[repr(C)]
struct DmaHeapAllocation {
    len: u64,
    fd: u32,
    fd_flags: u32,
    heap_flags: u64,
}

/// struct udmabuf_create (include/uapi/linux/udmabuf.h).
#[repr(C)]
struct UdmabufCreate {
    memfd: u32,
    flags: u32,
    offset: u64,
    size: u64,
}

nix::ioctl_readwrite!(dma_heap_alloc, b'H', 0x0, DmaHeapAllocation);
nix::ioctl_write_ptr!(udmabuf_create, b'u', 0x42, UdmabufCreate);

const PAGE: u64 = 4096;

/// The kinds a scenario can ask for (`file_kind`).
pub const KINDS: &[&str] = &["dmabuf-heap", "udmabuf", "eventfd", "pipe", "timerfd"];

/// Per-thread state a kind needs to make its files.
pub enum Maker {
    DmaHeap(OwnedFd),
    Udmabuf { dev: OwnedFd, memfd: OwnedFd },
    Eventfd,
    Pipe,
    Timerfd,
}

fn open(path: &str) -> Result<OwnedFd, String> {
    nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("open {path}: {e}"))
}

fn cvt(rc: libc::c_int) -> Result<RawFd, Errno> {
    if rc < 0 {
        Err(Errno::last())
    } else {
        Ok(rc)
    }
}

impl Maker {
    pub fn new(kind: &str) -> Result<Maker, String> {
        Ok(match kind {
            "dmabuf-heap" => Maker::DmaHeap(open("/dev/dma_heap/system")?),
            "udmabuf" => {
                let dev = open("/dev/udmabuf")?;
                let memfd = cvt(unsafe {
                    libc::memfd_create(c"lab-udmabuf".as_ptr(), libc::MFD_ALLOW_SEALING)
                })
                .map_err(|e| format!("memfd_create: {e}"))?;
                let memfd = unsafe { OwnedFd::from_raw_fd(memfd) };
                cvt(unsafe { libc::ftruncate(memfd.as_raw_fd(), PAGE as libc::off_t) })
                    .map_err(|e| format!("ftruncate memfd: {e}"))?;
                cvt(unsafe {
                    libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_SHRINK)
                })
                .map_err(|e| format!("F_SEAL_SHRINK: {e}"))?;
                Maker::Udmabuf { dev, memfd }
            }
            "eventfd" => Maker::Eventfd,
            "pipe" => Maker::Pipe,
            "timerfd" => Maker::Timerfd,
            other => {
                return Err(format!(
                    "unknown file_kind {other:?}; known: {}",
                    KINDS.join(", ")
                ))
            }
        })
    }

    /// A fresh pollable fd (and, for pipes, the other end to close with it).
    pub fn make(&self) -> Result<(OwnedFd, Option<OwnedFd>), Errno> {
        let one = |fd: RawFd| (unsafe { OwnedFd::from_raw_fd(fd) }, None);
        match self {
            Maker::DmaHeap(heap) => {
                let mut data = DmaHeapAllocation {
                    len: PAGE,
                    fd: 0,
                    fd_flags: (libc::O_RDWR | libc::O_CLOEXEC) as u32,
                    heap_flags: 0,
                };
                unsafe { dma_heap_alloc(heap.as_raw_fd(), &mut data) }?;
                Ok(one(data.fd as RawFd))
            }
            Maker::Udmabuf { dev, memfd } => {
                let create = UdmabufCreate {
                    memfd: memfd.as_raw_fd() as u32,
                    flags: 0x01, // UDMABUF_FLAGS_CLOEXEC
                    offset: 0,
                    size: PAGE,
                };
                let fd = unsafe { udmabuf_create(dev.as_raw_fd(), &create) }?;
                Ok(one(fd))
            }
            Maker::Eventfd => Ok(one(cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) })?)),
            Maker::Pipe => {
                let mut fds = [0; 2];
                cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
                let (r, w) =
                    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
                Ok((w, Some(r)))
            }
            Maker::Timerfd => Ok(one(cvt(unsafe {
                libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_CLOEXEC)
            })?)),
        }
    }
}
