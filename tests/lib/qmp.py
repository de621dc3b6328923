"""The QMP client of the test harnesses (QEMU's JSON monitor protocol).

    q = QMP("/tmp/vm.qmp")
    q.connect(timeout=10)
    info = q.execute("x-query-appdep")
    ev = q.wait_event("APPDEP_INSPECT")

Python 3 stdlib only.  Errors are wait.HarnessError (scripts/lab/lab.py
calls it LabError); QMPError when QEMU answers a command with an error.
"""

import json
import select
import socket
import time

from wait import HarnessError

QMP_TIMEOUT = 10.0          # one QMP command, and connecting after start
POLL_INTERVAL = 0.05


class QMPError(HarnessError):
    """A QMP command answered with an error: .cls and .desc are QEMU's."""

    def __init__(self, cmd, cls, desc):
        super().__init__(f"QMP {cmd}: {cls}: {desc}")
        self.cmd, self.cls, self.desc = cmd, cls, desc


class QMP:
    """Minimal QMP client over a unix socket.

    Not thread-safe. Events that arrive while a command runs are kept in
    .pending_events until events() hands them out.
    """

    def __init__(self, path):
        self.path = str(path)
        self.sock = None
        self.buf = b""
        self.pending_events = []
        self.greeting = None
        self._next_id = 0

    def connect(self, timeout=QMP_TIMEOUT, alive=lambda: True):
        """Connect (retrying until the socket exists), negotiate capabilities.

        @alive is polled while retrying, so a QEMU that died is not waited for.
        """
        deadline = time.monotonic() + timeout
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.path)
                break
            except OSError as e:
                s.close()
                if not alive():
                    raise HarnessError(f"QMP {self.path}: QEMU exited") from None
                if time.monotonic() >= deadline:
                    raise HarnessError(f"QMP {self.path}: cannot connect: {e}") from None
                time.sleep(POLL_INTERVAL)
        self.sock = s
        # QEMU can write an event (e.g. NETDEV_STREAM_CONNECTED) to a client
        # that connected before the monitor processed the open and sent its
        # greeting: keep such events, the greeting follows.
        while True:
            self.greeting = self._read(deadline)
            if "event" not in self.greeting:
                break
            self.pending_events.append(self.greeting)
        if "QMP" not in self.greeting:
            raise HarnessError(f"QMP {self.path}: bad greeting {self.greeting!r}")
        self.execute("qmp_capabilities", timeout=max(1.0, deadline - time.monotonic()))

    def _read(self, deadline):
        """Next JSON message from QEMU, or HarnessError at @deadline / EOF."""
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise HarnessError(f"QMP {self.path}: no answer in time")
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                continue
            try:
                chunk = self.sock.recv(65536)
            except OSError as e:
                raise HarnessError(f"QMP {self.path}: {e}") from None
            if not chunk:
                raise HarnessError(f"QMP {self.path}: connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError:
            raise HarnessError(f"QMP {self.path}: bad JSON {line[:200]!r}") from None

    def execute(self, cmd, args=None, timeout=QMP_TIMEOUT):
        """Run @cmd with @args (dict); return its "return" value.

        Raises QMPError when QEMU answers with an error, HarnessError when it
        does not answer within @timeout seconds.
        """
        if self.sock is None:
            raise HarnessError(f"QMP {self.path}: not connected")
        self._next_id += 1
        msg = {"execute": cmd, "id": self._next_id}
        if args:
            msg["arguments"] = args
        try:
            self.sock.sendall(json.dumps(msg).encode() + b"\n")
        except OSError as e:
            raise HarnessError(f"QMP {self.path}: {e}") from None
        deadline = time.monotonic() + timeout
        while True:
            r = self._read(deadline)
            if "event" in r:
                self.pending_events.append(r)
            elif r.get("id") == self._next_id:
                if "error" in r:
                    e = r["error"]
                    raise QMPError(cmd, e.get("class", "?"), e.get("desc", "?"))
                return r.get("return")

    def events(self):
        """Events received so far (including any waiting on the socket)."""
        try:
            while select.select([self.sock], [], [], 0)[0] or b"\n" in self.buf:
                r = self._read(time.monotonic() + 1.0)
                if "event" in r:
                    self.pending_events.append(r)
        except HarnessError:
            pass
        ev, self.pending_events = self.pending_events, []
        return ev

    def wait_event(self, name, timeout=QMP_TIMEOUT):
        """Wait for event @name and return it; other events stay pending."""
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.pending_events):
                if e["event"] == name:
                    return self.pending_events.pop(i)
            r = self._read(deadline)
            if "event" in r:
                self.pending_events.append(r)

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None
