#!/usr/bin/python3
"""Lifetime test: appdep objects come and go under a busy TCG guest.

One guest with 2 vCPUs runs TCP traffic over loopback without pause
(tcpsrv, and tcpcli in a loop that prints "ROUND n" after each run).  Many
times over, the test hot-adds a chardev and an appdep object, arms it,
waits for records, then disarms and deletes both at once, back to back:
the path where a vCPU still inside a hook must never see the object's
freed state (hw/appdep/appdep-tcg.c, "Lifetime").  After every cycle QEMU
must be alive and the guest must have made progress; every armed period
must have emitted records, and the consumer must have received them.
Once, object-del of the armed object must be refused ("in use") and the
object keep working.  QEMU's open fds must be the same after the last
cycle as after the first few, and its RSS must not grow by more than
MAX_RSS_GROWTH (a 300-cycle run grew 0.5 MiB after cycle 50).

It fails when QEMU crashes or stops answering, when the guest stalls,
when an armed period yields nothing, or when a cycle leaks.  Bounded in time: at most CYCLES
cycles within BUDGET seconds, and at least MIN_CYCLES of them.

Prints TAP (tests/lib/tap.py).  Run from the top directory after
`make`; without the guest lab it fails.
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP / "scripts" / "lab"))
sys.path.insert(0, str(TOP / "tests" / "lib"))
import lab  # noqa: E402
import tap  # noqa: E402

BUILD = Path(os.environ.get("APPDEP_BUILD", TOP / "build"))
DUMP = BUILD / "meson" / "monitor" / "appdep-dump"
PROFILE = BUILD / "lab" / "profile.json"

CYCLES = 100            # add/arm/disarm/delete cycles wanted
MIN_CYCLES = 10         # fewer within BUDGET: something is stuck
BUDGET = 300            # seconds for all cycles
BOOT_TIMEOUT = 120      # guest up and its traffic flowing
RECORDS_TIMEOUT = 30    # an armed period's first records
PROGRESS_TIMEOUT = 30   # the guest's next ROUND line
SETTLE_TIMEOUT = 20     # the consumer has what QEMU wrote
POLL = 0.05
# Leaks: QEMU's open fds and RSS are taken after WARMUP cycles (allocator
# and translation cache warmed up) and again after the last one.  Every
# cycle adds and removes one chardev socket, so the fd count must be
# equal; RSS may move a little with the translation cache and malloc
# arenas, not by a cycle's worth of rings (4096 slots x 176 B per vCPU)
# times the cycles.
WARMUP = 10
MAX_RSS_GROWTH = 8 << 20

# tcpsrv in the background, tcpcli in a loop: every run opens a
# connection, makes 5 request/reply exchanges, closes, prints ROUND n.
GUEST_CMD = ("tcpsrv 8080 --quiet >/dev/null 2>&1 & "
             "i=0; while tcpcli 127.0.0.1 8080 --conns 1 --reqs 5 "
             "--bytes 64 --connect-timeout 30 --quiet >/dev/null; "
             "do i=$((i+1)); echo ROUND $i; done; echo TRAFFIC-FAILED")
ROUND_RE = re.compile(r"^ROUND (\d+)$", re.M)


suite = tap.Suite(timing=True)


def wait_alive(what, cond, timeout, guest):
    """Poll @cond until it returns a true value; return it.

    Unlike tests/lib/wait.py, fails at once when QEMU is gone (with its
    stderr), else after @timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if not guest.alive():
            raise AssertionError(f"QEMU died while waiting for {what} "
                                 f"(rc {guest.proc.returncode})\n"
                                 f"{guest.qemu_stderr()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(POLL)


def rounds(guest):
    """The guest's last completed traffic round (0 before the first)."""
    text = guest.console()
    assert "TRAFFIC-FAILED" not in text, "the guest's traffic failed"
    found = ROUND_RE.findall(text)
    return int(found[-1]) if found else 0


def qemu_fds(g):
    return len(os.listdir(f"/proc/{g.proc.pid}/fd"))


def qemu_rss(g):
    with open(f"/proc/{g.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for QEMU")


def record_count(path):
    try:
        with open(path) as f:
            return sum(1 for line in f if line.strip())
    except FileNotFoundError:
        return 0


def cycle(g, i, sock, del_armed=False):
    """One hot-add, arm, records, disarm, delete; returns records emitted.

    @del_armed: first try object-del while armed, which must be refused
    with a clear error and leave the object working."""
    chr_id, obj_id = f"adrec{i}", f"appdep{i}"
    g.qmp.execute("chardev-add", {
        "id": chr_id,
        "backend": {"type": "socket", "data": {
            "addr": {"type": "unix", "data": {"path": str(sock)}},
            "server": False}}})
    g.qmp.execute("object-add", {"qom-type": "appdep", "id": obj_id,
                                 "chardev": chr_id, "profile": str(PROFILE),
                                 "vm": "lifetime"})
    g.qmp.execute("x-appdep-inspect", {"id": obj_id, "enable": True})

    def emitted():
        return g.qmp.execute("x-query-appdep",
                             {"id": obj_id})["records-emitted"]
    n = wait_alive(f"records from {obj_id}", emitted, RECORDS_TIMEOUT, g)
    if del_armed:
        try:
            g.qmp.execute("object-del", {"id": obj_id})
        except lab.LabError as e:
            assert "in use" in str(e), f"object-del while armed: {e}"
        else:
            raise AssertionError("object-del of an armed object succeeded")
        n = wait_alive(f"more records from {obj_id} after the refusal",
                       lambda: emitted() > n and emitted(), RECORDS_TIMEOUT,
                       g)
    # disarm and delete back to back: vCPUs are still in hooks
    g.qmp.execute("x-appdep-inspect", {"id": obj_id, "enable": False})
    g.qmp.execute("object-del", {"id": obj_id})
    g.qmp.execute("chardev-remove", {"id": chr_id})
    return n


@suite.test
def add_remove_under_traffic():
    """hot-add, arm, disarm, delete appdep repeatedly under TCP traffic"""
    with lab.Lab() as l:
        out = Path(l.workdir) / "records.jsonl"
        sock = Path(l.workdir) / "rec.sock"
        with open(out, "wb") as o, \
                open(Path(l.workdir) / "dump.log", "wb") as e:
            dump = subprocess.Popen([str(DUMP), "--listen", str(sock)],
                                    stdout=o, stderr=e)
        try:
            deadline = time.monotonic() + 10
            while not sock.exists():
                assert dump.poll() is None and time.monotonic() < deadline, \
                    "appdep-dump did not listen"
                time.sleep(POLL)
            g = l.add("life", GUEST_CMD, smp=2)
            l.start()
            g.wait_ready(BOOT_TIMEOUT)
            wait_alive("guest traffic", lambda: rounds(g) >= 1,
                       BOOT_TIMEOUT, g)

            t0 = time.monotonic()
            done = emitted = 0
            fds0 = rss0 = None
            while done < CYCLES and time.monotonic() - t0 < BUDGET:
                before = rounds(g)
                emitted += cycle(g, done, sock, del_armed=done == 1)
                done += 1
                if done == WARMUP:
                    fds0, rss0 = qemu_fds(g), qemu_rss(g)
                wait_alive(f"guest progress after cycle {done}",
                           lambda: rounds(g) > before, PROGRESS_TIMEOUT, g)
                # QEMU answers: the main loop is not stuck either
                status = g.qmp.execute("query-status")["status"]
                assert status == "running", f"the VM is {status}"
            assert done >= MIN_CYCLES, \
                f"only {done} cycles in {BUDGET} s"
            fds, rss = qemu_fds(g), qemu_rss(g)
            assert fds == fds0, \
                f"QEMU's open fds: {fds0} after {WARMUP} cycles, {fds} " \
                f"after {done}"
            assert rss - rss0 <= MAX_RSS_GROWTH, \
                f"QEMU's RSS grew by {(rss - rss0) >> 10} KiB from cycle " \
                f"{WARMUP} to {done}"
            wait_alive(f"{emitted} records at the consumer",
                       lambda: record_count(out) >= emitted,
                       SETTLE_TIMEOUT, g)
            objs = [o for o in g.qmp.execute("qom-list",
                                             {"path": "/objects"})
                    if o["name"].startswith("appdep")]
            assert not objs, f"objects left: {objs}"
            got = record_count(out)
            with open(out) as f:
                vms = {json.loads(line)["vm"] for line in f if line.strip()}
            assert vms == {"lifetime"}, vms
            detail = (f"{done} cycles in {time.monotonic() - t0:.0f} s, "
                      f"{emitted} records emitted, {got} received, "
                      f"guest at round {rounds(g)}, {fds} fds, RSS "
                      f"{(rss - rss0) >> 10:+d} KiB since cycle {WARMUP}")
        finally:
            dump.terminate()
            dump.wait(10)
    return detail


def main():
    return suite.main(require=[
        (PROFILE.exists(), f"the guest lab's profile {PROFILE} (make lab)"),
        (DUMP.exists(), f"{DUMP} (make tools)")])


if __name__ == "__main__":
    sys.exit(main())
