//! A task blocked in D state long enough for the kernel's hung-task detector to report it,
//! then released so the run completes.
//!
//! A `holder` thread write(2)s to a tmpfs file from a page registered with userfaultfd: the
//! write takes the inode's lock, then faults on the page and waits (killable) for userfaultfd.
//! A `waiter` thread then writes to the same file and sleeps uninterruptibly on that lock,
//! which is what `kernel/hung_task.c` reports ("INFO: task ... blocked for more than N
//! seconds"). A `releaser` thread keeps the heartbeat going, and at the deadline fills the
//! page (UFFDIO_ZEROPAGE), which lets both writes finish.
//!
//! Params: `hung_task_timeout_secs` (default 2) is written to /proc/sys/kernel/ first.
//! Needs CONFIG_DETECT_HUNG_TASK and CONFIG_USERFAULTFD.

use super::stress::{run_slots, Slot, Worker};
use super::Ctx;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

// <linux/userfaultfd.h>: _IOWR(0xAA, nr, struct) for the three ioctls used here.
const UFFD_API: u64 = 0xAA;
const UFFDIO_API: libc::c_ulong = 0xc018_aa3f;
const UFFDIO_REGISTER: libc::c_ulong = 0xc020_aa00;
const UFFDIO_ZEROPAGE: libc::c_ulong = 0xc020_aa04;
const UFFDIO_REGISTER_MODE_MISSING: u64 = 1;

#[repr(C)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
struct UffdioRange {
    start: u64,
    len: u64,
}

#[repr(C)]
struct UffdioRegister {
    range: UffdioRange,
    mode: u64,
    ioctls: u64,
}

#[repr(C)]
struct UffdioZeropage {
    range: UffdioRange,
    mode: u64,
    zeropage: i64,
}

/// An anonymous page whose first touch waits on userfaultfd.
struct TrappedPage {
    uffd: OwnedFd,
    addr: *mut libc::c_void,
    len: usize,
}

// The page is only read by the kernel (write(2)'s copy) and filled by UFFDIO_ZEROPAGE.
unsafe impl Sync for TrappedPage {}

impl TrappedPage {
    fn new() -> Result<Self, String> {
        let len = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(format!(
                "userfaultfd: {} (CONFIG_USERFAULTFD?)",
                std::io::Error::last_os_error()
            ));
        }
        let uffd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let mut api = UffdioApi {
            api: UFFD_API,
            features: 0,
            ioctls: 0,
        };
        ioctl(
            &uffd,
            UFFDIO_API,
            &mut api as *mut _ as *mut libc::c_void,
            "UFFDIO_API",
        )?;
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
            return Err(format!("mmap: {}", std::io::Error::last_os_error()));
        }
        let page = TrappedPage { uffd, addr, len };
        let mut reg = UffdioRegister {
            range: page.range(),
            mode: UFFDIO_REGISTER_MODE_MISSING,
            ioctls: 0,
        };
        ioctl(
            &page.uffd,
            UFFDIO_REGISTER,
            &mut reg as *mut _ as *mut libc::c_void,
            "UFFDIO_REGISTER",
        )?;
        Ok(page)
    }

    fn range(&self) -> UffdioRange {
        UffdioRange {
            start: self.addr as u64,
            len: self.len as u64,
        }
    }

    /// Map the zero page there, waking whoever faulted on it.
    fn release(&self) -> Result<(), String> {
        let mut zero = UffdioZeropage {
            range: self.range(),
            mode: 0,
            zeropage: 0,
        };
        ioctl(
            &self.uffd,
            UFFDIO_ZEROPAGE,
            &mut zero as *mut _ as *mut libc::c_void,
            "UFFDIO_ZEROPAGE",
        )
    }
}

impl Drop for TrappedPage {
    fn drop(&mut self) {
        unsafe { libc::munmap(self.addr, self.len) };
    }
}

fn ioctl(
    fd: &OwnedFd,
    req: libc::c_ulong,
    arg: *mut libc::c_void,
    name: &str,
) -> Result<(), String> {
    if unsafe { libc::ioctl(fd.as_raw_fd(), req, arg) } < 0 {
        return Err(format!("{name}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

pub fn run(ctx: &Ctx) -> Result<(), String> {
    let timeout = ctx
        .req
        .params
        .get("hung_task_timeout_secs")
        .and_then(|v| v.as_u64())
        .unwrap_or(2);
    std::fs::write(
        "/proc/sys/kernel/hung_task_timeout_secs",
        timeout.to_string(),
    )
    .map_err(|e| {
        format!("write /proc/sys/kernel/hung_task_timeout_secs: {e} (CONFIG_DETECT_HUNG_TASK?)")
    })?;
    let page = TrappedPage::new()?;
    let path = "/tmp/hung_task.file";
    let file = File::create(path).map_err(|e| format!("create {path}: {e}"))?;
    let holding = AtomicBool::new(false);
    let slots = [
        Slot {
            role: "holder",
            cpu: None,
        },
        Slot {
            role: "waiter",
            cpu: None,
        },
        Slot {
            role: "releaser",
            cpu: None,
        },
    ];
    run_slots(ctx, &slots, |worker: &mut Worker| match worker.role {
        "holder" => {
            holding.store(true, Ordering::SeqCst);
            // Takes the inode lock, then waits in the fault on the trapped page.
            let n = unsafe { libc::pwrite(file.as_raw_fd(), page.addr, page.len, 0) };
            if n < 0 {
                return Err(format!("holder write: {}", std::io::Error::last_os_error()));
            }
            worker.set_count(1);
            Ok(())
        }
        "waiter" => {
            while !holding.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(10));
            }
            // Give the holder time to reach the fault with the lock held.
            std::thread::sleep(Duration::from_millis(200));
            file.write_at(b"w", 0)
                .map_err(|e| format!("waiter write: {e}"))?;
            worker.set_count(1);
            Ok(())
        }
        _ => {
            let mut ticks = 0;
            while !worker.should_stop() {
                std::thread::sleep(Duration::from_millis(100));
                ticks += 1;
                worker.set_count(ticks);
            }
            page.release()
        }
    })
}
