#!/usr/bin/env bash
# The lab's test suite, from a fresh clone: set-up, formatting, lints, then every test
# (unit tests and the VM tests that boot real kernels under a real QEMU).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --no-fail-fast
