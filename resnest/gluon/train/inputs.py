"""The data of a training run: record files (given, or packed from class folders), their sizes,
their class names, and a fingerprint that tells whether a resumed run reads the same data.

``--train-dir``/``--val-dir`` folders are packed once with the project's packer into
``<folder>.rec`` (with ``.idx``, ``.lst``, ``.classes.txt``) beside the folder, described by
``<folder>.pack.json``; a later run reuses them while the folder is unchanged (the same files,
sizes and modification times) and packs again when it changed. Rank 0 packs; the other ranks
wait and then check they see the same files.
"""
import hashlib
import json
import os
from dataclasses import dataclass
from typing import List, Optional

from ..utils.errors import UserError
from ..utils.io import write_json

__all__ = ["TrainData", "resolve_inputs", "packed_folder", "class_names_of"]

PACK_VERSION = 1


@dataclass
class TrainData:
    """What a run trains and evaluates on."""
    rec_train: str
    rec_val: str
    classes: int
    class_names: Optional[List[str]]
    train_samples: int
    val_samples: int
    fingerprints: dict                # {'train_data': ..., 'val_data': ...} for resume checks


def class_names_of(rec_path):
    """The class names in ``PREFIX.classes.txt`` beside ``rec_path``, or None."""
    from ..data.listing import read_classes
    return read_classes(rec_path[:-4] + ".classes.txt")


def _fingerprint(rec_path, num_samples):
    """``'<file name>: N images, idx sha1 <12 hex>'``: what identifies a data set cheaply."""
    from ..utils.checksum import sha1_file
    return (f"{os.path.basename(rec_path)}: {num_samples} images, idx sha1 "
            f"{sha1_file(rec_path[:-4] + '.idx')[:12]}")


def _folder_state(folder):
    """A hash of every image's relative path, size and modification time under ``folder``."""
    from ..data.folder import scan_class_folders
    classes, items = scan_class_folders(folder)
    digest = hashlib.sha1(json.dumps(classes).encode())
    for path, label in items:
        st = os.stat(os.path.join(folder, path))
        digest.update(f"{path}\t{label}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return digest.hexdigest(), len(items)


def packed_folder(folder, shuffle, workers=1, log=print):
    """``<folder>.rec`` packed from the class folders in ``folder``, packing only when there
    is no pack of the folder as it is now. Returns the .rec path."""
    from ..data.pack import PackOptions, pack_records, plan_image_folder
    if not os.path.isdir(folder):
        raise UserError(f"{folder} is not a folder; give a folder with one sub-folder per class.")
    prefix = os.path.normpath(os.path.abspath(folder))
    state, count = _folder_state(folder)
    meta_path = prefix + ".pack.json"
    want = {"version": PACK_VERSION, "folder_state": state, "shuffle": shuffle}
    try:
        with open(meta_path, encoding="utf-8") as f:
            if json.load(f) == want and os.path.isfile(prefix + ".rec") \
                    and os.path.isfile(prefix + ".idx"):
                return prefix + ".rec"
    except (OSError, ValueError):
        pass
    log(f"packing {count} images of {folder} into {prefix}.rec (once; reused while the folder "
        "is unchanged)")
    entries = plan_image_folder(folder, prefix, shuffle=shuffle, seed=0, force=True)
    result = pack_records(folder, entries, prefix, PackOptions(), workers=workers)
    if result.skipped:
        log(f"skipped {len(result.skipped)} unusable images (see {prefix}.skipped.tsv)")
    write_json(meta_path, want)                           # last: the pack is complete
    return prefix + ".rec"


def _check_class_lists(train_names, val_names, rec_train, rec_val):
    if train_names is None or val_names is None or train_names == val_names:
        return
    missing = sorted(set(train_names) - set(val_names))
    extra = sorted(set(val_names) - set(train_names))
    detail = (f"missing in validation: {', '.join(missing[:5])}" if missing else
              f"only in validation: {', '.join(extra[:5])}" if extra else
              "the same names in another order")
    raise UserError(f"the classes of {rec_train} and {rec_val} differ ({len(train_names)} vs "
                    f"{len(val_names)}; {detail}), so label i would mean different classes; "
                    "pack both from folders with the same class sub-folders.")


def resolve_inputs(cfg, dist, log):
    """The :class:`TrainData` of ``cfg``: packs ``--train-dir``/``--val-dir`` when needed (rank
    0), reads sizes and class names, and checks that they fit together."""
    from ..data import rec_info
    rec_train, rec_val = cfg.rec_train, cfg.rec_val
    if cfg.train_dir or cfg.val_dir:
        error = None
        if dist.is_root:
            try:
                rec_train = rec_train or packed_folder(cfg.train_dir, True, cfg.data_nthreads,
                                                       log)
                rec_val = rec_val or packed_folder(cfg.val_dir, False, cfg.data_nthreads, log)
            except UserError as err:
                error = err
        if dist.failed_ranks(error is None, "packed"):
            raise error or UserError("rank 0 could not pack the class folders (its message "
                                     "says why).")
        rec_train = rec_train or os.path.normpath(os.path.abspath(cfg.train_dir)) + ".rec"
        rec_val = rec_val or os.path.normpath(os.path.abspath(cfg.val_dir)) + ".rec"
    train_info, val_info = rec_info(rec_train), rec_info(rec_val)
    names = class_names_of(rec_train)
    _check_class_lists(names, class_names_of(rec_val), rec_train, rec_val)
    found = max(train_info.classes, val_info.classes)
    classes = cfg.classes or found
    if classes < found:
        raise UserError(f"--classes {classes} is smaller than the {found} classes in the data; "
                        "drop --classes to read it from the data.")
    if names is not None and cfg.classes and cfg.classes != len(names):
        raise UserError(f"--classes {cfg.classes} does not match the {len(names)} class names "
                        f"of {rec_train}; drop --classes.")
    if cfg.batch_size * dist.size > train_info.num_samples:
        raise UserError(f"--batch-size {cfg.batch_size} x {dist.size} worker(s) is larger than "
                        f"the {train_info.num_samples} images in {rec_train}; use a smaller "
                        "--batch-size.")
    prints = {"train_data": _fingerprint(rec_train, train_info.num_samples),
              "val_data": _fingerprint(rec_val, val_info.num_samples)}
    return TrainData(rec_train, rec_val, classes, names, train_info.num_samples,
                     val_info.num_samples, prints)
