#!/usr/bin/python3
"""appdep accuracy report: how right are the trajectories, server model by
server model.

One lab of four guests under TCG on a private bridge (client 10.0.0.1,
front 10.0.0.2, mid 10.0.0.3, back 10.0.0.4), all traced through the whole
pipeline (QEMU -> appdep-fwd -> appdep-server).  Every scenario has its own
ports and program names; the client guest runs the scenarios one after
the other.  The workload programs (tests/guest/wlsrv, wlcli) put a request
id in every message and print, per request, the threads and connections
that made and served it (tests/guest/wl.h), so the true trajectory of each
request is known.

For each scenario the harness asks the server for the trajectories of the
front application and compares each with the truth: the exact tree shape,
the client and server thread (VM, pid, tid) and the connection of every
exchange, its request and response sizes, and time periods that contain
their children.  It also compares the dependency map (the edges whose
server port belongs to the scenario) with the true edges: precision and
recall.

    scripts/accuracy.py            full run, writes docs/accuracy.md
    scripts/accuracy.py --short    a few requests per scenario, prints TAP
                                   (the "accuracy" suite of make check)
    scripts/accuracy.py --short NAME...   only these scenarios (one lab)
    scripts/accuracy.py --list     the scenario names

Run as root from the top directory after `make`.
"""

import argparse
import collections
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP / "scripts" / "lab"))
sys.path.insert(0, str(TOP / "tests" / "boot"))
sys.path.insert(0, str(TOP / "tests" / "lib"))
import lab  # noqa: E402
import pipeline  # noqa: E402
from pipeline import (FWD, PROFILE, Api, add_traced_guests,  # noqa: E402
                      free_port, start_fwd, start_server)
from test_boot import arm  # noqa: E402
from wait import wait_stable, wait_until  # noqa: E402

VMS = ("client", "front", "mid", "back")
IP = {n: f"10.0.0.{i + 1}" for i, n in enumerate(VMS)}
VM_OF_IP = {v: k for k, v in IP.items()}
RESULTS = TOP / "docs" / "accuracy.md"
EMITTER_QUIET_S = 2         # emitted counters still: the servers are done
STORE_TIMEOUT = 60          # every emitted record stored


class Scenario:
    """One server model: the servers each VM runs, the client's command,
    the front application (VM, program, port) whose requests are the
    trajectories' roots, and the accuracy target in percent (None: only
    measured)."""

    def __init__(self, name, title, servers, client, front, ports, target,
                 background=None):
        self.name, self.title, self.servers = name, title, servers
        self.client, self.front, self.ports = client, front, set(ports)
        self.target, self.background = target, background or {}


