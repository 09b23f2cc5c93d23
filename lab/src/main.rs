//! `lab`: the kernel race lab's host orchestrator.

use clap::Parser;
use lab::cli;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LAB_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = cli::Cli::parse();
    // One thread: children are spawned from it, so PR_SET_PDEATHSIG follows `lab` itself.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            cli::Command::Boot(args) => cli::boot(args).await,
            cli::Command::Build(args) => cli::build(args).await,
            cli::Command::Run(args) => cli::run(args).await,
            cli::Command::Compare(args) => cli::compare(args).await,
            cli::Command::Nightly(args) => cli::nightly(args).await,
            cli::Command::History(args) => cli::history(args),
            cli::Command::Bisect(args) => cli::bisect(args).await,
            cli::Command::Report(cmd) => cli::report(cmd),
        }
    });
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("lab: error: {e:#}");
            std::process::exit(2);
        }
    }
}
