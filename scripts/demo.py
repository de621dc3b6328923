#!/usr/bin/python3
"""appdep demo: trace a small three-tier lab and show what appdep saw.

Boots three guests under TCG on a private bridge (in a network namespace
made for the demo): a client, a web tier and an app tier.  The web tier
is a thread-per-connection server that calls the app tier for every
request.  Inspection is switched on through QMP in every guest, the
records are collected with appdep-dump, and the demo prints:

  - what each VM streamed (records per op, per program),
  - the connections between applications (VM + program + listening port),
    with request counts and bytes,
  - the path of one request, followed across VMs by TCP sequence numbers:
    the client's send, the web thread that received it, the web thread's
    call to the app tier, and the replies.

The APM server (issue 3) will turn this into stored trajectories and
dependency maps; this shows the per-thread records they are built from.
"""

import collections
import os
import sys
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP / "scripts" / "lab"))
sys.path.insert(0, str(TOP / "tests" / "boot"))
import lab  # noqa: E402
from test_boot import PROFILE, Tracer, arm, settle  # noqa: E402

REQS = 3


def say(msg=""):
    print(msg, flush=True)


def app_of(r, listening):
    """(vm, program, port) of the side of record @r that it describes."""
    port = r["sport"] if (r["vm"], r["sport"]) in listening else None
    return r["vm"], r["comm"], port


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

    say(f"\nrecords streamed ({time.monotonic() - t0:.0f}s):")
    for n in names:
        c = collections.Counter((r["comm"], r["op"]) for r in recs
                                if r["vm"] == n)
        hits = {h["function"]: h["hits"] for h in infos[n]["hooks"]}
        say(f"  {n:>6}: {infos[n]['records-emitted']} records, "
            f"{infos[n]['records-dropped']} dropped; hook hits {hits}")
        for (comm, op), k in sorted(c.items()):
            say(f"          {comm:<10} {op:<5} {k}")

    # A listening port: the local port of a recv that precedes any send
    # on that connection from the same side, seen on several connections.
    first = {}
    for r in sorted(recs, key=lambda r: r["time_ns"]):
        key = (r["vm"], r["saddr"], r["sport"], r["daddr"], r["dport"])
        first.setdefault(key, r["op"])
    ports = collections.Counter((k[0], k[2]) for k, op in first.items()
                                if op == "recv")
    listening = {vp for vp, n in ports.items() if n >= 1}

    # edge (client app, server app) -> connections, sends, bytes each way
    sent = collections.defaultdict(lambda: [0, 0])
    for r in recs:
        if r["op"] == "send":
            c = sent[(r["vm"], r["comm"], r["saddr"], r["sport"], r["daddr"],
                      r["dport"])]
            c[0] += 1
            c[1] += r["bytes"]
    peer_side = {}
    for r in recs:
        peer_side.setdefault((r["daddr"], r["dport"], r["saddr"],
                              r["sport"]), r)
    edges = collections.defaultdict(lambda: [0, 0, 0, 0])
    for (vm, comm, sa, sp, da, dp), (n, b) in sent.items():
        if (vm, sp) in listening:
            continue                        # a server's replies
        peer = peer_side.get((sa, sp, da, dp))
        if not peer:
            continue
        srv = app_of(peer, listening)
        back = sent.get((peer["vm"], peer["comm"], da, dp, sa, sp), (0, 0))
        e = edges[((vm, comm), srv)]
        e[0] += 1
        e[1] += n
        e[2] += b
        e[3] += back[1]
    say("\nconnections between applications (from per-thread records):")
    for (cli, srv), (conns, sends, out, back) in sorted(edges.items()):
        say(f"  {cli[0]}/{cli[1]} -> {srv[0]}/{srv[1]}:{srv[2]}  "
            f"{conns} connections, {sends} sends, {out} bytes out, "
            f"{back} bytes back")

    # Follow one request by sequence numbers across VMs.
    by_seq = {}
    for r in recs:
        if r["op"] == "recv":
            by_seq[(r["daddr"], r["dport"], r["saddr"], r["sport"],
                    r["seq"])] = r
    start = min((r for r in recs if r["vm"] == "client" and
                 r["op"] == "send"), key=lambda r: r["time_ns"])
    t_base = start["time_ns"]

    def show(r, depth, label):
        say(f"  {'  ' * depth}{(r['time_ns'] - t_base) / 1e6:8.3f} ms  "
            f"{r['vm']}/{r['comm']}[{r['tid']}] {label} {r['bytes']} bytes "
            f"{r['saddr']}:{r['sport']} -> {r['daddr']}:{r['dport']}")

    def follow(send, depth, limit=8):
        show(send, depth, "send")
        rcv = by_seq.get((send["saddr"], send["sport"], send["daddr"],
                          send["dport"], send["seq"]))
        if not rcv or depth > limit:
            return
        show(rcv, depth + 1, "recv")
        # what the receiving thread sent next, until it answered
        later = sorted((r for r in recs if r["vm"] == rcv["vm"] and
                        r["tid"] == rcv["tid"] and r["op"] == "send" and
                        r["time_ns"] > rcv["time_ns"]),
                       key=lambda r: r["time_ns"])
        for s in later:
            back = s["daddr"] == rcv["daddr"] and s["dport"] == rcv["dport"]
            follow(s, depth + 1) if not back else show(s, depth + 1,
                                                       "reply")
            if back:
                break

    say("\none request, followed across VMs by TCP sequence numbers:")
    follow(start, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
