#!/usr/bin/python3
"""appdep-dump on hand-made streams: exact JSON, garbage, truncation.

The records are encoded here independently of hw/appdep/appdep-wire.h,
from the layout documented there, so the test also pins the format.
Prints TAP.
"""

import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
DUMP = os.path.join(TOP, "build/meson/monitor/appdep-dump")
MAGIC = 0x50444441
OPS = {"send": 1, "recv": 2, "close": 3}

results = []


def record(op="send", vm="vm1", pid=100, tid=101, comm="srv", family=4,
           saddr="10.0.0.1", sport=8080, daddr="10.0.0.2", dport=40000,
           nbytes=64, seq=1000, time_ns=1_700_000_000_000_000_000, serial=0,
           version=1, magic=MAGIC, length=176, rtype=1):
    af = socket.AF_INET6 if family == 6 else socket.AF_INET
    hdr = struct.pack("<IHHII", magic, version, rtype, length, 0)
    body = struct.pack("<QQ64sBBHII16s16s16sHHIIQ", time_ns, serial,
                       vm.encode(), OPS.get(op, op) if isinstance(op, str)
                       else op, family, 0, pid, tid, comm.encode(),
                       socket.inet_pton(af, saddr).ljust(16, b"\0"),
                       socket.inet_pton(af, daddr).ljust(16, b"\0"),
                       sport, dport, seq, 0, nbytes)
    rec = hdr + body
    assert len(rec) == 176, len(rec)
    return rec


def expect(rec_kwargs):
    d = dict(op="send", vm="vm1", pid=100, tid=101, comm="srv", family=4,
             saddr="10.0.0.1", sport=8080, daddr="10.0.0.2", dport=40000,
             nbytes=64, seq=1000, time_ns=1_700_000_000_000_000_000)
    d.update(rec_kwargs)
    return {"time_ns": d["time_ns"], "vm": d["vm"], "op": d["op"],
            "pid": d["pid"], "tid": d["tid"], "comm": d["comm"],
            "family": "ipv6" if d["family"] == 6 else "ipv4",
            "saddr": d["saddr"], "sport": d["sport"], "daddr": d["daddr"],
            "dport": d["dport"], "bytes": d["nbytes"], "seq": d["seq"]}


def run_dump(data, *args):
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        p = subprocess.run([DUMP, *args, f.name], capture_output=True,
                           text=True, timeout=30)
    lines = [json.loads(l) for l in p.stdout.splitlines()]
    return p.returncode, lines, p.stderr


def check(name, cond, detail=""):
    results.append((name, bool(cond), detail))


def main():
    a = dict(op="send", pid=7, tid=8, comm="web", nbytes=10, seq=5)
    b = dict(op="recv", family=6, saddr="fd00::1", daddr="fd00::2",
             sport=80, dport=50000, nbytes=3, seq=0xffffffff)
    c = dict(op="close", vm="x" * 64, comm="c" * 16, nbytes=0)
    good = record(**a) + record(**b) + record(**c)
    rc, lines, err = run_dump(good)
    check("exact keys and values", rc == 0 and lines ==
          [expect(a), expect(b), expect(c)], f"{rc} {lines} {err}")
    check("key order", lines and list(lines[0]) == [
        "time_ns", "vm", "op", "pid", "tid", "comm", "family", "saddr",
        "sport", "daddr", "dport", "bytes", "seq"])

    # garbage in front, between, a bad version and an unknown type
    junk = b"\x00garbage\xff" * 3
    bad_version = record(version=9)
    unknown = struct.pack("<IHHII", MAGIC, 1, 77, 32, 0) + b"u" * 16
    data = junk + record(**a) + bad_version + record(**b) + unknown + \
        record(**c)
    rc, lines, err = run_dump(data)
    check("garbage skipped", [l["op"] for l in lines] ==
          ["send", "recv", "close"], f"{lines} {err}")
    check("garbage reported with offset", rc == 2 and "offset 0:" in err and
          f"offset {len(junk) + 176}:" in err and "unknown record type" in err,
          err)

    # a record cut short at the end of the stream
    rc, lines, err = run_dump(record(**a) + record(**b)[:100])
    check("truncated tail", rc == 2 and len(lines) == 1 and
          "offset 176: truncated" in err, err)

    # hostile text fields are escaped, out-of-range fields rejected
    evil = record(comm="")
    evil = evil[:108] + b'a"\\\n\x01\xe9' + evil[114:]
    rc, lines, err = run_dump(evil + record(op=9) + record(family=5))
    check("escaping", rc == 2 and len(lines) == 1 and
          lines[0]["comm"] == 'a"\\\n\x01\xe9', f"{lines} {err}")
    check("bad fields", err.count("field out of range") == 2, err)

    # a length field that lies (too big) must not swallow the next record
    liar = record(length=1 << 30)
    rc, lines, err = run_dump(liar + record(**a))
    check("lying length", len(lines) == 1 and lines[0]["pid"] == 7, err)

    # --listen: a unix socket that QEMU would connect to
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "rec.sock")
        p = subprocess.Popen([DUMP, "--listen", path, "--once"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        for _ in range(100):
            if os.path.exists(path):
                break
            time.sleep(0.05)
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.sendall(good[:50])
        time.sleep(0.1)
        s.sendall(good[50:])
        s.close()
        out, err = p.communicate(timeout=10)
        lines = [json.loads(l) for l in out.splitlines()]
        check("listen socket, split writes", p.returncode == 0 and
              [l["op"] for l in lines] == ["send", "recv", "close"], err)

    p = subprocess.run([DUMP, "--help"], capture_output=True, text=True)
    check("--help", p.returncode == 0 and "--listen" in p.stdout)
    p = subprocess.run([DUMP, "/nonexistent"], capture_output=True, text=True)
    check("missing file", p.returncode == 1 and "/nonexistent" in p.stderr)

    print(f"1..{len(results)}")
    for i, (name, ok, detail) in enumerate(results, 1):
        print(f"{'ok' if ok else 'not ok'} {i} - {name}")
        if not ok:
            print("# " + str(detail).replace("\n", "\n# "))
    return 0 if all(ok for _, ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
