"""The forward daemon's status line (appdep-fwd logs one on SIGUSR1, at
exit and periodically), read back from its log.

    st = fwdlog.request_status(proc.pid, lambda: open(log).read())
    st["in"], st["acked"], st["spooled"], st["dropped"], st["queue"]

Only the "status (WHY):" marker and the key=N pairs are relied on, so the
line can grow fields without breaking the tests.
"""

import os
import re
import signal

from wait import wait_for

STATUS_RE = re.compile(r"status \(([^)]*)\): (.*)$", re.M)
FIELD_RE = re.compile(r"([a-z][a-z-]*)=(\d+|[a-z]+)")
STATUS_TIMEOUT = 10.0


def parse(text, why=None):
    """Every status line of log @text (only those for @why, if given), in
    order, as dicts: "why", and each key=value with numbers as int."""
    out = []
    for m in STATUS_RE.finditer(text):
        if why is not None and m.group(1) != why:
            continue
        st = {"why": m.group(1), "line": m.group(0)}
        for k, v in FIELD_RE.findall(m.group(2)):
            st.setdefault(k, int(v) if v.isdigit() else v)
        out.append(st)
    return out


def request_status(pid, read_log, timeout=STATUS_TIMEOUT):
    """SIGUSR1 the daemon @pid and return the status line it logs, parsed.
    @read_log() returns the log's text so far."""
    n = len(parse(read_log(), "SIGUSR1"))
    os.kill(pid, signal.SIGUSR1)
    wait_for(lambda: len(parse(read_log(), "SIGUSR1")) > n, timeout,
             "status line after SIGUSR1")
    return parse(read_log(), "SIGUSR1")[-1]


def idle(st):
    """Nothing left to deliver: every record read was acknowledged or
    dropped, nothing queued, unsent or spooled."""
    return (st["queue"] == 0 and st["unsent"] == 0 and st["spool"] == 0 and
            st["in"] == st["acked"] + st["dropped"])
