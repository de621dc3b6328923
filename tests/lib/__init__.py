"""Helpers shared by the Python test suites and the lab scripts.

    tap.py   TAP output, named tests, selection from the command line
    wait.py  waiting on a condition with a deadline
    qmp.py   the QMP client
    wire.py  an independent encoder/decoder of the record and frame formats
    fwdlog.py  the forward daemon's status line, read from its log

Python 3 stdlib only.  Scripts add this directory to sys.path and import
the modules by name (import tap, wait, ...).
"""
