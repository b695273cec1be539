"""One way to get a model ready for inference: its weights, class count, class names and how
it is evaluated.

Published weights come from the store (:mod:`resnest.gluon.store`) with their published class
list (:mod:`resnest.gluon.classes`) and evaluation settings (:mod:`resnest.gluon.pretrained`).
A checkpoint (any weights file of the architecture) sets the class count from its classifier;
its record (:mod:`resnest.gluon.checkpoint`, the JSON ``train.py`` writes beside it) gives the
class names and the evaluation crop, and the weights are checked against it. A weights file
without a record evaluates only at a crop the user states: guessing 224 for a model trained at
32 would score it at 12 % instead of 100 %.
"""
import os
from dataclasses import dataclass
from typing import List, Optional

from ..checkpoint import CheckpointRecord, record_beside
from ..classes import published_classes
from ..convert.translate import foreign_class_names
from ..data.transforms import eval_transform
from ..models import get_model, model_task
from ..pretrained import PRETRAINED, segmentation_eval
from ..store import get_model_file, load_weights, read_params
from ..utils.errors import UserError

__all__ = ["LoadedModel", "load_model", "classification_transform", "load_segmentation_model",
           "segmentation_settings"]


@dataclass
class LoadedModel:
    """A model with its weights loaded. ``class_names[i]`` names class ``i`` (None when the
    weights carry no names); ``descriptions`` are readable names where known (ImageNet);
    ``record`` is the checkpoint's record (None for published weights and bare files)."""

    net: object
    name: str
    weights: str
    classes: int
    class_names: Optional[List[str]] = None
    descriptions: Optional[List[str]] = None
    record: Optional[CheckpointRecord] = None

    @property
    def published(self):
        """Whether these are the published weights of the model (from the store)."""
        info = PRETRAINED.get(self.name)
        return info is not None and os.path.basename(self.weights) == info.file_name


def _classifier_width(arrays, path):
    keys = [k for k in arrays if k == "fc.weight" or k.endswith(".fc.weight")]
    if not keys:
        raise UserError(f"weights file {path} has no fc.weight; it is not a classification "
                        "model's weights.")
    return int(arrays[keys[0]].shape[0])


def load_model(model, weights=None, ctx=None, root=None):
    """Build classifier ``model`` and load ``weights`` (a weights file) or, without it, the
    published weights from the store.

    Raises
    ------
    UserError
        Unknown model, no published weights, a weights file of another architecture, or a
        record that is damaged or belongs to other weights.
    """
    if weights:
        record = record_beside(weights)
        arrays = read_params(weights, sha1=record.params_sha1 if record else None)
        classes = _classifier_width(arrays, weights)
        # A checkpoint's record names its classes; a converted .pth / .safetensors carries
        # them in its own metadata (resnest.gluon.convert).
        names = record.class_names if record else foreign_class_names(weights)
        descriptions, path = None, weights
    else:
        record, path = None, get_model_file(model, root)
        names, descriptions = published_classes(PRETRAINED[model].class_list)
        arrays, classes = None, len(names)
    if names is not None and len(names) != classes:
        raise UserError(f"{path} predicts {classes} classes but its record names "
                        f"{len(names)}; the two files do not belong together.")
    net = get_model(model, classes=classes)
    load_weights(net, path, ctx=ctx, name=model, arrays=arrays)
    return LoadedModel(net, model, path, classes, names, descriptions, record)


def classification_transform(loaded, crop_size=None, crop_ratio=None):
    """The evaluation transform of ``loaded``: ``crop_size``/``crop_ratio`` when given, else
    the checkpoint record's (the crop it was validated with in training), else the published
    settings; a weights file with neither is refused (see the module doc)."""
    settings = loaded.record.eval if loaded.record is not None else {}
    if crop_size is None and loaded.record is None and not loaded.published:
        raise UserError(f"{loaded.weights} has no record beside it ("
                        f"{os.path.splitext(loaded.weights)[0]}.json), so the crop it was "
                        "trained for is unknown; pass --crop-size (and --crop-ratio).")
    size = crop_size if crop_size is not None else settings.get("crop_size")
    ratio = crop_ratio if crop_ratio is not None else settings.get("crop_ratio")
    return eval_transform(loaded.name, size, ratio)


def load_segmentation_model(model, weights=None, ctx=None, root=None):
    """Build segmentation model ``model`` for inference (no auxiliary head) and load
    ``weights`` (a checkpoint of ours or any weights file of the architecture; the class
    count from its main head, the class names from its record) or, without it, the published
    weights from the store (with their published class list).

    Raises
    ------
    UserError
        Not a segmentation model, no published weights, a file of another architecture, or
        a record that is damaged or names another class count.
    """
    if model_task(model) != "segmentation":
        raise UserError(f"--model {model} is a {model_task(model)} model; this command "
                        "segments images with a segmentation model (e.g. "
                        "deeplab_resnest50_ade).")
    if weights:
        record = record_beside(weights)
        arrays = read_params(weights, sha1=record.params_sha1 if record else None)
        width = arrays.get("head.block.4.bias")
        if width is None:
            raise UserError(f"weights file {weights} has no head.block.4.bias; it is not a "
                            "segmentation model's weights.")
        classes, names, path = int(width.shape[0]), record.class_names if record else None, \
            weights
    else:
        info = PRETRAINED.get(model)
        if info is None:
            raise UserError(f"{model} has no published weights; pass the weights trained on "
                            "your data with --resume.")
        record, arrays, path = None, None, get_model_file(model, root)
        names, classes = published_classes(info.class_list).names, info.classes
    if names is not None and len(names) != classes:
        raise UserError(f"{path} predicts {classes} classes but its record names "
                        f"{len(names)}; the two files do not belong together.")
    net = get_model(model, classes=classes, aux=False)
    load_weights(net, path, ctx=ctx, name=model, ignore=("auxlayer.",), arrays=arrays)
    return LoadedModel(net, model, path, classes, names, None, record)


def segmentation_settings(loaded, base_size=None, crop_size=None, needed=False):
    """The :class:`~resnest.gluon.pretrained.SegmentationEval` of ``loaded``: the published
    settings, or a checkpoint's training sizes from its record, with ``base_size`` /
    ``crop_size`` overriding them. ``needed`` (multi-scale evaluation uses the sizes): a
    weights file with neither record nor sizes given is refused."""
    recorded = loaded.record.eval if loaded.record is not None else {}
    if needed and not loaded.published and not recorded and \
            (base_size is None or crop_size is None):
        raise UserError(f"{loaded.weights} has no record beside it ("
                        f"{os.path.splitext(loaded.weights)[0]}.json), so the sizes it was "
                        "trained at are unknown; pass --base-size and --crop-size.")
    base = base_size if base_size is not None else recorded.get("base_size")
    crop = crop_size if crop_size is not None else recorded.get("crop_size")
    return segmentation_eval(loaded.name if loaded.published else None, base_size=base,
                             crop_size=crop)
