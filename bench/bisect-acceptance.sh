#!/usr/bin/env bash
# Acceptance of `lab bisect` on a generated repository (scripts/make-bisect-repo.sh): the
# commit that brings the epoll/close race in, with a commit that does not build in the range,
# then the commit that takes it out (--fix). Checks the answers, the build counts against
# ⌈log2 N⌉ + 2 and the confidence, and prints both tables.
#
# Usage: [SCENARIO=S] bench/bisect-acceptance.sh [REPO_DIR] [-- extra lab bisect flags]
#   SCENARIO: the scenario bisected (default epoll-dmabuf-race; epoll-dmabuf-schedule forces
#   the interleaving: one applied run per commit)
# Takes a cold kernel build (the repository's first) plus a few minutes of runs per step.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="${1:-${LAB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kernel-race-lab}/bisect-fixture-repo}"
shift || true
[ "${1:-}" = "--" ] && shift
[ -d "$repo/.git" ] || scripts/make-bisect-repo.sh "$repo"
lab="${LAB:-target/release/lab}"
[ -x "$lab" ] || cargo build --release -p lab
rev() { git -C "$repo" rev-parse "$1"; }
fail=0

run() { # name expected-commit range-size lab-args...
  local name="$1" expected="$2" n="$3"; shift 3
  local start=$SECONDS out="/tmp/lab-bisect-$name.out"
  "$lab" bisect --repo "$repo" --scenario "${SCENARIO:-epoll-dmabuf-race}" "$@" | tee "$out"
  echo "$name: $((SECONDS - start)) s"
  local found builds conf max
  found=$(sed -n 's/^first \(racy\|fixed\) commit: \([0-9a-f]*\) .*/\2/p' "$out")
  builds=$(sed -n 's/.*; \([0-9]*\) builds\{0,1\})$/\1/p' "$out")
  # "0.986", or "1 − 5.7e-7" for one that close to 1.
  conf=$(sed -n 's/^confidence \([0-9.]*\|1 − [0-9.e-]*\) (.*/\1/p' "$out" \
    | python3 -c 'import sys; t=sys.stdin.read().strip(); print(1 - float(t.split("−")[1]) if "−" in t else t)')
  max=$(python3 -c "import math; print(math.ceil(math.log2($n)) + 2)")
  [ "$found" = "$expected" ] && echo "$name: found $found = expected" \
    || { echo "$name: FOUND $found, EXPECTED $expected"; fail=1; }
  [ "$builds" -le "$max" ] && echo "$name: $builds builds ≤ $max" \
    || { echo "$name: $builds builds > $max"; fail=1; }
  python3 -c "import sys; sys.exit(0 if $conf >= 0.95 else 1)" && echo "$name: confidence $conf ≥ 0.95" \
    || { echo "$name: confidence $conf < 0.95"; fail=1; }
}

n=$(git -C "$repo" rev-list --count good..racy-end)
run regression "$(rev race-in)" "$n" --good good --bad racy-end "$@"
grep -q "does not build" /tmp/lab-bisect-regression.out && echo "regression: the broken commit was met and skipped" \
  || echo "regression: the broken commit was not on the bisection's path"
n=$(git -C "$repo" rev-list --count race-in..head)
run fix "$(rev race-out)" "$n" --fix --bad race-in --good head "$@"
exit $fail
