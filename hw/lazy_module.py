"""A module imported at its first use rather than when its name is bound: keeps Pillow out of an idle daemon."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for the module ``name``; the first attribute read imports it (``importlib`` makes that safe from
    several threads at once). ``Image = LazyModule("PIL.Image")`` then ``Image.open(...)`` as usual."""

    def __init__(self, name: str):
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"<{self._name}, imported at first use>"
