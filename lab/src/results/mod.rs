//! What runs leave behind and what is made of it: statistics for comparisons, the history
//! of nights and the regressions read from it.

pub mod compare;
pub mod history;
pub mod html;
pub mod night;
pub mod stats;
