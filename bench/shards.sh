#!/usr/bin/env bash
# Acceptance of sharded nights: the default lab run whole, then as 2, 3 and 4 shards one
# after another on this host, each set merged with `lab merge`; every merged night must have
# the whole night's cells, run counts and verdicts (each cell as lab.toml expects it, or not).
# Then a night whose baseline carries the epoll revert (its series gets
# epoll-unpinned-poll's patch), as 2 shards merged: it must report that regression and no
# other; a missing shard and a shard of another plan must be refused by name. Last, the KCIDB
# export of the whole night and of a merged one, validated with kcidb-io (.venv).
#
#   bench/shards.sh [WORK_DIR]          (about 70 minutes under TCG on 2 cores, warm cache)
#   RESUME=1 bench/shards.sh [WORK_DIR] (keeps the nights already in WORK_DIR, runs the rest)
#
# Each night's wall time is printed; the nights and a log of every command stay in WORK_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
w=$(mkdir -p "${1:-target/bench/shards}" && cd "${1:-target/bench/shards}" && pwd)
lab="${LAB:-target/release/lab}"
[ -x "$lab" ] || cargo build --release -p lab
lab=$(cd "$(dirname "$lab")" && pwd)/$(basename "$lab")
py=$repo/.venv/bin/python
export CI=true

# The default lab, with its history in the work directory.
sed -e "0,/^kernels = /s|^kernels = .*|kernels = \"$repo/kernels\"|" \
    -e "0,/^scenarios = /s|^scenarios = .*|scenarios = \"$repo/scenarios\"|" \
    -e "s|^# history = .*|history = \"$w/history.sqlite\"|" lab.toml > "$w/lab.toml"
# The same lab where baseline's series carries the revert of the 2024 fix. epoll-unpinned-poll
# keeps its kernel (Debian's tree + the revert) by taking its patch from no base.
mkdir -p "$w/racy"
rm -rf "$w/racy/kernels" && cp -r kernels "$w/racy/kernels"
mkdir -p "$w/racy/kernels/patches/baseline"
cp kernels/patches/epoll-unpinned-poll/*.patch "$w/racy/kernels/patches/baseline/"
sed -i '/^base = "baseline"/d' "$w/racy/kernels/epoll-unpinned-poll.toml"
sed -e "0,/^kernels = /s|^kernels = .*|kernels = \"$w/racy/kernels\"|" "$w/lab.toml" > "$w/racy/lab.toml"

timed() { # name, then the command; its output in $w/<name>.out, exit status kept
  local name=$1; shift
  if [ -f "$w/$name/results.json" ]; then echo "$name: kept from an earlier run"; return 0; fi
  local start=$SECONDS rc=0
  "$@" > "$w/$name.out" 2> "$w/$name.log" || rc=$?
  echo "$name: exit $rc in $((SECONDS - start)) s"
  return 0
}

if [ -z "${RESUME:-}" ]; then
  rm -rf "$w"/whole "$w"/s[0-9]* "$w"/merged-* "$w"/racy-* "$w/history.sqlite"
fi
rm -rf "$w/merged-refused"
timed whole "$lab" nightly --config "$w/lab.toml" --out "$w/whole"
for n in 2 3 4; do
  for k in $(seq 1 "$n"); do
    timed "s$n-$k" "$lab" nightly --config "$w/lab.toml" --shard "$k/$n" --out "$w/s$n-$k"
  done
  timed "merged-$n" "$lab" merge --config "$w/lab.toml" --out "$w/merged-$n" "$w"/s"$n"-*/
done

# Same cells, run counts and verdicts as the whole night.
"$py" - "$w" <<'EOF'
import json, sys
w = sys.argv[1]
def cells(night):
    r = json.load(open(f"{w}/{night}/results.json"))
    out = {}
    for c in r["cells"]:
        n = c["counts"]
        verdict = "fail" if n["fail"] else ("error" if n["error"] else ("skipped" if n["skipped"] == len(c["runs"]) and c["runs"] else "pass"))
        expect = c.get("expect")
        ok = None
        if expect and n["fail"] + n["pass"]:
            first = next((x["verdict"].get("detail", "") for x in c["runs"] if x["verdict"]["verdict"] == "fail"), None)
            ok = (first is None) if expect == "pass" else (first is not None) if expect == "fail" else (first is not None and expect in first)
        out[(c["variant"], c["scenario"])] = (len(c["runs"]), sorted(x["index"] for x in c["runs"]), verdict, ok)
    return out, r
whole, _ = cells("whole")
bad = 0
for n in (2, 3, 4):
    merged, r = cells(f"merged-{n}")
    same = merged == whole
    bad += not same
    print(f"merged-{n}: {len(merged)} cells, {sum(v[0] for v in merged.values())} runs; "
          f"{'same cells, run counts and verdicts as the whole night' if same else 'DIFFERS'}; "
          f"{r['merged']['count']} shards")
    for k in sorted(set(whole) | set(merged)):
        if whole.get(k) != merged.get(k):
            print("   ", k, "whole:", whole.get(k), "merged:", merged.get(k))
print(f"whole: {len(whole)} cells, {sum(v[0] for v in whole.values())} runs, "
      f"{sum(1 for v in whole.values() if v[3])} as expected")
sys.exit(1 if bad else 0)
EOF

# The revert in baseline's series: the merged night reports that regression.
for k in 1 2; do
  timed "racy-s$k" "$lab" nightly --config "$w/racy/lab.toml" --shard "$k/2" --out "$w/racy-s$k"
done
timed racy-merged "$lab" merge --config "$w/racy/lab.toml" --out "$w/racy-merged" "$w"/racy-s1 "$w"/racy-s2
echo "racy night's regressions:"
"$py" -c "import json,sys; [print('  ', c['variant'], '×', c['scenario'], ':', c['title']) for c in json.load(open(sys.argv[1]))['changes'] if c['kind']=='regression']" "$w/racy-merged/results.json"

# Refusals: a missing shard, a shard of another plan.
echo "missing shard:"
"$lab" merge --config "$w/lab.toml" --out "$w/merged-refused" "$w"/s4-1 "$w"/s4-2 "$w"/s4-3 2>&1 | tail -n 2 || true
echo "a shard of another plan:"
"$lab" merge --config "$w/lab.toml" --out "$w/merged-refused" "$w"/s2-1 "$w"/racy-s2 2>&1 | tail -n 2 || true

# KCIDB.
for night in whole merged-4; do
  "$lab" export kcidb "$w/$night" --out "$w/$night.kcidb.json"
  "$py" - "$w/$night.kcidb.json" <<'EOF'
import json, os, sys, kcidb_io
f = sys.argv[1]
doc = json.load(open(f))
kcidb_io.schema.LATEST.validate(doc)
counts = ", ".join(f"{len(doc[k])} {k}" for k in ("checkouts", "builds", "tests", "issues", "incidents"))
print(f"{os.path.basename(f)}: valid KCIDB v{doc['version']['major']}.{doc['version']['minor']}, {os.path.getsize(f)} bytes: {counts}")
EOF
done
