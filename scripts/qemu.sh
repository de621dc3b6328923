#!/bin/bash
# Fetch, patch and build the pinned QEMU with appdep.
#
#   scripts/qemu.sh build    fetch (once), apply qemu-patches/, sync hw/appdep
#                            and tests/qtest, configure (once), ninja
#   scripts/qemu.sh qtest    build and run the appdep qtest
#   scripts/qemu.sh export   regenerate qemu-patches/ from the git tree
#                            build/qemu (commits after tag 'upstream')
#
# The source tree build/qemu is a git repository: tag 'upstream' is the
# pristine 10.0.2 tarball, the series is applied on top with 'git am'.
# Re-running is incremental: nothing is refetched, the series is re-applied
# only when qemu-patches/ changed, and files are copied only when their
# content differs, so ninja rebuilds only what changed.
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${APPDEP_BUILD:-$TOP/build}
SRC=$BUILD/qemu
OBJ=$BUILD/qemu-build
DL=$BUILD/dl
QEMU_DEB_VERSION="1:10.0.2+ds-2+deb13u1~bpo12+1"
QEMU_TARBALL=qemu_10.0.2+ds.orig.tar.xz
QEMU_SHA256=0901da33844a331bf8b3602b9c1fbd178e60b737c8e3ade678255bd090c9b9f1
GIT="git -C $SRC -c user.name=appdep -c user.email=appdep@localhost -c commit.gpgsign=false"

log() { echo "appdep-qemu: $*" >&2; }
die() { log "error: $*"; exit 1; }

fetch() {
    [ -f "$SRC/.appdep-fetched" ] && return 0
    mkdir -p "$DL"
    if [ ! -f "$DL/$QEMU_TARBALL" ]; then
        log "fetching QEMU $QEMU_DEB_VERSION source from Debian"
        (cd "$DL" && apt-get source -qq --tar-only "qemu=$QEMU_DEB_VERSION") \
            || die "apt-get source failed (did scripts/install-deps.sh run?)"
    fi
    echo "$QEMU_SHA256  $DL/$QEMU_TARBALL" | sha256sum -c --quiet - \
        || die "$QEMU_TARBALL: sha256 mismatch"
    log "unpacking"
    rm -rf "$SRC" && mkdir -p "$SRC"
    tar -xJf "$DL/$QEMU_TARBALL" -C "$SRC" --strip-components=1
    $GIT init -q
    $GIT add -A .
    $GIT commit -q -m "QEMU 10.0.2 (Debian $QEMU_DEB_VERSION orig tarball)"
    $GIT tag upstream
    touch "$SRC/.appdep-fetched"
}

# copy SRC_FILE to DST_FILE only when the content differs (keeps mtimes)
sync_file() {
    cmp -s "$1" "$2" 2>/dev/null && return 0
    mkdir -p "$(dirname "$2")"
    cp "$1" "$2"
}

apply_series() {
    local want have
    want=$(cat "$TOP"/qemu-patches/*.patch 2>/dev/null | sha256sum | cut -c1-32)
    have=$(cat "$SRC/.appdep-series" 2>/dev/null || true)
    if [ "$want" != "$have" ]; then
        log "applying qemu-patches/"
        $GIT reset -q --hard upstream
        $GIT clean -q -fd -e .appdep-fetched
        if ls "$TOP"/qemu-patches/*.patch >/dev/null 2>&1; then
            $GIT am -q --whitespace=nowarn "$TOP"/qemu-patches/*.patch \
                || { $GIT am --abort || true; die "qemu-patches/ does not apply"; }
        fi
        echo "$want" > "$SRC/.appdep-series"
    fi
    local f
    for f in "$TOP"/hw/appdep/*; do
        sync_file "$f" "$SRC/hw/appdep/$(basename "$f")"
    done
    for f in "$TOP"/tests/qtest/*.c; do
        [ -e "$f" ] && sync_file "$f" "$SRC/tests/qtest/$(basename "$f")"
    done
    return 0
}

link_firmware() {
    # Run from the build tree, QEMU re-roots its firmware path under
    # qemu-bundle/: point those directories at Debian's firmware.
    local d
    for d in /usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu; do
        [ -d "$d" ] || continue
        mkdir -p "$OBJ/qemu-bundle$(dirname "$d")"
        [ -e "$OBJ/qemu-bundle$d" ] || ln -s "$d" "$OBJ/qemu-bundle$d"
    done
}

configure() {
    [ -f "$OBJ/.appdep-configured" ] && [ -f "$OBJ/build.ninja" ] && return 0
    mkdir -p "$OBJ"
    log "configuring"
    (cd "$OBJ" && "$SRC/configure" --python=/usr/bin/python3 \
        --target-list=x86_64-softmmu --disable-docs --disable-install-blobs \
        --without-default-features --enable-kvm --enable-tcg \
        --firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu \
        >"$OBJ/configure.log" 2>&1) || { tail -30 "$OBJ/configure.log"; die "configure failed"; }
    touch "$OBJ/.appdep-configured"
}

build() {
    fetch
    apply_series
    configure
    link_firmware
    log "ninja qemu-system-x86_64"
    ninja -C "$OBJ" qemu-system-x86_64 tests/qtest/appdep-test ${APPDEP_NINJA_ARGS:-} \
        > "$OBJ/ninja.log" 2>&1 || { grep -B2 -A12 -E 'error|FAILED' "$OBJ/ninja.log" | head -80; die "build failed (see $OBJ/ninja.log)"; }
}

export_series() {
    [ -d "$SRC/.git" ] || die "no git tree at $SRC"
    rm -f "$TOP"/qemu-patches/*.patch
    mkdir -p "$TOP/qemu-patches"
    $GIT format-patch -q --no-signature --zero-commit --no-numbered \
        -o "$TOP/qemu-patches" upstream..HEAD
    ( cd "$SRC" && cat "$TOP"/qemu-patches/*.patch | sha256sum | cut -c1-32 > .appdep-series )
    ls "$TOP/qemu-patches"
}

run_qtest() {
    build
    QTEST_QEMU_BINARY=$OBJ/qemu-system-x86_64 \
        "$OBJ/tests/qtest/appdep-test" --tap -k
}

case "${1:-build}" in
    fetch) fetch ;;
    patch) fetch; apply_series ;;
    build) build ;;
    qtest) run_qtest ;;
    export) export_series ;;
    *) die "usage: $0 [fetch|patch|build|qtest|export]" ;;
esac
