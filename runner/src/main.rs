//! `runner`: the lab's guest agent. As PID 1 of the lab's initramfs it sets the guest up and
//! powers it off at the end; started any other way (virtme-ng) it only serves the agent port.

mod agent;
mod channel;
mod init;
mod params;
mod rng;
mod sys;
mod workloads;

use std::time::Duration;

fn main() {
    if std::process::id() == 1 {
        init::run();
    }
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--exec-probe") {
        std::process::exit(workloads::uapi_epoll::exec_probe(&args[2..]));
    }
    if args.get(1).map(String::as_str) == Some("--list") {
        for w in workloads::WORKLOADS {
            println!("{:<16} {}", w.name, w.about);
        }
        return;
    }
    let chan = match channel::open_port(Duration::from_secs(10)) {
        Ok(port) => channel::Channel::new(port),
        Err(e) => {
            eprintln!("lab-runner: {e}");
            std::process::exit(2);
        }
    };
    std::process::exit(agent::serve(&chan, false));
}
