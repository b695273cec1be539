"""Detectors ready for inference: the network with its weights, its class names and the
input size it is evaluated at (what ``detect.py`` and ``evaluate_detection.py`` load).

Published weights (the store) detect COCO's 80 classes at the published size (short side 800
within 1333). A checkpoint of ours names its classes and its evaluation size in its record
(``train_detection.py`` writes both). A file in GluonCV's layout (``save_parameters`` of
GluonCV's own model) predicting 81 outputs detects COCO's classes. A weights file without a
record is evaluated only at a size the user states (``--short``): guessing 800 for a model
trained at 96 would score it far below what it does.
"""
import os
from dataclasses import dataclass
from typing import List, Optional

import mxnet as mx

from ..checkpoint import CheckpointRecord, record_beside
from ..classes import published_classes
from ..data.detection import detection_eval_transform
from ..models import get_model, model_task
from ..models.detection import load_gluoncv_params
from ..pretrained import PRETRAINED
from ..store import get_model_file, load_weights, read_params
from ..utils.errors import UserError

__all__ = ["LoadedDetector", "load_detector", "detector_transform", "DETECTION_TASKS"]

DETECTION_TASKS = ("detection", "instance-segmentation")


@dataclass
class LoadedDetector:
    """A detector with its weights: ``class_names[i]`` names class ``i``; ``record`` is the
    checkpoint's record (None for published weights and bare files)."""

    net: object
    name: str
    weights: str
    class_names: List[str]
    record: Optional[CheckpointRecord] = None

    @property
    def published(self):
        """Whether these are the model's published weights."""
        info = PRETRAINED.get(self.name)
        return info is not None and os.path.basename(self.weights) == info.file_name

    @property
    def masks(self):
        """Whether the detector also predicts instance masks (Mask R-CNN)."""
        return model_task(self.name) == "instance-segmentation"


def _predicted_classes(arrays, path):
    weight = arrays.get("class_predictor.weight")
    if weight is None:
        raise UserError(f"weights file {path} has no class_predictor.weight; it is not a "
                        "detector's weights.")
    return int(weight.shape[0]) - 1                  # one output is the background


def _file_classes(arrays, path, record):
    """The class names of a weights file: its record's, COCO's for 80 classes, else
    ``'0', '1', ...``."""
    count = _predicted_classes(arrays, path)
    if record is not None and record.class_names:
        if len(record.class_names) != count:
            raise UserError(f"{path} predicts {count} classes but its record names "
                            f"{len(record.class_names)}; the two files do not belong together.")
        return list(record.class_names)
    coco = published_classes("coco").names
    return list(coco) if count == len(coco) else [str(i) for i in range(count)]


def load_detector(model, weights=None, ctx=None, root=None):
    """Build detector ``model`` and load ``weights`` (ours or GluonCV's layout) or, without it,
    its published weights.

    Raises
    ------
    UserError
        Not a detector, no published weights, a file of another model or class count, or a
        record that belongs to other weights.
    """
    task = model_task(model)
    if task not in DETECTION_TASKS:
        raise UserError(f"--model {model} is a {task} model, not a detector; use one of the "
                        "faster_rcnn_fpn_* or mask_rcnn_fpn_* models.")
    ctx = ctx or mx.cpu()
    record, path = (record_beside(weights), weights) if weights else \
        (None, get_model_file(model, root))
    if record is not None and record.model != model:
        raise UserError(f"{path} holds {record.model} weights, not {model}; pass --model "
                        f"{record.model}.")
    arrays = read_params(path, sha1=record.params_sha1 if record else None)
    names = _file_classes(arrays, path, record)
    net = get_model(model, classes=names)
    if any(k.startswith("features.") for k in arrays):          # GluonCV's layout
        load_gluoncv_params(net, path, ctx=ctx, name=model)
    else:
        load_weights(net, path, ctx=ctx, name=model, arrays=arrays)
    return LoadedDetector(net, model, path, names, record)


def detector_transform(loaded, short=None, max_size=None):
    """The evaluation transform of ``loaded``: ``short`` / ``max_size`` when given, else the
    record's (the size it was validated at in training), else the published settings; a bare
    weights file needs ``short`` (see the module doc)."""
    settings = loaded.record.eval if loaded.record is not None else {}
    if short is None and loaded.record is None and not loaded.published:
        raise UserError(f"{loaded.weights} has no record beside it ("
                        f"{os.path.splitext(loaded.weights)[0]}.json), so the size it was "
                        "trained for is unknown; pass --short (and --max-size).")
    short = short if short is not None else settings.get("short")
    max_size = max_size if max_size is not None else settings.get("max_size")
    if short is not None and max_size is None and settings.get("max_size") is None:
        max_size = max(int(short), detection_eval_transform(loaded.name).settings.max_size)
    return detection_eval_transform(loaded.name, short, max_size)
