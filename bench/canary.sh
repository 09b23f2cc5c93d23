#!/usr/bin/env bash
# The detector canary on the seed variants, under both detectors: `lab canary --variant V` for
# each (building what the cache lacks), each into WORK_DIR/V/; a variant whose canary.json is
# there is not run again (delete it to redo it). Prints each one's time and exit status, then
# the table (bench/canary-table.py).
#
#   bench/canary.sh [WORK_DIR] [VARIANT...]
#     variants: the five seed variants and each +kcsan (by default); about 40 s each under TCG
#     with a warm kernel cache, plus a cold build for the first +kcsan kernel
set -euo pipefail
cd "$(dirname "$0")/.."
w=$(mkdir -p "${1:-target/bench/canary}" && cd "${1:-target/bench/canary}" && pwd)
shift || true
lab="${LAB:-target/release/lab}"
[ -x "$lab" ] || cargo build --release -p lab
export CI=true
seeds=(baseline epoll-unpinned-poll epoll-release-on-close epoll-release-on-close-naive eventfd-no-kref)
variants=("$@")
[ ${#variants[@]} -gt 0 ] || for v in "${seeds[@]}"; do variants+=("$v" "$v+kcsan"); done
for v in "${variants[@]}"; do
  [ -f "$w/$v/canary.json" ] && continue
  "$lab" build --no-canary --kernels kernels "$v" >"$w/$v.build.log" 2>&1
  rm -rf "${w:?}/$v"
  start=$SECONDS
  status=0
  "$lab" canary --variant "$v" --kernels kernels --out "$w/$v" >"$w/$v.out" 2>"$w/$v.log" || status=$?
  echo "== $v: $((SECONDS - start)) s, exit $status"
done
files=()
for v in "${variants[@]}"; do files+=("$w/$v/canary.json"); done
python3 bench/canary-table.py "${files[@]}"
