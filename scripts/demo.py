#!/usr/bin/python3
"""appdep demo: the whole pipeline on a four-tier lab.

Boots four guests under TCG on a private bridge (in a network namespace
made for the demo): a client, a web tier, an app tier and a database
tier, the tiers thread-per-connection servers that call the next tier
for every request.  Starts the forward daemon and the APM server, runs
the learning phase from the web tier with appdepctl (it enables the web
VM, discovers its peers from the records and enables them, round after
round), then prints the dependency map and one trajectory, and writes
the map as DOT (and SVG when Graphviz is installed) to build/demo/.
Everything it started is stopped at the end.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP / "scripts" / "lab"))
import lab  # noqa: E402
from pipeline import (FWD, PROFILE, SERVER, Api, Proc,  # noqa: E402
                      add_traced_guests, free_port, start_fwd)

CTL = lab.BUILD / "meson" / "server" / "appdepctl"
TIERS = ("client", "web", "app", "db")
CMDS = {
    "db": "tcpsrv 5432 --reply-bytes 2000",
    "app": "tcpsrv 9090 --reply-bytes 300 --upstream 10.0.0.4:5432 "
           "--upstream-bytes 90",
    "web": "tcpsrv 8080 --reply-bytes 1500 --upstream 10.0.0.3:9090 "
           "--upstream-bytes 120",
    "client": "for i in $(seq 60); do tcpcli 10.0.0.2 8080 --conns 2 "
              "--threads 2 --reqs 2 --bytes 80 --reply-bytes 1500 "
              "--connect-timeout 60 || exit 1; sleep 0.5; done",
}


def say(msg=""):
    print(msg, flush=True)


def ctl(hport, *args):
    p = subprocess.run([str(CTL), "--server", f"127.0.0.1:{hport}", *args],
                       capture_output=True, text=True, timeout=300)
    if p.returncode:
        raise RuntimeError(f"appdepctl {' '.join(args)}: {p.stderr.strip()}")
    return p.stdout


def main():
    for f in (PROFILE, SERVER, FWD, CTL):
        if not f.exists():
            say(f"demo: {f} is missing: run 'make' first")
            return 1
    out = lab.BUILD / "demo"
    out.mkdir(parents=True, exist_ok=True)
    wd = Path(tempfile.mkdtemp(prefix="appdep-demo-"))
    dport, hport = free_port(), free_port()
    procs = []
    t0 = time.monotonic()
    try:
        say("appdep demo: client -> web -> app -> db, four guests under TCG")
        procs.append(Proc([str(SERVER), "--db", str(wd / "db"), "--listen",
                           f"127.0.0.1:{dport}", "--http",
                           f"127.0.0.1:{hport}"], wd / "server.log"))
        Api(hport).wait_up()
        procs.append(start_fwd(wd, dport, "demo-host", TIERS))
        say(f"  APM server on 127.0.0.1:{hport}, forward daemon for "
            f"{len(TIERS)} VMs")

        with lab.Lab(net="bridge", workdir=wd / "lab") as l:
            guests = add_traced_guests(l, wd, TIERS, CMDS)
            l.start()
            for n in TIERS:
                guests[n].wait_for(r"APPDEP-LAB-READY", 120)
            say(f"  guests up ({time.monotonic() - t0:.0f}s); inspection is "
                "off everywhere")
            deadline = time.monotonic() + 30
            while len(Api(hport).get("/v1/vms")[1]) < len(TIERS):
                if time.monotonic() > deadline:
                    raise RuntimeError("the inventory did not reach the "
                                       "server")
                time.sleep(0.2)

            say("\n$ appdepctl learn web/tcpsrv:8080 --window 3")
            say("  " + ctl(hport, "learn", "web/tcpsrv:8080", "--window",
                           "3").rstrip().replace("\n", "\n  "))
            t_learned = time.time_ns()
            time.sleep(8)           # discovery: collect fully traced requests
            t_end = time.time_ns()
            # the converter commits a message 2 s after its last record:
            # let the window's last requests land before reading it
            time.sleep(3)

            say(f"\n$ appdepctl map --from {t_learned} --to {t_end}")
            say("  " + ctl(hport, "map", "--from", str(t_learned), "--to",
                           str(t_end), "--format", "text")
                .rstrip().replace("\n", "\n  "))
            dot = out / "map.dot"
            ctl(hport, "map", "--from", str(t_learned), "--to", str(t_end),
                "--format", "dot", "-o", str(dot))
            say("\n$ appdepctl trajectory web/tcpsrv:8080 --limit 1")
            say("  " + ctl(hport, "trajectory", "web/tcpsrv:8080", "--from",
                           str(t_learned), "--to", str(t_end), "--limit", "1")
                .rstrip().replace("\n", "\n  "))
            say(f"\nmap written to {dot}")
            if shutil.which("dot"):
                subprocess.run(["dot", "-Tsvg", str(dot), "-o",
                                str(out / "map.svg")], check=False)
                say(f"SVG: {out / 'map.svg'}")
            say(f"({time.monotonic() - t0:.0f}s)")
        return 0
    except Exception as e:
        say(f"demo failed: {e}\nlogs kept in {wd}")
        return 1
    finally:
        for p in reversed(procs):
            p.stop()
        if not os.environ.get("APPDEP_DEMO_KEEP"):
            shutil.rmtree(wd, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
