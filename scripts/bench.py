#!/usr/bin/python3
"""appdep hook-cost benchmark (prints figures; it is not a test).

Workload: two guests under TCG, a request/response loop of 64-byte
messages on one connection (tcpcli --bench N against tcpsrv --quiet),
repeated several times in each boot.  Variants:

  none   no appdep object
  off    appdep object present, inspection off
  on     inspection on in both guests

The machine is noisy (one boot may run 30% faster than the next), so
on and off alternate inside the same boot, switched live through QMP
between two runs, and each on run is compared with the off runs next to
it.  none and off come from different boots, alternated round by round.
Reported: median throughputs, the ratios, and the hook cost per event,
both from the throughput difference and as measured inside QEMU
(x-query-appdep's hook-ns over the hook hits).

  scripts/bench.py [--rounds 3] [--runs 6] [--requests 10000]
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

PAUSE = 2           # guest seconds between two runs: the host switches then


def totals(guests):
    hits = ns = 0
    for g in guests:
        info = g.qmp.execute("x-query-appdep")
        hits += sum(h["hits"] for h in info["hooks"])
        ns += info["hook-ns"]
    return hits, ns


def pin(guest, cpu):
    """Pin every thread of @guest's QEMU to host CPU @cpu (less noise)."""
    for tid in os.listdir(f"/proc/{guest.proc.pid}/task"):
        try:
            os.sched_setaffinity(int(tid), {cpu})
        except OSError:
            pass


def boot(with_object, runs, requests, log):
    """One boot of the pair; returns [(variant, rps, hits, hook_ns)]."""
    loop = (f"for i in $(seq {runs}); do sleep {PAUSE}; tcpcli 10.0.0.1 8080 "
            f"--bench {requests} --connect-timeout 30 || exit 1; done")
    out = []
    with lab.Lab() as l:
        guests = []
        for name, cmd in (("srv", "tcpsrv 8080 --quiet"), ("cli", loop)):
            appdep = None
            if with_object:
                appdep = lab.Appdep(str(PROFILE),
                                    str(Tracer(l.workdir, name).sock))
            guests.append(l.add(name, cmd, appdep=appdep,
                                extra_args=["-no-shutdown"]))
        l.start()
        if len(os.sched_getaffinity(0)) >= 2:
            pin(guests[0], 0)
            pin(guests[1], 1)
        cli = guests[1]
        on = False
        base = (0, 0)
        for i in range(runs):
            deadline = time.monotonic() + 600
            while len(cli.records("BENCH")) <= i:
                if cli.proc.poll() is not None or time.monotonic() > deadline:
                    raise lab.LabError("bench client stopped:\n" +
                                       cli.console()[-2000:])
                time.sleep(0.05)
            rps = cli.records("BENCH")[i]["rps"]
            variant = "none"
            hits = ns = 0
            if with_object:
                variant = "on" if on else "off"
                now = totals(guests)
                hits, ns = now[0] - base[0], now[1] - base[1]
                # switch for the next run, during the guest's pause
                on = not on
                for g in guests:
                    if on:
                        arm(g)
                    else:
                        g.qmp.execute("x-appdep-inspect", {"enable": False})
                base = totals(guests)
            out.append((variant, rps, hits, ns))
            log(variant, rps, hits, ns)
        Tracer.stop_all()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=6,
                    help="runs per boot (object boots alternate off/on)")
    ap.add_argument("--requests", type=int, default=10000)
    args = ap.parse_args()
    t0 = time.monotonic()

    def log(variant, rps, hits, ns):
        extra = ""
        if variant == "on":
            extra = (f", {hits / args.requests:.2f} hooked events/request, "
                     f"{ns / max(hits, 1) / 1000:.2f} us in the hook per "
                     "event")
        print(f"  {variant:>4}: {rps:8.1f} req/s{extra}", flush=True)

    runs = []
    for r in range(args.rounds):
        for with_object in ((False, True) if r % 2 == 0 else (True, False)):
            print(f"round {r + 1}/{args.rounds}, "
                  f"{'object' if with_object else 'no object'}:", flush=True)
            runs.append(boot(with_object, args.runs, args.requests, log))

    rps = {v: [x[1] for b in runs for x in b if x[0] == v]
           for v in ("none", "off", "on")}
    med = {v: statistics.median(x) for v, x in rps.items()}
    # each on run against the mean of the off runs around it, same boot
    pair = []
    for b in runs:
        for i, (v, x, _, _) in enumerate(b):
            if v != "on":
                continue
            near = [b[j][1] for j in (i - 1, i + 1)
                    if 0 <= j < len(b) and b[j][0] == "off"]
            pair.append(x / statistics.mean(near))
    on_runs = [x for b in runs for x in b if x[0] == "on"]
    ev = statistics.median(x[2] / args.requests for x in on_runs)
    in_hook = statistics.median(x[3] / max(x[2], 1) for x in on_runs)
    ratio = statistics.median(pair)
    cost_us = (1 / ratio - 1) / med["off"] / ev * 1e6

    print()
    print(f"workload: {args.requests} request/response round trips of 64 "
          f"bytes, 2 guests under TCG; {args.rounds} rounds of "
          f"{args.runs} runs; medians")
    for v in ("none", "off", "on"):
        print(f"  {v:>4}: {med[v]:8.1f} req/s over {len(rps[v])} runs")
    print(f"  inspection off / no object:            "
          f"{med['off'] / med['none']:.3f}")
    print(f"  inspection on / off (same boot, paired): {ratio:.3f}")
    print(f"  inspection on / no object:             "
          f"{ratio * med['off'] / med['none']:.3f}")
    print(f"  hooked events per request:             {ev:.2f}")
    print(f"  hook cost per event, from throughput:  {cost_us:.2f} us")
    print(f"  hook cost per event, inside QEMU:      {in_hook / 1000:.2f} us")
    print(f"  ({time.monotonic() - t0:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
