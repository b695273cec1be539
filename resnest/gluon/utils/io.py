"""Atomic file writes: a file appears under its name complete, or not at all.

Every writer of the project goes through here (checkpoints, the RecordIO packer, the weights
store, metrics and reports): the data goes to a hidden temporary file in the same folder, is
fsync'ed, and is renamed over the target (atomic on POSIX); the folder is fsync'ed so the rename
survives a power cut. A group of files that must appear together is renamed in the order given,
the file that marks the group complete (a JSON record, the ``.rec``) last. A failure, a full
disk or a ``kill -9`` leaves the previous files as they were and no half-written file under a
final name.
"""
import contextlib
import errno
import json
import os

from .errors import UserError

__all__ = ["temp_path", "atomic_write", "atomic_group", "write_text", "write_json"]


def temp_path(path):
    """The hidden temporary name used for ``path`` (same folder, so the rename is atomic)."""
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.{os.getpid()}.tmp")


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
    ``paths``; on any error every temporary file is removed and no target is touched.

    Raises
    ------
    UserError
        A file-system error while writing or renaming (no space left, read-only folder, no
        permission, ...); other exceptions of the writer pass through unchanged.
    """
    paths = [os.path.abspath(p) for p in paths]
    tmps = {p: temp_path(p) for p in paths}
    try:
        yield tmps
        for p in paths:
            _fsync_file(tmps[p])
        for p in paths:
            os.replace(tmps[p], p)
        for folder in sorted({os.path.dirname(p) for p in paths}):
            _fsync_dir(folder)
    except OSError as err:
        if err.errno not in STORAGE_ERRNOS:
            raise
        raise _cannot_write(paths[-1], err) from None
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
    import shutil
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
