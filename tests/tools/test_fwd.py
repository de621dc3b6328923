#!/usr/bin/python3
"""appdep-fwd end to end: a fake QEMU record producer, a test APM server
speaking the frame protocol, a fake QMP server and the real patched QEMU.

Frames and records are encoded and decoded by tests/lib/wire.py,
independently of hw/appdep/appdep-wire.h, from the layout documented
there, so the test also pins the format.  Waits are on conditions: the
server's records, or the daemon's counters from its status line (SIGUSR1).

Prints TAP.  test_fwd.py [NAME...] runs the named tests; --list names them.

Semantics checked: batches are numbered from 1, +1 per batch; a batch is
kept until an ACK covers it; after a reconnect unacknowledged batches are
sent again with the same number, so the server, which drops batch numbers
it committed already, ends with every record exactly once.
"""

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))
import fwdlog  # noqa: E402
import tap  # noqa: E402
import wire  # noqa: E402
from wait import wait_for, wait_until  # noqa: E402

FWD = os.environ.get("APPDEP_FWD") or os.path.join(
    TOP, "build/meson/monitor/appdep-fwd")
QEMU = os.path.join(TOP, "build/qemu-build/qemu-system-x86_64")
REC_LEN = wire.THREAD_LEN
# A test's every wait; generous, a loaded 2-core machine is slow.
DELIVERY_TIMEOUT = 30.0

suite = tap.Suite(fixture=tempfile.TemporaryDirectory)
check = suite.check
exits = []                              # (status, log tail) of every daemon


def record(serial, vm="web1", op=1, pid=100, tid=101, comm="srv", nbytes=64):
    return wire.record(op=op, vm=vm, pid=pid, tid=tid, comm=comm,
                       saddr="10.0.0.2", daddr="10.0.0.3", sport=8080,
                       dport=40000, seq=serial, nbytes=nbytes,
                       time_ns=1_700_000_000_000_000_000 + serial,
                       serial=serial)


class TestServer:
    """APM server stand-in: one connection at a time, dedup by batch."""

    def __init__(self, port=0, ack=True, close_after=None, junk=None):
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", port))
        self.ls.listen(4)
        self.port = self.ls.getsockname()[1]
        self.ack = ack
        self.close_after = close_after      # close after N batches, unacked
        self.junk = junk                    # bytes sent at each connect
        self.lock = threading.Lock()
        self.hellos = []
        self.batches = []                   # (batch, records) as received
        self.committed = {}                 # batch -> records, deduplicated
        self.results = []
        self.connections = 0
        self.conn = None
        self.stopped = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopped:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.conn = c
            try:
                self.serve(c)
            except OSError:
                pass
            c.close()

    def recv_exact(self, c, n):
        buf = b""
        while len(buf) < n:
            d = c.recv(n - len(buf))
            if not d:
                raise OSError("eof")
            buf += d
        return buf

    def serve(self, c):
        if self.junk:
            c.sendall(self.junk)
        while not self.stopped:
            hdr = self.recv_exact(c, wire.HDR_LEN)
            magic, ver, ftype, length, res = wire.HDR.unpack(hdr)
            assert magic == wire.MAGIC and ver == 1 and res == 0, hdr
            body = self.recv_exact(c, length - wire.HDR_LEN)
            with self.lock:
                if ftype == wire.HELLO:
                    self.hellos.append(wire.decode_hello(body))
                elif ftype == wire.BATCH:
                    batch, recs = wire.decode_batch(body)
                    self.batches.append((batch, recs))
                    if self.close_after is not None and \
                            len(self.batches) >= self.close_after:
                        return          # this batch is not acknowledged
                    self.committed.setdefault(batch, recs)
                    if self.ack:
                        c.sendall(wire.ack(batch))
                elif ftype == wire.RESULT:
                    self.results.append(wire.decode_result(body))

    def send(self, data):
        with self.lock:
            self.conn.sendall(data)

    def records(self):
        with self.lock:
            return [r for b in sorted(self.committed)
                    for r in self.committed[b]]

    def stop(self):
        self.stopped = True
        try:
            self.ls.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.ls.close()
        with self.lock:
            if self.conn:
                try:
                    self.conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.thread.join(5)


