#!/usr/bin/python3
"""Run every appdep test suite and print one summary line.

    scripts/run-checks.py                 every suite
    scripts/run-checks.py fwd boot        these suites
    scripts/run-checks.py SUITE TEST...   some tests of one suite (the
                                          suite's own selection: names for
                                          the Python suites, meson test
                                          names for unit, -p paths for qtest)

Each suite is a command; its output goes to build/test-logs/SUITE.log.
TAP output ("ok N", "not ok N", "# SKIP") is counted test by test; a
suite without TAP counts as one test.  Exit status 77 means skipped.
Each suite has a time limit (about 3 times its usual time on a loaded
2-core machine): past it, the suite's process group is killed and the
suite counts one more failure.  The last line is
"N passed, N failed, N skipped".
"""

import os
import re
import signal
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
    ("lifetime", [PY, os.path.join(TOP, "tests/boot/test_lifetime.py")]),
    ("pipeline", [PY, os.path.join(TOP, "tests/boot/test_pipeline.py")]),
    ("kvm", [PY, os.path.join(TOP, "tests/boot/test_kvm.py")]),
    ("accuracy", [PY, os.path.join(TOP, "scripts/accuracy.py"), "--short"]),
]

# Seconds each suite may take before it is killed: about 3 times its time
# on a loaded 2-core machine (measured: dump 1 s, fwd 15 s, boot 250 s,
# lifetime 10-60 s, pipeline 80 s, accuracy --short 40 s, kvm 1 s without
# KVM and a few minutes with it; unit and qtest are bounded by meson's and
# GLib's own).
TIME_LIMIT = {
    "unit": 600,
    "qtest": 300,
    "dump": 60,
    "fwd": 180,
    "boot": 800,
    "lifetime": 400,
    "pipeline": 300,
    "kvm": 600,
    "accuracy": 300,
}
KILL_GRACE_S = 10           # SIGTERM to SIGKILL of a suite out of time


def select_args(name, tests):
    """The arguments that select @tests in suite @name."""
    if name == "qtest":
        return [a for t in tests for a in ("-p", t)]
    return list(tests)


def run_suite(name, cmd, env, log_path):
    """Run one suite, its output to @log_path; return (output, status,
    timed out).  A suite past its limit has its process group killed."""
    limit = TIME_LIMIT[name]
    with open(log_path, "w") as log:
        p = subprocess.Popen(cmd, cwd=TOP, env=env, stdout=log,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        timed_out = False
        try:
            rc = p.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            timed_out = True
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(p.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    p.wait(timeout=KILL_GRACE_S)
                    break
                except subprocess.TimeoutExpired:
                    continue
            rc = p.wait()
    with open(log_path, errors="replace") as f:
        out = f.read()
    if timed_out:
        line = f"not ok - {name}: timed out after {limit} s, killed"
        with open(log_path, "a") as f:
            f.write(line + "\n")
        out += line + "\n"
    return out, rc, timed_out


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
    names = [n for n, _ in SUITES]
    args = sys.argv[1:]
    only = [a for a in args if a in names]
    tests = [a for a in args if a not in names]
    if tests and len(only) != 1:
        print("test names need exactly one suite: run-checks.py SUITE "
              "TEST...", file=sys.stderr)
        return 2
    logs = os.path.join(BUILD, "test-logs")
    os.makedirs(logs, exist_ok=True)
    env = dict(os.environ)
    env["QTEST_QEMU_BINARY"] = os.path.join(QEMU_BUILD, "qemu-system-x86_64")
    total = [0, 0, 0]
    for name, cmd in SUITES:
        if only and name not in only:
            continue
        cmd = cmd + select_args(name, tests)
        t0 = time.time()
        print(f"== {name}: {' '.join(cmd)}", flush=True)
        log = os.path.join(logs, name + ".log")
        out, rc, timed_out = run_suite(name, cmd, env, log)
        res = list(count(name, out, rc))
        if timed_out and not res[1]:
            res[1] = 1          # the "timed out" line, whatever else ran
        for i in range(3):
            total[i] += res[i]
        status = "FAIL" if res[1] else ("SKIP" if not res[0] else "ok")
        print(f"   {status}: {res[0]} passed, {res[1]} failed, "
              f"{res[2]} skipped ({time.time() - t0:.0f}s, log "
              f"build/test-logs/{name}.log)", flush=True)
        if timed_out:
            print(f"   TIMEOUT: {name} ran past its {TIME_LIMIT[name]} s "
                  "limit and was killed", flush=True)
        if res[1]:
            tail = out.splitlines()[-25:]
            print("   | " + "\n   | ".join(tail))
    print(f"{total[0]} passed, {total[1]} failed, {total[2]} skipped")
    return 1 if total[1] else 0


if __name__ == "__main__":
    sys.exit(main())
