#!/usr/bin/env bash
# The lab's main job on the default lab, from a fresh clone: set-up, then build every seed
# variant from Debian's linux-source-6.12 (cached: a second run is all cache hits) and run
# the seed scenarios on them, printing each verdict. A kernel report or a changed uapi value
# is a finding, not a failure of the job; the job fails (exit 2) only when the lab itself does.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh || exit 2
export PATH="$PWD/.venv/bin:$PATH"
cargo build --release || exit 2
lab=target/release/lab

"$lab" build || exit 2
run() {
  "$lab" run "$@"
  local rc=$?
  if [ "$rc" -ge 2 ]; then exit "$rc"; fi
}
for variant in baseline epoll-unpinned-poll epoll-release-on-close epoll-release-on-close-naive; do
  run --variant "$variant" --scenario epoll-dmabuf-race
done
for variant in baseline eventfd-no-kref; do
  run --variant "$variant" --scenario eventfd-uring-race
done
for variant in baseline epoll-release-on-close; do
  run --variant "$variant" --scenario uapi-epoll
done
