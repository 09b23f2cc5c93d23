#!/usr/bin/env bash
# Makes a git repository for bisecting the 2024 epoll/close race: Debian's linux-source-6.12
# imported as the root commit, then 40 commits of harmless changes (comments in files the
# lab's kernels compile, notes in Documentation/), among them:
#   commit 13  "epoll: poll the watched file without pinning it"   (the race comes in; tag race-in)
#   commit 8   a change that does not compile                     (tag broken; commit 9 mends it)
#   commit 36  "epoll: pin the watched file while polling it"     (the race goes; tag race-out)
# Tags: good (the root), racy-end (commit 35: racy, before the fix), head (commit 40).
#
# Usage: scripts/make-bisect-repo.sh DIR      (DIR must not exist; takes a few minutes)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:?usage: $0 DIR}"
tarball=/usr/src/linux-source-6.12.tar.xz
patch="$(ls "$here"/kernels/patches/epoll-unpinned-poll/*.patch)"
[ -e "$dir" ] && { echo "$dir exists" >&2; exit 1; }
[ -f "$tarball" ] || { echo "$tarball missing: apt-get install linux-source-6.12" >&2; exit 1; }

mkdir -p "$dir"
echo "make-bisect-repo: extracting $tarball"
tar -xf "$tarball" -C "$dir" --strip-components=1
cd "$dir"
export GIT_AUTHOR_NAME="Lab Fixture" GIT_AUTHOR_EMAIL="fixture@kernel-race-lab.invalid"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
export GIT_AUTHOR_DATE="2026-01-01T00:00:00Z" GIT_COMMITTER_DATE="2026-01-01T00:00:00Z"
git init -q -b main
git config core.autocrlf false
echo "make-bisect-repo: importing the tree (git add of ~90k files)"
# Debian's .gitignore ignores everything at the top level (its packaging repository keeps
# only debian/): the import adds the whole tree regardless.
git add -A -f
git commit -q -m "Import Debian linux-source-6.12 ($(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null || echo unknown))"
git tag good

# Files the lab's configurations compile: a comment at their end rebuilds one object.
compiled=(fs/open.c fs/read_write.c kernel/exit.c fs/file.c kernel/fork.c mm/mmap.c fs/namei.c kernel/signal.c)
for n in $(seq 1 40); do
  export GIT_AUTHOR_DATE="2026-01-01T00:$(printf %02d "$n"):00Z" GIT_COMMITTER_DATE="2026-01-01T00:$(printf %02d "$n"):00Z"
  case "$n" in
    8)
      echo '#error "lab bisect fixture: this commit does not compile"' >> fs/open.c
      git commit -q -am "fs: a change that does not compile"
      git tag broken
      continue ;;
    9)
      sed -i '$ d' fs/open.c
      git commit -q -am "fs: mend the build"
      continue ;;
    13)
      git apply "$patch"
      git commit -q -am "epoll: poll the watched file without pinning it"
      git tag race-in
      continue ;;
    36)
      git apply -R "$patch"
      git commit -q -am "epoll: pin the watched file while polling it"
      git tag race-out
      continue ;;
  esac
  if [ $((n % 2)) -eq 0 ]; then
    mkdir -p Documentation/lab
    echo "note $n" >> Documentation/lab/notes.txt
    git add -f Documentation/lab/notes.txt
    git commit -q -m "Documentation: lab note $n"
  else
    f="${compiled[$(( (n / 2) % ${#compiled[@]} ))]}"
    echo "/* lab bisect fixture: harmless change $n */" >> "$f"
    git commit -q -am "${f%%/*}: harmless change $n"
  fi
  [ "$n" -eq 35 ] && git tag racy-end
done
git tag head
echo "make-bisect-repo: $(git rev-list --count HEAD) commits in $dir"
git log --oneline | sed -n '1,3p;/pin/p;/does not compile/p'
