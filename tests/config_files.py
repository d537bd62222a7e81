"""Config files for the tests: the shipped example, a minimal file, writing one, and what load() and check-config
say of it."""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from kartud.rules.config import SCHEMA, Config, ConfigError, load


ROOT = Path(__file__).resolve().parent.parent              # the checkout
EXAMPLE = ROOT / "etc" / "kartud" / "kartud.toml"
DOCS = ROOT / "docs" / "configuration.md"

GOOD_KEY = base64.b64encode(bytes(range(32))).decode()
MINIMAL = '[station]\nid = "x-1"\n'


def write(tmp_path: Path, text: str, name: str = "kartud.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _credentials() -> str:
    """A folder holding the station key as the credential ``nik-key``, as systemd gives it to kartud."""
    folder = tempfile.mkdtemp(prefix="kartud-credentials-")
    atexit.register(shutil.rmtree, folder, True)
    with open(os.path.join(folder, "nik-key"), "w") as handle:
        handle.write(bytes(range(32)).hex() + "\n")
    return folder


CREDENTIALS = _credentials()


def check_config(path: Path | str) -> subprocess.CompletedProcess:
    """Run ``kartud check-config`` as its own process, as an operator would, with the station key where the
    unit's credential puts it (``tests/test_station_key.py`` checks what is said without one)."""
    return subprocess.run([sys.executable, "-m", "kartud.service.cli", "check-config", "--config", str(path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=30,
                          env={**os.environ, "CREDENTIALS_DIRECTORY": CREDENTIALS})


def problems_of(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        load(str(path))
    return caught.value.problems


def all_keys() -> list[str]:
    return [f"{section}.{name}" for section, keys in SCHEMA.items() for name in keys]


def value_at(config: Config, dotted: str):
    target = config
    for part in dotted.split("."):
        target = getattr(target, part)
    return target


def assert_reported(problems: list[tuple[str, str]], key: str, fragment: str) -> None:
    matching = [message for k, message in problems if k == key]
    assert matching, f"no problem reported for {key!r}; got {problems}"
    assert any(fragment.lower() in message.lower() for message in matching), \
        f"{key!r} reported as {matching}, expected a message containing {fragment!r}"
