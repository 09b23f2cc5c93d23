#!/usr/bin/env bash
# A night on a git branch names the commit behind its regression or its fix
# (docs/measurements.md#culprits). The branch is scripts/make-bisect-repo.sh's repository
# (Debian's linux-source-6.12 and 40 commits: the race comes in at commit 13, a commit that
# does not compile at 8, the race goes at 36); each step runs nights of a one-cell lab on it
# (its ref `night` moved between nights) and prints what the nights said.
#
#   bench/culprit.sh [WORK_DIR] [STEP...]     (default WORK_DIR target/bench/culprit, every step)
#
# Steps, each kept in WORK_DIR and not run again once its result is there (delete its
# directory to redo it):
#   regression  night 1 at `good`, night 2 at `racy-end` (35 commits later): night 2 exits 1
#               and names the commit that brought the race in; its KCIDB export is validated
#   later       night 3 at a commit after `racy-end`, the race still there: no bisection, the
#               earlier answer shown
#   fix         another history: a night at `racy-end`, then one at `head`: the fix named
#   flaky       a stress scenario (PACED, default epoll-dmabuf-race), REPEAT (default 5)
#               regressions bisected, each on a fresh history and bisection directory: right,
#               wrong or undecided, confidence, runs per step. To make it flaky, give it a
#               scenarios directory whose copy sets `pace_us` (SCENARIOS, e.g. the one
#               bench/pace.sh writes) and a short duration (FLAKY_TOML='duration = "1s"')
# SCENARIO (default epoll-dmabuf-schedule): the cell's scenario for regression/later/fix;
# SCENARIOS: the scenarios directory (default the repository's); RUNS: runs per night
# (default 3); RATE_RUNS: [bisect] runs, at the racy end (default 5); FLAKY_TOML: lines
# added to the flaky step's lab.toml.
# Uses the lab's cache (LAB_CACHE_DIR / XDG_CACHE_HOME); LAB=binary (default
# target/release/lab); REPO (default <cache>/bisect-fixture-repo). Prints one block per step.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
w=$(mkdir -p "${1:-target/bench/culprit}" && cd "${1:-target/bench/culprit}" && pwd)
shift || true
lab="${LAB:-$root/target/release/lab}"
[ -x "$lab" ] || cargo build --release -p lab
cache="${LAB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kernel-race-lab}"
repo="${REPO:-$cache/bisect-fixture-repo}"
[ -d "$repo/.git" ] || scripts/make-bisect-repo.sh "$repo"
scenario="${SCENARIO:-epoll-dmabuf-schedule}"
export CI=true
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(regression later fix flaky)
rev() { git -C "$repo" rev-parse "$1"; }

# A lab in DIR: kernels/ (the repository's and `branch` on REPO's ref `night`), one cell,
# its own history; [bisect] as given.
make_lab() { # DIR SCENARIO BISECT_TOML [EXTRA_TOML]
  local d="$1"
  mkdir -p "$d"
  rm -rf "$d/kernels"
  cp -r "$root/kernels" "$d/kernels"
  cat >"$d/kernels/branch.toml" <<EOF
# branch — $repo's ref \`night\`, moved between nights.
description = "the bisect fixture repository's ref night"
[source]
git = { repo = "$repo", ref = "night" }
EOF
  cat >"$d/lab.toml" <<EOF
name = "culprit bench"
kernels = "kernels"
scenarios = "${SCENARIOS:-$root/scenarios}"
results = "nights"
runs = ${RUNS:-3}
${4:-}
[[matrix]]
variants = ["branch"]
scenarios = ["$2"]

[bisect]
$3
EOF
}

# Night NAME of the lab in DIR at REF: its exit status and wall time kept beside it.
night() { # DIR NAME REF
  local d="$1" name="$2"
  [ -f "$d/$name/results.json" ] && [ -f "$d/$name.status" ] && return
  git -C "$repo" update-ref refs/heads/night "$(rev "$3")"
  rm -rf "${d:?}/$name"
  local start=$SECONDS rc=0
  "$lab" nightly --config "$d/lab.toml" --out "$d/$name" >"$d/$name.log" 2>&1 || rc=$?
  echo "exit $rc, $((SECONDS - start)) s" >"$d/$name.status"
}

show() { # DIR NAME: exit status, time, culprits
  local d="$1" name="$2"
  echo "  $name: $(cat "$d/$name.status")"
  python3 - "$d/$name/results.json" <<'EOF'
import json, sys
n = json.load(open(sys.argv[1]))
for c in n.get("changes", []):
    print(f"    {c['kind']}: {c['variant']} × {c['scenario']}: {c['title']}")
for k in n.get("culprits", []):
    what = (f"{k['direction']} by {k['commit'][:12]} {k['subject']} — confidence "
            f"{k['confidence']:.3f}, {k['builds']} builds, {k['wall_s']:.0f} s")
    if not k.get("commit"):
        what = f"{k['direction']}: undecided: {k.get('undecided')}, {k['builds']} builds"
    if k.get("earlier"):
        what += f" (found by the night of {k['earlier']})"
    print(f"    culprit: {what}")
EOF
}

