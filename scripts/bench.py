#!/usr/bin/python3
"""appdep hook-cost benchmark (prints figures; it is not a test).

Workload: two guests under TCG, a request/response loop of 64-byte
messages on one connection (tcpcli --bench N against tcpsrv --quiet),
repeated several times in each boot.  Variants:

  none   no appdep object
  off    appdep object present, inspection off
  on     inspection on in both guests (the automatic choice: the TCP
         functions, by translation-time hooks under TCG and debug
         registers under KVM)
  sys    with --mechanisms: inspection on, the syscall layer forced

The machine is noisy (one boot may run 30% faster than the next), so
on and off alternate inside the same boot, switched live through QMP
between two runs, and each on run is compared with the off runs next to
it.  none and off come from different boots, alternated round by round.
Reported: median throughputs, the ratios, and the hook cost per event,
both from the throughput difference and as measured inside QEMU
(x-query-appdep's hook-ns over the hook hits).

With --mechanisms the object boots cycle off, on, sys: the syscall
layer against the function hooks on the same workload, in the same boot.
With --accel kvm the guests run under KVM (a bounded probe first checks
that a KVM guest makes progress here, else the script says why and exits
with status 77).

  scripts/bench.py [--rounds 3] [--runs 6] [--requests 10000]
                   [--mechanisms] [--accel tcg|kvm]
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
    """(hook hits, ns in hooks, records emitted) over @guests so far."""
    hits = ns = recs = 0
    for g in guests:
        info = g.qmp.execute("x-query-appdep")
        hits += sum(h["hits"] for h in info["hooks"])
        ns += info["hook-ns"]
        recs += info["records-emitted"]
    return hits, ns, recs


def switch(guests, variant):
    """Inspection off, then on with @variant's mechanism (live)."""
    for g in guests:
        if g.qmp.execute("x-query-appdep")["enabled"]:
            g.qmp.execute("x-appdep-inspect", {"enable": False})
        if variant == "off":
            continue
        g.qmp.execute("qom-set", {"path": "/objects/appdep0",
                                  "property": "mechanism",
                                  "value": "syscall" if variant == "sys"
                                  else "auto"})
        arm(g)


def pin(guest, cpu):
    """Pin every thread of @guest's QEMU to host CPU @cpu (less noise)."""
    for tid in os.listdir(f"/proc/{guest.proc.pid}/task"):
        try:
            os.sched_setaffinity(int(tid), {cpu})
        except OSError:
            pass


def boot(with_object, runs, requests, log, cycle=("off", "on"), accel="tcg"):
    """One boot of the pair; returns [(variant, rps, hits, hook_ns, recs)].

    Object boots run the variants of @cycle in turn."""
    loop = (f"for i in $(seq {runs}); do sleep {PAUSE}; tcpcli 10.0.0.1 8080 "
            f"--bench {requests} --connect-timeout 30 || exit 1; done")
    out = []
    with lab.Lab(accel=accel) as l:
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
        base = (0, 0, 0)
        for i in range(runs):
            deadline = time.monotonic() + 600
            while len(cli.records("BENCH")) <= i:
                if cli.proc.poll() is not None or time.monotonic() > deadline:
                    raise lab.LabError("bench client stopped:\n" +
                                       cli.console()[-2000:])
                time.sleep(0.05)
            rps = cli.records("BENCH")[i]["rps"]
            variant = "none"
            hits = ns = recs = 0
            if with_object:
                variant = cycle[i % len(cycle)]
                now = totals(guests)
                hits, ns, recs = (now[0] - base[0], now[1] - base[1],
                                  now[2] - base[2])
                # switch for the next run, during the guest's pause
                switch(guests, cycle[(i + 1) % len(cycle)])
                base = totals(guests)
            out.append((variant, rps, hits, ns, recs))
            log(variant, rps, hits, ns, recs)
        Tracer.stop_all()
    return out


def paired(runs, variant, against):
    """Each @variant run over the mean of the adjacent @against runs."""
    out = []
    for b in runs:
        for i, x in enumerate(b):
            if x[0] != variant:
                continue
            near = [b[j][1] for j in (i - 1, i + 1)
                    if 0 <= j < len(b) and b[j][0] == against]
            if near:
                out.append(x[1] / statistics.mean(near))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=6,
                    help="runs per boot (object boots cycle the variants)")
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--mechanisms", action="store_true",
                    help="also run the syscall layer (variant sys)")
    ap.add_argument("--accel", choices=("tcg", "kvm"), default="tcg")
    args = ap.parse_args()
    t0 = time.monotonic()
    cycle = ("off", "on", "sys") if args.mechanisms else ("off", "on")
    variants = ("none",) + cycle

    if args.accel == "kvm":
        usable, why = lab.kvm_usable()
        if not usable:
            print(f"bench: cannot benchmark KVM here: {why}", file=sys.stderr)
            return 77
        print(f"bench: {why}", flush=True)

    def log(variant, rps, hits, ns, recs):
        extra = ""
        if variant in ("on", "sys"):
            extra = (f", {recs / args.requests:.2f} records/request, "
                     f"{hits / args.requests:.2f} hook hits/request, "
                     f"{ns / max(recs, 1) / 1000:.2f} us in hooks per record")
        print(f"  {variant:>4}: {rps:8.1f} req/s{extra}", flush=True)

    runs = []
    for r in range(args.rounds):
        for with_object in ((False, True) if r % 2 == 0 else (True, False)):
            print(f"round {r + 1}/{args.rounds}, "
                  f"{'object' if with_object else 'no object'}:", flush=True)
            runs.append(boot(with_object, args.runs, args.requests, log,
                             cycle, args.accel))

    rps = {v: [x[1] for b in runs for x in b if x[0] == v] for v in variants}
    med = {v: statistics.median(x) for v, x in rps.items()}

    print()
    print(f"workload: {args.requests} request/response round trips of 64 "
          f"bytes, 2 guests under {args.accel.upper()}; {args.rounds} rounds "
          f"of {args.runs} runs; medians")
    for v in variants:
        print(f"  {v:>4}: {med[v]:8.1f} req/s over {len(rps[v])} runs")
    print(f"  inspection off / no object:              "
          f"{med['off'] / med['none']:.3f}")
    for v in cycle[1:]:
        label = "syscall layer" if v == "sys" else "functions"
        on_runs = [x for b in runs for x in b if x[0] == v]
        ratio = statistics.median(paired(runs, v, "off"))
        ev = statistics.median(x[4] / args.requests for x in on_runs)
        hits = statistics.median(x[2] / args.requests for x in on_runs)
        in_hook = statistics.median(x[3] / max(x[4], 1) for x in on_runs)
        cost_us = (1 / ratio - 1) / med["off"] / ev * 1e6
        print(f"  {label} ({v}):")
        print(f"    on / off (same boot, paired):          {ratio:.3f}")
        print(f"    on / no object:                        "
              f"{ratio * med['off'] / med['none']:.3f}")
        print(f"    records per request:                   {ev:.2f}")
        print(f"    hook hits per request:                 {hits:.2f}")
        print(f"    cost per record, from throughput:      {cost_us:.2f} us")
        print(f"    cost per record, inside QEMU:          "
              f"{in_hook / 1000:.2f} us")
    if args.mechanisms:
        sys_fn = paired(runs, "sys", "on")
        print(f"  syscall layer / functions (adjacent runs): "
              f"{statistics.median(sys_fn):.3f}")
    print(f"  ({time.monotonic() - t0:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
