//! `lab explore --candidates`: the locations a search would probe, ranked, each with where it
//! came from.

use crate::explore::search::SearchRecord;
use std::time::Duration;

/// The line each attempt of a search leaves: attempts, distinct interleavings (applied, given
/// up), the budget left and the time it may still take.
pub fn progress(
    attempts: u32,
    (distinct, applied, given_up): (usize, usize, usize),
    left: &str,
    eta: Option<Duration>,
) -> String {
    format!(
        "lab: explore: {attempts} attempts, {distinct} distinct interleavings ({applied} applied, \
         {given_up} given up), {left}{}",
        eta.map(|d| format!(", at most {:.0} s to go", d.as_secs_f64()))
            .unwrap_or_default()
    )
}

pub fn candidates(s: &SearchRecord) -> String {
    let mut out = format!(
        "{} candidate locations for the roles {}, best first:\n",
        s.candidates.len(),
        s.roles.join(", ")
    );
    for (i, c) in s.candidates.iter().enumerate() {
        out.push_str(&format!(
            "{:3}. {} (score {:.2})\n",
            i + 1,
            c.function,
            c.score
        ));
        for from in &c.from {
            out.push_str(&format!("       {from}\n"));
        }
    }
    out
}
