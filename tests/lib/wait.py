"""Waiting on a condition with a deadline, instead of sleeping.

    wait_for(lambda: srv.records(), 15, "records at the server")
    n = wait_stable(lambda: len(srv.records()), 10, quiet=0.5,
                    what="record count")
"""

import time

POLL_INTERVAL = 0.05


class HarnessError(Exception):
    """Anything that went wrong in a test harness; the message says what
    and where.  (scripts/lab/lab.py calls it LabError.)"""


class WaitTimeout(HarnessError):
    """A condition did not hold by its deadline."""


def wait_until(cond, timeout, step=POLL_INTERVAL):
    """Poll @cond() until it returns a true value or @timeout seconds pass.

    Returns the last value of @cond() (true on success, false on timeout),
    for a check that reports it."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def wait_for(cond, timeout, what, step=POLL_INTERVAL, detail=None):
    """Poll @cond() until it returns a true value; return that value.

    Raises WaitTimeout naming @what (and @detail(), when given, for the
    state at the deadline) when @timeout seconds pass first."""
    v = wait_until(cond, timeout, step)
    if not v:
        extra = f": {detail()}" if detail else ""
        raise WaitTimeout(f"no {what} within {timeout:.0f} s{extra}")
    return v


def wait_stable(read, timeout, quiet, what, step=POLL_INTERVAL):
    """Wait until @read() returns the same value for @quiet seconds.

    For counters that stop moving when an emitter is done.  Returns the
    value; raises WaitTimeout when it still moves after @timeout seconds."""
    deadline = time.monotonic() + timeout
    last = read()
    since = time.monotonic()
    while True:
        time.sleep(step)
        v = read()
        now = time.monotonic()
        if v != last:
            last, since = v, now
        elif now - since >= quiet:
            return v
        if now >= deadline:
            raise WaitTimeout(f"{what} still moving after {timeout:.0f} s "
                              f"(last {last!r})")
