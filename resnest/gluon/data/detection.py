"""The detection evaluation transform of GluonCV's Faster R-CNN models
(``FasterRCNNDefaultValTransform``): an RGB uint8 image -> the resized, normalised input
tensor and the scale that maps the detected boxes back onto the original image.

The short side goes to ``short`` unless the long side would then exceed ``max_size``, in which
case the long side goes to ``max_size``; the size is rounded half to even, the image resized by
OpenCV (``cv2.resize``, what GluonCV's ``mx.image.imresize`` wraps: equal pixel for pixel,
tested; bilinear), then scaled to [0, 1] and normalised with the ImageNet mean and std. No
MXNet is needed, so the loader's worker processes do not import it. Detected boxes are clipped
to the resized image and multiplied by ``scale = original height / resized height``, as GluonCV's
evaluation does.

>>> transform = detection_eval_transform("faster_rcnn_fpn_resnest50_coco")
>>> data, scale = transform(image)              # (3, h, w) float32, float
>>> boxes = restore_boxes(boxes, scale, data.shape[1:])

:func:`image_detections` does all of the way back for one image: the kept detections, their
boxes on the original image and (Mask R-CNN) their masks pasted at its size.
"""
import dataclasses
from typing import NamedTuple, Optional

import numpy as np

from ..utils.errors import UserError
from .transforms import normalize_chw
from ..pretrained import PRETRAINED, DetectionEval

__all__ = ["DetectionInput", "resized_size", "DetectionTransform", "detection_eval_transform",
           "restore_boxes", "ImageDetections", "paste_masks", "image_detections"]


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


class ImageDetections(NamedTuple):
    """The detections of one image, on the original image, best first: ``labels`` int class
    indices (K,), ``scores`` (K,), ``boxes`` corners (K, 4) and, from Mask R-CNN, ``masks``
    uint8 (K, H, W) at the original size (else None)."""

    labels: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    masks: Optional[np.ndarray] = None


def paste_masks(masks, boxes, height, width):
    """Mask R-CNN's box-relative probability maps ``(K, h, w)`` -> binary uint8 masks
    ``(K, height, width)`` of the image, GluonCV's rule (``mask.fill``, ``fast_fill``): the
    map padded by one pixel of 0, its box widened to match, rounded to whole pixels, the map
    resized onto it (PIL bilinear) and thresholded at 0.5."""
    from PIL import Image
    out = np.zeros((len(masks), height, width), np.uint8)
    if not len(masks):
        return out
    m_h, m_w = masks.shape[1:]
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    half_w = (boxes[:, 2] - boxes[:, 0]) / 2 * (m_w + 2) / m_w
    half_h = (boxes[:, 3] - boxes[:, 1]) / 2 * (m_h + 2) / m_h
    corners = np.round(np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], 1))
    for k, (x1, y1, x2, y2) in enumerate(corners.astype(int)):
        padded = np.pad(np.asarray(masks[k], np.float32), 1)
        sized = np.asarray(Image.fromarray(padded).resize((x2 - x1 + 1, y2 - y1 + 1),
                                                          Image.BILINEAR)) > 0.5
        top, left = max(0, y1), max(0, x1)
        bottom, right = min(height, y2 + 1), min(width, x2 + 1)
        if bottom > top and right > left:
            out[k, top:bottom, left:right] = sized[top - y1:bottom - y1, left - x1:right - x1]
    return out


def image_detections(outputs, scale, size, original, score_thresh=0.0):
    """One image's network outputs ``(ids, scores, boxes[, masks])`` (each without the batch
    axis: ``(N, 1)``, ``(N, 1)``, ``(N, 4)``, ``(N, h, w)``) on the input of ``size = (h, w)``
    -> :class:`ImageDetections` on the ``original = (height, width)`` image: suppressed rows
    (id -1) and scores below ``score_thresh`` dropped, boxes restored
    (:func:`restore_boxes`), masks pasted (:func:`paste_masks`), best score first."""
    ids, scores, boxes = (np.asarray(a, np.float64) for a in outputs[:3])
    ids, scores = ids.reshape(-1), scores.reshape(-1)
    keep = np.flatnonzero((ids >= 0) & (scores >= score_thresh))
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    restored = restore_boxes(boxes.reshape(-1, 4)[keep], scale, size)
    masks = None
    if len(outputs) > 3:
        masks = paste_masks(np.asarray(outputs[3])[keep], restored, *original)
    return ImageDetections(ids[keep].astype(np.int64), scores[keep], restored, masks)
