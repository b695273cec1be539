"""The detection evaluation transform of GluonCV's Faster R-CNN models
(``FasterRCNNDefaultValTransform``): an RGB uint8 image -> the resized, normalised input
tensor and the scale that maps the detected boxes back onto the original image.

The short side goes to ``short`` unless the long side would then exceed ``max_size``, in which
case the long side goes to ``max_size``; the size is rounded half to even, the image resized by
OpenCV (``cv2.resize``, what GluonCV's ``mx.image.imresize`` wraps: equal pixel for pixel,
tested; bilinear), then scaled to [0, 1] and normalised with the ImageNet mean and std. No
MXNet is needed, so the loader's worker processes do not import it. Detected boxes are clipped to the
resized image and multiplied by ``scale = original height / resized height``, as GluonCV's
evaluation does.

>>> transform = detection_eval_transform("faster_rcnn_fpn_resnest50_coco")
>>> data, scale = transform(image)              # (3, h, w) float32, float
>>> boxes = restore_boxes(boxes, scale, data.shape[1:])
"""
import dataclasses
from typing import NamedTuple

import numpy as np

from ..utils.errors import UserError
from .transforms import normalize_chw

__all__ = ["DetectionInput", "resized_size", "DetectionTransform", "detection_eval_transform",
           "restore_boxes"]


class DetectionInput(NamedTuple):
    """A transformed image: ``data`` float32 CHW and ``scale`` (original / resized)."""

    data: np.ndarray
    scale: float


def resized_size(height, width, short, max_size):
    """``(new_height, new_width)`` of GluonCV's ``resize_short_within`` (``mult_base=1``)."""
    if height < 1 or width < 1:
        raise UserError(f"cannot resize an empty image ({height}x{width}).")
    small, large = min(height, width), max(height, width)
    scale = float(short) / small
    if np.round(scale * large) > max_size:
        scale = float(max_size) / large
    return int(np.round(height * scale)), int(np.round(width * scale))


# DetectionEval.interpolation -> OpenCV's code (cv2.INTER_*, what mx.image.imresize takes).
_INTERPOLATION = {"nearest": 0, "bilinear": 1, "bicubic": 2, "area": 3}


class DetectionTransform:
    """GluonCV's detection evaluation preprocessing with the settings of a
    :class:`~resnest.gluon.pretrained.DetectionEval`."""

    def __init__(self, settings):
        if settings.interpolation not in _INTERPOLATION:
            raise UserError(f"unknown interpolation {settings.interpolation!r}; use one of "
                            f"{', '.join(_INTERPOLATION)}.")
        self.settings = settings

    def resize(self, img):
        """The resized uint8 image (H, W, 3)."""
        import cv2
        s = self.settings
        height, width = img.shape[:2]
        new_h, new_w = resized_size(height, width, s.short, s.max_size)
        return cv2.resize(np.ascontiguousarray(img), (new_w, new_h),
                          interpolation=_INTERPOLATION[s.interpolation])

    def __call__(self, img):
        img = np.asarray(img)
        if img.ndim != 3 or img.shape[2] != 3:
            raise UserError(f"a detector takes RGB images (H, W, 3), got shape {img.shape}.")
        resized = self.resize(img)
        data = normalize_chw(resized, self.settings.mean, self.settings.std)
        return DetectionInput(data, float(img.shape[0]) / resized.shape[0])


def detection_eval_transform(model=None, short=None, max_size=None):
    """The evaluation transform of detector ``model``'s published weights (GluonCV's settings
    for models without them), ``short`` / ``max_size`` overriding them."""
    from ..pretrained import PRETRAINED, DetectionEval
    info = PRETRAINED.get(model)
    base = info.eval if info is not None and isinstance(info.eval, DetectionEval) \
        else DetectionEval()
    short = base.short if short is None else int(short)
    max_size = base.max_size if max_size is None else int(max_size)
    if short < 1 or max_size < short:
        raise UserError(f"the detection input needs 1 <= short <= max_size, got short={short}, "
                        f"max_size={max_size}.")
    return DetectionTransform(dataclasses.replace(base, short=short, max_size=max_size))


def restore_boxes(boxes, scale, size):
    """Boxes ``(..., 4)`` detected on the resized image of ``size = (h, w)`` -> on the
    original image: clipped to ``[0, w] x [0, h]``, then multiplied by ``scale``."""
    boxes = np.array(boxes, dtype=np.float64, copy=True)
    height, width = size
    np.clip(boxes[..., 0::2], 0, width, out=boxes[..., 0::2])
    np.clip(boxes[..., 1::2], 0, height, out=boxes[..., 1::2])
    return boxes * scale
