//! Console text → kernel reports.

pub mod markers;