# Per bisection step: runs and verdicts, from the bisection's state and runs.
steps_of() { # BISECT_DIR
  python3 - "$1" <<'EOF'
import json, sys, os
d = sys.argv[1]
s = json.load(open(os.path.join(d, "state.json")))
plan = s.get("plan") or {}
print(f"    racy end {s['rate_runs'][0]}/{s['rate_runs'][1]} "
      f"({'applied attempts' if plan.get('forced') else 'runs'}); rate {plan.get('rate', 0):.2f}; "
      f"clean after {plan.get('clean_runs')}")
for st in s["steps"]:
    runs_file = os.path.join(d, st["commit"][:12], "runs.json")
    runs = json.load(open(runs_file)) if os.path.exists(runs_file) else []
    runs = runs if isinstance(runs, list) else runs.get("runs", [])
    v = st.get("verdict") or {}
    build = "failed" if st.get("build_error") else (f"{st['build_s']:.0f} s" if st.get("build_s") else "cache hit")
    print(f"    {st['commit'][:12]} {st['subject'][:50]:50} build {build:9} runs {len(runs):2} {v.get('verdict', '-')}")
EOF
}

for step in "${steps[@]}"; do
  case "$step" in
  regression)
    d="$w/regression"
    make_lab "$d" "$scenario" "builds = 12
wall = \"3h\""
    night "$d" n1 good
    night "$d" n2 racy-end
    echo "regression ($scenario; $(git -C "$repo" rev-list --count good..racy-end) commits between the nights; the race came in at $(rev race-in | cut -c1-12)):"
    show "$d" n1
    show "$d" n2
    k=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["culprits"][0]["dir"])' "$d/n2/results.json")
    steps_of "$k"
    [ -f "$d/kcidb.json" ] || "$lab" export kcidb --origin lab_bench --out "$d/kcidb.json" "$d/n2"
    "$root/.venv/bin/python" -c 'import json,sys,kcidb_io; d=json.load(open(sys.argv[1])); kcidb_io.schema.LATEST.validate(d); print("  KCIDB export valid (kcidb-io); issue comment:", d["issues"][0]["comment"])' "$d/kcidb.json"
    ;;
  later)
    d="$w/regression"
    [ -f "$d/n2/results.json" ] || { echo "later: run the regression step first" >&2; exit 2; }
    if ! git -C "$repo" rev-parse -q --verify later >/dev/null; then
      git -C "$repo" -c user.name=bench -c user.email=bench@invalid commit-tree -p racy-end \
        -m "Documentation: a later change" "$(rev 'racy-end^{tree}')" | xargs git -C "$repo" tag later
    fi
    night "$d" n3 later
    echo "later (a commit after racy-end, the race still there):"
    show "$d" n3
    grep -c "bisecting" "$d/n3.log" | sed 's/^/  bisections started: /' || true
    ;;
  fix)
    d="$w/fix"
    make_lab "$d" "$scenario" "builds = 12
wall = \"3h\""
    night "$d" n1 racy-end
    night "$d" n2 head
    echo "fix (racy-end → head; the race went at $(rev race-out | cut -c1-12)):"
    show "$d" n1
    show "$d" n2
    ;;
  flaky)
    paced="${PACED:-epoll-dmabuf-race}"
    echo "flaky ($paced from ${SCENARIOS:-$root/scenarios}, ${FLAKY_TOML:-as written}; REPEAT ${REPEAT:-5}):"
    for i in $(seq 1 "${REPEAT:-5}"); do
      d="$w/flaky/$i"
      make_lab "$d" "$paced" "builds = 16
wall = \"4h\"
runs = ${RATE_RUNS:-5}" "${FLAKY_TOML:-}"
      night "$d" n1 good
      night "$d" n2 racy-end
      show "$d" n2
      # Each repeat bisects afresh: its bisection's directory (state and runs) is moved
      # into the repeat's (the cache keys it by its inputs, which the repeats share).
      k=$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])).get("culprits",[]); print(c[0]["dir"] if c else "")' "$d/n2/results.json")
      [ -n "$k" ] && [ -d "$k" ] && [ ! -d "$d/bisect" ] && mv "$k" "$d/bisect"
      [ -d "$d/bisect" ] && steps_of "$d/bisect"
    done
    ;;
  *)
    echo "unknown step $step (regression later fix flaky)" >&2
    exit 2
    ;;
  esac
done
