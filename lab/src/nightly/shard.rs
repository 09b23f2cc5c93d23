//! Which share of a night this machine runs: `--shard K/N`, or the CI engine's own variables,
//! and the assignment of every (cell, run) of the plan to one of N shards.
//!
//! The assignment is a pure function of the plan: every shard computes the same one. Runs are
//! laid out variant by variant (each variant's cells in plan order, each cell's runs in index
//! order) and cut into N contiguous pieces of about equal expected cost, so a shard builds
//! few variants and one cell's runs can still spread over many machines.

use crate::results::shard::Share;
use anyhow::{bail, Result};
use std::fmt;
use std::str::FromStr;

/// Expected cost of a run besides its workload: QEMU start, boot to the agent, shutdown
/// (about 10 s under TCG with a KASAN kernel, measured in nights' run records).
pub const RUN_OVERHEAD_MS: u64 = 10_000;

/// This machine's share: shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    pub index: u32,
    pub count: u32,
}

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl ShardSpec {
    fn new(index: u32, count: u32, what: &str) -> Result<Self> {
        if count == 0 || index == 0 || index > count {
            bail!("{what}: shard {index} of {count} does not exist (shards are 1 to {count})");
        }
        Ok(ShardSpec { index, count })
    }

    /// Shard `index` of `count` as data names it (a shard's results.json).
    pub fn try_new(index: u32, count: u32) -> Result<Self> {
        ShardSpec::new(index, count, "its results.json")
    }
}

