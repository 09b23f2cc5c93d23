//! Progress of runs (a batch, a comparison, a night, a bisection), reported as events: runs
//! planned, each run's start and end with its one-line summary. The `ui` module shows them.

use crate::events::{self, Event};
use std::time::Duration;

#[derive(Clone)]
pub struct Progress {
    /// VMs at a time (the pool's size), for the display's ETA.
    jobs: usize,
}

/// A run in flight.
pub struct Ticket {
    id: u64,
}

impl Progress {
    pub fn new(jobs: usize) -> Self {
        Progress { jobs }
    }

    /// Runs of `batch` that will come, each running its workload for `planned`.
    pub fn plan(&self, batch: &str, runs: u32, planned: Duration) {
        events::emit(Event::RunsPlanned {
            batch: batch.to_string(),
            runs,
            each: planned,
            jobs: self.jobs,
        });
    }

    /// Runs planned but not going to happen (a skipped cell, an interrupted batch).
    pub fn unplan(&self, batch: &str, runs: u32) {
        events::emit(Event::RunsDropped {
            batch: batch.to_string(),
            runs,
        });
    }

    pub fn start(&self, batch: &str, label: String) -> Ticket {
        let id = events::next_id();
        events::emit(Event::RunStarted {
            id,
            batch: batch.to_string(),
            label,
        });
        Ticket { id }
    }

    /// A run ended: what its line shows.
    pub fn finish(&self, ticket: Ticket, run: events::RunEnd) {
        events::emit(Event::RunEnded { id: ticket.id, run });
    }

    /// A line for the user, above the live display.
    pub fn println(&self, line: &str) {
        events::note(line);
    }

    /// The runs are over.
    pub fn clear(&self) {
        events::emit(Event::RunsDone);
    }
}
