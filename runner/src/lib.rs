//! Guest agent of the kernel race lab.
//!
//! The library half holds the host <-> guest protocol, shared with the host orchestrator;
//! the binary half (`runner`) is PID 1 of the initramfs the lab generates.

pub mod protocol;
pub mod quantity;
