#!/usr/bin/env bash
# Measures the seed variants against the seed scenarios, as the scenarios' headers state the
# expectations: detection rate and median time to first report for the races, the observed
# uapi values. Long: about an hour of VM time under TCG on 2 cores.
#
#   bench/seed-expectations.sh [OUT_DIR]        (RUNS=20 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/bench/seed-expectations}
runs=${RUNS:-20}
mkdir -p "$out"
cargo build --release -q
lab=target/release/lab
kernel=$(ls /boot/vmlinuz-6.12*-amd64 | sort | tail -n 1)

measure() { # name, then lab run arguments
  local name=$1; shift
  echo "== $name"
  "$lab" run "$@" --out "$out/$name" > "$out/$name.txt" 2> "$out/$name.log" || true
  grep -v '^results:' "$out/$name.txt"
}

measure unpinned-dmabuf   --variant epoll-unpinned-poll --scenario epoll-dmabuf-race --runs "$runs" --duration 30s
measure nokref-uring      --variant eventfd-no-kref --scenario eventfd-uring-race --runs "$runs" --duration 30s
measure nokref-aio        --variant eventfd-no-kref --scenario eventfd-aio-race --runs "$runs" --duration 30s
measure naive-dmabuf      --variant epoll-release-on-close-naive --scenario epoll-dmabuf-race --runs 5 --duration 30s
measure uapi-distro       --kernel "$kernel" --scenario uapi-epoll
measure uapi-baseline     --variant baseline --scenario uapi-epoll
measure uapi-roc          --variant epoll-release-on-close --scenario uapi-epoll
measure roc-dmabuf        --variant epoll-release-on-close --scenario epoll-dmabuf-race --runs "$runs" --duration 60s
measure baseline-dmabuf   --variant baseline --scenario epoll-dmabuf-race --runs "$runs" --duration 60s
measure baseline-uring    --variant baseline --scenario eventfd-uring-race --runs "$runs" --duration 30s
measure baseline-aio      --variant baseline --scenario eventfd-aio-race --runs "$runs" --duration 30s
