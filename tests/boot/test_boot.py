#!/usr/bin/python3
"""Boot tests: real Debian guests under TCG, traced by the patched QEMU.

The guest test programs print their own ground truth (GT lines: pid, tid,
comm, 4-tuple, op, bytes of every send/recv syscall and close).  Each
scenario compares it with the records appdep streamed, as multisets: every
expected event appears with the right pid, tid, comm, 4-tuple and byte
count, and nothing else is attributed to the test programs.  Sequence
numbers must advance by the bytes sent, and a receiver's sequence numbers
must be the sender's.

Prints TAP.  Run from the top directory after `make`.
test_boot.py [NAME...] runs the named tests (a NAME that is no test's
whole name selects every test containing it); --list names them.
"""

import atexit
import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP / "scripts" / "lab"))
sys.path.insert(0, str(TOP / "tests" / "lib"))
import lab  # noqa: E402
import tap  # noqa: E402
from wait import wait_for  # noqa: E402

BUILD = Path(os.environ.get("APPDEP_BUILD", TOP / "build"))
DUMP = BUILD / "meson" / "monitor" / "appdep-dump"
PROFILE = BUILD / "lab" / "profile.json"
PROGS = ("tcpcli", "tcpsrv")
ARM_TIMEOUT = 60
SETTLE_TIMEOUT = 10         # emitted records reach the tracer's file
CLOSE_TIMEOUT = 30          # a server's last close after its client's


