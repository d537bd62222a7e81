"""The house rules, read from the tree: rooms, their doors, file sizes and purpose lines."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parent.parent
PRODUCT = sorted([*TOP.glob("daemon/**/*.py"), *TOP.glob("hw/**/*.py")])
TESTS = sorted(TOP.glob("tests/*.py"))
ROOMS = ("rules", "ledger", "service", "ctl", "room")
# What each room may import of the others: rules decide, the ledger records, the rest use both.
MAY_IMPORT = {
    "rules": {"rules", "hw"},
    "ledger": {"rules", "ledger"},
    "service": {"rules", "ledger", "service", "hw"},
    "ctl": {"rules", "ledger", "ctl"},
    "room": {"rules", "ledger", "service", "ctl", "room", "hw"},
    "hw": {"hw"},
}
RULES_NEVER_IMPORT = ("sqlite3", "paho", "socket", "serial", "usb", "smartcard", "PIL")
SQL = re.compile(r"^\s*(SELECT\b.*\bFROM\b|INSERT (OR \w+ )?INTO\b|UPDATE \w+ SET\b|DELETE FROM\b|"
                 r"(CREATE|DROP)( TEMP| UNIQUE)? (TABLE|INDEX|TRIGGER|VIEW)\b|ALTER TABLE\b|PRAGMA \w+|"
                 r"BEGIN( IMMEDIATE| EXCLUSIVE| DEFERRED)?\s*$|SAVEPOINT \w+|RELEASE \w+\s*$|VACUUM\b)", re.DOTALL)


def module_name(path: Path) -> str:
    """``daemon/ledger/store.py`` → ``kartud.ledger.store``; ``hw/sim/card.py`` → ``kartud.hw.sim.card``."""
    parts = list(path.relative_to(TOP).with_suffix("").parts)
    parts = parts[1:] if parts[0] == "daemon" else parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["kartud", *parts])


def room_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in (*ROOMS, "hw") else None


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of the file (lazy imports count), as absolute names."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module
            found.add(stem)
            found.update(f"{stem}.{alias.name}" for alias in node.names)   # ``from pkg import module``
    return found


def rel(path: Path) -> str:
    return str(path.relative_to(TOP))


def test_the_tree_has_the_rooms_the_readme_names():
    layout = (TOP / "README.md").read_text().split("## Layout", 1)[1].split("```")[1]
    for room in ROOMS:
        assert (TOP / "daemon" / room / "__init__.py").exists()
        assert f"\n  {room}/ " in layout, f"README's layout does not describe daemon/{room}/"
    assert [p.name for p in TOP.glob("daemon/*.py")] == ["__init__.py"], "every module lives in a room"


@pytest.mark.parametrize("path", PRODUCT, ids=rel)
def test_each_room_imports_only_what_it_may(path):
    own = room_of(module_name(path))
    if own is None:
        return                                  # kartud/__init__.py: the version, nothing else
    for imported in imports_of(path):
        other = room_of(imported) if imported.startswith("kartud.") else None
        if other is not None:
            assert other in MAY_IMPORT[own], f"{rel(path)} ({own}) imports {imported} ({other})"
        if own == "rules":
            assert imported.split(".")[0] not in RULES_NEVER_IMPORT, f"{rel(path)} imports {imported}: rules do no I/O"
        if own == "hw":
            assert not (imported.startswith("kartud.") and other != "hw"), f"{rel(path)} imports {imported}"


@pytest.mark.parametrize("path", [p for p in PRODUCT if room_of(module_name(p)) != "ledger"], ids=rel)
def test_no_sql_outside_the_ledger(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.match(node.value):
            pytest.fail(f"{rel(path)}:{node.lineno} holds SQL: {node.value[:60]!r}")


def test_no_import_cycles():
    graph = {module_name(p): {i for i in imports_of(p) if i.startswith("kartud")} for p in PRODUCT}
    graph = {name: {i for i in deps if i in graph and i != name} for name, deps in graph.items()}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            pytest.fail("import cycle: " + " → ".join(path[path.index(name):] + [name]))
        if name in done:
            return
        for dep in sorted(graph[name]):
            if not name.startswith(dep + "."):  # a module importing its own package's __init__ is no cycle
                visit(dep, path + [name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


@pytest.mark.parametrize("path", [*PRODUCT, *TESTS], ids=rel)
def test_no_file_over_400_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= 400, f"{rel(path)} has {lines} lines; split it by concern"


@pytest.mark.parametrize("path", PRODUCT, ids=rel)
def test_every_module_opens_with_its_purpose(path):
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc and doc.splitlines()[0].strip(), f"{rel(path)} does not open with a one-line purpose"
