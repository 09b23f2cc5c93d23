//! The kernel race lab's host side: kernels (build, cache), VMs (QEMU, agent), runs,
//! reports. The `lab` binary is its command line; benchmarks use the library directly.

pub mod bisect;
pub mod cache;
pub mod child;
pub mod cli;
pub mod compare;
pub mod config;
pub mod events;
pub mod explore;
pub mod files;
pub mod interrupt;
pub mod kernel;
pub mod name;
pub mod nightly;
pub mod report;
pub mod results;
pub mod run;
pub mod tap;
pub mod text;
pub mod ui;
pub mod units;
pub mod vm;
