//! Ctrl-C and SIGTERM, for the whole `lab` process and for as long as it lives. The handlers
//! are installed once, before any work starts; every long wait (a kernel build, a VM run, a
//! slot in the VM pool) asks here, so an interruption at any point ends `lab` the same way:
//! children stopped, nothing half-written published, no verdict stored for what was cut.
//! A second Ctrl-C ends `lab` at once (its children die with it: see [`crate::child`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use tokio::sync::watch;

/// The error a step returns when it was cut short by the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// The exit status of an interrupted `lab` (128 + SIGINT, as shells report it).
pub const EXIT_STATUS: i32 = 130;

static FLAG: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));
static WATCH: LazyLock<watch::Sender<bool>> = LazyLock::new(|| watch::channel(false).0);

/// Install the handlers: from now on SIGINT and SIGTERM set the flag instead of killing
/// `lab`; a second one exits with [`EXIT_STATUS`].
pub fn install() -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    // A file over its size limit is a failed write (EFBIG) to report, not the end of `lab`.
    // SAFETY: setting a signal's disposition to SIG_IGN involves no handler code.
    if unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) } == libc::SIG_ERR {
        return Err(std::io::Error::last_os_error());
    }
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("lab-signals".into())
        .spawn(move || {
            for _ in signals.forever() {
                if FLAG.swap(true, Ordering::SeqCst) {
                    crate::events::note("interrupted again: exiting now");
                    std::process::exit(EXIT_STATUS);
                }
                WATCH.send_replace(true);
            }
        })?;
    Ok(())
}

/// Whether the user asked `lab` to stop.
pub fn requested() -> bool {
    FLAG.load(Ordering::SeqCst)
}

/// `Err(Interrupted)` once the user asked `lab` to stop.
pub fn check() -> Result<(), Interrupted> {
    if requested() {
        Err(Interrupted)
    } else {
        Ok(())
    }
}

/// Resolves once the user asks `lab` to stop (at once if they already did).
pub async fn wait() {
    let mut rx = WATCH.subscribe();
    if requested() {
        return;
    }
    let _ = rx.wait_for(|&stop| stop).await;
}

/// Whether `e` (or anything it was caused by) is an interruption.
pub fn is(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<Interrupted>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn an_interruption_is_found_under_context() {
        let e = Err::<(), _>(Interrupted)
            .context("build of baseline")
            .context("night")
            .unwrap_err();
        assert!(is(&e));
        assert!(!is(&anyhow::anyhow!("make failed")));
    }
}
