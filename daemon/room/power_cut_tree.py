"""The power-cut filesystem's nodes: each file's live and synced bytes, each directory's live and durable entries.

The backing directory is laid out from the durable side only (:func:`lay`, :func:`unlay`); the
server (:mod:`kartud.room.power_cut_server`) decides when the live side becomes durable.
"""

from __future__ import annotations

import os
import shutil
import stat
import time


class Node:
    """One file or directory: its live state and its durable state."""

    def __init__(self, is_dir: bool, mode: int, content: bytes = b""):
        self.is_dir = is_dir
        self.mode = mode
        self.uid, self.gid = os.getuid(), os.getgid()
        self.atime = self.mtime = self.ctime = time.time()
        self.data = bytearray(content)         # files: what readers see now
        self.synced = bytearray(content)       # files: what a cut leaves
        self.dirty: list[tuple[int, int]] = []  # byte ranges written since the last fsync
        self.entries: dict[str, Node] = {}     # directories: live names
        self.durable: dict[str, Node] = {}     # directories: names a cut leaves
        self.backing: set[str] = set()         # where in the backing dir this node's durable state is laid out


def load(path: str) -> Node:
    """The durable tree the backing directory holds, as nodes whose live state equals their durable state."""
    info = os.lstat(path)
    if stat.S_ISDIR(info.st_mode):
        node = Node(True, info.st_mode)
        for name in os.listdir(path):
            node.entries[name] = load(os.path.join(path, name))
        node.durable = dict(node.entries)
    else:
        with open(path, "rb") as handle:
            node = Node(False, info.st_mode, handle.read())
    node.backing.add(path)
    node.mtime = info.st_mtime
    return node


def lay(node: Node, path: str) -> None:
    """Write a node's durable state at ``path`` in the backing directory."""
    node.backing.add(path)
    if node.is_dir:
        os.makedirs(path, exist_ok=True)
        for name, child in node.durable.items():
            lay(child, os.path.join(path, name))
    else:
        with open(path, "wb") as handle:
            handle.write(node.synced)
        os.chmod(path, node.mode & 0o7777)


def unlay(node: Node, path: str) -> None:
    """Take a node's durable state away from ``path`` in the backing directory."""
    node.backing.discard(path)
    if node.is_dir:
        for name, child in node.durable.items():
            unlay(child, os.path.join(path, name))
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)
