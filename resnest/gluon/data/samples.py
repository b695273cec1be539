"""Sample sources for the Python loader: item ``position`` -> ``(RGB uint8 HWC, label)``.

Both read files directly (no MXNet), so loader worker processes start without importing it,
and both turn a failure into one sentence that names the file, and for records the record
and its byte offset, pointing to ``im2rec.py --check``.
"""
import os

import cv2
import numpy as np

from ..utils.errors import UserError
from ..utils.files import read_regular
from .folder import BadImage, decode_image, scan_class_folders
from .recordio import RecordError, read_record, unpack_payload
from .validate import checked_index

__all__ = ["RecordSamples", "FolderSamples"]


class RecordSamples:
    """The images of a ``.rec`` file in index order (as MXNet's ``RecordFileDataset``), the
    pair checked by :func:`~resnest.gluon.data.validate.checked_index` when built."""

    def __init__(self, rec_path):
        prefix = rec_path[:-4] if rec_path.endswith('.rec') else rec_path
        self.path = rec_path = prefix + '.rec'
        entries, info = checked_index(rec_path)
        self.num_samples, self.classes = info.num_samples, info.classes
        self.class_names = info.class_names        # None: the pack names no classes
        self._keys = np.array([key for key, _ in entries], np.int64)
        self._offsets = np.array([offset for _, offset in entries], np.int64)
        self._file = None                          # opened lazily, once per worker process

    def __len__(self):
        return self.num_samples

    def _damaged(self, position, reason):
        return UserError(f"record {self._keys[position]} of {self.path} (at byte "
                         f"{self._offsets[position]}) {reason}; run scripts/dataset/im2rec.py "
                         f"--check {self.path[:-4]} to find every damaged record, and rebuild "
                         "the file.")

    def read(self, position, bgr=False):
        """``(RGB uint8 HWC image, label)`` of record ``position`` (BGR with ``bgr``)."""
        position = int(position)
        if self._file is None:
            self._file = open(self.path, 'rb')
        try:
            labels, _, image = unpack_payload(read_record(self._file,
                                                          int(self._offsets[position]))[0])
        except RecordError as err:
            raise self._damaged(position, f'is damaged ({err})') from None
        img = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise self._damaged(position, 'holds an image that does not decode')
        return (img if bgr else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)), float(labels[0])

    def __getstate__(self):                        # workers reopen the file themselves
        return dict(self.__dict__, _file=None)


class FolderSamples:
    """The images of a class-folder tree ``root/<class>/...`` (label ``i`` = ``i``-th sorted
    folder name), decoded upright (EXIF) as RGB. Evaluating given files, it decodes what
    libjpeg can of a file with a damage warning (as MXNet and PIL do) rather than stop the
    evaluation; it refuses empty, truncated and oversized files."""

    def __init__(self, root):
        if not os.path.isdir(root):
            raise UserError(f"image folder {root} does not exist; give a folder with one "
                            "sub-folder per class.")
        self.root = root
        self.class_names, self.items = scan_class_folders(root)
        if not self.items:
            raise UserError(f"no images found under {root}/<class>/; the images must be in "
                            "one sub-folder per class.")
        self.num_samples, self.classes = len(self.items), len(self.class_names)

    def __len__(self):
        return self.num_samples

    def read(self, position, bgr=False):
        """``(RGB uint8 HWC image, label)`` of image ``position`` (BGR with ``bgr``)."""
        path, label = self.items[int(position)]
        try:
            img = decode_image(read_regular(os.path.join(self.root, path)), damage_warnings=False)
        except (OSError, BadImage) as err:
            raise UserError(f"{os.path.join(self.root, path)} cannot be used ({err}).") from None
        return (img if bgr else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)), float(label)