def scenarios(n):
    """The scenarios, with about @n requests each."""
    m, b = IP["mid"], IP["back"]
    kv = max(2, n // 10)            # keep-alive: requests per connection
    return [
        Scenario("thread", "thread per connection",
                 {"front": f"wlsrv 8001 --model thread --upstream {m}:9001 "
                           "--name thr-front",
                  "mid": "wlsrv 9001 --model thread --name thr-mid"},
                 f"wlcli 10.0.0.2:8001 --threads 3 --conns {n} --reqs 1 "
                 "--name thr-cli", ("front", "thr-front", 8001),
                 (8001, 9001), 100),
        Scenario("fork", "process per connection (fork)",
                 {"front": f"wlsrv 8002 --model fork --upstream {m}:9002 "
                           "--name fork-front",
                  "mid": "wlsrv 9002 --model thread --name fork-mid"},
                 f"wlcli 10.0.0.2:8002 --threads 3 --conns {max(1, n // 2)} "
                 "--reqs 2 --name fork-cli", ("front", "fork-front", 8002),
                 (8002, 9002), 100),
        Scenario("pool", "thread pool fed by an acceptor through a queue",
                 {"front": f"wlsrv 8003 --model pool --workers 2 "
                           f"--upstream {m}:9003 --name pool-front",
                  "mid": "wlsrv 9003 --model thread --name pool-mid"},
                 f"wlcli 10.0.0.2:8003 --threads 4 --conns 4 "
                 f"--reqs {max(1, n // 4)} --name pool-cli",
                 ("front", "pool-front", 8003), (8003, 9003), 100),
        Scenario("keepalive", "keep-alive: many requests per connection",
                 {"front": f"wlsrv 8004 --model thread --upstream {m}:9004 "
                           "--up-keepalive --name ka-front",
                  "mid": "wlsrv 9004 --model thread --name ka-mid"},
                 f"wlcli 10.0.0.2:8004 --threads 2 --conns 2 --reqs "
                 f"{max(2, n // 2)} --name ka-cli",
                 ("front", "ka-front", 8004), (8004, 9004), 100),
        Scenario("connpool", "connection pools shared by threads",
                 {"front": f"wlsrv 8005 --model thread --upstream {m}:9005 "
                           "--up-pool 2 --name cp-front",
                  "mid": "wlsrv 9005 --model thread --name cp-mid"},
                 f"wlcli 10.0.0.2:8005 --threads 4 --pool 3 --reqs "
                 f"{max(1, n // 4)} --name cp-cli",
                 ("front", "cp-front", 8005), (8005, 9005), 99),
        Scenario("event", "event-driven (one epoll thread) calling a backend",
                 {"front": f"wlsrv 8006 --model event --upstream {m}:9006 "
                           "--name ev-front",
                  "mid": "wlsrv 9006 --model thread --name ev-mid"},
                 f"wlcli 10.0.0.2:8006 --threads 4 --conns 4 --reqs "
                 f"{max(1, n // 4)} --name ev-cli",
                 ("front", "ev-front", 8006), (8006, 9006), 99),
        Scenario("three-tier", "three-tier chain web -> app -> db",
                 {"front": f"wlsrv 8007 --model thread --upstream {m}:9007 "
                           "--name 3t-web",
                  "mid": f"wlsrv 9007 --model thread --upstream {b}:7007 "
                         "--name 3t-app",
                  "back": "wlsrv 7007 --model thread --name 3t-db"},
                 f"wlcli 10.0.0.2:8007 --threads 2 --conns {max(1, n // kv)} "
                 f"--reqs {kv} --name 3t-cli", ("front", "3t-web", 8007),
                 (8007, 9007, 7007), 100),
        Scenario("fanout", "fan-out: two backends per request",
                 {"front": f"wlsrv 8008 --model thread --upstream {m}:9008 "
                           f"--upstream {b}:7008 --name fo-app",
                  "mid": "wlsrv 9008 --model thread --name fo-be1",
                  "back": "wlsrv 7008 --model thread --name fo-be2"},
                 f"wlcli 10.0.0.2:8008 --threads 2 --conns {max(1, n // kv)} "
                 f"--reqs {kv} --name fo-cli", ("front", "fo-app", 8008),
                 (8008, 9008, 7008), 99),
        Scenario("broker", "message broker: producer -> broker -> consumer",
                 {"mid": "wlsrv 9009 --model broker --name broker"},
                 f"wlcli {m}:9009 --produce --conns 1 --reqs {n} --gap-ms 20 "
                 "--name producer", ("mid", "broker", 9009), (9009,), None,
                 background={"back": f"wlcli {m}:9009 --consume {n} "
                                     "--name consumer"}),
    ]


def vm_commands(scens):
    """One shell snippet per VM: its servers in the background; the client
    runs the scenarios in order once every guest had time to be armed."""
    cmds = {}
    tag = 1
    for v in VMS[1:]:
        parts = []
        for s in scens:
            if v in s.servers:
                parts.append(f"{s.servers[v]} --tag {tag} &")
                tag += 1
            if v in s.background:
                parts.append(f"(sleep 3; {s.background[v]} --tag {tag}) &")
                tag += 1
        cmds[v] = " ".join(parts) + " wait"
    steps = ["sleep 3"]
    for s in scens:
        steps.append(f"echo SCENARIO {s.name}; {s.client} --tag {tag} || "
                     f"echo SCENARIO-FAILED {s.name}; sleep 1")
        tag += 1
    cmds["client"] = "; ".join(steps)
    return cmds


# --- ground truth -----------------------------------------------------------

def gt_trees(calls, serves, s):
    """The true trajectories of scenario @s: one tree per client request to
    its front application.  @calls / @serves: CALL / SERVE dicts with "vm".
    A node: client and server thread, connection, sizes, children."""
    by_id = {x["id"]: x for x in serves}
    kids = collections.defaultdict(list)
    for c in calls:
        if c["parent"]:
            kids[(c["vm"], c["parent"])].append(c)
    fetch_of = {c["got"]: c for c in calls if c["op"] == "fetch" and c["got"]}

    def node(c):
        sv = by_id.get(c["id"])
        n = {"client": (c["vm"], c["pid"], c["tid"]),
             "conn": (f"{c['laddr']}:{c['lport']}", f"{c['raddr']}:{c['rport']}"),
             "req": c["req"], "resp": c["resp"], "id": c["id"],
             "server": (sv["vm"], sv["pid"], sv["tid"]) if sv else None,
             "children": []}
        if sv:
            n["children"] = [node(k) for k in kids[(sv["vm"], c["id"])]]
        if c["op"] == "pub" and c["id"] in fetch_of:
            # the message's delivery: the consumer's fetch that got it
            n["children"].append(node(fetch_of[c["id"]]))
        return n

    fvm, _, fport = s.front
    return [node(c) for c in calls
            if not c["parent"] and c["op"] != "fetch" and
            c["raddr"] == IP[fvm] and c["rport"] == fport]


def gt_edges(calls, serves, s):
    by_id = {x["id"]: x for x in serves}
    edges = set()
    for c in calls:
        sv = by_id.get(c["id"])
        if sv and c["rport"] in s.ports:
            edges.add((c["vm"], c["comm"], sv["vm"], sv["comm"], c["rport"]))
    return edges


# --- comparison ---------------------------------------------------------------

def thread_of(t):
    return (t["vm"], t["pid"], t["tid"])


def compare(g, a):
    """None when appdep's node @a is exactly the true node @g, else why."""
    if a["conn"]["client"] != g["conn"][0] or \
            a["conn"]["server"] != g["conn"][1]:
        return f"connection {a['conn']} != {g['conn']}"
    if (a["request_bytes"], a["response_bytes"]) != (g["req"], g["resp"]):
        return (f"sizes {a['request_bytes']}/{a['response_bytes']} != "
                f"{g['req']}/{g['resp']} on {g['conn']}")
    if thread_of(a["client"]) != g["client"]:
        return f"client thread {thread_of(a['client'])} != {g['client']}"
    if thread_of(a["server"]) != g["server"]:
        return (f"server thread {thread_of(a['server'])} != {g['server']} "
                f"on {g['conn']}")
    for c in a["children"]:
        if not (a["start_ns"] <= c["start_ns"] <= c["end_ns"] <= a["end_ns"]):
            return f"child period not inside its parent's on {g['conn']}"
    if len(a["children"]) != len(g["children"]):
        return (f"{len(a['children'])} children, expected "
                f"{len(g['children'])} under {g['conn']}")
    left = list(a["children"])
    for gc in g["children"]:
        why = None
        for i, ac in enumerate(left):
            why = compare(gc, ac)
            if why is None:
                del left[i]
                break
        if why is not None:
            return why
    return None


def root_ok(g, a):
    """The root exchange alone (threads, connection, sizes) is right."""
    return compare(dict(g, children=[]), dict(a, children=[])) is None


def evaluate(s, trees, trajs, edges_true, map_edges):
    """One row of the table, and the reasons of the first failures."""
    index = collections.defaultdict(list)
    for t in trajs:
        index[(t["conn"]["client"], t["conn"]["server"], t["request_bytes"],
               t["response_bytes"])].append(t)
    correct = roots = 0
    why = collections.Counter()
    for g in trees:
        cands = index.get((g["conn"][0], g["conn"][1], g["req"], g["resp"]),
                          [])
        if not cands:
            why["no trajectory for the request"] += 1
            continue
        reasons = [compare(g, a) for a in cands]
        if None in reasons:
            correct += 1
        else:
            why[reasons[0].split(" on ")[0]] += 1
        roots += any(root_ok(g, a) for a in cands)
    got = {(e["client"]["vm"], e["client"]["program"], e["server"]["vm"],
            e["server"]["program"], e["server"]["port"])
           for e in map_edges if e["server"]["port"] in s.ports}
    tp = len(got & edges_true)
    return {"scenario": s.name, "title": s.title, "requests": len(trees),
            "correct": correct, "roots": roots, "returned": len(trajs),
            "pct": 100.0 * correct / len(trees) if trees else 0.0,
            "precision": tp / len(got) if got else 0.0,
            "recall": tp / len(edges_true) if edges_true else 0.0,
            "target": s.target, "why": why.most_common(3),
            "extra_edges": sorted(got - edges_true),
            "missing_edges": sorted(edges_true - got)}


# --- the run --------------------------------------------------------------------

def run(scens, n, wd, log):
    cmds = vm_commands(scens)
    dport, hport = free_port(), free_port()
    procs = []
    t_start = time.time_ns()
    try:
        server = start_server(wd, wd / "db", dport, hport)
        procs.append(server)
        fwd = start_fwd(wd, dport, "acc-host", VMS)
        procs.append(fwd)
        with lab.Lab(net="bridge", workdir=wd / "lab") as l:
            guests = add_traced_guests(l, wd, VMS, cmds)
            l.start()
            for v in VMS:
                arm(guests[v])
            log(f"guests armed after {(time.time_ns() - t_start) / 1e9:.0f} s")
            rc = guests["client"].wait_done(timeout=60 + 3 * n * len(scens))
            console = guests["client"].console()
            failed = [ln.split()[1] for ln in console.splitlines()
                      if ln.startswith("FAILED ")]
            log(f"workload done after {(time.time_ns() - t_start) / 1e9:.0f}"
                f" s (rc {rc}{', failed: ' + ','.join(failed) if failed else ''})")
            api = Api(hport)
            # the servers' last lines and closes follow the client's end
            emitted = wait_stable(
                lambda: sum(guests[v].qmp.execute("x-query-appdep")
                            ["records-emitted"] for v in VMS),
                60, EMITTER_QUIET_S, "records emitted")

            def stored_now():
                return api.get("/v1/status")[1].get("store", {}) \
                    .get("records", -1)
            wait_until(lambda: stored_now() >= emitted, STORE_TIMEOUT,
                       step=0.5)
            stored = stored_now()
            calls, serves = [], []
            for v in VMS:
                for c in guests[v].records("CALL"):
                    calls.append(dict(c, vm=v))
                for x in guests[v].records("SERVE"):
                    serves.append(dict(x, vm=v))
        # the server converts what is left at exit; a fresh one answers
        fwd.stop()
        server.stop()
        hport = free_port()
        server = start_server(wd, wd / "db", free_port(), hport)
        procs.append(server)
        api = Api(hport)
        t_end = time.time_ns()
        st, m = api.get(f"/v1/map?from={t_start}&to={t_end}")
        assert st == 200, m
        rows = []
        for s in scens:
            vm, prog, port = s.front
            st, trajs = api.get(f"/v1/trajectories?app={vm}/{prog}:{port}"
                                f"&from={t_start}&to={t_end}&limit=1000")
            assert st == 200, trajs
            rows.append(evaluate(s, gt_trees(calls, serves, s), trajs,
                                 gt_edges(calls, serves, s), m["edges"]))
        ports = set().union(*(s.ports for s in scens))
        stray = [e for e in m["edges"] if e["server"]["port"] not in ports]
        return rows, stray, stored, emitted
    finally:
        for p in reversed(procs):
            p.stop()


def table(rows):
    out = ["| scenario | requests | correct | % | target | root exchange "
           "right | trajectories returned | map precision | map recall |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        tgt = f"{r['target']}%" if r["target"] is not None else "measured"
        out.append(f"| {r['scenario']} | {r['requests']} | {r['correct']} | "
                   f"{r['pct']:.1f} | {tgt} | {r['roots']} | {r['returned']} | "
                   f"{r['precision']:.2f} | {r['recall']:.2f} |")
    return "\n".join(out)


def meets(r):
    """The scenario's targets: exact map; with a trajectory target, that
    share right and no trajectory more than there were requests."""
    return r["requests"] > 0 and r["precision"] == 1.0 and \
        r["recall"] == 1.0 and (r["target"] is None or
                                (r["pct"] >= r["target"] and
                                 r["returned"] == r["requests"]))


def write_results(rows, stray, seconds, n):
    text = RESULTS.read_text() if RESULTS.exists() else ""
    begin, end = "<!-- accuracy-table-begin -->", "<!-- accuracy-table-end -->"
    block = (f"{begin}\nMeasured by `make accuracy` "
             f"({time.strftime('%Y-%m-%d')}, about {n} requests per "
             f"scenario, {seconds:.0f} s in all, 2 cores):\n\n{table(rows)}\n\n"
             f"Map edges outside every scenario: {len(stray)}.\n{end}")
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + \
            text[text.index(end) + len(end):]
    else:
        text = "# Trajectory accuracy\n\n" + block + "\n"
    RESULTS.write_text(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--short", action="store_true",
                    help="a few requests per scenario, TAP output")
    ap.add_argument("--requests", type=int, help="requests per scenario")
    ap.add_argument("--keep", action="store_true", help="keep the logs")
    ap.add_argument("--server", help="the appdep-server to test (default: "
                    "build/meson/server/appdep-server)")
    ap.add_argument("--list", action="store_true",
                    help="print the scenario names")
    ap.add_argument("names", nargs="*", metavar="NAME",
                    help="run only these scenarios")
    args = ap.parse_args()
    if args.server:
        pipeline.SERVER = Path(args.server).resolve()
    n = args.requests or (8 if args.short else 500)
    scens = scenarios(n)
    if args.list:
        for sc in scens:
            print(f"{sc.name:12s} {sc.title}")
        return 0
    unknown = set(args.names) - {sc.name for sc in scens}
    if unknown:
        print(f"no scenario named {sorted(unknown)[0]!r}; --list shows them",
              file=sys.stderr)
        return 2
    if args.names:
        scens = [sc for sc in scens if sc.name in args.names]
    # what make builds and the root the bridge needs: without them the
    # suite cannot run, which is a failure, not a skip
    missing = [f"{f} is missing (run make)"
               for f in (PROFILE, pipeline.SERVER, FWD) if not f.exists()]
    if os.geteuid() != 0:
        missing.append("the lab's bridge needs root")
    if missing:
        print(f"1..{len(missing)}")
        for i, why in enumerate(missing, 1):
            print(f"not ok {i} - prerequisite: {why}")
        return 1

    def log(msg):
        print(("# " if args.short else "") + msg, flush=True)

    wd = Path(tempfile.mkdtemp(prefix="appdep-accuracy-"))
    t0 = time.monotonic()
    try:
        rows, stray, stored, emitted = run(scens, n, wd, log)
    except Exception:
        print("1..1\nnot ok 1 - the accuracy lab ran")
        print("# " + traceback.format_exc().replace("\n", "\n# "))
        print(f"# logs in {wd}")
        return 1
    secs = time.monotonic() - t0
    log(f"{stored} records stored of {emitted} emitted, {secs:.0f} s")
    if args.short:
        print(f"1..{len(rows) + 1}")
        for i, r in enumerate(rows, 1):
            ok = meets(r)
            print(f"{'ok' if ok else 'not ok'} {i} - {r['scenario']}: "
                  f"{r['correct']}/{r['requests']} trajectories right, map "
                  f"P {r['precision']:.2f} R {r['recall']:.2f}")
            if not ok:
                print(f"# why: {r['why']} extra edges {r['extra_edges']} "
                      f"missing {r['missing_edges']}")
        print(f"{'ok' if not stray else 'not ok'} {len(rows) + 1} - no map "
              f"edge outside the scenarios ({len(stray)})")
    else:
        print(table(rows))
        for r in rows:
            if r["why"] or r["extra_edges"] or r["missing_edges"]:
                print(f"  {r['scenario']}: {r['why']} extra "
                      f"{r['extra_edges']} missing {r['missing_edges']}")
        print(f"map edges outside every scenario: {len(stray)}")
        if not args.names:         # the table is of every scenario
            write_results(rows, stray, secs, n)
            print(f"written to {RESULTS.relative_to(TOP)}")
    failed = not all(meets(r) for r in rows) or stray
    if args.keep or failed:
        print(f"# logs in {wd}")
    else:
        shutil.rmtree(wd, ignore_errors=True)
    return 1 if failed and args.short else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    sys.exit(main())
