#!/bin/bash
# Developer helper: fold the uncommitted changes of build/qemu into the
# patch whose subject starts with $1, then regenerate qemu-patches/.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP/build/qemu"
G="git -c user.name=appdep -c user.email=appdep@localhost -c commit.gpgsign=false"
sha=$(git log --format='%H %s' upstream..HEAD | awk -v s="$1" 'index(substr($0, 42), s) == 1 {print $1; exit}')
[ -n "$sha" ] || { echo "no patch with subject '$1'" >&2; exit 1; }
$G commit -q -a --fixup="$sha"
GIT_SEQUENCE_EDITOR=: $G rebase -q -i --autosquash upstream
"$TOP/scripts/qemu.sh" export
