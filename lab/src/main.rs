//! `lab`: the kernel race lab's host orchestrator.

use clap::Parser;
use lab::{cli, interrupt, ui};

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LAB_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // Colour only for a terminal: logs and CI output get plain text.
        .with_ansi(!lab::ui::plain())
        .init();
    let cli = cli::Cli::parse();
    ui::install();
    // From here on Ctrl-C and SIGTERM end every command the same way (see interrupt.rs).
    if let Err(e) = interrupt::install() {
        ui::error(&format!("cannot install the signal handlers: {e}"));
        std::process::exit(2);
    }
    // One thread for the runtime: QEMU is spawned from it, so PR_SET_PDEATHSIG follows
    // `lab` itself; blocking work (builds, git) goes to the blocking pool.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(cli::dispatch(cli.command));
    // An interruption ends every command alike, whatever the step it cut says about it.
    let code = match result {
        _ if interrupt::requested() => {
            ui::interrupted();
            interrupt::EXIT_STATUS
        }
        Ok(code) => code,
        Err(e) if interrupt::is(&e) => {
            ui::interrupted();
            interrupt::EXIT_STATUS
        }
        Err(e) => {
            ui::error(&format!("{e:#}"));
            2
        }
    };
    // Dropping the runtime waits for nothing: children were stopped and reaped already.
    runtime.shutdown_background();
    std::process::exit(code);
}
