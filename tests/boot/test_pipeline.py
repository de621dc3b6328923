#!/usr/bin/python3
"""End to end: guests -> QEMU -> appdep-fwd -> appdep-server -> map.

A three-tier lab (client -> web -> app, on a bridge in a private network
namespace) is traced through the whole pipeline: each QEMU streams to the
forward daemon, which forwards to the APM server; the learning phase
starts from the web tier and must enable the client and the app tier by
itself; then the dependency map must have exactly the lab's two edges and
every trajectory of a request to the web tier the expected nested shape.
Then the server is killed mid-stream, while the daemon holds records it
could not deliver, and restarted: after the daemon's replay, the
per-thread records in LMDB equal the records the QEMUs emitted, in count
and content.

Prints TAP.  Run as root from the top directory after `make`.

The tests are phases of one scenario on one lab, run in this order; the
lab starts with the first phase that runs.  test_pipeline.py NAME... runs
the named phases and those they depend on (--list names them):
    learning         -
    server_restart   learning (records only flow once inspection is on)
    junk_peer        learning, server_restart when selected (runs after it)
    dependency_map   learning; waits for the end of the workload
    trajectories     learning; waits for the end of the workload
"""

import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP / "scripts" / "lab"))
sys.path.insert(0, str(TOP / "tests" / "boot"))
sys.path.insert(0, str(TOP / "tests" / "lib"))
import fwdlog  # noqa: E402
import lab  # noqa: E402
import tap  # noqa: E402
import wire  # noqa: E402
from pipeline import (FWD, SERVER, Api, add_traced_guests,  # noqa: E402
                      free_port, start_fwd, start_server)
from test_boot import DUMP, PROFILE  # noqa: E402
from wait import wait_for, wait_stable, wait_until  # noqa: E402

NAMES = ("client", "web", "app")
CLIENT_LOOPS = 70                   # client requests: a steady trickle
BOOT_TIMEOUT = 120
INVENTORY_TIMEOUT = 30
LEARN_TIMEOUT = 120
WORKLOAD_TIMEOUT = 240
TRAFFIC_TIMEOUT = 60
# records stored after learning before the server is killed: some fully
# traced requests (one request is about a dozen records over the tiers)
TRAFFIC_BEFORE_KILL = 100
OUTAGE_TIMEOUT = 30                 # the daemon notices and holds data
STORE_TIMEOUT = 30                  # the replay reaches LMDB
EMITTER_QUIET_S = 2                 # emitted counters still: workload over
# committed messages still: the converter has finished the last requests
# (a message is final 2 s after its last record, flushed every 1 s)
CONVERTED_QUIET_S = 4
# the quiet spell before the junk peer: longer than any connect or I/O
# timeout of the daemon (FWD_CONNECT_TIMEOUT_S is 5)
QUIET_SPELL_S = 7
PEER_TIMEOUT = 10

suite = tap.Suite()
check = suite.check
test = suite.test


