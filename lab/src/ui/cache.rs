//! `lab cache`: what the cache holds and costs, and what a prune removed.

use crate::cache::evict::{Evicted, Usage};

fn gb(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// The evictable kinds (entries, size, the oldest last use), every top-level directory's
/// size, the total against the limit.
pub fn usage(u: &Usage, limit_mib: u64, limit_from: &str) -> String {
    let mut s = format!(
        "cache {}: {} of a {} limit ({limit_from})\n\n| evictable | entries | size | least recently used |\n|---|---|---|---|\n",
        u.root.display(),
        gb(u.total),
        gb(limit_mib << 20),
    );
    for (kind, n, bytes) in u.by_kind() {
        let oldest = u
            .entries
            .iter()
            .filter(|e| e.kind == kind)
            .map(|e| e.used)
            .min()
            .map(|t| humantime::format_rfc3339_seconds(t).to_string())
            .unwrap_or_else(|| "-".into());
        s.push_str(&format!("| {kind} | {n} | {} | {oldest} |\n", gb(bytes)));
    }
    s.push_str("\n| directory | size |\n|---|---|\n");
    for (dir, bytes) in &u.dirs {
        s.push_str(&format!("| {dir} | {} |\n", gb(*bytes)));
    }
    s.push_str(
        "\nEvictable entries go least recently used first when a night ends over the limit, \
         or with `lab cache prune`; work trees, sources, runs and nights are never evicted.\n",
    );
    s
}

/// What a prune removed, entry by entry, and the cache's size before and after.
pub fn pruned(out: &Evicted, limit_mib: u64) -> String {
    let mut s = String::new();
    for e in &out.removed {
        s.push_str(&format!(
            "evicted {} {} ({}, last used {})\n",
            e.kind,
            e.path.display(),
            gb(e.bytes),
            humantime::format_rfc3339_seconds(e.used)
        ));
    }
    s.push_str(&format!(
        "cache {} → {} (limit {}); {} evicted{}\n",
        gb(out.before),
        gb(out.after),
        gb(limit_mib << 20),
        out.removed.len(),
        match out.kept_in_use {
            0 => String::new(),
            b => format!("; {} kept in use by a running lab", gb(b)),
        }
    ));
    s
}
