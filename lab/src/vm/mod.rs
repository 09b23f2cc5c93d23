//! Booting a kernel with the lab's guest agent and running one workload in it.

pub mod accel;
pub mod agent;
pub mod console;
pub mod gdb;
pub mod initramfs;
pub mod outcome;
pub mod process;
pub mod qemu;
pub mod qmp;
pub mod schedule;
pub mod session;
pub mod snapshot;
pub mod vng;
