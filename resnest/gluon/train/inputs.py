"""The data of a classification run: record files (given, or packed from class folders), their
sizes, their class names, and a fingerprint that tells whether a resumed run reads the same data.

``--train-dir``/``--val-dir`` folders are packed once into ``<folder>.rec`` beside the folder
(:mod:`resnest.gluon.data.packcache`). Rank 0 packs; the other ranks wait and then read the
same files.
"""
import os
from dataclasses import dataclass
from typing import List, Optional

from ..data.packcache import cached_pack, pack_prefix
from ..data.validate import rec_info
from ..utils.checksum import sha1_file
from ..utils.errors import UserError

__all__ = ["TrainData", "resolve_inputs", "fingerprint"]


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


def fingerprint(path, num_samples, index_path=None):
    """``'<file name>: N images, idx sha1 <12 hex>'``: what identifies a data set cheaply (the
    index of a pack holds every record's offset, so any change of the records changes it)."""
    index_path = index_path or path[:-4] + ".idx"
    return (f"{os.path.basename(path)}: {num_samples} images, idx sha1 "
            f"{sha1_file(index_path)[:12]}")


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
    rec_train, rec_val = cfg.rec_train, cfg.rec_val
    if cfg.train_dir or cfg.val_dir:
        error = None
        if dist.is_root:
            try:
                rec_train = rec_train or cached_pack(cfg.train_dir, True, cfg.data_nthreads, log)
                rec_val = rec_val or cached_pack(cfg.val_dir, False, cfg.data_nthreads, log)
            except UserError as err:
                error = err
        if dist.failed_ranks(error is None, "packed"):
            raise error or UserError("rank 0 could not pack the class folders (its message "
                                     "says why).")
        rec_train = rec_train or pack_prefix(cfg.train_dir) + ".rec"
        rec_val = rec_val or pack_prefix(cfg.val_dir) + ".rec"
    train_info, val_info = rec_info(rec_train), rec_info(rec_val)
    names = train_info.class_names
    _check_class_lists(names, val_info.class_names, rec_train, rec_val)
    found = max(train_info.classes, val_info.classes)
    if train_info.present < 2:
        raise UserError(f"every image of {rec_train} has the same label: a classifier needs "
                        "at least two classes to learn (it would score 100% by naming that "
                        "one).")
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
    prints = {"train_data": fingerprint(rec_train, train_info.num_samples),
              "val_data": fingerprint(rec_val, val_info.num_samples)}
    return TrainData(rec_train, rec_val, classes, names, train_info.num_samples,
                     val_info.num_samples, prints)
