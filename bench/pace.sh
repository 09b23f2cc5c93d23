#!/usr/bin/env bash
# How often stress alone reports at a pace: N runs of D of the race scenario with `pace_us`
# set (a sleep after each round of every thread), on its racy variant. This is the figure a
# search "from a patch, no report" must be measured against (docs/explore.md): at a pace
# where stress alone gives at most 1 of 20 runs with a report in 60 s, a report that follows
# an applied interleaving is the search's, not luck's.
#
#   bench/pace.sh [WORK_DIR] [CASE...]      (RUNS=20 DURATION=60s PACE=50000 by default)
#
# Cases: dmabuf (epoll-unpinned-poll × epoll-dmabuf-race), add-close (epoll-release-on-close
# × epoll-add-close-race). Resumable: a case whose runs.json holds RUNS runs is not run again.
# Prints "case pace: K/N runs with a report in D" per case.
set -euo pipefail
cd "$(dirname "$0")/.."
w=$(mkdir -p "${1:-target/bench/pace}" && cd "${1:-target/bench/pace}" && pwd)
shift || true
lab="${LAB:-target/release/lab}"
[ -x "$lab" ] || cargo build --release -p lab
runs="${RUNS:-20}" duration="${DURATION:-60s}" pace="${PACE:-50000}"
export CI=true
declare -A cases=(
  [dmabuf]="epoll-unpinned-poll epoll-dmabuf-race"
  [add-close]="epoll-release-on-close epoll-add-close-race"
)
chosen=("$@")
[ ${#chosen[@]} -gt 0 ] || chosen=(dmabuf add-close)
count() { # runs.json -> "K N": runs with a kernel report, runs
  python3 -c 'import json,sys
r=json.load(open(sys.argv[1])); r=r if isinstance(r,list) else r.get("runs",[])
print(sum(1 for x in r if x.get("evidence",{}).get("kind")=="kernel-report"), len(r))' "$1"
}
for c in "${chosen[@]}"; do
  read -r variant scenario <<<"${cases[$c]}"
  out="$w/$c-$pace"
  if [ -f "$out/runs.json" ] && [ "$(count "$out/runs.json" | cut -d' ' -f2)" -ge "$runs" ]; then
    :
  else
    scen="$w/scenarios-$pace"
    mkdir -p "$scen"
    # The scenario as written, its [params] given the pace.
    sed "s/^\[params\]$/[params]\npace_us = $pace/" "scenarios/$scenario.toml" >"$scen/$scenario.toml"
    grep -q "^pace_us = $pace" "$scen/$scenario.toml"
    rm -rf "${out:?}"
    "$lab" run --variant "$variant" --scenario "$scenario" --scenarios "$scen" --kernels kernels \
      --runs "$runs" --duration "$duration" --out "$out" >"$out.log" 2>&1 || true
  fi
  read -r k n <<<"$(count "$out/runs.json")"
  echo "$c pace ${pace} µs: $k/$n runs with a report in $duration"
done
