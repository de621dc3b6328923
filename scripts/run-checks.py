#!/usr/bin/python3
"""Run every appdep test suite and print one summary line.

Each suite is a command; its output goes to build/test-logs/SUITE.log.
TAP output ("ok N", "not ok N", "# SKIP") is counted test by test; a
suite without TAP counts as one test.  Exit status 77 means skipped.
The last line is "N passed, N failed, N skipped".
"""

import os
import re
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(TOP, "build")
QEMU_BUILD = os.path.join(BUILD, "qemu-build")
PY = "/usr/bin/python3"

SUITES = [
    ("unit", ["meson", "test", "-C", os.path.join(BUILD, "meson"),
              "--print-errorlogs", "--no-rebuild"]),
    ("qtest", [os.path.join(QEMU_BUILD, "tests/qtest/appdep-test"), "--tap",
               "-k"]),
    ("dump", [PY, os.path.join(TOP, "tests/tools/test_dump.py")]),
    ("fwd", [PY, os.path.join(TOP, "tests/tools/test_fwd.py")]),
    ("boot", [PY, os.path.join(TOP, "tests/boot/test_boot.py")]),
    ("pipeline", [PY, os.path.join(TOP, "tests/boot/test_pipeline.py")]),
    ("kvm", [PY, os.path.join(TOP, "tests/boot/test_kvm.py")]),
    ("accuracy", [PY, os.path.join(TOP, "scripts/accuracy.py"), "--short"]),
]

TAP_RE = re.compile(r"^(not ok|ok)\b(.*)$")
MESON_RE = re.compile(r"^(Ok|Fail|Skipped|Expected Fail|Unexpected Pass|"
                      r"Timeout):\s+(\d+)", re.M)


def count(name, out, rc):
    """Return (passed, failed, skipped) for one suite's output."""
    if name == "unit":
        got = dict((k, int(v)) for k, v in MESON_RE.findall(out))
        if got:
            return (got.get("Ok", 0) + got.get("Expected Fail", 0),
                    got.get("Fail", 0) + got.get("Timeout", 0) +
                    got.get("Unexpected Pass", 0),
                    got.get("Skipped", 0))
    passed = failed = skipped = 0
    for line in out.splitlines():
        m = TAP_RE.match(line.strip())
        if not m:
            continue
        if "# SKIP" in m.group(2).upper():
            skipped += 1
        elif m.group(1) == "ok":
            passed += 1
        else:
            failed += 1
    if passed + failed + skipped == 0:
        if rc == 77:
            return 0, 0, 1
        return (1, 0, 0) if rc == 0 else (0, 1, 0)
    if rc not in (0, 77) and failed == 0:
        failed = 1          # crashed after its last TAP line
    return passed, failed, skipped


def main():
    only = sys.argv[1:]
    logs = os.path.join(BUILD, "test-logs")
    os.makedirs(logs, exist_ok=True)
    env = dict(os.environ)
    env["QTEST_QEMU_BINARY"] = os.path.join(QEMU_BUILD, "qemu-system-x86_64")
    total = [0, 0, 0]
    for name, cmd in SUITES:
        if only and name not in only:
            continue
        t0 = time.time()
        print(f"== {name}: {' '.join(cmd)}", flush=True)
        p = subprocess.run(cmd, cwd=TOP, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True,
                           errors="replace")
        with open(os.path.join(logs, name + ".log"), "w") as f:
            f.write(p.stdout)
        res = count(name, p.stdout, p.returncode)
        for i in range(3):
            total[i] += res[i]
        status = "FAIL" if res[1] else ("SKIP" if not res[0] else "ok")
        print(f"   {status}: {res[0]} passed, {res[1]} failed, "
              f"{res[2]} skipped ({time.time() - t0:.0f}s, log "
              f"build/test-logs/{name}.log)", flush=True)
        if res[1]:
            tail = p.stdout.splitlines()[-25:]
            print("   | " + "\n   | ".join(tail))
    print(f"{total[0]} passed, {total[1]} failed, {total[2]} skipped")
    return 1 if total[1] else 0


if __name__ == "__main__":
    sys.exit(main())
