#!/bin/bash
# Build the guest-lab initramfs: busybox-static, the static test programs
# (tests/guest), the virtio-net modules of the guest kernel and
# scripts/lab/init. Incremental: nothing is rebuilt when no input changed.
set -euo pipefail
# shellcheck source=scripts/lab/common.sh
. "$(dirname "$0")/common.sh"

# Load order; names that the kernel has built in are skipped.
MODULES=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev
         virtio_pci failover net_failover virtio_net)
BUSYBOX=${APPDEP_BUSYBOX:-/bin/busybox}

usage() {
    cat <<USAGE
usage: $0 [--kernel-dir DIR] [--out FILE] [--force]
  Builds FILE for the kernel unpacked in DIR and prints FILE's path.
  Default DIR: the newest build/kernels/$LAB_KERNEL_GLOB (fetched with
  scripts/lab/fetch-kernels.sh when missing), FILE then
  build/lab/initramfs.cpio.gz; with --kernel-dir, FILE defaults to
  build/lab/initramfs-<basename DIR>.cpio.gz.
  Needs busybox-static ($BUSYBOX), cpio, gzip, gcc (static glibc), make.
  --force rebuilds even when no input changed.
USAGE
}

kdir='' out='' force=''
while [ $# -gt 0 ]; do
    case "$1" in
    --kernel-dir) kdir=${2:?--kernel-dir needs a value}; shift 2 ;;
    --out) out=${2:?--out needs a value}; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; lab_die "unknown argument '$1'" ;;
    esac
done
if [ -z "$kdir" ]; then
    kdir=$(lab_kernel_dir)
    [ -n "$out" ] || out=$LAB_BUILD/lab/initramfs.cpio.gz
fi
[ -n "$out" ] || out=$LAB_BUILD/lab/initramfs-$(basename "$kdir").cpio.gz
[ -d "$kdir/lib/modules" ] || lab_die "$kdir: no lib/modules (not an unpacked kernel package)"
[ -x "$BUSYBOX" ] || lab_die "$BUSYBOX missing (apt-get install busybox-static)"
command -v cpio >/dev/null || lab_die "cpio missing (apt-get install cpio)"

make -s -C "$LAB_TOP/tests/guest" O="$LAB_BUILD/guest" >&2 \
    || lab_die "building tests/guest failed"
bins=("$LAB_BUILD"/guest/bin/*)

kver=$(find "$kdir/lib/modules" -mindepth 1 -maxdepth 1 -printf "%f\n" | sort -V | tail -n 1)
moddir=$kdir/lib/modules/$kver
kos=()
for m in "${MODULES[@]}"; do
    if grep -qE "(^|/)$m\.ko$" "$moddir/modules.builtin" 2>/dev/null; then
        continue
    fi
    ko=$(find "$moddir/kernel" \( -name "$m.ko" -o -name "$m.ko.xz" \
         -o -name "$m.ko.zst" \) | head -n 1)
    [ -n "$ko" ] || lab_die "$m is neither built in nor a module (.ko, .ko.xz, .ko.zst) in $moddir"
    kos+=("$ko")
done

# The stamp covers every input's content, this script and the module list.
stamp=$( { sha256sum "$0" "$LAB_TOP/scripts/lab/init" "$BUSYBOX" "${bins[@]}" "${kos[@]}";
           echo "$kver ${MODULES[*]} $out"; } | sed 's|  .*/| |' | sha256sum | cut -c1-32)
if [ -z "$force" ] && [ -f "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "$out"
    exit 0
fi

lab_log "building $out (kernel $kver)"
mkdir -p "$(dirname "$out")"
root=$(mktemp -d "$(dirname "$out")/.initramfs.XXXXXX")
trap 'rm -rf "$root" "$root.cpio.gz" "$root.stamp"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,lib/modules}
cp "$BUSYBOX" "$root/bin/busybox"
for a in $("$BUSYBOX" --list-full); do
    [ -e "$root/$a" ] || ln -s /bin/busybox "$root/$a"
done
cp "${bins[@]}" "$root/bin/"
cp "$LAB_TOP/scripts/lab/init" "$root/init"
chmod 0755 "$root/init"
: > "$root/etc/appdep-modules"
for ko in "${kos[@]}"; do
    # busybox insmod wants plain .ko: newer kernels ship them compressed
    name=$(basename "$ko")
    case "$name" in
    *.ko.xz) name=${name%.xz}; xz -dc "$ko" > "$root/lib/modules/$name" ;;
    *.ko.zst) name=${name%.zst}; zstd -qdc "$ko" > "$root/lib/modules/$name" ;;
    *) cp "$ko" "$root/lib/modules/" ;;
    esac
    echo "$name" >> "$root/etc/appdep-modules"
done
echo "$kver" > "$root/etc/appdep-kernel"

(cd "$root" && find . -mindepth 1 | LC_ALL=C sort \
    | cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -n -6 > "$root.cpio.gz"
# rename(2) is atomic: a concurrent builder or a booting guest never sees
# half a file.
mv "$root.cpio.gz" "$out"
echo "$stamp" > "$root.stamp"
mv "$root.stamp" "$out.stamp"
echo "$out"
