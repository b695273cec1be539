"""Nothing a user has is overwritten or mixed without ``--force``: the one home of that rule.

* :func:`refuse_existing` -- an output that exists is refused in one sentence unless
  ``force`` (the packer's ``PREFIX.rec``, a report, a converted file).
* :class:`OutputLock` -- an output owned by one process while it runs (a training run's
  ``--save-dir``: ``.lock`` inside it; a packer's prefix: ``.PREFIX.lock`` beside it): a second
  one is refused at once, in one sentence naming the holder (pid, host, since when), instead
  of both writing into it. The lock is an ``flock``, so it ends with its process however that
  ends (``kill -9`` included) and works on NFS v4.
* Groups of files are replaced as a whole or not at all: :func:`resnest.gluon.utils.io.
  atomic_group` (the group's marker file is removed first and renamed last).
"""
import errno
import fcntl
import json
import os
import socket
import stat
import time

from .errors import UserError

__all__ = ["refuse_existing", "OutputLock"]


def refuse_existing(paths, force=False, flag="--force", what="output"):
    """UserError naming the first of ``paths`` that exists, unless ``force``."""
    found = [p for p in paths if os.path.lexists(p)]
    if found and not force:
        raise UserError(f"{what} {found[0]} already exists; pass {flag} to replace it, or "
                        "choose another name.")
    return found


class OutputLock:
    """Exclusive ownership of an output while held.

    Parameters
    ----------
    path : str
        A folder (locked through ``.lock`` inside it, the folder created if needed) or, with
        ``prefix=True``, an output prefix (locked through ``.NAME.lock`` beside it).
    what : str
        How messages call the output (e.g. ``'--save-dir runs/a'``).
    info : dict, optional
        Written into the lock file for whoever is refused (e.g. the run id).
    """

    def __init__(self, path, what=None, info=None, prefix=False):
        if prefix:
            folder, name = os.path.split(os.path.abspath(path))
            self.folder, self.path = folder, os.path.join(folder, f".{name}.lock")
        else:
            self.folder, self.path = path, os.path.join(path, ".lock")
        self.what = what or path
        self.info = dict(info or {})
        self._fd = None

    def _holder(self):
        try:
            with open(self.path, encoding="utf-8") as f:
                held = json.load(f)
            since = time.strftime("%Y-%m-%d %H:%M", time.localtime(held.get("since", 0)))
            return f"pid {held.get('pid')} on {held.get('host')}, since {since}"
        except (OSError, ValueError, AttributeError):
            return "another process"

    def acquire(self):
        """Take the lock or raise :class:`UserError` naming its holder."""
        try:
            os.makedirs(self.folder, exist_ok=True)
        except OSError as err:
            raise UserError(f"cannot use {self.what}: {err.strerror}.") from None
        while True:
            try:               # never through a link: the file is truncated, then removed
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK,
                             0o644)
            except OSError as err:
                why = ("it is a symbolic link, not a lock" if err.errno == errno.ELOOP
                       else err.strerror)
                raise UserError(f"cannot use {self.what}: {self.path}: {why}; remove it.") \
                    from None
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise UserError(f"cannot use {self.what}: {self.path} is not a lock file "
                                "(a FIFO, socket or device); remove it.")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise UserError(f"{self.what} is in use by another run ({self._holder()}); "
                                "wait for it to end, or choose another folder.") from None
            try:                       # the file we locked may have been unlinked by its
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino    # last holder
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        record = dict(self.info, pid=os.getpid(), host=socket.gethostname(), since=time.time())
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        self._fd = fd
        return self

    def release(self):
        """Drop the lock and its file (a killed holder's file is taken over by the next)."""
        if self._fd is not None:
            try:
                os.unlink(self.path)             # while still held: no one can be between
            except OSError:
                pass
            os.close(self._fd)                   # closing the last descriptor drops the flock
            self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False
