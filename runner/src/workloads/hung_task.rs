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
use crate::sys::{self, AnonPage};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// An anonymous page whose first touch waits on userfaultfd.
struct TrappedPage {
    uffd: OwnedFd,
    page: AnonPage,
}

impl TrappedPage {
    fn new() -> Result<Self, String> {
        let uffd =
            sys::userfaultfd().map_err(|e| format!("userfaultfd: {e} (CONFIG_USERFAULTFD?)"))?;
        let page = AnonPage::map().map_err(|e| format!("mmap: {e}"))?;
        sys::uffd_register_missing(uffd.as_raw_fd(), &page)
            .map_err(|e| format!("UFFDIO_REGISTER: {e}"))?;
        Ok(TrappedPage { uffd, page })
    }

    /// Map the zero page there, waking whoever faulted on it.
    fn release(&self) -> Result<(), String> {
        sys::uffd_zeropage(self.uffd.as_raw_fd(), &self.page)
            .map_err(|e| format!("UFFDIO_ZEROPAGE: {e}"))
    }
}

pub fn run(ctx: &Ctx) -> Result<(), String> {
    // Checked (1 to 86400 s) with the other quantities when the request came.
    let timeout = runner::quantity::param::<u64>(&ctx.req.params, "hung_task_timeout_secs")
        .map_err(|e| e.to_string())?
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
            page.page
                .pwrite_to(file.as_raw_fd(), 0)
                .map_err(|e| format!("holder write: {e}"))?;
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
