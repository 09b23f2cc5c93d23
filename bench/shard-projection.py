#!/usr/bin/env python3
"""Projects a night's wall time on 1, 4 and 16 machines from one measured night.

    bench/shard-projection.py NIGHT_DIR [KVM_BOOT_S]

Reads each run's record in NIGHT_DIR/results.json: its wall time (lab's preparation, QEMU
start to exit) and the part of it spent booting to the agent. A run's cost on a shard is its
wall time; a shard's cost is the sum of its runs (one VM at a time on a 2-core machine); a
sharded night takes as long as its longest shard. The lab's assignment keeps every shard
within one run's cost of an equal share (the unit tests check it), so the projection gives
the range [total / N, total / N + longest run], plus what every machine pays once: planning
and the accelerator probe, measured as the night's wall time less the sum of its runs (warm
kernel cache: every build a cache hit).

The 20-runs-per-cell lab repeats each cell's measured mean run 20 times. The KVM columns are
estimates, not measurements (KVM is not usable on these machines): each run's boot to the
agent is replaced by KVM_BOOT_S (default 1 s) and everything else is kept as measured under TCG
(workloads run for their duration or until their first report, which under KVM may come
sooner or later); the probe is taken as 1 s.
"""
import datetime
import json
import statistics
import sys


def parse_time(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def main():
    night = sys.argv[1]
    kvm_boot = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    results = json.load(open(f"{night}/results.json"))
    cells = []
    for c in results["cells"]:
        walls, boots = [], []
        for r in c["runs"]:
            rec = r.get("record")
            if not rec:
                continue
            t = rec["timing"]
            walls.append((t["prepare_ms"] + t["ended_ms"]) / 1000)
            boots.append((t.get("agent_hello_ms") or t["ended_ms"]) / 1000)
        if walls:
            cells.append((f"{c['variant']} × {c['scenario']}", walls, boots))
    runs = sum(len(w) for _, w, _ in cells)
    run_sum = sum(sum(w) for _, w, _ in cells)
    span = (parse_time(results["ended"]) - parse_time(results["started"])).total_seconds()
    fixed_tcg = max(span - run_sum, 0.0)
    boot_median = statistics.median(b for _, _, bs in cells for b in bs)
    print(f"measured: {len(cells)} cells, {runs} runs, night {span:.0f} s = runs {run_sum:.0f} s "
          f"+ once per machine {fixed_tcg:.0f} s; median run {statistics.median(w for _, ws, _ in cells for w in ws):.1f} s, "
          f"median boot to agent {boot_median:.1f} s")

    def lab(per_cell, kvm):
        costs = []
        for _, walls, boots in cells:
            mean = statistics.mean(w - (b - kvm_boot if kvm else 0) for w, b in zip(walls, boots))
            n = per_cell or len(walls)
            costs += [mean] * n
        return costs

    def fmt(s):
        return f"{s / 60:.1f} min" if s < 3600 else f"{s / 3600:.1f} h"

    print()
    print("| lab | accel | 1 machine | 4 machines | 16 machines |")
    print("|---|---|---|---|---|")
    for name, per_cell in (("default (as measured)", None), ("20 runs per cell", 20)):
        for accel in ("TCG (measured runs)", "KVM (estimated)"):
            kvm = accel.startswith("KVM")
            costs = lab(per_cell, kvm)
            fixed = 1.0 if kvm else fixed_tcg
            total, longest = sum(costs), max(costs)
            row = []
            for n in (1, 4, 16):
                lo = fixed + max(total / n, longest)
                hi = fixed + min(total / n + longest, total)
                row.append(fmt(lo) if n == 1 else f"{fmt(lo)}–{fmt(hi)}")
            print(f"| {name}, {len(costs)} runs | {accel} | " + " | ".join(row) + " |")


main()
