"""TAP output for the Python suites: named tests, checks, selection.

    import tap
    suite = tap.Suite()

    @suite.test
    def basic():
        '''records arrive in order'''
        suite.check("records arrive", got == sent, f"{len(got)} records")

    sys.exit(suite.main(require=[(FWD, "appdep-fwd")]))

A test is a function; its name is the function's.  It reports with
check() (one TAP line per check).  A test that made no check is one TAP
line: "ok" with the string it returned, "not ok" with the traceback when
it raised.  An exception after some checks adds one "not ok" line.

Lines are printed as they happen; the plan ("1..N") comes last, which TAP
allows and meson reads.

Command line (and APPDEP_TESTS, names separated by commas or spaces, for
runners that cannot add arguments):
    NAME...   run these tests only.  A NAME equal to a test's name selects
              that test, otherwise every test whose name contains NAME;
              a NAME that selects nothing is an error (exit 2).
    --list    print the test names and what each checks, run nothing.

A prerequisite that should exist (a binary, a kernel, root) and does not
is a failure, never a skip: a suite that cannot run must not pass.
"""

import os
import sys
import time
import traceback

MAX_DETAIL = 4000               # characters of a failure's detail printed
ENV_SELECT = "APPDEP_TESTS"


class Suite:
    """The tests of one script and their results.

    @fixture: a context manager factory; each test runs inside it and gets
    its value as its only argument (e.g. tempfile.TemporaryDirectory).
    @after_each: called after every test, whatever happened (cleanup).
    @timing: append each test's duration to its single-line result.
    """

    def __init__(self, fixture=None, after_each=None, timing=False):
        self.tests = []
        self.fixture = fixture
        self.after_each = after_each
        self.timing = timing
        self.count = 0
        self.failed = 0
        self.skipped = 0

    # --- declaring tests -------------------------------------------------

    def test(self, fn):
        """Decorator: register @fn as a test, in declaration order."""
        self.tests.append(fn)
        return fn

    # --- reporting ---------------------------------------------------------

    def _line(self, ok, name, detail="", directive=""):
        self.count += 1
        text = f"{'ok' if ok else 'not ok'} {self.count} - {name}"
        if directive:
            text += f" # {directive}"
        print(text, flush=True)
        if not ok:
            self.failed += 1
            if detail != "":
                d = str(detail)
                if len(d) > MAX_DETAIL:
                    d = d[:MAX_DETAIL] + " ..."
                print("# " + d.replace("\n", "\n# "), flush=True)

    def check(self, name, cond, detail=""):
        """One TAP line: ok when @cond is true, else not ok with @detail.
        Returns bool(@cond)."""
        self._line(bool(cond), name, "" if cond else detail)
        return bool(cond)

    def fail(self, name, detail=""):
        """One "not ok" line."""
        self._line(False, name, detail)

    def skip(self, name, why):
        """One skipped test; only for what may legitimately be missing."""
        self.skipped += 1
        self._line(True, name, directive=f"SKIP {why}")

    # --- running -------------------------------------------------------------

    def names(self):
        return [fn.__name__ for fn in self.tests]

    def select(self, args):
        """The tests @args name (see the module comment); all if none.
        Raises ValueError naming an argument that selects nothing."""
        if not args:
            return list(self.tests)
        chosen = set()
        for a in args:
            exact = [fn for fn in self.tests if fn.__name__ == a]
            hits = exact or [fn for fn in self.tests if a in fn.__name__]
            if not hits:
                raise ValueError(f"no test named {a!r}; --list shows them")
            chosen.update(hits)
        return [fn for fn in self.tests if fn in chosen]

    def run_one(self, fn, skip=None):
        """Run test @fn, printing its lines."""
        why = skip(fn) if skip else None
        if why:
            self.skip(fn.__name__, why)
            return
        title = fn.__name__ + (f": {fn.__doc__.strip().splitlines()[0]}"
                               if fn.__doc__ else "")
        before = self.count
        t0 = time.monotonic()
        try:
            if self.fixture:
                with self.fixture() as value:
                    detail = fn(value)
            else:
                detail = fn()
        except Exception:
            self.fail(title if self.count == before else
                      f"{fn.__name__} completed", traceback.format_exc())
            return
        finally:
            if self.after_each:
                self.after_each()
        if self.count == before:
            info = [str(detail)] if detail else []
            if self.timing:
                info.append(f"{time.monotonic() - t0:.0f}s")
            self._line(True, title + (f" ({', '.join(info)})" if info else ""))

    def main(self, argv=None, require=(), skip=None, epilogue=None,
             expand=None):
        """Parse the command line, run the selected tests, print the plan.

        @require: (ok, what) pairs checked before anything runs; a false
        ok fails the suite with "what".  @skip(fn) returns a reason to
        skip @fn, or None.  @epilogue() runs after the tests and may
        check().  @expand(tests) returns the selected tests plus those
        they depend on, in order.  Returns the exit status: 0, 1 (a failure) or 2 (usage).
        """
        args = list(sys.argv[1:] if argv is None else argv)
        if "--list" in args:
            for fn in self.tests:
                doc = fn.__doc__.strip().splitlines()[0] if fn.__doc__ else ""
                print(f"{fn.__name__:40s} {doc}".rstrip())
            return 0
        if not args and os.environ.get(ENV_SELECT):
            args = os.environ[ENV_SELECT].replace(",", " ").split()
        bad = [a for a in args if a.startswith("-")]
        if bad:
            print(f"unknown option {bad[0]} (NAME... or --list)",
                  file=sys.stderr)
            return 2
        try:
            tests = self.select(args)
            if expand:
                tests = expand(tests)
        except ValueError as e:
            print(str(e), file=sys.stderr)
            return 2
        missing = [what for ok, what in require if not ok]
        if missing:
            for what in missing:
                self.fail(f"prerequisite: {what}")
            print(f"1..{self.count}")
            return 1
        for fn in tests:
            self.run_one(fn, skip)
        if epilogue:
            try:
                epilogue()
            except Exception:
                self.fail("suite cleanup", traceback.format_exc())
        print(f"1..{self.count}", flush=True)
        return 1 if self.failed else 0
