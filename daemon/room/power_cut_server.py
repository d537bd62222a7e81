"""The power-cut filesystem's FUSE server: live files in memory, only what fsync covered written to the backing dir.

Run as its own process (``python -m kartud.room.power_cut_server BACKING MOUNTPOINT``, started by
:class:`kartud.room.power_cut_fs.PowerCutFilesystem`), so that a power cut is a SIGKILL of this process:
everything it held only in memory is gone, and a new server mounts what the backing directory holds.

The model, after Jepsen's LazyFS but strict about directories too: every file has its live bytes
(what readers see) and its synced bytes (what survives a cut); every directory has its live entries
and its durable entries. ``fsync``/``fdatasync`` of a file makes its live bytes durable; ``fsync`` of a
directory makes its live entries durable (a new file whose directory was never fsynced vanishes in a
cut, as do an unsynced rename and unlink). The backing directory always holds exactly the durable
state, as a plain tree. Its own writes are not fsynced to the real disk: the simulated cut kills this
server only, and the real kernel keeps what it was given.

The control channel is stdin/stdout: the server prints ``mounted`` once serving; a ``stats`` line is
answered with one line of JSON, ``reset`` zeroes the counters, ``sync`` makes everything durable (before an
orderly unmount).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import threading
import time
from functools import wraps

import mfusepy
from mfusepy import FUSE, FuseOSError, Operations

from .power_cut_tree import Node, lay, load, unlay

PAGE = 4096                     # a flash page, for pages_synced


def serialized(method):
    """Run a FUSE callback under the server's one lock (libfuse calls from several threads)."""
    @wraps(method)
    def locked(self, *args, **kwargs):
        with self.mutex:
            return method(self, *args, **kwargs)
    return locked


