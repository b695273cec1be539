"""Images to classify, as a user names them: files, folders (searched recursively), glob
patterns and ``.rec`` files, in any number and mix (what ``scripts/gluon/predict.py`` takes).

:func:`collect_inputs` expands the names into :class:`InputItem` rows; :class:`ImageInputs`
reads, decodes (upright by EXIF, :func:`~resnest.gluon.data.folder.decode_image`) and
transforms them, turning a file that cannot be read or decoded into an error string for that
row instead of an exception, so one bad file does not stop a run.
"""
import glob
import os
from typing import NamedTuple

import numpy as np

from ..utils.errors import UserError
from ..utils.files import read_regular, walk_files
from .folder import BadImage, decode_image, is_image_file
from .recordio import RecordError, read_idx, read_record, unpack_payload
from .validate import rec_info

__all__ = ["InputItem", "collect_inputs", "ImageInputs"]

_GLOB_CHARS = frozenset("*?[")


class InputItem(NamedTuple):
    """One image to classify: ``name`` is how the output calls it (the path, or
    ``file.rec#key`` for a record), ``path`` the file to read, ``offset`` the record's byte
    offset in a ``.rec`` (-1 for an image file)."""

    name: str
    path: str
    offset: int = -1


def _folder_images(folder):
    """Every image file below ``folder`` (hidden files and folders left out), sorted."""
    found = [os.path.join(folder, rel, f) if rel else os.path.join(folder, f)
             for rel, files in walk_files(folder) for f in files if is_image_file(f)]
    if not found:
        raise UserError(f"folder {folder} holds no image files (looked for "
                        "jpg/png/bmp/tif/webp/gif/ppm at any depth); give another folder.")
    return [InputItem(p, p) for p in found]


def _records(rec_path):
    """One item per record of ``rec_path``, in the order of its ``.idx``."""
    rec_info(rec_path)                          # one sentence if the .idx is missing or wrong
    return [InputItem(f"{rec_path}#{key}", rec_path, offset)
            for key, offset in read_idx(rec_path[:-4] + ".idx")]


def _expand(path):
    if os.path.isdir(path):
        return _folder_images(path)
    if path.endswith(".rec"):
        return _records(path)
    return [InputItem(path, path)]


def collect_inputs(inputs):
    """Expand image files, folders, glob patterns and ``.rec`` files into items.

    Parameters
    ----------
    inputs : sequence of str
        Any mix of: an image file (any file is taken and tried; one that does not decode
        becomes an error row), a folder (every image file below it, sorted), a glob pattern
        (``**`` spans folders; matches sorted, folders among them searched) or a ``.rec``
        with its ``.idx`` beside it (every record).

    Returns
    -------
    list of InputItem
        In the order given; an image named twice is kept once.

    Raises
    ------
    UserError
        No inputs, a path that does not exist, a pattern that matches nothing, or a folder
        without images.
    """
    if not inputs:
        raise UserError("no inputs given; name image files, folders, glob patterns or a .rec.")
    items, seen = [], set()
    for name in inputs:
        if os.path.exists(name):
            paths = [name]
        elif _GLOB_CHARS & set(name):
            paths = sorted(glob.glob(name, recursive=True))
            if not paths:
                raise UserError(f"the pattern {name} matches no files; check the path.")
        else:
            raise UserError(f"{name} does not exist; give image files, folders, glob "
                            "patterns or a .rec file.")
        for path in paths:
            for item in _expand(path):
                key = (os.path.normpath(item.path), item.offset)
                if key not in seen:
                    seen.add(key)
                    items.append(item)
    return items


def _identity(samples):
    """Batches stay lists of ``(position, image or None, error or None, label or None)``."""
    return samples


class ImageInputs:
    """A Gluon dataset over :class:`InputItem` rows: item ``i`` -> ``(i, image, error,
    label)``. ``image`` is ``transform(RGB uint8 HWC)`` or None when the file cannot be read
    or decoded, and then ``error`` says why; ``label`` is a record's label (None for files).

    Use :attr:`batchify_fn` with ``mxnet.gluon.data.DataLoader``: it keeps a batch as a list,
    so failed rows travel with the good ones, in order.
    """

    batchify_fn = staticmethod(_identity)

    def __init__(self, items, transform):
        self.items, self.transform = list(items), transform
        self._handles = {}                         # open .rec files, per worker process

    def __len__(self):
        return len(self.items)

    def _read(self, item):
        if item.offset < 0:
            return read_regular(item.path), None
        handle = self._handles.get(item.path)
        if handle is None:
            handle = self._handles[item.path] = open(item.path, "rb")
        labels, _, image = unpack_payload(read_record(handle, item.offset)[0])
        return image, labels[0]

    def __getitem__(self, position):
        label = None
        try:
            data, label = self._read(self.items[position])
            bgr = decode_image(data)
        except OSError as err:
            return position, None, err.strerror or str(err), label
        except (BadImage, RecordError) as err:
            return position, None, str(err), label
        return position, self.transform(np.ascontiguousarray(bgr[:, :, ::-1])), None, label

    def __getstate__(self):                        # workers open the .rec files themselves
        return dict(self.__dict__, _handles={})
