#!/usr/bin/python3
"""End to end: guests -> QEMU -> appdep-fwd -> appdep-server -> map.

A three-tier lab (client -> web -> app, on a bridge in a private network
namespace) is traced through the whole pipeline: each QEMU streams to the
forward daemon, which forwards to the APM server; the learning phase
starts from the web tier and must enable the client and the app tier by
itself; then the dependency map must have exactly the lab's two edges and
every trajectory of a request to the web tier the expected nested shape.
Then the server is killed mid-stream and restarted: after the daemon's
replay, the per-thread records in LMDB equal the records the QEMUs
emitted, in count and content.

Prints TAP.  Run from the top directory after `make`.
"""

import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP / "scripts" / "lab"))
sys.path.insert(0, str(TOP / "tests" / "boot"))
import lab  # noqa: E402
from pipeline import (FWD, SERVER, Api, Proc,  # noqa: E402,F401
                      add_traced_guests, free_port, start_fwd, start_server)
from test_boot import DUMP, PROFILE  # noqa: E402

NAMES = ("client", "web", "app")


def run():
    results = []
    wd = Path(tempfile.mkdtemp(prefix="appdep-pipeline-"))
    dport, hport = free_port(), free_port()
    api = Api(hport)
    procs = []
    try:
        server = start_server(wd, wd / "db", dport, hport)
        procs.append(server)
        procs.append(start_fwd(wd, dport, "host1", NAMES))

        cmds = {
            "app": "tcpsrv 9090 --reply-bytes 300",
            "web": "tcpsrv 8080 --reply-bytes 500 --upstream 10.0.0.3:9090 "
                   "--upstream-bytes 120",
            # a steady trickle of requests, so learning sees traffic
            "client": "for i in $(seq 70); do tcpcli 10.0.0.2 8080 --conns 1 "
                      "--reqs 2 --bytes 80 --reply-bytes 500 "
                      "--connect-timeout 60 || exit 1; sleep 0.5; done",
        }
        with lab.Lab(net="bridge", workdir=wd / "lab") as l:
            guests = add_traced_guests(l, wd, NAMES, cmds)
            l.start()
            # the kernels must be up before inspection can be enabled
            for n in NAMES:
                guests[n].wait_for(r"APPDEP-LAB-READY", 120)
            deadline = time.monotonic() + 30
            while True:
                st, vms = api.get("/v1/vms")
                if st == 200 and len(vms) == 3:
                    break
                assert time.monotonic() < deadline, f"inventory: {vms}"
                time.sleep(0.2)

            # learning from the web tier
            st, job = api.call("POST", "/v1/learn",
                               {"app": "web/tcpsrv:8080", "window_s": 3})
            assert st in (200, 201, 202), (st, job)
            deadline = time.monotonic() + 120
            while True:
                st, prog = api.get(f"/v1/learn/{job['id']}")
                if prog.get("state") in ("done", "failed"):
                    break
                assert time.monotonic() < deadline, prog
                time.sleep(0.5)
            t_learned = time.time_ns()
            results.append(("learning enables client, web and app",
                            prog["state"] == "done" and
                            sorted(prog.get("enabled", [])) ==
                            ["app", "client", "web"], prog))

            # let some fully traced requests happen, then stop the server
            # mid-stream and bring it back
            time.sleep(4)
            server.stop(signal.SIGKILL)
            time.sleep(3)
            server = start_server(wd, wd / "db", dport, hport)
            procs.append(server)
            t_restart = time.time_ns()
            assert guests["client"].wait_done(timeout=240) == 0, \
                "client failed"
            time.sleep(3)
            emitted = 0
            for n in NAMES:
                info = guests[n].qmp.execute("x-query-appdep")
                emitted += info["records-emitted"]
            deadline = time.monotonic() + 30
            while True:
                st, status = api.get("/v1/status")
                stored = status.get("store", {}).get("records", -1)
                if stored >= emitted or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            results.append(("server killed and restarted: LMDB holds as "
                            "many records as emitted", stored == emitted,
                            f"stored {stored}, emitted {emitted}"))
            # content: per VM, the serial numbers 0..emitted-1 once each,
            # and every field a valid record (appdep-dump decodes them)
            exp = wd / "export.bin"
            subprocess.run([str(SERVER), "--db", str(wd / "db"),
                            "--export-records", str(exp)], check=True,
                           capture_output=True, timeout=60)
            dump = subprocess.run([str(DUMP), str(exp)], capture_output=True,
                                  text=True, timeout=60)
            lines = [json.loads(x) for x in dump.stdout.splitlines()]
            by_vm = {}
            for n in NAMES:
                info = guests[n].qmp.execute("x-query-appdep")
                by_vm[n] = info["records-emitted"] + info["records-dropped"]
            got = {}
            with open(exp, "rb") as f:
                raw = f.read()
            for i in range(len(raw) // 176):
                vm = raw[i * 176 + 32:i * 176 + 96].rstrip(b"\0").decode()
                serial = int.from_bytes(raw[i * 176 + 24:i * 176 + 32],
                                        "little")
                got.setdefault(vm, []).append(serial)
            same = dump.returncode == 0 and len(lines) == stored and all(
                sorted(got.get(n, [])) == list(range(by_vm[n]))
                for n in NAMES if by_vm[n])
            results.append(("after replay, each VM's records are there once, "
                            "serials without gaps, all decodable", same,
                            {n: (len(got.get(n, [])), by_vm[n])
                             for n in NAMES}))

            # a peer sending junk is disconnected; the daemon is unaffected,
            # also after a quiet spell (no traffic for longer than any
            # connect or I/O timeout)
            time.sleep(7)
            st, before = api.get("/v1/status")
            with socket.create_connection(("127.0.0.1", dport)) as junk:
                junk.sendall(b"GET / HTTP/1.0\r\n\r\n" + b"\xff" * 64)
                junk.settimeout(10)
                closed = junk.recv(100) == b""
            time.sleep(1.5)
            st, after = api.get("/v1/status")
            results.append(("a peer sending junk is disconnected, the "
                            "daemon stays connected",
                            closed and after["bad_peers"] ==
                            before["bad_peers"] + 1 and
                            after["daemons"]["connected"] == 1,
                            (before, after)))

            # discovery and generation: the window after learning (while
            # it ran, ends not yet traced appear by address only)
            now = time.time_ns()
            st, m = api.get(f"/v1/map?from={t_learned + 10**9}&to={now}")
            edges = {(e["client"]["vm"], e["client"]["program"],
                      e["server"]["vm"], e["server"]["program"],
                      e["server"]["port"]) for e in m.get("edges", [])}
            results.append(("dependency map: exactly the lab's edges",
                            edges == {("client", "tcpcli", "web", "tcpsrv",
                                       8080),
                                      ("web", "tcpsrv", "app", "tcpsrv",
                                       9090)}, m))
            # requests that started once the restarted server had caught
            # up (conversion state within the lateness window is rebuilt
            # only from what arrives after a restart)
            t_from = t_restart + 3 * 10**9
            st, trajs = api.get("/v1/trajectories?app=web/tcpsrv:8080&from="
                                f"{t_from}&to={now}&limit=1000")
            ok = st == 200 and len(trajs) > 0
            bad = []
            for t in trajs if ok else []:
                ch = t["children"]
                if len(ch) != 1 or ch[0]["server"]["vm"] != "app" or not (
                        t["start_ns"] <= ch[0]["start_ns"] <=
                        ch[0]["end_ns"] <= t["end_ns"]):
                    bad.append(t)
            results.append((f"trajectories: {len(trajs) if ok else 0} "
                            "requests, each web -> app, periods nested",
                            ok and not bad, bad[:2]))
    except Exception:
        results.append(("pipeline ran", False, traceback.format_exc()))
    finally:
        for p in procs:
            p.stop()
    return results, wd


def main():
    for b in (SERVER, FWD, PROFILE):
        if not b.exists():
            print(f"1..0 # SKIP {b} is missing (run make)")
            return 77
    results, wd = run()
    print(f"1..{len(results)}")
    failed = 0
    for i, (name, ok, detail) in enumerate(results, 1):
        print(f"{'ok' if ok else 'not ok'} {i} - {name}")
        if not ok:
            failed += 1
            print("# " + str(detail)[:3000].replace("\n", "\n# "))
            print(f"# logs in {wd}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
