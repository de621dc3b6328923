#!/usr/bin/python3
"""appdep guest lab: boot small Linux guests under TCG and let them talk TCP.

Library (python3 stdlib only) and CLI. Each guest boots the Debian cloud 6.1
kernel with the lab initramfs (scripts/lab/mkinitramfs.sh), configures eth0,
runs one shell snippet and powers off. Its serial console goes to a file;
the test programs in it (tests/guest) print "GT {...}" ground-truth lines.

Networking keeps every packet on this machine:
  1 guest     a QEMU hub port with no peer (the guest only talks to itself)
  2 guests    -netdev stream, point to point over 127.0.0.1
  3+ guests   taps on a bridge inside a network namespace made for the lab
              (needs root and /dev/net/tun); QEMU runs in that namespace

Example (from a Python test):

    import sys; sys.path.insert(0, "scripts/lab")
    import lab
    with lab.Lab() as l:
        srv = l.add("srv", "tcpsrv 8080")
        cli = l.add("cli", f"tcpcli {srv.ip} 8080 --conns 2 --reqs 3 --bytes 64")
        l.start()
        assert cli.wait_done(timeout=120) == 0
        sends = [g for g in cli.gt() if g["op"] == "send"]

Environment: APPDEP_QEMU (QEMU binary, default
build/qemu-build/qemu-system-x86_64), APPDEP_BUILD (build directory),
APPDEP_LAB_KEEP=1 (keep the work directory with logs and sockets).
"""

import argparse
import atexit
import base64
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP / "tests" / "lib"))
from qmp import QMP, QMPError  # noqa: E402,F401
from wait import HarnessError  # noqa: E402
BUILD = Path(os.environ.get("APPDEP_BUILD", TOP / "build"))
DEFAULT_QEMU = BUILD / "qemu-build" / "qemu-system-x86_64"
MKINITRAMFS = TOP / "scripts" / "lab" / "mkinitramfs.sh"
KERNEL_GLOB = "linux-image-6.1.*-cloud-amd64-unsigned"
FIRMWARE_DIRS = ("/usr/share/seabios", "/usr/share/qemu", "/usr/lib/ipxe/qemu")
NETNS_PREFIX = "appdep-lab-"

READY_RE = r"APPDEP-LAB-READY uptime=([0-9.]+)"
DONE_RE = r"APPDEP-LAB-DONE rc=(\d+)"
GT_LINE_RE = re.compile(r"^(GT|BENCH|DONE|LISTEN|CALL|SERVE) (\{.*\})\s*$")

STOP_TIMEOUT = 10.0         # quit → exit, before SIGTERM/SIGKILL
KVM_PROBE_TIMEOUT = 20.0    # a KVM guest that has no userland by then hangs
CMD_TIMEOUT = 30.0          # one helper command (ip, mkinitramfs.sh)
POLL_INTERVAL = 0.05
MAX_CMDLINE = 2000          # x86 COMMAND_LINE_SIZE is 2048


# Anything that went wrong in the lab; the message says what and where.
# The same class as the QMP client's errors, so one except catches both.
LabError = HarnessError


class GuestTimeout(LabError):
    """A guest did not print what was waited for in time."""


def _run(argv, timeout=CMD_TIMEOUT, check=True):
    """Run a helper command; LabError with its output when it fails."""
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LabError(f"{' '.join(argv)}: no answer in {timeout:.0f} s") from None
    except FileNotFoundError:
        raise LabError(f"{argv[0]}: not found") from None
    if check and p.returncode != 0:
        raise LabError(f"{' '.join(argv)}: exit {p.returncode}: "
                       f"{(p.stderr or p.stdout).strip()}")
    return p


def qemu_binary(path=None):
    """The QEMU to run: @path, $APPDEP_QEMU or the tree's build."""
    q = Path(path or os.environ.get("APPDEP_QEMU") or DEFAULT_QEMU)
    if not (q.is_file() and os.access(q, os.X_OK)):
        raise LabError(f"QEMU binary {q} missing: build it (scripts/qemu.sh "
                       "build) or set APPDEP_QEMU")
    return q


