#!/usr/bin/env bash
# The seed lab on the 6.1 LTS series beside 6.12 (docs/measurements.md#the-61-lts-series):
#
#   bench/lts.sh [WORK_DIR] [STEP...]       (default WORK_DIR target/bench/lts, every step)
#
# Steps, each kept in WORK_DIR and not run again once its result is there (delete its
# directory to redo it):
#   build     every seed variant on 6.1 (`lab build NAME@6.1 ...`; cold the first time)
#   night     `lab nightly --config lab-lts.toml`: every cell of lab.toml on 6.12 and on 6.1
#   kcsan     baseline@6.1+kcsan and eventfd-no-kref@6.1+kcsan (a cold build of its own), the
#             KCSAN canary, eventfd-uring-race-kcsan-delay on both (RUNS each)
#   repro     `lab run --repro repros/epoll-dmabuf-close.c` on epoll-unpinned-poll@6.1 and
#             baseline@6.1 (RUNS each)
#   add-close epoll-add-close-schedule on epoll-release-on-close@6.1: its "add" step stops at
#             6.1's kmem_cache_alloc (at_series) (RUNS runs)
#   schedule  epoll-dmabuf-schedule on epoll-unpinned-poll@6.1, SCHEDULE_RUNS runs (default 20):
#             how many report right after the first applied attempt
#   selftests epoll-selftests on baseline@6.1 and epoll-release-on-close@6.1 (RUNS each): which
#             tests fail in how many runs (the timing-dependent ones differ by series)
# Uses the lab's cache (LAB_CACHE_DIR / XDG_CACHE_HOME); LAB=binary (default
# target/release/lab); RUNS (default 3). Prints one line per step.
set -euo pipefail
cd "$(dirname "$0")/.."
w=$(mkdir -p "${1:-target/bench/lts}" && cd "${1:-target/bench/lts}" && pwd)
shift || true
lab="${LAB:-target/release/lab}"
[ -x "$lab" ] || cargo build --release -p lab
runs="${RUNS:-3}"
export CI=true
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(build night kcsan repro add-close schedule selftests)
v61=(baseline@6.1 epoll-unpinned-poll@6.1 epoll-release-on-close@6.1
  epoll-release-on-close-naive@6.1 eventfd-no-kref@6.1)

tally() { # runs.json... -> "variant: K/N with a report (first titles)" per file
  python3 - "$@" <<'EOF'
import json, sys, collections
for f in sys.argv[1:]:
    runs = json.load(open(f))
    runs = runs if isinstance(runs, list) else runs.get("runs", [])
    hit = [r for r in runs if r.get("evidence", {}).get("kind") == "kernel-report"]
    titles = collections.Counter(r["evidence"].get("title", "") for r in hit)
    print(f"  {f.split('/')[-2]}: {len(hit)}/{len(runs)} with a report; "
          + "; ".join(f"{t} ({n})" for t, n in titles.most_common()))
EOF
}

run_batch() { # OUT VARIANT ARGS... -> a batch in OUT unless it holds RUNS runs
  local out="$1" variant="$2"
  shift 2
  if [ -f "$out/runs.json" ] && python3 -c 'import json,sys
r=json.load(open(sys.argv[1])); r=r if isinstance(r,list) else r.get("runs",[])
sys.exit(0 if len(r) >= int(sys.argv[2]) else 1)' "$out/runs.json" "$runs"; then
    return
  fi
  rm -rf "${out:?}"
  "$lab" run --variant "$variant" --runs "$runs" --out "$out" "$@" >"$out.log" 2>&1 || true
}

for step in "${steps[@]}"; do
  case "$step" in
  build)
    [ -f "$w/build/builds.json" ] || {
      mkdir -p "$w/build"
      "$lab" build --json "${v61[@]}" >"$w/build/builds.json" 2>"$w/build/build.log"
    }
    python3 - "$w/build/builds.json" <<'EOF'
import json, sys
for b in json.load(open(sys.argv[1])):
    m = b.get("metadata", {})
    how = "cache hit" if b.get("cache_hit") else f"built in {m.get('duration_s', 0):.0f} s, {m.get('files_compiled')} files"
    print(f"build {m.get('variant')} {m.get('kernel_release')}: {how}")
EOF
    ;;
  night)
    [ -f "$w/night/results.json" ] || {
      rm -rf "$w/night"
      "$lab" nightly --config lab-lts.toml --out "$w/night" >"$w/night.log" 2>&1 || true
    }
    echo "night: $w/night/summary.md"
    sed -n '/^| variant/,/^$/p' "$w/night/summary.md"
    ;;
  kcsan)
    mkdir -p "$w/kcsan"
    for v in baseline@6.1+kcsan eventfd-no-kref@6.1+kcsan; do
      run_batch "$w/kcsan/$v" "$v" --scenario eventfd-uring-race-kcsan-delay
    done
    echo "kcsan (eventfd-uring-race-kcsan-delay):"
    tally "$w"/kcsan/*/runs.json
    ;;
  repro)
    mkdir -p "$w/repro"
    for v in epoll-unpinned-poll@6.1 baseline@6.1; do
      run_batch "$w/repro/$v" "$v" --repro repros/epoll-dmabuf-close.c
    done
    echo "repro (repros/epoll-dmabuf-close.c):"
    tally "$w"/repro/*/runs.json
    ;;
  add-close)
    mkdir -p "$w/add-close"
    run_batch "$w/add-close/epoll-release-on-close@6.1" epoll-release-on-close@6.1 \
      --scenario epoll-add-close-schedule
    echo "add-close (epoll-add-close-schedule):"
    tally "$w"/add-close/*/runs.json
    ;;
  schedule)
    mkdir -p "$w/schedule"
    runs="${SCHEDULE_RUNS:-20}" run_batch "$w/schedule/epoll-unpinned-poll@6.1" \
      epoll-unpinned-poll@6.1 --scenario epoll-dmabuf-schedule
    echo "schedule (epoll-dmabuf-schedule):"
    tally "$w"/schedule/*/runs.json
    grep -h "^schedule applied\|^runs with a report" "$w"/schedule/*.log | sed 's/^/  /'
    ;;
  selftests)
    mkdir -p "$w/selftests"
    for v in baseline@6.1 epoll-release-on-close@6.1; do
      run_batch "$w/selftests/$v" "$v" --scenario epoll-selftests
    done
    echo "selftests (epoll-selftests): failed tests by runs"
    python3 - "$w"/selftests/*/ <<'EOF'
import json, sys, glob, collections
for d in sys.argv[1:]:
    fails, runs = collections.Counter(), 0
    for t in sorted(glob.glob(d + "run-*/tests.json")):
        runs += 1
        for prog in json.load(open(t)).get("tests", []):
            for sub in prog.get("subtests", []):
                if sub.get("status") == "fail":
                    fails[sub["name"]] += 1
    print(f"  {d.rstrip('/').split('/')[-1]}: {runs} runs; "
          + (", ".join(f"{n} {k}/{runs}" for n, k in sorted(fails.items())) or "no test failed"))
EOF
    ;;
  *)
    echo "unknown step $step (build night kcsan repro add-close schedule selftests)" >&2
    exit 2
    ;;
  esac
done
