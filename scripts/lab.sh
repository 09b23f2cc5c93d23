#!/usr/bin/env bash
# The lab's main job on the default lab, from a fresh clone: set-up, then `lab nightly` on
# lab.toml — build every seed variant from Debian's linux-source-6.12 (cached: a second night
# is all cache hits), run every variant × scenario cell, compare with the last night in the
# history and write the night's results.json, junit.xml, summary.md and report.html.
# Exit status is lab nightly's: 0 no regression, 1 a regression, 2 the lab itself failed.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh || exit 2
export PATH="$PWD/.venv/bin:$PATH"
cargo build --release || exit 2
exec target/release/lab nightly --config lab.toml "$@"