def _version_key(path):
    return [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", path.name)]


def build_images(kernel_dir=None):
    """Make sure the guest kernel and initramfs exist; return (vmlinuz, initrd).

    Runs scripts/lab/mkinitramfs.sh, which is incremental and fetches the
    kernel (scripts/lab/fetch-kernels.sh) when there is none.
    """
    argv = [str(MKINITRAMFS)]
    if kernel_dir:
        kernel_dir = Path(kernel_dir).resolve()    # QEMU runs in the workdir
        argv += ["--kernel-dir", str(kernel_dir)]
    p = _run(argv, timeout=600)
    initrd = Path(p.stdout.strip().splitlines()[-1]).resolve()
    if kernel_dir is None:
        dirs = sorted((BUILD / "kernels").glob(KERNEL_GLOB), key=_version_key)
        if not dirs:
            raise LabError(f"no {BUILD}/kernels/{KERNEL_GLOB}")
        kernel_dir = dirs[-1]
    kernels = sorted(Path(kernel_dir, "boot").glob("vmlinuz-*"), key=_version_key)
    if not kernels:
        raise LabError(f"{kernel_dir}/boot: no vmlinuz-*")
    return kernels[-1], initrd


def free_tcp_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    """preexec_fn: SIGKILL the child when the lab process dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)        # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Appdep:
    """The appdep object of one guest (-object appdep,...).

    @socket is the unix socket the record chardev connects to (the consumer
    must listen there before the guest starts); @props are extra object
    properties (name → value).
    """

    def __init__(self, profile, socket_path, vm=None, **props):
        self.profile, self.socket, self.vm, self.props = profile, socket_path, vm, props

    def args(self, default_vm):
        obj = f"appdep,id=appdep0,chardev=adrec,profile={self.profile}," \
              f"vm={self.vm or default_vm}"
        for k, v in self.props.items():
            obj += f",{k}={v}"
        return ["-chardev", f"socket,id=adrec,path={self.socket},server=off",
                "-object", obj]


class Guest:
    """One VM of a Lab. Made by Lab.add(); started by Lab.start().

    Attributes: name, index, ip / ip6 (without prefix length), cmd, smp,
    console_path (serial log), qmp (QMP, connected once started), proc.
    """

    def __init__(self, lab, name, index, cmd, smp, mem, appdep, extra_args,
                 append, cpu):
        self.lab, self.name, self.index, self.cmd = lab, name, index, cmd
        self.smp, self.mem, self.appdep, self.cpu = smp, mem, appdep, cpu
        self.extra_args, self.append = list(extra_args), append
        self.ip = f"10.0.0.{index + 1}"
        self.ip6 = f"fd00::{index + 1:x}"
        self.mac = f"52:54:00:ad:00:{index + 1:02x}"
        wd = lab.workdir
        self.console_path = wd / f"{name}.console.log"
        self.stderr_path = wd / f"{name}.qemu.log"
        self.qmp_path = wd / f"{name}.qmp"
        self.qmp = None
        self.proc = None
        self.started_at = None
        self._console = ""
        self._console_off = 0
        self.bad_lines = 0

    # --- command line -----------------------------------------------------

    def kernel_cmdline(self):
        parts = ["console=ttyS0", "quiet", "panic=-1",
                 f"appdep.hostname={self.name}",
                 f"appdep.ip={self.ip}/24", f"appdep.ip6={self.ip6}/64"]
        if self.cmd is not None:
            parts.append("appdep.run=" + base64.b64encode(self.cmd.encode()).decode())
        if self.append:
            parts.append(self.append)
        line = " ".join(parts)
        if len(line) > MAX_CMDLINE:
            raise LabError(f"{self.name}: kernel command line too long "
                           f"({len(line)} > {MAX_CMDLINE}): shorten the command")
        return line

    def argv(self, netdev):
        """QEMU's argv, with @netdev the -netdev value for id n0."""
        a = [str(self.lab.qemu),
             "-name", self.name,
             "-machine", "q35", "-accel", self.lab.accel_arg(),
             "-smp", str(self.smp), "-m", str(self.mem),
             "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
             "-kernel", str(self.lab.vmlinuz), "-initrd", str(self.lab.initrd),
             "-append", self.kernel_cmdline(),
             "-serial", f"file:{self.console_path}",
             "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
             "-netdev", netdev,
             "-device", f"virtio-net-pci,netdev=n0,romfile=,mac={self.mac}"]
        if self.cpu:
            a += ["-cpu", self.cpu]
        for d in FIRMWARE_DIRS:
            if os.path.isdir(d):
                a += ["-L", d]
        if self.appdep:
            a += self.appdep.args(self.name)
        return a + self.extra_args

    # --- lifecycle --------------------------------------------------------

    def start(self, netdev, prefix=()):
        """Start QEMU (under @prefix, e.g. ip netns exec) and connect QMP."""
        argv = list(prefix) + self.argv(netdev)
        self.lab._log(f"{self.name}: {' '.join(argv)}")
        self.console_path.write_bytes(b"")
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=subprocess.STDOUT,
                                         cwd=self.lab.workdir,
                                         preexec_fn=_die_with_parent)
        self.started_at = time.monotonic()
        self.qmp = QMP(self.qmp_path)
        try:
            self.qmp.connect(alive=self.alive)
        except LabError as e:
            raise LabError(f"{self.name}: QEMU did not come up: {e}\n"
                           f"{self.qemu_stderr()}") from None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=STOP_TIMEOUT):
        """Stop QEMU: QMP quit, then SIGTERM, then SIGKILL. Idempotent."""
        if self.proc is None:
            return
        if self.alive() and self.qmp and self.qmp.sock:
            try:
                self.qmp.execute("quit", timeout=2.0)
            except LabError:
                pass
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None and self.alive():
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout if sig is None else 3.0)
                break
            except subprocess.TimeoutExpired:
                continue
        if self.qmp:
            self.qmp.close()

    # --- output -------------------------------------------------------------

    def console(self):
        """The serial console so far (\\r removed)."""
        try:
            with open(self.console_path, "rb") as f:
                f.seek(self._console_off)
                data = f.read()
        except FileNotFoundError:
            return self._console
        self._console_off += len(data)
        self._console += data.decode("utf-8", "replace").replace("\r", "")
        return self._console

    def qemu_stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace").strip()
        except FileNotFoundError:
            return ""

    def _tail(self, n=25):
        lines = self.console().splitlines()[-n:]
        return "\n".join(f"  | {l}" for l in lines)

    def wait_for(self, regex, timeout):
        """Wait until the console matches @regex (multiline); return the match.

        Raises GuestTimeout after @timeout seconds and LabError when QEMU
        exits first; both show the end of the console.
        """
        pat = re.compile(regex, re.M)
        deadline = time.monotonic() + timeout
        while True:
            m = pat.search(self.console())
            if m:
                return m
            if not self.alive():
                m = pat.search(self.console())
                if m:
                    return m
                rc = self.proc.returncode if self.proc else None
                raise LabError(f"{self.name}: QEMU exited (rc {rc}) before "
                               f"/{regex}/\n{self._tail()}\n{self.qemu_stderr()}")
            if time.monotonic() >= deadline:
                raise GuestTimeout(f"{self.name}: no /{regex}/ within "
                                   f"{timeout:.0f} s\n{self._tail()}")
            time.sleep(POLL_INTERVAL)

    def wait_ready(self, timeout=60):
        """Wait for APPDEP-LAB-READY; return host seconds since start."""
        self.wait_for(READY_RE, timeout)
        return time.monotonic() - self.started_at

    def guest_uptime_at_ready(self):
        m = re.search(READY_RE, self.console())
        return float(m.group(1)) if m else None

    def wait_done(self, timeout=120):
        """Wait for the command's end; return its exit status."""
        return int(self.wait_for(DONE_RE, timeout).group(1))

    def records(self, kind="GT"):
        """Parsed "KIND {json}" lines in order (GT, BENCH, DONE, LISTEN;
        CALL and SERVE of the workload programs, tests/guest/wl.h).

        Lines garbled by kernel messages on the same console are skipped and
        counted in .bad_lines.
        """
        out, self.bad_lines = [], 0
        for line in self.console().splitlines():
            m = GT_LINE_RE.match(line.strip())
            if not m:
                if line.lstrip().startswith(kind + " "):
                    self.bad_lines += 1
                continue
            if m.group(1) != kind:
                continue
            try:
                out.append(json.loads(m.group(2)))
            except ValueError:
                self.bad_lines += 1
        return out

    def gt(self):
        """Ground-truth lines of the guest's test programs, as dicts."""
        return self.records("GT")

    def bench(self):
        """The last BENCH line as a dict, or None."""
        b = self.records("BENCH")
        return b[-1] if b else None