impl FromStr for ShardSpec {
    type Err = anyhow::Error;
    /// "K/N", K from 1.
    fn from_str(s: &str) -> Result<Self> {
        let parsed = s
            .split_once('/')
            .and_then(|(k, n)| Some((k.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((k, n)) => ShardSpec::new(k, n, &format!("--shard {s}")),
            None => bail!("--shard {s}: expected K/N, e.g. 2/4 for the second of four shards"),
        }
    }
}

/// A CI engine's way of telling a job which of N it is.
struct EnvSource {
    engine: &'static str,
    index: &'static str,
    /// What the index variable's first shard is (0 or 1).
    base: u32,
    count: &'static str,
}

/// In order of precedence (after `--shard`).
const ENV_SOURCES: &[EnvSource] = &[
    EnvSource {
        engine: "the lab's own pair (a GitHub Actions matrix)",
        index: "LAB_SHARD_INDEX",
        base: 1,
        count: "LAB_SHARD_COUNT",
    },
    EnvSource {
        engine: "GitLab CI `parallel:`",
        index: "CI_NODE_INDEX",
        base: 1,
        count: "CI_NODE_TOTAL",
    },
    EnvSource {
        engine: "a Kubernetes Indexed Job",
        index: "JOB_COMPLETION_INDEX",
        base: 0,
        count: "LAB_SHARD_COUNT",
    },
];

/// The share the environment gives this job, if any (`env` reads a variable).
pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Option<ShardSpec>> {
    for src in ENV_SOURCES {
        let Some(index) = env(src.index) else {
            continue;
        };
        let what = format!("{}={index} ({})", src.index, src.engine);
        let Ok(index) = index.trim().parse::<u32>() else {
            bail!("{what}: not a number");
        };
        let Some(count) = env(src.count) else {
            bail!(
                "{what}, but {} is not set: set it to the number of shards (the Job's \
                 completions, the matrix's size), or pass --shard K/N",
                src.count
            );
        };
        let Ok(count) = count.trim().parse::<u32>() else {
            bail!("{what}: {}={count} is not a number", src.count);
        };
        // Counted in u64: the index as given, never wrapped.
        let k = u64::from(index) + 1 - u64::from(src.base);
        if k == 0 || k > u64::from(count) {
            bail!(
                "{what}: with {}={count}, {} runs from {} to {}",
                src.count,
                src.index,
                src.base,
                u64::from(count) + u64::from(src.base) - 1
            );
        }
        return ShardSpec::new(k as u32, count, &what).map(Some);
    }
    Ok(None)
}

/// `--shard` when given, else the share the process environment gives.
pub fn resolve(flag: Option<ShardSpec>) -> Result<Option<ShardSpec>> {
    match flag {
        Some(spec) => Ok(Some(spec)),
        None => from_env(|name| std::env::var(name).ok()),
    }
}

/// One cell as the assignment sees it.
pub struct CellCost<'a> {
    pub variant: &'a str,
    pub scenario: &'a str,
    pub runs: u32,
    /// Expected cost of one run.
    pub run_ms: u64,
}

/// Shard `spec`'s runs of `cells` (in plan order); a cell with none of its runs here is
/// absent.
pub fn share(cells: &[CellCost], spec: ShardSpec) -> Vec<Share> {
    // Variants in order of first appearance; each variant's cells in plan order.
    let mut order: Vec<usize> = Vec::new();
    let mut variants: Vec<&str> = Vec::new();
    for c in cells {
        if !variants.contains(&c.variant) {
            variants.push(c.variant);
        }
    }
    for v in &variants {
        order.extend((0..cells.len()).filter(|&i| cells[i].variant == *v));
    }
    let total: u128 = cells
        .iter()
        .map(|c| c.runs as u128 * c.run_ms.max(1) as u128)
        .sum();
    let n = spec.count as u128;
    let mut mine: Vec<(usize, u32, u32)> = Vec::new(); // (cell, first, runs)
    let mut before: u128 = 0;
    for i in order {
        let cost = cells[i].run_ms.max(1) as u128;
        for run in 1..=cells[i].runs {
            // A run belongs to the shard its cost's midpoint falls in.
            let shard = ((2 * before + cost) * n / (2 * total)).min(n - 1) as u32 + 1;
            before += cost;
            if shard != spec.index {
                continue;
            }
            match mine.last_mut() {
                Some((cell, first, runs)) if *cell == i && *first + *runs == run => *runs += 1,
                _ => mine.push((i, run, 1)),
            }
        }
    }
    mine.sort_by_key(|&(cell, first, _)| (cell, first));
    mine.into_iter()
        .map(|(cell, first, runs)| Share {
            variant: cells[cell].variant.to_string(),
            scenario: cells[cell].scenario.to_string(),
            first,
            runs,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn lab() -> Vec<CellCost<'static>> {
        let c = |variant, scenario, runs, run_ms| CellCost {
            variant,
            scenario,
            runs,
            run_ms,
        };
        vec![
            c("baseline", "race", 3, 40_000),
            c("unpinned", "race", 3, 40_000),
            c("baseline", "uapi", 1, 15_000),
            c("baseline", "suite", 1, 100_000),
            c("naive", "race", 20, 40_000),
        ]
    }

    #[test]
    fn shard_flags_and_variables_are_read_from_each_engines_convention() {
        assert_eq!(
            "2/4".parse::<ShardSpec>().unwrap(),
            ShardSpec { index: 2, count: 4 }
        );
        for bad in ["0/4", "5/4", "1/0", "2", "a/b"] {
            let e = bad.parse::<ShardSpec>().unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let k8s = from_env(env(&[
            ("JOB_COMPLETION_INDEX", "0"),
            ("LAB_SHARD_COUNT", "3"),
        ]));
        assert_eq!(k8s.unwrap(), Some(ShardSpec { index: 1, count: 3 }));
        let gitlab = from_env(env(&[("CI_NODE_INDEX", "3"), ("CI_NODE_TOTAL", "3")]));
        assert_eq!(gitlab.unwrap(), Some(ShardSpec { index: 3, count: 3 }));
        // GitLab sets CI_NODE_TOTAL=1 in every job; without an index it is not a shard.
        assert_eq!(from_env(env(&[("CI_NODE_TOTAL", "1")])).unwrap(), None);
        let github = from_env(env(&[
            ("LAB_SHARD_INDEX", "2"),
            ("LAB_SHARD_COUNT", "2"),
            ("CI_NODE_INDEX", "1"),
        ]));
        assert_eq!(github.unwrap(), Some(ShardSpec { index: 2, count: 2 }));
        let e = from_env(env(&[("JOB_COMPLETION_INDEX", "2")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("JOB_COMPLETION_INDEX=2") && e.contains("LAB_SHARD_COUNT"),
            "{e}"
        );
        let e = from_env(env(&[
            ("JOB_COMPLETION_INDEX", "3"),
            ("LAB_SHARD_COUNT", "3"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("JOB_COMPLETION_INDEX runs from 0 to 2"), "{e}");
    }

    /// Every source, every index at and past its ends (u32::MAX included): an index the
    /// source's count covers gives that shard, any other is refused naming the variable and
    /// its range, never wrapped into another shard.
    #[test]
    fn a_shard_index_from_the_environment_is_in_range_or_refused() {
        for src in ENV_SOURCES {
            let count = 3u32;
            for index in [0u32, 1, 2, 3, 4, u32::MAX - 1, u32::MAX] {
                let (i, c) = (index.to_string(), count.to_string());
                let got = from_env(|name: &str| {
                    (name == src.index)
                        .then(|| i.clone())
                        .or_else(|| (name == src.count).then(|| c.clone()))
                });
                let k = u64::from(index) + 1 - u64::from(src.base);
                if (1..=u64::from(count)).contains(&k) {
                    let spec = got.unwrap().unwrap();
                    assert_eq!(u64::from(spec.index), k, "{} = {index}", src.index);
                } else {
                    let e = got.unwrap_err().to_string();
                    assert!(
                        e.contains(&format!("{}={index}", src.index))
                            && e.contains(&format!("runs from {}", src.base)),
                        "{} = {index}: {e}",
                        src.index
                    );
                }
            }
        }
    }

    #[test]
    fn every_run_goes_to_exactly_one_shard_and_the_shares_are_balanced() {
        let cells = lab();
        let total: u64 = cells.iter().map(|c| c.runs as u64 * c.run_ms).sum();
        let longest = cells.iter().map(|c| c.run_ms).max().unwrap();
        for count in 1..=35 {
            let mut seen: BTreeMap<(String, String), Vec<u32>> = BTreeMap::new();
            for index in 1..=count {
                let spec = ShardSpec { index, count };
                let share = share(&cells, spec);
                // Deterministic: the same plan gives the same share.
                assert_eq!(share, super::share(&cells, spec));
                let mut cost = 0;
                for s in &share {
                    let c = cells
                        .iter()
                        .find(|c| c.variant == s.variant && c.scenario == s.scenario);
                    cost += s.runs as u64 * c.unwrap().run_ms;
                    let runs = seen
                        .entry((s.variant.clone(), s.scenario.clone()))
                        .or_default();
                    runs.extend(s.first..s.first + s.runs);
                }
                // Within one run's cost of an equal share.
                let fair = total / count as u64;
                assert!(
                    cost.abs_diff(fair) <= longest,
                    "{count} shards: shard {index} costs {cost}, fair {fair}"
                );
            }
            for c in &cells {
                let mut runs = seen[&(c.variant.to_string(), c.scenario.to_string())].clone();
                runs.sort();
                assert_eq!(runs, (1..=c.runs).collect::<Vec<_>>(), "{count} shards");
            }
        }
    }

    #[test]
    fn a_shard_gets_few_variants_and_a_big_cell_spreads_over_many_shards() {
        let cells = lab();
        let variants = |count| -> Vec<usize> {
            (1..=count)
                .map(|index| {
                    let mut v: Vec<String> = share(&cells, ShardSpec { index, count })
                        .into_iter()
                        .map(|s| s.variant)
                        .collect();
                    v.sort();
                    v.dedup();
                    v.len()
                })
                .collect()
        };
        // Four shards over three variants: none builds all three.
        assert!(variants(4).iter().all(|&n| n <= 2), "{:?}", variants(4));
        // The 20-run cell is 800/1155 of the night's cost: it spreads over about 14 of 20
        // shards.
        let holding: usize = (1..=20)
            .filter(|&index| {
                share(&cells, ShardSpec { index, count: 20 })
                    .iter()
                    .any(|s| s.variant == "naive")
            })
            .count();
        assert!(holding >= 13, "{holding}");
    }
}
