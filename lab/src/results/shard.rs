//! What a night run in pieces carries: a shard's identity (which share of which plan it ran)
//! in its partial results.json, and a merged night's record of the shards it was made of.
//! The check that shards belong together lives here, beside the schema it reads.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything every shard of one night must agree on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanIdentity {
    /// sha256 of lab.toml's bytes.
    pub lab_sha256: String,
    /// Source line → the commit it was resolved to (none for non-git sources).
    pub commits: BTreeMap<String, Option<String>>,
    /// Every cell of the plan, in plan order.
    pub cells: Vec<PlanCell>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanCell {
    pub variant: String,
    pub scenario: String,
    /// The scenario file, duration and runs (see `nightly::plan_key`).
    pub plan_key: String,
    pub runs: u32,
    /// Expected wall time of a run, as the assignment used it.
    #[serde(default)]
    pub run_ms: u64,
}

/// A contiguous range of one cell's runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    pub variant: String,
    pub scenario: String,
    /// The first run's index (runs are numbered from 1 across the whole night).
    pub first: u32,
    pub runs: u32,
}

/// A partial night's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// 1-based.
    pub index: u32,
    pub count: u32,
    pub plan: PlanIdentity,
    /// The runs this shard was given.
    pub share: Vec<Share>,
}

impl Shard {
    /// "2/4".
    pub fn name(&self) -> String {
        format!("{}/{}", self.index, self.count)
    }
}

/// What a merged night was made of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merged {
    pub count: u32,
    /// (index, the directory it was read from), by index.
    pub shards: Vec<(u32, String)>,
    /// Indices of shards that were not there (a night merged with --allow-partial).
    pub missing: Vec<u32>,
}

impl Merged {
    /// The line a merged night's summary carries.
    pub fn describe(&self) -> String {
        let mut s = format!("merged from {} of {} shards", self.shards.len(), self.count);
        if !self.missing.is_empty() {
            let missing: Vec<String> = self
                .missing
                .iter()
                .map(|i| format!("{i}/{}", self.count))
                .collect();
            s = format!(
                "INCOMPLETE: {s}; missing shard(s) {} (their runs are not in this night)",
                missing.join(", ")
            );
        }
        s
    }
}

impl PlanIdentity {
    /// How a plan names its lab.toml: the sha256 of its bytes.
    pub fn lab_sha256(lab_toml: &[u8]) -> String {
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(lab_toml))
    }

    /// How `other` differs from this plan, in words; none when they are the same plan.
    pub fn difference(&self, other: &PlanIdentity) -> Option<String> {
        if self.lab_sha256 != other.lab_sha256 {
            return Some(format!(
                "its lab.toml or suppression list differs (sha256 {} here, {} there)",
                short(&self.lab_sha256),
                short(&other.lab_sha256)
            ));
        }
        let sources = self.commits.keys().chain(other.commits.keys());
        for source in sources {
            let (a, b) = (self.commits.get(source), other.commits.get(source));
            if a != b {
                let show = |c: Option<&Option<String>>| match c {
                    None => "not in its plan".to_string(),
                    Some(None) => "no commit".to_string(),
                    Some(Some(c)) => short(c).to_string(),
                };
                return Some(format!(
                    "{source} was resolved to another commit ({} here, {} there)",
                    show(a),
                    show(b)
                ));
            }
        }
        if self.cells.len() != other.cells.len() {
            return Some(format!(
                "its plan has {} cells, not {}",
                other.cells.len(),
                self.cells.len()
            ));
        }
        for (a, b) in self.cells.iter().zip(&other.cells) {
            if a != b {
                return Some(format!(
                    "cell {} × {} differs (plan {} with {} runs of {} ms here; {} × {}, plan {} \
                     with {} runs of {} ms there: another scenario file, --runs, --duration \
                     or --costs)",
                    a.variant,
                    a.scenario,
                    a.plan_key,
                    a.runs,
                    a.run_ms,
                    b.variant,
                    b.scenario,
                    b.plan_key,
                    b.runs,
                    b.run_ms
                ));
            }
        }
        None
    }
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> PlanIdentity {
        PlanIdentity {
            lab_sha256: "a".repeat(64),
            commits: [("debian:linux-source-6.12".to_string(), None)].into(),
            cells: vec![PlanCell {
                variant: "baseline".into(),
                scenario: "epoll-dmabuf-race".into(),
                plan_key: "0123".into(),
                runs: 3,
                run_ms: 40_000,
            }],
        }
    }

    #[test]
    fn a_plan_names_what_differs() {
        let a = plan();
        assert_eq!(a.difference(&a.clone()), None);
        let mut b = plan();
        b.lab_sha256 = "b".repeat(64);
        let d = a.difference(&b).unwrap();
        assert!(
            d.contains("lab.toml or suppression list differs") && d.contains("bbbbbbbbbbbb"),
            "{d}"
        );
        let mut b = plan();
        b.commits.insert("git:/r@main".into(), Some("c".repeat(40)));
        let d = a.difference(&b).unwrap();
        assert!(
            d.contains("git:/r@main") && d.contains("not in its plan"),
            "{d}"
        );
        let mut b = plan();
        b.cells[0].runs = 5;
        let d = a.difference(&b).unwrap();
        assert!(
            d.contains("baseline × epoll-dmabuf-race") && d.contains("5 runs"),
            "{d}"
        );
    }

    #[test]
    fn an_incomplete_merge_says_which_shards_are_missing() {
        let m = Merged {
            count: 4,
            shards: vec![(1, "a".into()), (2, "b".into()), (4, "d".into())],
            missing: vec![3],
        };
        assert_eq!(
            m.describe(),
            "INCOMPLETE: merged from 3 of 4 shards; missing shard(s) 3/4 (their runs are not \
             in this night)"
        );
    }
}