class Scenario:
    """The lab and the pipeline, shared by the phases."""

    def __init__(self):
        self.wd = Path(tempfile.mkdtemp(prefix="appdep-pipeline-"))
        self.stack = contextlib.ExitStack()
        self.procs = []
        self.lab = None
        self.t_learned = None
        self.t_restart = None
        self.emitted = None

    def start(self):
        wd = self.wd
        self.dport, hport = free_port(), free_port()
        self.api = Api(hport)
        self.hport = hport
        self.server = start_server(wd, wd / "db", self.dport, hport)
        self.procs.append(self.server)
        self.fwd = start_fwd(wd, self.dport, "host1", NAMES)
        self.procs.append(self.fwd)
        cmds = {
            "app": "tcpsrv 9090 --reply-bytes 300",
            "web": "tcpsrv 8080 --reply-bytes 500 --upstream 10.0.0.3:9090 "
                   "--upstream-bytes 120",
            # a steady trickle of requests, so learning sees traffic
            "client": f"for i in $(seq {CLIENT_LOOPS}); do tcpcli 10.0.0.2 "
                      "8080 --conns 1 --reqs 2 --bytes 80 --reply-bytes 500 "
                      "--connect-timeout 60 || exit 1; sleep 0.5; done",
        }
        self.lab = self.stack.enter_context(
            lab.Lab(net="bridge", workdir=wd / "lab"))
        self.guests = add_traced_guests(self.lab, wd, NAMES, cmds)
        self.lab.start()
        # the kernels must be up before inspection can be enabled
        for n in NAMES:
            self.guests[n].wait_for(r"APPDEP-LAB-READY", BOOT_TIMEOUT)
        wait_for(lambda: len(self.api.get("/v1/vms")[1]) == 3,
                 INVENTORY_TIMEOUT, "inventory of 3 VMs", step=0.2,
                 detail=lambda: self.api.get("/v1/vms"))

    def stop(self, failed):
        if self.lab is not None and failed:
            self.lab.keep = True
        try:
            self.stack.close()
        finally:
            for p in self.procs:
                p.stop()
        if failed:
            print(f"# logs in {self.wd}", flush=True)

    def fwd_log(self):
        return Path(self.fwd.log).read_text(errors="replace")

    def fwd_status(self):
        return fwdlog.request_status(self.fwd.p.pid, self.fwd_log)

    def stored(self):
        st, status = self.api.get("/v1/status")
        return status.get("store", {}).get("records", -1) if st == 200 else -1

    def workload_done(self):
        """Wait for the client's end and the last records QEMU emits (the
        servers' closes follow the client's); return the emitted count."""
        if self.emitted is None:
            assert self.guests["client"].wait_done(
                timeout=WORKLOAD_TIMEOUT) == 0, "client failed"
            self.emitted = wait_stable(
                lambda: sum(self.guests[n].qmp.execute("x-query-appdep")
                            ["records-emitted"] for n in NAMES),
                WORKLOAD_TIMEOUT, EMITTER_QUIET_S, "records emitted")
            # a request still inside the converter's lateness window has
            # no response yet (end_ns 0): wait until the server has
            # committed the messages of the last ones
            wait_stable(lambda: self.api.get("/v1/status")[1]["messages"],
                        WORKLOAD_TIMEOUT, CONVERTED_QUIET_S,
                        "messages committed")
        return self.emitted


S = None


def scenario():
    """The running scenario; the first phase to run starts it."""
    global S
    if S is None:
        S = Scenario()
        S.started = False
        S.start()
        S.started = True
    assert S.started, "the lab did not start (see the first phase)"
    return S


@test
def learning():
    """learning from the web tier enables client, web and app"""
    s = scenario()
    st, job = s.api.call("POST", "/v1/learn",
                         {"app": "web/tcpsrv:8080", "window_s": 3})
    assert st in (200, 201, 202), (st, job)
    prog = {}

    def over():
        prog.update(s.api.get(f"/v1/learn/{job['id']}")[1])
        return prog.get("state") in ("done", "failed")
    wait_for(over, LEARN_TIMEOUT, "end of learning", step=0.5,
             detail=lambda: prog)
    s.t_learned = time.time_ns()
    check("learning enables client, web and app",
          prog["state"] == "done" and
          sorted(prog.get("enabled", [])) == ["app", "client", "web"], prog)


@test
def server_restart():
    """server killed mid-stream and restarted: every record once in LMDB"""
    s = scenario()
    # fully traced requests reach the store before the kill
    base = s.stored()
    wait_for(lambda: s.stored() >= base + TRAFFIC_BEFORE_KILL,
             TRAFFIC_TIMEOUT, "traced traffic after learning", step=0.5)
    mark = len(s.fwd_log())
    before = s.fwd_status()
    s.server.stop(signal.SIGKILL)
    # the daemon sees the server go, with the batches it had not seen
    # acknowledged; new batches go to the spool while it is away
    drop = wait_for(lambda: [ln for ln in s.fwd_log()[mark:].splitlines()
                             if "dropping the connection" in ln],
                    OUTAGE_TIMEOUT, "daemon noticing the server's end")[0]
    m = re.search(r"(\d+) unacknowledged batches kept", drop)
    unacked = int(m.group(1)) if m else 0
    held = wait_until(lambda: unacked > 0 or
                      s.fwd_status()["spooled"] > before["spooled"],
                      OUTAGE_TIMEOUT, step=0.5)
    during = s.fwd_status()
    s.server = start_server(s.wd, s.wd / "db", s.dport, s.hport)
    s.procs.append(s.server)
    s.t_restart = time.time_ns()
    check("across the outage the daemon held records the server had not "
          "acknowledged (unacknowledged at the kill, or spooled while the "
          "server was away)", held,
          f"{drop}\nbefore: {before['line']}\nduring: {during['line']}")
    print(f"# kill: {unacked} unacknowledged batches kept, "
          f"{during['spooled'] - before['spooled']} records spooled "
          "during the outage", flush=True)

    emitted = s.workload_done()
    wait_until(lambda: s.stored() >= emitted, STORE_TIMEOUT, step=0.5)
    stored = s.stored()
    check("server killed and restarted: LMDB holds as many records as "
          "emitted", stored == emitted,
          f"stored {stored}, emitted {emitted}")
    # content: per VM, the serial numbers 0..emitted-1 once each, and
    # every field a valid record (appdep-dump decodes them)
    exp = s.wd / "export.bin"
    subprocess.run([str(SERVER), "--db", str(s.wd / "db"),
                    "--export-records", str(exp)], check=True,
                   capture_output=True, timeout=60)
    dump = subprocess.run([str(DUMP), str(exp)], capture_output=True,
                          text=True, timeout=60)
    lines = [json.loads(x) for x in dump.stdout.splitlines()]
    by_vm = {}
    for n in NAMES:
        info = s.guests[n].qmp.execute("x-query-appdep")
        by_vm[n] = info["records-emitted"] + info["records-dropped"]
    got = {}
    for r in wire.records(exp.read_bytes()):
        got.setdefault(r["vm"], []).append(r["serial"])
    same = dump.returncode == 0 and len(lines) == stored and all(
        sorted(got.get(n, [])) == list(range(by_vm[n]))
        for n in NAMES if by_vm[n])
    check("after replay, each VM's records are there once, serials "
          "without gaps, all decodable", same,
          {n: (len(got.get(n, [])), by_vm[n]) for n in NAMES})


