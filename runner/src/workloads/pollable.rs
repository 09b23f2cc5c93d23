//! Pollable files for the race workloads, made with real syscalls: dma-buf from the system
//! heap, udmabuf from a sealed memfd, eventfd, pipe, timerfd.

use crate::sys;
use nix::errno::Errno;
use std::os::fd::{AsRawFd, OwnedFd};

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

impl Maker {
    pub fn new(kind: &str) -> Result<Maker, String> {
        Ok(match kind {
            "dmabuf-heap" => Maker::DmaHeap(open("/dev/dma_heap/system")?),
            "udmabuf" => {
                let dev = open("/dev/udmabuf")?;
                let memfd = sys::memfd_create(c"lab-udmabuf", libc::MFD_ALLOW_SEALING)
                    .map_err(|e| format!("memfd_create: {e}"))?;
                sys::ftruncate(memfd.as_raw_fd(), PAGE as libc::off_t)
                    .map_err(|e| format!("ftruncate memfd: {e}"))?;
                sys::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_SHRINK)
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
        let one = |fd: OwnedFd| (fd, None);
        match self {
            Maker::DmaHeap(heap) => sys::dma_heap_alloc(heap.as_raw_fd(), PAGE).map(one),
            Maker::Udmabuf { dev, memfd } => {
                sys::udmabuf_create(dev.as_raw_fd(), memfd.as_raw_fd(), PAGE).map(one)
            }
            Maker::Eventfd => sys::eventfd(0, libc::EFD_CLOEXEC).map(one),
            Maker::Pipe => {
                let (r, w) = sys::pipe()?;
                Ok((w, Some(r)))
            }
            Maker::Timerfd => {
                sys::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_CLOEXEC).map(one)
            }
        }
    }
}
