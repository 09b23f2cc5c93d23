#!/usr/bin/env bash
# Schedules measured (20 runs each): the seed race forced on the unpinned variant and on
# baseline; the EPOLL_CTL_ADD-vs-close gap of epoll-release-on-close by plain stress and by
# its schedule, and baseline under that schedule. Prints each batch's summary (runs with a
# report, median time to it, schedule applied in how many runs, whether the report followed
# the first applied attempt); the batches stay in WORK_DIR.
#
#   bench/schedules.sh [WORK_DIR] [BATCH...]
#     batches: seed-unpinned seed-baseline gap-stress gap-schedule gap-baseline (all by
#     default; about 30 minutes under TCG with a warm cache, most of it the baseline batches,
#     whose runs last their whole duration)
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
  grep -v '^results:' "$w/$name.out" || true
}

want() { [ $# -eq 0 ] || [[ " $* " == *" $name "* ]]; }
for name in seed-unpinned seed-baseline gap-stress gap-schedule gap-baseline; do
  want "$@" || continue
  case $name in
    seed-unpinned) batch $name epoll-unpinned-poll epoll-dmabuf-schedule 20 ;;
    seed-baseline) batch $name baseline epoll-dmabuf-schedule 20 ;;
    gap-stress) batch $name epoll-release-on-close epoll-add-close-race 20 ;;
    gap-schedule) batch $name epoll-release-on-close epoll-add-close-schedule 20 ;;
    gap-baseline) batch $name baseline epoll-add-close-schedule 20 ;;
  esac
done
