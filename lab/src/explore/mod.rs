//! `lab explore` (in the making): searching for an interleaving of a race scenario's roles
//! that makes the kernel report. What is here so far: where a search may stop, derived from a
//! report's stacks ([`candidates`]).

pub mod candidates;
