#!/usr/bin/env python3
"""The detector canary's table from canary.json files: a row per machine, a column per detector,
each cell what was seen (✓ fired, ✗ silent, - not built) and the time to the report.

    bench/canary-table.py CANARY.JSON...
"""
import json
import sys

DETECTORS = ["kasan", "warning", "hung-task", "soft-lockup", "lockdep", "kcsan"]


def cell(p):
    if p.get("absent"):
        return "-"
    mark = "✓" if p["fired"] else "✗"
    ms = p.get("first_report_ms")
    return f"{mark} {ms / 1000:.2f} s" if ms is not None else mark


def main(files):
    print("| machine | " + " | ".join(DETECTORS) + " |")
    print("|---|" + "---|" * len(DETECTORS))
    for f in files:
        c = json.load(open(f))
        by = {p["detector"]: p for p in c["proofs"]}
        cells = [cell(by[d]) if d in by else "?" for d in DETECTORS]
        print(f"| {c['kernel']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
