"""Segmentation transforms of an image and its mask together, as GluonCV 0.10.5 does them
(``gluoncv/data/segbase.py``), with the random draws made explicit.

Training (``SegmentationDataset._sync_transform``), in this order:

1. flip left-right with probability 1/2;
2. resize so that the LONGER side is a random integer in ``[base_size / 2, 2 * base_size]``
   (GluonCV's comment says "short edge", its code scales the long side), the other side
   ``int(side * long / longer + 0.5)``; PIL bilinear for the image (which antialiases when it
   shrinks), nearest for the mask;
3. if the shorter side is below ``crop_size``, pad the bottom / right up to ``crop_size``
   with 0 (black image, unlabelled mask);
4. a random ``crop_size`` x ``crop_size`` crop;
5. with probability 1/2, PIL Gaussian blur of the image only, radius uniform in [0, 1)
   (from PSPNet's recipe).

Validation (``_val_sync_transform``): resize the SHORTER side to ``crop_size`` (the other
``int(side * crop / shorter)``, truncated), then the centred ``crop_size`` square (offsets
``int(round((side - crop) / 2))``, Python's half-to-even rounding). The mask target
(ADE20K's ``_mask_transform``) is ``int32(mask) - 1``: unlabelled 0 becomes -1 (ignored),
value ``v`` becomes class ``v - 1``.

GluonCV takes its draws from Python's global ``random``; here :func:`draw_train` takes them
from a ``numpy.random.RandomState`` (one per sample, as :mod:`.transforms` does) in the same
order, and :func:`train_sync_transform` applies them, so the augmentation of a sample is a pure
function of its seed. ``base_size`` / ``crop_size`` of the published models are in
:class:`~resnest.gluon.pretrained.SegmentationEval` (520 / 480).
"""
from typing import NamedTuple, Optional

import numpy as np

from ..pretrained import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["TrainDraws", "draw_train", "scaled_size", "train_sync_transform",
           "val_sync_transform", "mask_target", "to_input", "SegmentationTrainTransform",
           "SegmentationEvalTransform"]


class TrainDraws(NamedTuple):
    """The random choices of one training sample."""

    flip: bool
    long_size: int                 # the longer side after the random resize
    x1: int                        # crop offsets in the resized (and padded) image
    y1: int
    blur_radius: Optional[float]   # None: no blur


def scaled_size(height, width, long_size):
    """``(height, width)`` after GluonCV's random resize of the longer side to ``long_size``
    (the longer side is the height only when strictly taller than wide)."""
    if height > width:
        return long_size, int(1.0 * width * long_size / height + 0.5)
    return int(1.0 * height * long_size / width + 0.5), long_size


def draw_train(height, width, base_size, crop_size, rng):
    """The :class:`TrainDraws` for an image of ``height`` x ``width``, drawn from ``rng`` in
    GluonCV's order (flip, scale, crop x, crop y, blur, radius)."""
    flip = bool(rng.random_sample() < 0.5)
    long_size = int(rng.randint(int(base_size * 0.5), int(base_size * 2.0) + 1))
    new_h, new_w = scaled_size(height, width, long_size)
    x1 = int(rng.randint(0, max(new_w, crop_size) - crop_size + 1))
    y1 = int(rng.randint(0, max(new_h, crop_size) - crop_size + 1))
    radius = float(rng.random_sample()) if rng.random_sample() < 0.5 else None
    return TrainDraws(flip, long_size, x1, y1, radius)


def _resize(img, mask, height, width):
    from PIL import Image
    img = Image.fromarray(img).resize((width, height), Image.Resampling.BILINEAR)
    mask = Image.fromarray(mask).resize((width, height), Image.Resampling.NEAREST)
    return np.asarray(img), np.asarray(mask)


