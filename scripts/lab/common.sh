# shellcheck shell=bash
# Shared by the guest-lab shell scripts; source it, do not run it.
# Sets LAB_TOP (repository root) and LAB_BUILD (build directory, $APPDEP_BUILD
# or LAB_TOP/build) and defines lab_kernel_dir.

LAB_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB_BUILD=${APPDEP_BUILD:-$LAB_TOP/build}
LAB_KERNEL_GLOB='linux-image-6.1.*-cloud-amd64-unsigned'

lab_log() { echo "appdep-lab: $*" >&2; }
lab_die() { lab_log "error: $*"; exit 1; }

# Print the newest $LAB_BUILD/kernels/$LAB_KERNEL_GLOB directory, if any.
lab_find_kernel() {
    find "$LAB_BUILD/kernels" -mindepth 1 -maxdepth 1 -type d \
        -name "$LAB_KERNEL_GLOB" 2>/dev/null | sort -V | tail -n 1 || true
}

# Print the newest unpacked cloud 6.1 kernel directory under
# $LAB_BUILD/kernels, running scripts/lab/fetch-kernels.sh when there is none.
lab_kernel_dir() {
    local d
    d=$(lab_find_kernel)
    if [ -z "$d" ]; then
        local fetch=$LAB_TOP/scripts/lab/fetch-kernels.sh
        [ -x "$fetch" ] || lab_die "no $LAB_BUILD/kernels/$LAB_KERNEL_GLOB and no $fetch to fetch it"
        lab_log "no guest kernel yet: running $fetch"
        "$fetch" "$LAB_BUILD/kernels" >&2 || lab_die "$fetch failed"
        d=$(lab_find_kernel)
        [ -n "$d" ] || lab_die "$fetch did not produce $LAB_BUILD/kernels/$LAB_KERNEL_GLOB"
    fi
    echo "$d"
}
