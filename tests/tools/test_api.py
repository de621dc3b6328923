#!/usr/bin/python3
"""The APM server's HTTP API (server/api/, server/learn.c) and appdepctl.

Drives tests/unit/api-harness.c (the API over a real store, with a fake
inventory in place of forward daemons) over HTTP, with http.client, raw
sockets and appdepctl: every endpoint, the learning phase, and malformed
or oversized requests, which must get a 4xx JSON error and never stop
the server.  Prints TAP.

Usage: test_api.py [HARNESS APPDEPCTL] [NAME...]   (--list names the tests)
HARNESS and APPDEPCTL default to the build/meson paths; the first two
arguments are taken as such when both contain a "/".  meson runs the whole suite with the
two binaries (meson test api-http); to run one test there, set
APPDEP_TESTS=NAME.  test_empty has its own server; the other tests share
one seeded server, started by the first of them that runs.
"""

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))
import tap  # noqa: E402
from wait import wait_until  # noqa: E402

HARNESS = os.path.join(TOP, "build/meson/tests/unit/appdep-api-harness")
CTL = os.path.join(TOP, "build/meson/server/appdepctl")
INSPECT_TIMEOUT_S = 10          # APPDEP_API_INSPECT_TIMEOUT_S
MAX_BODY = 4096                 # APPDEP_API_MAX_BODY_LEN
# The 504 comes after the server's timeout: never before (the lower bound
# is what proves it waited), and on a loaded 2-core machine the timer and
# the HTTP response can be late by several seconds (the upper bound only
# catches a server that waits for much longer than its timeout).
INSPECT_EARLY_S = 1
INSPECT_LATE_S = 15
LEARN_TIMEOUT_S = 60

suite = tap.Suite()
check = suite.check


