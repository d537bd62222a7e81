"""Real Unix accounts for a test: a service user and its group, an operator in that group, and running as them.

Made with ``groupadd``/``useradd`` under names of their own (``kt<hex>``), removed afterwards. The
project's Python may live under /root, which other users cannot enter: they run a Python of the same
version from outside /root and /home with the project's venv added as a site directory, as the tests
of the real systemd unit do. The checkout itself may sit in a folder only root may enter (``mktemp -d``
makes them 0700): while the accounts exist, every folder above the project and its venv lets others
pass through (the execute bit only, nothing listed), as /opt/kartud does on a box; removing the
accounts puts the modes back.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sysconfig
import uuid
from dataclasses import dataclass, field

from private_systemd import sandbox_python

SITE = sysconfig.get_paths()["purelib"]
LAUNCH = ("import site, sys, runpy; site.addsitedir({site!r}); sys.argv = [{module!r}] + sys.argv[1:]; "
          "runpy.run_module({module!r}, run_name='__main__')")


def why_not() -> str | None:
    """Why real accounts cannot be used here, or None."""
    if os.geteuid() != 0:
        return "needs root (useradd, runuser)"
    for tool in ("useradd", "groupadd", "userdel", "groupdel", "runuser"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if sandbox_python() is None:
        return "no Python of this version that other users may run"
    return None


def let_others_pass(*paths: str) -> list[tuple[str, int]]:
    """Add the execute bit for others to every folder above each of ``paths`` that lacks it; returns
    ``(folder, mode before)`` for :func:`restore_modes`."""
    changed: list[tuple[str, int]] = []
    for path in paths:
        folder = os.path.realpath(path)
        while True:
            mode = stat.S_IMODE(os.stat(folder).st_mode)
            if not mode & stat.S_IXOTH and folder not in dict(changed):
                os.chmod(folder, mode | stat.S_IXOTH)
                changed.append((folder, mode))
            if os.path.dirname(folder) == folder:
                break
            folder = os.path.dirname(folder)
    return changed


def restore_modes(changed: list[tuple[str, int]]) -> None:
    for folder, mode in reversed(changed):
        os.chmod(folder, mode)


@dataclass
class Accounts:
    """The service user (primary group ``group``) and an operator whose supplementary group it is."""

    service: str
    operator: str
    group: str
    opened: list = field(default_factory=list)          # folders let_others_pass changed, to put back

    @classmethod
    def create(cls) -> "Accounts":
        tag = uuid.uuid4().hex[:8]
        made = cls(service=f"kt{tag}", operator=f"kt{tag}op", group=f"kt{tag}")
        subprocess.run(["groupadd", "--system", made.group], check=True)
        subprocess.run(["useradd", "--system", "--gid", made.group, "--no-create-home", "--shell",
                        "/usr/sbin/nologin", made.service], check=True)
        subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", "--groups", made.group, made.operator],
                       check=True)
        project = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        made.opened = let_others_pass(project, SITE)
        return made

    def remove(self) -> None:
        for user in (self.operator, self.service):
            subprocess.run(["userdel", user], capture_output=True)
        subprocess.run(["groupdel", self.group], capture_output=True)
        restore_modes(self.opened)

    def command(self, user: str, module: str, *args: str, umask: str = "0027", env: dict | None = None) -> list[str]:
        """The argv that runs ``python -m module args`` as ``user`` with ``umask`` (as the unit's UMask=)."""
        code = LAUNCH.format(site=SITE, module=module)
        assignments = [f"{k}={v}" for k, v in {"PYTHONDONTWRITEBYTECODE": "1", **(env or {})}.items()]
        return ["runuser", "-u", user, "--", "sh", "-c", f'umask {umask}; exec "$@"', "sh", "env", *assignments,
                sandbox_python(), "-c", code, *args]

    def run(self, user: str, module: str, *args: str, timeout: float = 30, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(user, module, *args, **kwargs), capture_output=True, text=True,
                              timeout=timeout)
