"""Detect objects in images and name them: what ``scripts/gluon/detect.py`` runs.

The detector is a published one (COCO's 80 classes) or a checkpoint (its own class names and
evaluation size, from its record); see :func:`~.load_detection.load_detector`. Inputs follow
``predict.py``'s rules (:func:`~resnest.gluon.data.inputs.collect_inputs`: files, folders,
globs, ``.rec``); an image that cannot be read becomes a row with an ``error`` and the run goes
on. Each image is resized as the weights are evaluated (GluonCV's ``resize_short_within``), run
alone (images come in every size) and its detections scoring at least ``--threshold`` are
mapped back onto the original image (:func:`~resnest.gluon.data.detection.image_detections`).

Detectors run on MXNet in float32: :func:`~.optimize.optimize` does export a detector to the
ONNX and OpenVINO engines, but there every class id is 0 (``arange_like`` exports as zeros) and
the NMS suppresses across classes (the exporter's ``box_nms``), and the export takes one input
shape where each image has its own size (``docs/detection.md``).
"""
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import List, Optional

import mxnet as mx
import numpy as np

from ..data.detection import image_detections
from ..data.inputs import ImageInputs, collect_inputs
from ..data.workers import ordered_map
from ..utils.config import FRACTION, NON_NEGATIVE, POSITIVE, check_fields, option
from ..utils.errors import UserError
from .backends import AUTO
from .config import InferenceConfig
from .load_detection import detector_transform, load_detector

__all__ = ["DetectConfig", "Detected", "detect", "picture_names", "ENGINE", "check_detector_engine"]

ENGINE = ("mxnet", "the ONNX and OpenVINO exports of a detector give every box class 0, suppress "
          "across classes and take "
          "one input shape, see docs/detection.md")


def check_detector_engine(cfg):
    """Refuse, in one sentence, an engine or dtype other than MXNet float32 for a detector
    (the reason is :data:`ENGINE`)."""
    if cfg.backend not in (AUTO, "mxnet") or cfg.dtype != "float32":
        raise UserError(f"detectors run on the mxnet engine in float32 only ({ENGINE[1]}); "
                        f"drop --backend {cfg.backend} / --dtype {cfg.dtype}.")


@dataclass
class DetectConfig(InferenceConfig):
    """Everything ``detect.py`` asks for; see its ``--help`` for meanings."""

    model: str = option(None, "registered detector, e.g. faster_rcnn_fpn_resnest50_coco",
                        required=True)
    inputs: List[str] = option([], "image file, folder, glob pattern or .rec",
                               flags=("inputs",), nargs="*", metavar="INPUT")
    threshold: float = option(0.5, "keep detections scoring at least this", check=FRACTION)
    short: Optional[int] = option(None, "short side of the input (default: the weights' "
                                  "evaluation size)", check=POSITIVE)
    max_size: Optional[int] = option(None, "longest side of the input (default: the "
                                     "weights')", check=POSITIVE)
    # One image per call: images come in every size.
    batch_size: int = option(1, cli=False)
    num_workers: int = option(2, "decoding processes (0: decode in this process)",
                              flags=("-j", "--num-workers"), check=NON_NEGATIVE)

    def check(self):
        check_fields(self)
        check_detector_engine(self)


@dataclass
class Detected:
    """The result for one image: ``objects`` holds ``(index, name, score, box)`` best first
    (``box`` = x1, y1, x2, y2 on the original image, pixels); ``masks`` (Mask R-CNN) uint8
    (K, H, W); ``error`` says why the image could not be read (nothing else is set);
    ``picture`` is the file name its drawing gets (:func:`picture_names`)."""

    image: str
    height: int = 0
    width: int = 0
    objects: list = field(default_factory=list)
    masks: Optional[np.ndarray] = None
    error: Optional[str] = None
    picture: Optional[str] = None
    mask_pixels: Optional[list] = None

    def as_dict(self):
        """JSON-ready row (masks as their pixel counts: the pictures show them)."""
        pixels = self.mask_pixels
        if pixels is None and self.masks is not None:
            pixels = [int(m.sum()) for m in self.masks]
        row = {"image": self.image, "error": self.error}
        if self.error is None:
            row.update(height=self.height, width=self.width, objects=[
                {"index": i, "name": n, "score": round(s, 6),
                 "box": [round(float(v), 2) for v in b],
                 **({"mask_pixels": pixels[k]} if pixels is not None else {})}
                for k, (i, n, s, b) in enumerate(self.objects)])
        return row


def _as_is(rgb):
    return rgb


def _read(dataset, position):
    return dataset[position]


def _detect_one(net, transform, rgb, names, threshold):
    data, scale = transform(rgb)
    outputs = [o.asnumpy()[0] for o in net(mx.nd.array(data[None]))]
    dets = image_detections(outputs, scale, data.shape[1:], rgb.shape[:2], threshold)
    objects = [(int(c), names[int(c)], float(s), tuple(float(v) for v in b))
               for c, s, b in zip(dets.labels, dets.scores, dets.boxes)]
    return objects, dets.masks


def detect(cfg, log=None, keep_images=False):
    """Detect in ``cfg.inputs``; yields ``(Detected, RGB image or None)`` per image, in input
    order (the image only with ``keep_images``, for the pictures).

    Raises
    ------
    UserError
        Bad settings, no inputs, a missing path, an empty folder, or a weights file of
        another model.
    """
    cfg.check()
    items = collect_inputs(cfg.inputs)
    loaded = load_detector(cfg.model, cfg.weights)
    transform = detector_transform(loaded, cfg.short, cfg.max_size)
    if log:
        s = transform.settings
        log(f"engine: {ENGINE[0]} ({ENGINE[1]}); {len(loaded.class_names)} classes, short "
            f"side {s.short} within {s.max_size}")
    net = loaded.net
    net.hybridize(static_alloc=True)
    pictures = picture_names([item.name for item in items])
    dataset = ImageInputs(items, _as_is)
    for position, (_, rgb, error, _) in ordered_map(_read, dataset, range(len(items)),
                                                     cfg.num_workers):
        row = Detected(items[position].name, error=error,
                       picture=pictures[items[position].name])
        if rgb is not None:
            row.height, row.width = rgb.shape[:2]
            row.objects, row.masks = _detect_one(net, transform, rgb, loaded.class_names,
                                                 cfg.threshold)
        yield row, (rgb if keep_images else None)


def picture_names(items):
    """``{image name: picture file name}``: the image's base name with ``.boxes.jpg``; names
    that clash get their position in front."""
    bases = [os.path.splitext(os.path.basename(n.split("#")[0]))[0] +
             (f"-{n.split('#')[1]}" if "#" in n else "") for n in items]
    counts = Counter(bases)
    return {n: (f"{i:05d}-{b}" if counts[b] > 1 else b) + ".boxes.jpg"
            for i, (n, b) in enumerate(zip(items, bases))}

