#!/usr/bin/env bash
# KCSAN beside KASAN on the seed races, and what KCSAN reports on the unpatched baseline:
#   1. epoll-unpinned-poll × epoll-dmabuf-race and eventfd-no-kref × eventfd-uring-race, 20
#      runs under each detector (one VM at a time: the times are compared);
#   2. baseline+kcsan × the two seed race scenarios, 20 × 30 s each, with the lab's
#      suppression list (suppressions.toml): every distinct report, suppressed or not.
# Then bench/kcsan-table.py prints the tables docs/measurements.md shows. Not part of CI: the KCSAN
# builds are a cold build of their own (~15 min on 2 cores) and the runs take ~50 min.
#   bench/kcsan.sh [OUT_DIR]     (default: a new directory under /tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-$(mktemp -d /tmp/kcsan-bench.XXXXXX)}
mkdir -p "$out"
cargo build --release -p lab
lab=target/release/lab
runs=${RUNS:-20}
$lab build --detector kasan,kcsan baseline epoll-unpinned-poll eventfd-no-kref
batch() { # NAME VARIANT DETECTOR SCENARIO [ARGS...]
    local name=$1 variant=$2 detector=$3 scenario=$4
    shift 4
    echo "== $name: $variant ($detector) × $scenario" >&2
    $lab run --variant "$variant" --detector "$detector" --scenario "$scenario" \
        --runs "$runs" --out "$out/$name" "$@" > "$out/$name.log" 2>&1 || true
    tail -n 12 "$out/$name.log" >&2
}
batch unpinned-kasan epoll-unpinned-poll kasan epoll-dmabuf-race
batch unpinned-kcsan epoll-unpinned-poll kcsan epoll-dmabuf-race
batch nokref-kasan eventfd-no-kref kasan eventfd-uring-race
batch nokref-kcsan eventfd-no-kref kcsan eventfd-uring-race
batch baseline-kcsan-epoll baseline kcsan epoll-dmabuf-race ${BASELINE_ARGS:-}
batch baseline-kcsan-eventfd baseline kcsan eventfd-uring-race ${BASELINE_ARGS:-}
python3 bench/kcsan-table.py "$out"
