"""scripts/install puts kartud, kartuctl and kartud-sim on the box's PATH, and --uninstall takes them away."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ROOT / "scripts" / "install"
PROGRAMS = ("kartud", "kartuctl", "kartud-sim")
# Debian's PATH for a login shell (/etc/profile, /etc/login.defs), root's first.
BOX_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/games",
            "/usr/games")
VENV_BIN = Path(sys.executable).parent            # the venv running these tests, with kartud's entry points


def install(root: Path, *args: str) -> str:
    result = subprocess.run([str(INSTALL), "--root", str(root), *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def on_box_path(root: Path, name: str) -> list[Path]:
    """Where a shell on the box would find ``name``: every PATH folder inside the root that has it."""
    return [root / folder.lstrip("/") / name for folder in BOX_PATH
            if os.path.lexists(root / folder.lstrip("/") / name)]


def stand_in_venv(root: Path) -> None:
    """The venv pip would build at /opt/kartud (not built under --root): its bin/ holds this venv's entry points."""
    bin_dir = root / "opt" / "kartud" / "bin"
    bin_dir.mkdir(parents=True)
    for name in PROGRAMS:
        (bin_dir / name).symlink_to(VENV_BIN / name)


@pytest.mark.skipif(not all((VENV_BIN / name).exists() for name in PROGRAMS),
                    reason="kartud is not installed in the venv running the tests (scripts/bootstrap does it)")
def test_kartuctl_is_on_the_box_path_after_install_and_gone_after_uninstall(tmp_path):
    root = tmp_path / "root"
    install(root)
    stand_in_venv(root)
    for name in PROGRAMS:
        found = on_box_path(root, name)
        assert len(found) == 1, (name, found)
        link = found[0]
        # As the box sees it: a link to the installed venv's entry point, relative so that it holds in the root too.
        seen_on_box = os.path.normpath(os.path.join("/" + str(link.parent.relative_to(root)), os.readlink(link)))
        assert seen_on_box == f"/opt/kartud/bin/{name}"
        assert link.resolve() == (VENV_BIN / name).resolve()
    kartuctl = on_box_path(root, "kartuctl")[0]
    result = subprocess.run([str(kartuctl), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "report" in result.stdout and "status" in result.stdout
    out = install(root, "--uninstall")
    assert "removed /usr/local/bin/kartuctl" in out
    for name in PROGRAMS:
        assert on_box_path(root, name) == []


def test_uninstall_leaves_a_kartuctl_that_is_not_ours(tmp_path):
    root = tmp_path / "root"
    install(root)
    theirs = root / "usr" / "local" / "bin" / "kartuctl"
    theirs.unlink()
    theirs.write_text("#!/bin/sh\necho someone else's\n")
    install(root, "--uninstall")
    assert theirs.read_text() == "#!/bin/sh\necho someone else's\n"
    assert on_box_path(root, "kartud") == [] and on_box_path(root, "kartud-sim") == []
