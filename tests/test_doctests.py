"""Every docstring example runs: each module of kartud (daemon/) and kartud.hw (hw/) is imported and doctested."""

from __future__ import annotations

import doctest
import importlib
import json
import pkgutil
import subprocess
import sys

import pytest

import kartud
import kartud.hw

PACKAGES = (kartud, kartud.hw)


def every_module() -> list[str]:
    """The names of every module and package under ``PACKAGES`` (walking imports the packages, not the modules)."""
    names = set()
    for package in PACKAGES:
        names.add(package.__name__)
        names.update(info.name for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."))
    return sorted(names)


MODULES = every_module()


def test_the_walk_finds_both_trees():
    assert {"kartud.rules.clock", "kartud.ledger.store", "kartud.service.daemon", "kartud.hw.printer.evolis",
            "kartud.hw.sim.evolis_sim"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_each_module_imports_and_its_docstring_examples_run(name):
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(verbose=False)
    report: list[str] = []
    for test in doctest.DocTestFinder(exclude_empty=True).find(module, name):
        runner.run(test, out=report.append)
    assert runner.failures == 0, f"{runner.failures} of {runner.tries} examples in {name} failed:\n" + "".join(report)


# Run in a fresh interpreter, so that nothing the other tests started is counted.
QUIET_IMPORT = """
import json, logging, os, pkgutil, importlib, signal, threading
import kartud, kartud.hw

watched = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD]
handlers = {s: signal.getsignal(s) for s in watched}
for package in (kartud, kartud.hw):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)
children = []
for entry in os.listdir("/proc"):
    try:
        with open(f"/proc/{entry}/stat") as handle:
            if int(handle.read().rsplit(")", 1)[1].split()[1]) == os.getpid():
                children.append(entry)
    except (OSError, ValueError, IndexError):
        pass
print(json.dumps({
    "threads": [t.name for t in threading.enumerate() if t is not threading.main_thread()],
    "children": children,
    "signal_handlers_changed": [s.name for s in watched if signal.getsignal(s) != handlers[s]],
    "root_log_handlers": len(logging.getLogger().handlers),
}))
"""


def test_importing_every_module_starts_nothing():
    """No thread, no child process, no signal handler and no logging set up by an import: that is the job of
    the entry points."""
    result = subprocess.run([sys.executable, "-c", QUIET_IMPORT], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"threads": [], "children": [], "signal_handlers_changed": [],
                                         "root_log_handlers": 0}
