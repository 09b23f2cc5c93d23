//! Typed models of the lab's inputs, validated with file:line errors.

pub mod error;
pub mod lab;
pub mod scenario;
