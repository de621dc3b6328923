#!/usr/bin/python3
"""appdep-dump on hand-made streams: exact JSON, garbage, truncation.

The records are encoded by tests/lib/wire.py, independently of
hw/appdep/appdep-wire.h, from the layout documented there, so the test
also pins the format.

Prints TAP.  test_dump.py [NAME...] runs the named tests; --list names them.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))
import tap  # noqa: E402
import wire  # noqa: E402
from wait import wait_for  # noqa: E402

DUMP = os.path.join(TOP, "build/meson/monitor/appdep-dump")
SPLIT_PAUSE_S = 0.1             # between the two halves of a split write

suite = tap.Suite()
check = suite.check
record = wire.record

A = dict(op="send", pid=7, tid=8, comm="web", nbytes=10, seq=5)
B = dict(op="recv", family=6, saddr="fd00::1", daddr="fd00::2",
         sport=80, dport=50000, nbytes=3, seq=0xffffffff)
C = dict(op="close", vm="x" * 64, comm="c" * 16, nbytes=0)
GOOD = record(**A) + record(**B) + record(**C)


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


@suite.test
def exact():
    """three records: exact keys, values and key order"""
    rc, lines, err = run_dump(GOOD)
    check("exact keys and values", rc == 0 and lines ==
          [expect(A), expect(B), expect(C)], f"{rc} {lines} {err}")
    check("key order", lines and list(lines[0]) == [
        "time_ns", "vm", "op", "pid", "tid", "comm", "family", "saddr",
        "sport", "daddr", "dport", "bytes", "seq"])


@suite.test
def garbage():
    """garbage in front, between, a bad version and an unknown type"""
    junk = b"\x00garbage\xff" * 3
    bad_version = record(version=9)
    unknown = wire.header(77, 32) + b"u" * 16
    data = junk + record(**A) + bad_version + record(**B) + unknown + \
        record(**C)
    rc, lines, err = run_dump(data)
    check("garbage skipped", [l["op"] for l in lines] ==
          ["send", "recv", "close"], f"{lines} {err}")
    check("garbage reported with offset", rc == 2 and "offset 0:" in err and
          f"offset {len(junk) + 176}:" in err and "unknown record type" in err,
          err)


@suite.test
def truncated():
    """a record cut short at the end of the stream"""
    rc, lines, err = run_dump(record(**A) + record(**B)[:100])
    check("truncated tail", rc == 2 and len(lines) == 1 and
          "offset 176: truncated" in err, err)


@suite.test
def hostile_fields():
    """hostile text fields are escaped, out-of-range fields rejected"""
    evil = record(comm="")
    evil = evil[:108] + b'a"\\\n\x01\xe9' + evil[114:]
    utf8 = record(comm="")
    utf8 = utf8[:108] + "é€".encode() + utf8[113:]
    rc, lines, err = run_dump(evil + utf8 + record(op=9) + record(family=5))
    # the one JSON writer (monitor/common/json-out.c): valid UTF-8 is
    # kept, an invalid byte becomes U+FFFD, controls are escaped
    check("escaping", rc == 2 and len(lines) == 2 and
          lines[0]["comm"] == 'a"\\\n\x01\ufffd' and
          lines[1]["comm"] == "é€", f"{lines} {err}")
    check("bad fields", err.count("field out of range") == 2, err)


@suite.test
def lying_length():
    """a length field that lies (too big) does not swallow the next record"""
    liar = record(length=1 << 30)
    rc, lines, err = run_dump(liar + record(**A))
    check("lying length", len(lines) == 1 and lines[0]["pid"] == 7, err)


@suite.test
def listen():
    """--listen: a unix socket that QEMU would connect to, split writes"""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "rec.sock")
        p = subprocess.Popen([DUMP, "--listen", path, "--once"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        try:
            wait_for(lambda: os.path.exists(path), 5, "listening socket")
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            # a record split across writes: the first part must be waited
            # for, not taken as a truncated record (the pause lets the
            # reader see it alone; a shorter one only tests less)
            s.sendall(GOOD[:50])
            time.sleep(SPLIT_PAUSE_S)
            s.sendall(GOOD[50:])
            s.close()
            out, err = p.communicate(timeout=10)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        lines = [json.loads(l) for l in out.splitlines()]
        check("listen socket, split writes", p.returncode == 0 and
              [l["op"] for l in lines] == ["send", "recv", "close"], err)


@suite.test
def command_line():
    """--help and a missing file"""
    p = subprocess.run([DUMP, "--help"], capture_output=True, text=True)
    check("--help", p.returncode == 0 and "--listen" in p.stdout)
    p = subprocess.run([DUMP, "/nonexistent"], capture_output=True, text=True)
    check("missing file", p.returncode == 1 and "/nonexistent" in p.stderr)


if __name__ == "__main__":
    sys.exit(suite.main(require=[(os.access(DUMP, os.X_OK),
                                  f"{DUMP} is built")]))
