"""Converting a weights file from one layout to another (what ``scripts/gluon/convert.py``
runs): the whole file is checked against one of our registered models first
(:mod:`.identify`), and nothing is written when any array does not fit. A converted
``.params`` gets its record beside it (:func:`resnest.gluon.checkpoint.write_weights`), the
other formats keep the class names in their own metadata (:mod:`.formats`).
"""
import os

from ..checkpoint import CheckpointRecord, write_weights
from ..utils.errors import UserError
from ..utils.outputs import refuse_existing
from . import detectron2, mmdet, timm, torch
from .formats import format_for_path, write_arrays
from .identify import identify, in_model_order, model_config
from .names import describe
from .translate import LAYOUTS, foreign_payload, read_ours

__all__ = ["TARGETS", "convert_file"]

TARGETS = ("gluon",) + tuple(LAYOUTS)


def _check_target(to, model, arch):
    limits = {"detectron2": detectron2.unsupported, "mmdet": mmdet.unsupported}.get(to)
    problems = limits(arch, model_config(model).avd_first) if limits else []
    if problems:
        raise UserError(f"{LAYOUTS[to].title} cannot build {model}: {'; '.join(problems)}; "
                        "nothing was written.")


def _target_meta(to, model, meta):
    out = {"class_names": meta.get("class_names"), "resnest_model": model, "layout": to}
    if to == "timm" and timm.model_name(model):
        out["arch"] = timm.model_name(model)
    if to == "torch" and torch.model_name(model):
        out["arch"] = torch.model_name(model)
    return out


def convert_file(src, dst, to, model=None, force=False):
    """Convert the weights file ``src`` to layout ``to`` (one of :data:`TARGETS`) in ``dst``,
    whose format is its extension (``.params``, ``.pth``, ``.safetensors``).

    The arrays must be exactly those of ``model`` (default: the registered model they fit);
    for a Detectron2 or MMDetection target the classifier is left out. Returns a dict with
    ``model``, ``source`` (the layout read), ``arrays`` (written), ``dropped`` and
    ``class_names``.

    Raises
    ------
    UserError
        Unknown target, ``dst`` exists (without ``force``), unreadable source, names no layout
        maps, arrays that fit no model (or not ``model``), an architecture the target cannot
        build. Nothing is written then.
    """
    if to not in TARGETS:
        raise UserError(f"unknown target {to!r}; choose one of {', '.join(TARGETS)}.")
    fmt = format_for_path(dst)
    if fmt == "params" and to != "gluon":
        raise UserError("a .params file holds our own names only; write the "
                        f"{LAYOUTS[to].title} layout as .pth or .safetensors.")
    if os.path.abspath(src) == os.path.abspath(dst):
        raise UserError(f"{dst} is the source file itself; write the conversion elsewhere.")
    beside = [os.path.splitext(dst)[0] + ".json"] if fmt == "params" else []
    refuse_existing([dst] + beside, force, flag="--force (force=True)", what="output")
    arrays, meta, source = read_ours(src)
    model, same = identify(arrays, src, model or meta.get("resnest_model"))
    _check_target(to, model, describe(arrays))
    out_meta = _target_meta(to, model, meta)
    payload, written, dropped = foreign_payload(in_model_order(arrays, model), LAYOUTS.get(to),
                                                fmt, out_meta)
    if fmt == "params":               # the weights and their record, as one group
        record = CheckpointRecord(model=model, class_names=out_meta.get("class_names"),
                                  converted_from=os.path.abspath(src))
        write_weights(dst, record, lambda tmp: write_arrays(tmp, fmt, payload, atomic=False))
    else:
        write_arrays(dst, fmt, payload)
    return {"model": model, "same_arrays": same, "source": source, "dropped": dropped,
            "arrays": len(written), "class_names": meta.get("class_names")}
