"""Reading what a user points at: folder trees of any depth, and only regular files.

Part of the rule "only what can be read exactly is admitted": a FIFO, socket or device named
``x.jpg`` would block a reader for ever, so files are opened without blocking and refused
unless they are regular files (:func:`read_regular`); trees are walked without recursion, so
a tree of any depth is listed instead of ending in a RecursionError (:func:`walk_files`).
"""
import os
import stat

__all__ = ["NotRegular", "walk_files", "read_regular"]


class NotRegular(OSError):
    """A path that is not a regular file (a FIFO, a socket, a device, a folder)."""


def walk_files(root):
    """Yield ``(relative folder, sorted file names)`` for ``root`` and every folder below it,
    depth first in sorted order, hidden files and folders left out, symbolic links to folders
    not followed (a link loop cannot recur). Folders that cannot be listed are passed over."""
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            with os.scandir(os.path.join(root, rel) if rel else root) as it:
                entries = [e for e in it if not e.name.startswith(".")]
        except OSError:
            continue
        dirs = sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))
        files = sorted(e.name for e in entries if not e.is_dir(follow_symlinks=False))
        yield rel, files
        stack.extend(os.path.join(rel, d) if rel else d for d in reversed(dirs))


def read_regular(path):
    """The bytes of ``path``; :class:`NotRegular` (an ``OSError``) when it is not a regular
    file, read without ever blocking on it."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
                    else "a folder" if stat.S_ISDIR(mode) else "a device")
            raise NotRegular(0, f"not a regular file ({kind})", path)
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 22)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)
