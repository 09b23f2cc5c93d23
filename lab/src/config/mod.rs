//! Typed models of the lab's inputs (lab.toml, kernels/*.toml, scenarios/*.toml), validated
//! with file:line errors. The bottom layer: it imports nothing of the lab's but the cache's
//! location and units.

pub mod detector;
pub mod error;
pub mod lab;
pub mod locate;
pub mod scenario;
pub mod schedule;
pub mod series;
pub mod suppress;
pub mod variant;