class Harness:
    def __init__(self, *args):
        self.dir = tempfile.TemporaryDirectory()
        self.proc = subprocess.Popen(
            [HARNESS, "--db", os.path.join(self.dir.name, "db"), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("port "):
            raise RuntimeError("harness did not start: " + line +
                               self.proc.stderr.read())
        self.port = int(line.split()[1])
        self.addr = f"127.0.0.1:{self.port}"

    def request(self, method, path, body=None, headers=None, timeout=30,
                chunked=False):
        c = http.client.HTTPConnection("127.0.0.1", self.port,
                                       timeout=timeout)
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        c.request(method, path, body=body, headers=headers or {},
                  encode_chunked=chunked)
        r = c.getresponse()
        data = r.read()
        c.close()
        ctype = r.getheader("Content-Type", "")
        if ctype.startswith("application/json"):
            try:
                return r.status, json.loads(data)
            except ValueError:
                return r.status, ("not json", data)
        return r.status, data.decode(errors="replace")

    def raw(self, data, timeout=10):
        """Send raw bytes, return the status code (0: closed, no answer)."""
        s = socket.create_connection(("127.0.0.1", self.port),
                                     timeout=timeout)
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            got = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except (ConnectionResetError, socket.timeout):
                    break
                if not chunk:
                    break
                got += chunk
        except OSError:
            got = b""
        finally:
            s.close()
        if not got.startswith(b"HTTP/1."):
            return 0, got
        return int(got.split()[1]), got

    def ctl(self, *args, server=None, timeout=120):
        p = subprocess.run([CTL, "--server", server or self.addr, *args],
                           capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def alive(self):
        try:
            st, _ = self.request("GET", "/v1/status", timeout=5)
            return st == 200 and self.proc.poll() is None
        except OSError:
            return False

    def stop(self):
        self.proc.terminate()
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = "hung"
        self.dir.cleanup()
        return rc


def is_error(st, body, code, text=None):
    return (st == code and isinstance(body, dict) and
            isinstance(body.get("error"), str) and
            (text is None or text in body["error"]))


@suite.test
def test_empty():
    """an empty server: every endpoint, appdepctl's exit codes"""
    h = Harness()
    st, body = h.request("GET", "/v1/status")
    check("status on an empty server", st == 200 and body["records"] == 0 and
          body["store"]["messages"] == 0 and
          body["store"]["records"] == 0 and
          body["store"]["map_size"] > 0 and "map_grows" in body["store"] and
          body["daemons"]["connected"] == 0 and body["vms"] == 0,
          f"{st} {body}")
    st, body = h.request("GET", "/v1/vms")
    check("vms: empty inventory", st == 200 and body == [], f"{st} {body}")
    st, body = h.request("POST", "/v1/vms/nosuch/inspect", {"enable": True})
    check("inspect of an unknown VM: 404 with message",
          is_error(st, body, 404, "nosuch"), f"{st} {body}")
    st, body = h.request("GET", "/v1/map")
    check("map of an empty store", st == 200 and
          body["edges"] == [] and body["messages"] == 0,
          f"{st} {body}")
    st, body = h.request("GET", "/v1/learn")
    check("no learning session", st == 200 and body == [], f"{st} {body}")

    rc, out, err = h.ctl("status")
    check("appdepctl status", rc == 0 and "store" in out, f"{rc} {out} {err}")
    rc, out, err = h.ctl("vms")
    check("appdepctl vms (empty)", rc == 0 and "no VM" in out,
          f"{rc} {out} {err}")
    rc, out, err = h.ctl("inspect", "nosuch", "on")
    check("appdepctl inspect unknown VM: exit 1 and the message",
          rc == 1 and "no such VM" in err, f"{rc} {out} {err}")
    rc, out, err = h.ctl("learn", "nosuch")
    check("appdepctl learn unknown VM: exit 1", rc == 1 and "nosuch" in err,
          f"{rc} {out} {err}")
    rc, out, err = h.ctl("map", "--format", "svg")
    check("appdepctl bad format: exit 2", rc == 2, f"{rc} {err}")
    rc, out, err = h.ctl("inspect", "x")
    check("appdepctl missing argument: exit 2", rc == 2, f"{rc} {err}")
    rc, out, err = h.ctl("frobnicate")
    check("appdepctl unknown command: exit 2", rc == 2, f"{rc} {err}")
    rc, out, err = h.ctl("map", "--help")
    check("appdepctl map --help", rc == 0 and "--last" in out,
          f"{rc} {out} {err}")
    rc = h.stop()
    check("clean stop (empty)", rc == 0, f"{rc}")
    # the port is closed now
    rc, out, err = h.ctl("status", server=f"127.0.0.1:{h.port}")
    check("appdepctl without a server: exit 3", rc == 3, f"{rc} {err}")


_seeded = []


def seeded():
    """The seeded server the other tests share, started on first use."""
    if not _seeded:
        _seeded.append(Harness(
            "--seed", "--vm", "web=10.0.0.2", "--vm", "db=10.0.0.3",
            "--vm", "cli=10.0.0.1", "--vm", "bad1=10.0.0.50",
            "--vm", "mute1=10.0.0.51,fd00::51"))
    return _seeded[0]


def stop_seeded():
    if _seeded:
        h = _seeded.pop()
        rc = h.stop()
        err = h.proc.stderr.read()
        check("clean stop (seeded)", rc == 0, f"{rc} {err}")


@suite.test
def test_queries():
    """map, trajectories and their appdepctl commands on the seeded store"""
    h = seeded()
    st, body = h.request("GET", "/v1/vms")
    names = [v["name"] for v in body] if st == 200 else []
    check("vms: sorted inventory with addresses", st == 200 and
          names == sorted(names) and "web" in names and
          [v for v in body if v["name"] == "web"][0]["addresses"] ==
          ["10.0.0.2"], f"{st} {body}")

    st, body = h.request("GET", "/v1/map?last=600")
    edges = {}
    if st == 200:
        for e in body["edges"]:
            key = (e["client"]["vm"], e["server"]["vm"] or
                   e["server"]["address"], e["server"]["port"])
            edges[key] = e["calls"]
    check("map: the seeded 3-tier edges", edges == {
        ("cli", "web", 80): 5, ("web", "db", 5432): 5,
        ("web", "10.9.9.9", 53): 5}, f"{st} {body}")
    now = time.time_ns()
    st, body = h.request("GET", f"/v1/map?from={now - 3600 * 10**9}"
                         f"&to={now - 1800 * 10**9}")
    check("map: a window without messages", st == 200 and
          body["edges"] == [], f"{st} {body}")
    st, body = h.request("GET", "/v1/map?format=dot")
    check("map: dot", st == 200 and isinstance(body, str) and
          "digraph" in body and "db" in body, f"{st} {body}")
    st, body = h.request("GET", "/v1/map?format=text")
    check("map: text", st == 200 and isinstance(body, str) and
          "web/nginx -> db/postgres:5432" in body, f"{st} {body}")

    st, body = h.request("GET", "/v1/trajectories?app=web")
    trs = body if st == 200 else []
    check("trajectories: 5 roots, each calling db and 10.9.9.9",
          st == 200 and len(trs) == 5 and
          all(len(t["children"]) == 2 for t in trs) and
          trs[0]["children"][0]["server"]["vm"] == "db", f"{st} {body}")
    st, body = h.request("GET", "/v1/trajectories?app=web/nginx:80&limit=2")
    check("trajectories: limit", st == 200 and len(body) == 2,
          f"{st} {body}")
    if trs:
        # one request: a window around its start, the margins do the rest
        t = trs[1]["start_ns"]
        st, body = h.request("GET", f"/v1/trajectories?app=web&from={t}"
                             f"&to={t + 1}&margin_s=5")
        check("trajectories: one request by its start",
              st == 200 and len(body) == 1 and body[0] == trs[1],
              f"{st} {body}")
    st, body = h.request("GET", "/v1/trajectories?app=web:81")
    check("trajectories: other port, none", st == 200 and body == [],
          f"{st} {body}")
    st, body = h.request("GET", "/v1/trajectories?app=web&format=text")
    check("trajectories: text", st == 200 and isinstance(body, str) and
          "trajectory 1:" in body and "  web/nginx[21] -> db" in body,
          f"{st} {body}")

    rc, out, err = h.ctl("map", "--last", "600")
    check("appdepctl map", rc == 0 and "cli/curl -> web/nginx:80" in out,
          f"{rc} {out} {err}")
    with tempfile.TemporaryDirectory() as d:
        f = os.path.join(d, "map.dot")
        rc, out, err = h.ctl("map", "--format", "dot", "-o", f)
        ok = rc == 0 and os.path.exists(f) and "digraph" in open(f).read()
    check("appdepctl map -o FILE (dot)", ok, f"{rc} {out} {err}")
    rc, out, err = h.ctl("map", "--format", "json")
    check("appdepctl map --format json", rc == 0 and
          len(json.loads(out)["edges"]) == 3, f"{rc} {out} {err}")
    rc, out, err = h.ctl("trajectory", "web", "--limit", "1")
    check("appdepctl trajectory", rc == 0 and "trajectory 1:" in out and
          "1 of 5" in out, f"{rc} {out} {err}")
    rc, out, err = h.ctl("trajectory", "web", "--json", "--last", "600")
    check("appdepctl trajectory --json", rc == 0 and
          len(json.loads(out)) == 5, f"{rc} {out} {err}")
    rc, out, err = h.ctl("trajectory", "web", "--margin", "soon")
    check("appdepctl trajectory --margin: a number, else exit 2",
          rc == 2 and "--margin" in err, f"{rc} {out} {err}")
    rc, out, err = h.ctl("trajectory", "web:0")
    check("appdepctl trajectory bad app: exit 1 with the reason",
          rc == 1 and "port" in err, f"{rc} {out} {err}")


@suite.test
def test_inspect():
    """inspection on/off: success, QEMU's refusal, a daemon that never answers"""
    h = seeded()
    st, body = h.request("POST", "/v1/vms/web/inspect", {"enable": True})
    check("inspect web on", st == 200 and body == {"vm": "web",
                                                   "enabled": True},
          f"{st} {body}")
    st, body = h.request("GET", "/v1/vms")
    check("vms: web enabled", st == 200 and [v["enabled"] for v in body
                                             if v["name"] == "web"] == [True],
          f"{st} {body}")
    st, body = h.request("POST", "/v1/vms/bad1/inspect", {"enable": True})
    check("inspect refused by QEMU: 502 with its text",
          is_error(st, body, 502, "no profile loaded"), f"{st} {body}")
    rc, out, err = h.ctl("inspect", "web", "off")
    check("appdepctl inspect web off", rc == 0 and "off" in out,
          f"{rc} {out} {err}")
    t0 = time.monotonic()
    st, body = h.request("POST", "/v1/vms/mute1/inspect", {"enable": True})
    dt = time.monotonic() - t0
    check("inspect without a RESULT: 504 after the timeout",
          is_error(st, body, 504, "mute1") and
          INSPECT_TIMEOUT_S - INSPECT_EARLY_S < dt <
          INSPECT_TIMEOUT_S + INSPECT_LATE_S,
          f"{st} {body} {dt:.1f}s")


def learn_wait(h, lid, limit_s=LEARN_TIMEOUT_S):
    last = [0, "timeout"]

    def over():
        st, body = h.request("GET", f"/v1/learn/{lid}")
        if st != 200 or body["state"] in ("done", "failed"):
            last[:] = [st, body]
            return True
        return False
    wait_until(over, limit_s, step=0.2)
    return tuple(last)


@suite.test
def test_learn():
    """the learning phase over HTTP and appdepctl; bad requests"""
    h = seeded()
    st, body = h.request("POST", "/v1/learn",
                         {"app": "web/nginx:80", "window_s": 1})
    lid = body.get("id") if isinstance(body, dict) else None
    check("learn: started", st == 202 and isinstance(lid, int),
          f"{st} {body}")
    st, body = learn_wait(h, lid)
    check("learn: done in 2 rounds, cli+db found, 10.9.9.9 unmapped",
          st == 200 and body["state"] == "done" and body["round"] == 2 and
          sorted(body["enabled"]) == ["cli", "db", "web"] and
          body["unmapped"] == ["10.9.9.9"] and len(body["log"]) >= 4,
          f"{st} {body}")
    st, body = h.request("GET", "/v1/learn")
    check("learn: listed", st == 200 and any(s["id"] == lid for s in body),
          f"{st} {body}")

    rc, out, err = h.ctl("learn", "bad1", "--window", "1")
    check("appdepctl learn: failed start VM, exit 1",
          rc == 1 and "no profile loaded" in out, f"{rc} {out} {err}")
    rc, out, err = h.ctl("learn", "cli", "--window", "1")
    check("appdepctl learn cli: progress and result", rc == 0 and
          "round 1" in out and "enabled VMs:" in out and "web" in out,
          f"{rc} {out} {err}")

    st, body = h.request("GET", "/v1/learn/99999")
    check("learn: unknown id 404", is_error(st, body, 404), f"{st} {body}")
    st, body = h.request("GET", "/v1/learn/abc")
    check("learn: bad id 400", is_error(st, body, 400), f"{st} {body}")
    for bad in ('{"app": "web", "window_s": 0}', '{"app": 1}', '{"ap": "x"}',
                '{"app": "web", "window_s": 1.5}', "[", ""):
        st, body = h.request("POST", "/v1/learn", bad,
                             {"Content-Type": "application/json"})
        check(f"learn: bad body {bad!r} -> 400", is_error(st, body, 400),
              f"{st} {body}")
    st, body = h.request("POST", "/v1/learn", {"app": "ghost"})
    check("learn: unknown VM 404", is_error(st, body, 404, "ghost"),
          f"{st} {body}")


@suite.test
def test_malformed():
    """malformed, oversized and concurrent requests never stop the server"""
    h = seeded()
    bad_gets = [
        ("/v1/map?from=abc", 400), ("/v1/map?from=5&to=3", 400),
        ("/v1/map?from=99999999999999999999999", 400),
        ("/v1/map?last=-1", 400), ("/v1/map?last=1&from=1", 400),
        ("/v1/map?format=xml", 400), ("/v1/map?colour=red", 400),
        ("/v1/map?from=1&from=2", 400),
        ("/v1/map?" + "&".join(f"k{i}=1" for i in range(20)), 400),
        ("/v1/map?from=" + "1" * 300, 400),
        ("/v1/trajectories", 400), ("/v1/trajectories?app=:80", 400),
        ("/v1/trajectories?app=web&limit=0", 400),
        ("/v1/trajectories?app=web&limit=100000", 400),
        ("/v1/trajectories?app=web&format=dot", 400),
        ("/v1/trajectories?app=web&margin_s=-1", 400),
        ("/v1/trajectories?app=web&margin_s=3601", 400),
        ("/v1/trajectories?app=web&margin_s=ten", 400),
        ("/v1/status?x=1", 400),
        ("/nope", 404), ("/v1/vms/web", 404), ("/v1/vms//inspect", 404),
        ("/" + "a" * 600, 414),
    ]
    for path, code in bad_gets:
        st, body = h.request("GET", path)
        check(f"GET {path[:60]} -> {code}", is_error(st, body, code),
              f"{st} {body}")
    for method, path, code in [("POST", "/v1/status", 405),
                               ("GET", "/v1/vms/web/inspect", 405),
                               ("PUT", "/v1/status", 405),
                               ("DELETE", "/v1/learn/1", 405)]:
        st, body = h.request(method, path, "" if method == "POST" else None)
        check(f"{method} {path} -> {code}", is_error(st, body, code),
              f"{st} {body}")
    for bad in ("{", "[]", "true", '{"enable": "yes"}', '{"enable": 1}',
                '{"enable": true, "x": 0}', "\x00\x01", ""):
        st, body = h.request("POST", "/v1/vms/web/inspect", bad)
        check(f"inspect body {bad!r} -> 400", is_error(st, body, 400),
              f"{st} {body}")
    st, body = h.request("GET", "/v1/map", "x" * 10)
    check("GET with a body -> 400", is_error(st, body, 400), f"{st} {body}")

    big = "{" + " " * MAX_BODY + "}"
    st, body = h.request("POST", "/v1/learn", big)
    check("oversized body (Content-Length) -> 413",
          is_error(st, body, 413), f"{st} {body}")
    st, body = h.request("POST", "/v1/learn",
                         iter([b"x" * 1000] * (MAX_BODY // 500)),
                         {"Transfer-Encoding": "chunked"}, chunked=True)
    check("oversized chunked body -> 413", is_error(st, body, 413),
          f"{st} {body}")
    try:
        st, body = h.request("POST", "/v1/learn",
                             iter([b"x" * 65536] * 40),
                             {"Transfer-Encoding": "chunked"}, chunked=True)
    except OSError:
        st = 0                  # hung up on while sending
    check("endless chunked body: 413 or hang-up, no crash",
          st == 413 or st == 0, f"{st}")
    code, _ = h.raw(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n" +
                    b"X-Big: " + b"a" * 40000 + b"\r\n\r\n")
    check("huge header: 4xx or hang-up", code == 0 or 400 <= code < 500,
          f"{code}")
    code, _ = h.raw(b"\x00\xff\xfegarbage\r\n\r\n")
    check("garbage request line: 400 or hang-up",
          code == 0 or code == 400, f"{code}")
    code, _ = h.raw(b"POST /v1/learn HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Length: 100\r\n\r\n{\"app\"")
    check("truncated body: no answer needed, no crash", h.alive(), f"{code}")
    code, _ = h.raw(b"POST /v1/learn HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Length: -5\r\n\r\n")
    check("negative Content-Length: 4xx", 400 <= code < 500 or code == 0,
          f"{code}")

    # many clients at once
    codes = []

    def worker():
        try:
            codes.append(h.request("GET", "/v1/status")[0])
        except OSError as e:
            codes.append(str(e))
    ts = [threading.Thread(target=worker) for _ in range(32)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check("32 concurrent requests", codes == [200] * 32, f"{codes}")
    st, body = h.request("GET", "/v1/status")
    check("still serving, errors counted", st == 200 and
          body["api"]["errors"] > 20, f"{st} {body}")


def main():
    global HARNESS, CTL
    args = sys.argv[1:]
    if len(args) >= 2 and all("/" in a for a in args[:2]):
        HARNESS, CTL = args[:2]
        args = args[2:]
    return suite.main(args, require=[
        (os.access(HARNESS, os.X_OK), f"{HARNESS} is built"),
        (os.access(CTL, os.X_OK), f"{CTL} is built")], epilogue=stop_seeded)


if __name__ == "__main__":
    sys.exit(main())
