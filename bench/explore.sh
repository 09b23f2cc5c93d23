#!/usr/bin/env bash
# lab explore's acceptance runs, resumable: each case writes WORK_DIR/<case>/explore.json and
# is not run again while that file holds an outcome (delete the directory to redo a case).
# Prints each case's time and exit status, then the table (bench/explore-table.py).
#
#   bench/explore.sh [WORK_DIR] [CASE...]
#
# Cases (variant, scenario, how):
#   report-*   a stress run of the seed race that reported (made first, WORK_DIR/<case>.stress,
#              kept), then `lab explore --from` it: the schedule is written and re-run 20 times
#   patch-*    `lab explore` with no report: candidates from the variant's series and sampling
#   baseline-* the same searches on baseline: what survived
# PACE=MICROS passes --pace to every search (default: the scenario's, else 20 ms).
# Each search has a budget of 15 minutes. Under TCG on a 2-core host, a case takes 5 to 25
# minutes (the 20 re-runs included).
set -euo pipefail
cd "$(dirname "$0")/.."
w=$(mkdir -p "${1:-target/bench/explore}" && cd "${1:-target/bench/explore}" && pwd)
shift || true
lab="${LAB:-target/release/lab}"
[ -x "$lab" ] || cargo build --release -p lab
export CI=true
declare -A cases=(
  [report-dmabuf]="epoll-unpinned-poll epoll-dmabuf-race report"
  [report-add-close]="epoll-release-on-close epoll-add-close-race report"
  [report-uring]="eventfd-no-kref eventfd-uring-race report"
  [report-aio]="eventfd-no-kref eventfd-aio-race report"
  [patch-add-close]="epoll-release-on-close epoll-add-close-race patch"
  [patch-dmabuf]="epoll-unpinned-poll epoll-dmabuf-race patch"
  [baseline-dmabuf]="baseline epoll-dmabuf-race patch"
  [baseline-add-close]="baseline epoll-add-close-race patch"
)
order=(report-dmabuf report-add-close report-uring report-aio patch-add-close patch-dmabuf
  baseline-dmabuf baseline-add-close)
chosen=("$@")
[ ${#chosen[@]} -gt 0 ] || chosen=("${order[@]}")
done_case() {
  python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1])).get("outcome") else 1)' \
    "$1/explore.json" 2>/dev/null
}
for c in "${chosen[@]}"; do
  read -r variant scenario how <<<"${cases[$c]}"
  done_case "$w/$c" && continue
  "$lab" build --no-canary --kernels kernels "$variant" >"$w/$c.build.log" 2>&1
  from=()
  if [ "$how" = report ]; then
    # A stress run that reported: up to 5 runs of the scenario as written (no pace).
    if ! grep -q '"kernel_report": *true\|"kind": *"kernel-report"' "$w/$c.stress/runs.json" 2>/dev/null; then
      rm -rf "${w:?}/$c.stress"
      "$lab" run --variant "$variant" --scenario "$scenario" --kernels kernels --runs 5 \
        --out "$w/$c.stress" >"$w/$c.stress.log" 2>&1 || true
    fi
    from=(--from "$w/$c.stress")
  fi
  rm -rf "${w:?}/$c"
  start=$SECONDS
  status=0
  pace=()
  [ -z "${PACE:-}" ] || pace=(--pace "$PACE")
  "$lab" explore --variant "$variant" --scenario "$scenario" --kernels kernels "${from[@]}" "${pace[@]}" \
    --budget 15m --confirm 20 --out "$w/$c.found.toml" --dir "$w/$c" \
    >"$w/$c.out" 2>"$w/$c.log" || status=$?
  echo "== $c: $((SECONDS - start)) s, exit $status"
done
files=()
for c in "${chosen[@]}"; do files+=("$w/$c/explore.json"); done
python3 bench/explore-table.py "${files[@]}"
