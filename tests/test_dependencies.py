"""Every runtime dependency in pyproject.toml is imported by the product (sqlite-utils was not, and went)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
# Distribution name -> the module the product imports from it.
IMPORTED_AS = {"paho-mqtt": "paho", "pyserial": "serial", "pyusb": "usb", "pyscard": "smartcard",
               "gpiozero": "gpiozero", "Pillow": "PIL", "cryptography": "cryptography",
               "fpdf2": "fpdf", "zlib-ng": "zlib_ng"}
# Needed without an import: zoneinfo reads tzdata's zone files where the system has none.
DATA_ONLY = {"tzdata"}


def declared() -> list[str]:
    project = tomllib.loads((TOP / "pyproject.toml").read_text())["project"]
    return [re.match(r"[A-Za-z0-9_.-]+", spec).group(0) for spec in project["dependencies"]]


def test_every_runtime_dependency_is_imported_by_the_product():
    sources = "\n".join(p.read_text() for p in [*TOP.glob("daemon/**/*.py"), *TOP.glob("hw/**/*.py")])
    for name in declared():
        if name in DATA_ONLY:
            continue
        assert name in IMPORTED_AS, f"{name}: say which module it provides, or drop it"
        module = IMPORTED_AS[name]
        assert re.search(rf"^\s*(import|from) {module}\b", sources, re.M), f"nothing imports {module} ({name})"
