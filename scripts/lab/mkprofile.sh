#!/bin/bash
# Make the kernel profile of the lab's guest kernel (the cloud 6.1 kernel
# under build/kernels) with appdep-profile: build/lab/profile.json.
# Rebuilt only when the kernel or the tool is newer than the profile.
set -euo pipefail
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

tool=$LAB_BUILD/meson/scripts/profile/appdep-profile
out=$LAB_BUILD/lab/profile.json
[ -x "$tool" ] || lab_die "no $tool: build the tools first (make tools)"
kdir=$(lab_kernel_dir)
vmlinuz=$(ls "$kdir"/boot/vmlinuz-* 2>/dev/null | head -n1)
[ -n "$vmlinuz" ] || lab_die "no vmlinuz in $kdir/boot"
if [ -f "$out" ] && [ "$out" -nt "$vmlinuz" ] && [ "$out" -nt "$tool" ]; then
    exit 0
fi
mkdir -p "$(dirname "$out")"
lab_log "profiling $(basename "$vmlinuz")"
"$tool" "$vmlinuz" -o "$out.tmp"
mv "$out.tmp" "$out"
