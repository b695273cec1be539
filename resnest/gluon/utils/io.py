"""Atomic file writes: a file appears under its name complete, or not at all.

Every writer of the project goes through here (checkpoints, the RecordIO packer, the weights
store, metrics and reports): the data goes to a hidden temporary file in the same folder
(``.{name}.{host}.{pid}.tmp``), is fsync'ed, and is renamed over the target (atomic on POSIX);
the folder is fsync'ed so the rename survives a power cut. A group of files that must appear
together is renamed in the order given, the file that marks the group complete (a JSON
record, the ``.rec``) last; when the group replaces an older one, that marker is removed
first, so no moment shows the old marker beside new companions (a reader sees the old group,
no group, or the new group).

Nothing is left behind: a failure or a signal (which :mod:`.processes` turns into an
exception) removes the temporary files; a ``kill -9`` cannot, so every write first removes the
temporary files in its folders whose writer (this host, that pid) is no longer alive.
"""
import contextlib
import errno
import json
import os
import re
import shutil
import socket

from .errors import UserError

__all__ = ["STORAGE_ERRNOS", "temp_path", "sweep_stale_temps", "atomic_write", "atomic_group",
           "write_text", "write_json"]

_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"
_TEMP = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9_-]+)\.(?P<pid>\d+)\.tmp$")


def temp_path(path):
    """The hidden temporary name used for ``path`` (same folder, so the rename is atomic)."""
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.{_HOST}.{os.getpid()}.tmp")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_temps(folder):
    """Remove the temporary files in ``folder`` left by writers of this host that are dead
    (``kill -9``, power loss); returns their names. Writers on other hosts sharing the
    folder, and live ones, are left alone."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = _TEMP.match(name)
        if m and m.group("host") == _HOST and not _alive(int(m.group("pid"))):
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                os.remove(os.path.join(folder, name))
                removed.append(name)
    return removed


def _fsync_file(path):
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _fsync_dir(folder):
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Errors of the file system itself (as opposed to, say, a network error inside a writer).
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                            errno.EIO, errno.EFBIG, errno.ENOENT, errno.ENOTDIR, errno.EISDIR})


def _cannot_write(path, err):
    return UserError(f"cannot write {path}: {err.strerror or err}; the previous file (if any) "
                     "is unchanged.")


@contextlib.contextmanager
def atomic_group(paths):
    """Temporary paths for files that must appear together: ``with atomic_group([a, b]) as
    tmp: write tmp[a], tmp[b]``. On success each is fsync'ed and renamed, in the order of
    ``paths`` (the last one is the group's marker, see the module doc); on any error every
    temporary file is removed and no target is touched.

    Raises
    ------
    UserError
        A file-system error while writing or renaming (no space left, read-only folder, no
        permission, ...); other exceptions of the writer pass through unchanged.
    """
    paths = [os.path.abspath(p) for p in paths]
    tmps = {p: temp_path(p) for p in paths}
    folders = sorted({os.path.dirname(p) for p in paths})
    for folder in folders:
        sweep_stale_temps(folder)
    for p in paths:                # a rename cannot replace them: refused before anything moves
        if os.path.isdir(p) and not os.path.islink(p):
            raise UserError(f"cannot write {p}: a folder of that name is in the way; nothing "
                            "was written.")
    current = paths[-1]
    try:
        yield tmps
        for p in paths:
            _fsync_file(tmps[p])
        marker = paths[-1]
        if len(paths) > 1 and os.path.lexists(marker):
            os.remove(marker)                       # the old group stops being a group first
        for current in paths:
            os.replace(tmps[current], current)
        for folder in folders:
            _fsync_dir(folder)
    except OSError as err:
        if err.errno not in STORAGE_ERRNOS:
            raise
        raise _cannot_write(current, err) from None
    finally:
        for tmp in tmps.values():
            if os.path.exists(tmp):
                os.remove(tmp)


def atomic_write(path, write):
    """Call ``write(tmp_path)``, then fsync and rename ``tmp_path`` to ``path``."""
    with atomic_group([path]) as tmp:
        write(tmp[os.path.abspath(path)])


def write_text(path, text):
    """Atomically replace ``path`` with ``text`` (UTF-8)."""
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    atomic_write(path, write)


def write_json(path, obj):
    """Atomically replace ``path`` with ``obj`` as indented JSON."""
    write_text(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")


# A generated folder (a data set written from packaged sources) records how it was made here;
# the file is the last thing put into the staging folder before the rename.
GENERATED_MARKER = ".complete.json"


def generated_folder_done(out_dir, settings, what):
    """Whether ``out_dir`` is already a complete ``what`` folder made with ``settings``.

    Returns False when ``out_dir`` is absent or empty (the caller writes it).

    Raises
    ------
    UserError
        ``out_dir`` holds ``what`` made with other settings, or something else.
    """
    marker = os.path.join(out_dir, GENERATED_MARKER)
    if os.path.isfile(marker):
        with open(marker, encoding="utf-8") as fmark:
            if json.load(fmark).get("settings") == settings:
                return True
        raise UserError(f"{out_dir} holds {what} written with other settings; remove it or "
                        "choose another folder.")
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        raise UserError(f"{out_dir} exists and is not a finished {what} folder; remove it or "
                        "choose another folder.")
    return False


def staging_folder(out_dir):
    """A fresh, empty ``<out_dir>.partial`` beside ``out_dir`` (a previous attempt's leftovers
    are removed) for :func:`publish_folder`."""
    staging = f"{os.path.abspath(out_dir).rstrip(os.sep)}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    return staging


def publish_folder(staging, out_dir, record):
    """Write ``record`` (a dict holding ``settings``) as the marker of ``staging``, then rename
    ``staging`` to ``out_dir`` (an empty ``out_dir`` is replaced): the folder appears under its
    name complete or not at all."""
    with open(os.path.join(staging, GENERATED_MARKER), "w", encoding="utf-8") as fmark:
        json.dump(record, fmark, sort_keys=True)
    if os.path.isdir(out_dir):
        os.rmdir(out_dir)
    os.replace(staging, out_dir)