def train_sync_transform(img, mask, draws, crop_size):
    """Apply :class:`TrainDraws` to an RGB uint8 (H, W, 3) image and its uint8 (H, W) mask.

    Returns
    -------
    (uint8 (crop, crop, 3), uint8 (crop, crop))
        The mask still holds PNG values (0 = unlabelled); see :func:`mask_target`.
    """
    from PIL import Image, ImageFilter
    if draws.flip:
        img, mask = img[:, ::-1], mask[:, ::-1]
    new_h, new_w = scaled_size(img.shape[0], img.shape[1], draws.long_size)
    img, mask = _resize(np.ascontiguousarray(img), np.ascontiguousarray(mask), new_h, new_w)
    pad_h, pad_w = max(crop_size - new_h, 0), max(crop_size - new_w, 0)
    if pad_h or pad_w:
        img = np.pad(img, ((0, pad_h), (0, pad_w), (0, 0)))
        mask = np.pad(mask, ((0, pad_h), (0, pad_w)))
    rows = slice(draws.y1, draws.y1 + crop_size)
    cols = slice(draws.x1, draws.x1 + crop_size)
    img, mask = img[rows, cols], mask[rows, cols]
    if draws.blur_radius is not None:
        blur = ImageFilter.GaussianBlur(radius=draws.blur_radius)
        img = np.asarray(Image.fromarray(np.ascontiguousarray(img)).filter(blur))
    return np.ascontiguousarray(img), np.ascontiguousarray(mask)


def val_sync_transform(img, mask, crop_size):
    """GluonCV's validation transform: shorter side to ``crop_size``, centred square crop."""
    height, width = img.shape[:2]
    if width > height:
        new_h, new_w = crop_size, int(1.0 * width * crop_size / height)
    else:
        new_h, new_w = int(1.0 * height * crop_size / width), crop_size
    img, mask = _resize(img, mask, new_h, new_w)
    x1, y1 = int(round((new_w - crop_size) / 2.)), int(round((new_h - crop_size) / 2.))
    return (np.ascontiguousarray(img[y1:y1 + crop_size, x1:x1 + crop_size]),
            np.ascontiguousarray(mask[y1:y1 + crop_size, x1:x1 + crop_size]))


def mask_target(mask):
    """PNG values -> training target: ``int32(mask) - 1`` (unlabelled -> -1, ignored)."""
    return np.asarray(mask, np.int32) - 1


def to_input(img, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """RGB uint8 (H, W, 3) -> the model's float32 (3, H, W): GluonCV's ``ToTensor`` (/ 255)
    then ``Normalize(mean, std)``, in float32 as theirs."""
    x = img.astype(np.float32).transpose(2, 0, 1) / np.float32(255.0)
    return (x - np.asarray(mean, np.float32).reshape(3, 1, 1)) / \
        np.asarray(std, np.float32).reshape(3, 1, 1)


class SegmentationTrainTransform:
    """GluonCV's training augmentation of an image and its mask (:func:`draw_train` with the
    sample's own random state, :func:`train_sync_transform`), then :func:`to_input` and
    :func:`mask_target`; picklable, for the loader's worker processes (``joint``: the loader
    hands it the image and the mask together)."""

    joint = True

    def __init__(self, base_size, crop_size, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        self.base_size, self.crop_size, self.mean, self.std = base_size, crop_size, mean, std

    def __call__(self, img, mask, rng):
        draws = draw_train(img.shape[0], img.shape[1], self.base_size, self.crop_size, rng)
        img, mask = train_sync_transform(img, mask, draws, self.crop_size)
        return to_input(img, self.mean, self.std), mask_target(mask)


class SegmentationEvalTransform:
    """An evaluation image and its mask as the model's input and target: with ``crop_size``
    GluonCV's in-training validation (:func:`val_sync_transform`), without it the whole image
    at its own size (GluonCV's ``testval`` mode, what its test.py scores)."""

    joint = True

    def __init__(self, crop_size=None, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        self.crop_size, self.mean, self.std = crop_size, mean, std

    def __call__(self, img, mask, rng=None):
        if self.crop_size:
            img, mask = val_sync_transform(img, mask, self.crop_size)
        return to_input(img, self.mean, self.std), mask_target(mask)
