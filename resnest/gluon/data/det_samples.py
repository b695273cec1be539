"""The images of a COCO-format annotation file as detection samples for the loaders: item
``position`` -> ``(RGB uint8 HWC, target)``.

Training samples (``training=True``) follow GluonCV's ``COCODetection`` as its training
script builds it (``use_crowd=False``, ``skip_empty=True``): an annotation ``[x, y, w, h]``
becomes the corners ``(x, y, x + max(w - 1, 0), y + max(h - 1, 0))`` clipped to
``[0, W - 1] x [0, H - 1]`` (GluonCV's ``bbox_xywh_to_xyxy`` and ``bbox_clip_xyxy``); crowd
regions, annotations of zero ``area`` and boxes left without width or height after that are
not targets; an image with no target left is not a training sample (every anchor of it would
be a negative and the box losses would have nothing to learn). :attr:`DetectionSamples.
left_out` counts those images, for the log. Labels are the category's index in category-id
order (:attr:`~.coco.CocoSamples.label_of`), masks pycocotools' ``annToMask`` of the kept
annotations.

Evaluation samples (``training=False``) are every image of the file, in image-id order, and
their target is the position (the evaluator maps it to the image id): every image counts in
the mAP, including those without annotations.
"""
from typing import NamedTuple, Optional

import numpy as np

from ..utils.errors import UserError

__all__ = ["DetectionTarget", "gluoncv_boxes", "DetectionSamples"]


class DetectionTarget(NamedTuple):
    """The training targets of one image."""

    boxes: np.ndarray                  # float32 (N, 4) corners x1, y1, x2, y2 in pixels
    labels: np.ndarray                 # float32 (N,) class indices
    masks: Optional[np.ndarray] = None  # uint8 (N, H, W) instance masks, or None


def gluoncv_boxes(annotations, label_of, width, height):
    """``(boxes float32 (N, 4), labels float32 (N,), kept indices)`` of the COCO annotation
    records of one ``width`` x ``height`` image, by the rules of the module doc."""
    boxes, labels, kept = [], [], []
    for i, ann in enumerate(annotations):
        if ann.get("iscrowd", 0) or ann.get("ignore", 0) == 1 or not ann["area"] > 0:
            continue
        x, y, w, h = (float(v) for v in ann["bbox"])
        x1, y1 = min(width - 1, max(0.0, x)), min(height - 1, max(0.0, y))
        x2 = min(width - 1, max(0.0, x + max(w - 1, 0.0)))
        y2 = min(height - 1, max(0.0, y + max(h - 1, 0.0)))
        if x2 > x1 and y2 > y1:
            boxes.append((x1, y1, x2, y2))
            labels.append(label_of[ann["category_id"]])
            kept.append(i)
    return (np.array(boxes, np.float32).reshape(-1, 4), np.array(labels, np.float32), kept)


class DetectionSamples:
    """Detection samples over a :class:`~.coco.CocoSamples` (see the module doc).

    Parameters
    ----------
    coco : CocoSamples
    training : bool
        Training targets (GluonCV's rules), or evaluation (every image, target = position).
    masks : bool
        Training targets carry instance masks (Mask R-CNN).

    Raises
    ------
    UserError
        Training on a file none of whose images has a usable box.
    """

    def __init__(self, coco, training=True, masks=False):
        self.coco, self.training, self.with_masks = coco, bool(training), bool(masks)
        self.classes, self.path = coco.classes, coco.annotation_file
        self.indices, self._targets = [], []
        for index in range(len(coco)):
            if not self.training:
                self.indices.append(index)
                continue
            record = coco.coco.imgs[coco.image_ids[index]]
            target = gluoncv_boxes(coco.annotations(index), coco.label_of, record["width"],
                                   record["height"])
            if len(target[2]):
                self.indices.append(index)
                self._targets.append(target)
        self.left_out = len(coco) - len(self.indices)
        if not self.indices:
            raise UserError(f"{coco.annotation_file} has no image with a box to train on "
                            "(crowd regions and boxes without area are not targets); give "
                            "annotated images.")

    def __len__(self):
        return len(self.indices)

    def image_id(self, position):
        """The COCO image id of sample ``position``."""
        return self.coco.image_ids[self.indices[position]]

    def image_path(self, position):
        """The image file of sample ``position``."""
        return self.coco.path(self.indices[position])

    def read(self, position, bgr=False):
        """``(RGB uint8 image, target)``: a :class:`DetectionTarget` in training, the position
        in evaluation (``bgr`` is not offered: the detection transforms take RGB)."""
        position = int(position)
        img, _ = self.coco.read(self.indices[position])
        if not self.training:
            return img, position
        boxes, labels, kept = self._targets[position]
        masks = None
        if self.with_masks:
            masks = self.coco.masks(self.indices[position])[kept]
        return img, DetectionTarget(boxes, labels, masks)
