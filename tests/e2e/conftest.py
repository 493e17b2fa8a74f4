"""pytest fixtures of the aiocopd end-to-end suite (the helpers are in aiocopd_e2e.py).

Run from the repository root, as root:   /usr/bin/python3 -m pytest -q tests/e2e
Not root: every test skips, unless CI=true, where every test fails instead.
"""
import os

import pytest

from aiocopd_e2e import (INTERPRETERS, NOT_ROOT, Harness, in_ci, missing, require_binary,
                         run_for_each_interpreter, build_test_root)


@pytest.fixture(autouse=True)
def _needs_root_and_binary():
    if os.geteuid() != 0:
        if not in_ci():
            pytest.skip(NOT_ROOT)
        return      # pytest_runtest_call below fails the test itself
    require_binary()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    if os.geteuid() != 0 and in_ci():
        pytest.fail(f"{NOT_ROOT}; CI=true, so this is a failure, not a skip", pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def _test_roots():
    """The roots targets run in (sid: CPython 3.14 and 3.15), built once per machine by
    tools/test-root.sh; a failed build fails (CI) or skips the interpreters in it."""
    if os.geteuid() == 0:
        for root in sorted({i.root for i in INTERPRETERS.values() if i.root}):
            try:
                build_test_root(root)
            except RuntimeError:
                pass        # told by each test that needs it (python fixture)


@pytest.fixture(params=list(INTERPRETERS), ids=list(INTERPRETERS))
def python(request):
    """Each scenario runs under every interpreter of INTERPRETERS; one that is missing skips
    it, or fails it under CI=true."""
    interp = INTERPRETERS[request.param]
    # (not root: every test already skips, or fails under CI=true, whatever is installed)
    why = missing(interp) if os.geteuid() == 0 else None
    if why:
        if in_ci():
            pytest.fail(f"{why}; CI=true, so this is a failure, not a skip", pytrace=False)
        pytest.skip(why)
    return interp


@pytest.fixture
def harness():
    """Starts targets and aiocopd; kills (by PID) and reaps whatever is left at teardown."""
    h = Harness()
    try:
        yield h
    finally:
        h.cleanup()


# Interpreters a paired scenario runs at once. Most scenarios wait (sleeps, sockets) rather
# than compute, and each aiocopd's exit costs the kernel seconds of detaching that the
# exits of runs side by side share; a scenario whose figures a busy CPU would change
# passes parallel=1.
PAIRED_AT_ONCE = 4


@pytest.fixture(scope="session")
def _paired_outcomes():
    return {}


@pytest.fixture
def paired(request, python, _paired_outcomes):
    """paired(fn) -> fn(harness, python) for this test's interpreter.

    The first of a test's interpreter variants runs fn for every interpreter at once (see
    run_for_each_interpreter); the other variants take their outcome from that run. A failure
    (or exception) of one interpreter's run is raised in that interpreter's test only.
    """
    params = {k: v for k, v in getattr(request.node, "callspec", None).params.items()
              if k != "python"}
    key = (request.node.module.__name__, request.node.originalname, repr(sorted(params.items())))
    # a test narrows its interpreters with @pytest.mark.parametrize("python", [...],
    # indirect=True); the run for all of them follows it
    kinds = None
    for mark in request.node.iter_markers("parametrize"):
        if mark.args[0] == "python":
            kinds = set(mark.args[1])

    def run(fn, parallel=PAIRED_AT_ONCE):
        if key not in _paired_outcomes:
            _paired_outcomes[key] = run_for_each_interpreter(fn, parallel, kinds)
        outcome = _paired_outcomes[key][python.kind]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return run
