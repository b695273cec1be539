"""Weights to and from other implementations of ResNeSt: timm, the authors' ``resnest.torch``,
Detectron2 and MMDetection, in ``.params``, ``.pth`` or ``.safetensors``.

The parameters correspond one to one; only names change (one name map per layout: :mod:`.timm`,
:mod:`.torch`, :mod:`.detectron2`, :mod:`.mmdet`), never a shape or an order. A conversion
checks the whole file against one of our registered models first and writes nothing when any
array does not fit. Class names travel in each format's metadata (:mod:`.formats`).
"""
import os

from ..utils.errors import UserError
from .formats import format_for_path
from .identify import identify, in_model_order, model_config
from .names import describe
from .translate import LAYOUTS, foreign_payload, read_ours

__all__ = ["TARGETS", "LAYOUTS", "convert_file", "read_ours", "read_foreign_params",
           "foreign_class_names"]

TARGETS = ("gluon",) + tuple(LAYOUTS)


def read_foreign_params(path):
    """A ``.pth`` / ``.safetensors`` file's arrays as float32 NDArrays under our names (what
    :func:`resnest.gluon.store.read_params` returns for such a file)."""
    import mxnet as mx
    import numpy as np
    arrays, _, _ = read_ours(path)
    return {k: mx.nd.array(v, dtype=np.float32 if v.dtype.kind == "f" else v.dtype)
            for k, v in arrays.items()}


def foreign_class_names(path):
    """The class names a converted ``.pth`` / ``.safetensors`` carries, or None (read from the
    safetensors header or the pickle, without the arrays' bytes where the format allows)."""
    from .formats import format_of, safetensors_metadata
    from .torchfile import is_torch_zip, read_torch
    from .translate import clean_meta
    try:
        if format_of(path) == "safetensors":
            meta = safetensors_metadata(path)
        elif is_torch_zip(path):
            obj = read_torch(path, arrays=False)
            meta = obj if isinstance(obj, dict) else {}
        else:
            meta = read_ours(path)[1]
    except Exception:                       # unreadable: the loader reports it in a sentence
        return None
    return clean_meta(meta).get("class_names")


def _check_target(to, model, arch):
    from . import detectron2, mmdet
    limits = {"detectron2": detectron2.unsupported, "mmdet": mmdet.unsupported}.get(to)
    problems = limits(arch, model_config(model).avd_first) if limits else []
    if problems:
        raise UserError(f"{LAYOUTS[to].title} cannot build {model}: {'; '.join(problems)}; "
                        "nothing was written.")


def _target_meta(to, model, meta):
    from . import timm, torch
    out = {"class_names": meta.get("class_names"), "resnest_model": model, "layout": to}
    if to == "timm" and timm.model_name(model):
        out["arch"] = timm.model_name(model)
    if to == "torch" and torch.model_name(model):
        out["arch"] = torch.model_name(model)
    return out


def _json_beside(dst, meta, src):
    """The record written beside a converted ``.params`` (read like a checkpoint's JSON)."""
    record = {"model": meta["resnest_model"], "converted_from": os.path.abspath(src)}
    if meta.get("class_names"):
        record["class_names"] = meta["class_names"]
    return record, os.path.splitext(dst)[0] + ".json"


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
    from ..utils.io import write_json
    from .formats import write_arrays
    if to not in TARGETS:
        raise UserError(f"unknown target {to!r}; choose one of {', '.join(TARGETS)}.")
    fmt = format_for_path(dst)
    if fmt == "params" and to != "gluon":
        raise UserError("a .params file holds our own names only; write the "
                        f"{LAYOUTS[to].title} layout as .pth or .safetensors.")
    if os.path.abspath(src) == os.path.abspath(dst):
        raise UserError(f"{dst} is the source file itself; write the conversion elsewhere.")
    beside = [os.path.splitext(dst)[0] + ".json"] if fmt == "params" else []
    for path in [dst] + beside:
        if os.path.exists(path) and not force:
            raise UserError(f"{path} exists; pass --force (force=True) to replace it.")
    arrays, meta, source = read_ours(src)
    model, same = identify(arrays, src, model or meta.get("resnest_model"))
    _check_target(to, model, describe(arrays))
    out_meta = _target_meta(to, model, meta)
    payload, written, dropped = foreign_payload(in_model_order(arrays, model), LAYOUTS.get(to),
                                                fmt, out_meta)
    write_arrays(dst, fmt, payload)
    if fmt == "params":
        record, path = _json_beside(dst, out_meta, src)
        write_json(path, record)
    return {"model": model, "same_arrays": same, "source": source, "dropped": dropped,
            "arrays": len(written), "class_names": meta.get("class_names")}
