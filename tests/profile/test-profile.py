#!/usr/bin/env python3
"""Integration test of appdep-profile on real Debian kernels.

Runs the tool on every kernel package found in the cache directory
(filled by scripts/lab/fetch-kernels.sh), checks the profiles against the
values verified by hand (docs/design.md §4 for 6.1.0-56), and checks that
broken or foreign inputs fail with exit status 1 and a clear message.

Usage: test-profile.py [--tool PATH] [--kernels DIR]
Exit status: 0 pass, 1 fail.  A tool that is not built or a kernel cache
that is empty is a failure: the build fetches the kernels, and a test that
cannot run must not pass.
"""

import argparse
import glob
import json
import lzma
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

REQUIRED_SYMBOLS = ["entry_SYSCALL_64", "linux_banner", "page_offset_base",
                    "this_cpu_off", "tcp_sendmsg", "tcp_close",
                    "tcp_cleanup_rbuf"]
REQUIRED_OFFSETS = ["task_struct.pid", "task_struct.tgid", "task_struct.comm",
                    "task_struct.files", "sock_common.skc_daddr",
                    "sock_common.skc_rcv_saddr", "sock_common.skc_dport",
                    "sock_common.skc_num", "sock_common.skc_family",
                    "sock_common.skc_v6_daddr", "sock_common.skc_v6_rcv_saddr",
                    "tcp_sock.write_seq", "tcp_sock.copied_seq"]

# Same in every kernel appdep supports so far.
SOCK_COMMON = {"sock_common.skc_daddr": 0x0, "sock_common.skc_rcv_saddr": 0x4,
               "sock_common.skc_dport": 0xc, "sock_common.skc_num": 0xe,
               "sock_common.skc_family": 0x10}

# Per flavour of 6.1 (struct layouts are stable across 6.1.y builds).
EXPECT_61 = {
    "current_layout": "current_task",
    "symbols": {"current_task": 0x1fb80, "entry_SYSCALL_64": 0xffffffff81c00080},
    "offsets": dict(SOCK_COMMON, **{"tcp_sock.write_seq": 0x73c,
                                    "tcp_sock.copied_seq": 0x5bc,
                                    "task_struct.pid": 0x970,
                                    "task_struct.tgid": 0x974,
                                    "task_struct.comm": 0xba0}),
}
EXPECT_612 = {
    "current_layout": "pcpu_hot",
    "symbols": {},
    "offsets": dict(SOCK_COMMON, **{"pcpu_hot.current_task": 0x0}),
}

# Addresses of one exact build (docs/design.md §4, and this tool's first
# run on 6.12.95, checked against the function prologues in the image).
EXPECT_BUILD = {
    "6.1.0-56-amd64": {"tcp_sendmsg": 0xffffffff8188bf40,
                       "tcp_close": 0xffffffff8188e530,
                       "tcp_cleanup_rbuf": 0xffffffff8188c040},
    "6.1.0-56-cloud-amd64": {"tcp_sendmsg": 0xffffffff8185ba30,
                             "tcp_close": 0xffffffff8185e020,
                             "tcp_cleanup_rbuf": 0xffffffff8185bb30},
    "6.12.95+deb12-cloud-amd64": {"entry_SYSCALL_64": 0xffffffff81e00080,
                                  "tcp_sendmsg": 0xffffffff81ae8c80,
                                  "tcp_close": 0xffffffff81aebac0,
                                  "tcp_cleanup_rbuf": 0xffffffff81ae8e70,
                                  "pcpu_hot": 0x35000},
}

failures = []


def check(cond, what):
    if cond:
        print(f"ok - {what}")
    else:
        print(f"not ok - {what}")
        failures.append(what)
    return cond


def run(tool, *args):
    return subprocess.run([tool, *args], capture_output=True, text=True)


