#!/usr/bin/env bash
# The lab's main job on the default lab, from a fresh clone: set-up, build, then boot the
# Debian distro kernel with the guest agent and run the counting workload on 2 vCPUs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
cargo build --release
kernel=$(ls /boot/vmlinuz-6.12*-amd64 | sort | tail -n 1)
exec target/release/lab boot --kernel "$kernel" --cpus 2 --workload syscall_count --duration 5s "$@"
