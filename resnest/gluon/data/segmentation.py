"""Image / class-index mask pairs for semantic segmentation, checked so that a bad pair stops
the run with one sentence instead of turning into a silently wrong mIoU.

Two layouts (``root`` may also be the folder that holds ``ADEChallengeData2016/``):

- ADE20K: ``root/images/{training,validation}/<stem>.jpg`` with
  ``root/annotations/{training,validation}/<stem>.png``; ``split`` is ``'train'`` or ``'val'``.
- Pairs: ``root/images/<stem>.<any image type>`` with ``root/masks/<stem>.png``; no split.

A mask is an 8-bit PNG read as class indices the way GluonCV reads it (PIL, grey ``L`` or
palette ``P``, no colour conversion): 0 = unlabelled (ignored), ``1..K`` = the ``K`` classes,
value ``v`` being class ``v - 1`` of the model (ADE20K's convention). Images go through the
project's one decoder (:func:`~resnest.gluon.data.folder.decode_image`).

Refused, naming the file: an image without a mask or a mask without an image, two files of
one stem, a mask that is not a lossless 8-bit index PNG, an unreadable image or mask, a mask
of another size than its image, a JPEG whose EXIF orientation would rotate the image away
from its mask, and a label above ``K``. Pairing is checked when the samples are listed; the
pixel rules when a pair is read (every read), and for the whole set by :meth:`check`.
"""
import io
import os

import numpy as np

from ..utils.errors import UserError
from ..utils.files import read_regular
from .folder import BadImage, decode_image, is_image_file, jpeg_info

__all__ = ["SegmentationSamples", "read_mask", "SPLIT_FOLDERS"]

SPLIT_FOLDERS = {"train": "training", "val": "validation"}
_ADE_FOLDER = "ADEChallengeData2016"


def read_mask(path):
    """A class-index PNG as a uint8 (H, W) array of its stored indices.

    The file's chunk checksums are verified before decoding: importing ``gluoncv.data`` sets
    PIL's global ``ImageFile.LOAD_TRUNCATED_IMAGES`` (in ``gluoncv/data/mhp.py``), after which
    PIL fills a cut-off PNG with zeros instead of failing; ``verify`` still refuses it.

    Raises
    ------
    UserError
        Unreadable, not a PNG, truncated or corrupt, or not an 8-bit grey / palette image.
    """
    from PIL import Image
    try:
        data = read_regular(path)
    except OSError as err:
        raise UserError(f"cannot read mask {path}: {err.strerror or err}.") from None
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise UserError(f"mask {path} is not a PNG file; masks must be lossless PNGs.")
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()                         # every chunk's CRC, up to IEND
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            mode = im.mode
            mask = np.array(im)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise UserError(f"cannot read mask {path}: {err}.") from None
    if mode not in ("L", "P"):
        raise UserError(f"mask {path} is a {mode!r} image, not an 8-bit class-index PNG (grey "
                        "'L' or palette 'P'); save the class indices themselves.")
    return mask


def _layout(root, split):
    """``(root, layout, image folder, mask folder)`` of a data set folder."""
    if not os.path.isdir(root):
        raise UserError(f"{root} is not a folder; give the segmentation data set's folder.")
    nested = os.path.join(root, _ADE_FOLDER)
    if os.path.isdir(nested) and not os.path.isdir(os.path.join(root, "images")):
        root = nested
    images = os.path.join(root, "images")
    if os.path.isdir(os.path.join(root, "masks")):
        if split is not None:
            raise UserError(f"{root} is a plain images/ + masks/ pair of folders, which has no "
                            f"splits; give the folder of the split itself, not split={split!r}.")
        return root, "pairs", images, os.path.join(root, "masks")
    if os.path.isdir(os.path.join(root, "annotations")):
        folder = SPLIT_FOLDERS.get(split, split)
        if folder not in SPLIT_FOLDERS.values():
            raise UserError(f"{root} is in the ADE20K layout: split must be 'train' or 'val', "
                            f"got {split!r}.")
        return (root, "ade20k", os.path.join(images, folder),
                os.path.join(root, "annotations", folder))
    raise UserError(f"{root} holds neither images/ + annotations/ (the ADE20K layout) nor "
                    "images/ + masks/; point at the data set's folder.")


def _by_stem(folder, what, png_only):
    """``{stem: path}`` of the image files in ``folder`` (hidden and non-image files left out)."""
    if not os.path.isdir(folder):
        raise UserError(f"{folder} is missing: the {what} folder of this split.")
    found = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.startswith(".") or not is_image_file(name) or not os.path.isfile(path):
            continue
        stem, ext = os.path.splitext(name)
        if png_only and ext.lower() != ".png":
            raise UserError(f"mask {path} is not a PNG: masks must be lossless (a JPEG changes "
                            "the class indices at every edge); save it as PNG.")
        if stem in found:
            raise UserError(f"{path} and {found[stem]} share the name {stem!r}; keep one "
                            f"{what} file per name.")
        found[stem] = path
    return found


def _pairs(image_dir, mask_dir):
    images = _by_stem(image_dir, "image", png_only=False)
    masks = _by_stem(mask_dir, "mask", png_only=True)
    lonely = sorted(set(images) - set(masks))
    if lonely:
        raise UserError(f"image {images[lonely[0]]} has no mask {lonely[0]}.png in {mask_dir} "
                        f"({len(lonely)} images have none); every image needs its mask.")
    orphans = sorted(set(masks) - set(images))
    if orphans:
        raise UserError(f"mask {masks[orphans[0]]} has no image in {image_dir} ({len(orphans)} "
                        "masks have none); remove it or add its image.")
    if not images:
        raise UserError(f"{image_dir} holds no images.")
    return [(images[stem], masks[stem]) for stem in sorted(images)]


