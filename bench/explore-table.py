#!/usr/bin/env python3
"""The table of bench/explore.sh: one row per search (its explore.json)."""
import json
import sys


def row(path):
    try:
        d = json.load(open(path))
    except (OSError, ValueError):
        return f"| {path} | not run | | | | | |"
    s = d["search"]
    trials = s["trials"]
    probes = sum(1 for t in trials if t["trial"]["kind"] == "probe")
    inter = [t for t in trials if t["trial"]["kind"] == "interleaving"]
    applied = sum(1 for t in inter if t["applied"] > 0)
    o = d.get("outcome") or {}
    if o.get("kind") == "found":
        result = f'found: {o["title"]}'
        check = f'{o["first_attempt"]}/{o["confirm_runs"]}' if o["confirm_runs"] else "-"
        steps = "; ".join(o["steps"])
    elif o.get("kind") == "stress-only":
        result = f'not found: stress reported in {o["stress_hits"]} of {o["runs"]} runs, no applied interleaving did'
        check, steps = "-", o["why_ended"]
    elif o.get("kind") == "survived":
        result = f'survived: {o["applied"]} applied over {o["locations"]} locations'
        check, steps = "-", o["why_ended"]
    else:
        result, check, steps = "unfinished", "-", "-"
    return (f'| {d["variant"]} × {d["scenario"]} | {"--from" if d.get("from") else "patch"} '
            f'| {d.get("searched_s", d["elapsed_s"]) / 60:.1f} min ({d["elapsed_s"] / 60:.1f}) | {probes} probes, {len(inter)} interleavings '
            f'({applied} applied), {d["stress_hits"]} stress hits | {result} | {check} | {steps} |')


print("| variant × scenario | from | search (with the 20 re-runs) | tried | result | first-attempt reproduction | steps |")
print("|---|---|---|---|---|---|---|")
for p in sys.argv[1:]:
    print(row(p))
