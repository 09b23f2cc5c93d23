//! The kernel race lab's host side: kernels (build, cache), VMs (QEMU, agent), runs,
//! reports. The `lab` binary is its command line; benchmarks use the library directly.

pub mod bisect;
pub mod cache;
pub mod cli;
pub mod config;
pub mod kernel;
pub mod report;
pub mod results;
pub mod run;
pub mod units;
pub mod vm;