def _class_names(root, classes):
    """``(names or None, K)`` from ``classes`` (a count, names, or a published list's name)
    or from ``root/classes.txt``; the two must agree when both are there."""
    from ..classes import published_classes
    path = os.path.join(root, "classes.txt")
    in_file = None
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as fcls:
            in_file = [line.rstrip("\n") for line in fcls if line.strip()]
    if classes is None:
        if in_file is None:
            raise UserError(f"{root} has no classes.txt; pass classes (the class count, their "
                            "names, or a published list such as 'ade20k').")
        return in_file, len(in_file)
    if isinstance(classes, str):
        classes = published_classes(classes).names
    if isinstance(classes, (int, np.integer)):
        if in_file is not None and len(in_file) != classes:
            raise UserError(f"{path} names {len(in_file)} classes but classes={classes} "
                            "was given; use the data set's own class count.")
        return in_file, int(classes)
    classes = list(classes)
    if in_file is not None and in_file != classes:
        i = next((i for i, (a, b) in enumerate(zip(in_file, classes)) if a != b),
                 min(len(in_file), len(classes)))
        raise UserError(f"{path} does not match the given class list (class {i}: "
                        f"{in_file[i] if i < len(in_file) else 'none'!r} in the file, "
                        f"{classes[i] if i < len(classes) else 'none'!r} given); use the data "
                        "set's own classes.")
    return classes, len(classes)


class SegmentationSamples:
    """The image / mask pairs of one split, in stem order.

    Parameters
    ----------
    root : str
        The data set folder (see the module doc for the two layouts).
    split : str or None
        ``'train'`` / ``'val'`` (or ``'training'`` / ``'validation'``) for the ADE20K layout,
        None for a plain pair of folders.
    classes : int, list of str, str or None
        The ``K`` classes: their count, their names, or a published list (``'ade20k'``);
        None reads ``root/classes.txt`` (one name per line, line ``i`` = PNG value ``i + 1``),
        or, for ADE20K's own ``ADEChallengeData2016`` folder without one, takes the
        published ADE20K list.
    fallback : int, list of str or None
        The classes when ``classes`` is None and the folder names none (e.g. the class list
        of the model being evaluated).

    Raises
    ------
    UserError
        A layout, pairing or class-list problem (see the module doc).
    """

    def __init__(self, root, split=None, classes=None, fallback=None):
        self.root, self.layout, self.image_dir, self.mask_dir = _layout(root, split)
        if classes is None and not os.path.isfile(os.path.join(self.root, "classes.txt")):
            ade = os.path.basename(os.path.normpath(self.root)) == _ADE_FOLDER
            classes = "ade20k" if ade else fallback   # ADE20K itself: its published list
        self.classes, self.num_classes = _class_names(self.root, classes)
        self.items = _pairs(self.image_dir, self.mask_dir)

    def __len__(self):
        return len(self.items)

    def read(self, index, bgr=False):
        """Pair ``index`` as ``(RGB uint8 (H, W, 3), mask uint8 (H, W))``, the mask holding the
        stored PNG values (0 = unlabelled, ``v`` = class ``v - 1``); BGR with ``bgr``.

        Raises
        ------
        UserError
            An unreadable image or mask, a rotated JPEG, a size mismatch or a label above K.
        """
        image_path, mask_path = self.items[index]
        try:
            data = read_regular(image_path)
        except OSError as err:
            raise UserError(f"cannot read image {image_path}: {err.strerror or err}.") from None
        info = jpeg_info(data)
        if info is not None and info["orientation"] != 1:
            raise UserError(f"image {image_path} carries an EXIF rotation (orientation "
                            f"{info['orientation']}), so it is unclear which way its mask lies; "
                            "save the image upright without the tag.")
        try:
            decoded = decode_image(data)
        except BadImage as err:
            raise UserError(f"cannot read image {image_path}: {err}.") from None
        mask = read_mask(mask_path)
        if mask.shape != decoded.shape[:2]:
            raise UserError(f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but its image "
                            f"{image_path} is {decoded.shape[1]}x{decoded.shape[0]}; a mask must "
                            "label every pixel of its own image.")
        top = int(mask.max())
        if top > self.num_classes:
            raise UserError(f"mask {mask_path} holds the value {top}, beyond the "
                            f"{self.num_classes} classes of this data set (0 = unlabelled, "
                            f"1..{self.num_classes} = the classes; 255 borders are a VOC "
                            "convention, not ADE20K's).")
        return (decoded if bgr else np.ascontiguousarray(decoded[:, :, ::-1])), mask

    __getitem__ = read

    def check(self, indices=None):
        """Read every pair (or those of ``indices``) under all the rules above; return the
        pixel count of each PNG value ``0..K`` (index 0: unlabelled) as an int64 array."""
        counts = np.zeros(self.num_classes + 1, np.int64)
        for index in (range(len(self.items)) if indices is None else indices):
            _, mask = self.read(index)
            counts += np.bincount(mask.ravel(), minlength=self.num_classes + 1)
        return counts
