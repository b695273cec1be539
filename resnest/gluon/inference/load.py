"""One way to get a model ready for inference: its weights, class count and class names.

Published weights come from the store (:mod:`resnest.gluon.store`) with the 1,000 ImageNet
classes (:mod:`resnest.gluon.classes`: WordNet id and name, generated from GluonCV's table). A
checkpoint (any ``.params`` of the architecture) sets the class count from its classifier and
the class names from the JSON that ``train.py`` writes beside it, when there is one.
"""
import json
import os
from dataclasses import dataclass
from typing import List, Optional

from ..classes import published_classes
from ..pretrained import PRETRAINED
from ..utils.errors import UserError

__all__ = ["LoadedModel", "checkpoint_record", "checkpoint_class_names",
           "checkpoint_eval_crop", "load_model"]

@dataclass
class LoadedModel:
    """A model with its weights loaded. ``class_names[i]`` names class ``i`` (None when the
    weights carry no names); ``descriptions`` are readable names where known (ImageNet)."""

    net: object
    name: str
    weights: str
    classes: int
    class_names: Optional[List[str]] = None
    descriptions: Optional[List[str]] = None


def checkpoint_record(params_path):
    """The JSON that ``train.py`` writes beside a checkpoint's ``.params`` (and the converter
    beside a converted one), or {}."""
    try:
        with open(os.path.splitext(params_path)[0] + ".json", encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def checkpoint_class_names(params_path):
    """The class names stored in the JSON beside a checkpoint's ``.params``, or, for a
    converted ``.pth`` / ``.safetensors``, in the file's own metadata; None when unknown."""
    names = checkpoint_record(params_path).get("class_names")
    if isinstance(names, list):
        return list(names)
    from ..convert import foreign_class_names
    from ..convert.formats import format_of
    if os.path.isfile(params_path) and format_of(params_path) in ("pth", "safetensors"):
        return foreign_class_names(params_path)
    return None


def checkpoint_eval_crop(params_path):
    """``(crop_size, crop_ratio)`` a checkpoint was evaluated with during training (its JSON's
    ``eval``), each None when not recorded."""
    settings = checkpoint_record(params_path).get("eval")
    settings = settings if isinstance(settings, dict) else {}
    size, ratio = settings.get("crop_size"), settings.get("crop_ratio")
    return (int(size) if isinstance(size, (int, float)) else None,
            float(ratio) if isinstance(ratio, (int, float)) else None)


def _classifier_width(arrays, path):
    keys = [k for k in arrays if k == "fc.weight" or k.endswith(".fc.weight")]
    if not keys:
        raise UserError(f"weights file {path} has no fc.weight; it is not a classification "
                        "model's weights.")
    return int(arrays[keys[0]].shape[0])


def load_model(model, weights=None, ctx=None, root=None):
    """Build ``model`` and load ``weights`` (a ``.params`` path) or, without it, the published
    weights from the store.

    Raises
    ------
    UserError
        Unknown model, no published weights, or a weights file of another architecture.
    """
    from ..models import get_model
    from ..store import get_model_file, load_weights, read_params
    if weights:
        classes = _classifier_width(read_params(weights), weights)
        path, names, descriptions = weights, checkpoint_class_names(weights), None
    else:
        path = get_model_file(model, root)
        names, descriptions = published_classes(PRETRAINED[model].class_list)
        classes = len(names)
    net = get_model(model, classes=classes)
    load_weights(net, path, ctx=ctx, name=model)
    if names is not None and len(names) != classes:
        raise UserError(f"{path} predicts {classes} classes but its JSON names "
                        f"{len(names)}; the two files do not belong together.")
    return LoadedModel(net, model, path, classes, names, descriptions)
