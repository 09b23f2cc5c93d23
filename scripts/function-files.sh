#!/usr/bin/env bash
# Regenerate lab/data/function-files.gz: where each function of the kernel's shared machinery is
# defined, from a real tree. The report parser loads it to tell infrastructure frames (the
# allocator, locking, lib helpers, entry code...) from the code at fault by the file a
# function lives in (report/paths.rs holds the rules), where a console prints no file:line.
#
#   scripts/function-files.sh [TREE_OR_TARBALL]
#
# Default: Debian's linux-source-6.12 (/usr/src/linux-source-6.12.tar.xz, installed by
# `apt-get install linux-source-6.12`). Needs universal-ctags (installed when missing).
#
# Kept: functions defined under SCOPE (the directories the path rules look into), in C
# sources and headers, plus the syscall wrappers SYSCALL_DEFINE makes (__x64_sys_NAME,
# __arm64_sys_NAME, __se_sys_NAME, __do_sys_NAME). Architectures other than x86 and arm64,
# tools/, samples/ and scripts/ are left out. A name that is also defined outside SCOPE (a
# static helper of the same name in a driver) is listed under `@*also-elsewhere`: no path
# decides for it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=lab/data/function-files.gz
src=${1:-/usr/src/linux-source-6.12.tar.xz}
SCOPE='^(lib|mm|kernel|include|ipc|init|block|virt/lib|net/core|fs/proc|drivers/base|arch/(x86|arm64))/|^fs/[^/]+$|^security/[^/]+$'

if ! command -v ctags >/dev/null || ! ctags --version | grep -q Universal; then
  sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get install -y universal-ctags >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -f "$src" ]; then
  echo "unpacking $src" >&2
  tar -xf "$src" -C "$work" --wildcards '*.c' '*.h' '*/Makefile'
  tree=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -1)
else
  tree=$src
fi
[ -f "$tree/Makefile" ] || { echo "$tree: not a kernel tree (no Makefile)" >&2; exit 1; }
version=$(sed -n 's/^VERSION = //p;s/^PATCHLEVEL = //p;s/^SUBLEVEL = //p' "$tree/Makefile" | paste -sd.)

(
  cd "$tree"
  dirs=$(ls -d */ | grep -vE '^(tools|samples|Documentation|scripts|usr|LICENSES)/$' | tr -d /)
  # Function definitions: name, file.
  # shellcheck disable=SC2086
  ctags -R --languages=C --langmap=C:+.h --kinds-C=f -f - --output-format=u-ctags $dirs 2>/dev/null |
    awk -F'\t' '{print $1"\t"$2}'
  # The functions SYSCALL_DEFINEn(name, ...) makes.
  # shellcheck disable=SC2086
  grep -rHoE '^(COMPAT_)?SYSCALL_DEFINE[0-6]\((\w+)' --include='*.c' $dirs |
    sed -E 's/^([^:]+):(COMPAT_)?SYSCALL_DEFINE[0-6]\((\w+)/\1\t\2\t\3/' |
    awk -F'\t' '{c = ($2 == "") ? "" : "compat_"
      split("__do_ __se_ __x64_ __ia32_ __arm64_", p, " ")
      for (i in p) print p[i] c "sys_" $3 "\t" $1}'
) | grep -vE $'\tarch/(alpha|arc|arm|csky|hexagon|loongarch|m68k|microblaze|mips|nios2|openrisc|parisc|powerpc|riscv|s390|sh|sparc|um|xtensa)/' |
  grep -vE '^(COMPAT_)?SYSCALL_DEFINE' | LC_ALL=C sort -u >"$work/all.tsv"

awk -F'\t' -v scope="$SCOPE" '$2 ~ scope' "$work/all.tsv" >"$work/in.tsv"
# Names in scope that are also defined outside it.
awk -F'\t' -v scope="$SCOPE" '$2 !~ scope {print $1}' "$work/all.tsv" | LC_ALL=C sort -u >"$work/out.names"
cut -f1 "$work/in.tsv" | LC_ALL=C sort -u | LC_ALL=C comm -12 - "$work/out.names" >"$work/both.names"

{
  echo "# Where functions of the kernel's shared machinery are defined: @FILE, then its functions."
  echo "# From Linux $version by scripts/function-files.sh; scope: $SCOPE"
  LC_ALL=C sort -t$'\t' -k2,2 -k1,1 "$work/in.tsv" | awk -F'\t' '$2 != f {print "@" $2; f = $2} {print $1}'
  echo "@*also-elsewhere"
  cat "$work/both.names"
} | gzip -9n >"$out"
echo "$out: $(wc -l <"$work/in.tsv") definitions in $(cut -f2 "$work/in.tsv" | sort -u | wc -l) files, $(wc -l <"$work/both.names") names also defined elsewhere (Linux $version)" >&2