class Tracer:
    """appdep-dump listening for one VM's records, writing JSON lines.

    Every tracer is stopped at exit, whatever happened to the test.
    """

    live = []

    def __init__(self, workdir, name):
        self.sock = Path(workdir) / f"{name}.rec.sock"
        self.out_path = Path(workdir) / f"{name}.records.jsonl"
        self.err_path = Path(workdir) / f"{name}.dump.log"
        self.raw_path = Path(workdir) / f"{name}.records.bin"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([str(DUMP), "--listen", str(self.sock),
                                          "--save", str(self.raw_path)],
                                         stdout=out, stderr=err)
        Tracer.live.append(self)
        deadline = time.monotonic() + 10
        while not self.sock.exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise lab.LabError(f"appdep-dump did not listen on {self.sock}")
            time.sleep(0.02)

    def records(self):
        with open(self.out_path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    @classmethod
    def stop_all(cls):
        for t in cls.live:
            t.stop()
        cls.live = []


atexit.register(Tracer.stop_all)


def arm(guest, timeout=ARM_TIMEOUT):
    """Enable inspection as soon as the guest kernel has set up LSTAR."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            guest.qmp.execute("x-appdep-inspect", {"enable": True})
            while True:         # skip the events of earlier switches
                ev = guest.qmp.wait_event("APPDEP_INSPECT")
                if ev["data"]["enabled"]:
                    assert ev["data"]["reason"] == "command", ev
                    return
        except lab.QMPError as e:
            if "MSR_LSTAR" not in e.desc or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def settle(guest, tracer, timeout=SETTLE_TIMEOUT):
    """Wait until every record QEMU emitted reached the tracer's file."""
    last = {}

    def arrived():
        last["info"] = guest.qmp.execute("x-query-appdep")
        return len(tracer.records()) >= last["info"]["records-emitted"]
    wait_for(arrived, timeout, f"{guest.name}: every emitted record at the "
             "tracer", step=0.1, detail=lambda: (
                 f"{last['info']['records-emitted']} emitted, "
                 f"{len(tracer.records())} received"))
    return last["info"]


def gt_key(e):
    return (e["op"], e["pid"], e["tid"], e["comm"], e["laddr"], e["lport"],
            e["raddr"], e["rport"], e["bytes"])


def rec_key(r):
    return (r["op"], r["pid"], r["tid"], r["comm"], r["saddr"], r["sport"],
            r["daddr"], r["dport"], r["bytes"])


def compare(gt, recs):
    """Multiset comparison of GT events and records of the test programs."""
    want = collections.Counter(gt_key(e) for e in gt
                               if e["op"] in ("send", "recv", "close"))
    got = collections.Counter(rec_key(r) for r in recs if r["comm"] in PROGS)
    missing = want - got
    spurious = got - want
    if missing or spurious:
        raise AssertionError(
            f"{sum(missing.values())} GT events not traced, "
            f"{sum(spurious.values())} spurious records\n"
            f"missing: {list(missing.items())[:5]}\n"
            f"spurious: {list(spurious.items())[:5]}")
    return sum(want.values())


def check_seq(recs_by_vm):
    """Per connection: sends are contiguous; the peer receives those bytes."""
    sends = collections.defaultdict(list)
    recvs = collections.defaultdict(list)
    for recs in recs_by_vm:
        for r in recs:
            if r["comm"] not in PROGS:
                continue
            conn = (r["saddr"], r["sport"], r["daddr"], r["dport"])
            if r["op"] == "send":
                sends[conn].append(r)
            elif r["op"] == "recv":
                recvs[conn].append(r)
    assert sends, "no send records"
    for conn, ss in sends.items():
        ss.sort(key=lambda r: r["time_ns"])
        for a, b in zip(ss, ss[1:]):
            assert (a["seq"] + a["bytes"]) % 2**32 == b["seq"], \
                f"{conn}: send seq {a['seq']}+{a['bytes']} then {b['seq']}"
        peer = (conn[2], conn[3], conn[0], conn[1])
        rs = sorted(recvs.get(peer, []), key=lambda r: r["time_ns"])
        assert rs, f"{conn}: peer has no recv records"
        assert rs[0]["seq"] == ss[0]["seq"], \
            f"{conn}: peer's first recv seq {rs[0]['seq']} != {ss[0]['seq']}"
        for a, b in zip(rs, rs[1:]):
            assert (a["seq"] + a["bytes"]) % 2**32 == b["seq"], \
                f"{peer}: recv seq {a['seq']}+{a['bytes']} then {b['seq']}"


def make_profile(vmlinuz, out):
    subprocess.run([str(BUILD / "meson/scripts/profile/appdep-profile"),
                    str(vmlinuz), "-o", str(out)], check=True,
                   capture_output=True)
    return out


def run_pair(server_cmd, client_cmd, conns, reqs, nbytes, reply, smp=1,
             armed=True, server_port=8080, kernel_dir=None, tamper=None,
             props=None, accel="tcg", after_arm=None):
    """Boot a server and a client VM, both traced; return what was seen.

    @tamper(profile_dict) edits the profile before use (bad offsets);
    @props are more appdep object properties (mechanism=syscall);
    @after_arm(srv, cli) runs once both are armed."""
    with lab.Lab(kernel_dir=kernel_dir, accel=accel) as l:
        profile = PROFILE
        if tamper:
            p = json.load(open(PROFILE))
            tamper(p)
            profile = Path(l.workdir) / "tampered.json"
            profile.write_text(json.dumps(p))
        if kernel_dir:
            profile = make_profile(
                next(Path(kernel_dir).glob("boot/vmlinuz-*")),
                Path(l.workdir) / "profile.json")
        tracers = {}
        guests = []
        for name, cmd in (("srv", server_cmd), ("cli", client_cmd)):
            tracers[name] = Tracer(l.workdir, name)
            guests.append(l.add(name, cmd, smp=smp, appdep=lab.Appdep(
                str(profile), str(tracers[name].sock), **(props or {})),
                extra_args=["-no-shutdown"]))
        srv, cli = guests
        l.start()
        if armed:
            for g in guests:
                arm(g)
        if after_arm:
            after_arm(srv, cli)
        assert cli.wait_done(timeout=240) == 0, "client failed"
        # the server's last close comes a moment after the client's
        wait_for(lambda: sum(1 for e in srv.gt() if e["op"] == "close") >=
                 conns, CLOSE_TIMEOUT, "server's closes", step=0.2)
        infos = {g.name: settle(g, tracers[g.name]) for g in guests}
        recs = {n: t.records() for n, t in tracers.items()}
        for t in tracers.values():
            t.stop()
        gt = srv.gt() + cli.gt()
        lab.check_exchange(cli.gt(), srv.gt(), conns, reqs, nbytes, reply,
                           server_port)
        return gt, recs, infos


suite = tap.Suite(after_each=Tracer.stop_all, timing=True)
test = suite.test


@test
def thread_per_connection():
    """client and thread-per-connection server in two VMs"""
    gt, recs, infos = run_pair(
        "tcpsrv 8080 --reply-bytes 100",
        "tcpcli 10.0.0.1 8080 --conns 3 --reqs 4 --bytes 64 "
        "--reply-bytes 100 --threads 3",
        conns=3, reqs=4, nbytes=64, reply=100)
    n = compare(gt, recs["srv"] + recs["cli"])
    check_seq([recs["srv"], recs["cli"]])
    srv_tids = {e["tid"] for e in gt if e["prog"] == "tcpsrv" and
                e["op"] == "send"}
    assert len(srv_tids) == 3, f"server threads {srv_tids}"
    for name, info in infos.items():
        assert info["records-dropped"] == 0, f"{name}: {info}"
        assert info["mechanism"] == "tcg-translate"
        assert all(h["hits"] > 0 for h in info["hooks"]), info["hooks"]
    assert all(r["vm"] in ("srv", "cli") for r in recs["srv"] + recs["cli"])
    return f"{n} events matched"


@test
def fork_server():
    """process-per-connection (fork) server"""
    gt, recs, infos = run_pair(
        "tcpsrv 8080 --fork",
        "tcpcli 10.0.0.1 8080 --conns 3 --reqs 3 --bytes 200",
        conns=3, reqs=3, nbytes=200, reply=200)
    n = compare(gt, recs["srv"] + recs["cli"])
    check_seq([recs["srv"], recs["cli"]])
    pids = {r["pid"] for r in recs["srv"] if r["comm"] == "tcpsrv" and
            r["op"] == "send"}
    assert len(pids) == 3, f"expected 3 server processes, got {pids}"
    return f"{n} events matched, {len(pids)} server processes"


@test
def smp2_threads_on_both_vcpus():
    """2-vCPU guests (MTTCG), client threads pinned to both vCPUs"""
    gt, recs, infos = run_pair(
        "tcpsrv 8080",
        "tcpcli 10.0.0.1 8080 --conns 4 --reqs 5 --bytes 64 --threads 4",
        conns=4, reqs=5, nbytes=64, reply=64, smp=2)
    n = compare(gt, recs["srv"] + recs["cli"])
    check_seq([recs["srv"], recs["cli"]])
    cpus = {e["cpu"] for e in gt if e["prog"] == "tcpcli"}
    assert cpus == {0, 1}, f"client threads ran on CPUs {cpus}"
    return f"{n} events matched on CPUs {sorted(cpus)}"


@test
def vcpu_hotplug():
    """a vCPU hot-plugged while armed gets a ring; its threads are traced"""
    def plug(srv, cli):
        slot = next(c for c in cli.qmp.execute("query-hotpluggable-cpus")
                    if "qom-path" not in c)
        cli.qmp.execute("device_add", dict(slot["props"], driver=slot["type"],
                                           id="cpu1"))
    gt, recs, infos = run_pair(
        "tcpsrv 8080",
        "while [ ! -e /sys/devices/system/cpu/cpu1/online ]; do sleep 0.1; "
        "done; echo 1 > /sys/devices/system/cpu/cpu1/online; "
        "tcpcli 10.0.0.1 8080 --conns 2 --reqs 4 --bytes 64 --threads 2",
        conns=2, reqs=4, nbytes=64, reply=64, smp="1,maxcpus=2",
        after_arm=plug)
    n = compare(gt, recs["srv"] + recs["cli"])
    check_seq([recs["srv"], recs["cli"]])
    # every event matched, and the client's threads ran on both vCPUs
    vcpus = {e["cpu"] for e in gt if e["prog"] == "tcpcli"}
    assert vcpus == {0, 1}, f"client threads ran on CPUs {vcpus}"
    assert infos["cli"]["records-dropped"] == 0, infos["cli"]
    return f"{n} events matched, client on vCPUs {sorted(vcpus)}"


@test
def ipv6():
    """IPv6 connections (client and server on fd00::/64)"""
    gt, recs, infos = run_pair(
        "tcpsrv 8080",
        "tcpcli fd00::1 8080 --conns 2 --reqs 3 --bytes 64 --ipv6",
        conns=2, reqs=3, nbytes=64, reply=64)
    n = compare(gt, recs["srv"] + recs["cli"])
    check_seq([recs["srv"], recs["cli"]])
    fams = {r["family"] for r in recs["cli"] if r["comm"] == "tcpcli"}
    assert fams == {"ipv6"}, fams
    return f"{n} events matched"


@test
def kernel_6_12():
    """bookworm-backports 6.12 guests (pcpu_hot, IBT, other offsets)"""
    dirs = sorted((BUILD / "kernels").glob(
        "linux-image-6.12*-cloud-amd64-unsigned"))
    # scripts/lab/fetch-kernels.sh fetches it: missing is a failure
    assert dirs, "no 6.12 kernel in build/kernels"
    gt, recs, infos = run_pair(
        "tcpsrv 8080",
        "tcpcli 10.0.0.1 8080 --conns 2 --reqs 3 --bytes 100 --threads 2",
        conns=2, reqs=3, nbytes=100, reply=100, kernel_dir=dirs[-1])
    n = compare(gt, recs["srv"] + recs["cli"])
    check_seq([recs["srv"], recs["cli"]])
    assert "6.12" in infos["cli"]["banner"], infos["cli"]["banner"]
    return f"{n} events matched on {infos['cli']['banner'][14:40]}"


def syscall_layer(**kw):
    """run_pair() with the syscall-layer provider forced; checks its report."""
    gt, recs, infos = run_pair(props={"mechanism": "syscall"}, **kw)
    for name, info in infos.items():
        assert info["mechanism"] == "syscall-tcg", f"{name}: {info}"
        assert "forced by mechanism=syscall" in info["mechanism-reason"], \
            info["mechanism-reason"]
        hooks = {h["function"]: h["hits"] for h in info["hooks"]}
        assert set(hooks) == {"do_syscall_64", "syscall_return_site"}, hooks
        assert all(hooks.values()), hooks
        assert info["records-dropped"] == 0, f"{name}: {info}"
    return gt, recs, infos


@test
def syscall_layer_thread_per_connection():
    """syscall layer: the same records as the function hooks (threads)"""
    gt, recs, infos = syscall_layer(
        server_cmd="tcpsrv 8080 --reply-bytes 100",
        client_cmd="tcpcli 10.0.0.1 8080 --conns 3 --reqs 4 --bytes 64 "
                   "--reply-bytes 100 --threads 3",
        conns=3, reqs=4, nbytes=64, reply=100)
    n = compare(gt, recs["srv"] + recs["cli"])
    check_seq([recs["srv"], recs["cli"]])
    return f"{n} events matched"


@test
def syscall_layer_fork_server():
    """syscall layer: fork server (the parent's close is not the last)"""
    gt, recs, infos = syscall_layer(
        server_cmd="tcpsrv 8080 --fork",
        client_cmd="tcpcli 10.0.0.1 8080 --conns 3 --reqs 3 --bytes 200",
        conns=3, reqs=3, nbytes=200, reply=200)
    n = compare(gt, recs["srv"] + recs["cli"])
    check_seq([recs["srv"], recs["cli"]])
    return f"{n} events matched"


@test
def syscall_layer_ipv6_smp2():
    """syscall layer: IPv6, 2 vCPUs"""
    gt, recs, infos = syscall_layer(
        server_cmd="tcpsrv 8080",
        client_cmd="tcpcli fd00::1 8080 --conns 2 --reqs 3 --bytes 64 "
                   "--ipv6 --threads 2",
        conns=2, reqs=3, nbytes=64, reply=64, smp=2)
    n = compare(gt, recs["srv"] + recs["cli"])
    check_seq([recs["srv"], recs["cli"]])
    return f"{n} events matched"


@test
def syscall_layer_kernel_6_12():
    """syscall layer on the 6.12 kernel"""
    dirs = sorted((BUILD / "kernels").glob(
        "linux-image-6.12*-cloud-amd64-unsigned"))
    # scripts/lab/fetch-kernels.sh fetches it: missing is a failure
    assert dirs, "no 6.12 kernel in build/kernels"
    gt, recs, infos = syscall_layer(
        server_cmd="tcpsrv 8080",
        client_cmd="tcpcli 10.0.0.1 8080 --conns 2 --reqs 3 --bytes 100 "
                   "--threads 2",
        conns=2, reqs=3, nbytes=100, reply=100, kernel_dir=dirs[-1])
    n = compare(gt, recs["srv"] + recs["cli"])
    check_seq([recs["srv"], recs["cli"]])
    return f"{n} events matched"


@test
def wrong_profile_refused():
    """a profile of another kernel build is refused, naming both banners"""
    generic = sorted((BUILD / "kernels").glob(
        "linux-image-6.1.*-amd64-unsigned/boot/vmlinuz-*"))
    generic = [g for g in generic if "cloud" not in g.name]
    # scripts/lab/fetch-kernels.sh fetches it: missing is a failure
    assert generic, "no generic 6.1 kernel in build/kernels"
    with lab.Lab() as l:
        other = make_profile(generic[-1], Path(l.workdir) / "generic.json")
        t = Tracer(l.workdir, "g")
        g = l.add("g", "sleep 5", appdep=lab.Appdep(str(other), str(t.sock)),
                  extra_args=["-no-shutdown"])
        l.start()
        try:
            arm(g)
        except lab.QMPError as e:
            # the generic build's linux_banner address holds something
            # else in the cloud kernel: the error says what it expected
            assert "does not match the profile" in e.desc, e.desc
            want = json.load(open(other))["banner"]
            assert f"expected '{want}'" in e.desc, e.desc
            assert "found '" in e.desc, e.desc
            info = g.qmp.execute("x-query-appdep")
            assert not info["enabled"], info
            t.stop()
            return "refused: " + e.desc[:60] + "..."
        raise AssertionError("armed with the wrong profile")


@test
def garbage_never_hurts():
    """wrong offsets make QEMU read garbage: counted, the guest unharmed"""
    def tamper(p):
        # per-cpu cross-check fails on every event
        p["symbols"]["this_cpu_off"] = hex(int(p["symbols"]["this_cpu_off"],
                                               16) + 8)
    gt, recs, infos = run_pair(
        "tcpsrv 8080",
        "tcpcli 10.0.0.1 8080 --conns 2 --reqs 5 --bytes 64",
        conns=2, reqs=5, nbytes=64, reply=64, tamper=tamper)
    for name, info in infos.items():
        assert info["enabled"] and info["records-emitted"] == 0, info
        assert info["drops"]["bad-guest-memory"] >= 10, info
    assert not recs["srv"] and not recs["cli"]

    def tamper2(p):
        # pointers and strings read from the wrong places
        o = p["offsets"]
        o["task_struct.comm"] = 0xfff0
        o["sock_common.skc_family"] = 0x7ff
        o["tcp_sock.write_seq"] = 3
    gt, recs, infos = run_pair(
        "tcpsrv 8080",
        "tcpcli 10.0.0.1 8080 --conns 2 --reqs 5 --bytes 64",
        conns=2, reqs=5, nbytes=64, reply=64, tamper=tamper2)
    # every hook hit is accounted for: a record, a filtered event or a
    # counted drop (and the guests' exchanges completed, in run_pair)
    for name, info in infos.items():
        hits = sum(h["hits"] for h in info["hooks"])
        assert hits > 0 and hits == info["records-emitted"] + \
            info["records-filtered"] + info["records-dropped"], (name, info)
    junk = (f"junk offsets: "
            f"{sum(i['records-emitted'] for i in infos.values())} emitted, "
            f"{sum(i['records-filtered'] for i in infos.values())} filtered")

    def tamper3(p):
        # the syscall layer walks the file table and pt_regs from the wrong
        # places: pointers into anything, fds resolved to junk
        o = p["offsets"]
        o["task_struct.files"] = 0x10
        o["fdtable.fd"] = 0x7f8
        o["pt_regs.di"] = 0
        o["pt_regs.orig_ax"] = 0x48
    gt, recs, infos = run_pair(
        "tcpsrv 8080",
        "tcpcli 10.0.0.1 8080 --conns 2 --reqs 5 --bytes 64",
        conns=2, reqs=5, nbytes=64, reply=64, tamper=tamper3,
        props={"mechanism": "syscall"})
    for name, info in infos.items():
        hits = sum(h["hits"] for h in info["hooks"])
        assert info["mechanism"] == "syscall-tcg", info
        assert hits > 0 and hits == info["records-emitted"] + \
            info["records-filtered"] + info["records-dropped"], (name, info)
    return (f"cross-check failures dropped; {junk}; syscall layer on junk: "
            f"{sum(i['records-dropped'] for i in infos.values())} dropped")


ANALYZE = BUILD / "meson" / "server" / "appdep-analyze"


@test
def three_tier_map_and_trajectories():
    """client -> web -> app: exact map edges, nested trajectories"""
    reqs, conns = 3, 2
    with lab.Lab(net="bridge") as l:
        names = ("client", "web", "app")
        cmds = {
            "app": "tcpsrv 9090 --reply-bytes 300",
            "web": "tcpsrv 8080 --reply-bytes 500 --upstream "
                   "10.0.0.3:9090 --upstream-bytes 120",
            "client": f"tcpcli 10.0.0.2 8080 --conns {conns} --threads 2 "
                      f"--reqs {reqs} --bytes 80 --reply-bytes 500 "
                      "--connect-timeout 60",
        }
        tracers = {n: Tracer(l.workdir, n) for n in names}
        guests = {n: l.add(n, cmds[n], appdep=lab.Appdep(
            str(PROFILE), str(tracers[n].sock)), extra_args=["-no-shutdown"])
            for n in names}
        l.start()
        for n in names:
            arm(guests[n])
        assert guests["client"].wait_done(timeout=240) == 0, "client failed"
        wait_for(lambda: sum(1 for e in guests["web"].gt()
                             if e["op"] == "close") >= conns + conns * reqs,
                 CLOSE_TIMEOUT, "web's closes", step=0.2)
        for n in names:
            settle(guests[n], tracers[n])
        Tracer.stop_all()
        p = subprocess.run([str(ANALYZE), "--json", "--app",
                            "web/tcpsrv:8080", "--trajectories", "100",
                            *[str(tracers[n].raw_path) for n in names]],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        out = json.loads(p.stdout)
    edges = {(e["client"]["vm"], e["client"]["program"], e["server"]["vm"],
              e["server"]["program"], e["server"]["port"]): e
             for e in out["map"]["edges"]}
    assert set(edges) == {("client", "tcpcli", "web", "tcpsrv", 8080),
                          ("web", "tcpsrv", "app", "tcpsrv", 9090)}, edges
    assert edges[("client", "tcpcli", "web", "tcpsrv", 8080)]["calls"] == \
        conns * reqs
    assert edges[("web", "tcpsrv", "app", "tcpsrv", 9090)]["calls"] == \
        conns * reqs
    trajs = out["trajectories"]
    assert len(trajs) == conns * reqs, len(trajs)

    def nested(n):
        for c in n["children"]:
            assert n["start_ns"] <= c["start_ns"] <= c["end_ns"] <= \
                n["end_ns"], (n, c)
            nested(c)
    for t in trajs:
        assert t["server"]["vm"] == "web" and t["client"]["vm"] == "client"
        assert len(t["children"]) == 1, t
        child = t["children"][0]
        assert child["server"]["vm"] == "app" and not child["children"]
        assert child["client"]["tid"] == t["server"]["tid"], t
        assert t["request_bytes"] == 80 and t["response_bytes"] == 500
        assert child["request_bytes"] == 120
        assert child["response_bytes"] == 300
        nested(t)
    return f"{len(edges)} edges, {len(trajs)} trajectories of depth 2"


@test
def inspection_off_no_records():
    """with the object present but inspection off, no records"""
    gt, recs, infos = run_pair(
        "tcpsrv 8080",
        "tcpcli 10.0.0.1 8080 --conns 1 --reqs 3 --bytes 64",
        conns=1, reqs=3, nbytes=64, reply=64, armed=False)
    assert not recs["srv"] and not recs["cli"], recs
    for info in infos.values():
        assert not info["enabled"] and info["records-emitted"] == 0, info
    return "0 records"


def main():
    return suite.main(require=[(PROFILE.exists(),
                                f"a profile at {PROFILE} (make lab)")])


if __name__ == "__main__":
    sys.exit(main())
