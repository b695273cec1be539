"""Class names: the published class lists, and the one check that two lists agree.

The lists (``imagenet.tsv``, ``ade20k.tsv``, ``coco.tsv`` beside this file, written by
``tools/make_class_lists.py`` from GluonCV's tables) hold one class per line, in label order:
its name, and after a tab a readable description where one exists (ImageNet's WordNet id is the
name, ``tench`` the description). A model's list is named by its row in
:data:`resnest.gluon.pretrained.PRETRAINED` (``class_list``).
"""
import functools
import os
from typing import List, NamedTuple, Optional

from ..utils.errors import UserError

__all__ = ["ClassList", "published_classes", "check_class_names"]

_HERE = os.path.dirname(os.path.abspath(__file__))


class ClassList(NamedTuple):
    """``names[i]`` names class ``i``; ``descriptions`` are readable names where known."""

    names: List[str]
    descriptions: Optional[List[str]] = None


@functools.lru_cache(maxsize=None)
def _read(list_name):
    path = os.path.join(_HERE, f"{list_name}.tsv")
    if not os.path.isfile(path):
        known = sorted(f[:-4] for f in os.listdir(_HERE) if f.endswith(".tsv"))
        raise UserError(f"no published class list {list_name!r}; known: {', '.join(known)}.")
    with open(path, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    names = tuple(r[0] for r in rows)
    descriptions = tuple(r[1] for r in rows) if all(len(r) > 1 for r in rows) else None
    return names, descriptions


def published_classes(list_name):
    """The :class:`ClassList` of a published list: ``'imagenet'``, ``'ade20k'`` or ``'coco'``."""
    names, descriptions = _read(list_name)
    return ClassList(list(names), list(descriptions) if descriptions else None)


def check_class_names(model_names, data_names, weights, data):
    """Refuse data whose class list differs from the one the weights were trained on (a
    missing class folder silently shifts every label). Either list may be unknown (None)."""
    if model_names is None or data_names is None or list(model_names) == list(data_names):
        return
    if len(model_names) != len(data_names):
        detail = f"{len(data_names)} classes in the data, {len(model_names)} in the weights"
    else:
        i = next(i for i, (a, b) in enumerate(zip(model_names, data_names)) if a != b)
        detail = f"class {i} is {data_names[i]!r} in the data but {model_names[i]!r} in the weights"
    raise UserError(f"the classes of {data} do not match those {weights} was trained on "
                    f"({detail}); use the data the model was trained for.")
