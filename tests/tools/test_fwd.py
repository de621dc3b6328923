#!/usr/bin/python3
"""appdep-fwd end to end: a fake QEMU record producer, a test APM server
speaking the frame protocol, a fake QMP server and the real patched QEMU.

Frames and records are encoded and decoded here independently of
hw/appdep/appdep-wire.h, from the layout documented there, so the test
also pins the format.  Prints TAP.

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
FWD = os.environ.get("APPDEP_FWD") or os.path.join(
    TOP, "build/meson/monitor/appdep-fwd")
QEMU = os.path.join(TOP, "build/qemu-build/qemu-system-x86_64")
MAGIC = 0x50444441
HELLO, BATCH, ACK, COMMAND, RESULT = 16, 17, 18, 19, 20
REC_LEN = 176

results = []
exits = []                              # (log tail, status) of every daemon


def check(name, cond, detail=""):
    results.append((name, bool(cond), "" if cond else detail))


def skip(name, why):
    results.append((name, None, why))


def record(serial, vm="web1", op=1, pid=100, tid=101, comm="srv", nbytes=64):
    hdr = struct.pack("<IHHII", MAGIC, 1, 1, REC_LEN, 0)
    body = struct.pack("<QQ64sBBHII16s16s16sHHIIQ",
                       1_700_000_000_000_000_000 + serial, serial,
                       vm.encode(), op, 4, 0, pid, tid, comm.encode(),
                       socket.inet_aton("10.0.0.2").ljust(16, b"\0"),
                       socket.inet_aton("10.0.0.3").ljust(16, b"\0"),
                       8080, 40000, serial & 0xffffffff, 0, nbytes)
    return hdr + body


def frame(ftype, body):
    return struct.pack("<IHHII", MAGIC, 1, ftype, 16 + len(body), 0) + body


def ack_frame(batch):
    return frame(ACK, struct.pack("<Q", batch))


def command_frame(cid, vm, op):
    return frame(COMMAND, struct.pack("<Q64sB7x", cid, vm.encode(), op))


def cstr(b):
    return b.split(b"\0", 1)[0].decode()


def decode_hello(body):
    proto, nvms, host = struct.unpack_from("<II64s", body, 0)
    vms = []
    for i in range(nvms):
        e = body[72 + i * 152: 72 + (i + 1) * 152]
        name, enabled, naddr = struct.unpack_from("<64sBB", e, 0)
        addrs = []
        for j in range(naddr):
            off = 72 + j * 20
            fam, raw = e[off], e[off + 2:off + 18]
            af = socket.AF_INET6 if fam == 6 else socket.AF_INET
            addrs.append(socket.inet_ntop(af, raw[:16 if fam == 6 else 4]))
        vms.append({"vm": cstr(name), "enabled": enabled, "addrs": addrs})
    return {"protocol": proto, "host": cstr(host), "vms": vms}


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
            hdr = self.recv_exact(c, 16)
            magic, ver, ftype, length, res = struct.unpack("<IHHII", hdr)
            assert magic == MAGIC and ver == 1 and res == 0, hdr
            body = self.recv_exact(c, length - 16)
            with self.lock:
                if ftype == HELLO:
                    self.hellos.append(decode_hello(body))
                elif ftype == BATCH:
                    batch, count, zero = struct.unpack_from("<QII", body)
                    recs = [body[16 + i * REC_LEN: 16 + (i + 1) * REC_LEN]
                            for i in range(count)]
                    assert len(body) == 16 + count * REC_LEN and zero == 0
                    self.batches.append((batch, recs))
                    if self.close_after is not None and \
                            len(self.batches) >= self.close_after:
                        return          # this batch is not acknowledged
                    self.committed.setdefault(batch, recs)
                    if self.ack:
                        c.sendall(ack_frame(batch))
                elif ftype == RESULT:
                    cid, status, zero = struct.unpack_from("<QiI", body)
                    self.results.append((cid, status, cstr(body[16:])))

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


def wait_for(cond, timeout=15.0, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


class Daemon:
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
        self.p = subprocess.Popen([FWD, "--config", self.cfg],
                                  stderr=self.logf, stdout=self.logf)
        wait_for(lambda: all(os.path.exists(os.path.join(d, vm + ".rec"))
                             for vm in vms), 10)

    def text(self):
        with open(self.log) as f:
            return f.read()

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


def test_basic(d):
    srv = TestServer()
    fwd = Daemon(d, srv.port)
    sent = [record(i) for i in range(2500)]
    junk = b"\x00garbage\xff" * 3
    s = produce(os.path.join(d, "web1.rec"),
                b"".join(sent[:1200]) + junk + b"".join(sent[1200:]), 7001)
    ok = wait_for(lambda: len(srv.records()) >= 2500)
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
    fwd.p.send_signal(signal.SIGUSR1)
    wait_for(lambda: "status (SIGUSR1)" in fwd.text(), 5)
    log = fwd.text()
    check("garbage logged with offset and skipped",
          f"offset {1200 * REC_LEN}: bad magic" in log, log)
    rc = fwd.stop()
    log = fwd.text()
    check("SIGTERM: clean exit with status", rc == 0 and "status (exit)" in
          log and "acked=2500" in log, log[-2000:])
    srv.stop()


def test_reconnect(d):
    """Server goes away mid-stream (one batch unacked), comes back."""
    srv = TestServer(close_after=3)
    port = srv.port
    fwd = Daemon(d, port)
    sent = [record(i, comm=f"c{i % 7}") for i in range(10000)]
    s = produce(os.path.join(d, "web1.rec"), b"".join(sent[:3000]))
    wait_for(lambda: len(srv.batches) >= 3)
    srv.stop()
    s.sendall(b"".join(sent[3000:]))
    spooled = wait_for(lambda: "spooling batches" in fwd.text(), 10)
    time.sleep(1)
    srv2 = TestServer(port=port)
    ok = wait_for(lambda: len(srv2.records()) + len(srv.records()) >= 10000,
                  30)
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


def test_overflow(d):
    srv = TestServer()
    port = srv.port
    srv.stop()                          # nobody listens
    # one full batch is 176032 bytes: room for exactly one
    fwd = Daemon(d, port, extra="spool-max-bytes=200000")
    sent = [record(i) for i in range(5000)]
    s = produce(os.path.join(d, "web1.rec"), b"".join(sent))
    wait_for(lambda: "dropping batches" in fwd.text(), 10)
    time.sleep(0.5)
    fwd.p.send_signal(signal.SIGUSR1)
    wait_for(lambda: "status (SIGUSR1)" in fwd.text(), 5)
    log = fwd.text()
    check("spool overflow counted in the log and status",
          "spool full" in log and "dropped=4000 (batches 4)" in log and
          "spooled=1000" in log, log)
    srv2 = TestServer(port=port)
    ok = wait_for(lambda: len(srv2.records()) >= 1000, 15)
    time.sleep(0.3)
    check("what fit is delivered, nothing else invented",
          ok and srv2.records() == sent[:1000], str(len(srv2.records())))
    s.close()
    fwd.stop()
    srv2.stop()


def test_exit_spool(d):
    """SIGTERM with unacknowledged batches: spooled, replayed next start."""
    srv = TestServer(ack=False)
    port = srv.port
    fwd = Daemon(d, port, spool="spool-exit")
    # connected first, so the batches live only in memory until the exit
    wait_for(lambda: srv.hellos)
    sent = [record(i) for i in range(2000)]
    s = produce(os.path.join(d, "web1.rec"), b"".join(sent))
    wait_for(lambda: len(srv.batches) >= 2)
    s.close()
    rc = fwd.stop()
    log = fwd.text()
    check("exit spools unacknowledged batches", rc == 0 and
          "2 unacknowledged batches spooled" in log, log)
    srv.stop()
    srv2 = TestServer(port=port)
    fwd = Daemon(d, port, spool="spool-exit")
    wait_for(lambda: len(srv2.records()) >= 2000, 15)
    s = produce(os.path.join(d, "web1.rec"), record(5000))
    ok = wait_for(lambda: len(srv2.records()) >= 2001, 15)
    nums = [b for b, _ in srv2.batches]
    check("restart replays them with their numbers, then numbers go on",
          ok and nums[:2] == [1, 2] and nums[2] > 2 and
          srv2.records() == sent + [record(5000)], f"{nums}")
    s.close()
    fwd.stop()
    srv2.stop()


def test_junk(d):
    srv = TestServer(junk=b"this is not a frame at all.......")
    fwd = Daemon(d, srv.port)
    ok = wait_for(lambda: srv.connections >= 2 and
                  "bad frame at offset 0: bad magic" in fwd.text(), 15)
    check("junk from the server: connection dropped, reconnected", ok,
          fwd.text())
    srv.junk = None
    srv.conn.close()
    big = frame(ACK, b"\0" * 8)
    big = big[:8] + struct.pack("<I", 1 << 30) + big[12:]
    wait_for(lambda: srv.connections >= 3 and len(srv.hellos) >= 3)
    srv.send(big)
    ok = wait_for(lambda: "bad length" in fwd.text() and
                  srv.connections >= 4, 15)
    check("oversized frame length rejected before buffering", ok, fwd.text())
    wait_for(lambda: len(srv.hellos) >= 4)
    srv.send(ack_frame(99))
    ok = wait_for(lambda: "ACK 99 for a batch that does not exist" in
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


def test_qmp_fake(d):
    qmp = os.path.join(d, "fake.qmp")
    fake = FakeQmp(qmp)
    srv = TestServer()
    fwd = Daemon(d, srv.port, qmp=qmp)
    wait_for(lambda: srv.hellos and "QMP connected" in fwd.text())
    srv.send(command_frame(7, "web1", 1))
    ok = wait_for(lambda: srv.results, 10)
    check("COMMAND inspect on: RESULT status 0", ok and srv.results[0][:2] ==
          (7, 0), f"{srv.results} {fwd.text()}")
    ok = wait_for(lambda: any(v["enabled"] for h in srv.hellos
                              for v in h["vms"]), 10)
    check("inventory follows APPDEP_INSPECT: new HELLO enabled=1", ok,
          str(srv.hellos))
    caps = [l.get("execute") for l in fake.lines]
    check("qmp_capabilities first", caps[:1] == ["qmp_capabilities"], caps)
    srv.send(command_frame(8, "nosuchvm", 2))
    ok = wait_for(lambda: len(srv.results) >= 2, 10)
    check("COMMAND for an unknown VM: -ENOENT", ok and srv.results[1][:2] ==
          (8, -2) and "nosuchvm" in srv.results[1][2], str(srv.results))
    fwd.stop()
    srv.stop()


def test_qmp_qemu(d):
    if not os.access(QEMU, os.X_OK):
        skip("COMMAND against real QEMU", f"no {QEMU}")
        return
    qmp = os.path.join(d, "qemu.qmp")
    q = subprocess.Popen([QEMU, "-machine", "none", "-nodefaults",
                          "-display", "none", "-qmp",
                          f"unix:{qmp},server=on,wait=off"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for(lambda: os.path.exists(qmp), 10)
    srv = TestServer()
    fwd = Daemon(d, srv.port, qmp=qmp)
    wait_for(lambda: srv.hellos and "QMP connected" in fwd.text())
    srv.send(command_frame(42, "web1", 1))
    ok = wait_for(lambda: srv.results, 10)
    r = srv.results[0] if srv.results else None
    check("COMMAND via real QEMU: RESULT carries QEMU's error", ok and
          r[0] == 42 and r[1] < 0 and "no appdep object" in r[2],
          f"{srv.results} {fwd.text()}")
    q.kill()
    q.wait()
    srv.send(command_frame(43, "web1", 2))
    ok = wait_for(lambda: len(srv.results) >= 2, 15)
    r = srv.results[1] if len(srv.results) > 1 else None
    check("COMMAND with QEMU gone: error result, daemon alive", ok and
          r[0] == 43 and r[1] < 0 and fwd.p.poll() is None,
          f"{srv.results} {fwd.text()}")
    fwd.stop()
    srv.stop()


def test_flood(d):
    srv = TestServer()
    port = srv.port
    srv.stop()
    fwd = Daemon(d, port, extra="spool-max-bytes=4000000\n"
                 "queue-max-bytes=2000000")
    blob = b"".join(record(i) for i in range(6000))
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.path.join(d, "web1.rec"))
    end = time.time() + 4
    sent = 0
    peak = 0
    while time.time() < end:
        s.sendall(blob)
        sent += 6000
        peak = max(peak, fwd.rss_kb())
    time.sleep(0.5)
    peak = max(peak, fwd.rss_kb())
    fwd.p.send_signal(signal.SIGUSR1)
    wait_for(lambda: "status (SIGUSR1)" in fwd.text(), 5)
    s.close()
    log = fwd.text()
    line = [l for l in log.splitlines() if "status (SIGUSR1)" in l][-1]
    fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
    got = int(fields["in"])
    dropped = int(fields["dropped"])
    spooled = int(fields["spooled"])
    print(f"# flood: {sent} records sent in 4 s, daemon read {got}, "
          f"spooled {spooled}, dropped {dropped}, peak RSS {peak} kB")
    check("flood, server absent: RSS bounded, drops counted",
          peak < 32 * 1024 and got == sent and
          got == spooled + dropped and dropped > 0,
          f"peak {peak} kB; {line}")
    fwd.stop()


def test_config(d):
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


def main():
    if not os.access(FWD, os.X_OK):
        print("1..0 # SKIP appdep-fwd not built")
        return 0
    tests = [test_config, test_basic, test_reconnect, test_overflow,
             test_exit_spool, test_junk, test_qmp_fake, test_qmp_qemu,
             test_flood]
    only = sys.argv[1:]
    for t in tests:
        if only and t.__name__ not in only:
            continue
        with tempfile.TemporaryDirectory() as d:
            try:
                t(d)
            except Exception as e:     # a crashed test is a failed test
                import traceback
                check(t.__name__, False, traceback.format_exc())
    bad = [log for rc, log in exits if rc != 0]
    check("every daemon exited with status 0 (sanitizers quiet)",
          exits and not bad, "\n".join(bad[:1]))
    print(f"1..{len(results)}")
    for i, (name, ok, detail) in enumerate(results, 1):
        if ok is None:
            print(f"ok {i} - {name} # SKIP {detail}")
            continue
        print(f"{'ok' if ok else 'not ok'} {i} - {name}")
        if not ok:
            print("# " + str(detail).replace("\n", "\n# "))
    return 0 if all(ok is not False for _, ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
