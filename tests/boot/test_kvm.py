#!/usr/bin/env python3
"""Boot tests under KVM: the debug-register provider and the syscall layer.

The same scenarios as test_boot.py, with -accel kvm.  On hosts where
/dev/kvm exists but a KVM guest makes no progress (nested virtualization
that does not work, as on the project's CI machines), a bounded probe
finds that out first and every test is skipped with the reason.

TAP output. Run as root (like test_boot.py).  APPDEP_KVM_PROBE_S sets the
probe's bound (default 20 s).  test_kvm.py [NAME...] runs the named tests;
--list names them.  The probe's answer is the only reason a test here may
skip; a missing profile fails the suite.
"""

import os
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_boot as tb  # noqa: E402
from test_boot import lab  # noqa: E402
import tap  # noqa: E402  (test_boot put tests/lib on the path)

PROBE_S = float(os.environ.get("APPDEP_KVM_PROBE_S", lab.KVM_PROBE_TIMEOUT))

suite = tap.Suite(after_each=tb.Tracer.stop_all, timing=True)


def test(fn):
    """A test that needs a KVM guest to make progress."""
    fn.needs_progress = True
    return suite.test(fn)


def test_kvm_starts(fn):
    """A test that only needs KVM to start a VM (not to run it)."""
    fn.needs_progress = False
    return suite.test(fn)


@test_kvm_starts
def kvm_object_choice_and_refusals():
    """KVM: the object under -accel kvm; forced TCG refused, KVM-side errors"""
    with lab.Lab(accel="kvm") as l:
        tracer = tb.Tracer(l.workdir, "k")
        g = l.add("k", "true", appdep=lab.Appdep(str(tb.PROFILE),
                                                 str(tracer.sock)))
        l.start()
        info = g.qmp.execute("x-query-appdep")
        assert info["mechanism"] == "none" and not info["enabled"], info
        g.qmp.execute("qom-set", {"path": "/objects/appdep0",
                                  "property": "mechanism",
                                  "value": "tcg-translate"})
        try:
            g.qmp.execute("x-appdep-inspect", {"enable": True})
            raise AssertionError("tcg-translate accepted under KVM")
        except lab.QMPError as e:
            assert "needs the TCG accelerator; this VM runs KVM" in e.desc, e
        # the automatic choice is made (debug registers are counted), then
        # the guest kernel is checked: whether or not it runs here, the
        # answer is an error or an armed object, never a crash
        for m in ("auto", "syscall"):
            g.qmp.execute("qom-set", {"path": "/objects/appdep0",
                                      "property": "mechanism", "value": m})
            try:
                g.qmp.execute("x-appdep-inspect", {"enable": True})
                info = g.qmp.execute("x-query-appdep")
                assert info["mechanism"] in ("kvm-debugreg", "syscall-kvm")
                g.qmp.execute("x-appdep-inspect", {"enable": False})
            except lab.QMPError as e:
                assert "MSR_LSTAR" in e.desc, e
        assert g.alive()
        tracer.stop()
    return "choice made under KVM, refusals clear"


def kvm_pair(mechanism=None, **kw):
    props = {"mechanism": mechanism} if mechanism else None
    gt, recs, infos = tb.run_pair(accel="kvm", props=props, **kw)
    n = tb.compare(gt, recs["srv"] + recs["cli"])
    tb.check_seq([recs["srv"], recs["cli"]])
    for name, info in infos.items():
        assert info["records-dropped"] == 0, f"{name}: {info}"
        assert all(h["hits"] > 0 for h in info["hooks"]), info["hooks"]
    return n, infos


@test
def kvm_debugreg_thread_per_connection():
    """KVM: the TCP functions in debug registers (automatic choice)"""
    n, infos = kvm_pair(
        server_cmd="tcpsrv 8080 --reply-bytes 100",
        client_cmd="tcpcli 10.0.0.1 8080 --conns 3 --reqs 4 --bytes 64 "
                   "--reply-bytes 100 --threads 3",
        conns=3, reqs=4, nbytes=64, reply=100)
    for info in infos.values():
        assert info["mechanism"] == "kvm-debugreg", info
        assert "fit the 4 free debug registers" in info["mechanism-reason"]
    return f"{n} events matched"


@test
def kvm_debugreg_fork_smp2():
    """KVM: fork server on 2 vCPUs (every vCPU gets the debug state)"""
    n, infos = kvm_pair(
        server_cmd="tcpsrv 8080 --fork",
        client_cmd="tcpcli 10.0.0.1 8080 --conns 4 --reqs 3 --bytes 200 "
                   "--threads 4",
        conns=4, reqs=3, nbytes=200, reply=200, smp=2)
    return f"{n} events matched"


@test
def kvm_syscall_layer():
    """KVM: the syscall layer in 2 debug registers (forced)"""
    n, infos = kvm_pair(
        mechanism="syscall",
        server_cmd="tcpsrv 8080",
        client_cmd="tcpcli 10.0.0.1 8080 --conns 2 --reqs 3 --bytes 64 "
                   "--threads 2",
        conns=2, reqs=3, nbytes=64, reply=64)
    for info in infos.values():
        assert info["mechanism"] == "syscall-kvm", info
    return f"{n} events matched"


def gdb_packet(sock, payload):
    """Send one GDB remote-protocol packet; return the reply's payload."""
    csum = sum(payload.encode()) % 256
    sock.sendall(f"${payload}#{csum:02x}".encode())
    buf = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            raise lab.LabError("gdbstub closed the connection")
        buf += chunk
        start = buf.find(b"$")
        end = buf.find(b"#", start + 1)
        if start >= 0 and end >= 0 and len(buf) >= end + 3:
            sock.sendall(b"+")
            return buf[start + 1:end].decode()


@test
def kvm_gdb_cannot_take_appdep_slots():
    """KVM: with appdep's 3 debug registers armed, gdb gets 1, then an error"""
    port = lab.free_tcp_port()
    with lab.Lab(accel="kvm") as l:
        tracer = tb.Tracer(l.workdir, "gdb")
        g = l.add("gdb", "sleep 60", appdep=lab.Appdep(
            str(tb.PROFILE), str(tracer.sock)),
            extra_args=["-gdb", f"tcp:127.0.0.1:{port}"])
        l.start()
        g.wait_ready(timeout=60)
        tb.arm(g)
        info = g.qmp.execute("x-query-appdep")
        assert info["mechanism"] == "kvm-debugreg", info
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            gdb_packet(s, "?")
            base = 0xffffffff81000000 + info["kaslr-slide"]
            first = gdb_packet(s, f"Z1,{base:x},1")
            second = gdb_packet(s, f"Z1,{base + 16:x},1")
            gdb_packet(s, "z1,%x,1" % base)
            s.sendall(b"$c#63")         # resume; no reply until a stop
        assert first == "OK", first
        assert second.startswith("E"), second
        assert "appdep holds 3 of the 4 debug registers" in g.qemu_stderr()
        tracer.stop()
    return "gdb got the free slot, then an error naming appdep"


def main():
    if "--list" in sys.argv[1:]:
        return suite.main()
    if not tb.PROFILE.exists():
        return suite.main(require=[(False, f"a profile at {tb.PROFILE} "
                                    "(make lab)")])
    t0 = time.monotonic()
    usable, why = lab.kvm_usable(timeout=PROBE_S)
    print(f"# KVM probe ({time.monotonic() - t0:.0f}s): {why}", flush=True)
    startable = usable or "no progress" in why
    return suite.main(skip=lambda fn: None if (
        usable if fn.needs_progress else startable) else why)


if __name__ == "__main__":
    sys.exit(main())
