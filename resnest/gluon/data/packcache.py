"""Class folders packed once: ``<folder>.rec`` (with its side-cars) beside ``<folder>``,
described by ``<folder>.pack.json``, the one module that writes and reads that file.

A later run reuses the pack while the folder is unchanged (the same files, sizes and
modification times) and the group is the one packed (the ``.rec``'s size and modification time,
the ``.idx`` and ``.classes.txt`` bytes, recorded once the group is in place), and packs again
otherwise. A ``<folder>.rec`` that this module did
not write (no description, or one of another folder) belongs to the user and is never
replaced: it is refused in one sentence.
"""
import hashlib
import json
import os
import stat

from ..utils.errors import UserError
from ..utils.files import read_regular
from ..utils.io import write_json
from .folder import scan_class_folders
from .pack import PackOptions, pack_records, plan_image_folder

__all__ = ["PACK_VERSION", "pack_prefix", "cached_pack"]

PACK_VERSION = 2


def pack_prefix(folder):
    """The prefix of ``folder``'s cached pack: ``<folder>`` itself, absolute."""
    return os.path.normpath(os.path.abspath(folder))


def _folder_state(folder):
    """A hash of every image's relative path, size and modification time under ``folder``."""
    classes, items = scan_class_folders(folder)
    digest = hashlib.sha1(json.dumps(classes).encode())
    for path, label in items:
        try:
            st = os.stat(os.path.join(folder, path))
            digest.update(f"{path}\t{label}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}\t{label}\tunreadable\n".encode())
    return digest.hexdigest(), len(items)


def _group_state(prefix):
    """What identifies the packed group at ``prefix``: the ``.rec``'s size and modification
    time (it may be hundreds of GB) and the sha1 of its ``.idx`` and ``.classes.txt``; None when
    one of them is missing or not a regular file."""
    try:
        st = os.lstat(prefix + ".rec")
        if not stat.S_ISREG(st.st_mode):                  # a symlink, FIFO or folder
            return None
        state = {".rec": [st.st_size, st.st_mtime_ns]}
        for suffix in (".idx", ".classes.txt"):
            state[suffix] = hashlib.sha1(read_regular(prefix + suffix)).hexdigest()
        return state
    except OSError:
        return None


def _description(prefix):
    """The cache's description of ``prefix``, or None (absent, unreadable, or not a file: a
    FIFO there would block an ``open`` for ever)."""
    try:
        data = json.loads(read_regular(prefix + ".pack.json").decode("utf-8"))
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def cached_pack(folder, shuffle, workers=1, log=print):
    """``<folder>.rec`` packed from the class folders in ``folder``, packing only when there
    is no pack of the folder as it is now. Returns the ``.rec`` path.

    Raises
    ------
    UserError
        ``folder`` is not a folder, or ``<folder>.rec`` exists and was not packed here from
        ``folder`` (it is the user's: pass it as a .rec instead), or packing fails.
    """
    if not os.path.isdir(folder):
        raise UserError(f"{folder} is not a folder; give a folder with one sub-folder per class.")
    prefix = pack_prefix(folder)
    state, count = _folder_state(folder)
    want = {"version": PACK_VERSION, "folder": prefix, "folder_state": state, "shuffle": shuffle}
    have = _description(prefix)
    ours = have is not None and have.get("folder", prefix) == prefix
    if os.path.lexists(prefix + ".rec") and not ours:
        raise UserError(f"{prefix}.rec exists and was not packed from {folder} by this "
                        "project's cache; use it with --rec-train/--rec-val, or move it away "
                        "to have the folder packed.")
    group = _group_state(prefix)
    if have is not None and group is not None and \
            {**have, "folder": prefix} == {**want, "group": group}:
        return prefix + ".rec"
    log(f"packing {count} images of {folder} into {prefix}.rec (once; reused while the folder "
        "is unchanged)")
    entries, classes = plan_image_folder(folder, shuffle=shuffle, seed=0)
    # The description is part of the pack's group: a pack is the cache's from its first byte.
    # The group's own state is added once the group is in place; a run stopped in between
    # leaves a description without it, which the next run packs again.
    result = pack_records(folder, entries, prefix, PackOptions(), workers=workers,
                          classes=classes, force=ours,
                          extra_files={".pack.json": json.dumps(want, indent=1) + "\n"})
    write_json(prefix + ".pack.json", {**want, "group": _group_state(prefix)})
    if result.skipped:
        log(f"skipped {len(result.skipped)} unusable images (see {prefix}.skipped.tsv)")
    return prefix + ".rec"
