#!/usr/bin/env python3
"""The tables of bench/kcsan.sh: for each batch, the runs with a report (one that counts),
the runs with a report about the race's code (epoll or dma-buf; eventfd) and the median time
from the workload's start to the first such report, what each detector printed first, and
every distinct report with the runs that printed it (suppressed ones with their reason)."""
import json, statistics, sys
from collections import Counter
from pathlib import Path

RACE_CODE = {
    "epoll": ("ep_", "epoll", "eventpoll", "dma_buf", "dmabuf"),
    "eventfd": ("eventfd",),
}


def involves(report, words):
    names = [report["title"]]
    names += [f["function"] for f in report.get("frames", [])]
    for side in (report.get("race") or {}).get("accesses", []):
        names += [f["function"] for f in side["frames"]]
    return any(w in n for n in names for w in words)


def table(out, name, words):
    runs = json.loads((out / name / "runs.json").read_text())
    counted = [r for r in runs if r["evidence"]["kind"] not in ("inconclusive", "skipped", "interrupted")]
    found = [r for r in counted if r["evidence"]["kind"] == "kernel-report"]
    about, firsts, first_titles, distinct = [], [], Counter(), {}
    for r in counted:
        kernel = [rep for rep in r["reports"] if rep["type"] != "lab"]
        hit = [rep for rep in kernel if not rep.get("suppressed") and involves(rep, words)]
        if hit:
            about.append(r)
            if hit[0].get("at_ms") is not None:
                firsts.append(hit[0]["at_ms"] / 1000)
        counting = [rep for rep in kernel if not rep.get("suppressed")]
        if counting:
            first_titles[counting[0]["title"]] += 1
        for title in {rep["title"] for rep in kernel}:
            rep = next(x for x in kernel if x["title"] == title)
            n, why = distinct.get(title, (0, rep.get("suppressed")))
            distinct[title] = (n + 1, why)
    med = f"{statistics.median(firsts):.2f} s" if firsts else "-"
    print(f"| {name} | {len(found)}/{len(counted)} | {len(about)}/{len(counted)} | {med} | "
          + "; ".join(f"{t} ({n})" for t, n in first_titles.most_common()) + " |")
    return distinct


def main():
    out = Path(sys.argv[1])
    print("| batch | runs with a report | about the race's code | median first such report | first report printed (runs) |")
    print("|---|---|---|---|---|")
    every = {}
    for name in sorted(p.name for p in out.iterdir() if (p / "runs.json").exists()):
        words = RACE_CODE["epoll" if "unpinned" in name or "epoll" in name else "eventfd"]
        every[name] = table(out, name, words)
    print()
    for name, distinct in every.items():
        for title, (n, why) in sorted(distinct.items(), key=lambda x: -x[1][0]):
            print(f"- {name}: {title} — {n} runs" + (f" — suppressed: {why}" if why else ""))


main()
