//! The agent proper: greet the host, run the requested workload, report, return.

use crate::channel::Channel;
use crate::workloads;
use runner::protocol::{GuestMsg, HostMsg, KERNEL_PARAMS_OBSERVATION, RESEED_OBSERVATION};
use std::time::Instant;

fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn nproc() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

/// Serve one run request. Returns the process exit code.
pub fn serve(chan: &Channel, pid1: bool) -> i32 {
    let reporter = chan.clone();
    std::panic::set_hook(Box::new(move |info| {
        let error = format!("agent panicked: {info}");
        eprintln!("lab-runner: {error}");
        reporter.send(&GuestMsg::Fatal { error });
    }));
    let hello = || GuestMsg::Hello {
        kernel_release: kernel_release(),
        nproc: nproc(),
        cmdline: std::fs::read_to_string("/proc/cmdline")
            .unwrap_or_default()
            .trim()
            .to_string(),
        pid1,
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    chan.send(&hello());
    // A guest restored from a snapshot waits here, its hello said to another host: the new
    // one asks for it again.
    let request = loop {
        match chan.receive() {
            Ok(HostMsg::RunRequest(request)) => break request,
            Ok(HostMsg::Greet) => chan.send(&hello()),
            Ok(other) => {
                chan.send(&GuestMsg::Fatal {
                    error: format!("expected a run request, got {other:?}"),
                });
                return 1;
            }
            Err(error) => {
                chan.send(&GuestMsg::Fatal { error });
                return 1;
            }
        }
    };
    // The request's numbers were checked by their types when it was decoded; the workload
    // parameters that are quantities are checked here, by the table the host checks with.
    if let Err(error) = request.check() {
        chan.send(&GuestMsg::Fatal { error });
        return 1;
    }
    if let Some(seed) = request.seed {
        let value = match crate::rng::reseed(seed) {
            Ok(first) => serde_json::json!({ "seed": seed, "first_bytes": first }),
            Err(error) => serde_json::json!({ "seed": seed, "error": error }),
        };
        chan.send(&GuestMsg::Observation {
            name: RESEED_OBSERVATION.into(),
            value,
        });
    }
    if !request.kernel_params.is_empty() {
        chan.send(&GuestMsg::Observation {
            name: KERNEL_PARAMS_OBSERVATION.into(),
            value: crate::params::set(&request.kernel_params),
        });
    }
    let start = Instant::now();
    match workloads::run(&request, chan, nproc(), pid1) {
        Ok(()) => {
            chan.send(&GuestMsg::Done {
                elapsed_ms: start.elapsed().as_millis() as u64,
            });
            0
        }
        Err(error) => {
            chan.send(&GuestMsg::Fatal { error });
            1
        }
    }
}
