#!/usr/bin/env bash
# Schedules measured: the seed race forced on the unpinned variant and on baseline (20 runs
# each). Prints each batch's summary (runs with a report, median time to it, schedule applied
# in how many runs, whether the report followed the first applied attempt); the batches stay
# in WORK_DIR.
#
#   bench/schedules.sh [WORK_DIR] [BATCH...]   (batches: seed-unpinned seed-baseline; both by
#                                               default; about 16 minutes under TCG, warm cache)
set -euo pipefail
cd "$(dirname "$0")/.."
w=$(mkdir -p "${1:-target/bench/schedules}" && cd "${1:-target/bench/schedules}" && pwd)
shift || true
lab="${LAB:-target/release/lab}"
[ -x "$lab" ] || cargo build --release -p lab
export CI=true

batch() { # name variant scenario runs [duration]
  local name=$1 variant=$2 scenario=$3 runs=$4 start=$SECONDS
  rm -rf "${w:?}/$name"
  "$lab" run --variant "$variant" --scenario "$scenario" --runs "$runs" \
    ${5:+--duration "$5"} --out "$w/$name" >"$w/$name.out" 2>"$w/$name.log" || true
  echo "== $name: $variant × $scenario, $runs runs, $((SECONDS - start)) s"
  sed -n '/ runs: /,$p' "$w/$name.log" | grep -v '^results:'
}

want() { [ $# -eq 0 ] || [[ " $* " == *" $name "* ]]; }
for name in seed-unpinned seed-baseline; do
  want "$@" || continue
  case $name in
    seed-unpinned) batch $name epoll-unpinned-poll epoll-dmabuf-schedule 20 ;;
    seed-baseline) batch $name baseline epoll-dmabuf-schedule 20 ;;
  esac
done
