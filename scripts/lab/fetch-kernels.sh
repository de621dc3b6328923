#!/bin/bash
# Fill the kernel cache used by the profile tests and the guest lab:
#   build/kernels/<package>.deb        the downloaded package
#   build/kernels/<package>/boot/...   its contents (dpkg -x), with lib/modules
# Fetches the current Debian 12 cloud and generic 6.1 kernels (the N of
# 6.1.0-N comes from linux-image-cloud-amd64's dependency) and the 6.12 cloud
# kernel of bookworm-backports. Needs apt-get update to have been run with
# bookworm-backports enabled (scripts/install-deps.sh does it).
# Idempotent: a package already extracted is skipped.
#
# Usage: fetch-kernels.sh [CACHE_DIR]      (default: build/kernels)
#        fetch-kernels.sh --list           print the package names only
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
list_only=0
if [ "${1:-}" = "--list" ]; then
    list_only=1
    shift
fi
cache=${1:-${APPDEP_KERNEL_DIR:-$here/build/kernels}}

die() {
    echo "fetch-kernels: $*" >&2
    exit 1
}

# The image package a meta-package depends on, e.g.
# linux-image-cloud-amd64 -> linux-image-6.1.0-56-cloud-amd64
meta_dep() {
    apt-cache depends "$1" 2>/dev/null \
        | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n1
}

# The default candidate (bookworm-security wins over bookworm proper).
cloud61=$(meta_dep linux-image-cloud-amd64)
[ -n "$cloud61" ] || die "cannot resolve linux-image-cloud-amd64 (run apt-get update)"
case "$cloud61" in
linux-image-6.1.0-*-cloud-amd64) ;;
*) die "unexpected dependency of linux-image-cloud-amd64: $cloud61" ;;
esac
abi=${cloud61#linux-image-6.1.0-}
abi=${abi%-cloud-amd64}

bpo=$(meta_dep linux-image-cloud-amd64/bookworm-backports)
case "$bpo" in
linux-image-6.12*-cloud-amd64) ;;
*) die "no 6.12 cloud kernel in bookworm-backports (got '${bpo}'; is bookworm-backports enabled?)" ;;
esac

# package name, apt release selector ('' = default candidate)
pkgs=("linux-image-6.1.0-$abi-cloud-amd64-unsigned" ""
      "linux-image-6.1.0-$abi-amd64-unsigned" ""
      "$bpo-unsigned" "bookworm-backports")

if [ "$list_only" = 1 ]; then
    for ((i = 0; i < ${#pkgs[@]}; i += 2)); do
        echo "${pkgs[i]}"
    done
    exit 0
fi

mkdir -p "$cache"
cd "$cache"
for ((i = 0; i < ${#pkgs[@]}; i += 2)); do
    pkg=${pkgs[i]}
    rel=${pkgs[i + 1]}
    if compgen -G "$pkg/boot/vmlinuz-*" >/dev/null; then
        echo "fetch-kernels: $pkg: present" >&2
        continue
    fi
    if ! compgen -G "${pkg}_*.deb" >/dev/null; then
        echo "fetch-kernels: $pkg: downloading" >&2
        apt-get download -q "$pkg${rel:+/$rel}" >/dev/null \
            || die "apt-get download $pkg failed"
    fi
    deb=$(compgen -G "${pkg}_*.deb" | head -n1)
    echo "fetch-kernels: $pkg: extracting $deb" >&2
    rm -rf "$pkg.tmp"
    dpkg -x "$deb" "$pkg.tmp"
    mv "$pkg.tmp" "$pkg"
done
