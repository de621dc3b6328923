#!/bin/bash
# Install everything appdep needs on a Debian 12 machine: build deps for the
# pinned QEMU, the daemons' libraries and the guest lab's packages.
# Enables deb-src and bookworm-backports (QEMU 10 needs meson >= 1.5).
# Idempotent: a stamp records what was installed; re-running is cheap.
set -euo pipefail

PKGS=(build-essential pkg-config ninja-build python3 python3-venv python3-pycotap
      libglib2.0-dev libpixman-1-dev zlib1g-dev libfdt-dev flex bison bzip2
      liblmdb-dev lmdb-utils libbpf-dev libelf-dev liblz4-dev libzstd-dev liblzma-dev
      libjson-glib-dev libmicrohttpd-dev
      busybox-static cpio kmod xz-utils zstd lz4 dpkg-dev iproute2
      seabios ipxe-qemu qemu-system-data)
STAMP_DIR=${APPDEP_STAMP_DIR:-/var/lib/appdep}
STAMP=$STAMP_DIR/deps-v1

want_stamp=$(printf '%s\n' "${PKGS[@]}" | sha256sum | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want_stamp" ] \
   && meson --version 2>/dev/null | grep -qE '^1\.([5-9]|[1-9][0-9])'; then
    exit 0
fi

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive

src=/etc/apt/sources.list.d/appdep.sources
if [ ! -f "$src" ]; then
    $SUDO tee "$src" >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
echo "appdep: apt-get update" >&2
$SUDO apt-get update -qq
echo "appdep: installing ${#PKGS[@]} packages" >&2
$SUDO apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports meson >/dev/null
$SUDO mkdir -p "$STAMP_DIR"
echo "$want_stamp" | $SUDO tee "$STAMP" >/dev/null