def expect_failure(tool, path, pattern, what):
    r = run(tool, path, "-o", os.devnull)
    ok = r.returncode == 1 and re.search(pattern, r.stderr)
    check(ok, f"{what}: exit 1 with /{pattern}/")
    if not ok:
        print(f"#   exit {r.returncode}, stderr: {r.stderr.strip()}")


def profile(tool, image, out):
    r = run(tool, image, "-o", out)
    if not check(r.returncode == 0, f"{os.path.basename(image)}: profiled"):
        print(f"#   stderr: {r.stderr.strip()}")
        return None
    with open(out) as f:
        return json.load(f)


def check_profile(name, p, expect):
    release = name.split("vmlinuz-", 1)[1]
    check(p.get("appdep_profile") == 1, f"{release}: format version 1")
    check(p["banner"].startswith("Linux version " + release + " ")
          and not p["banner"].endswith("\n"), f"{release}: banner")
    check(p["release"] == release, f"{release}: release")
    check(re.fullmatch(r"[0-9a-f]{40}", p["build_id"]) is not None,
          f"{release}: build_id")
    syms = {k: int(v, 16) for k, v in p["symbols"].items()}
    check(all(re.fullmatch(r"0x[0-9a-f]+", v) for v in p["symbols"].values()),
          f"{release}: symbols are hex strings")
    missing = [s for s in REQUIRED_SYMBOLS if s not in syms]
    check(not missing, f"{release}: required symbols"
          + (f" (missing {missing})" if missing else ""))
    missing = [o for o in REQUIRED_OFFSETS if o not in p["offsets"]]
    check(not missing, f"{release}: required offsets"
          + (f" (missing {missing})" if missing else ""))
    check(p["current_layout"] == expect["current_layout"],
          f"{release}: current_layout {expect['current_layout']}")
    check(p["current_layout"] in syms, f"{release}: per-cpu current symbol")
    for s in ["entry_SYSCALL_64", "tcp_sendmsg", "tcp_close", "linux_banner",
              "page_offset_base"]:
        check(syms.get(s, 0) >= 0xffffffff80000000,
              f"{release}: {s} is a kernel address")
    check(syms.get("this_cpu_off", -1) < 0x100000,
          f"{release}: this_cpu_off is a per-cpu offset")
    want = dict(expect["symbols"], **EXPECT_BUILD.get(release, {}))
    if release not in EXPECT_BUILD:
        print(f"# {release}: no pinned addresses for this build, "
              "checking layout only")
    for s, v in want.items():
        check(syms.get(s) == v, f"{release}: {s} = {v:#x} (got "
              f"{syms.get(s, 0):#x})")
    for o, v in expect["offsets"].items():
        check(p["offsets"].get(o) == v, f"{release}: {o} = {v:#x} (got "
              f"{p['offsets'].get(o, -1):#x})")


def xz_vmlinux(vmlinuz):
    """The vmlinux inside an xz bzImage (Python has xz, not lz4/zstd)."""
    with open(vmlinuz, "rb") as f:
        data = f.read()
    start = data.find(b"\xfd7zXZ\x00")
    return lzma.LZMADecompressor().decompress(data[start:])