@test
def junk_peer():
    """a peer sending junk is disconnected; the daemon stays connected"""
    s = scenario()
    # also after a quiet spell: no record for longer than any connect or
    # I/O timeout
    s.workload_done()
    wait_stable(s.stored, WORKLOAD_TIMEOUT, QUIET_SPELL_S, "stored records")
    st, before = s.api.get("/v1/status")
    with socket.create_connection(("127.0.0.1", s.dport)) as junk:
        junk.sendall(b"GET / HTTP/1.0\r\n\r\n" + b"\xff" * 64)
        junk.settimeout(PEER_TIMEOUT)
        closed = junk.recv(100) == b""
    after = {}

    def counted():
        after.update(s.api.get("/v1/status")[1])
        return after["bad_peers"] >= before["bad_peers"] + 1
    wait_until(counted, PEER_TIMEOUT, step=0.1)
    check("a peer sending junk is disconnected, the daemon stays connected",
          closed and after["bad_peers"] == before["bad_peers"] + 1 and
          after["daemons"]["connected"] == 1, (before, after))


@test
def dependency_map():
    """the map of the window after learning has exactly the lab's edges"""
    s = scenario()
    s.workload_done()
    # discovery and generation: the window after learning (while it ran,
    # ends not yet traced appear by address only)
    st, m = s.api.get(f"/v1/map?from={s.t_learned + 10**9}"
                      f"&to={time.time_ns()}")
    edges = {(e["client"]["vm"], e["client"]["program"],
              e["server"]["vm"], e["server"]["program"],
              e["server"]["port"]) for e in m.get("edges", [])}
    check("dependency map: exactly the lab's edges",
          edges == {("client", "tcpcli", "web", "tcpsrv", 8080),
                    ("web", "tcpsrv", "app", "tcpsrv", 9090)}, m)


@test
def trajectories():
    """every request to the web tier: web -> app, periods nested"""
    s = scenario()
    s.workload_done()
    # requests that started once the restarted server had caught up
    # (conversion state within the lateness window is rebuilt only from
    # what arrives after a restart); without a restart, after learning
    t_from = (s.t_restart + 3 * 10**9 if s.t_restart
              else s.t_learned + 10**9)
    st, trajs = s.api.get("/v1/trajectories?app=web/tcpsrv:8080&from="
                          f"{t_from}&to={time.time_ns()}&limit=1000")
    ok = st == 200 and len(trajs) > 0
    bad = []
    for t in trajs if ok else []:
        ch = t["children"]
        if len(ch) != 1 or ch[0]["server"]["vm"] != "app" or not (
                t["start_ns"] <= ch[0]["start_ns"] <=
                ch[0]["end_ns"] <= t["end_ns"]):
            bad.append(t)
    check(f"trajectories: {len(trajs) if ok else 0} requests, each web -> "
          "app, periods nested", ok and not bad, bad[:2])


def with_dependencies(tests):
    """Every phase needs learning; the rest run in declaration order."""
    if tests and tests[0] is not learning:
        tests = [learning] + tests
    return tests


def finish():
    if S is not None:
        S.stop(suite.failed > 0)


def main():
    return suite.main(require=[(b.exists(), f"{b} (run make)")
                               for b in (SERVER, FWD, PROFILE)],
                      expand=with_dependencies, epilogue=finish)


if __name__ == "__main__":
    sys.exit(main())
