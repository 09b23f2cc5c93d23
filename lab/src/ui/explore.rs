//! `lab explore --candidates`: the locations a search would probe, ranked, each with where it
//! came from.

use crate::explore::search::SearchRecord;

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