def zero_section(elf, name):
    """Zero the file contents of ELF64 section @name in the bytearray."""
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3a)
    sh = [struct.unpack_from("<IIQQQQ", elf, shoff + i * shentsize)
          for i in range(shnum)]
    stroff = sh[shstrndx][4]
    for s in sh:
        end = elf.index(b"\0", stroff + s[0])
        if elf[stroff + s[0]:end].decode() == name:
            elf[s[4]:s[4] + s[5]] = bytes(s[5])
            return
    raise KeyError(name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tool", default=os.environ.get(
        "APPDEP_PROFILE", os.path.join(REPO, "build/meson/scripts/profile/appdep-profile")))
    ap.add_argument("--kernels", default=os.environ.get(
        "APPDEP_KERNEL_DIR", os.path.join(REPO, "build/kernels")))
    args = ap.parse_args()

    if not check(os.access(args.tool, os.X_OK),
                 f"prerequisite: {args.tool} is built"):
        return 1
    kernels = {
        "6.1 generic": glob.glob(os.path.join(
            args.kernels, "linux-image-6.1.0-*[0-9]-amd64-unsigned/boot/vmlinuz-*")),
        "6.1 cloud": glob.glob(os.path.join(
            args.kernels, "linux-image-6.1.0-*-cloud-amd64-unsigned/boot/vmlinuz-*")),
        "6.12 cloud": glob.glob(os.path.join(
            args.kernels, "linux-image-6.12*-cloud-amd64-unsigned/boot/vmlinuz-*")),
    }
    if not check(any(kernels.values()),
                 f"prerequisite: kernels in {args.kernels} (run "
                 "scripts/lab/fetch-kernels.sh)"):
        return 1
    for kind, found in kernels.items():
        check(found, f"{kind} kernel present in {args.kernels}")

    tmp = tempfile.mkdtemp(prefix="appdep-profile-test.")
    try:
        for kind, found in kernels.items():
            expect = EXPECT_612 if kind.startswith("6.12") else EXPECT_61
            for image in sorted(found):
                out = os.path.join(tmp, os.path.basename(image) + ".json")
                p = profile(args.tool, image, out)
                if p:
                    check_profile(os.path.basename(image), p, expect)

        r = run(args.tool, "--help")
        check(r.returncode == 0 and "current_layout" in r.stdout,
              "--help explains the JSON format")
        r = run(args.tool)
        check(r.returncode == 2, "no argument: usage error, exit 2")

        for image in sorted(kernels["6.1 generic"])[:1]:
            with open(image, "rb") as f:
                vmlinuz = f.read()
            name = os.path.join(tmp, "vmlinuz")

            def variant(data):
                with open(name, "wb") as f:
                    f.write(data)
                return name

            expect_failure(args.tool, variant(vmlinuz[:len(vmlinuz) // 2]),
                           "truncated", "truncated vmlinuz")
            bad = bytearray(vmlinuz)
            start = vmlinuz.find(b"\xfd7zXZ\x00")
            for i in range(start + 100000, start + 100100):
                bad[i] ^= 0x5a
            expect_failure(args.tool, variant(bytes(bad)), "xz: .*corrupt",
                           "corrupt xz stream")
            bad = bytearray(vmlinuz)
            bad[start:start + 6] = b"NOTXZ!"
            expect_failure(args.tool, variant(bytes(bad)),
                           "unknown compression", "unknown compression")
            expect_failure(args.tool, variant(b"#!/bin/sh\necho hi\n" * 100),
                           "not a kernel image", "not a kernel image")
            expect_failure(args.tool, variant(b""), "not a kernel image",
                           "empty file")

            vmlinux = xz_vmlinux(image)
            elf = os.path.join(tmp, "vmlinux")
            with open(elf, "wb") as f:
                f.write(vmlinux)
            p_elf = profile(args.tool, elf, os.path.join(tmp, "elf.json"))
            p_z = profile(args.tool, image, os.path.join(tmp, "z.json"))
            check(p_elf is not None and p_elf == p_z,
                  "uncompressed vmlinux gives the same profile")

            nobtf = os.path.join(tmp, "vmlinux-nobtf")
            r = subprocess.run(["objcopy", "--remove-section", ".BTF", elf,
                                nobtf], capture_output=True, text=True)
            if check(r.returncode == 0, "objcopy --remove-section .BTF"):
                expect_failure(args.tool, nobtf,
                               r"has no \.BTF section: .*CONFIG_DEBUG_INFO_BTF",
                               "vmlinux without .BTF")
            else:
                print(f"#   {r.stderr.strip()}")

            norodata = bytearray(vmlinux)
            zero_section(norodata, ".rodata")
            expect_failure(args.tool, variant(bytes(norodata)),
                           "kallsyms tables not found", "vmlinux without kallsyms")
    finally:
        shutil.rmtree(tmp)

    print(f"# {len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