class Daemon:
    """appdep-fwd with a config for @vms, logging to a file in @d."""

    live = []

    def __init__(self, d, port, vms=("web1",), extra="", qmp=None,
                 spool="spool"):
        self.dir = d
        self.log = os.path.join(d, f"fwd-{time.time_ns()}.log")
        self.cfg = os.path.join(d, "fwd.conf")
        lines = ["[fwd]", f"server=127.0.0.1:{port}", "host=host1",
                 f"spool-dir={os.path.join(d, spool)}", "batch-records=1000",
                 "batch-ms=100", extra]
        for vm in vms:
            lines += [f"[vm {vm}]",
                      f"qmp={qmp or os.path.join(d, vm + '.qmp')}",
                      f"records={os.path.join(d, vm + '.rec')}",
                      "addresses=10.0.0.2;fd00::2"]
        with open(self.cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.logf = open(self.log, "w")
        Daemon.live.append(self)
        self.p = subprocess.Popen([FWD, "--config", self.cfg],
                                  stderr=self.logf, stdout=self.logf)
        wait_for(lambda: all(os.path.exists(os.path.join(d, vm + ".rec"))
                             for vm in vms), 10, "record sockets",
                 detail=self.text)

    def text(self):
        with open(self.log) as f:
            return f.read()

    def status(self):
        """SIGUSR1, and the status line it logs, parsed."""
        return fwdlog.request_status(self.p.pid, self.text)

    def wait_status(self, cond, what, timeout=DELIVERY_TIMEOUT):
        """Poll the status until @cond(status); return that status."""
        last = {}

        def poll():
            last["st"] = self.status()
            return cond(last["st"])
        wait_for(poll, timeout, what,
                 step=0.2, detail=lambda: last.get("st", {}).get("line"))
        return last["st"]

    def stop(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            rc = self.p.wait(15)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        self.logf.close()
        exits.append((rc, self.text()[-3000:]))
        return rc

    def rss_kb(self):
        with open(f"/proc/{self.p.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


def produce(path, data, chunk=None):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    if chunk:
        for i in range(0, len(data), chunk):
            s.sendall(data[i:i + chunk])
    else:
        s.sendall(data)
    return s


@suite.test
def test_config(d):
    """configuration errors name the group and key; --help"""
    def run(text):
        p = os.path.join(d, "bad.conf")
        with open(p, "w") as f:
            f.write(text)
        return subprocess.run([FWD, "--config", p], capture_output=True,
                              text=True, timeout=10)
    base = "[fwd]\nserver=127.0.0.1:1\nhost=h\nspool-dir=/tmp/x\n"
    vm = "[vm a]\nqmp=/tmp/q\nrecords=/tmp/r\n"
    r = run(base + "batch-records=9999\n" + vm)
    check("bad value names group and key", r.returncode == 1 and
          "[fwd] batch-records" in r.stderr, r.stderr)
    r = run(base + vm + "adresses=1.2.3.4\n")
    check("unknown key named", r.returncode == 1 and
          "[vm a] adresses: unknown key" in r.stderr, r.stderr)
    r = run(base + "[vm a]\nqmp=/tmp/q\n")
    check("missing key named", r.returncode == 1 and
          "[vm a] records: missing" in r.stderr, r.stderr)
    r = run(base + vm + "addresses=10.0.0.300\n")
    check("bad address named", r.returncode == 1 and
          "[vm a] addresses: '10.0.0.300'" in r.stderr, r.stderr)
    r = subprocess.run([FWD, "--help"], capture_output=True, text=True)
    check("--help", r.returncode == 0 and "spool-max-bytes" in r.stdout)


@suite.test
def test_basic(d):
    """records in order, batch numbering, HELLO, garbage, clean exit"""
    srv = TestServer()
    fwd = Daemon(d, srv.port)
    sent = [record(i) for i in range(2500)]
    junk = b"\x00garbage\xff" * 3
    s = produce(os.path.join(d, "web1.rec"),
                b"".join(sent[:1200]) + junk + b"".join(sent[1200:]), 7001)
    ok = wait_until(lambda: len(srv.records()) >= 2500, DELIVERY_TIMEOUT)
    # the daemon has nothing left to send: no record or batch can follow
    fwd.wait_status(lambda st: st["in"] == 2500 and fwdlog.idle(st),
                    "every record read and acknowledged")
    s.close()
    check("records arrive exactly, in order", ok and srv.records() == sent,
          f"{len(srv.records())} records")
    nums = [b for b, _ in srv.batches]
    check("batches numbered 1, 2, 3 by count", nums[:2] == [1, 2] and
          [len(r) for _, r in srv.batches[:2]] == [1000, 1000],
          f"{[(b, len(r)) for b, r in srv.batches]}")
    check("partial batch closed by batch-ms", len(srv.batches) == 3 and
          len(srv.batches[2][1]) == 500, str(len(srv.batches)))
    h = srv.hellos[0] if srv.hellos else {}
    check("HELLO inventory", h.get("protocol") == 1 and
          h.get("host") == "host1" and h.get("vms") ==
          [{"vm": "web1", "enabled": 0, "addrs": ["10.0.0.2", "fd00::2"]}],
          str(h))
    log = fwd.text()
    check("garbage logged with offset and skipped",
          f"offset {1200 * REC_LEN}: bad magic" in log, log)
    rc = fwd.stop()
    log = fwd.text()
    check("SIGTERM: clean exit with status", rc == 0 and "status (exit)" in
          log and "acked=2500" in log, log[-2000:])
    srv.stop()


@suite.test
def test_reconnect(d):
    """server goes away mid-stream (one batch unacked), comes back"""
    srv = TestServer(close_after=3)
    port = srv.port
    fwd = Daemon(d, port)
    sent = [record(i, comm=f"c{i % 7}") for i in range(10000)]
    s = produce(os.path.join(d, "web1.rec"), b"".join(sent[:3000]))
    wait_for(lambda: len(srv.batches) >= 3, DELIVERY_TIMEOUT,
             "3 batches at the first server")
    srv.stop()
    s.sendall(b"".join(sent[3000:]))
    spooled = wait_until(lambda: "spooling batches" in fwd.text(), 10)
    # everything is read while the server is away, so the rest must come
    # back from the spool
    fwd.wait_status(lambda st: st["in"] == 10000, "all records read")
    srv2 = TestServer(port=port)
    ok = wait_until(lambda: len(srv2.records()) + len(srv.records()) >=
                    10000, DELIVERY_TIMEOUT)
    fwd.wait_status(fwdlog.idle, "every record acknowledged")
    s.close()
    got = srv.records()
    # merge both servers' committed batches: one store, dedup by number
    store = dict(srv.committed)
    for b, r in srv2.committed.items():
        store.setdefault(b, r)
    merged = [r for b in sorted(store) for r in store[b]]
    check("spooled while the server was away", spooled, fwd.text())
    check("after replay every record exactly once", ok and merged == sent,
          f"{len(merged)} records, first server {len(got)}")
    allb = srv.batches + srv2.batches
    seen = {}
    same = True
    for b, r in allb:
        if b in seen and seen[b] != r:
            same = False
        seen[b] = r
    nums = [b for b, _ in srv2.batches]
    check("unacked batch resent with the same number and content",
          same and nums and nums[0] == 3, f"{nums[:5]}")
    check("replay in batch order", nums == sorted(nums) and
          sorted(store) == list(range(1, len(store) + 1)), f"{nums}")
    fwd.stop()
    srv2.stop()


@suite.test
def test_overflow(d):
    """a full spool drops whole batches, counted; what fit is delivered"""
    srv = TestServer()
    port = srv.port
    srv.stop()                          # nobody listens
    # one full batch is 176032 bytes: room for exactly one
    fwd = Daemon(d, port, extra="spool-max-bytes=200000")
    sent = [record(i) for i in range(5000)]
    s = produce(os.path.join(d, "web1.rec"), b"".join(sent))
    wait_until(lambda: "dropping batches" in fwd.text(), 10)
    # every record read and sealed into a batch, spooled or dropped
    st = fwd.wait_status(lambda st: st["in"] == 5000 and
                         st["spooled"] + st["dropped"] == 5000,
                         "all 5000 records spooled or dropped")
    log = fwd.text()
    check("spool overflow counted in the log and status",
          "spool full" in log and "dropped=4000 (batches 4)" in st["line"]
          and st["spooled"] == 1000, log)
    srv2 = TestServer(port=port)
    ok = wait_until(lambda: len(srv2.records()) >= 1000, DELIVERY_TIMEOUT)
    # the daemon holds nothing more: whatever else came would be invented
    fwd.wait_status(fwdlog.idle, "the spool replayed and acknowledged")
    check("what fit is delivered, nothing else invented",
          ok and srv2.records() == sent[:1000], str(len(srv2.records())))
    s.close()
    fwd.stop()
    srv2.stop()


@suite.test
def test_exit_spool(d):
    """SIGTERM with unacknowledged batches: spooled, replayed next start"""
    srv = TestServer(ack=False)
    port = srv.port
    fwd = Daemon(d, port, spool="spool-exit")
    # connected first, so the batches live only in memory until the exit
    wait_for(lambda: srv.hellos, DELIVERY_TIMEOUT, "HELLO")
    sent = [record(i) for i in range(2000)]
    s = produce(os.path.join(d, "web1.rec"), b"".join(sent))
    wait_for(lambda: len(srv.batches) >= 2, DELIVERY_TIMEOUT,
             "2 batches at the server")
    s.close()
    rc = fwd.stop()
    log = fwd.text()
    check("exit spools unacknowledged batches", rc == 0 and
          "2 unacknowledged batches spooled" in log, log)
    srv.stop()
    srv2 = TestServer(port=port)
    fwd = Daemon(d, port, spool="spool-exit")
    wait_until(lambda: len(srv2.records()) >= 2000, DELIVERY_TIMEOUT)
    s = produce(os.path.join(d, "web1.rec"), record(5000))
    ok = wait_until(lambda: len(srv2.records()) >= 2001, DELIVERY_TIMEOUT)
    nums = [b for b, _ in srv2.batches]
    check("restart replays them with their numbers, then numbers go on",
          ok and nums[:2] == [1, 2] and nums[2] > 2 and
          srv2.records() == sent + [record(5000)], f"{nums}")
    s.close()
    fwd.stop()
    srv2.stop()


@suite.test
def test_junk(d):
    """junk, oversized frames and unknown ACKs from the server"""
    srv = TestServer(junk=b"this is not a frame at all.......")
    fwd = Daemon(d, srv.port)
    ok = wait_until(lambda: srv.connections >= 2 and
                    "bad frame at offset 0: bad magic" in fwd.text(),
                    DELIVERY_TIMEOUT)
    check("junk from the server: connection dropped, reconnected", ok,
          fwd.text())
    srv.junk = None
    srv.conn.close()
    big = wire.ack(0)
    big = big[:8] + struct.pack("<I", 1 << 30) + big[12:]
    wait_for(lambda: srv.connections >= 3 and len(srv.hellos) >= 3,
             DELIVERY_TIMEOUT, "third connection")
    srv.send(big)
    ok = wait_until(lambda: "bad length" in fwd.text() and
                    srv.connections >= 4, DELIVERY_TIMEOUT)
    check("oversized frame length rejected before buffering", ok, fwd.text())
    wait_for(lambda: len(srv.hellos) >= 4, DELIVERY_TIMEOUT,
             "fourth connection")
    srv.send(wire.ack(99))
    ok = wait_until(lambda: "ACK 99 for a batch that does not exist" in
                    fwd.text(), 10)
    check("ACK of a batch never made: dropped", ok, fwd.text())
    fwd.stop()
    srv.stop()


class FakeQmp:
    """QMP server that interleaves an APPDEP_INSPECT event with replies."""

    def __init__(self, path):
        self.ls = socket.socket(socket.AF_UNIX)
        self.ls.bind(path)
        self.ls.listen(1)
        self.enabled = False
        self.lines = []
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        c, _ = self.ls.accept()
        f = c.makefile("rwb")
        f.write(b'{"QMP": {"version": {}, "capabilities": []}}\r\n')
        f.flush()
        for line in f:
            req = json.loads(line)
            self.lines.append(req)
            cmd, rid = req.get("execute"), req.get("id")
            if cmd == "x-appdep-inspect":
                en = req["arguments"]["enable"]
                # event before the reply, split across writes
                ev = json.dumps({"event": "APPDEP_INSPECT", "data": {
                    "id": "ad0", "vm": "web1", "enabled": en,
                    "reason": "command"}, "timestamp": {}}).encode()
                f.write(ev[:10])
                f.flush()
                time.sleep(0.05)
                f.write(ev[10:] + b"\r\n")
                self.enabled = en
                ret = {}
            elif cmd == "x-query-appdep":
                ret = {"enabled": self.enabled}
            else:
                ret = {}
            f.write(json.dumps({"return": ret, "id": rid}).encode() +
                    b"\r\n")
            f.flush()


@suite.test
def test_qmp_fake(d):
    """COMMAND over a fake QMP that interleaves events with replies"""
    qmp = os.path.join(d, "fake.qmp")
    fake = FakeQmp(qmp)
    srv = TestServer()
    fwd = Daemon(d, srv.port, qmp=qmp)
    wait_for(lambda: srv.hellos and "QMP connected" in fwd.text(),
             DELIVERY_TIMEOUT, "HELLO and QMP connected", detail=fwd.text)
    srv.send(wire.command(7, "web1", wire.INSPECT_ON))
    ok = wait_until(lambda: srv.results, 10)
    check("COMMAND inspect on: RESULT status 0", ok and srv.results[0][:2] ==
          (7, 0), f"{srv.results} {fwd.text()}")
    ok = wait_until(lambda: any(v["enabled"] for h in srv.hellos
                                for v in h["vms"]), 10)
    check("inventory follows APPDEP_INSPECT: new HELLO enabled=1", ok,
          str(srv.hellos))
    caps = [l.get("execute") for l in fake.lines]
    check("qmp_capabilities first", caps[:1] == ["qmp_capabilities"], caps)
    srv.send(wire.command(8, "nosuchvm", wire.INSPECT_OFF))
    ok = wait_until(lambda: len(srv.results) >= 2, 10)
    check("COMMAND for an unknown VM: -ENOENT", ok and srv.results[1][:2] ==
          (8, -2) and "nosuchvm" in srv.results[1][2], str(srv.results))
    fwd.stop()
    srv.stop()


@suite.test
def test_qmp_qemu(d):
    """COMMAND against the real QEMU, and with QEMU gone"""
    # the tree's QEMU is built by make: without it this test cannot pass
    assert os.access(QEMU, os.X_OK), f"no {QEMU} (build QEMU first)"
    qmp = os.path.join(d, "qemu.qmp")
    q = subprocess.Popen([QEMU, "-machine", "none", "-nodefaults",
                          "-display", "none", "-qmp",
                          f"unix:{qmp},server=on,wait=off"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for(lambda: os.path.exists(qmp), 10, "QEMU's QMP socket")
    srv = TestServer()
    fwd = Daemon(d, srv.port, qmp=qmp)
    wait_for(lambda: srv.hellos and "QMP connected" in fwd.text(),
             DELIVERY_TIMEOUT, "HELLO and QMP connected", detail=fwd.text)
    srv.send(wire.command(42, "web1", wire.INSPECT_ON))
    ok = wait_until(lambda: srv.results, 10)
    r = srv.results[0] if srv.results else None
    check("COMMAND via real QEMU: RESULT carries QEMU's error", ok and
          r[0] == 42 and r[1] < 0 and "no appdep object" in r[2],
          f"{srv.results} {fwd.text()}")
    q.kill()
    q.wait()
    srv.send(wire.command(43, "web1", wire.INSPECT_OFF))
    ok = wait_until(lambda: len(srv.results) >= 2, 15)
    r = srv.results[1] if len(srv.results) > 1 else None
    check("COMMAND with QEMU gone: error result, daemon alive", ok and
          r[0] == 43 and r[1] < 0 and fwd.p.poll() is None,
          f"{srv.results} {fwd.text()}")
    fwd.stop()
    srv.stop()


# The flood's memory bound.  The daemon holds at most queue-max-bytes
# (2 MB here) of batches plus fixed buffers; 32 MiB leaves room for the
# allocator and sanitizers, and is far below what an unbounded queue of
# the flood would take.
FLOOD_RSS_MAX_KB = 32 * 1024
FLOOD_S = 4


@suite.test
def test_flood(d):
    """flood with the server absent: memory bounded, drops counted"""
    srv = TestServer()
    port = srv.port
    srv.stop()
    fwd = Daemon(d, port, extra="spool-max-bytes=4000000\n"
                 "queue-max-bytes=2000000")
    blob = b"".join(record(i) for i in range(6000))
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.path.join(d, "web1.rec"))
    end = time.time() + FLOOD_S
    sent = 0
    peak = [0]
    while time.time() < end:
        s.sendall(blob)
        sent += 6000
        peak[0] = max(peak[0], fwd.rss_kb())

    def drained(st):
        # the socket buffer may still hold records: wait until the daemon
        # read them all and sealed them into batches
        peak[0] = max(peak[0], fwd.rss_kb())
        return st["in"] >= sent and st["in"] == st["spooled"] + st["dropped"]
    st = fwd.wait_status(drained, f"all {sent} records read")
    s.close()
    got, dropped, spooled = st["in"], st["dropped"], st["spooled"]
    print(f"# flood: {sent} records sent in {FLOOD_S} s, daemon read {got}, "
          f"spooled {spooled}, dropped {dropped}, peak RSS {peak[0]} kB")
    check("flood, server absent: RSS bounded, drops counted",
          peak[0] < FLOOD_RSS_MAX_KB and got == sent and
          got == spooled + dropped and dropped > 0,
          f"peak {peak[0]} kB; {st['line']}")
    fwd.stop()


def stop_daemons():
    """After each test: a daemon a failed test left running is stopped
    (and its exit status counted)."""
    for fwd in Daemon.live:
        if not fwd.logf.closed:
            fwd.stop()
    Daemon.live.clear()


def all_exits_clean():
    bad = [log for rc, log in exits if rc != 0]
    if exits:
        check("every daemon exited with status 0 (sanitizers quiet)",
              not bad, "\n".join(bad[:1]))


if __name__ == "__main__":
    suite.after_each = stop_daemons
    sys.exit(suite.main(require=[(os.access(FWD, os.X_OK),
                                  f"{FWD} is built")],
                        epilogue=all_exits_clean))