class Lab:
    """A set of guests and their network. Use as a context manager.

    @net: "auto" (1 → none, 2 → stream, 3+ → bridge), "stream" (2 guests),
    "bridge" (netns + bridge + taps; root), "none".
    @workdir: where logs and sockets go (default: a fresh temporary
    directory, removed on success unless @keep or APPDEP_LAB_KEEP=1; kept
    and reported when the block raised).
    """

    _live = weakref.WeakSet()

    def __init__(self, net="auto", workdir=None, keep=None, qemu=None,
                 kernel_dir=None, verbose=False, accel="tcg"):
        if accel not in ("tcg", "kvm"):
            raise LabError(f"unknown accelerator {accel!r}")
        self.net = net
        self.accel = accel
        self.qemu = qemu_binary(qemu)
        self.kernel_dir = kernel_dir
        self.verbose = verbose
        self.keep = keep if keep is not None else os.environ.get("APPDEP_LAB_KEEP") == "1"
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="appdep-lab-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.guests = []
        self.netns = None
        self.vmlinuz = self.initrd = None
        self._stopped = False
        Lab._live.add(self)

    def accel_arg(self):
        return "tcg,thread=multi" if self.accel == "tcg" else "kvm"

    def _log(self, msg):
        if self.verbose:
            print(f"appdep-lab: {msg}", file=sys.stderr, flush=True)

    def add(self, name=None, cmd=None, smp=1, mem=256, appdep=None,
            extra_args=(), append="", cpu=None):
        """Declare a guest (before start()). @cmd is a shell snippet run by
        the guest's /init; @appdep an Appdep or None. Guest i (from 0) gets
        10.0.0.(i+1)/24 and fd00::(i+1)/64."""
        if self.vmlinuz is not None:
            raise LabError("add() after start()")
        i = len(self.guests)
        g = Guest(self, name or f"vm{i + 1}", i, cmd, smp, mem, appdep,
                  extra_args, append, cpu)
        self.guests.append(g)
        return g

    def _net_mode(self):
        n = len(self.guests)
        mode = self.net
        if mode == "auto":
            mode = "none" if n == 1 else "stream" if n == 2 else "bridge"
        if mode == "stream" and n != 2:
            raise LabError(f"stream networking joins exactly 2 guests, not {n}")
        return mode

    def start(self):
        """Build the images, set up the network, start every guest."""
        if not self.guests:
            raise LabError("no guests: call add() first")
        self.vmlinuz, self.initrd = build_images(self.kernel_dir)
        mode = self._net_mode()
        if mode == "none":
            for g in self.guests:
                g.start(f"hubport,id=n0,hubid={g.index}")
        elif mode == "stream":
            port = free_tcp_port()
            addr = f"addr.type=inet,addr.host=127.0.0.1,addr.port={port}"
            # The server's QMP answering proves its socket listens: only
            # then may the client connect.
            self.guests[0].start(f"stream,id=n0,server=on,{addr}")
            self.guests[1].start(f"stream,id=n0,server=off,{addr}")
        elif mode == "bridge":
            self._make_netns()
            prefix = ["ip", "netns", "exec", self.netns]
            for g in self.guests:
                g.start(f"tap,id=n0,ifname=tap{g.index},script=no,downscript=no",
                        prefix)
        else:
            raise LabError(f"unknown net mode {mode!r}")
        return self

    def _make_netns(self):
        if os.geteuid() != 0:
            raise LabError("bridge networking (3+ guests) needs root")
        if not os.path.exists("/dev/net/tun"):
            raise LabError("bridge networking needs /dev/net/tun")
        cleanup_stale_netns()
        ns = f"{NETNS_PREFIX}{os.getpid()}-{id(self) & 0xffff:x}"
        _run(["ip", "netns", "add", ns])
        self.netns = ns
        ip = ["ip", "-n", ns]
        _run(ip + ["link", "set", "lo", "up"])
        _run(ip + ["link", "add", "br0", "type", "bridge", "stp_state", "0",
                   "forward_delay", "0", "mcast_snooping", "0"])
        for g in self.guests:
            tap = f"tap{g.index}"
            _run(ip + ["tuntap", "add", "dev", tap, "mode", "tap"])
            _run(ip + ["link", "set", tap, "master", "br0", "up"])
        _run(ip + ["link", "set", "br0", "up"])
        self._log(f"netns {ns}: br0 + {len(self.guests)} taps")

    def stop(self):
        """Stop every guest and remove the network. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        errors = []
        for g in self.guests:
            try:
                g.stop()
            except Exception as e:     # keep cleaning up the others
                errors.append(f"{g.name}: {e}")
        if self.netns:
            p = _run(["ip", "netns", "del", self.netns], check=False)
            if p.returncode != 0:
                errors.append(f"ip netns del {self.netns}: {p.stderr.strip()}")
            self.netns = None
        if errors:
            raise LabError("cleanup: " + "; ".join(errors))

    def wait_all_done(self, timeout=120, guests=None):
        """Wait for the command of each guest in @guests (default all);
        return {name: rc}. One shared deadline."""
        deadline = time.monotonic() + timeout
        return {g.name: g.wait_done(max(0.0, deadline - time.monotonic()))
                for g in (guests or self.guests)}

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        failed = exc_type is not None
        try:
            self.stop()
        except LabError:
            failed = True
            if exc_type is None:
                raise
        finally:
            if self._own_workdir and not self.keep and not failed:
                shutil.rmtree(self.workdir, ignore_errors=True)
            elif failed or self.keep:
                print(f"appdep-lab: logs kept in {self.workdir}", file=sys.stderr)
        return False


def kvm_usable(timeout=KVM_PROBE_TIMEOUT, kernel_dir=None):
    """Can a KVM guest make progress here?  Returns (bool, why).

    /dev/kvm can exist while guests hang (nested virtualization without
    support): boot one guest, bounded by @timeout seconds, and see whether
    it reaches userland.  Never hangs: the guest is killed at the end.
    """
    if not os.path.exists("/dev/kvm"):
        return False, "no /dev/kvm"
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError as e:
        return False, f"/dev/kvm cannot be opened: {e.strerror}"
    with Lab(accel="kvm", kernel_dir=kernel_dir) as l:
        g = l.add("kvmprobe", "true")
        try:
            l.start()
            t = g.wait_ready(timeout=timeout)
        except GuestTimeout:
            return False, (f"/dev/kvm is there but a KVM guest made no "
                           f"progress in {timeout:.0f} s (no userland on its "
                           f"console): nested virtualization does not work "
                           f"on this host")
        except LabError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else "?"
            return False, f"a KVM guest does not start: {first}"
        return True, f"a KVM guest reached userland in {t:.1f} s"


def cleanup_stale_netns():
    """Delete lab namespaces whose creating process is gone; return names."""
    p = _run(["ip", "netns", "list"], check=False)
    gone = []
    for line in p.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.match(re.escape(NETNS_PREFIX) + r"(\d+)-", name)
        if not m:
            continue
        pid = int(m.group(1))
        if pid != os.getpid() and not os.path.exists(f"/proc/{pid}"):
            _run(["ip", "netns", "del", name], check=False)
            gone.append(name)
    return gone


@atexit.register
def _stop_live_labs():
    for lab in list(Lab._live):
        try:
            lab.stop()
        except Exception:
            pass


# --- ground-truth checks -----------------------------------------------------

def connections(gt):
    """Group GT dicts by connection: {(laddr, lport, raddr, rport): [events]}."""
    conns = {}
    for e in gt:
        conns.setdefault((e["laddr"], e["lport"], e["raddr"], e["rport"]), []).append(e)
    return conns


def check_exchange(client, server, conns, reqs, req_bytes, reply_bytes,
                   server_port=None):
    """Check that the GT lines of a tcpcli run and of its tcpsrv agree.

    @client / @server are GT dicts (Guest.gt(), possibly of one guest); the
    client's connections are those it connected (to @server_port if given),
    matched to the server's accepted ones by the reversed 4-tuple.
    Returns the client's {4-tuple: events}; raises LabError on a mismatch.
    """
    def total(events, op):
        return sum(e["bytes"] for e in events if e["op"] == op)

    def ops(events):
        return [e["op"] for e in events]

    cli = {k: v for k, v in connections(client).items()
           if v[0]["op"] == "connect" and
           (server_port is None or k[3] == server_port)}
    srv = {k: v for k, v in connections(server).items() if v[0]["op"] == "accept"}
    if len(cli) != conns:
        raise LabError(f"client has {len(cli)} connections, expected {conns}")
    for (la, lp, ra, rp), ce in cli.items():
        se = srv.get((ra, rp, la, lp))
        name = f"{la}:{lp}->{ra}:{rp}"
        if se is None:
            raise LabError(f"{name}: no server GT lines")
        if ops(ce)[0] != "connect" or ops(ce)[-1] != "close" or \
                ops(se)[0] != "accept" or ops(se)[-1] != "close":
            raise LabError(f"{name}: bad event order {ops(ce)} / {ops(se)}")
        want = {"client send": reqs * req_bytes, "server recv": reqs * req_bytes,
                "server send": reqs * reply_bytes, "client recv": reqs * reply_bytes}
        got = {"client send": total(ce, "send"), "server recv": total(se, "recv"),
               "server send": total(se, "send"), "client recv": total(ce, "recv")}
        if got != want:
            raise LabError(f"{name}: bytes {got}, expected {want}")
        for events in (ce, se):
            if len({(e["pid"], e["tid"]) for e in events}) != 1:
                raise LabError(f"{name}: one connection served by several threads")
    return cli


def _selftest(args):
    """Boot the lab configurations the boot tests rely on and check them."""
    results = []

    def report(lab):
        for g in lab.guests:
            t = g.wait_ready(args.timeout)
            results.append(f"{g.name}: ready {t:.1f} s after start "
                           f"(guest uptime {g.guest_uptime_at_ready():.2f} s)")
            print(results[-1], flush=True)

    print("== 2 guests, stream netdev: thread and fork servers, IPv4 and IPv6")
    with Lab(qemu=args.qemu, verbose=args.verbose) as lab:
        srv = lab.add("srv", "tcpsrv 8080 & tcpsrv 8081 --fork --reply-bytes 3000 & wait")
        cli = lab.add("cli",
                      f"tcpcli {lab.guests[0].ip} 8080 --conns 4 --reqs 3 --bytes 100 "
                      f"--threads 2 && tcpcli {lab.guests[0].ip6} 8081 --ipv6 "
                      f"--conns 2 --reqs 2 --bytes 5000 && "
                      f"tcpcli {lab.guests[0].ip} 8080 --bench 300 --connect-timeout 5")
        lab.start()
        report(lab)
        rc = cli.wait_done(args.timeout)
        if rc:
            raise LabError(f"cli: rc={rc}\n{cli._tail()}")
        c = check_exchange(cli.gt(), srv.gt(), 4, 3, 100, 100, server_port=8080)
        if len({e["tid"] for v in c.values() for e in v}) != 2:
            raise LabError("tcpcli --threads 2 did not use 2 threads")
        srv_conns = connections([e for e in srv.gt() if e["lport"] == 8080])
        if len({v[0]["tid"] for v in srv_conns.values()}) != len(srv_conns):
            raise LabError("tcpsrv: connections share a thread")
        c6 = check_exchange(cli.gt(), srv.gt(), 2, 2, 5000, 3000, server_port=8081)
        if any(e["family"] != "ipv6" for v in c6.values() for e in v):
            raise LabError("IPv6 connection printed as IPv4")
        fork_pids = {e["pid"] for e in srv.gt() if e["lport"] == 8081}
        if len(fork_pids) != 2:
            raise LabError(f"tcpsrv --fork: {len(fork_pids)} pids for 2 connections")
        results.append(f"stream: GT lines consistent ({len(cli.gt())} client, "
                       f"{len(srv.gt())} server); bench {cli.bench()}")
        print(results[-1], flush=True)

    print("== 3 guests, bridge in a netns: client -> middle tier -> backend")
    with Lab(qemu=args.qemu, verbose=args.verbose) as lab:
        back = lab.add("back", "tcpsrv 8080 --reply-bytes 200")
        mid = lab.add("mid", f"tcpsrv 8081 --upstream {back.ip}:8080 --upstream-bytes 50")
        cli = lab.add("cli", f"tcpcli {mid.ip} 8081 --conns 3 --reqs 2 --bytes 64")
        lab.start()
        report(lab)
        rc = cli.wait_done(args.timeout)
        if rc:
            raise LabError(f"cli: rc={rc}\n{cli._tail()}")
        check_exchange(cli.gt(), mid.gt(), 3, 2, 64, 64)
        check_exchange(mid.gt(), back.gt(), 6, 1, 50, 200)
        results.append("bridge: GT lines consistent across 3 guests")
        print(results[-1], flush=True)

    print("== 1 guest, -smp 2: tcpcli threads on both vCPUs")
    with Lab(qemu=args.qemu, verbose=args.verbose) as lab:
        g = lab.add("smp", "tcpsrv 8080 & tcpcli 127.0.0.1 8080 --conns 4 "
                           "--reqs 20 --bytes 64 --threads 2", smp=2)
        lab.start()
        threads = {c["thread-id"] for c in g.qmp.execute("query-cpus-fast")}
        if len(threads) != 2:
            raise LabError(f"-smp 2 guest has {len(threads)} vCPU threads: "
                           "TCG is not multi-threaded")
        report(lab)
        rc = g.wait_done(args.timeout)
        if rc:
            raise LabError(f"smp: rc={rc}\n{g._tail()}")
        check_exchange(g.gt(), g.gt(), 4, 20, 64, 64)
        cpus = {}
        for e in g.gt():
            if e["prog"] == "tcpcli":
                cpus.setdefault(e["tid"], set()).add(e["cpu"])
        all_cpus = set().union(*cpus.values())
        if all_cpus != {0, 1}:
            raise LabError(f"tcpcli threads ran on CPUs {sorted(all_cpus)}, not 0 and 1")
        results.append(f"smp 2: tcpcli thread -> cpus {cpus}")
        print(results[-1], flush=True)
    print("selftest passed")
    return 0


# --- CLI -------------------------------------------------------------------

MAX_CLI_VMS = 16


def _cmd_run(args):
    cmds = {i: getattr(args, f"cmd{i}") for i in range(1, MAX_CLI_VMS + 1)}
    if args.vms < 1 or args.vms > MAX_CLI_VMS:
        raise LabError(f"--vms must be 1..{MAX_CLI_VMS}")
    extra = [i for i, c in cmds.items() if c is not None and i > args.vms]
    if extra:
        raise LabError(f"--cmd{extra[0]} given but only {args.vms} VMs")
    wait = list(range(1, args.vms + 1)) if args.wait == "all" else \
        [int(x) for x in args.wait.split(",")] if args.wait else [args.vms]
    if any(w < 1 or w > args.vms for w in wait):
        raise LabError(f"--wait: VM numbers are 1..{args.vms}")
    appdep = None
    status = 0
    with Lab(net=args.net, workdir=args.workdir, keep=args.keep,
             qemu=args.qemu, verbose=args.verbose) as lab:
        for i in range(1, args.vms + 1):
            if args.appdep_profile:
                appdep = Appdep(args.appdep_profile, args.appdep_socket)
            lab.add(f"vm{i}", cmds[i], smp=args.smp, mem=args.mem,
                    appdep=appdep, append=args.append)
        lab.start()
        try:
            for g in lab.guests:
                t = g.wait_ready(args.timeout)
                print(f"{g.name}: ready after {t:.1f} s "
                      f"(guest uptime {g.guest_uptime_at_ready():.2f} s)", flush=True)
            rcs = lab.wait_all_done(args.timeout, [lab.guests[w - 1] for w in wait])
        finally:
            if args.show:
                for g in lab.guests:
                    for line in g.console().splitlines():
                        print(f"[{g.name}] {line}")
        for name, rc in rcs.items():
            print(f"{name}: rc={rc}")
            status = status or (1 if rc else 0)
    return status


def _cmd_images(args):
    vmlinuz, initrd = build_images()
    print(f"kernel {vmlinuz}\ninitrd {initrd}")
    return 0


def _cmd_cleanup(args):
    for name in cleanup_stale_netns():
        print(f"deleted netns {name}")
    return 0


def _sigterm(signum, frame):
    """SIGTERM unwinds like Ctrl-C, so the context managers clean up."""
    raise KeyboardInterrupt


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="appdep guest lab: boot guests under TCG that run the "
                    "tests/guest programs.",
        epilog="example: lab.py run --vms 2 --cmd1 'tcpsrv 8080' "
               "--cmd2 'tcpcli 10.0.0.1 8080 --conns 2 --reqs 3 --bytes 64' "
               "--show   (VM i has 10.0.0.i/24 and fd00::i/64)")
    sub = ap.add_subparsers(dest="what", required=True)
    r = sub.add_parser("run", help="boot guests, run one command in each")
    r.add_argument("--vms", type=int, default=2, help="number of guests (2)")
    for i in range(1, MAX_CLI_VMS + 1):
        r.add_argument(f"--cmd{i}", metavar="SH",
                       help="shell snippet for VM %d" % i if i <= 3 else argparse.SUPPRESS)
    r.add_argument("--wait", default=None,
                   help="VMs whose command must finish: 'all' or '1,3' "
                        "(default: the last VM); the others are then stopped")
    r.add_argument("--smp", type=int, default=1, help="vCPUs per guest (1)")
    r.add_argument("--mem", type=int, default=256, help="MiB per guest (256)")
    r.add_argument("--net", default="auto", choices=["auto", "stream", "bridge", "none"])
    r.add_argument("--timeout", type=float, default=120, help="seconds (120)")
    r.add_argument("--append", default="", help="extra kernel command line")
    r.add_argument("--qemu", help="QEMU binary (default $APPDEP_QEMU or "
                                  "build/qemu-build/qemu-system-x86_64)")
    r.add_argument("--appdep-profile", help="add the appdep object with this profile")
    r.add_argument("--appdep-socket", help="record socket for the appdep object")
    r.add_argument("--workdir", help="directory for logs and sockets")
    r.add_argument("--keep", action="store_true", help="keep the work directory")
    r.add_argument("--show", action="store_true", help="print the consoles at the end")
    r.add_argument("-v", "--verbose", action="store_true")
    r.set_defaults(fn=_cmd_run)
    sub.add_parser("images", help="build kernel + initramfs, print their paths") \
        .set_defaults(fn=_cmd_images)
    t = sub.add_parser("selftest", help="boot 2 guests (stream), 3 (bridge) "
                                        "and one -smp 2 guest; check GT lines")
    t.add_argument("--timeout", type=float, default=120, help="seconds per wait (120)")
    t.add_argument("--qemu", help="QEMU binary")
    t.add_argument("-v", "--verbose", action="store_true")
    t.set_defaults(fn=_selftest)
    sub.add_parser("cleanup", help="delete lab network namespaces left by "
                                   "dead processes").set_defaults(fn=_cmd_cleanup)
    args = ap.parse_args(argv)
    if getattr(args, "appdep_profile", None) and not args.appdep_socket:
        ap.error("--appdep-profile needs --appdep-socket")
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        return args.fn(args)
    except LabError as e:
        print(f"lab.py: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lab.py: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
