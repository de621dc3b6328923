#!/usr/bin/python3
"""appdep demo: trace a small three-tier lab and show what appdep saw.

Boots three guests under TCG on a private bridge (in a network namespace
made for the demo): a client, a web tier and an app tier.  The web tier
is a thread-per-connection server that calls the app tier for every
request.  Inspection is switched on through QMP in every guest, the
records are collected with appdep-dump, and the demo prints:

  - what each VM streamed (records per op, per program),
  - the dependency map (per application: VM + program + listening port;
    calls, bytes and latency per edge), written as DOT too (and SVG when
    Graphviz is installed),
  - one trajectory: a request to the web tier and, nested in its time
    period, the web thread's call to the app tier.

Both come from appdep-analyze, which converts the per-thread records
into inter-thread messages with the APM server's modules.
"""

import collections
import shutil
import subprocess
import sys
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP / "scripts" / "lab"))
sys.path.insert(0, str(TOP / "tests" / "boot"))
import lab  # noqa: E402
from test_boot import BUILD, PROFILE, Tracer, arm, settle  # noqa: E402

ANALYZE = BUILD / "meson" / "server" / "appdep-analyze"

REQS = 3


def say(msg=""):
    print(msg, flush=True)


def main():
    if not PROFILE.exists():
        say(f"demo: no kernel profile at {PROFILE}: run 'make' first")
        return 1
    say("appdep demo: booting client -> web -> app under TCG ...")
    t0 = time.monotonic()
    with lab.Lab(net="bridge") as l:
        names = ("client", "web", "app")
        tracers = {n: Tracer(l.workdir, n) for n in names}
        cmds = {
            "app": "tcpsrv 9090 --reply-bytes 300",
            "web": "tcpsrv 8080 --reply-bytes 500 --upstream 10.0.0.3:9090 "
                   "--upstream-bytes 120",
            "client": f"tcpcli 10.0.0.2 8080 --conns 2 --threads 2 "
                      f"--reqs {REQS} --bytes 80 --reply-bytes 500 "
                      f"--connect-timeout 60",
        }
        guests = {n: l.add(n, cmds[n], appdep=lab.Appdep(
            str(PROFILE), str(tracers[n].sock)), extra_args=["-no-shutdown"])
            for n in names}
        l.start()
        for n in names:
            arm(guests[n])
            info = guests[n].qmp.execute("x-query-appdep")
            say(f"  {n:>6}: inspection on ({info['mechanism']}), KASLR "
                f"slide {info['kaslr-slide']:#x}, {info['banner'][:40]}...")
        if guests["client"].wait_done(timeout=300) != 0:
            say("demo: the client failed; logs in " + str(l.workdir))
            return 1
        time.sleep(1)
        infos = {n: settle(guests[n], tracers[n]) for n in names}
        recs = [r for n in names for r in tracers[n].records()]
        for t in tracers.values():
            t.stop()
        out = BUILD / "demo"
        out.mkdir(parents=True, exist_ok=True)
        raw = []
        for n in names:
            dst = out / f"{n}.records.bin"
            shutil.copyfile(tracers[n].raw_path, dst)
            raw.append(str(dst))

    say(f"\nrecords streamed ({time.monotonic() - t0:.0f}s):")
    for n in names:
        c = collections.Counter((r["comm"], r["op"]) for r in recs
                                if r["vm"] == n)
        hits = {h["function"]: h["hits"] for h in infos[n]["hooks"]}
        say(f"  {n:>6}: {infos[n]['records-emitted']} records, "
            f"{infos[n]['records-dropped']} dropped; hook hits {hits}")
        for (comm, op), k in sorted(c.items()):
            say(f"          {comm:<10} {op:<5} {k}")

    dot = out / "map.dot"
    say("\nappdep-analyze (records -> inter-thread messages -> map, "
        "trajectory):")
    p = subprocess.run([str(ANALYZE), "--app", "web/tcpsrv:8080",
                        "--dot", str(dot), *raw], capture_output=True,
                       text=True)
    say("  " + p.stdout.rstrip().replace("\n", "\n  "))
    if p.returncode:
        say(p.stderr)
        return 1
    say(f"\nrecords kept in {out}/; map written to {dot}")
    if shutil.which("dot"):
        subprocess.run(["dot", "-Tsvg", str(dot), "-o",
                        str(out / "map.svg")], check=False)
        say(f"SVG: {out / 'map.svg'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
