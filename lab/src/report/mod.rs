//! Console text → kernel reports: formats table, titles, guilty frames, signatures.
//! Knows nothing about how the console was captured.

pub mod formats;
pub mod frames;
mod guilty;
pub mod parser;
pub mod race;
mod scan;
pub mod symbolize;
