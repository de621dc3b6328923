#!/usr/bin/python3
"""appdep hook-cost benchmark (prints figures; it is not a test).

Workload: two guests under TCG, a request/response loop of 64-byte
messages on one connection (tcpcli --bench N against tcpsrv).  Variants,
run alternately round after round, so that the machine's noise hits
each the same way:

  none   no appdep object
  off    appdep object present, inspection off
  on     inspection on in both guests

Reported: median throughput per variant, the ratios off/none and on/off,
and the hook cost per event, from the on/off difference in time per
request divided by the hooked events per request (counted by QEMU).

  scripts/bench.py [--rounds 5] [--requests 10000]
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP / "scripts" / "lab"))
sys.path.insert(0, str(TOP / "tests" / "boot"))
import lab  # noqa: E402
from test_boot import PROFILE, Tracer, arm  # noqa: E402

VARIANTS = ("none", "off", "on")


def run_once(variant, requests):
    """One boot of the pair; returns (requests/s, hooked events/request)."""
    with lab.Lab() as l:
        tracers = {}
        guests = []
        for name, cmd in (("srv", "tcpsrv 8080 --quiet"),
                          ("cli", f"tcpcli 10.0.0.1 8080 --bench {requests} "
                                  "--connect-timeout 30")):
            appdep = None
            if variant != "none":
                tracers[name] = Tracer(l.workdir, name)
                appdep = lab.Appdep(str(PROFILE), str(tracers[name].sock))
            guests.append(l.add(name, cmd, appdep=appdep,
                                extra_args=["-no-shutdown"]))
        l.start()
        if variant == "on":
            for g in guests:
                arm(g)
        cli = guests[1]
        if cli.wait_done(timeout=600) != 0:
            raise lab.LabError("bench client failed")
        b = cli.bench()
        events = hook_ns = 0
        if variant == "on":
            for g in guests:
                info = g.qmp.execute("x-query-appdep")
                events += sum(h["hits"] for h in info["hooks"])
                hook_ns += info["hook-ns"]
                if info["records-dropped"]:
                    print(f"  note: {g.name} dropped "
                          f"{info['records-dropped']} records", flush=True)
        for t in tracers.values():
            t.stop()
        return b["rps"], events / requests, hook_ns / max(events, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=10000)
    args = ap.parse_args()

    rps = {v: [] for v in VARIANTS}
    per_req = []
    in_hook = []
    t0 = time.monotonic()
    for r in range(args.rounds):
        order = VARIANTS if r % 2 == 0 else tuple(reversed(VARIANTS))
        for v in order:
            x, ev, ns = run_once(v, args.requests)
            rps[v].append(x)
            if v == "on":
                per_req.append(ev)
                in_hook.append(ns)
            print(f"round {r + 1}/{args.rounds} {v:>4}: {x:9.1f} req/s"
                  + (f", {ev:.2f} hooked events/request, {ns / 1000:.2f} us "
                     "in the hook per event" if v == "on" else ""),
                  flush=True)

    med = {v: statistics.median(rps[v]) for v in VARIANTS}
    ev = statistics.median(per_req)
    cost_us = (1 / med["on"] - 1 / med["off"]) / ev * 1e6
    print()
    print(f"workload: {args.requests} request/response round trips of 64 "
          f"bytes, 2 guests under TCG, {args.rounds} rounds, medians")
    for v in VARIANTS:
        print(f"  {v:>4}: {med[v]:9.1f} req/s  (rounds: "
              + ", ".join(f"{x:.0f}" for x in rps[v]) + ")")
    print(f"  inspection off / no object: {med['off'] / med['none']:.3f}")
    print(f"  inspection on / off:        {med['on'] / med['off']:.3f}")
    print(f"  inspection on / no object:  {med['on'] / med['none']:.3f}")
    print(f"  hooked events per request:  {ev:.2f}")
    print(f"  hook cost per event, from throughput: {cost_us:.2f} us")
    print(f"  hook cost per event, measured in QEMU: "
          f"{statistics.median(in_hook) / 1000:.2f} us")
    print(f"  ({time.monotonic() - t0:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
