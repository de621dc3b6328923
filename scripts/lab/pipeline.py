"""The APM pipeline for lab scripts: appdep-server, appdep-fwd and guests
that stream to it.

    import sys; sys.path.insert(0, "scripts/lab")
    import lab, pipeline
    server = pipeline.start_server(wd, wd / "db", dport, hport)
    fwd = pipeline.start_fwd(wd, dport, "host1", ("cli", "srv"))
    with lab.Lab(net="bridge") as l:
        guests = pipeline.add_traced_guests(l, wd, ("cli", "srv"), cmds)

Used by tests/boot/test_pipeline.py, scripts/demo.py and
scripts/accuracy.py.  Python 3 stdlib only.
"""

import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import lab

PROFILE = lab.BUILD / "lab" / "profile.json"

SERVER = lab.BUILD / "meson" / "server" / "appdep-server"
FWD = lab.BUILD / "meson" / "monitor" / "appdep-fwd"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def call(self, method, path, body=None, timeout=30):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data,
                                     method=method)
        if data:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                text = r.read().decode()
                return r.status, (json.loads(text) if text.startswith(("{", "["))
                                  else text)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read().decode() or "{}")

    def get(self, path):
        return self.call("GET", path)

    def wait_up(self, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.get("/v1/status")[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("appdep-server did not answer")
            time.sleep(0.1)


class Proc:
    def __init__(self, argv, log):
        self.log = log
        self.f = open(log, "wb")
        self.p = subprocess.Popen(argv, stdout=self.f, stderr=subprocess.STDOUT)

    def stop(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.f.close()


def start_server(wd, db, dport, hport):
    s = Proc([str(SERVER), "--db", str(db), "--listen", f"127.0.0.1:{dport}",
              "--http", f"127.0.0.1:{hport}"], wd / "server.log")
    Api(hport).wait_up()
    return s


def start_fwd(wd, dport, host, names):
    """appdep-fwd for VMs @names (10.0.0.1...), once its sockets listen."""
    cfg = [f"[fwd]\nserver=127.0.0.1:{dport}\nhost={host}\n"
           f"spool-dir={wd / 'spool'}\nbatch-ms=100\n"]
    for i, n in enumerate(names):
        cfg.append(f"[vm {n}]\nqmp={wd / (n + '.qmp2')}\n"
                   f"records={wd / (n + '.rec')}\n"
                   f"addresses=10.0.0.{i + 1}\n")
    (wd / "fwd.conf").write_text("\n".join(cfg))
    fwd = Proc([str(FWD), "--config", str(wd / "fwd.conf")], wd / "fwd.log")
    deadline = time.monotonic() + 10
    while not all((wd / (n + ".rec")).exists() for n in names):
        if time.monotonic() > deadline:
            fwd.stop()
            raise AssertionError(f"appdep-fwd did not listen; see "
                                 f"{wd / 'fwd.log'}")
        time.sleep(0.05)
    return fwd


def add_traced_guests(l, wd, names, cmds):
    """Guests streaming to start_fwd()'s sockets, with a second QMP
    monitor for the daemon (the lab holds the first)."""
    guests = {}
    for n in names:
        qmp2 = wd / (n + ".qmp2")
        guests[n] = l.add(n, cmds[n], appdep=lab.Appdep(
            str(PROFILE), str(wd / (n + ".rec"))), extra_args=[
            "-no-shutdown", "-chardev",
            f"socket,id=qmp2,path={qmp2},server=on,wait=off",
            "-mon", "chardev=qmp2,mode=control"])
    return guests