class PowerCutOperations(Operations):
    """The FUSE callbacks over the node tree; counters of what the workload wrote and synced."""

    flag_nopath = True          # fh-based calls get no path: an unlinked open file still works (hard_remove)
    flag_nullpath_ok = True

    def __init__(self, backing_dir: str):
        self.backing_dir = os.path.abspath(backing_dir)
        self.root = load(self.backing_dir)
        self.mutex = threading.RLock()   # not "lock": that name is a FUSE callback (POSIX locks stay with the kernel)
        self.handles: dict[int, Node] = {}
        self.next_handle = 1
        self.counters = dict.fromkeys(("bytes_written", "bytes_synced", "fsyncs", "fdatasyncs", "dir_fsyncs",
                                       "writes", "pages_synced"), 0)

    # -- the durable side ---------------------------------------------------------------------------

    def sync_file(self, node: Node) -> int:
        """Make a file's live bytes durable; returns how many bytes that wrote."""
        size = len(node.data)
        del node.synced[size:]
        node.synced.extend(bytes(size - len(node.synced)))
        ranges = []
        for start, end in sorted(node.dirty):
            start, end = min(start, size), min(end, size)
            if start >= end:
                continue
            if ranges and start <= ranges[-1][1]:
                ranges[-1] = (ranges[-1][0], max(end, ranges[-1][1]))
            else:
                ranges.append((start, end))
        for start, end in ranges:
            node.synced[start:end] = node.data[start:end]
        node.dirty = []
        for path in node.backing:
            fd = os.open(path, os.O_WRONLY)
            try:
                for start, end in ranges:
                    os.pwrite(fd, bytes(node.data[start:end]), start)
                os.ftruncate(fd, size)
            finally:
                os.close(fd)
        # What a flash disk rewrites: whole 4 KiB pages, however few bytes of each changed.
        self.counters["pages_synced"] += len({page for start, end in ranges
                                              for page in range(start // PAGE, (end - 1) // PAGE + 1)})
        return sum(end - start for start, end in ranges)

    def sync_dir(self, node: Node) -> None:
        """Make a directory's live entries durable, and lay them out wherever the directory is."""
        old, new = node.durable, dict(node.entries)
        for path in list(node.backing):
            for name, child in old.items():
                if new.get(name) is not child:
                    unlay(child, os.path.join(path, name))
            for name, child in new.items():
                if old.get(name) is not child:
                    lay(child, os.path.join(path, name))
        node.durable = new

    def sync_all(self, node: Node) -> None:
        """What an orderly shutdown does: everything becomes durable."""
        if node.is_dir:
            self.sync_dir(node)
            for child in list(node.entries.values()):
                self.sync_all(child)
        else:
            self.sync_file(node)

    # -- finding things ----------------------------------------------------------------------------

    def node(self, path: str | None, fh: int | None = None) -> Node:
        if fh:
            return self.handles[fh]
        if path is None:                               # an fh-based call mfusepy passed on without its fh
            raise FuseOSError(errno.EBADF)
        node = self.root
        for part in (path or "/").strip("/").split("/"):
            if not part:
                continue
            if not node.is_dir or part not in node.entries:
                raise FuseOSError(errno.ENOENT)
            node = node.entries[part]
        return node

    def parent(self, path: str) -> tuple[Node, str]:
        head, name = os.path.split(path.rstrip("/"))
        directory = self.node(head)
        if not directory.is_dir:
            raise FuseOSError(errno.ENOTDIR)
        return directory, name

    def handle(self, node: Node) -> int:
        fh, self.next_handle = self.next_handle, self.next_handle + 1
        self.handles[fh] = node
        return fh

    # -- FUSE callbacks ----------------------------------------------------------------------------

    @serialized
    def getattr(self, path, fh=None):
        node = self.node(path, fh)
        return {"st_mode": node.mode, "st_nlink": 2 if node.is_dir else 1, "st_size": len(node.data),
                "st_uid": node.uid, "st_gid": node.gid, "st_atime": node.atime, "st_mtime": node.mtime,
                "st_ctime": node.ctime, "st_blksize": 4096, "st_blocks": (len(node.data) + 511) // 512}

    @serialized
    def readdir(self, path, fh):
        return [".", "..", *self.node(path, fh).entries]

    @serialized
    def opendir(self, path):
        return self.handle(self.node(path))

    @serialized
    def releasedir(self, path, fh):
        self.handles.pop(fh, None)
        return 0

    @serialized
    def open(self, path, flags):
        return self.handle(self.node(path))

    @serialized
    def create(self, path, mode, flags=0):
        directory, name = self.parent(path)
        node = directory.entries.get(name)
        if node is None:
            node = directory.entries[name] = Node(False, stat.S_IFREG | (mode & 0o7777))
        return self.handle(node)

    @serialized
    def release(self, path, fh):
        self.handles.pop(fh, None)
        return 0

    def flush(self, path, fh):
        return 0

    @serialized
    def read(self, path, size, offset, fh):
        return bytes(self.node(path, fh).data[offset:offset + size])

    @serialized
    def write(self, path, data, offset, fh):
        node = self.node(path, fh)
        old_size = len(node.data)
        if offset > old_size:
            node.data.extend(bytes(offset - old_size))
        node.data[offset:offset + len(data)] = data
        node.dirty.append((min(offset, old_size), offset + len(data)))
        node.mtime = time.time()
        self.counters["bytes_written"] += len(data)
        self.counters["writes"] += 1
        return len(data)

    @serialized
    def truncate(self, path, length, fh=None):
        node = self.node(path, fh)
        old_size = len(node.data)
        del node.data[length:]
        node.data.extend(bytes(length - len(node.data)))
        if length > old_size:                          # the new zeros replace whatever the synced copy had there
            node.dirty.append((old_size, length))
        node.mtime = time.time()
        return 0

    @serialized
    def fsync(self, path, datasync, fh):
        self.counters["fdatasyncs" if datasync else "fsyncs"] += 1
        node = self.node(path, fh)
        if node.is_dir:
            self.counters["dir_fsyncs"] += 1
            self.sync_dir(node)
        else:
            self.counters["bytes_synced"] += self.sync_file(node)
        return 0

    @serialized
    def fsyncdir(self, path, datasync, fh):
        self.counters["fdatasyncs" if datasync else "fsyncs"] += 1
        self.counters["dir_fsyncs"] += 1
        self.sync_dir(self.node(path, fh))
        return 0

    @serialized
    def mkdir(self, path, mode):
        directory, name = self.parent(path)
        if name in directory.entries:
            raise FuseOSError(errno.EEXIST)
        directory.entries[name] = Node(True, stat.S_IFDIR | (mode & 0o7777))
        return 0

    @serialized
    def unlink(self, path):
        directory, name = self.parent(path)
        if name not in directory.entries:
            raise FuseOSError(errno.ENOENT)
        if directory.entries[name].is_dir:
            raise FuseOSError(errno.EISDIR)
        del directory.entries[name]
        return 0

    @serialized
    def link(self, target, source):
        node = self.node(source)                       # make_key links its fsynced temporary into place
        directory, name = self.parent(target)
        if name in directory.entries:
            raise FuseOSError(errno.EEXIST)
        directory.entries[name] = node
        return 0

    @serialized
    def rmdir(self, path):
        directory, name = self.parent(path)
        node = directory.entries.get(name)
        if node is None:
            raise FuseOSError(errno.ENOENT)
        if node.entries:
            raise FuseOSError(errno.ENOTEMPTY)
        del directory.entries[name]
        return 0

    @serialized
    def rename(self, old, new):
        source, old_name = self.parent(old)
        target, new_name = self.parent(new)
        node = source.entries.get(old_name)
        if node is None:
            raise FuseOSError(errno.ENOENT)
        replaced = target.entries.get(new_name)
        if replaced is not None and replaced.is_dir and replaced.entries:
            raise FuseOSError(errno.ENOTEMPTY)
        del source.entries[old_name]
        target.entries[new_name] = node
        return 0

    @serialized
    def chmod(self, path, mode, fh=None):
        if path is None:                               # fchmod: mfusepy drops the fh; modes are not durable state
            return 0
        node = self.node(path, fh)
        node.mode = (node.mode & ~0o7777) | (mode & 0o7777)
        return 0

    @serialized
    def chown(self, path, uid, gid, fh=None):
        if path is None:                               # fchown (SQLite does it as root): see chmod
            return 0
        node = self.node(path, fh)
        node.uid = uid if uid != -1 else node.uid
        node.gid = gid if gid != -1 else node.gid
        return 0

    @serialized
    def utimens(self, path, times=None, fh=None):
        if path is None:                               # futimens: see chmod
            return 0
        node = self.node(path, fh)
        node.atime, node.mtime = times or (time.time(), time.time())
        return 0

    def statfs(self, path):
        info = os.statvfs(self.backing_dir)
        return {key: getattr(info, key) for key in ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail",
                                                    "f_files", "f_ffree", "f_favail", "f_namemax")}

    def init(self, path):
        print("mounted", flush=True)               # the controller waits for this line

    @serialized
    def destroy(self, path):
        self.sync_all(self.root)                    # an orderly unmount writes everything, as a shutdown does


class HandleKeepingFUSE(FUSE):
    """mfusepy's FUSE, but an ftruncate reaches the operations with its file handle (with nullpath_ok,
    libfuse 3 gives no path then, and mfusepy's truncate would drop the handle)."""

    def truncate_fuse_3(self, path, length, fip):
        fh = fip.contents.fh if fip else None
        return self.operations.truncate(None if path is None else path.decode(self.encoding, self.errors), length, fh)


def serve_control(operations: PowerCutOperations, mountpoint: str) -> None:
    """Answer the controller on stdin/stdout; when it goes away, unmount and end so no mount outlives it."""
    for line in sys.stdin:
        command = line.strip()
        with operations.mutex:
            if command == "reset":
                operations.counters = dict.fromkeys(operations.counters, 0)
            elif command == "sync":                    # before an orderly unmount: make everything durable
                operations.sync_all(operations.root)
            answer = dict(operations.counters) if command in ("stats", "reset", "sync") else {"error": command}
        print(json.dumps(answer), flush=True)
    # The controller is gone (its test died): detach the mount and end, rather than wait for copies of the
    # mount in other namespaces to go.
    subprocess.run(["fusermount3", "-uz", mountpoint], check=False, capture_output=True)
    os._exit(0)


def main(argv: list[str]) -> None:
    backing_dir, mountpoint = argv
    operations = PowerCutOperations(backing_dir)
    threading.Thread(target=serve_control, args=(operations, mountpoint), daemon=True).start()
    HandleKeepingFUSE(operations, mountpoint, foreground=True, fsname="powercutfs", hard_remove=True)


if __name__ == "__main__":
    if mfusepy.fuse_version_major != 3:
        raise SystemExit("the power-cut filesystem needs libfuse 3 (Debian package fuse3)")
    main(sys.argv[1:])
