#!/usr/bin/env python3
"""A recorded night as the ETA test replays it: its runs in the order they started, each with
its cell, the cell's planned workload (ms), its wall time (s) and whether it printed a
kernel report.

    bench/eta-fixture.py NIGHT_DIR > lab/tests/data/night-runs.json

A run's wall time is the time from its start to the next run's start (the night runs one VM
at a time on a 2-core host), the last run's its QEMU time (timing.ended_ms).
"""
import datetime
import json
import sys

night = json.load(open(sys.argv[1] + "/results.json"))
runs = []
for cell in night["cells"]:
    name = f'{cell["variant"]} × {cell["scenario"]}'
    for r in cell["runs"]:
        rec = r.get("record") or {}
        if not rec.get("started"):
            continue
        start = datetime.datetime.fromisoformat(rec["started"].replace("Z", "+00:00"))
        reported = r.get("evidence", {}).get("kind") in ("kernel-report", "machine-finding")
        runs.append((start, name, cell["duration_ms"], rec["timing"]["ended_ms"] / 1000, reported))
runs.sort(key=lambda r: r[0])
out = []
for i, (start, name, duration_ms, qemu_s, reported) in enumerate(runs):
    wall = (runs[i + 1][0] - start).total_seconds() if i + 1 < len(runs) else qemu_s
    out.append({"cell": name, "duration_ms": duration_ms, "wall_s": round(wall, 2), "reported": reported})
json.dump({"night": night.get("uid") or night["started"], "started": night["started"], "runs": out},
          sys.stdout, indent=1, ensure_ascii=False)
print()
